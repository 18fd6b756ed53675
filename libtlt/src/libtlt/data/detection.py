"""The KITTI-TFRecord loader of the box detectors (000 §7.2.6, §7.2.8; docs/formats.md "KITTI detection records").

Shared by every detector whose spec has TLT's ``dataset_config`` (``data_sources``, ``target_class_mapping``,
``validation_fold`` / ``validation_data_source``, ``image_extension``); an architecture turns its own spec's
preprocessing and augmentation sections into :class:`Preprocessing` and :class:`Augmentation` (DetectNet_v2:
``libtlt.archs.detectnet_v2.detectnet_v2_data``). First written for DetectNet_v2.

The TFRecords of ``dataset_config.data_sources`` are read once without TensorFlow (``libtlt.io``): one
:class:`Frame` per record, its objects mapped through ``target_class_mapping`` (objects of unmapped classes
are dropped) and numbered in network output order, each with its KITTI occlusion (``target/occlusion``; zeros
for records without it), which an evaluation may use to flag "difficult" objects. The images themselves are read
inside ``tf.data`` from ``image_directory_path/<frame/id>.<image_extension>``; the boxes and classes travel
with them row by row (row i is the frame's object i, a dropped object keeps its row with class −1), so the
frame's other per-object values are picked for the kept objects afterwards (:func:`kept_objects`).

Validation: a separate ``validation_data_source``, else the records of fold ``validation_fold``
(files named ``...-fold-<fold:03d>-of-...`` by tlt-dataset-convert) — those are left out of training.

Per image, in the manual's order (§7.2.6), all geometry folded into one projective warp from the source
image to the output canvas:

1. preprocessing: crop (``crop_left/top/right/bottom``, when a right or bottom bound is set), then scale
   (``scale_width/height``; with ``enable_auto_resize`` the crop is resized to the output size);
2. training only: spatial augmentation — horizontal / vertical flip with their probabilities, zoom
   uniform in ``[zoom_min, zoom_max]`` about the image centre, rotation uniform in
   ``[−rotate_rad_max, rotate_rad_max]`` (only when the spec sets ``rotate_rad_max``: the manual's
   sample omits it and describes flip, zoom and translate only), translation uniform in
   ``±translate_max_x/y`` pixels; boxes become the bounding box of their transformed corners;
   before these, two options of the SSD paper (Liu et al. 2016, §3 "Data augmentation"), off unless an
   architecture sets them: *zoom-out* (with ``zoom_out_probability``, the image shrunk by a ratio uniform in
   ``[zoom_out_min_scale, zoom_out_max_scale]`` onto a zero canvas of the output size at a uniform random place)
   and then an *IoU-constrained random crop* (with ``iou_crop_probability``: pick a minimum IoU uniformly from
   ``iou_crop_min_ious``, 0 meaning any patch; draw ``iou_crop_trials`` patches of side fraction
   ``iou_crop_scale`` and aspect ratio ``iou_crop_aspect_ratio``; take the first one whose IoU with some object
   reaches the minimum and that holds some object's centre (no patch: no crop); objects whose centre falls
   outside the patch are dropped; the patch is stretched to the output size);
   colour augmentation (3 channels only): hue rotation ``±hue_rotation_max`` degrees, saturation factor
   ``1 ± saturation_shift_max``, contrast ``1 ± contrast_scale_max`` about ``contrast_center``, per-channel
   shift with ``color_shift_stddev``. Colour is applied before the warp (it is per pixel, so only the
   zero padding differs: it stays zero);
3. the output is padded with zeros or clipped at the right and bottom to the output size; boxes are
   clipped to it and, for training, boxes narrower than ``min_bbox_width`` or lower than
   ``min_bbox_height`` are dropped.

Images are RGB (or grey) / 255, float32, NCHW.
"""

from __future__ import annotations

import glob
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.data.image_check import checked_decode
from libtlt.errors import DataError, SpecError
from libtlt.io.example import decode_example
from libtlt.io.tfrecord import read_records
from libtlt.log import get_logger
from libtlt.spec import LoadedSpec
from libtlt.spec import values as spec_values

logger = get_logger("libtlt.data.detection")

#: Pad value of the per-frame box arrays (class id of a padding row).
NO_CLASS = -1


def _no_occlusion() -> np.ndarray:
    return np.zeros(0, np.int32)


