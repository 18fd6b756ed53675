"""The classification input pipeline: class-per-folder datasets (000 §6.1) → batches for the network.

* :class:`ClassMap` — class names in network output order (sorted folder names, as Keras' directory
  loader orders them) and its file form, ``classmap.json`` (``{"class": index}``).
* :func:`scan_folder` — list ``root/<class>/**/<image>`` into a :class:`FolderIndex`, checking every
  image cheaply (header, PNG checksums, JPEG end marker) so that one corrupt file is skipped with a
  warning instead of failing an epoch half-way.
* :class:`InputConfig` / :func:`input_config_from_metadata` — what
  the network expects (C, H, W, preprocess_mode, image_mean, interpolation) and the training
  augmentation of the 003 ``augment`` section (a spec's: ``libtlt.archs.classification.classification_inputs``).
* :func:`make_dataset` — a ``tf.data.Dataset`` of ``(images [N, C, H, W] float32, one-hot labels
  [N, K] float32)``: parallel decode, resize (or crop), training-only augmentation, preprocessing.
* :func:`preprocess` — the same preprocessing in NumPy, for calibration, export checks and tests;
  :func:`load_images_for_inference` — evaluation-identical batches for ``tlt-infer``.

Geometry: without cropping an image is resized to (H, W). With cropping (003
``enable_random_crop`` for training, ``enable_center_crop`` for evaluation) it is first resized,
keeping its aspect ratio, to the smallest size that covers (H, W) / 0.875, then an H × W window is
cut from a random position (training) or the centre (evaluation).

TensorFlow is imported inside the functions that need it; importing this module is light.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from libtlt.errors import DataError, ModelFileError
from libtlt.io.atomic import write_text
from libtlt.io.images import is_image_file
from libtlt.log import get_logger
from libtlt.workers import thread_map

if TYPE_CHECKING:
    import tensorflow as tf

logger = get_logger("libtlt.data.classification")

PREPROCESS_MODES: tuple[str, ...] = ("caffe", "torch", "tf")
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")
#: caffe mode: per-channel means in BGR order (ImageNet), subtracted after RGB → BGR.
CAFFE_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)
#: torch mode: ImageNet mean and standard deviation of RGB values scaled to [0, 1].
TORCH_MEAN_RGB: tuple[float, float, float] = (0.485, 0.456, 0.406)
TORCH_STD_RGB: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: ITU-R 601 luma weights (R, G, B): the grayscale value of the RGB constants above.
_LUMA = (0.299, 0.587, 0.114)
#: Fraction of the resized image that a crop keeps (the image is resized to cover size / 0.875).
CROP_FRACTION = 0.875
#: Colour augmentation ranges (images scaled to [0, 1]).
BRIGHTNESS_DELTA = 0.125
CONTRAST_RANGE = (0.7, 1.3)
SATURATION_RANGE = (0.7, 1.3)
HUE_DELTA = 0.05
_SCAN_THREADS = 8
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_JPEG_EOI = b"\xff\xd9"
_JPEG_TAIL = 4096


# ----------------------------------------------------------------------------------------- class map


@dataclass(frozen=True)
class ClassMap:
    """Class names in network output order; ``classmap.json`` is ``{"name": index}``."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        object.__setattr__(self, "names", names)
        if not names:
            raise DataError("a class map needs at least one class")
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise DataError(f"class names must be unique, repeated: {', '.join(duplicates)}")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise DataError(f"class '{name}' is not in the class map (classes: {', '.join(self.names)})") from None

    def to_json(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_json(cls, mapping: Mapping[str, Any], *, source: str | Path | None = None) -> ClassMap:
        """From ``{"name": index}`` with indices 0..K-1, each used once."""
        if not isinstance(mapping, Mapping) or not mapping:
            raise DataError('expected a JSON object {"class name": index, ...} with at least one class',
                            location=source)
        by_index: dict[int, str] = {}
        for name, value in mapping.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise DataError(f"the index of class '{name}' must be an integer, got {value!r}", location=source)
            if value in by_index:
                raise DataError(f"classes '{by_index[value]}' and '{name}' have the same index {value}",
                                location=source)
            by_index[value] = str(name)
        expected = list(range(len(by_index)))
        if sorted(by_index) != expected:
            raise DataError(f"class indices must be 0..{len(by_index) - 1}, each used once; got "
                            f"{sorted(by_index)}", location=source)
        return cls(tuple(by_index[i] for i in expected))

    @classmethod
    def from_file(cls, path: str | Path) -> ClassMap:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError("class map file not found", location=path) from None
        except IsADirectoryError:
            raise DataError("expected a class map JSON file, found a directory", location=path) from None
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read the class map ({err})", location=path) from None
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})",
                            location=path) from None
        return cls.from_json(mapping, source=path)

    def write(self, path: str | Path) -> None:
        """Write ``classmap.json`` atomically."""
        write_text(path, json.dumps(self.to_json(), indent=2) + "\n")


