"""``python -m libtlt.demo --arch ARCH OUTDIR``: one box detector through every tool, as commands, on the demo's
detection data: tlt-augment → tlt-dataset-convert → tlt-train → tlt-evaluate → tlt-prune → retrain (``-m``) →
tlt-export INT8 (calibration from the spec's training loader) → tlt-converter → tlt-evaluate and tlt-infer on
the engine.

Nothing here names an architecture: the spec comes from the architecture's ``demo_spec`` (its default spec on the
demo's records and size, for a from-scratch model on a CPU) and tlt-infer's arguments from ``demo_inference_args``;
the engine's outputs are its ``deployed_output_names`` (or ``export_outputs``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from libtlt.demo.context import KEY, DemoContext, DemoStep, run_command
from libtlt.demo.data_steps import DETECTION_SIZE
from libtlt.io.atomic import write_text


def arch_of(ctx: DemoContext) -> Any:
    """The architecture the demo runs (``ctx.results["arch"]``)."""
    from libtlt.registry import get_architecture

    return get_architecture(ctx.results["arch"])


def arch_folder(ctx: DemoContext, *parts: str) -> Path:
    """Where its outputs go: ``OUTDIR/<arch>/<parts>``."""
    return (ctx.outdir / ctx.results["arch"]).resolve().joinpath(*parts)


def _spec(ctx: DemoContext, epochs: int) -> str:
    width, height = DETECTION_SIZE
    train, val = ctx.results["tfrecords"].resolve(), ctx.results["tfrecords_val"].resolve()
    return str(arch_of(ctx).demo_spec(train_records=f"{train}/kitti-*", train_images=ctx.results["detection_train"].resolve(),
                                    val_records=f"{val}/val-*",
                                    val_images=Path(ctx.results["detection_val"].root).resolve(), width=width,
                                    height=height, epochs=epochs))


def _evaluate(ctx: DemoContext, spec: Path, model: Path, out: Path) -> float:
    run_command(["tlt-evaluate", ctx.results["arch"], "-e", str(spec), "-m", str(model), "-k", KEY, "-r", str(out)])
    report: dict[str, Any] = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    return float(report["mean_average_precision"] or 0.0)


def train(ctx: DemoContext) -> None:
    name = ctx.results["arch"]
    results = arch_folder(ctx, "unpruned")
    shutil.rmtree(results, ignore_errors=True)
    spec = ctx.outdir / "specs" / f"{name}_train.txt"
    write_text(spec, _spec(ctx, ctx.size.detection_epochs))
    run_command(["tlt-train", name, "-e", str(spec), "-r", str(results), "-k", KEY, "-n", name])
    ctx.results["spec"], ctx.results["model"] = spec, results / "weights" / f"{name}.tlt"
    ctx.summary.append(f"{name} model: {ctx.results['model']} (log: {results / 'status.json'})")


def evaluate(ctx: DemoContext) -> None:
    value = _evaluate(ctx, ctx.results["spec"], ctx.results["model"], arch_folder(ctx, "unpruned", "evaluation"))
    ctx.results["map_unpruned"] = value
    ctx.summary.append(f"{ctx.results['arch']} validation mAP: {value:.3f}")


def prune(ctx: DemoContext) -> None:
    pruned = arch_folder(ctx, "pruned", f"{ctx.results['arch']}_pruned.tlt")
    pruned.parent.mkdir(parents=True, exist_ok=True)
    run_command(["tlt-prune", "-m", str(ctx.results["model"]), "-o", str(pruned), "--keep_ratio",
                 str(ctx.size.keep_ratio), "-k", KEY])
    report = json.loads(pruned.with_suffix(".json").read_text(encoding="utf-8"))
    ctx.results["pruned"] = pruned
    ctx.summary.append(f"pruned model: {pruned} (parameters {report['params_before']:,} -> {report['params_after']:,},"
                       f" ratio {report['pruning_ratio']:.3f})")


def retrain(ctx: DemoContext) -> None:
    name = f"{ctx.results['arch']}_pruned"
    results = arch_folder(ctx, "retrained")
    shutil.rmtree(results, ignore_errors=True)
    spec = ctx.outdir / "specs" / f"{name}_retrain.txt"
    write_text(spec, _spec(ctx, ctx.size.retrain_epochs))
    run_command(["tlt-train", ctx.results["arch"], "-e", str(spec), "-r", str(results), "-k", KEY, "-n", name,
                 "-m", str(ctx.results["pruned"])])
    model = results / "weights" / f"{name}.tlt"
    value = _evaluate(ctx, spec, model, results / "evaluation")
    ctx.results.update(retrain_spec=spec, retrained=model, map_retrained=value)
    ctx.summary.append(f"retrained pruned model: {model} (validation mAP {value:.3f}; unpruned "
                       f"{ctx.results['map_unpruned']:.3f})")


def export_int8(ctx: DemoContext) -> None:
    final = arch_folder(ctx, "final")
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    etlt, cal = final / f"{ctx.results['arch']}.etlt", final / "calibration.bin"
    run_command(["tlt-export", ctx.results["arch"], "-m", str(ctx.results["retrained"]), "-k", KEY, "-o", str(etlt),
                 "-e", str(ctx.results["retrain_spec"]), "--data_type", "int8", "--cal_cache_file", str(cal),
                 "--batches", "10", "--batch_size", "4", "--gen_ds_config"])
    ctx.results.update(etlt=etlt, cal_bin=cal, final=final)
    ctx.summary.append(f"exported: {etlt} with INT8 calibration cache {cal} and {final / 'nvinfer_config.txt'}")


def convert(ctx: DemoContext) -> None:
    from libtlt.demo.detection_steps import _tensorrt_installed
    from libtlt.spec import load_spec

    arch = arch_of(ctx)
    spec = load_spec(ctx.results["retrain_spec"], arch.spec_message())
    channels, height, width = arch.input_shape(spec)
    outputs = (arch.deployed_output_names(spec) if hasattr(arch, "deployed_output_names")
               else arch.export_outputs(spec))
    engine = ctx.results["final"] / f"{ctx.results['arch']}_int8.engine"
    backend = ["--backend", "onnxruntime"] if not _tensorrt_installed() else []
    run_command(["tlt-converter", str(ctx.results["etlt"]), "-k", KEY, "-d", f"{channels},{height},{width}",
                 "-o", ",".join(outputs), "-c", str(ctx.results["cal_bin"]), "-t", "int8", "-b", "4", "-m", "8",
                 "-e", str(engine), *backend])
    value = _evaluate(ctx, ctx.results["retrain_spec"], engine, ctx.results["final"] / "evaluation")
    ctx.results.update(engine=engine, map_int8=value)
    ctx.summary.append(f"INT8 engine: {engine} (validation mAP {value:.3f}; the .tlt {ctx.results['map_retrained']:.3f})")


def infer(ctx: DemoContext) -> None:
    out = ctx.results["final"] / "inference"
    images = Path(ctx.results["detection_val"].image_dir).resolve()
    args = arch_of(ctx).demo_inference_args(ctx.results["retrain_spec"], ctx.results["engine"], images)
    run_command(["tlt-infer", ctx.results["arch"], *[str(a) for a in args], "-o", str(out), "-k", KEY])
    ctx.summary.append(f"inference on the INT8 engine: {out / 'images_annotated'} and {out / 'labels'}")


def arch_steps(arch: str) -> list[DemoStep]:
    """The demo of one box detector ``arch`` (it must have ``demo_spec`` and ``demo_inference_args``), or of an
    instance segmenter (``libtlt.demo.instance_steps``)."""
    from libtlt.demo import data_steps as data
    from libtlt.errors import UnsupportedError
    from libtlt.registry import INSTANCE_SEGMENTER, get_architecture

    found = get_architecture(arch)
    if found.task == INSTANCE_SEGMENTER and hasattr(found, "demo_spec"):
        from libtlt.demo.instance_steps import instance_steps

        return instance_steps(arch)
    if not (hasattr(found, "demo_spec") and hasattr(found, "demo_inference_args")):
        raise UnsupportedError(f"the demo has no pipeline for '{arch}' (it needs the architecture's demo_spec and "
                               "demo_inference_args)")

    def choose(ctx: DemoContext) -> None:
        ctx.results["arch"] = arch

    return [
        DemoStep(f"use {arch}", choose),
        DemoStep("generate detection sample data", data.generate_detection_data),
        DemoStep("augment the detection data (tlt-augment)", data.augment_detection_data),
        DemoStep("convert to TFRecords (tlt-dataset-convert)", data.convert_to_tfrecords),
        DemoStep(f"train (tlt-train {arch})", train),
        DemoStep(f"evaluate (tlt-evaluate {arch})", evaluate),
        DemoStep("prune (tlt-prune)", prune),
        DemoStep(f"retrain the pruned model (tlt-train {arch} -m)", retrain),
        DemoStep("export INT8 (tlt-export)", export_int8),
        DemoStep("build and evaluate the INT8 engine (tlt-converter, tlt-evaluate)", convert),
        DemoStep(f"detect objects with the engine (tlt-infer {arch})", infer),
    ]
