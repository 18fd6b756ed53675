"""What the anchor-based single-stage detectors share (SSD, DSSD, RetinaNet): anchors from the spec, training
targets, losses, decoding and the deployed graph's tail (DETECTORS-SINGLE-STAGE.md §1, §2, §6, §7).

Data flow, identical in training, evaluation, inference and export:

* :class:`AnchorConfig` (the spec's ``scales``/``min_scale``/``max_scale``, ``aspect_ratios(_global)``,
  ``two_boxes_for_ar1``, ``steps``, ``offsets``, ``clip_boxes``, ``variances``) gives the anchors ``[A, 4]``
  (normalised corners, layer / row / column / box order) for the feature-map sizes of a network input;
* :func:`target_encoder` matches each image's boxes to the anchors (greedy bipartite, then IoU ≥ 0.5; an anchor
  with IoU in [0.3, 0.5) is neutral) and returns ``{conf: [A, 1] class id (0 background, −1 neutral), loc:
  [A, 5] offsets + positive flag}``;
* :func:`make_losses`: the class loss over non-neutral anchors — TLT 2.0's softmax focal loss
  ``−α_t (1 − p_t)^γ log p_t`` (α_t = α for objects, 1 − α for background), or TAO's cross-entropy with
  batch-wide hard negative mining when ``neg_pos_ratio`` is set — plus ``loc_weight`` × smooth-L1 on positives,
  both divided by the batch's positives;
* the network's outputs ``mbox_conf_softmax`` ``[N, A, C + 1]`` (class 0 = background) and ``mbox_loc``
  ``[N, A, 4]`` are decoded (:func:`decode_boxes`) and reduced by the NMS of ``libtlt.runtime.onnx_nms``: in NumPy
  for a ``.tlt`` (:func:`detect`), in the graph for an ``.etlt``/engine (:func:`append_decoder_and_nms`), so both
  give the same detections. Labels are 1..C (background first, as labels.txt).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libtlt.layers import boxes as box_ops

CONF_OUTPUT = "mbox_conf_softmax"
LOC_OUTPUT = "mbox_loc"
#: Probabilities are clamped before the log (TAO: 1e-15).
MIN_PROBABILITY = 1e-15
#: Boxes narrower or lower than this fraction of the image are not matched (TAO's data loader drops them).
MIN_BOX_FRACTION = 1e-3


@dataclass(frozen=True)
class AnchorConfig:
    """The anchor fields of an SSD-family spec, parsed. ``scales`` has L + 1 values, ``aspect_ratios`` L lists."""

    scales: tuple[float, ...]
    aspect_ratios: tuple[tuple[float, ...], ...]
    two_boxes_for_ar1: bool = True
    steps: tuple[tuple[float, float], ...] | None = None
    offsets: tuple[float, ...] | None = None
    clip_boxes: bool = False
    variances: tuple[float, float, float, float] = box_ops.DEFAULT_VARIANCES
    octaves: tuple[float, ...] = (1.0,)

    @property
    def num_layers(self) -> int:
        return len(self.aspect_ratios)

    def boxes_per_cell(self) -> list[int]:
        """Anchors per cell of each layer (the heads' ``n_boxes_k``)."""
        return [len(self.octaves) * (len(r) + (sum(1 for v in r if v == 1.0) if self.two_boxes_for_ar1 else 0))
                for r in self.aspect_ratios]

    def anchors(self, image_hw: Sequence[int], feature_hws: Sequence[Sequence[int]]) -> np.ndarray:
        """Normalised corner anchors ``[A, 4]`` float32 of every layer, in the heads' order."""
        result = box_ops.ssd_anchors(image_hw, feature_hws, self.scales, self.aspect_ratios,
                                     two_boxes_for_ar1=self.two_boxes_for_ar1,
                                     steps=list(self.steps) if self.steps is not None else None,
                                     offsets=list(self.offsets) if self.offsets is not None else 0.5,
                                     clip=self.clip_boxes, octaves=self.octaves)
        return result.astype(np.float32)


def anchor_config(spec: Any, prefix: str, config: Any, num_layers: int) -> AnchorConfig:
    """The :class:`AnchorConfig` of a validated spec section (``ssd_config``, ``dssd_config``)."""
    from libtlt.spec import values

    if config.HasField("aspect_ratios_global"):
        ratios = values.parse_field(spec, f"{prefix}.aspect_ratios_global", config.aspect_ratios_global,
                                    values.parse_float_list)
        layers = [list(ratios)] * num_layers
    else:
        layers = values.parse_field(spec, f"{prefix}.aspect_ratios", config.aspect_ratios, values.parse_float_lists)
    if config.HasField("scales"):
        scales = values.parse_field(spec, f"{prefix}.scales", config.scales, values.parse_float_list)
    else:
        scales = box_ops.ssd_scales(num_layers, min_scale=float(f"{config.min_scale:.7g}"),
                                    max_scale=float(f"{config.max_scale:.7g}"))
    variances = box_ops.DEFAULT_VARIANCES
    if config.HasField("variances"):
        variances = tuple(values.parse_field(spec, f"{prefix}.variances", config.variances, values.parse_float_list))
    steps = None
    if config.HasField("steps"):
        steps = tuple(values.parse_field(spec, f"{prefix}.steps", config.steps, values.parse_steps))
    offsets = None
    if config.HasField("offsets"):
        offsets = tuple(values.parse_field(spec, f"{prefix}.offsets", config.offsets, values.parse_float_list))
    return AnchorConfig(scales=tuple(float(s) for s in scales),
                        aspect_ratios=tuple(tuple(float(r) for r in layer) for layer in layers),
                        two_boxes_for_ar1=bool(config.two_boxes_for_ar1), steps=steps, offsets=offsets,
                        clip_boxes=bool(config.clip_boxes),
                        variances=tuple(float(v) for v in variances))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- targets

def target_encoder(anchors: np.ndarray, variances: Sequence[float], image_wh: tuple[int, int], *,
                   positive_threshold: float = 0.5, negative_threshold: float = 0.3,
                   conf_name: str = CONF_OUTPUT) -> Any:
    """A ``tf.data`` map function ``(boxes [M, 4] pixels, class ids [M], −1 = none)`` →
    ``{CONF_OUTPUT: [A, 1] float (0 background, k + 1 class k, −1 neutral), LOC_OUTPUT: [A, 5] (offsets, positive)}``.
    """
    import tensorflow as tf

    anchor_t = tf.constant(anchors, tf.float32)
    anchor_64 = tf.constant(anchors, tf.float64)
    scale = tf.constant([image_wh[0], image_wh[1], image_wh[0], image_wh[1]], tf.float32)
    placeholder = tf.constant([[0.0, 0.0, 1.0, 1.0]], tf.float32)  # gathered where nothing matched

    def encode(boxes: Any, ids: Any) -> Any:
        gt = boxes / scale
        keep = (ids >= 0) & (gt[:, 2] - gt[:, 0] >= MIN_BOX_FRACTION) & (gt[:, 3] - gt[:, 1] >= MIN_BOX_FRACTION)
        gt, classes = tf.boolean_mask(gt, keep), tf.boolean_mask(ids, keep)
        # float64 IoU: thresholds hit exactly (0.5 stays 0.5, as in the NumPy oracle)
        iou = box_ops.iou_matrix_tf(tf.cast(gt, tf.float64), anchor_64)
        matches, labels = box_ops.match_bipartite_tf(iou, positive_threshold=positive_threshold,
                                                     negative_threshold=negative_threshold)
        count = tf.shape(gt)[0]
        row = tf.where(matches >= 0, matches, count)
        matched = tf.gather(tf.concat([gt, placeholder], 0), row)
        class_of = tf.gather(tf.concat([classes + 1, [0]], 0), row)
        conf = tf.where(labels == box_ops.POSITIVE, class_of, tf.where(labels == box_ops.IGNORE, -1, 0))
        positive = tf.cast(labels == box_ops.POSITIVE, tf.float32)
        offsets = box_ops.encode_centre_size_tf(matched, anchor_t, variances) * positive[:, None]
        return {conf_name: tf.cast(conf, tf.float32)[:, None],
                LOC_OUTPUT: tf.concat([offsets, positive[:, None]], axis=1)}

    return encode


# ------------------------------------------------------------------------------------------------ losses

@dataclass(frozen=True)
class LossConfig:
    """``loc_weight`` × localisation + classification; focal (``alpha``, ``gamma``) unless ``neg_pos_ratio``.
    ``sigmoid``: the class output holds one sigmoid per object class and no background column (RetinaNet)."""

    loc_weight: float = 1.0
    alpha: float = 0.25
    gamma: float = 2.0
    neg_pos_ratio: float | None = None
    sigmoid: bool = False


def _positives(labels: Any) -> Any:
    import tensorflow as tf

    return tf.maximum(tf.reduce_sum(tf.cast(labels > 0, tf.float32)), 1.0)


def make_losses(config: LossConfig, *, conf_name: str = CONF_OUTPUT) -> dict[str, Any]:
    """Keras losses by output name. Each returns per-image sums × batch / positives of the batch, so Keras' mean
    over the batch is the batch's total divided by its positives (DETECTORS-SINGLE-STAGE.md §2.3, §4.3)."""
    import tensorflow as tf

    def sigmoid_class_loss(y_true: Any, y_pred: Any) -> Any:
        """Focal loss summed over the C sigmoids; background is all zeros (§4.3)."""
        labels = tf.cast(y_true[..., 0], tf.int32)
        probs = tf.clip_by_value(tf.cast(y_pred, tf.float32), MIN_PROBABILITY, 1.0 - 1e-7)
        target = tf.one_hot(labels - 1, tf.shape(probs)[-1], dtype=tf.float32)  # 0 and −1 → no class
        p_t = tf.where(target > 0, probs, 1.0 - probs)
        alpha = tf.where(target > 0, config.alpha, 1.0 - config.alpha)
        loss = tf.reduce_sum(alpha * tf.pow(1.0 - p_t, config.gamma) * -tf.math.log(p_t), axis=-1)
        per_image = tf.reduce_sum(tf.where(labels >= 0, loss, 0.0), axis=1)
        return per_image * tf.cast(tf.shape(labels)[0], tf.float32) / _positives(labels)

    def class_loss(y_true: Any, y_pred: Any) -> Any:
        labels = tf.cast(y_true[..., 0], tf.int32)
        probs = tf.clip_by_value(tf.cast(y_pred, tf.float32), MIN_PROBABILITY, 1.0)
        p_true = tf.gather(probs, tf.maximum(labels, 0), batch_dims=2)
        cross_entropy = -tf.math.log(p_true)
        batch = tf.cast(tf.shape(labels)[0], tf.float32)
        if config.neg_pos_ratio is None:
            alpha = tf.where(labels > 0, config.alpha, 1.0 - config.alpha)
            loss = alpha * tf.pow(1.0 - p_true, config.gamma) * cross_entropy
            used = labels >= 0
        else:
            kind = tf.where(labels > 0, box_ops.POSITIVE, tf.where(labels == 0, box_ops.NEGATIVE, box_ops.IGNORE))
            negatives = box_ops.hard_negative_mask_tf(tf.stop_gradient(cross_entropy), kind,
                                                      neg_pos_ratio=config.neg_pos_ratio)
            loss, used = cross_entropy, (labels > 0) | negatives
        per_image = tf.reduce_sum(tf.where(used, loss, 0.0), axis=1)
        return per_image * batch / _positives(labels)

    def box_loss(y_true: Any, y_pred: Any) -> Any:
        positive = y_true[..., 4]
        diff = tf.abs(tf.cast(y_pred, tf.float32) - y_true[..., :4])
        smooth_l1 = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5), axis=-1)
        per_image = tf.reduce_sum(smooth_l1 * positive, axis=1)
        batch = tf.cast(tf.shape(positive)[0], tf.float32)
        return config.loc_weight * per_image * batch / tf.maximum(tf.reduce_sum(positive), 1.0)

    return {conf_name: sigmoid_class_loss if config.sigmoid else class_loss, LOC_OUTPUT: box_loss}


