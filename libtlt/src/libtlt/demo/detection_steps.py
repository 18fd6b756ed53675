"""Demo steps of the DetectNet_v2 workflow, as the manual's notebook runs them: tlt-train → tlt-evaluate →
tlt-prune → retrain → tlt-infer, then deployment: tlt-int8-tensorfile → tlt-export (INT8) → tlt-converter →
tlt-evaluate / tlt-infer on the engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from libtlt.demo.context import KEY, DemoContext, run_command
from libtlt.demo.data_steps import DETECTION_SIZE
from libtlt.io.atomic import write_text
from libtlt.spec.edits import edit_spec_text

CLASSES = ("car", "pedestrian", "cyclist")
OUTPUTS = "output_cov/Sigmoid,output_bbox/BiasAdd"
LAYERS = 10
MODEL_NAME = f"resnet{LAYERS}_detector"
#: Edits of the architecture's default spec (the manual's sample spec at 480×272) for a from-scratch model
#: on a 2-core CPU: a higher coverage foreground weight, fixed objective weights, a larger learning rate,
#: a wider DBSCAN eps, an IoU of 0.5 for cars (measured: resnet10 reaches mAP ≈ 0.7 in about 10 minutes).
TRAINING_EDITS = {
    "num_layers: 18": f"num_layers: {LAYERS}",
    "batch_size_per_gpu: 8": "batch_size_per_gpu: 4",
    "coverage_foreground_weight: 0.05": "coverage_foreground_weight: 0.75",
    "max_learning_rate: 5e-04": "max_learning_rate: 2e-03",
    "soft_start: 0.1": "soft_start: 0.05",
    "annealing: 0.7": "annealing: 0.6",
    "enable_autoweighting: true": "enable_autoweighting: false",
    "initial_weight: 10.0": "initial_weight: 1.0",
    "dbscan_eps: 0.15": "dbscan_eps: 0.5",
    'key: "car" value: 0.7 }': 'key: "car" value: 0.5 }',
}


def training_spec(ctx: DemoContext, *, epochs: int, pretrained: Path | None = None) -> str:
    """The default spec on the demo's records (held-out validation records); retraining a pruned model
    loads its graph and drops the regularizer, as the manual advises."""
    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture

    text = DetectNetV2Architecture().default_spec()
    train, val = ctx.results["tfrecords"].resolve(), ctx.results["tfrecords_val"].resolve()
    edits = {
        **TRAINING_EDITS,
        "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": f"{train}/kitti-*",
        "/workspace/tlt-experiments/data/training": str(ctx.results["detection_train"].resolve()),
        "  validation_fold: 0\n": (f'  validation_data_source {{\n    tfrecords_path: "{val}/val-*"\n'
                                   f'    image_directory_path: "{Path(ctx.results["detection_val"].root).resolve()}"'
                                   "\n  }\n"),
        "num_epochs: 80": f"num_epochs: {epochs}",
        "checkpoint_interval: 10": f"checkpoint_interval: {epochs}",
        "validation_period_during_training: 10": f"validation_period_during_training: {epochs}",
        "first_validation_epoch: 10": f"first_validation_epoch: {epochs}",
    }
    if pretrained is not None:
        edits['arch: "resnet"'] = f'arch: "resnet"\n  pretrained_model_file: "{pretrained}"\n  load_graph: true'
        edits["type: L1\n    weight: 3e-09"] = "type: NO_REG\n    weight: 0.0"
    return edit_spec_text(text, edits, "the default DetectNet_v2 spec")


def inference_spec(model: Path) -> str:
    """tlt-infer's spec (000 §7.2.9): the model (a .tlt, .etlt or engine), its classes and the bbox handler.

    The aggregate-coverage threshold 1.0 keeps the trained model's objects (confidences ≈ 2–10) and drops
    the faint clusters (≈ 0.3) that the evaluation's precision-recall curve accounts for anyway."""
    from libtlt.archs.detectnet_v2.detectnet_v2_inference import inference_spec_text

    width, height = DETECTION_SIZE
    colors = {"car": (0, 255, 0), "pedestrian": (255, 0, 0), "cyclist": (0, 0, 255)}
    return inference_spec_text(model, CLASSES, width, height, confidence_threshold=1.0, dbscan_eps=0.5,
                               batch_size=4, colors=colors)