@dataclass(frozen=True)
class Frame:
    """One record: image file, its size, and its objects (source pixels, class index in output order, KITTI
    occlusion: 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown).

    ``occlusion`` defaults to zeros (a record without ``target/occlusion``); any per-object array has one row per
    box, in the same order."""

    frame_id: str
    image_path: str
    width: int
    height: int
    boxes: np.ndarray  # [N, 4] float32 x1, y1, x2, y2
    classes: np.ndarray  # [N] int32
    occlusion: np.ndarray = field(default_factory=_no_occlusion)  # [N] int32

    def __post_init__(self) -> None:
        count = len(self.classes)
        if len(self.occlusion) == 0 and count:
            object.__setattr__(self, "occlusion", np.zeros(count, np.int32))
        elif len(self.occlusion) != count:
            raise ValueError(f"frame {self.frame_id}: {count} objects but {len(self.occlusion)} occlusion values")


@dataclass(frozen=True)
class Preprocessing:
    output_width: int
    output_height: int
    channels: int = 3
    crop: tuple[int, int, int, int] | None = None  # left, top, right, bottom
    scale_x: float = 1.0
    scale_y: float = 1.0
    auto_resize: bool = False
    min_bbox_width: float = 0.0
    min_bbox_height: float = 0.0
    #: > 0: no fixed canvas; each (cropped) image is resized keeping its aspect ratio so that its shorter side is
    #: ``min_side`` (FasterRCNN's ``size_min``), and the output size is the image's own. Replaces the scale and
    #: auto-resize settings.
    min_side: int = 0

    def canvas(self, height: Any, width: Any) -> tuple[Any, Any]:
        """The output ``(height, width)`` of an image of ``height`` × ``width`` (after the crop): the fixed canvas,
        or with ``min_side`` the image's own resized size (tensors; the same rounding as
        ``faster_rcnn.data.resized_to_min_side``)."""
        if self.min_side <= 0:
            return self.output_height, self.output_width
        import tensorflow as tf

        h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
        scale = self.min_side / tf.minimum(h, w)
        out_h = tf.where(h <= w, tf.constant(self.min_side, tf.float64), tf.round(h * scale))
        out_w = tf.where(w <= h, tf.constant(self.min_side, tf.float64), tf.round(w * scale))
        return tf.cast(tf.maximum(out_h, 1.0), tf.int32), tf.cast(tf.maximum(out_w, 1.0), tf.int32)


@dataclass(frozen=True)
class Augmentation:
    hflip_probability: float = 0.0
    vflip_probability: float = 0.0
    zoom_min: float = 1.0
    zoom_max: float = 1.0
    translate_max_x: float = 0.0
    translate_max_y: float = 0.0
    rotate_rad_max: float = 0.0
    color_shift_stddev: float = 0.0
    hue_rotation_max: float = 0.0
    saturation_shift_max: float = 0.0
    contrast_scale_max: float = 0.0
    contrast_center: float = 0.5
    zoom_out_probability: float = 0.0
    zoom_out_min_scale: float = 1.0
    zoom_out_max_scale: float = 1.0
    iou_crop_probability: float = 0.0
    iou_crop_min_ious: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
    iou_crop_scale: tuple[float, float] = (0.3, 1.0)
    iou_crop_aspect_ratio: tuple[float, float] = (0.5, 2.0)
    iou_crop_trials: int = 50

    def __post_init__(self) -> None:
        if not 1.0 <= self.zoom_out_min_scale <= self.zoom_out_max_scale:
            raise ValueError(f"zoom-out scales must satisfy 1 <= min <= max, got {self.zoom_out_min_scale}, "
                             f"{self.zoom_out_max_scale}")
        low, high = self.iou_crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"iou_crop_scale must satisfy 0 < min <= max <= 1, got {self.iou_crop_scale}")
        low, high = self.iou_crop_aspect_ratio
        if not 0.0 < low <= high:
            raise ValueError(f"iou_crop_aspect_ratio must satisfy 0 < min <= max, got {self.iou_crop_aspect_ratio}")
        if self.iou_crop_probability > 0 and (not self.iou_crop_min_ious or self.iou_crop_trials < 1):
            raise ValueError("an IoU crop needs at least one minimum IoU and one trial")
        if any(not 0.0 <= iou <= 1.0 for iou in self.iou_crop_min_ious):
            raise ValueError(f"iou_crop_min_ious must lie in [0, 1], got {self.iou_crop_min_ious}")

    @property
    def ssd_geometry(self) -> bool:
        """Whether zoom-out or the IoU crop is on (they need the frame's boxes to build the warp)."""
        return (self.zoom_out_probability > 0 and self.zoom_out_max_scale > 1.0) or self.iou_crop_probability > 0