# ------------------------------------------------------------------------------------------------ decoding

def decode_boxes(loc: np.ndarray, anchors: np.ndarray, variances: Sequence[float]) -> np.ndarray:
    """Offsets ``[N, A, 4]`` → normalised corners ``[N, A, 4]`` float32 (as the graph computes them)."""
    anchor = anchors.astype(np.float32)
    centre = (anchor[:, :2] + anchor[:, 2:]) / np.float32(2)
    size = anchor[:, 2:] - anchor[:, :2]
    v = np.asarray(variances, np.float32)
    t = np.asarray(loc, np.float32)
    xy = t[..., :2] * (v[:2] * size) + centre
    wh = np.exp(np.minimum(t[..., 2:] * v[2:], np.float32(box_ops.BBOX_EXP_CLIP))) * size
    half = wh / np.float32(2)
    return np.concatenate([xy - half, xy + half], axis=-1).astype(np.float32)


def nms_config(spec_nms: Any, *, background_class: int | None = 0) -> Any:
    """``libtlt.runtime.onnx_nms.NmsConfig`` of the spec's ``nms_config`` (000 §7.4.3)."""
    from libtlt.runtime.onnx_nms import NmsConfig

    keep = int(spec_nms.top_k) or 200
    return NmsConfig(confidence_threshold=float(f"{spec_nms.confidence_threshold:.7g}"),
                     clustering_iou_threshold=float(f"{spec_nms.clustering_iou_threshold:.7g}"),
                     keep_top_k=keep, background_class=background_class)