def _evaluate(ctx: DemoContext, spec: Path, model: Path, out: Path, framework: str | None = None) -> float:
    args = ["tlt-evaluate", "detectnet_v2", "-e", str(spec), "-m", str(model), "-k", KEY, "-r", str(out)]
    run_command(args + (["-f", framework] if framework else []))
    report: dict[str, Any] = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    return float(report["mean_average_precision"] or 0.0)


def train_detectnet(ctx: DemoContext) -> None:
    results = (ctx.outdir / "detectnet_v2" / "unpruned").resolve()
    shutil.rmtree(results, ignore_errors=True)
    spec = ctx.outdir / "specs" / "detectnet_v2_train.txt"
    write_text(spec, training_spec(ctx, epochs=ctx.size.detection_epochs))
    run_command(["tlt-train", "detectnet_v2", "-e", str(spec), "-r", str(results), "-k", KEY, "-n", MODEL_NAME])
    ctx.results["detectnet_spec"] = spec
    ctx.results["detectnet_model"] = results / "weights" / f"{MODEL_NAME}.tlt"
    ctx.summary.append(f"DetectNet_v2 model: {ctx.results['detectnet_model']} (log: {results / 'status.json'})")


def evaluate_detectnet(ctx: DemoContext) -> None:
    model = ctx.results["detectnet_model"]
    value = _evaluate(ctx, ctx.results["detectnet_spec"], model, model.parent.parent / "evaluation")
    ctx.results["map_unpruned"] = value
    ctx.summary.append(f"DetectNet_v2 validation mAP: {value:.3f}")


def prune_detectnet(ctx: DemoContext) -> None:
    """tlt-prune with ``--keep_ratio``: the ``-pth`` that keeps ``keep_ratio`` of the parameters."""
    pruned = (ctx.outdir / "detectnet_v2" / "pruned" / f"{MODEL_NAME}_pruned.tlt").resolve()
    pruned.parent.mkdir(parents=True, exist_ok=True)
    run_command(["tlt-prune", "-m", str(ctx.results["detectnet_model"]), "-o", str(pruned), "--keep_ratio",
                 str(ctx.size.keep_ratio), "-k", KEY])
    report = json.loads(pruned.with_suffix(".json").read_text(encoding="utf-8"))
    threshold = report["options"]["pruning_threshold"]
    ctx.results["detectnet_pruned"] = pruned
    ctx.summary.append(f"pruned model: {pruned} (-pth {threshold}; parameters {report['params_before']:,} -> "
                       f"{report['params_after']:,}, ratio {report['pruning_ratio']:.3f}; weights "
                       f"{report['weights_before_bytes'] / 2**20:.2f} -> {report['weights_after_bytes'] / 2**20:.2f} MiB)")


def retrain_detectnet(ctx: DemoContext) -> None:
    results = (ctx.outdir / "detectnet_v2" / "retrained").resolve()
    shutil.rmtree(results, ignore_errors=True)
    spec = ctx.outdir / "specs" / "detectnet_v2_retrain.txt"
    write_text(spec, training_spec(ctx, epochs=ctx.size.retrain_epochs, pretrained=ctx.results["detectnet_pruned"]))
    name = f"{MODEL_NAME}_pruned"
    run_command(["tlt-train", "detectnet_v2", "-e", str(spec), "-r", str(results), "-k", KEY, "-n", name])
    model = results / "weights" / f"{name}.tlt"
    value = _evaluate(ctx, spec, model, results / "evaluation")
    ctx.results["detectnet_retrain_spec"] = spec
    ctx.results["detectnet_retrained"] = model
    ctx.results["map_retrained"] = value
    ctx.summary.append(f"retrained pruned model: {model} (validation mAP {value:.3f}; unpruned "
                       f"{ctx.results['map_unpruned']:.3f})")