# ------------------------------------------------------------------------------------- folder scan


@dataclass(frozen=True)
class FolderIndex:
    """The images of a class-per-folder dataset, their label indices and what was skipped (path, reason)."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    class_map: ClassMap
    skipped: tuple[tuple[Path, str], ...] = ()
    root: Path | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        """Images per class, in class map order (classes without images count 0)."""
        totals = np.bincount(np.asarray(self.labels, dtype=np.int64), minlength=len(self.class_map))
        return {name: int(totals[i]) for i, name in enumerate(self.class_map.names)}


def check_image(path: str | Path) -> str | None:
    """Why ``path`` cannot be used as a JPEG/PNG training image, or ``None`` when it looks sound.

    Cheap: the header is parsed, PNG chunk checksums are verified, and a JPEG must end with its
    end-of-image marker (otherwise it is decoded fully to tell a truncated file from trailing data).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            fmt = image.format
            if fmt not in ("JPEG", "PNG"):
                return f"unsupported image format {fmt} (JPEG and PNG are read)"
            image.verify()
    except FileNotFoundError:
        return "file not found"
    except _DECODE_ERRORS as err:
        return f"not a readable image ({err})"
    if fmt == "JPEG" and not _jpeg_has_end_marker(path):
        try:
            with Image.open(path) as image:
                image.load()
        except _DECODE_ERRORS as err:
            return f"truncated or corrupt JPEG ({err})"
    return None


def _jpeg_has_end_marker(path: Path) -> bool:
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _JPEG_TAIL))
        return _JPEG_EOI in handle.read()