@dataclass(frozen=True)
class Detections:
    """One image's detections: ``boxes`` ``[M, 4]`` (network-input pixels), ``confidences`` ``[M]``, ``class_ids``
    ``[M]`` (0-based, background excluded)."""

    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray


def first_label(config: Any) -> int:
    """The NMS label of the first object class: 1 behind a background column 0 (SSD), else ``label_offset``."""
    return (1 if config.background_class == 0 else 0) + int(config.label_offset)


def from_nms(rows: Any, count: Any, width: int, height: int, threshold: float = -math.inf, *,
             first: int = 1) -> list[Detections]:
    """``NMS`` ``[N, 1, K, 7]`` + ``NMS_1`` → per-image :class:`Detections` above ``threshold`` (labels
    ``first``.. → class ids 0..C−1)."""
    from libtlt.runtime.onnx_nms import unpack_nms

    return to_detections(unpack_nms(rows, count), width, height, threshold, first=first)


def to_detections(images: Sequence[Any], width: int, height: int, threshold: float = -math.inf, *,
                  first: int = 1) -> list[Detections]:
    """``libtlt.runtime.onnx_nms.Detections`` (normalised boxes, NMS labels) → :class:`Detections` above
    ``threshold`` in pixels of a ``width`` × ``height`` input, labels ``first``.. → class ids 0..C−1."""
    scale = np.array([width, height, width, height], np.float64)
    result = []
    for image in images:
        # Boxes clipped to nothing at the image border (an untrained head's) are no detections.
        keep = (image.scores > threshold) & (image.boxes[:, 2] > image.boxes[:, 0]) & \
            (image.boxes[:, 3] > image.boxes[:, 1])
        result.append(Detections(image.boxes[keep].astype(np.float64) * scale, image.scores[keep].astype(np.float64),
                                 image.labels[keep] - first))
    return result