# ------------------------------------------------------------------------------------------ the records

def _record_files(pattern: str) -> list[str]:
    return sorted(p for p in glob.glob(pattern) if Path(p).is_file() and not p.endswith(".json"))


def _fold_of(path: str) -> int | None:
    match = re.search(r"-fold-(\d+)-of-\d+", Path(path).name)
    return int(match.group(1)) if match else None


def read_frames(files: Sequence[str], image_dir: str, extension: str, mapping: dict[str, str],
                classes: Sequence[str]) -> list[Frame]:
    """The frames of ``files``, objects mapped to class indices of ``classes`` (unmapped ones dropped)."""
    index = {name: i for i, name in enumerate(classes)}
    lookup = {k.lower(): index[v] for k, v in mapping.items() if v in index}
    ext = extension if not extension or extension.startswith(".") else "." + extension
    frames = []
    for path in files:
        for data in read_records(path):
            ex = decode_example(data, source=path)
            names = [n.decode("utf-8").lower() if isinstance(n, bytes) else str(n).lower()
                     for n in ex.get("target/object_class", [])]
            coords = [np.asarray(ex.get(f"target/coordinates_{k}", []), dtype=np.float32)
                      for k in ("x1", "y1", "x2", "y2")]
            ids = np.array([lookup.get(n, NO_CLASS) for n in names], dtype=np.int32)
            boxes = np.stack(coords, axis=1) if names else np.zeros((0, 4), np.float32)
            occlusion = np.asarray(ex.get("target/occlusion", []), dtype=np.int32).reshape(-1)
            if len(occlusion) != len(names):  # absent (older records): every object visible
                if len(occlusion):
                    raise DataError(f"a record has {len(names)} objects but {len(occlusion)} target/occlusion "
                                    "values", location=path)
                occlusion = np.zeros(len(names), np.int32)
            keep = ids >= 0
            raw_id = ex["frame/id"][0]
            frame_id = raw_id.decode("utf-8") if isinstance(raw_id, bytes) else str(raw_id)
            frames.append(Frame(frame_id, str(Path(image_dir) / (frame_id + ext)), int(ex["frame/width"][0]),
                                int(ex["frame/height"][0]), boxes[keep].reshape(-1, 4), ids[keep], occlusion[keep]))
    return frames


def split_frames(spec: LoadedSpec[Any], classes: Sequence[str]) -> tuple[list[Frame], list[Frame]]:
    """(training frames, validation frames) of the spec's dataset_config."""
    config = spec.message.dataset_config
    mapping = spec_values.class_mapping(config)
    extension = config.image_extension or "png"
    use_fold = config.HasField("validation_fold") and not config.HasField("validation_data_source")
    train: list[Frame] = []
    val: list[Frame] = []
    for index, source in enumerate(config.data_sources):
        files = _record_files(source.tfrecords_path)
        if not files:
            raise DataError(f"no TFRecord file matches {source.tfrecords_path!r}",
                            location=spec.locate(f"dataset_config.data_sources[{index}].tfrecords_path"))
        if use_fold:
            val_files = [f for f in files if _fold_of(f) == config.validation_fold]
            train_files = [f for f in files if _fold_of(f) != config.validation_fold]
            val += read_frames(val_files, source.image_directory_path, extension, mapping, classes)
        else:
            train_files = files
        train += read_frames(train_files, source.image_directory_path, extension, mapping, classes)
    if config.HasField("validation_data_source"):
        source = config.validation_data_source
        files = _record_files(source.tfrecords_path)
        if not files:
            raise DataError(f"no TFRecord file matches {source.tfrecords_path!r}",
                            location=spec.locate("dataset_config.validation_data_source.tfrecords_path"))
        val = read_frames(files, source.image_directory_path, extension, mapping, classes)
    if not train:
        raise SpecError("the training records hold no frames", location=spec.locate("dataset_config"))
    return train, val


