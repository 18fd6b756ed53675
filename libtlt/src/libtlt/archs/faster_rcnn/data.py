"""FasterRCNN's input side: classes, input preprocessing, the training dataset with RPN targets, evaluation and
calibration data (DETECTORS-TWO-STAGE.md §1 "Input and preprocessing", "RPN target assignment").

The records are read by the shared KITTI-TFRecord loader (:mod:`libtlt.data.detection`), whichever layout the spec
is written in (002: ``dataset_config`` / ``augmentation_config`` at the top; 000: ``training_config``'s
``kitti_data_config`` / ``data_augmentation``): the loader sees them through :class:`_CommonSections`, whose error
locations point at the section the user actually wrote.

* **Classes** (:func:`class_names`): ``sorted(set(target_class_mapping values))`` — the foreground classes, ids
  0..C−1 in that order. **Background is the last id (C) and is not in the list** (unlike SSD); labels.txt
  (:func:`labels_txt`) lists the foreground names, then ``background``.
* **Input** (:func:`input_config`): ``model_config.input_image_config``: the static ``size_height_width``, or
  ``size_min`` (a dynamic shape, as TAO's): every image is resized keeping its aspect ratio so that its shorter side
  is ``min`` (the longer one rounded to the nearest pixel), the network takes any size (input shape
  ``(C, -1, -1)``), training runs one image per batch and the anchors and RPN targets follow each image's size. Such
  a model cannot be exported (tlt-export says so), as in TAO.
* **Preprocessing** (:meth:`InputConfig.normalize`): NCHW float32, channels in ``image_channel_order``
  (``bgr``: blue first; ``rgb``; ``l``: one grey channel), each channel ``(pixel − mean) / image_scaling_factor``
  on the 0–255 scale. ``image_channel_mean`` maps channel names (``b``, ``g``, ``r`` or ``l``) to means; a spec that
  gives none gets the manuals' sample values (b 103.939, g 116.779, r 123.68; l their BT.601 grey mix, 117.3786,
  as the SSD family).
* **Geometry**: the images go through ``augmentation_config.preprocessing`` (crop, scale, auto-resize, then pad or
  clip at the right and bottom) onto a canvas of the model size; with ``training_config.enable_augmentation`` the
  spatial and colour augmentation of ``augmentation_config`` follow (the shared :class:`Augmentation`); without it
  nothing else.

Training batches (:func:`training_dataset`) are ``(inputs, targets)``:

* ``inputs["input_image"]`` ``[B, C, H, W]`` float32 (as above);
* ``inputs["gt_boxes"]`` ``[B, G, 4]`` float32 ``(x1, y1, x2, y2)`` in network-input pixels, G =
  ``max_objects_num_per_image``; the real boxes first, then all-zero padding rows;
* ``inputs["gt_classes"]`` ``[B, G]`` int32, foreground ids 0..C−1, −1 on padding rows;
* ``targets["rpn_out_class"]`` ``[B, Hf, Wf, 2A]`` float32: channels 0..A−1 the valid mask (1 where the anchor
  is sampled, positive or negative), channels A..2A−1 the label (1 positive, else 0);
* ``targets["rpn_out_regress"]`` ``[B, Hf, Wf, 8A]`` float32: channels 4a..4a+3 the label of anchor a (repeated
  four times), channels 4A + 4a .. 4A + 4a + 3 its deltas ``(tx, ty, tw, th)`` (+1 convention; zero off positives).

That is TAO's target layout in NHWC, channel a / 4a..4a+3 as the network's ``rpn_out_class`` ``[N, Hf, Wf, A]`` and
``rpn_out_regress`` ``[N, Hf, Wf, 4A]`` (and as ``training.rpn_labels_and_deltas`` reads it). The targets come
from :func:`~libtlt.archs.faster_rcnn.rpn_targets.rpn_targets` per image inside the pipeline, on the anchors of
the stride-16 feature map (Hf = ⌈H/16⌉, Wf = ⌈W/16⌉, as ``FasterRcnnNetworkConfig.feature_hw``), with
``training_config``'s ``rpn_min_overlap``, ``rpn_max_overlap`` and ``rpn_mini_batch``.

Randomness: the order of the frames, each frame's augmentation (the shared loader, stateless) and each frame's
RPN sampling (a NumPy generator seeded with ``(seed, position in the stream)``) all derive from ``seed``, so a run
is reproducible and independent of thread timing.

``max_objects_num_per_image``: a frame with more objects (after ``target_class_mapping``) than G is never
truncated silently: with ``strict`` the dataset is refused with a ``SpecError`` at that field naming the image;
otherwise one warning per dataset names how many images exceed G and the largest, and such a frame keeps its first
G boxes that survive augmentation, in record order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from libtlt.archs.faster_rcnn import validation
from libtlt.errors import DataError, SpecError
from libtlt.log import get_logger
from libtlt.registry import CalibrationData
from libtlt.spec import LoadedSpec
from libtlt.spec import values as spec_values
from libtlt.spec.protos import common_pb2
from libtlt.spec.protos import faster_rcnn_pb2 as pb

logger = get_logger("libtlt.archs.faster_rcnn.data")

BACKGROUND = "background"
#: Network channel → mean when the spec gives no ``image_channel_mean`` (the manuals' sample values; ``l`` is
#: their BT.601 grey mix, as the SSD family's grey offset).
DEFAULT_MEANS = {"b": 103.939, "g": 116.779, "r": 123.68, "l": 117.3786}
INPUT_NAME = "input_image"
GT_BOXES = "gt_boxes"
GT_CLASSES = "gt_classes"
RPN_CLASS = "rpn_out_class"
RPN_REGRESS = "rpn_out_regress"
DEFAULT_EVAL_BATCH_SIZE = 1


def _f(value: float) -> float:
    """A protobuf float (32-bit) as the decimal the user wrote."""
    return float(f"{value:.7g}")


# ---------------------------------------------------------------------------------------------- sections

def _model(spec: LoadedSpec[Any]) -> tuple[str, pb.ModelConfig]:
    found = validation.section(spec.message, "model")
    if found is None:
        raise spec.error("model_config", "the spec has no model_config (or network_config) section")
    return found[0], found[1]


def _dataset(spec: LoadedSpec[Any]) -> tuple[str, common_pb2.DatasetConfig]:
    found = validation.section(spec.message, "dataset")
    if found is None:
        raise spec.error("dataset_config", "the spec has no dataset_config (or training_config.kitti_data_config)")
    return found[0], found[1]


@dataclass
class _CommonSections(LoadedSpec[Any]):
    """The spec as :mod:`libtlt.data.detection` reads it: ``message.dataset_config`` and
    ``message.augmentation_config`` at the top, whichever layout was written; ``locate`` maps those paths back
    to where the user wrote them (``renames``: (path seen by the loader, path in the file))."""

    renames: tuple[tuple[str, str], ...] = ()

    def locate(self, field_path: str) -> str:
        for seen, written in self.renames:
            if field_path == seen or field_path.startswith((seen + ".", seen + "[")):
                field_path = written + field_path[len(seen):]
                break
        return super().locate(field_path)


def _common(spec: LoadedSpec[Any]) -> _CommonSections:
    dataset_path, dataset = _dataset(spec)
    found = validation.section(spec.message, "augmentation")
    aug_path, aug = found if found is not None else ("augmentation_config", common_pb2.AugmentationConfig())
    return _CommonSections(message=SimpleNamespace(dataset_config=dataset, augmentation_config=aug),
                           path=spec.path, positions=spec.positions, syntax=spec.syntax,
                           renames=(("dataset_config", dataset_path), ("augmentation_config", aug_path)))


# ---------------------------------------------------------------------------------------------- classes

def class_names(spec: LoadedSpec[Any]) -> list[str]:
    """The foreground classes in network order: the sorted distinct ``target_class_mapping`` values. Background
    is not in the list: its id is ``len(class_names(spec))``, the last one."""
    path, dataset = _dataset(spec)
    names = sorted(set(spec_values.target_classes(dataset)))
    if not names:
        raise spec.error(f"{path}.target_class_mapping", "target_class_mapping maps no class")
    for index, entry in enumerate(dataset.target_class_mapping):
        if entry.value.lower() == BACKGROUND:
            raise spec.error(f"{path}.target_class_mapping[{index}].value",
                             f"'{BACKGROUND}' is FasterRCNN's own last class; map objects to another name")
    return names


def labels_txt(spec: LoadedSpec[Any]) -> list[str]:
    """labels.txt's lines: the foreground classes (:func:`class_names`), then ``background``."""
    return [*class_names(spec), BACKGROUND]


