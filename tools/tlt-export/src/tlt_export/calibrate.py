"""INT8 calibration for tlt-export: where the batches come from, and the cal.bin.

Sources, in the order the manuals give them (000 §12, 001 export):

1. ``--cal_data_file``: a tensorfile from tlt-int8-tensorfile (at most ``--batches`` batches).
2. ``--cal_image_dir``: ``--batch_size`` × ``--batches`` images of the directory (jpg, jpeg, png; sub-folders
   included), preprocessed exactly as the model's metadata says; with ``--cal_data_file`` too, those
   batches are also written there as a tensorfile.
3. ``-e`` alone: the training data loader of the architecture (``calibration_batches`` of the registry, the
   batches tlt-int8-tensorfile writes), for architectures that have one; the others say so.

A model trained with QAT carries its learned activation ranges in its metadata (``qat.ranges`` by Keras
layer name, translated by ``tlt_export.qat_names``; or ``qat_scales``: graph tensor → amax); they are
written to the cal.bin as they are unless ``--force_ptq``. Calibration
never falls back to random data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from libtlt.errors import DataError, ModelFileError, UnsupportedError
from libtlt.io.calcache import ENTROPY_CALIBRATION_2, write_calibration_cache
from libtlt.io.images import IMAGE_EXTENSIONS
from libtlt.log import get_logger

logger = get_logger("tlt_export")

#: Default preprocessing of models whose metadata has no ``preprocess_mode`` (DetectNet_v2: RGB / 255).
DEFAULT_IMAGE_SCALE = 1.0 / 255.0
SAMPLE_SEED = 0


@dataclass(frozen=True)
class Preprocessing:
    """``y[c] = scale[c] * (x[c] - offsets[c])`` on an image in ``color_format`` (rgb, bgr or gray).

    ``mode`` is the classification ``preprocess_mode`` when the model has one (its images go through
    ``libtlt.data.classification``, resize and center crop included), else ``None``.
    """

    channels: int
    height: int
    width: int
    scale: tuple[float, ...]
    offsets: tuple[float, ...]
    color_format: str
    mode: str | None = None


def preprocessing_from_metadata(metadata: Mapping[str, Any], source: str | Path | None = None) -> Preprocessing:
    """The input preprocessing a model's metadata records.

    Classification models record ``preprocess_mode`` (caffe, torch, tf) and ``image_mean``; others may
    record ``image_scale``, ``image_offsets`` and ``color_format``, defaulting to RGB / 255.
    """
    from libtlt.data import classification as cls

    shape = metadata.get("input_shape")
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ModelFileError(f"the model metadata has no input_shape [C, H, W] (found {shape!r})", location=source)
    channels, height, width = (int(d) for d in shape)
    mode = metadata.get("preprocess_mode")
    if mode:
        if mode == "caffe":
            mean = metadata.get("image_mean")
            if mean:
                offsets = tuple(float(v) for v in mean)
            elif channels == 3:
                offsets = tuple(cls.CAFFE_MEAN_BGR)
            else:
                offsets = (float(np.dot((0.299, 0.587, 0.114), cls.CAFFE_MEAN_BGR[::-1])),)
            return Preprocessing(channels, height, width, (1.0,) * channels, offsets,
                                 "bgr" if channels == 3 else "gray", "caffe")
        if mode == "tf":
            return Preprocessing(channels, height, width, (1.0 / 127.5,) * channels, (127.5,) * channels,
                                 "rgb" if channels == 3 else "gray", "tf")
        if mode == "torch":
            if channels == 3:
                scale = tuple(1.0 / (255.0 * s) for s in cls.TORCH_STD_RGB)
                offsets = tuple(255.0 * m for m in cls.TORCH_MEAN_RGB)
            else:
                scale = (1.0 / (255.0 * float(np.dot((0.299, 0.587, 0.114), cls.TORCH_STD_RGB))),)
                offsets = (255.0 * float(np.dot((0.299, 0.587, 0.114), cls.TORCH_MEAN_RGB)),)
            return Preprocessing(channels, height, width, scale, offsets, "rgb" if channels == 3 else "gray", "torch")
        raise ModelFileError(f"unknown preprocess_mode {mode!r} in the model metadata", location=source)
    recorded = metadata.get("preprocessing")
    if recorded is not None and str(recorded).lower() != "rgb/255":
        raise ModelFileError(f"unknown preprocessing {recorded!r} in the model metadata (tlt-export knows "
                             "classification's preprocess_mode and 'rgb/255')", location=source)
    scale = float(metadata.get("image_scale", DEFAULT_IMAGE_SCALE))
    offsets_value = metadata.get("image_offsets") or [0.0] * channels
    color = str(metadata.get("color_format") or ("rgb" if channels == 3 else "gray")).lower()
    if color not in ("rgb", "bgr", "gray") or len(offsets_value) != channels:
        raise ModelFileError(f"the model metadata has an unusable preprocessing (color_format {color!r}, "
                             f"image_offsets {offsets_value!r})", location=source)
    return Preprocessing(channels, height, width, (scale,) * channels, tuple(float(v) for v in offsets_value), color)


def load_images(paths: Sequence[Path], metadata: Mapping[str, Any], preprocessing: Preprocessing) -> np.ndarray:
    """One NCHW float32 batch of ``paths``, preprocessed as the model expects."""
    if preprocessing.mode is not None:
        from libtlt.data.classification import input_config_from_metadata, load_images_for_inference

        return load_images_for_inference(paths, input_config_from_metadata(metadata))
    from PIL import Image

    from libtlt.io.images import read_image

    batch = []
    for path in paths:
        array = read_image(path, channels=1 if preprocessing.color_format == "gray" else 3)
        if array.shape[:2] != (preprocessing.height, preprocessing.width):
            image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
            image = image.resize((preprocessing.width, preprocessing.height), Image.Resampling.BILINEAR)
            array = np.asarray(image, np.uint8).reshape(preprocessing.height, preprocessing.width, -1)
        if preprocessing.color_format == "bgr":
            array = array[:, :, ::-1]
        batch.append(array.astype(np.float32))
    images = np.stack(batch)
    scale = np.asarray(preprocessing.scale, np.float32)
    offsets = np.asarray(preprocessing.offsets, np.float32)
    return np.ascontiguousarray(((images - offsets) * scale).transpose(0, 3, 1, 2), dtype=np.float32)


def list_images(directory: str | Path) -> list[Path]:
    """The jpg/jpeg/png files under ``directory`` (sub-folders included), sorted."""
    root = Path(directory)
    if not root.is_dir():
        raise DataError("calibration image directory not found", location=root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def pick_images(directory: str | Path, batch_size: int, batches: int) -> list[Path]:
    """``batch_size * batches`` images of ``directory``, sampled with a fixed seed across all of them."""
    found = list_images(directory)
    needed = batch_size * batches
    if len(found) < needed:
        raise DataError(f"--cal_image_dir holds {len(found)} image(s) (jpg, jpeg, png); calibration needs "
                        f"--batch_size x --batches = {batch_size} x {batches} = {needed} (add images or lower "
                        "--batches)", location=directory)
    picked = np.random.default_rng(SAMPLE_SEED).choice(len(found), size=needed, replace=False)
    return [found[i] for i in sorted(picked)]


def image_batches(paths: Sequence[Path], batch_size: int, metadata: Mapping[str, Any],
                  preprocessing: Preprocessing) -> Iterator[np.ndarray]:
    for start in range(0, len(paths), batch_size):
        yield load_images(paths[start:start + batch_size], metadata, preprocessing)


def calibration_batches(metadata: Mapping[str, Any], preprocessing: Preprocessing, *, cal_data_file: str | None,
                        cal_image_dir: str | None, experiment_spec: str | None, batch_size: int,
                        batches: int, loader: Callable[[], Any] | None = None) -> list[np.ndarray]:
    """The calibration batches for ``--data_type int8`` (see the module docstring for the sources).

    ``loader`` returns the architecture's ``CalibrationData`` for the ``-e`` spec (its training loader, as
    tlt-int8-tensorfile writes it), or is ``None`` when the architecture has none."""
    if cal_image_dir is not None:
        paths = pick_images(cal_image_dir, batch_size, batches)
        logger.info("Calibrating on %d images of %s (%d batches of %d).", len(paths), cal_image_dir, batches,
                    batch_size)
        loaded = list(image_batches(paths, batch_size, metadata, preprocessing))
        if cal_data_file is not None:
            from libtlt.io.tensorfile import write_tensorfile

            write_tensorfile(cal_data_file, loaded)
            logger.info("Calibration tensorfile written to %s", cal_data_file)
        return loaded
    if cal_data_file is not None:
        from libtlt.runtime.calibration import tensorfile_batches

        if not Path(cal_data_file).is_file():
            raise DataError("calibration tensorfile not found (give --cal_image_dir to create it)",
                            location=cal_data_file)
        loaded = list(tensorfile_batches(cal_data_file, max_batches=batches))
        logger.info("Calibrating on %d batch(es) of %s.", len(loaded), cal_data_file)
        return loaded
    if experiment_spec is not None and loader is not None:
        data = loader()
        loaded = []
        for images in data.batches:
            if len(loaded) >= batches or len(images) < data.batch_size:
                break
            loaded.append(np.asarray(images, dtype=np.float32))
        if not loaded:
            raise DataError(f"the training set of {experiment_spec} holds fewer images than one batch "
                            f"({data.batch_size_field}: {data.batch_size})", location=data.batch_size_location)
        logger.info("Calibrating on %d batch(es) of %d training images of %s (the spec's batch size; --batch_size "
                    "applies to --cal_image_dir).", len(loaded), data.batch_size, experiment_spec)
        return loaded
    if experiment_spec is not None:
        raise UnsupportedError("this architecture has no training data loader for calibration (-e without "
                               "--cal_image_dir or --cal_data_file): give --cal_image_dir or a --cal_data_file")
    raise DataError("--data_type int8 needs calibration data: --cal_data_file (a tensorfile from "
                    "tlt-int8-tensorfile) or --cal_image_dir (a directory of images)")


def qat_scales(metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """The activation ranges learned by QAT (``metadata["qat_scales"]``: tensor → amax), or None."""
    scales = metadata.get("qat_scales")
    if not scales:
        return None
    if not isinstance(scales, Mapping):
        raise ModelFileError("the model metadata's qat_scales is not a mapping of tensor name to amax")
    try:
        return {str(name): float(value) for name, value in scales.items()}
    except (TypeError, ValueError):
        raise ModelFileError("the model metadata's qat_scales holds a value that is not a number") from None


def write_qat_cache(onnx_model: onnx.ModelProto, scales: Mapping[str, float], cal_cache_file: str | Path) -> None:
    """Write QAT's learned ranges as the cal.bin: the graph's tensors that have one.

    A QAT cache holds fewer scales than a calibrated one (000 §8.1): quantized tensors without a range
    (the output layers' inputs) stay float. Ranges that cover none of the tensors the graph quantizes
    belong to another graph and are an error.
    """
    from libtlt.runtime.onnx_precision import required_tensors

    required = required_tensors(onnx_model)
    covered = [name for name in required if name in scales]
    if not covered:
        raise ModelFileError("the model's QAT scales match none of the tensors the exported graph quantizes: use "
                             "--force_ptq with calibration data")
    names = [value.name for value in onnx_model.graph.input] + \
        [out for node in onnx_model.graph.node for out in node.output]
    amax = {name: scales[name] for name in names if name in scales}
    write_calibration_cache(cal_cache_file, amax, algorithm=ENTROPY_CALIBRATION_2)
    logger.info("QAT model: the learned ranges of %d of the %d quantizable tensors were written to %s (no "
                "calibration; the others stay float; --force_ptq calibrates instead).", len(covered), len(required),
                cal_cache_file)
