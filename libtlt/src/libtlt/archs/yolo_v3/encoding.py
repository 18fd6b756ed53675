"""YOLOv3's anchors, training targets, loss and decoding (DETECTORS-SINGLE-STAGE.md §5.2–5.5).

* :func:`grid_anchors`: one row per (map, row, column, anchor) in the network's output order (big, mid, small):
  ``[corner_x, corner_y, prior_w, prior_h, step_x, step_y]`` normalised — the cell's top-left corner, not its
  centre, because the network predicts the centre's offset inside the cell through a sigmoid;
* :func:`decode_boxes`: ``centre = corner + σ(t_xy)·step``, ``size = prior·exp(t_wh)`` → normalised corners;
  scores ``σ(class)·σ(objectness)`` (:func:`scores`);
* :func:`target_encoder` (a ``tf.data`` map): each ground-truth box goes to the single anchor shape of best
  shape-only IoU over all three maps (first on ties), in the cell holding its centre; a later box in the same
  slot replaces an earlier one. Rows ``[g_x, g_y, g_w, g_h, scale, objectness, one-hot C]`` with ``g_xy`` the
  centre's offset in the cell (0–1), ``g_wh = ln(clip(size / prior, 0.01, 100))``, ``scale = 2 − w·h``; after
  the A anchor rows, the image's ground-truth boxes (normalised corners, column 5 = 1) for the loss' neutral test;
* :func:`make_loss`: ``λ_loc·loc/n_pos + obj_pos/n_pos + λ_cls·cls/n_pos + λ_noobj·obj_neg/n_neg`` with
  ``loc = Σ scale·½[(σ(t_xy) − g_xy)² + (t_wh − g_wh)²]``, binary cross-entropy for objectness and for each class
  (multi-label sigmoids), and an anchor with no box a negative only while its decoded prediction overlaps every
  ground-truth box of its image by less than ``matching_neutral_box_iou``. Counts are the batch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from libtlt.layers import boxes as box_ops

#: Width / prior ratios are clipped to [1/100, 100] before the log (TAO's).
RATIO_CLIP = 100.0
ROW = 6  # g_x, g_y, g_w, g_h, scale, objectness — then the one-hot classes


def grid_anchors(image_hw: Sequence[int], feature_hws: Sequence[Sequence[int]],
                 shapes: Sequence[Sequence[tuple[float, float]]]) -> np.ndarray:
    """``[A, 6]`` float32 rows ``(corner_x, corner_y, prior_w, prior_h, step_x, step_y)`` of the maps
    ``feature_hws`` (big, mid, small) with ``shapes[k]`` = (width, height) pairs in input pixels."""
    height, width = image_hw
    rows = []
    for (fh, fw), group in zip(feature_hws, shapes, strict=True):
        i, j, a = np.meshgrid(np.arange(fh), np.arange(fw), np.arange(len(group)), indexing="ij")
        prior = np.asarray(group, np.float64) / [width, height]
        rows.append(np.stack([j / fw, i / fh, prior[a, 0], prior[a, 1], np.full(a.shape, 1.0 / fw),
                              np.full(a.shape, 1.0 / fh)], axis=-1).reshape(-1, 6))
    return np.concatenate(rows).astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


def decode_boxes(encoded: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``[N, A, 5 + C]`` → normalised corners ``[N, A, 4]`` float32 (as the deployed graph computes them)."""
    t = np.asarray(encoded, np.float32)
    anchor = anchors.astype(np.float32)
    centre = anchor[:, :2] + sigmoid(t[..., :2]) * anchor[:, 4:6]
    size = np.exp(np.minimum(t[..., 2:4], np.float32(box_ops.BBOX_EXP_CLIP))) * anchor[:, 2:4]
    half = size / np.float32(2)
    return np.concatenate([centre - half, centre + half], axis=-1).astype(np.float32)


def scores(encoded: np.ndarray) -> np.ndarray:
    """Class scores ``σ(class)·σ(objectness)`` ``[N, A, C]``."""
    t = np.asarray(encoded, np.float32)
    return (sigmoid(t[..., 5:]) * sigmoid(t[..., 4:5])).astype(np.float32)


# ----------------------------------------------------------------------------------------------- targets

def _shape_iou(sizes: Any, priors: Any) -> Any:
    """IoU of boxes sharing a centre: ``[M, 2]`` × ``[S, 2]`` → ``[M, S]``."""
    import tensorflow as tf

    inter = tf.reduce_prod(tf.minimum(sizes[:, None], priors[None]), axis=-1)
    union = tf.reduce_prod(sizes, -1)[:, None] + tf.reduce_prod(priors, -1)[None] - inter
    return inter / tf.maximum(union, 1e-12)