def detect(outputs: Any, anchors: np.ndarray, variances: Sequence[float], config: Any, width: int, height: int,
           threshold: float = -math.inf, *, conf_name: str = CONF_OUTPUT) -> list[Detections]:
    """Detections of a batch's outputs: the deployed graph's ``NMS``/``NMS_1`` when present, else the raw
    class output ``conf_name`` and ``mbox_loc`` decoded in NumPy and reduced by the exported graph's NMS tail."""
    from libtlt.runtime.onnx_nms import run_tail

    names, first = config.output_names, first_label(config)
    if names[0] in outputs and names[1] in outputs:
        return from_nms(outputs[names[0]], outputs[names[1]], width, height, threshold, first=first)
    boxes = decode_boxes(np.asarray(outputs[LOC_OUTPUT]), anchors, variances)
    rows, count = run_tail(boxes, np.asarray(outputs[conf_name], np.float32), config)
    return from_nms(rows, count, width, height, threshold, first=first)


# -------------------------------------------------------------------------------------------------- export

def append_decoder_and_nms(model: Any, anchors: np.ndarray, variances: Sequence[float], config: Any, *,
                           conf: str = CONF_OUTPUT, loc: str = LOC_OUTPUT) -> Any:
    """The exported graph with the box decoder (anchors as one constant) and the standard-ONNX NMS tail after its
    raw outputs ``conf`` ``[N, A, C + 1]`` (or ``[N, A, C]`` with ``config.background_class`` None) and ``loc``
    ``[N, A, 4]``: outputs ``NMS``, ``NMS_1`` (DeepStream's)."""
    import copy

    from libtlt.runtime.onnx_nms import GraphBuilder, append_nms

    result = copy.deepcopy(model)
    anchor = anchors.astype(np.float32)
    centre = ((anchor[:, :2] + anchor[:, 2:]) / np.float32(2))[None]
    size = (anchor[:, 2:] - anchor[:, :2])[None]
    v = np.asarray(variances, np.float32)
    b = GraphBuilder("box_decoder/")
    f32, i64 = np.float32, np.int64

    starts, mids, ends, axes = (b.const("start", [0], i64), b.const("mid", [2], i64), b.const("end", [4], i64),
                                b.const("axis", [2], i64))
    t_xy = b.one("Slice", [loc, starts, mids, axes], "t_xy")
    t_wh = b.one("Slice", [loc, mids, ends, axes], "t_wh")
    xy = b.one("Add", [b.one("Mul", [t_xy, b.const("xy_scale", v[:2] * size, f32)], "xy_offset"),
                       b.const("centre", centre, f32)], "xy")
    log_wh = b.one("Min", [b.one("Mul", [t_wh, b.const("wh_scale", np.broadcast_to(v[2:], size.shape), f32)],
                                 "log_wh_raw"), b.const("clip", box_ops.BBOX_EXP_CLIP, f32)], "log_wh")
    wh = b.one("Mul", [b.one("Exp", [log_wh], "exp_wh"), b.const("size", size, f32)], "wh")
    half = b.one("Mul", [wh, b.const("half", 0.5, f32)], "half_wh")
    boxes = b.one("Concat", [b.one("Sub", [xy, half], "min_xy"), b.one("Add", [xy, half], "max_xy")], "boxes", axis=2)
    b.add_to(result.graph)
    return append_nms(result, boxes, conf, config)