def _list_images(folder: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        found += [Path(directory, name) for name in sorted(files)
                  if not name.startswith(".") and is_image_file(name)]
    return found


def scan_folder(root: str | Path, class_map: ClassMap | None = None, *, strict: bool = False) -> FolderIndex:
    """Index a class-per-folder dataset: ``root/<class>/<image>`` (images may sit in sub-folders).

    Without ``class_map`` the classes are the sorted folder names (training); with it (evaluation)
    every folder must name one of its classes, and labels are that map's indices. Unreadable images
    are skipped with one warning, or raise ``DataError`` when ``strict``.
    """
    root = Path(root)
    if not root.exists():
        raise DataError("dataset directory not found", location=root)
    if not root.is_dir():
        raise DataError("expected a dataset directory (one folder per class), found a file", location=root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError("no class folders (expected <root>/<class name>/<images>, 000 §6.1)", location=root)
    if class_map is None:
        class_map = ClassMap(tuple(p.name for p in folders))
    else:
        unknown = [p.name for p in folders if p.name not in class_map.names]
        if unknown:
            raise DataError(f"class folder(s) {', '.join(repr(n) for n in unknown)} are not classes of the "
                            f"model (its classes: {', '.join(class_map.names)})", location=root)
    paths: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        images = _list_images(folder)
        if not images:
            raise DataError("empty class folder: no .jpg, .jpeg or .png images", location=folder)
        paths += images
        labels += [class_map.index(folder.name)] * len(images)
    reasons = thread_map(check_image, paths, _SCAN_THREADS)  # Ctrl-C cancels the queued checks
    skipped = tuple((p, r) for p, r in zip(paths, reasons, strict=True) if r is not None)
    if skipped:
        if strict:
            path, reason = skipped[0]
            raise DataError(reason, location=path)
        logger.warning("Skipped %d unreadable image(s) under %s, e.g. %s: %s", len(skipped), root,
                       skipped[0][0], skipped[0][1])
        keep = [r is None for r in reasons]
        paths = [p for p, k in zip(paths, keep, strict=True) if k]
        labels = [c for c, k in zip(labels, keep, strict=True) if k]
        present = set(labels)
        for folder in folders:
            if class_map.index(folder.name) not in present:
                raise DataError("no readable images in this class folder", location=folder)
    return FolderIndex(tuple(paths), tuple(labels), class_map, skipped, root)


# ------------------------------------------------------------------------------------ input config


@dataclass(frozen=True)
class InputConfig:
    """What the network expects and how training images are augmented."""

    channels: int
    height: int
    width: int
    preprocess_mode: str = "caffe"
    image_mean: tuple[float, ...] | None = None
    interpolation: str = "bilinear"
    random_crop: bool = False
    center_crop: bool = False
    color_augmentation: bool = False
    horizontal_flip: bool = False
    mixup_alpha: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"height and width must be positive, got {self.height}x{self.width}")
        if self.preprocess_mode not in PREPROCESS_MODES:
            raise ValueError(f"preprocess_mode must be one of {', '.join(PREPROCESS_MODES)}, "
                             f"not {self.preprocess_mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {self.interpolation!r}")
        if self.image_mean is not None:
            object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
            if len(self.image_mean) != self.channels:
                raise ValueError(f"image_mean needs {self.channels} value(s), got {len(self.image_mean)}")
        if self.mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0, got {self.mixup_alpha}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return self.channels, self.height, self.width


@dataclass(frozen=True)
class AugmentSettings:
    """The effective training augmentation of a classification spec, after the form's defaults."""

    random_crop: bool
    center_crop: bool
    color_augmentation: bool
    horizontal_flip: bool
    mixup_alpha: float
    label_smoothing: float
    #: Which defaults filled the unwritten settings: "prototxt" or "yaml".
    defaults: str

    def describe(self) -> str:
        """One log line's worth: ``random crop off, center crop off, ... (prototxt defaults)``."""
        def on(flag: bool) -> str:
            return "on" if flag else "off"

        return (f"random crop {on(self.random_crop)}, center crop {on(self.center_crop)}, colour augmentation "
                f"{on(self.color_augmentation)}, horizontal flip {on(self.horizontal_flip)}, mixup_alpha "
                f"{self.mixup_alpha:g}, label_smoothing {self.label_smoothing:g} ({self.defaults} defaults for "
                f"unwritten settings)")


def input_config_from_metadata(metadata: Mapping[str, Any], *, center_crop: bool | None = None,
                               source: str | Path | None = None) -> InputConfig:
    """The evaluation input configuration recorded in a classification model's metadata.

    ``center_crop`` overrides; otherwise ``metadata["center_crop"]`` if present, else the
    ``augment.enable_center_crop`` of the spec text stored with the model (default: on).
    """
    shape = metadata.get("input_shape")
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ModelFileError(f"the model metadata has no input_shape [C, H, W] (found {shape!r})", location=source)
    layout = metadata.get("input_layout", "NCHW")
    if layout != "NCHW":
        raise ModelFileError(f"input_layout {layout!r} is not supported (classification models take NCHW)",
                             location=source)
    if center_crop is None:
        stored = metadata.get("center_crop")
        if stored is None:  # saved before tlt recorded it (2026-12-03): those models were trained uncropped
            logger.warning("The model records no center_crop setting (saved by an older tlt): evaluating without "
                           "centre crop; retrain or re-save it to record the setting")
        center_crop = bool(stored)
    mean = metadata.get("image_mean")
    try:
        return InputConfig(
            channels=int(shape[0]), height=int(shape[1]), width=int(shape[2]),
            preprocess_mode=str(metadata.get("preprocess_mode") or "caffe"),
            image_mean=tuple(mean) if mean else None,
            interpolation=str(metadata.get("interpolation") or "bilinear").lower(),
            center_crop=center_crop,
        )
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"the model metadata has an unusable input description ({err})",
                             location=source) from None