def target_encoder(image_wh: tuple[int, int], feature_hws: Sequence[Sequence[int]],
                   shapes: Sequence[Sequence[tuple[float, float]]], num_classes: int) -> Any:
    """A ``tf.data`` map function ``(boxes [M, 4] pixels, class ids [M], −1 = none)`` → targets
    ``[A + M, 6 + C]`` (see the module doc)."""
    import tensorflow as tf

    width, height = image_wh
    # every anchor shape of the three maps, with where its slots start in the flat output
    priors, offsets, grids, counts = [], [], [], []
    start = 0
    for (fh, fw), group in zip(feature_hws, shapes, strict=True):
        for a, (w, h) in enumerate(group):
            priors.append((w / width, h / height))
            offsets.append(start + a)
            grids.append((fh, fw))
            counts.append(len(group))
        start += fh * fw * len(group)
    total = start
    prior_t = tf.constant(priors, tf.float32)
    offset_t, grid_t, count_t = (tf.constant(offsets, tf.int32), tf.constant(grids, tf.int32),
                                 tf.constant(counts, tf.int32))
    scale = tf.constant([width, height, width, height], tf.float32)

    def encode(boxes: Any, ids: Any) -> Any:
        gt = boxes / scale
        size = gt[:, 2:] - gt[:, :2]
        valid = (ids >= 0) & (size[:, 0] > 0) & (size[:, 1] > 0)
        centre = (gt[:, :2] + gt[:, 2:]) / 2.0
        best = tf.argmax(_shape_iou(tf.maximum(size, 1e-6), prior_t), axis=1, output_type=tf.int32)  # first on ties
        grid = tf.gather(grid_t, best)  # (fh, fw)
        fh, fw = tf.cast(grid[:, 0], tf.float32), tf.cast(grid[:, 1], tf.float32)
        col = tf.clip_by_value(tf.cast(tf.floor(centre[:, 0] * fw), tf.int32), 0, grid[:, 1] - 1)
        row = tf.clip_by_value(tf.cast(tf.floor(centre[:, 1] * fh), tf.int32), 0, grid[:, 0] - 1)
        slot = tf.gather(offset_t, best) + (row * grid[:, 1] + col) * tf.gather(count_t, best)
        # a later valid box in the same slot wins: keep box i unless a valid j > i has its slot
        m = tf.shape(slot)[0]
        later = tf.range(m)[None, :] > tf.range(m)[:, None]
        replaced = tf.reduce_any(later & (slot[:, None] == slot[None, :]) & valid[None, :], axis=1)
        keep = valid & ~replaced
        prior = tf.gather(prior_t, best)
        cells = tf.stack([tf.cast(col, tf.float32), tf.cast(row, tf.float32)], axis=1)
        g_xy = centre * tf.stack([fw, fh], axis=1) - cells
        g_wh = tf.math.log(tf.clip_by_value(size / prior, 1.0 / RATIO_CLIP, RATIO_CLIP))
        weight = 2.0 - size[:, 0] * size[:, 1]
        one_hot = tf.one_hot(tf.maximum(ids, 0), num_classes, dtype=tf.float32)
        rows = tf.concat([g_xy, g_wh, weight[:, None], tf.ones_like(weight)[:, None], one_hot], axis=1)
        target = tf.scatter_nd(tf.boolean_mask(slot, keep)[:, None], tf.boolean_mask(rows, keep),
                               [total, ROW + num_classes])
        truth = tf.concat([gt, tf.zeros_like(gt[:, :1]), tf.cast(valid, tf.float32)[:, None],
                           tf.zeros([m, num_classes], tf.float32)], axis=1)
        truth = tf.where(valid[:, None], truth, 0.0)
        return tf.concat([target, truth], axis=0)

    return encode


# --------------------------------------------------------------------------------------------------- loss

