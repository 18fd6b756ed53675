"""FasterRCNN proposal layer: RPN outputs → ROIs, in TensorFlow with static shapes, plus a NumPy reference
(DETECTORS-TWO-STAGE.md §1 "Proposal layer"). The ONNX export rebuilds exactly these semantics.

Inputs: ``scores`` ``[N, K]`` sigmoid objectness, ``deltas`` ``[N, K, 4]`` ``(tx, ty, tw, th)``, ``anchors``
``(K, 4)`` ``[x1, y1, x2, y2]`` pixels, all in the (H, W, A) row-major anchor order; the input size (H_img, W_img).
Semantics, per image, all arithmetic in float32:

1. ``t = deltas / std_scaling`` (all four components).
2. Decode against the anchor **without** +1: wa = x2 − x1, ha = y2 − y1, cxa = (x1 + x2)·0.5, cya = (y1 + y2)·0.5;
   cx = tx·wa + cxa, cy = ty·ha + cya, w = exp(tw)·wa, h = exp(th)·ha (no clamp on tw, th: an overflow gives an
   infinite size, which the clip below turns into the whole image).
3. Corners x1 = cx − w·0.5, y1 = cy − h·0.5, x2 = cx + w·0.5, y2 = cy + h·0.5, each clipped: x to [0, W_img − 1],
   y to [0, H_img − 1].
4. Boxes with (x2 − x1) < min_size or (y2 − y1) < min_size (after the clip) get score −inf. A −inf score is never
   selected (shapes stay static instead of dropping boxes).
5. Top k = min(pre_nms_top_n, K) by score, descending, stable: equal scores keep the lower anchor index first.
6. Greedy NMS over those k in that order: a box is kept unless its IoU with an already kept box is > nms_iou; IoU is
   computed **without** +1 (area = (x2 − x1)(y2 − y1); IoU 0 when either area is 0); −inf boxes are skipped; stop
   after post_nms_top_n kept boxes.
7. Output ``rois`` ``[N, post_nms_top_n, 4]`` float32 ``(x1, y1, x2, y2)`` absolute pixels, kept boxes first in
   kept order (so by descending score), the remaining rows all zero; ``count`` ``[N]`` int32, the kept boxes.

TAO's Keras layer outputs (y1, x1, y2, x2) and drops small boxes instead of masking them; ours is (x1, y1, x2, y2)
like every box here, and the masked boxes behave as dropped ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from libtlt.layers import boxes as box_ops

if TYPE_CHECKING:
    import tensorflow as tf

DEFAULT_MIN_SIZE = 1.0


def _decode_np(deltas: np.ndarray, anchors: np.ndarray, image_hw: Sequence[int], std_scaling: float) -> np.ndarray:
    """Steps 1–3 in float32 NumPy: ``[..., K, 4]`` clipped corners."""
    f = np.float32
    t = deltas.astype(f) / f(std_scaling)
    a = anchors.astype(f)
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    cxa, cya = (a[:, 0] + a[:, 2]) * f(0.5), (a[:, 1] + a[:, 3]) * f(0.5)
    cx, cy = t[..., 0] * wa + cxa, t[..., 1] * ha + cya
    with np.errstate(over="ignore"):
        w, h = np.exp(t[..., 2]) * wa, np.exp(t[..., 3]) * ha
    x_max, y_max = f(image_hw[1] - 1), f(image_hw[0] - 1)
    x1 = np.clip(cx - w * f(0.5), f(0), x_max)
    y1 = np.clip(cy - h * f(0.5), f(0), y_max)
    x2 = np.clip(cx + w * f(0.5), f(0), x_max)
    y2 = np.clip(cy + h * f(0.5), f(0), y_max)
    return np.stack([x1, y1, x2, y2], axis=-1).astype(f)


def proposals_reference(scores: np.ndarray, deltas: np.ndarray, anchors: np.ndarray, image_hw: Sequence[int], *,
                        std_scaling: float, pre_nms_top_n: int, post_nms_top_n: int, nms_iou: float,
                        min_size: float = DEFAULT_MIN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`proposals` (module docstring): ``(rois [N, P, 4] float32, count [N] int32)``."""
    s = np.asarray(scores, dtype=np.float32)
    boxes = _decode_np(np.asarray(deltas), np.asarray(anchors), image_hw, std_scaling)
    small = ((boxes[..., 2] - boxes[..., 0]) < np.float32(min_size)) | \
            ((boxes[..., 3] - boxes[..., 1]) < np.float32(min_size))
    s = np.where(small, np.float32(-np.inf), s)
    k = min(pre_nms_top_n, s.shape[1])
    rois = np.zeros((s.shape[0], post_nms_top_n, 4), dtype=np.float32)
    count = np.zeros(s.shape[0], dtype=np.int32)
    for i in range(s.shape[0]):
        order = np.argsort(-s[i], kind="stable")[:k]
        order = order[s[i, order] > -np.inf]
        kept = order[box_ops.nms(boxes[i, order], s[i, order], nms_iou)][:post_nms_top_n]
        rois[i, :len(kept)] = boxes[i, kept]
        count[i] = len(kept)
    return rois, count