def infer_detectnet(ctx: DemoContext) -> None:
    out = (ctx.outdir / "detectnet_v2" / "inference").resolve()
    spec = ctx.outdir / "specs" / "detectnet_v2_infer.txt"
    write_text(spec, inference_spec(ctx.results["detectnet_retrained"]))
    images = Path(ctx.results["detection_val"].image_dir)
    run_command(["tlt-infer", "detectnet_v2", "-e", str(spec), "-i", str(images), "-o", str(out), "-k", KEY])
    ctx.summary.append(f"DetectNet_v2 inference: {out / 'images_annotated'} and {out / 'labels'}")


def export_int8(ctx: DemoContext) -> None:
    """Calibration batches from the training data loader (tlt-int8-tensorfile), then tlt-export INT8."""
    final = (ctx.outdir / "detectnet_v2" / "final").resolve()
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    tensors = final / "calibration.tensor"
    run_command(["tlt-int8-tensorfile", "detectnet_v2", "-e", str(ctx.results["detectnet_retrain_spec"]),
                 "-o", str(tensors), "-m", "10"])
    etlt, cal = final / f"{MODEL_NAME}.etlt", final / "calibration.bin"
    run_command(["tlt-export", "detectnet_v2", "-m", str(ctx.results["detectnet_retrained"]), "-k", KEY,
                 "-o", str(etlt), "--data_type", "int8", "--cal_data_file", str(tensors), "--cal_cache_file",
                 str(cal), "--batches", "10", "--batch_size", "4", "--gen_ds_config"])
    ctx.results["etlt"], ctx.results["cal_bin"], ctx.results["final"] = etlt, cal, final
    ctx.summary.append(f"exported: {etlt} with INT8 calibration cache {cal} and {final / 'nvinfer_config.txt'}")


def convert_engine(ctx: DemoContext) -> None:
    """tlt-converter as on a Jetson; here onnxruntime builds the INT8 engine (TensorRT is not installed)."""
    width, height = DETECTION_SIZE
    engine = ctx.results["final"] / f"{MODEL_NAME}_int8.engine"
    backend = ["--backend", "onnxruntime"] if not _tensorrt_installed() else []
    run_command(["tlt-converter", str(ctx.results["etlt"]), "-k", KEY, "-d", f"3,{height},{width}", "-o", OUTPUTS,
                 "-c", str(ctx.results["cal_bin"]), "-t", "int8", "-b", "4", "-m", "8", "-e", str(engine), *backend])
    ctx.results["engine"] = engine
    ctx.summary.append(f"INT8 engine: {engine}")


def evaluate_engine(ctx: DemoContext) -> None:
    engine = ctx.results["engine"]
    value = _evaluate(ctx, ctx.results["detectnet_retrain_spec"], engine, ctx.results["final"] / "evaluation")
    ctx.results["map_int8"] = value
    ctx.summary.append(f"INT8 engine validation mAP: {value:.3f} (the .tlt: {ctx.results['map_retrained']:.3f})")


def infer_engine(ctx: DemoContext) -> None:
    out = ctx.results["final"] / "inference"
    spec = ctx.outdir / "specs" / "detectnet_v2_infer_engine.txt"
    write_text(spec, inference_spec(ctx.results["engine"]))
    images = Path(ctx.results["detection_val"].image_dir)
    run_command(["tlt-infer", "detectnet_v2", "-e", str(spec), "-i", str(images), "-o", str(out), "-k", KEY])
    ctx.summary.append(f"inference on the INT8 engine: {out / 'images_annotated'}")


def _tensorrt_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None