# ------------------------------------------------------------------------------------------------ input

@dataclass(frozen=True)
class InputConfig:
    """``model_config.input_image_config``, parsed (module docstring, "Preprocessing")."""

    channels: int  # 3 (RGB) or 1 (GRAYSCALE)
    channel_order: str  # 'bgr', 'rgb' or 'l'
    height: int  # -1 with size_min
    width: int  # -1 with size_min
    means: tuple[float, ...]  # one per network channel, in channel_order
    scaling_factor: float
    max_objects: int  # max_objects_num_per_image: G, the ground-truth rows per image
    #: Where max_objects_num_per_image is (for errors).
    max_objects_field: str = "model_config.input_image_config.max_objects_num_per_image"
    #: ``size_min.min``: the shorter side of every resized image; 0 for a static size.
    min_side: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """The network input ``(C, H, W)``; ``(C, -1, -1)`` with ``size_min``."""
        return self.channels, self.height, self.width

    @property
    def dynamic(self) -> bool:
        return self.min_side > 0

    @property
    def feature_hw(self) -> tuple[int, int]:
        """The stride-16 feature map's ``(Hf, Wf)``: ceil division, as ``FasterRcnnNetworkConfig.feature_hw``."""
        return feature_hw((self.height, self.width))

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """The network input ``(width, height)`` of an image of ``width`` × ``height``: the model size, or with
        ``size_min`` the image scaled so that its shorter side is ``min_side`` (the other side rounded)."""
        if not self.dynamic:
            return self.width, self.height
        return resized_to_min_side(width, height, self.min_side)

    def normalize(self, image: Any) -> Any:
        """The loader's image (CHW, RGB or grey, 0..1; a NumPy array or a TensorFlow tensor) → the network's input:
        channels in ``channel_order``, ``(255·pixel − mean) / scaling_factor``."""
        return self._from_pixels(image * 255.0)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """An RGB (or grey) HWC 0–255 image of the model size, as image readers give it → the network's CHW
        float32 input (tlt-infer)."""
        pixels = np.asarray(image, np.float32)
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(self._from_pixels(pixels), np.float32)

    def _from_pixels(self, pixels: Any) -> Any:
        if self.channel_order == "bgr":
            pixels = pixels[::-1]
        means = np.asarray(self.means, np.float32)[:, None, None]
        return (pixels - means) / np.float32(self.scaling_factor)