def decode_tf(deltas: Any, anchors: Any, image_hw: Sequence[Any], std_scaling: float) -> tf.Tensor:
    """Steps 1–3: clipped corners ``[N, K, 4]`` float32 of ``deltas`` ``[N, K, 4]`` against ``anchors`` ``(K, 4)``.

    ``anchors`` and ``image_hw`` are NumPy / Python numbers for a fixed input size, or tensors for a dynamic one
    (``size_min``: :func:`grid_anchors_tf` of the feature map, the image's own height and width)."""
    import tensorflow as tf

    t = tf.cast(deltas, tf.float32) / np.float32(std_scaling)
    a = tf.convert_to_tensor(np.asarray(anchors, dtype=np.float32) if isinstance(anchors, np.ndarray) else anchors,
                             tf.float32)
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    cxa, cya = (a[:, 0] + a[:, 2]) * 0.5, (a[:, 1] + a[:, 3]) * 0.5
    cx, cy = t[..., 0] * wa + cxa, t[..., 1] * ha + cya
    w, h = tf.exp(t[..., 2]) * wa, tf.exp(t[..., 3]) * ha
    x_max = tf.cast(image_hw[1], tf.float32) - 1.0
    y_max = tf.cast(image_hw[0], tf.float32) - 1.0
    return tf.stack([tf.clip_by_value(cx - w * 0.5, 0.0, x_max), tf.clip_by_value(cy - h * 0.5, 0.0, y_max),
                     tf.clip_by_value(cx + w * 0.5, 0.0, x_max), tf.clip_by_value(cy + h * 0.5, 0.0, y_max)], axis=-1)


def grid_anchors_tf(feature_hw: Sequence[Any], stride: int, shapes: np.ndarray) -> tf.Tensor:
    """``(Hf·Wf·A, 4)`` float32 anchors of a feature map whose size is known only when the graph runs (the same
    values and (H, W, A) order as :func:`~libtlt.archs.faster_rcnn.anchors.grid_anchors`); ``shapes`` ``(A, 2)``
    ``[w, h]`` from :func:`~libtlt.archs.faster_rcnn.anchors.anchor_shapes`."""
    import tensorflow as tf

    hf, wf = feature_hw
    cy = (tf.cast(tf.range(hf), tf.float32) + 0.5) * float(stride)
    cx = (tf.cast(tf.range(wf), tf.float32) + 0.5) * float(stride)
    grid_y, grid_x = tf.meshgrid(cy, cx, indexing="ij")
    centres = tf.stack([tf.reshape(grid_x, [-1]), tf.reshape(grid_y, [-1])], axis=1)[:, None, :]  # [K, 1, 2]
    half = tf.constant(np.asarray(shapes, np.float64).reshape(1, -1, 2) / 2.0, tf.float32)
    return tf.reshape(tf.concat([centres - half, centres + half], axis=-1), [-1, 4])


def _nms_one(boxes: tf.Tensor, scores: tf.Tensor, post_nms_top_n: int, nms_iou: float) -> tf.Tensor:
    """Kept indices ``[post_nms_top_n]`` int32 of one image's score-sorted boxes, −1 padded.

    ``tf.image.non_max_suppression`` skips scores ≤ its default threshold −inf, ranks equal scores by lower index
    and computes IoU without +1 (x/y order does not matter to it).
    """
    import tensorflow as tf

    kept = tf.image.non_max_suppression(boxes, scores, post_nms_top_n, iou_threshold=nms_iou)
    return tf.pad(kept, [[0, post_nms_top_n - tf.size(kept)]], constant_values=-1)


def proposals(scores: Any, deltas: Any, anchors: Any, image_hw: Sequence[Any], *, std_scaling: float,
              pre_nms_top_n: int, post_nms_top_n: int, nms_iou: float,
              min_size: float = DEFAULT_MIN_SIZE) -> tuple[tf.Tensor, tf.Tensor]:
    """ROIs ``[N, post_nms_top_n, 4]`` float32 and kept counts ``[N]`` int32 (module docstring, steps 1–7).

    Batched and static-shaped; the NMS runs per image in a ``tf.map_fn``. Works eagerly and in ``tf.function``.
    ``anchors`` / ``image_hw`` as :func:`decode_tf`'s (tensors for a dynamic input size).
    """
    import tensorflow as tf

    static = isinstance(anchors, np.ndarray)
    a = np.asarray(anchors, dtype=np.float32).reshape(-1, 4) if static else tf.reshape(anchors, [-1, 4])
    boxes = decode_tf(deltas, a, image_hw, std_scaling)
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    s = tf.cast(scores, tf.float32)
    s = tf.where((width < min_size) | (height < min_size), tf.constant(-np.inf, tf.float32), s)
    k = min(pre_nms_top_n, a.shape[0]) if static else tf.minimum(pre_nms_top_n, tf.shape(a)[0])
    top_scores, order = tf.math.top_k(s, k)  # ties: lower index first
    top_boxes = tf.gather(boxes, order, batch_dims=1)
    kept = tf.map_fn(lambda x: _nms_one(x[0], x[1], post_nms_top_n, nms_iou), (top_boxes, top_scores),
                     fn_output_signature=tf.TensorSpec([post_nms_top_n], tf.int32))
    rois = tf.gather(top_boxes, tf.maximum(kept, 0), batch_dims=1)
    rois = tf.where((kept >= 0)[..., None], rois, tf.zeros_like(rois))
    return rois, tf.reduce_sum(tf.cast(kept >= 0, tf.int32), axis=1)
