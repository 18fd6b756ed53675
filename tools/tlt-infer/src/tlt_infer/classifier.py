"""``tlt-infer ARCH`` for every classifier (000 §10.1): class label of one image, or ``result.csv`` for a directory.

Nothing comes from the architecture but the model loading: the class map (``-cm classmap.json``, written by training) must list the model's classes in its
output order. Images are resized and preprocessed exactly as ``tlt-evaluate`` does, from the model's
metadata. ``result.csv`` (in the image directory) has one row per image: path, label, confidence.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from libtlt.errors import DataError, TltError
from libtlt.io.atomic import atomic_open
from libtlt.io.images import is_image_file
from libtlt.log import get_logger
from libtlt.workers import thread_map

logger = get_logger("tlt_infer.classifier")

RESULT_FILE = "result.csv"
_CHECK_THREADS = 8


def infer_classifier(arch_name: str, model: str | Path, key: str | None, class_map: str | Path,
                     image: str | Path | None = None, image_dir: str | Path | None = None, batch_size: int = 1,
                     framework: str | None = None) -> list[tuple[str, str, float]]:
    """Classify ``image`` (printed) or every image in ``image_dir`` (written to ``image_dir/result.csv``).

    ``model`` is a ``.tlt``, an ``.etlt`` or an engine; ``framework`` (``-f``) as in ``libtlt.runtime.predictor``.
    """
    from libtlt.data.classification import ClassMap, input_config_from_metadata
    from libtlt.runtime.predictor import make_predictor

    if (image is None) == (image_dir is None):
        raise TltError("give exactly one of -i/--image (one image) and -d/--image_dir (a directory)")
    if batch_size < 1:
        raise TltError(f"--batch_size must be >= 1, got {batch_size}")
    classes = ClassMap.from_file(class_map)
    if image is not None:
        _check_single(Path(image))
    else:
        _check_directory(Path(image_dir))  # type: ignore[arg-type]
    keras_model = make_predictor(model, key, framework, architecture=arch_name)
    metadata = keras_model.metadata
    model_classes = metadata.get("classes")
    if isinstance(model_classes, list) and model_classes and tuple(map(str, model_classes)) != classes.names:
        raise DataError(f"the class map ({', '.join(classes.names)}) does not match the model's classes in output "
                        f"order ({', '.join(map(str, model_classes))})", location=class_map)
    config = input_config_from_metadata(metadata, source=model)
    channels, height, width = config.shape
    outputs = int(keras_model.first(np.zeros((1, channels, height, width), np.float32)).shape[-1])
    if outputs != len(classes):
        raise DataError(f"the class map has {len(classes)} classes but the model has {outputs} outputs",
                        location=class_map)

    if image is not None:
        from libtlt.data.classification import load_images_for_inference

        scores = np.asarray(keras_model.first(np.asarray(load_images_for_inference([image], config))))
        row = _row(str(image), scores[0], classes.names)
        click.echo(f"{row[0]} {row[1]} {_confidence(row[2])}")
        return [row]

    directory = Path(image_dir)  # type: ignore[arg-type]
    paths = _usable_images(directory)
    rows = _predict_all(keras_model, paths, config, batch_size, classes.names)
    with atomic_open(directory / RESULT_FILE, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for path, label, confidence in rows:
            writer.writerow([path, label, _confidence(confidence)])
    logger.info("Wrote %d predictions to %s", len(rows), directory / RESULT_FILE)
    return rows


def _confidence(value: float) -> str:
    return f"{value:.4f}"


def _row(path: str, scores: np.ndarray, names: Sequence[str]) -> tuple[str, str, float]:
    best = int(np.argmax(scores))
    return path, names[best], float(scores[best])


def _check_single(path: Path) -> None:
    from libtlt.data.classification import check_image

    if not path.exists():
        raise DataError("image not found", location=path)
    if path.is_dir():
        raise DataError("expected an image file, found a directory (use -d/--image_dir for directories)",
                        location=path)
    reason = check_image(path)
    if reason is not None:
        raise DataError(reason, location=path)


def _check_directory(directory: Path) -> None:
    if not directory.exists():
        raise DataError("image directory not found", location=directory)
    if not directory.is_dir():
        raise DataError("expected a directory of images (use -i/--image for one image)", location=directory)


def _usable_images(directory: Path) -> list[Path]:
    """The directory's .jpg/.jpeg/.png files (sorted); unreadable ones are skipped with a warning."""
    from libtlt.data.classification import check_image

    candidates = sorted(directory / name for name in os.listdir(directory)
                        if not name.startswith(".") and is_image_file(name) and (directory / name).is_file())
    if not candidates:
        raise DataError("no .jpg, .jpeg or .png images in this directory", location=directory)
    reasons = thread_map(check_image, candidates, _CHECK_THREADS)  # Ctrl-C stops it at once
    bad = [(p, r) for p, r in zip(candidates, reasons, strict=True) if r is not None]
    for path, reason in bad:
        logger.warning("Skipping %s: %s", path, reason)
    usable = [p for p, r in zip(candidates, reasons, strict=True) if r is None]
    if not usable:
        raise DataError("none of the images in this directory can be read", location=directory)
    return usable


def _predict_all(model: Any, paths: list[Path], config: Any, batch_size: int,
                 names: Sequence[str]) -> list[tuple[str, str, float]]:
    import tensorflow as tf

    from libtlt.data.classification import load_images_for_inference, make_inference_dataset
    from libtlt.log import progress

    rows: list[tuple[str, str, float]] = []
    pending = list(paths)
    with progress(total=len(paths), unit="img", desc="Inference", leave=False) as bar:
        while pending:
            done = 0
            try:
                for images in make_inference_dataset(pending, config, batch_size=batch_size):
                    scores = np.asarray(model.first(np.asarray(images)))
                    batch = pending[done:done + len(scores)]
                    rows += [_row(str(p), s, names) for p, s in zip(batch, scores, strict=True)]
                    done += len(scores)
                    bar.update(len(scores))
                pending = []
            except tf.errors.OpError:
                # A file passed the cheap check but does not decode: find it, skip it, go on.
                pending = pending[done:]
                for index, path in enumerate(pending[:batch_size]):
                    try:
                        load_images_for_inference([path], config)
                    except DataError as err:
                        logger.warning("Skipping %s: %s", path, err.message)
                        del pending[index]
                        bar.update(1)
                        break
                else:
                    raise
    if not rows:
        raise DataError("none of the images could be decoded", location=paths[0].parent)
    return rows