def feature_hw(image_hw: Sequence[int]) -> tuple[int, int]:
    """The stride-16 feature map ``(Hf, Wf)`` of an input ``(H, W)`` ('same' padding: ceil division)."""
    if min(image_hw) <= 0:
        raise ValueError("an input of dynamic size (size_min) has no fixed feature map size")
    return math.ceil(image_hw[0] / validation.RPN_STRIDE), math.ceil(image_hw[1] / validation.RPN_STRIDE)


def resized_to_min_side(width: int, height: int, min_side: int) -> tuple[int, int]:
    """``size_min``'s ``(width, height)``: aspect ratio kept, the shorter side ``min_side``, the other rounded."""
    if width <= 0 or height <= 0:
        raise ValueError(f"an image needs a positive size, got {width}x{height}")
    scale = min_side / min(width, height)
    if width <= height:
        return min_side, max(1, round(height * scale))
    return max(1, round(width * scale)), min_side


def input_config(spec: LoadedSpec[Any]) -> InputConfig:
    """The input settings of ``spec`` (``size_min``: height and width −1, ``min_side`` set)."""
    model_path, model = _model(spec)
    where = f"{model_path}.input_image_config"
    image = model.input_image_config
    dynamic = image.HasField("size_min")
    if not dynamic and not image.HasField("size_height_width"):
        raise spec.error(where, "size_height_width { height, width } (or size_min { min }) is required")
    grey = image.image_type == pb.GRAYSCALE
    order = "l" if grey else image.image_channel_order
    if order not in ("bgr", "rgb", "l"):
        raise spec.error(f"{where}.image_channel_order", f"expected 'bgr' or 'rgb', got {order!r}")
    given = {("l" if e.key == "1" else e.key): _f(e.value) for e in image.image_channel_mean}
    missing = [c for c in order if given and c not in given]
    if missing:
        raise spec.error(f"{where}.image_channel_mean", f"no mean value for channel(s) {', '.join(missing)}")
    means = tuple(given[c] if given else DEFAULT_MEANS[c] for c in order)
    return InputConfig(channels=1 if grey else 3, channel_order=order,
                       height=-1 if dynamic else int(image.size_height_width.height),
                       width=-1 if dynamic else int(image.size_height_width.width), means=means,
                       scaling_factor=_f(image.image_scaling_factor),
                       max_objects=int(image.max_objects_num_per_image),
                       max_objects_field=f"{where}.max_objects_num_per_image",
                       min_side=int(image.size_min.min) if dynamic else 0)


