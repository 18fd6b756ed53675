"""``python -m libtlt.demo --arch ARCH OUTDIR`` for an instance segmenter (MaskRCNN): generated COCO shapes with exact
masks (training and held-out validation frames from different seeds) → tlt-dataset-convert → tlt-train →
tlt-evaluate (COCO bbox and segm) → tlt-prune → retrain from the pruned model → tlt-export INT8 with
``--gen_ds_config`` (calibration from the spec's training loader) → tlt-converter → tlt-evaluate and tlt-infer on
the engine.

Nothing here names an architecture: the spec comes from the architecture's ``demo_spec`` (instance-segmenter form:
records, validation json, size, steps, optional pruned model) and the engine's outputs from its
``deployed_output_names``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from libtlt.demo.arch_steps import arch_folder, arch_of, export_int8, prune
from libtlt.demo.context import KEY, DemoContext, DemoStep, run_command
from libtlt.io.atomic import write_text


def generate_data(ctx: DemoContext) -> None:
    from libtlt.samples.instances import generate_coco_dataset

    root = (ctx.outdir / "coco").resolve()
    shutil.rmtree(root, ignore_errors=True)
    width = height = ctx.size.instance_size
    train = generate_coco_dataset(root, split="train", num_images=ctx.size.instance_train_images, width=width,
                                  height=height, seed=ctx.seed + 11)
    generate_coco_dataset(root, split="val", num_images=ctx.size.instance_val_images, width=width, height=height,
                          seed=ctx.seed + 12, first_image_id=100001)
    ctx.results.update(coco=root, annotations=root / "annotations" / "instances_val.json", val_images=root / "val")
    ctx.summary.append(f"COCO sample: {root} ({ctx.size.instance_train_images} training frames, "
                       f"{ctx.size.instance_val_images} held-out validation frames, classes {', '.join(train.categories)})")


def convert(ctx: DemoContext) -> None:
    from libtlt.samples.specs import coco_convert_spec

    records = (ctx.outdir / "coco_records").resolve()
    shutil.rmtree(records, ignore_errors=True)
    spec = ctx.outdir / "specs" / "coco_convert.txt"
    write_text(spec, coco_convert_spec(ctx.results["coco"]))
    run_command(["tlt-dataset-convert", "-d", str(spec), "-o", f"{records}/"])
    ctx.results["records"] = records
    ctx.summary.append(f"TFRecords: {records}")


def _spec(ctx: DemoContext, steps: int, pruned_model: Path | None = None) -> str:
    width = height = ctx.size.instance_size
    records = ctx.results["records"]
    return str(arch_of(ctx).demo_spec(train_records=f"{records}/train-*", val_records=f"{records}/val-*",
                                    annotations=ctx.results["annotations"], width=width, height=height, steps=steps,
                                    pruned_model=pruned_model))


def _evaluate(ctx: DemoContext, spec: Path, model: Path, out: Path) -> dict[str, float]:
    """bbox and segm AP50 of ``model`` on the held-out frames."""
    run_command(["tlt-evaluate", ctx.results["arch"], "-e", str(spec), "-m", str(model), "-k", KEY, "-r", str(out)])
    report: dict[str, Any] = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    return {"bbox": float(report["coco_bbox"]["AP50"]), "segm": float(report["coco_segm"]["AP50"])}


def _ap(values: dict[str, float]) -> str:
    return f"bbox AP50 {values['bbox']:.3f}, segm AP50 {values['segm']:.3f}"


def train(ctx: DemoContext) -> None:
    name = ctx.results["arch"]
    results = arch_folder(ctx, "unpruned")
    shutil.rmtree(results, ignore_errors=True)
    spec = ctx.outdir / "specs" / f"{name}_train.txt"
    write_text(spec, _spec(ctx, ctx.size.instance_steps))
    run_command(["tlt-train", name, "-e", str(spec), "-r", str(results), "-k", KEY, "-n", name])
    ctx.results["spec"], ctx.results["model"] = spec, results / "weights" / f"{name}.tlt"
    ctx.summary.append(f"{name} model: {ctx.results['model']} (log: {results / 'status.json'})")


def evaluate(ctx: DemoContext) -> None:
    values = _evaluate(ctx, ctx.results["spec"], ctx.results["model"], arch_folder(ctx, "unpruned", "evaluation"))
    ctx.results["ap_unpruned"] = values
    ctx.summary.append(f"{ctx.results['arch']} on the held-out frames: {_ap(values)}")


def retrain(ctx: DemoContext) -> None:
    name = f"{ctx.results['arch']}_pruned"
    results = arch_folder(ctx, "retrained")
    shutil.rmtree(results, ignore_errors=True)
    spec = ctx.outdir / "specs" / f"{name}_retrain.txt"
    write_text(spec, _spec(ctx, ctx.size.instance_retrain_steps, pruned_model=ctx.results["pruned"]))
    run_command(["tlt-train", ctx.results["arch"], "-e", str(spec), "-r", str(results), "-k", KEY, "-n", name])
    model = results / "weights" / f"{name}.tlt"
    values = _evaluate(ctx, spec, model, results / "evaluation")
    ctx.results.update(retrain_spec=spec, retrained=model, ap_retrained=values)
    ctx.summary.append(f"retrained pruned model: {model} ({_ap(values)}; unpruned {_ap(ctx.results['ap_unpruned'])})")


def convert_engine(ctx: DemoContext) -> None:
    from libtlt.demo.detection_steps import _tensorrt_installed
    from libtlt.spec import load_spec

    arch = arch_of(ctx)
    spec = load_spec(ctx.results["retrain_spec"], arch.spec_message())
    channels, height, width = arch.input_shape(spec)
    engine = ctx.results["final"] / f"{ctx.results['arch']}_int8.engine"
    backend = ["--backend", "onnxruntime"] if not _tensorrt_installed() else []
    run_command(["tlt-converter", str(ctx.results["etlt"]), "-k", KEY, "-d", f"{channels},{height},{width}",
                 "-o", ",".join(arch.deployed_output_names(spec)), "-c", str(ctx.results["cal_bin"]), "-t", "int8",
                 "-b", "4", "-m", "8", "-e", str(engine), *backend])
    values = _evaluate(ctx, ctx.results["retrain_spec"], engine, ctx.results["final"] / "evaluation")
    ctx.results.update(engine=engine, ap_int8=values)
    ctx.summary.append(f"INT8 engine: {engine} ({_ap(values)}; the .tlt {_ap(ctx.results['ap_retrained'])})")


def infer(ctx: DemoContext) -> None:
    out = ctx.results["final"] / "inference"
    run_command(["tlt-infer", ctx.results["arch"], "-e", str(ctx.results["retrain_spec"]), "-m",
                 str(ctx.results["engine"]), "-i", str(ctx.results["val_images"]), "-o", str(out), "-k", KEY])
    ctx.summary.append(f"inference on the INT8 engine: {out / 'images_annotated'}, {out / 'labels'} and {out / 'masks'}")


def instance_steps(arch: str) -> list[DemoStep]:
    """The demo of one instance segmenter ``arch`` (it must have ``demo_spec``)."""

    def choose(ctx: DemoContext) -> None:
        ctx.results["arch"] = arch

    return [
        DemoStep(f"use {arch}", choose),
        DemoStep("generate COCO sample data with masks", generate_data),
        DemoStep("convert to TFRecords (tlt-dataset-convert)", convert),
        DemoStep(f"train (tlt-train {arch})", train),
        DemoStep(f"evaluate (tlt-evaluate {arch})", evaluate),
        DemoStep("prune (tlt-prune)", prune),
        DemoStep(f"retrain the pruned model (tlt-train {arch}, pruned_model_path)", retrain),
        DemoStep("export INT8 (tlt-export --gen_ds_config)", export_int8),
        DemoStep("build and evaluate the INT8 engine (tlt-converter, tlt-evaluate)", convert_engine),
        DemoStep(f"segment the validation frames with the engine (tlt-infer {arch})", infer),
    ]
