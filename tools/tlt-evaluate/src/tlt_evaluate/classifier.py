"""``tlt-evaluate ARCH`` for every classifier (000 §9.1): loss, top-k accuracy, per-class precision/recall,
confusion matrix.

The model file decides the label indices (its ``classes``, in output order) and the input
preprocessing (``input_shape``, ``preprocess_mode``, ``image_mean``, ``interpolation``); the architecture's
``classifier_evaluation`` (``libtlt.registry.ClassifierEvaluation``) reads its spec for the dataset (for
classification: ``eval_config.eval_dataset_path`` / 003 ``evaluate.dataset_path``), the model path unless ``-m``
is given, ``top_k``, ``batch_size`` and the centre crop setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from libtlt.errors import DataError, ModelFileError
from libtlt.log import get_logger
from libtlt.metrics.classification import (
    ClassificationReport,
    evaluate_predictions,
    format_report,
    write_confusion_png,
    write_report_json,
)

logger = get_logger("tlt_evaluate.classifier")

DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 32
REPORT_FILE = "evaluation.json"
CONFUSION_FILE = "confusion_matrix.png"


def evaluate_classifier(arch_name: str, experiment_spec_file: str | Path, key: str | None,
                        model: str | Path | None = None, *, results_dir: str | Path | None = None,
                        batch_size: int | None = None, framework: str | None = None) -> ClassificationReport:
    """Evaluate a classifier's ``.tlt``/``.etlt``/engine on the spec's evaluation dataset; print and write the
    report. ``framework`` (``-f``): tlt, onnxruntime or tensorrt; ``None`` picks by the model file."""
    from libtlt.data.classification import ClassMap, input_config_from_metadata, make_dataset, scan_folder
    from libtlt.registry import get_architecture
    from libtlt.spec import load_spec

    arch = get_architecture(arch_name)
    spec = load_spec(experiment_spec_file, arch.spec_message())
    arch.validate(spec)
    setup = arch.classifier_evaluation(spec)
    model_path = model or setup.model_path
    if not model_path:
        raise spec.error(f"{setup.section}.{setup.model_field}",
                         f"no model to evaluate: pass -m/--model or set {setup.model_field} in {setup.section}")
    dataset_path = setup.dataset_path
    if not dataset_path:
        raise spec.error(f"{setup.section}.{setup.dataset_field}", "the spec does not say which dataset to evaluate: "
                                                                   f"set {setup.section}.{setup.dataset_field}")
    if batch_size is not None and batch_size < 1:
        raise click.BadParameter(f"must be >= 1, got {batch_size}", param_hint="--batch_size")
    batch = batch_size or setup.batch_size or DEFAULT_BATCH_SIZE
    top_k = setup.top_k or DEFAULT_TOP_K

    predictor = _load_model(model_path, key, framework, arch_name)
    metadata = predictor.metadata
    classes = metadata.get("classes")
    spec_config = setup.input_config
    if predictor.framework != "tlt" and not classes and "input_shape" not in metadata:
        # An engine records no classes or preprocessing: the spec's (sorted class folders) are used.
        logger.info("The engine records no classes or preprocessing; using the spec's and the dataset's folders")
        classes = list(scan_folder(dataset_path).class_map.names)
        metadata = {**metadata, "classes": classes, "input_shape": list(spec_config.shape),
                    "preprocess_mode": spec_config.preprocess_mode,
                    "image_mean": list(spec_config.image_mean) if spec_config.image_mean else None,
                    "interpolation": spec_config.interpolation}
    if not isinstance(classes, list) or not classes:
        raise ModelFileError("the model metadata lists no classes", location=model_path)
    class_map = ClassMap(tuple(str(c) for c in classes))
    config = input_config_from_metadata(metadata, source=model_path, center_crop=spec_config.center_crop)
    spec_shape = spec_config.shape
    if spec_shape != config.shape:
        logger.warning("The spec's input_image_size %s differs from the model's input shape %s; the model's is used",
                       ",".join(map(str, spec_shape)), ",".join(map(str, config.shape)))

    index = scan_folder(dataset_path, class_map)
    logger.info("Evaluating %s on %d images of %d classes from %s", model_path, len(index), len(class_map),
                dataset_path)
    scores = _predict(predictor, make_dataset(index, config, batch_size=batch, training=False), len(index))
    _check_outputs(scores, len(class_map), model_path)
    report = evaluate_predictions(np.asarray(index.labels), scores, class_map.names, top_k=top_k)
    click.echo(format_report(report))

    out_dir = Path(results_dir) if results_dir else Path(model_path).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    data.update({"model": str(model_path), "dataset": str(dataset_path),
                 "skipped_images": [[str(p), reason] for p, reason in index.skipped]})
    write_report_json(out_dir / REPORT_FILE, data)
    write_confusion_png(out_dir / CONFUSION_FILE, report.confusion_matrix(), class_map.names)
    logger.info("Wrote %s and %s", out_dir / REPORT_FILE, out_dir / CONFUSION_FILE)
    return report


def _load_model(path: str | Path, key: str | None, framework: str | None, arch_name: str) -> Any:
    from libtlt.runtime.predictor import make_predictor

    return make_predictor(path, key, framework, architecture=arch_name)


def _check_outputs(scores: np.ndarray, num_classes: int, path: str | Path) -> None:
    outputs = int(scores.shape[-1])
    if outputs != num_classes:
        raise ModelFileError(f"the network has {outputs} outputs but its metadata lists {num_classes} classes",
                             location=path)


def _predict(predictor: Any, dataset: Any, total: int) -> np.ndarray:
    import tensorflow as tf

    from libtlt.log import progress

    results = []
    with progress(total=total, unit="img", desc="Evaluating", leave=False) as bar:
        try:
            for images, _ in dataset:
                results.append(np.asarray(predictor.first(np.asarray(images)), dtype=np.float64))
                bar.update(int(images.shape[0]))
        except tf.errors.OpError as err:
            raise DataError(f"an image of the dataset cannot be decoded ({err.message.splitlines()[0]})") from None
    return np.concatenate(results, axis=0)