def _preprocessing(common: _CommonSections, config: InputConfig) -> Any:
    """The shared loader's ``Preprocessing``: the spec's crop / scale / auto-resize / minimum box size onto a canvas
    of the model size (the output size and channels always come from input_image_config); with ``size_min`` each
    image is resized to its own canvas (shorter side ``min``) instead."""
    from libtlt.data.detection import preprocessing_from_spec

    return replace(preprocessing_from_spec(common), output_width=max(config.width, 0),
                   output_height=max(config.height, 0), channels=config.channels, min_side=config.min_side)


def _augmentation(spec: LoadedSpec[Any], common: _CommonSections) -> Any:
    from libtlt.data.detection import augmentation_from_spec

    return augmentation_from_spec(common) if spec.message.training_config.enable_augmentation else None


# --------------------------------------------------------------------------------------------- training

@dataclass(frozen=True)
class RpnTargetConfig:
    """What the RPN targets of one image depend on."""

    image_hw: tuple[int, int]
    feature_hw: tuple[int, int]
    scales: tuple[float, ...]
    ratios: tuple[float, ...]
    min_overlap: float
    max_overlap: float
    mini_batch: int
    #: ``training_config.std_scaling``: the RPN's regression targets are multiplied by it (the manual: "the scaling
    #: factor to multiply by for the RPN regression loss"), its predictions divided by it in the proposal layer.
    std_scaling: float = 1.0

    @property
    def num_anchors(self) -> int:
        return len(self.scales) * len(self.ratios)

    def anchors(self) -> np.ndarray:
        from libtlt.archs.faster_rcnn.anchors import grid_anchors

        return grid_anchors(self.feature_hw, validation.RPN_STRIDE, self.scales, self.ratios)

    def at_size(self, image_hw: Sequence[int]) -> RpnTargetConfig:
        """The same settings for an input of ``image_hw`` (a dynamic input size: each image its own)."""
        hw = (int(image_hw[0]), int(image_hw[1]))
        return replace(self, image_hw=hw, feature_hw=feature_hw(hw))


def rpn_target_config(spec: LoadedSpec[Any]) -> RpnTargetConfig:
    config = input_config(spec)
    _, model = _model(spec)
    training = spec.message.training_config
    return RpnTargetConfig(image_hw=(config.height, config.width),
                           feature_hw=(-1, -1) if config.dynamic else config.feature_hw,
                           scales=tuple(_f(s) for s in model.anchor_box_config.scale),
                           ratios=tuple(_f(r) for r in model.anchor_box_config.ratio),
                           min_overlap=_f(training.rpn_min_overlap), max_overlap=_f(training.rpn_max_overlap),
                           mini_batch=int(training.rpn_mini_batch),
                           std_scaling=_f(training.std_scaling) if training.HasField("std_scaling") else 1.0)