# ----------------------------------------------------------------------------------- preprocessing


def _affine(mode: str, channels: int, image_mean: Sequence[float] | None) -> tuple[bool, np.ndarray, np.ndarray]:
    """Preprocessing as ``out[c] = x[order][c] * scale[c] + bias[c]``: (RGB → BGR?, scale, bias)."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"preprocess_mode must be one of {', '.join(PREPROCESS_MODES)}, not {mode!r}")
    if channels not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, not {channels}")
    if mode == "caffe":
        if image_mean is not None:
            mean = np.asarray(image_mean, dtype=np.float64)
            if mean.shape != (channels,):
                raise ValueError(f"image_mean needs {channels} value(s), got {len(mean)}")
        elif channels == 3:
            mean = np.asarray(CAFFE_MEAN_BGR)
        else:
            mean = np.asarray([np.dot(_LUMA, CAFFE_MEAN_BGR[::-1])])
        return channels == 3, np.ones(channels, np.float32), (-mean).astype(np.float32)
    if mode == "torch":
        m = np.asarray(TORCH_MEAN_RGB) if channels == 3 else np.asarray([np.dot(_LUMA, TORCH_MEAN_RGB)])
        s = np.asarray(TORCH_STD_RGB) if channels == 3 else np.asarray([np.dot(_LUMA, TORCH_STD_RGB)])
        return False, (1.0 / (255.0 * s)).astype(np.float32), (-m / s).astype(np.float32)
    return False, np.full(channels, 1.0 / 127.5, np.float32), np.full(channels, -1.0, np.float32)


def preprocess(images: np.ndarray, mode: str, image_mean: Sequence[float] | None = None) -> np.ndarray:
    """NHWC (or HWC) RGB/gray images with values in [0, 255] → preprocessed NCHW (CHW) float32.

    caffe: RGB → BGR, minus the BGR means [103.939, 116.779, 123.68] (or ``image_mean``, BGR order);
    torch: / 255, minus the ImageNet mean, / std; tf: / 127.5 − 1. One-channel images use the luma
    of those constants (caffe: 117.3786). Same arithmetic as :func:`make_dataset`.
    """
    array = np.asarray(images)
    single = array.ndim == 3
    if single:
        array = array[np.newaxis]
    if array.ndim != 4:
        raise ValueError(f"expected NHWC or HWC images, got shape {array.shape}")
    flip, scale, bias = _affine(mode, array.shape[-1], image_mean)
    x = array.astype(np.float32)
    if flip:
        x = x[..., ::-1]
    out = np.ascontiguousarray((x * scale + bias).transpose(0, 3, 1, 2), dtype=np.float32)
    return out[0] if single else out


def _tf_preprocess(images: tf.Tensor, config: InputConfig) -> tf.Tensor:
    """NHWC float32 in [0, 255] → NCHW preprocessed (the arithmetic of :func:`preprocess`)."""
    import tensorflow as tf

    flip, scale, bias = _affine(config.preprocess_mode, config.channels, config.image_mean)
    if flip:
        images = tf.reverse(images, axis=[-1])
    images = images * tf.constant(scale) + tf.constant(bias)
    return tf.transpose(images, [0, 3, 1, 2])


# ------------------------------------------------------------------------------------- tf pipeline


def _decode(path: tf.Tensor, config: InputConfig) -> tf.Tensor:
    import tensorflow as tf

    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=config.channels, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, config.channels])
    return tf.cast(image, tf.float32)


def _resize(image: tf.Tensor, size: Any, config: InputConfig) -> tf.Tensor:
    import tensorflow as tf

    resized = tf.image.resize(image, size, method=config.interpolation, antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def _cover(image: tf.Tensor, config: InputConfig) -> tf.Tensor:
    """Resize keeping the aspect ratio so the image covers (H, W) / CROP_FRACTION."""
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.constant([config.height / CROP_FRACTION, config.width / CROP_FRACTION], tf.float32)
    scale = tf.reduce_max(target / shape)
    size = tf.maximum(tf.cast(tf.math.ceil(shape * scale - 1e-3), tf.int32),
                      tf.constant([config.height, config.width], tf.int32))
    return _resize(image, size, config)


def _load_eval(path: tf.Tensor, config: InputConfig) -> tf.Tensor:
    """Decode and resize (or center crop) one image: HWC float32 in [0, 255]."""
    import tensorflow as tf

    image = _decode(path, config)
    if config.center_crop:
        image = _cover(image, config)
        shape = tf.shape(image)
        top = (shape[0] - config.height) // 2
        left = (shape[1] - config.width) // 2
        image = image[top:top + config.height, left:left + config.width]
    else:
        image = _resize(image, [config.height, config.width], config)
    image.set_shape([config.height, config.width, config.channels])
    return image


def _seed(random: tf.Tensor, stream: int) -> tf.Tensor:
    import tensorflow as tf

    return tf.stack([random, tf.constant(stream, tf.int64)])


def _load_train(path: tf.Tensor, random: tf.Tensor, config: InputConfig) -> tf.Tensor:
    """Decode, random crop (or resize), flip and colour-jitter one image: HWC float32 in [0, 255]."""
    import tensorflow as tf

    image = _decode(path, config)
    if config.random_crop:
        image = _cover(image, config)
        image = tf.image.stateless_random_crop(image, [config.height, config.width, config.channels],
                                               seed=_seed(random, 1))
    else:
        image = _resize(image, [config.height, config.width], config)
    if config.horizontal_flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=_seed(random, 2))
    if config.color_augmentation:
        image = _color_jitter(image, random, config.channels)
    image.set_shape([config.height, config.width, config.channels])
    return image


#: RGB → YIQ; a hue shift is a rotation of the (I, Q) plane.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _color_jitter(image: tf.Tensor, random: tf.Tensor, channels: int) -> tf.Tensor:
    """Random brightness, contrast, saturation and hue as one affine colour map per image, then clipping.

    brightness adds b·255, contrast scales the distance to the per-channel mean by c, saturation blends
    with the luma by s, hue rotates the YIQ chroma plane by h turns: ``out = A (c (x − μ) + μ + b)``.
    """
    import tensorflow as tf

    def uniform(stream: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform([], seed=_seed(random, stream), minval=low, maxval=high)

    brightness = uniform(3, -BRIGHTNESS_DELTA, BRIGHTNESS_DELTA) * 255.0
    contrast = uniform(4, *CONTRAST_RANGE)
    mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
    image = contrast * (image - mean) + mean + brightness
    if channels == 3:
        saturation = uniform(5, *SATURATION_RANGE)
        angle = uniform(6, -HUE_DELTA, HUE_DELTA) * (2.0 * math.pi)
        cos, sin = tf.cos(angle), tf.sin(angle)
        zero, one = tf.zeros([]), tf.ones([])
        # In YIQ: scale the chroma by the saturation factor and rotate it by the hue angle.
        chroma = tf.stack([tf.stack([one, zero, zero]),
                           tf.stack([zero, saturation * cos, -saturation * sin]),
                           tf.stack([zero, saturation * sin, saturation * cos])])
        matrix = tf.constant(_YIQ_TO_RGB, tf.float32) @ chroma @ tf.constant(_RGB_TO_YIQ, tf.float32)
        image = tf.tensordot(image, tf.transpose(matrix), axes=1)
    return tf.clip_by_value(image, 0.0, 255.0)


def _mixup(images: tf.Tensor, labels: tf.Tensor, random: tf.Tensor, alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Mix each sample with its mirror in the batch, weight λ ~ Beta(alpha, alpha) per sample."""
    import tensorflow as tf

    count = tf.shape(images)[0:1]
    g1 = tf.random.stateless_gamma(count, seed=_seed(random, 7), alpha=alpha)
    g2 = tf.random.stateless_gamma(count, seed=_seed(random, 8), alpha=alpha)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    mixed_images = lam[:, None, None, None] * images + (1.0 - lam[:, None, None, None]) * tf.reverse(images, [0])
    mixed_labels = lam[:, None] * labels + (1.0 - lam[:, None]) * tf.reverse(labels, [0])
    return mixed_images, mixed_labels