def kept_objects(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """A frame's per-object ``values`` ``[N]`` (e.g. ``Frame.occlusion``) for the objects that
    :func:`frames_dataset` kept: ``classes`` is that frame's classes row ``[M ≥ N]`` (row i is object i, −1 where
    dropped and on padding rows)."""
    rows = np.asarray(classes).reshape(-1)
    given = np.asarray(values).reshape(-1)
    if len(given) > len(rows):
        raise ValueError(f"{len(given)} per-object values but only {len(rows)} rows")
    padded = np.zeros(len(rows), given.dtype)
    padded[:len(given)] = given
    return padded[rows >= 0]


def _pack(frames: Sequence[Frame]) -> tuple[list[str], np.ndarray, np.ndarray]:
    most = max([len(f.classes) for f in frames] + [1])
    boxes = np.zeros((len(frames), most, 4), np.float32)
    ids = np.full((len(frames), most), NO_CLASS, np.int32)
    for i, frame in enumerate(frames):
        boxes[i, :len(frame.classes)] = frame.boxes
        ids[i, :len(frame.classes)] = frame.classes
    return [f.image_path for f in frames], boxes, ids


# --------------------------------------------------------------------------------------- TF transforms

#: Random numbers one frame's augmentation may draw (6 spatial, 4 colour).
_DRAWS_PER_FRAME = 10
#: Draws of the SSD options (zoom-out: 1; IoU crop: 2).
_SSD_DRAWS = 3


class _Draws:
    """Stateless random numbers for one frame: the i-th draw uses the i-th seed split from the frame's seed
    (``random_seed``, position in the stream), so a frame's augmentation never depends on which thread of the
    parallel map ran it, and a run with the same ``random_seed`` sees the same data."""

    def __init__(self, seed: Any, count: int = _DRAWS_PER_FRAME):
        import tensorflow as tf

        self._seeds = tf.random.experimental.stateless_split(seed, num=count)
        self._count = count
        self._next = 0

    def _seed(self) -> Any:
        if self._next >= self._count:
            raise RuntimeError(f"more random draws per frame than the {self._count} split for it")
        self._next += 1
        return self._seeds[self._next - 1]

    def uniform(self, shape: Any, minval: Any = 0.0, maxval: Any = 1.0) -> Any:
        import tensorflow as tf

        return tf.random.stateless_uniform(shape, seed=self._seed(), minval=minval, maxval=maxval)

    def normal(self, shape: Any, stddev: Any) -> Any:
        import tensorflow as tf

        return tf.random.stateless_normal(shape, seed=self._seed(), stddev=stddev)


def _affine(pre: Preprocessing, aug: Augmentation | None, height: Any, width: Any,
            draws: _Draws | None = None, boxes: Any = None, ssd_draws: _Draws | None = None) -> tuple[Any, Any]:
    """3×3 float32 matrix from (cropped) source pixels to output-canvas pixels (continuous coordinates), and which
    of ``boxes`` (source pixels) the IoU crop keeps (``None``: all)."""
    import tensorflow as tf

    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    if pre.min_side > 0:
        out_h, out_w = pre.canvas(height, width)
        sx, sy = tf.cast(out_w, tf.float32) / w, tf.cast(out_h, tf.float32) / h
    elif pre.auto_resize:
        sx, sy = pre.output_width / w, pre.output_height / h
    else:
        sx, sy = tf.constant(pre.scale_x, tf.float32), tf.constant(pre.scale_y, tf.float32)
    zero, one = tf.constant(0.0), tf.constant(1.0)
    m = tf.stack([[sx, zero, zero], [zero, sy, zero], [zero, zero, one]])
    if aug is None:
        return m, None
    w2, h2 = w * sx, h * sy  # the preprocessed image
    if draws is None:
        raise ValueError("an augmented frame needs its random draws")
    keep = None
    if aug.ssd_geometry:
        if ssd_draws is None or boxes is None:
            raise ValueError("zoom-out and the IoU crop need the frame's boxes and their random draws")
        expand = _zoom_out(aug, w2, h2, ssd_draws)
        m = tf.linalg.matmul(expand, m)
        crop, keep = _iou_crop(aug, _transform_boxes(boxes, m), w2, h2, ssd_draws)
        m = tf.linalg.matmul(crop, m)
    uniform = draws.uniform
    fx = tf.where(uniform([]) < aug.hflip_probability, -1.0, 1.0)
    fy = tf.where(uniform([]) < aug.vflip_probability, -1.0, 1.0)
    zoom = uniform([], aug.zoom_min, aug.zoom_max) if aug.zoom_max > aug.zoom_min else tf.constant(aug.zoom_min)
    angle = uniform([], -aug.rotate_rad_max, aug.rotate_rad_max) if aug.rotate_rad_max > 0 else zero
    tx = uniform([], -aug.translate_max_x, aug.translate_max_x) if aug.translate_max_x > 0 else zero
    ty = uniform([], -aug.translate_max_y, aug.translate_max_y) if aug.translate_max_y > 0 else zero
    cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
    cx, cy = w2 / 2.0, h2 / 2.0
    # about the centre: flip, then rotate and zoom; then translate.
    a = tf.stack([[cos * fx, -sin * fy], [sin * fx, cos * fy]])
    offset = tf.stack([cx + tx, cy + ty]) - tf.linalg.matvec(a, tf.stack([cx, cy]))
    aug_m = tf.concat([tf.concat([a, offset[:, None]], axis=1), [[zero, zero, one]]], axis=0)
    return tf.linalg.matmul(aug_m, m), keep


def _scale_translate(scale_x: Any, scale_y: Any, shift_x: Any, shift_y: Any) -> Any:
    """The 3×3 matrix of ``x' = scale_x·x + shift_x``, ``y' = scale_y·y + shift_y``."""
    import tensorflow as tf

    zero, one = tf.constant(0.0), tf.constant(1.0)
    return tf.stack([[scale_x, zero, shift_x], [zero, scale_y, shift_y], [zero, zero, one]])


def _zoom_out(aug: Augmentation, w2: Any, h2: Any, draws: _Draws) -> Any:
    """Zoom-out in preprocessed pixels: shrink by 1/r (r uniform in the spec's range) to a random place."""
    import tensorflow as tf

    apply, ratio, place_x, place_y = tf.unstack(draws.uniform([4]))
    ratio = aug.zoom_out_min_scale + ratio * (aug.zoom_out_max_scale - aug.zoom_out_min_scale)
    ratio = tf.where(apply < aug.zoom_out_probability, ratio, 1.0)
    # On a canvas r times the image, the image's corner lies uniformly in [0, (r−1)·size]; scaled back by 1/r.
    shift_x = place_x * (ratio - 1.0) * w2 / ratio
    shift_y = place_y * (ratio - 1.0) * h2 / ratio
    return _scale_translate(1.0 / ratio, 1.0 / ratio, shift_x, shift_y)


def _iou_crop(aug: Augmentation, boxes: Any, w2: Any, h2: Any, draws: _Draws) -> tuple[Any, Any]:
    """The SSD paper's patch sampling on boxes in preprocessed pixels: (crop matrix, kept-object mask)."""
    import tensorflow as tf

    trials = aug.iou_crop_trials
    apply, which = tf.unstack(draws.uniform([2]))
    choices = tf.constant(aug.iou_crop_min_ious, tf.float32)
    min_iou = tf.gather(choices, tf.minimum(tf.cast(which * len(aug.iou_crop_min_ious), tf.int32),
                                            len(aug.iou_crop_min_ious) - 1))
    scale_u, ratio_u, x_u, y_u = tf.unstack(draws.uniform([4, trials]))
    low, high = aug.iou_crop_scale
    scale = low + scale_u * (high - low)
    log_low, log_high = math.log(aug.iou_crop_aspect_ratio[0]), math.log(aug.iou_crop_aspect_ratio[1])
    ratio = tf.exp(log_low + ratio_u * (log_high - log_low))
    patch_w = tf.minimum(scale * tf.sqrt(ratio), 1.0) * w2
    patch_h = tf.minimum(scale / tf.sqrt(ratio), 1.0) * h2
    x1 = x_u * (w2 - patch_w)
    y1 = y_u * (h2 - patch_h)
    patches = tf.stack([x1, y1, x1 + patch_w, y1 + patch_h], axis=1)  # [T, 4]

    bx1, by1, bx2, by2 = (boxes[None, :, i] for i in range(4))  # [1, G]
    inter_w = tf.maximum(tf.minimum(bx2, patches[:, 2:3]) - tf.maximum(bx1, patches[:, 0:1]), 0.0)
    inter_h = tf.maximum(tf.minimum(by2, patches[:, 3:4]) - tf.maximum(by1, patches[:, 1:2]), 0.0)
    inter = inter_w * inter_h
    union = (bx2 - bx1) * (by2 - by1) + (patch_w * patch_h)[:, None] - inter
    iou = inter / tf.maximum(union, 1e-9)  # [T, G]
    cx, cy = (bx1 + bx2) / 2.0, (by1 + by2) / 2.0
    inside = ((cx > patches[:, 0:1]) & (cx < patches[:, 2:3]) & (cy > patches[:, 1:2]) & (cy < patches[:, 3:4]))
    real = (bx2 > bx1) & (by2 > by1)  # padding rows are zero boxes
    inside &= real
    good_iou = tf.reduce_any((iou >= min_iou) & real, axis=1) | (min_iou <= 0.0)
    valid = good_iou & tf.reduce_any(inside, axis=1)  # [T]
    found = tf.reduce_any(valid) & (apply < aug.iou_crop_probability)
    pick = tf.argmax(tf.cast(valid, tf.int32), output_type=tf.int32)  # the first valid patch
    patch = tf.where(found, patches[pick], tf.stack([0.0, 0.0, w2, h2]))
    keep = tf.where(found, inside[pick], tf.ones_like(inside[0]))
    sx = w2 / (patch[2] - patch[0])
    sy = h2 / (patch[3] - patch[1])
    return _scale_translate(sx, sy, -patch[0] * sx, -patch[1] * sy), keep


def _color(image: Any, aug: Augmentation, draws: _Draws) -> Any:
    import tensorflow as tf

    uniform = draws.uniform
    if aug.hue_rotation_max > 0:
        image = tf.image.adjust_hue(image, uniform([], -aug.hue_rotation_max, aug.hue_rotation_max) / 360.0)
    if aug.saturation_shift_max > 0:
        image = tf.image.adjust_saturation(
            image, uniform([], 1.0 - aug.saturation_shift_max, 1.0 + aug.saturation_shift_max))
    if aug.contrast_scale_max > 0:
        scale = uniform([], 1.0 - aug.contrast_scale_max, 1.0 + aug.contrast_scale_max)
        image = (image - aug.contrast_center) * scale + aug.contrast_center
    if aug.color_shift_stddev > 0:
        image = image + draws.normal([1, 1, 3], stddev=aug.color_shift_stddev)
    return tf.clip_by_value(image, 0.0, 1.0)


def _warp(image: Any, matrix: Any, out_h: Any, out_w: Any) -> Any:
    """Render ``image`` (HWC) on the output canvas through ``matrix`` (bilinear, zeros outside)."""
    import tensorflow as tf

    inv = tf.linalg.inv(matrix)
    # continuous → pixel-index coordinates: in_idx = inv·(out_idx + 0.5) − 0.5
    lin = inv[:2, :2]
    shift = tf.linalg.matvec(lin, tf.constant([0.5, 0.5])) + inv[:2, 2] - 0.5
    transform = tf.stack([lin[0, 0], lin[0, 1], shift[0], lin[1, 0], lin[1, 1], shift[1], 0.0, 0.0])
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.cast(tf.stack([out_h, out_w]), tf.int32),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return warped[0]


def _transform_boxes(boxes: Any, matrix: Any) -> Any:
    import tensorflow as tf

    x1, y1, x2, y2 = tf.unstack(boxes, axis=1)
    xs = tf.stack([x1, x2, x1, x2], axis=1)
    ys = tf.stack([y1, y1, y2, y2], axis=1)
    tx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    ty = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    return tf.stack([tf.reduce_min(tx, 1), tf.reduce_min(ty, 1), tf.reduce_max(tx, 1), tf.reduce_max(ty, 1)], 1)


def load_example(path: Any, boxes: Any, classes: Any, pre: Preprocessing, aug: Augmentation | None,
                 seed: Any = (0, 0)) -> Any:
    """One frame → (image CHW float32, boxes [M, 4] on the canvas, classes [M], −1 where dropped).

    ``seed`` (two integers) determines the frame's random augmentation."""
    import tensorflow as tf

    seed = tf.cast(seed, tf.int64)
    draws = _Draws(seed) if aug is not None else None
    # The SSD options draw from their own stream, so switching them on leaves the other draws as they were.
    ssd_draws = (_Draws(tf.random.experimental.stateless_fold_in(seed, 1), count=_SSD_DRAWS)
                 if aug is not None and aug.ssd_geometry else None)

    image = checked_decode(path, pre.channels)  # a truncated file fails naming itself
    image = tf.image.convert_image_dtype(image, tf.float32)
    if pre.crop is not None:
        left, top, right, bottom = pre.crop
        image = image[top:bottom if bottom > 0 else None, left:right if right > 0 else None]
        boxes = boxes - tf.constant([left, top, left, top], tf.float32)
    shape = tf.shape(image)
    matrix, keep = _affine(pre, aug, shape[0], shape[1], draws, boxes, ssd_draws)
    if aug is not None and draws is not None and pre.channels == 3:
        image = _color(image, aug, draws)
    identity = aug is None and not pre.auto_resize and pre.scale_x == 1.0 and pre.scale_y == 1.0 \
        and pre.min_side <= 0
    out_h, out_w = pre.canvas(shape[0], shape[1])
    if identity:  # exact pixels: pad or clip at the right and bottom
        image = image[:pre.output_height, :pre.output_width]
        pad_h = pre.output_height - tf.shape(image)[0]
        pad_w = pre.output_width - tf.shape(image)[1]
        image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
        image = tf.ensure_shape(image, [pre.output_height, pre.output_width, pre.channels])
    else:
        image = _warp(image, matrix, out_h, out_w)
        boxes = _transform_boxes(boxes, matrix)
    limit = tf.cast(tf.stack([out_w, out_h, out_w, out_h]), tf.float32)
    boxes = tf.clip_by_value(boxes, 0.0, limit)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    valid = (classes >= 0) & (width > 0) & (height > 0)
    if keep is not None:
        valid &= keep
    if aug is not None:
        valid &= (width >= pre.min_bbox_width) & (height >= pre.min_bbox_height)
    classes = tf.where(valid, classes, NO_CLASS)
    return tf.transpose(image, [2, 0, 1]), boxes, classes


def frames_dataset(frames: Sequence[Frame], pre: Preprocessing, aug: Augmentation | None, *,
                   shuffle: bool = False, seed: int = 0, repeat: bool = False) -> Any:
    """``tf.data`` of (image CHW, boxes [M, 4], classes [M], frame index) per frame.

    M is the most objects of any frame; row i is the frame's object i (class −1 where dropped, then padding rows),
    so :func:`kept_objects` picks the frame's other per-object values for the rows kept.

    Reproducible: the order comes from ``seed``, and each element's augmentation from (``seed``, its
    position in the stream) through stateless random ops, so the parallel map can stay ordered
    (``deterministic=True``) without the augmentation depending on thread timing."""
    import tensorflow as tf

    paths, boxes, ids = _pack(frames)
    ds = tf.data.Dataset.from_tensor_slices((paths, boxes, ids, np.arange(len(frames), dtype=np.int32)))
    if shuffle:
        ds = ds.shuffle(len(frames), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    ds = ds.enumerate()

    def load(position: Any, element: Any) -> Any:
        path, box, cls, index = element
        frame_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(position, tf.int64)])
        image, box, cls = load_example(path, box, cls, pre, aug, frame_seed)
        return image, box, cls, index

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def share_cpu_with_training(ds: Any) -> Any:
    """``ds`` with a small thread pool of its own when no GPU trains: the model's ops then use every core, and
    tf.data's default pool preempts them, so that a stalled thread holds up each parallel op. Measured (SSD,
    resnet10 at 384×256, batch 8, 2 cores): 7.8 images/s with the default pool, 9.7 with one pipeline thread,
    against 10.7 for a bare fit on one in-memory batch. A quarter of the cores (at least one) keeps larger
    machines fed; with a GPU the pipeline keeps tf.data's defaults."""
    import os

    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return ds
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    options = tf.data.Options()
    options.threading.private_threadpool_size = max(1, cores // 4)
    options.threading.max_intra_op_parallelism = 1
    return ds.with_options(options)


def steps(count: int, batch_size: int, drop_remainder: bool = False) -> int:
    return count // batch_size if drop_remainder else math.ceil(count / batch_size)


# ------------------------------------------------------------------------------ the spec's sections (common.proto)

def preprocessing_from_spec(spec: LoadedSpec[Any]) -> Preprocessing:
    """``augmentation_config.preprocessing`` (common.proto: DetectNet_v2 and the SSD family)."""
    pre = spec.message.augmentation_config.preprocessing
    crop = None
    if pre.crop_right > 0 or pre.crop_bottom > 0:
        crop = (pre.crop_left, pre.crop_top, pre.crop_right, pre.crop_bottom)
    return Preprocessing(
        output_width=pre.output_image_width,
        output_height=pre.output_image_height,
        channels=pre.output_image_channel if pre.HasField("output_image_channel") else 3,
        crop=crop,
        scale_x=pre.scale_width if pre.scale_width > 0 else 1.0,
        scale_y=pre.scale_height if pre.scale_height > 0 else 1.0,
        auto_resize=pre.enable_auto_resize,
        min_bbox_width=pre.min_bbox_width,
        min_bbox_height=pre.min_bbox_height,
    )


def augmentation_from_spec(spec: LoadedSpec[Any]) -> Augmentation:
    """``augmentation_config.spatial_augmentation`` and ``color_augmentation`` (common.proto)."""
    config = spec.message.augmentation_config
    spatial, color = config.spatial_augmentation, config.color_augmentation
    result = Augmentation()
    if config.HasField("spatial_augmentation"):
        result = Augmentation(
            hflip_probability=spatial.hflip_probability, vflip_probability=spatial.vflip_probability,
            zoom_min=spatial.zoom_min, zoom_max=spatial.zoom_max, translate_max_x=spatial.translate_max_x,
            translate_max_y=spatial.translate_max_y,
            rotate_rad_max=spatial.rotate_rad_max if spatial.HasField("rotate_rad_max") else 0.0,
            zoom_out_probability=spatial.zoom_out_probability,
            zoom_out_max_scale=max(1.0, spatial.zoom_out_max_scale) if spatial.zoom_out_probability > 0 else 1.0,
            iou_crop_probability=spatial.iou_crop_probability)
    if config.HasField("color_augmentation") and preprocessing_from_spec(spec).channels == 3:
        result = Augmentation(**{**result.__dict__,
                                 "color_shift_stddev": color.color_shift_stddev,
                                 "hue_rotation_max": color.hue_rotation_max,
                                 "saturation_shift_max": color.saturation_shift_max,
                                 "contrast_scale_max": color.contrast_scale_max,
                                 "contrast_center": color.contrast_center})
    return result


# ------------------------------------------------------------------------------------- evaluation data

def record_class_counts(spec: Any) -> Counter[str]:
    """Objects per class name (lower case, before target_class_mapping) in every record of dataset_config."""
    config = spec.message.dataset_config
    sources = [*config.data_sources, *([config.validation_data_source] if config.HasField("validation_data_source")
                                       else [])]
    counts: Counter[str] = Counter()
    for source in sources:
        for path in sorted(glob.glob(source.tfrecords_path)):
            if not Path(path).is_file() or path.endswith(".json"):
                continue
            for data in read_records(path):
                names = decode_example(data, source=path).get("target/object_class", [])
                counts.update(n.decode("utf-8").lower() if isinstance(n, bytes) else str(n).lower() for n in names)
    return counts


def check_evaluation_data(spec: Any, classes: Sequence[str], use_training_set: bool) -> None:
    """Warn, with the class map, about target_class_mapping classes that no record holds and about target classes
    without objects in the evaluated frames; no object of any target class there is an error."""
    from libtlt.spec import values

    train, val = split_frames(spec, classes)  # raises DataError for patterns that match no file
    mapping = values.class_mapping(spec.message.dataset_config)
    class_map = ", ".join(f"{k}: {v}" for k, v in mapping.items())
    found = record_class_counts(spec)
    absent = [k for k in mapping if found[k.lower()] == 0]
    if absent:
        logger.warning("target_class_mapping names class(es) %s that no record holds (classes in the records: %s). "
                       "Class map (Label in GT: Label in tfrecords file): %s", ", ".join(absent),
                       ", ".join(sorted(found)) or "none", class_map)
    frames = [*train, *val] if use_training_set else val
    counts = np.zeros(len(classes), dtype=np.int64)
    for frame in frames:
        counts += np.bincount(np.asarray(frame.classes, dtype=np.int64), minlength=len(classes))[:len(classes)]
    where = "training and validation" if use_training_set else "validation"
    if frames and not counts.any():
        raise DataError(f"the {where} records hold no object of any target class ({', '.join(classes)}); "
                        f"check target_class_mapping (Label in GT: Label in tfrecords file: {class_map})",
                        location=spec.locate("dataset_config.target_class_mapping"))
    missing = [c for c, n in zip(classes, counts, strict=True) if n == 0]
    if missing:
        logger.warning("Target class(es) %s have no object in the %s records: their AP is undefined and left out "
                       "of mAP", ", ".join(missing), where)
