"""``tlt-evaluate ARCH`` for every box detector (000 §9): per-class average precision and mAP.

One path for all of them; the architecture (``libtlt.registry``, task ``box_detector``) supplies what differs:
its classes and input shape, the evaluated batches (``evaluation_batches``: preprocessed images and ground truth
in network-input pixels; a truth with ``difficult`` flags has them passed on as the evaluator's ``gt_difficult``,
VOC's difficult boxes), a data check (``check_evaluation_data``), the decoding of the network outputs into
boxes (``decode``) and the AP evaluator of its spec (``evaluator``: DetectNet_v2's ``evaluation_config``, ...).
The model's recorded classes and input shape must agree with the spec's. Results: the table on stdout,
``evaluation.json`` and one precision-recall curve per class (``precision_recall_<class>.png``) in the results
directory (default: the model's directory), each written atomically. As an extra report, the same detections
are scored with COCO's metrics through pycocotools (``libtlt.metrics.coco``): one line on stdout and the 12
numbers under ``coco_bbox`` in ``evaluation.json``.

``-f tlt|onnxruntime|tensorrt`` (default: by the model file): a ``.tlt`` runs with Keras, an ``.etlt`` or an
onnxruntime engine with onnxruntime, a TensorRT engine (or ``-f tensorrt``) with TensorRT, which must be installed
(else exit status 2 with the install hint). The pre- and post-processing are the same for all.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from libtlt.errors import DataError, ModelFileError
from libtlt.log import get_logger
from libtlt.metrics.coco import CocoEvaluator

logger = get_logger("tlt_evaluate.box_detector")

REPORT_FILE = "evaluation.json"
PR_CURVE_PATTERN = "precision_recall_{}.png"


def pr_curve_file(class_name: str) -> str:
    """``precision_recall_<class>.png`` with characters unsafe in file names replaced by ``_``."""
    return PR_CURVE_PATTERN.format(re.sub(r"[^A-Za-z0-9_.-]", "_", class_name) or "_")


def evaluate_box_detector(arch_name: str, experiment_spec_file: str | Path, model: str | Path | None,
                          key: str | None, *,
                          use_training_set: bool = False, framework: str | None = None,
                          results_dir: str | Path | None = None, batch_size: int | None = None) -> Any:
    """Evaluate a box detector's model; print the table and write the report and PR curves. Returns the
    evaluator's result (per-class AP, mAP)."""
    from libtlt.registry import get_architecture
    from libtlt.runtime.predictor import make_predictor
    from libtlt.spec import load_spec

    arch = get_architecture(arch_name)
    spec = load_spec(experiment_spec_file, arch.spec_message())
    arch.validate(spec)
    if model is None:  # the spec's model, where the architecture's spec names one (FasterRCNN's evaluation_config)
        from_spec = getattr(arch, "evaluation_model", None)
        model = from_spec(spec) if from_spec is not None else None
        if model is None:
            raise click.UsageError("missing -m MODEL (the spec names no model to evaluate)")
        logger.info("Evaluating the spec's model %s", model)
    classes = arch.class_names(spec)
    arch.check_evaluation_data(spec, classes, use_training_set)
    predictor = make_predictor(model, key, framework, architecture=arch.name)
    metadata = predictor.metadata
    if predictor.framework != "tlt" and "classes" not in metadata:  # an engine records no classes: the spec's
        metadata = {**metadata, "classes": list(classes)}
    _check_model(metadata, classes, arch.input_shape(spec), model, experiment_spec_file)
    _, height, width = arch.input_shape(spec)
    deployed = getattr(arch, "deployed_output_names", None)
    check_outputs(predictor, arch.output_names(spec), model, deployed(spec) if deployed is not None else None)

    evaluator = arch.evaluator(spec, classes)
    coco = CocoEvaluator(classes)  # the extra report: COCO's AP over IoU 0.50:0.95, by size, and AR
    num_images = 0
    seconds: list[float] = []
    import tensorflow as tf

    from libtlt.log import progress

    with progress(unit="img", desc="Evaluating", leave=False) as bar:
        try:
            for images, truths in arch.evaluation_batches(spec, use_training_set=use_training_set,
                                                          batch_size=batch_size):
                start = time.perf_counter()
                outputs = predictor(np.asarray(images))
                seconds.append((time.perf_counter() - start) / max(len(truths), 1))
                # A network of any input size (height, width −1) runs each batch at the images' own size (NCHW).
                size = (width, height) if height > 0 and width > 0 else (int(np.shape(images)[3]),
                                                                         int(np.shape(images)[2]))
                detections = arch.decode(spec, outputs, [size] * len(truths), classes)
                for found, truth in zip(detections, truths, strict=True):
                    difficult = getattr(truth, "difficult", None)
                    evaluator.add_image(found.boxes, found.confidences, found.class_ids, truth.boxes,
                                        truth.class_ids, **({} if difficult is None else {"gt_difficult": difficult}))
                    coco.add_image(found.boxes, found.confidences, found.class_ids, truth.boxes, truth.class_ids)
                    # A two-stage detector's proposals (from a .tlt) for its RPN recall.
                    proposals = getattr(found, "proposals", None)
                    if proposals is not None and hasattr(evaluator, "add_proposals"):
                        evaluator.add_proposals(proposals, truth.boxes, truth.class_ids)
                num_images += len(truths)
                bar.update(len(truths))
        except tf.errors.OpError as err:
            from libtlt.data.image_check import image_error

            raise (image_error(err.message)
                   or DataError(f"an image of the dataset cannot be read ({err.message.splitlines()[0]})")) from None
    result = evaluator.result()
    click.echo(format_table(result, median_seconds=float(np.median(seconds)) if seconds else None))
    extra = dict(getattr(result, "extra", {}) or {})
    for name, values in extra.items():  # e.g. FasterRCNN's rpn_recall per class
        if isinstance(values, dict):
            click.echo(f"{name}: " + ", ".join(f"{k} {_percent(float(v))}%" for k, v in values.items()))
    coco_stats = coco.result()
    click.echo(f"COCO bbox: AP@[.50:.95] {_coco(coco_stats['AP'])}, AP50 {_coco(coco_stats['AP50'])}, "
               f"AP75 {_coco(coco_stats['AP75'])} (all 12 numbers in {REPORT_FILE})")

    out_dir = Path(results_dir) if results_dir else Path(model).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = write_pr_curves(out_dir, result)
    report = report_dict(result, model=str(model), spec=str(experiment_spec_file), num_images=num_images,
                         use_training_set=use_training_set, pr_curves=curves)
    report["coco_bbox"] = coco_stats
    report.update({name: _numbers(values) for name, values in extra.items()})
    from libtlt.io.atomic import write_text

    write_text(out_dir / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    logger.info("Wrote %s and %d precision-recall curve(s) to %s", REPORT_FILE, len(curves), out_dir)
    return result


# --------------------------------------------------------------------------------------------- checks


def _check_model(metadata: dict[str, Any], classes: Sequence[str], shape: Sequence[int], model: str | Path,
                 spec_path: str | Path) -> None:
    found = [str(c) for c in metadata.get("classes") or []]
    if found != list(classes):
        raise ModelFileError(f"the model's classes [{', '.join(found)}] disagree with the classes "
                             f"[{', '.join(classes)}] of {spec_path}", location=model)
    recorded = metadata.get("input_shape")
    if recorded is not None and [int(v) for v in recorded] != [int(v) for v in shape]:
        raise ModelFileError(f"the model's input shape {list(recorded)} differs from the spec's network input "
                             f"{list(shape)} (C, H, W) of {spec_path}", location=model)


def check_outputs(model: Any, expected: Sequence[str], path: str | Path,
                   deployed: Sequence[str] | None = None) -> None:
    """The model has the architecture's raw outputs, or (an exported model whose graph ends in the architecture's
    post-processing) its ``deployed_output_names``."""
    names = [str(n) for n in getattr(model, "output_names", [])]
    if set(expected) <= set(names) or (deployed is not None and set(deployed) <= set(names)):
        return
    wanted = " and ".join(expected) + (f" (or {' and '.join(deployed)})" if deployed else "")
    raise ModelFileError(f"the network's outputs are [{', '.join(names)}], not {wanted}", location=path)


# -------------------------------------------------------------------------------------------- reports


def _percent(value: float) -> str:
    return "nan" if math.isnan(value) else f"{100.0 * value:.4f}"


def format_table(result: Any, *, median_seconds: float | None = None) -> str:
    """TLT's summary: the mAP line, then one row per class with its AP in percent."""
    header = ("class name", "average precision (in %)")
    rows = [(name, _percent(r.average_precision)) for name, r in result.classes.items()]
    name_width = max([len(header[0])] + [len(n) for n, _ in rows])
    value_width = len(header[1])
    lines = ["", f"Mean average_precision (in %): {_percent(result.mean_average_precision)}", "",
             f"{header[0]:<{name_width}}  {header[1]:>{value_width}}",
             f"{'-' * name_width}  {'-' * value_width}"]
    lines += [f"{name:<{name_width}}  {value:>{value_width}}" for name, value in rows]
    if median_seconds is not None:
        lines += ["", f"Median Inference Time: {median_seconds:.6f}"]
    return "\n".join(lines)


def _coco(value: float) -> str:
    return "n/a" if value < 0 else f"{value:.4f}"  # COCO's -1: nothing of that kind to measure


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _numbers(values: Any) -> Any:
    """An architecture's extra report values with NaN as ``null`` (JSON has no NaN)."""
    if isinstance(values, dict):
        return {str(k): _numbers(v) for k, v in values.items()}
    return _number(float(values)) if isinstance(values, (int, float)) else values


def report_dict(result: Any, *, model: str, spec: str, num_images: int, use_training_set: bool,
                pr_curves: dict[str, str]) -> dict[str, Any]:
    """``evaluation.json``: AP is a fraction in [0, 1] (``null`` for a class without ground truth)."""
    return {
        "model": model,
        "experiment_spec": spec,
        "dataset": "training+validation" if use_training_set else "validation",
        "num_images": num_images,
        "average_precision_mode": result.mode,
        "mean_average_precision": _number(result.mean_average_precision),
        "classes": {
            name: {
                "average_precision": _number(r.average_precision),
                "num_ground_truth": r.num_ground_truth,
                "num_true_positives": r.num_true_positives,
                "num_false_positives": r.num_false_positives,
                "precision_recall_curve": pr_curves.get(name),
            }
            for name, r in result.classes.items()
        },
    }


def render_pr_curve(class_result: Any, mode: str) -> bytes:
    """One class's precision-recall curve as PNG bytes (matplotlib's Agg canvas; no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0, 4.0), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    recall = np.concatenate([[0.0], np.asarray(class_result.recall, dtype=np.float64)])
    precision = np.concatenate([[1.0], np.asarray(class_result.precision, dtype=np.float64)])
    axes.step(recall, precision, where="post", color="tab:blue")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.set_xlabel("Recall")
    axes.set_ylabel("Precision")
    axes.grid(True, alpha=0.3)
    axes.set_title(f"{class_result.name}: AP {_percent(class_result.average_precision)}% ({mode})")
    figure.tight_layout()
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def write_pr_curves(out_dir: Path, result: Any) -> dict[str, str]:
    """Write ``precision_recall_<class>.png`` per class; returns {class: file name}."""
    from libtlt.io.atomic import write_bytes

    written = {}
    for name, class_result in result.classes.items():
        file_name = pr_curve_file(name)
        write_bytes(out_dir / file_name, render_pr_curve(class_result, result.mode))
        written[name] = file_name
    return written