def make_loss(anchors: np.ndarray, *, loc_weight: float, neg_obj_weight: float, class_weight: float,
              neutral_iou: float) -> Any:
    """The Keras loss of ``encoded_detections`` (see the module doc). Returns per-image sums × batch / counts of
    the batch, so Keras' mean over the batch is the batch's total divided by its counts."""
    import tensorflow as tf

    count = len(anchors)
    anchor = tf.constant(anchors, tf.float32)

    def loss(y_true: Any, y_pred: Any) -> Any:
        target, truth = y_true[:, :count], y_true[:, count:]
        pred = tf.cast(y_pred, tf.float32)
        positive = target[..., 5]
        t_xy, t_wh = pred[..., 0:2], pred[..., 2:4]
        xy = tf.sigmoid(t_xy)
        loc = target[..., 4] * 0.5 * (tf.reduce_sum(tf.square(xy - target[..., 0:2]), -1)
                                      + tf.reduce_sum(tf.square(t_wh - target[..., 2:4]), -1))
        # the neutral test: decoded predictions against the image's boxes (no gradient through the mask)
        centre = anchor[:, :2] + xy * anchor[:, 4:6]
        half = tf.exp(tf.minimum(t_wh, box_ops.BBOX_EXP_CLIP)) * anchor[:, 2:4] / 2.0
        predicted = tf.stop_gradient(tf.concat([centre - half, centre + half], axis=-1))  # [B, A, 4]
        gt = truth[..., :4]  # [B, M, 4]
        low = tf.maximum(predicted[:, :, None, :2], gt[:, None, :, :2])
        high = tf.minimum(predicted[:, :, None, 2:], gt[:, None, :, 2:])
        inter = tf.reduce_prod(tf.maximum(high - low, 0.0), axis=-1)
        area_p = tf.reduce_prod(predicted[..., 2:] - predicted[..., :2], -1)[:, :, None]
        area_g = tf.reduce_prod(gt[..., 2:] - gt[..., :2], -1)[:, None, :]
        iou = inter / tf.maximum(area_p + area_g - inter, 1e-12) * truth[:, None, :, 5]
        best = tf.reduce_max(tf.concat([iou, tf.zeros_like(iou[..., :1])], axis=-1), axis=-1)
        negative = (1.0 - positive) * tf.cast(best < neutral_iou, tf.float32)
        obj = tf.nn.sigmoid_cross_entropy_with_logits(labels=positive, logits=pred[..., 4])
        cls = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=target[..., ROW:], logits=pred[..., 5:]),
                            -1)
        batch = tf.cast(tf.shape(positive)[0], tf.float32)
        n_pos = tf.maximum(tf.reduce_sum(positive), 1.0)
        n_neg = tf.maximum(tf.reduce_sum(negative), 1.0)
        per_positive = tf.reduce_sum(positive * (loc_weight * loc + obj + class_weight * cls), axis=1)
        per_negative = tf.reduce_sum(negative * obj, axis=1)
        return (per_positive / n_pos + neg_obj_weight * per_negative / n_neg) * batch

    return loss


# ------------------------------------------------------------------------------------------------- export

def append_decoder_and_nms(model: Any, anchors: np.ndarray, config: Any, encoded: str) -> Any:
    """The exported graph with :func:`decode_boxes` and :func:`scores` in ONNX ops (the grid as constants) after its
    raw output ``encoded`` ``[N, A, 5 + C]``, then the standard-ONNX NMS tail of ``config`` (``BatchedNMS`` …)."""
    import copy

    from libtlt.runtime.onnx_nms import GraphBuilder, append_nms

    result = copy.deepcopy(model)
    anchor = anchors.astype(np.float32)
    b = GraphBuilder("yolo_decoder/")
    f32, i64 = np.float32, np.int64
    axes = b.const("axis", [2], i64)

    def columns(start: int, end: int, name: str) -> str:
        return b.one("Slice", [encoded, b.const(f"{name}_start", [start], i64), b.const(f"{name}_end", [end], i64),
                               axes], name)

    t_xy, t_wh, objectness = columns(0, 2, "t_xy"), columns(2, 4, "t_wh"), columns(4, 5, "objectness")
    classes = columns(5, int(np.iinfo(np.int64).max), "class_logits")
    centre = b.one("Add", [b.one("Mul", [b.one("Sigmoid", [t_xy], "sigmoid_xy"), b.const("step", anchor[None, :, 4:6], f32)],
                                 "cell_offset"), b.const("corner", anchor[None, :, :2], f32)], "centre")
    log_wh = b.one("Min", [t_wh, b.const("clip", box_ops.BBOX_EXP_CLIP, f32)], "log_wh")
    half = b.one("Mul", [b.one("Exp", [log_wh], "exp_wh"), b.const("half_prior", anchor[None, :, 2:4] / 2, f32)],
                 "half_wh")
    boxes = b.one("Concat", [b.one("Sub", [centre, half], "min_xy"), b.one("Add", [centre, half], "max_xy")], "boxes",
                  axis=2)
    class_scores = b.one("Mul", [b.one("Sigmoid", [classes], "sigmoid_classes"),
                                 b.one("Sigmoid", [objectness], "sigmoid_objectness")], "scores")
    b.add_to(result.graph)
    return append_nms(result, boxes, class_scores, config)
