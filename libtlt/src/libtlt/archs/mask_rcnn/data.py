"""MaskRCNN's input pipeline: the COCO records ``tlt-dataset-convert`` writes (docs/formats.md: embedded image bytes,
normalised boxes, COCO category ids, crowd flags, per-instance 0/1 PNG masks) → tf.data batches.

Per image (DETECTORS-TWO-STAGE.md §2 "Network"): decode, scale by ``s = min(H/h, W/w)`` keeping the aspect ratio,
RGB/255 minus (0.485, 0.456, 0.406) divided by 0.224 (TAO's 'th' normalisation), optional horizontal flip
(``augment_input_data``), zero padding to ``image_size`` at the bottom/right, NCHW. Ground truth: boxes (y1, x1, y2,
x2) in network-input pixels, classes = category ids, each mask cropped to its box at ``gt_mask_size`` from the
full-resolution PNG (pixel-centre sampling, as :func:`~libtlt.archs.mask_rcnn.mask_targets.crop_gt_masks`); crowd
instances dropped when ``skip_crowd_during_training``; padded (class −1) or cut to ``max_num_instances``.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from libtlt.errors import DataError

if TYPE_CHECKING:
    import tensorflow as tf

MEAN = (0.485, 0.456, 0.406)
STD = 0.224
#: The trainer's input names (the dataset's dict keys).
IMAGES, GT_BOXES, GT_CLASSES, GT_MASKS = "images", "gt_boxes", "gt_classes", "gt_masks"


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs from ``data_config`` and ``maskrcnn_config``."""

    image_hw: tuple[int, int]
    gt_mask_size: int = 112
    max_num_instances: int = 200
    augment: bool = True
    skip_crowd: bool = True


def record_files(pattern: str) -> list[str]:
    """The sorted files of a glob; none is a ``DataError``."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no records match {pattern}")
    return files


@dataclass(frozen=True)
class RecordScan:
    """What one pass over the training records found: how many, and the first category id outside ``1..`` the
    network's classes (``bad_id`` with its file and 0-based record index; ``None`` when all fit)."""

    count: int
    bad_id: int | None = None
    bad_file: str = ""
    bad_index: int = -1


def scan_records(files: Sequence[str], num_classes: int) -> RecordScan:
    """Count the examples and find the first category id that ``num_classes`` (background included) cannot hold, so
    that training refuses it before it starts instead of failing inside the loss (read without TensorFlow)."""
    from libtlt.io import tfrecord
    from libtlt.io.protos import tf_example_pb2

    count = 0
    example = tf_example_pb2.Example()
    for path in files:
        for index, data in enumerate(tfrecord.read_records(path)):
            count += 1
            example.ParseFromString(data)
            feature = example.features.feature.get("image/object/class/label")
            ids = feature.int64_list.value if feature is not None else ()
            bad = [i for i in ids if not 0 < i < num_classes]
            if bad:
                return RecordScan(count, int(bad[0]), str(path), index)
    return RecordScan(count)


def normalize(image: Any) -> Any:
    """RGB in [0, 255] (HWC) → the network's normalised values (works on NumPy arrays and tensors)."""
    return (image / 255.0 - np.asarray(MEAN, np.float32)) / np.float32(STD)


def _parse(serialized: Any) -> dict[str, Any]:
    import tensorflow as tf

    floats = tf.io.VarLenFeature(tf.float32)
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                "image/source_id": tf.io.FixedLenFeature([], tf.string, default_value="0"),
                "image/object/bbox/xmin": floats, "image/object/bbox/ymin": floats,
                "image/object/bbox/xmax": floats, "image/object/bbox/ymax": floats,
                "image/object/class/label": tf.io.VarLenFeature(tf.int64),
                "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
                "image/object/mask": tf.io.VarLenFeature(tf.string)}
    parsed = tf.io.parse_single_example(serialized, features)
    return {k: tf.sparse.to_dense(v) if isinstance(v, tf.sparse.SparseTensor) else v for k, v in parsed.items()}


def resize_scale(height: int, width: int, image_hw: Sequence[int]) -> float:
    """The aspect-keeping factor that fits an ``height`` × ``width`` image into ``image_hw``."""
    return min(image_hw[0] / height, image_hw[1] / width)