def rpn_target_tensors(config: RpnTargetConfig, anchors: np.ndarray, gt_boxes: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image's ``(rpn_out_class [Hf, Wf, 2A], rpn_out_regress [Hf, Wf, 8A])`` float32 targets (module
    docstring) for ``gt_boxes`` ``[G, 4]`` (all-zero rows are padding)."""
    from libtlt.archs.faster_rcnn.rpn_targets import rpn_targets

    labels, deltas = rpn_targets(anchors, gt_boxes, config.image_hw, min_overlap=config.min_overlap,
                                 max_overlap=config.max_overlap, mini_batch=config.mini_batch, rng=rng)
    hf, wf = config.feature_hw
    a = config.num_anchors
    labels = labels.reshape(hf, wf, a)
    positive = (labels == 1).astype(np.float32)
    cls = np.concatenate([(labels >= 0).astype(np.float32), positive], axis=-1)
    deltas = deltas.reshape(hf, wf, 4 * a) * np.float32(config.std_scaling)
    regress = np.concatenate([np.repeat(positive, 4, axis=-1), deltas], axis=-1)
    return cls, regress.astype(np.float32)


def _check_object_counts(spec: LoadedSpec[Any], frames: Sequence[Any], config: InputConfig, strict: bool) -> None:
    over = [f for f in frames if len(f.classes) > config.max_objects]
    if not over:
        return
    worst = max(over, key=lambda f: len(f.classes))
    if strict:
        raise SpecError(f"image {worst.image_path} has {len(worst.classes)} objects of the target classes, more "
                        f"than max_objects_num_per_image ({config.max_objects}; {len(over)} image(s) exceed it); "
                        "raise it to at least the dataset's maximum", location=spec.locate(config.max_objects_field),
                        field=config.max_objects_field)
    logger.warning("%d training image(s) have more objects than max_objects_num_per_image (%d), up to %d in %s; "
                   "each keeps only its first %d boxes. Raise %s to train on all of them.", len(over),
                   config.max_objects, len(worst.classes), worst.image_path, config.max_objects,
                   config.max_objects_field)


def _pad_objects(boxes: Any, classes: Any, rows: int) -> tuple[Any, Any]:
    """The real objects (class ≥ 0) first, at most ``rows``, then zero boxes / class −1 up to ``rows``."""
    import tensorflow as tf

    keep = tf.where(classes >= 0)[:rows, 0]
    boxes = tf.gather(boxes, keep)
    classes = tf.gather(classes, keep)
    pad = rows - tf.shape(keep)[0]
    boxes = tf.ensure_shape(tf.pad(boxes, [[0, pad], [0, 0]]), [rows, 4])
    classes = tf.ensure_shape(tf.pad(classes, [[0, pad]], constant_values=-1), [rows])
    return boxes, tf.cast(classes, tf.int32)


def training_dataset(spec: LoadedSpec[Any], *, batch_size: int, seed: int | None = 0,
                     strict: bool = False) -> tuple[Any, int, int]:
    """``(dataset, steps_per_epoch, num_samples)`` of the training frames (module docstring for the batches).

    The dataset repeats forever, shuffled; batches are full (``drop_remainder``, as the SSD family), so one
    epoch is ``num_samples // batch_size`` steps. Fewer frames than one batch is an error at
    ``training_config.batch_size_per_gpu``."""
    import tensorflow as tf

    from libtlt.data.detection import frames_dataset, share_cpu_with_training, split_frames, steps

    common = _common(spec)
    config = input_config(spec)
    train, _ = split_frames(common, class_names(spec))
    if len(train) < batch_size:
        raise SpecError(f"the training set has {len(train)} images, fewer than one batch ({batch_size})",
                        location=spec.locate("training_config.batch_size_per_gpu"))
    _check_object_counts(spec, train, config, strict)
    rpn = rpn_target_config(spec)
    a = rpn.num_anchors
    base_seed = int(seed or 0)
    # One size (the model's), or with size_min each image's own: the anchors of each size are made once.
    sized: dict[tuple[int, int], tuple[RpnTargetConfig, np.ndarray]] = {}

    def at_size(image_hw: tuple[int, int]) -> tuple[RpnTargetConfig, np.ndarray]:
        if image_hw not in sized:
            settings = rpn.at_size(image_hw)
            sized[image_hw] = settings, settings.anchors()
        return sized[image_hw]

    def targets(boxes: np.ndarray, position: np.ndarray, image_hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([base_seed, int(position)])
        settings, anchors = at_size((int(image_hw[0]), int(image_hw[1])))
        return rpn_target_tensors(settings, anchors, boxes, rng)

    hf, wf = (None, None) if config.dynamic else rpn.feature_hw

    def element(position: Any, frame: Any) -> Any:
        image, boxes, classes, _ = frame
        boxes, classes = _pad_objects(boxes, classes, config.max_objects)
        cls, regress = tf.numpy_function(targets, [boxes, position, tf.shape(image)[1:3]], [tf.float32, tf.float32],
                                         stateful=False)
        inputs = {INPUT_NAME: config.normalize(image), GT_BOXES: boxes, GT_CLASSES: classes}
        return inputs, {RPN_CLASS: tf.ensure_shape(cls, [hf, wf, 2 * a]),
                        RPN_REGRESS: tf.ensure_shape(regress, [hf, wf, 8 * a])}

    ds = frames_dataset(train, _preprocessing(common, config), _augmentation(spec, common), shuffle=True,
                        seed=base_seed, repeat=True)
    ds = ds.enumerate().map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = share_cpu_with_training(ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    return ds, steps(len(train), batch_size, drop_remainder=True), len(train)


def image_paths(spec: LoadedSpec[Any]) -> list[str]:
    """Every image file the pipelines read (``TrainingData.images``)."""
    from libtlt.data.detection import split_frames

    train, val = split_frames(_common(spec), class_names(spec))
    return [frame.image_path for frame in (*train, *val)]


# ------------------------------------------------------------------------------------ evaluation, INT8

def occluded_as_difficult(spec: LoadedSpec[Any]) -> bool:
    """``evaluation_config.gt_occluded_as_difficult`` (default true, as TAO)."""
    found = validation.section(spec.message, "evaluation")
    return bool(found[1].gt_occluded_as_difficult) if found is not None else True


def _batches(spec: LoadedSpec[Any], frames: Sequence[Any], batch_size: int) -> Iterator[tuple[np.ndarray, list[Any]]]:
    from libtlt.data.detection import frames_dataset, kept_objects
    from libtlt.layers.ssd_family import Truth

    config = input_config(spec)
    if config.dynamic:  # images of their own sizes do not stack
        batch_size = 1
    by_occlusion = occluded_as_difficult(spec)
    ds = frames_dataset(frames, _preprocessing(_common(spec), config), None)
    ds = ds.map(lambda image, boxes, ids, index: (config.normalize(image), boxes, ids, index)).batch(batch_size)
    for images, boxes, ids, index in ds.prefetch(2).as_numpy_iterator():
        truths = []
        for b in range(len(index)):
            frame, kept = frames[int(index[b])], ids[b] >= 0
            occluded = kept_objects(frame.occlusion, ids[b]) > 0
            truths.append(Truth(frame.frame_id, boxes[b][kept].astype(np.float64), ids[b][kept].astype(np.int64),
                                difficult=occluded if by_occlusion else np.zeros(len(occluded), bool)))
        yield images, truths


def evaluation_frames(spec: LoadedSpec[Any], *, use_training_set: bool = False,
                      batch_size: int | None = None) -> Iterator[tuple[np.ndarray, list[Any]]]:
    """``(images [B, C, H, W] float32 preprocessed, [Truth per image])`` of the validation frames (with
    ``use_training_set``: the training frames, then the validation ones), without augmentation. ``Truth`` is
    ``libtlt.layers.ssd_family.Truth``: frame id, boxes ``[G, 4]`` in network-input pixels, foreground class ids,
    and ``difficult`` flags: KITTI occlusion > 0 with ``evaluation_config.gt_occluded_as_difficult`` (the default),
    else all false (every box counts). ``batch_size`` defaults to ``evaluation_config.batch_size`` (else 1)."""
    from libtlt.data.detection import split_frames

    train, val = split_frames(_common(spec), class_names(spec))
    frames = [*train, *val] if use_training_set else val
    if not frames:
        path, _ = _dataset(spec)
        raise DataError(f"no validation frames: set {path}.validation_fold or validation_data_source",
                        location=spec.locate(path))
    if batch_size is None:
        found = validation.section(spec.message, "evaluation")
        batch_size = (found[1].batch_size if found is not None else 0) or DEFAULT_EVAL_BATCH_SIZE
    yield from _batches(spec, frames, batch_size)


def calibration_batches(spec: LoadedSpec[Any], *, use_validation_set: bool = False) -> CalibrationData:
    """INT8 calibration input: preprocessed training (or validation) images, ``batch_size_per_gpu`` per batch."""
    from libtlt.data.detection import split_frames

    config = input_config(spec)
    if config.dynamic:
        model_path, _ = _model(spec)
        raise spec.error(f"{model_path}.input_image_config.size_min",
                         "a model with a dynamic input size (size_min) cannot be exported, so it has no INT8 "
                         "calibration; train with size_height_width { height, width } to deploy it")
    train, val = split_frames(_common(spec), class_names(spec))
    field = "training_config.batch_size_per_gpu"
    batch = int(spec.message.training_config.batch_size_per_gpu) or 1
    images = (images for images, _ in _batches(spec, val if use_validation_set else train, batch))
    return CalibrationData(images, batch, field, spec.locate(field))