def make_dataset(index: FolderIndex, config: InputConfig, *, batch_size: int, training: bool, seed: int = 0,
                 drop_remainder: bool = False, repeat: bool = False) -> tf.data.Dataset:
    """Batches of ``(images [N, C, H, W] float32, one-hot labels [N, K] float32)`` from ``index``.

    Evaluation (``training=False``) keeps the index order and applies no augmentation (only the
    center crop, if configured). Training shuffles with ``seed`` (a new order every epoch) and
    applies the configured augmentation, reproducibly for a given seed.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(index) == 0:
        raise DataError("the dataset has no images", location=index.root)
    num_classes = len(index.class_map)
    autotune = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(([str(p) for p in index.paths], np.asarray(index.labels, np.int32)))
    if training:
        ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms))
        ds = ds.map(lambda item, r: (_load_train(item[0], r, config), item[1]), num_parallel_calls=autotune,
                    deterministic=True)
    else:
        ds = ds.map(lambda path, label: (_load_eval(path, config), label), num_parallel_calls=autotune,
                    deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    smoothing = config.label_smoothing if training else 0.0
    mixup = config.mixup_alpha if training else 0.0

    def finish(images: tf.Tensor, labels: tf.Tensor, random: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        onehot = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if smoothing > 0:
            onehot = onehot * (1.0 - smoothing) + smoothing / num_classes
        if mixup > 0 and random is not None:
            images, onehot = _mixup(images, onehot, random, mixup)
        return _tf_preprocess(images, config), onehot

    if mixup > 0:
        batch_randoms = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, batch_randoms)).map(lambda batch, r: finish(batch[0], batch[1], r),
                                                          num_parallel_calls=autotune, deterministic=True)
    else:
        ds = ds.map(finish, num_parallel_calls=autotune, deterministic=True)
    return ds.prefetch(autotune)


def make_inference_dataset(paths: Sequence[str | Path], config: InputConfig, *, batch_size: int) -> tf.data.Dataset:
    """Batches of preprocessed NCHW images of ``paths`` (in order), exactly as evaluation sees them."""
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices(tf.constant([str(p) for p in paths], tf.string))
    ds = ds.map(lambda path: _load_eval(path, config), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size).map(lambda images: _tf_preprocess(images, config), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_images_for_inference(paths: Iterable[str | Path], config: InputConfig) -> np.ndarray:
    """One NCHW float32 batch of ``paths``, resized and preprocessed exactly as in evaluation.

    A file that cannot be decoded raises ``DataError`` naming it.
    """
    import tensorflow as tf

    files = [Path(p) for p in paths]
    if not files:
        return np.zeros((0, *config.shape), np.float32)
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise DataError("image not found", location=missing[0])
    try:
        return next(iter(make_inference_dataset(files, config, batch_size=len(files)))).numpy()  # type: ignore[no-any-return]
    except tf.errors.OpError:
        for path in files:
            reason = check_image(path)
            if reason is not None:
                raise DataError(reason, location=path) from None
        for path in files:
            try:
                next(iter(make_inference_dataset([path], config, batch_size=1)))
            except tf.errors.OpError as err:
                raise DataError(f"cannot decode this image ({err.message.splitlines()[0]})", location=path) from None
        raise


def dataset_steps(num_images: int, batch_size: int, *, drop_remainder: bool = False) -> int:
    """Batches per epoch of a dataset of ``num_images``."""
    return num_images // batch_size if drop_remainder else math.ceil(num_images / batch_size)