def _resize_pad(image: tf.Tensor, image_hw: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(normalised resized image (unpadded), scale, resized (h, w))`` of a decoded uint8 HWC image."""
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(image_hw[0] / shape[0], image_hw[1] / shape[1])
    size = tf.minimum(tf.cast(tf.round(shape * scale), tf.int32), tf.constant(list(image_hw), tf.int32))
    resized = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    return normalize(resized), scale, size


def _pad_nchw(image: tf.Tensor, image_hw: Sequence[int]) -> tf.Tensor:
    import tensorflow as tf

    padded = tf.image.pad_to_bounding_box(image, 0, 0, image_hw[0], image_hw[1])
    return tf.transpose(padded, [2, 0, 1])


def _mask_crops(pngs: tf.Tensor, boxes_px: tf.Tensor, size: int, shape: tf.Tensor) -> tf.Tensor:
    """``[G, size, size]`` crops of the full-resolution masks inside their boxes (original pixels, y1 x1 y2 x2)."""
    import tensorflow as tf

    height, width = shape[0], shape[1]

    def decode(png: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(tf.io.decode_png(png, channels=1), tf.float32)
        return tf.image.resize(mask, [height, width], method="nearest")  # a mask of another size: fit the image

    masks = tf.map_fn(decode, pngs, fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32))
    extent = tf.maximum(tf.stack([height, width, height, width]) - 1.0, 1.0)
    span = boxes_px[:, 2:] - boxes_px[:, :2]
    first = boxes_px[:, :2] + 0.5 * span / size - 0.5
    last = boxes_px[:, 2:] - 0.5 * span / size - 0.5
    norm = tf.concat([first, last], axis=1) / extent
    crops = tf.image.crop_and_resize(masks, norm, tf.range(tf.shape(masks)[0]), [size, size], method="bilinear")
    return crops[..., 0]


def _example(serialized: Any, config: PipelineConfig, *, training: bool, seed: int) -> dict[str, tf.Tensor]:
    import tensorflow as tf

    p = _parse(serialized)
    image = tf.io.decode_image(p["image/encoded"], channels=3, expand_animations=False)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    normalised, scale, size = _resize_pad(image, config.image_hw)
    boxes = tf.stack([p["image/object/bbox/ymin"] * shape[0], p["image/object/bbox/xmin"] * shape[1],
                      p["image/object/bbox/ymax"] * shape[0], p["image/object/bbox/xmax"] * shape[1]], axis=1)
    classes = tf.cast(p["image/object/class/label"], tf.int32)
    pngs = p["image/object/mask"]
    crowd = p["image/object/is_crowd"]
    crowd = tf.pad(crowd, [[0, tf.shape(classes)[0] - tf.shape(crowd)[0]]])
    keep = tf.ones_like(classes, tf.bool)
    if config.skip_crowd:
        keep = crowd == 0
    boxes, classes, pngs = tf.boolean_mask(boxes, keep), tf.boolean_mask(classes, keep), tf.boolean_mask(pngs, keep)
    crops = _mask_crops(pngs, boxes, config.gt_mask_size, shape)
    boxes = boxes * scale
    if training and config.augment:
        flip = tf.random.uniform([], seed=seed) < 0.5
        width = tf.cast(size[1], tf.float32)
        normalised = tf.cond(flip, lambda: tf.image.flip_left_right(normalised), lambda: normalised)
        boxes = tf.cond(flip, lambda: tf.stack([boxes[:, 0], width - boxes[:, 3], boxes[:, 2], width - boxes[:, 1]],
                                               axis=1), lambda: boxes)
        crops = tf.cond(flip, lambda: crops[:, :, ::-1], lambda: crops)
    g = config.max_num_instances
    boxes, classes, crops = boxes[:g], classes[:g], crops[:g]
    missing = g - tf.shape(classes)[0]
    s = config.gt_mask_size
    return {IMAGES: _pad_nchw(normalised, config.image_hw),
            GT_BOXES: tf.ensure_shape(tf.pad(boxes, [[0, missing], [0, 0]]), [g, 4]),
            GT_CLASSES: tf.ensure_shape(tf.pad(classes, [[0, missing]], constant_values=-1), [g]),
            GT_MASKS: tf.ensure_shape(tf.pad(crops, [[0, missing], [0, 0], [0, 0]]), [g, s, s])}


def training_dataset(files: Sequence[str], config: PipelineConfig, *, batch_size: int, seed: int = 0,
                     shuffle_buffer: int = 4096) -> tf.data.Dataset:
    """Repeated, shuffled batches of the trainer's inputs (dict of :data:`IMAGES`, :data:`GT_BOXES`, ...)."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(list(files)).shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat().map(lambda r: _example(r, config, training=True, seed=seed),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class EvaluationBatch:
    """Preprocessed images ``[B, 3, H, W]`` and each one's COCO id and original (width, height)."""

    images: np.ndarray
    image_ids: list[int]
    sizes: list[tuple[int, int]]


def evaluation_batches(files: Sequence[str], image_hw: Sequence[int], *, batch_size: int,
                       limit: int | None = None) -> Iterator[EvaluationBatch]:
    """The records' images preprocessed as in training without augmentation, ``limit`` images at most."""
    import tensorflow as tf

    def one(serialized: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        p = _parse(serialized)
        image = tf.io.decode_image(p["image/encoded"], channels=3, expand_animations=False)
        normalised, _, _ = _resize_pad(image, image_hw)
        return _pad_nchw(normalised, image_hw), tf.strings.to_number(p["image/source_id"], tf.int64), tf.shape(image)

    ds = tf.data.TFRecordDataset(list(files))
    if limit:
        ds = ds.take(limit)
    for images, ids, shapes in ds.map(one).batch(batch_size).as_numpy_iterator():
        yield EvaluationBatch(images.astype(np.float32), [int(i) for i in ids],
                              [(int(s[1]), int(s[0])) for s in shapes])
