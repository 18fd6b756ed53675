"""MaskRCNN multilevel proposals: per-level RPN outputs → ROIs, in TensorFlow with static shapes, plus a NumPy
reference (DETECTORS-TWO-STAGE.md §2 "RPN targets, proposals").

Per image and level l (scores are the ``rpn-class`` logits: the order is the sigmoid's):

1. The top min(pre_nms_top_n, K_l) anchors by score (ties: lower index first).
2. Decode their (ty, tx, th, tw) deltas with weights (1, 1, 1, 1) and the log-size clamp ln(1000/16), clip to
   [0, H] × [0, W] (continuous boxes).
3. Boxes with height or width < ``min_size`` get score −inf (never kept; shapes stay static).
4. Greedy NMS at ``nms_iou`` (0.7) within the level, keeping at most ``post_nms_top_n``.

Then the kept boxes of all levels are merged and the ``post_nms_top_n`` best by score are the ROIs
``[N, P, 4]`` (y1, x1, y2, x2), best first; rows past ``count`` are zero. Proposals carry no gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from libtlt.layers import boxes as box_ops

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class ProposalConfig:
    """Training (2000/1000) or test (1000/1000) RPN counts, NMS threshold and ``rpn_min_size``."""

    pre_nms_top_n: int = 2000
    post_nms_top_n: int = 1000
    nms_iou: float = 0.7
    min_size: float = 0.0


def _clip_yxyx(boxes: np.ndarray, image_hw: Sequence[int]) -> np.ndarray:
    height, width = float(image_hw[0]), float(image_hw[1])
    return np.clip(boxes, 0.0, np.array([height, width, height, width]))


def proposals_reference(scores: Mapping[int, np.ndarray], deltas: Mapping[int, np.ndarray],
                        anchors: Mapping[int, np.ndarray], image_hw: Sequence[int],
                        config: ProposalConfig) -> tuple[np.ndarray, np.ndarray]:
    """NumPy (float64) steps 1–4 and the merge: ``(rois [N, P, 4], count [N])``; per-level inputs
    ``scores`` ``[N, K_l]``, ``deltas`` ``[N, K_l, 4]``, ``anchors`` ``(K_l, 4)``."""
    n = next(iter(scores.values())).shape[0]
    p = config.post_nms_top_n
    rois, counts = np.zeros((n, p, 4)), np.zeros(n, dtype=np.int64)
    for i in range(n):
        all_boxes, all_scores = [], []
        for level in sorted(scores):
            s = np.asarray(scores[level][i], dtype=np.float64)
            order = np.argsort(-s, kind="stable")[:config.pre_nms_top_n]
            boxes = _clip_yxyx(box_ops.decode_deltas(np.asarray(deltas[level][i])[order],
                                                     np.asarray(anchors[level])[order]), image_hw)
            ok = ((boxes[:, 2] - boxes[:, 0]) >= config.min_size) & ((boxes[:, 3] - boxes[:, 1]) >= config.min_size)
            boxes, s = boxes[ok], s[order][ok]
            kept = box_ops.nms(boxes, s, config.nms_iou)[:p]
            all_boxes.append(boxes[kept])
            all_scores.append(s[kept])
        merged_boxes, merged_scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        best = np.argsort(-merged_scores, kind="stable")[:p]
        rois[i, :len(best)] = merged_boxes[best]
        counts[i] = len(best)
    return rois, counts


def _level_tf(scores: tf.Tensor, deltas: tf.Tensor, anchors: np.ndarray, image_hw: Sequence[int],
              config: ProposalConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """Steps 1–4 of one level for the batch: kept boxes ``[N, P, 4]`` and scores ``[N, P]`` (−inf padding)."""
    import tensorflow as tf

    p = config.post_nms_top_n
    k = min(config.pre_nms_top_n, int(anchors.shape[0]))
    top_scores, order = tf.math.top_k(scores, k)
    top_deltas = tf.gather(deltas, order, batch_dims=1)
    top_anchors = tf.gather(tf.constant(anchors, tf.float32), order)
    boxes = box_ops.decode_deltas_tf(top_deltas, top_anchors)
    height, width = float(image_hw[0]), float(image_hw[1])
    boxes = tf.clip_by_value(boxes, 0.0, tf.constant([height, width, height, width]))
    small = ((boxes[..., 2] - boxes[..., 0]) < config.min_size) | ((boxes[..., 3] - boxes[..., 1]) < config.min_size)
    top_scores = tf.where(small, tf.constant(-np.inf, tf.float32), top_scores)

    def nms_one(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        b, s = args  # tf.image.non_max_suppression skips −inf scores and takes (y1, x1, y2, x2) as is
        kept = tf.image.non_max_suppression(b, s, p, iou_threshold=config.nms_iou)
        return tf.pad(kept, [[0, p - tf.size(kept)]], constant_values=-1)

    kept = tf.map_fn(nms_one, (boxes, top_scores), fn_output_signature=tf.TensorSpec([p], tf.int32))
    valid = kept >= 0
    safe = tf.maximum(kept, 0)
    kept_boxes = tf.where(valid[..., None], tf.gather(boxes, safe, batch_dims=1), 0.0)
    kept_scores = tf.where(valid, tf.gather(top_scores, safe, batch_dims=1), tf.constant(-np.inf, tf.float32))
    return kept_boxes, kept_scores


def multilevel_proposals(scores: Mapping[int, Any], deltas: Mapping[int, Any], anchors: Mapping[int, np.ndarray],
                         image_hw: Sequence[int], config: ProposalConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """ROIs ``[N, P, 4]`` float32 and counts ``[N]`` int32 (module docstring) from per-level ``scores``
    ``{l: [N, K_l]}`` and ``deltas`` ``{l: [N, K_l, 4]}`` in the anchors' order."""
    import tensorflow as tf

    boxes, kept = [], []
    for level in sorted(scores):
        b, s = _level_tf(tf.stop_gradient(tf.cast(scores[level], tf.float32)),
                         tf.stop_gradient(tf.cast(deltas[level], tf.float32)),
                         np.asarray(anchors[level], dtype=np.float32), image_hw, config)
        boxes.append(b)
        kept.append(s)
    all_boxes, all_scores = tf.concat(boxes, axis=1), tf.concat(kept, axis=1)
    top_scores, order = tf.math.top_k(all_scores, config.post_nms_top_n)
    valid = top_scores > -np.inf
    rois = tf.where(valid[..., None], tf.gather(all_boxes, order, batch_dims=1), 0.0)
    return rois, tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
