"""MaskRCNN RPN training targets over all FPN levels at once, in TensorFlow (DETECTORS-TWO-STAGE.md §2 "RPN
targets, proposals"), with the NumPy twin used as the test oracle.

Per image, on the anchors of every level concatenated in level order (:func:`anchors.concatenated`):

1. IoU (continuous boxes, no +1) of every real GT (class ≥ 1; padding rows have class −1) with every anchor; all
   anchors take part, inside the image or not (the TF reference labels all anchors).
2. Positive: best IoU ≥ ``positive_overlap`` (0.7), target its best GT (lower index on ties); negative: best IoU
   < ``negative_overlap`` (0.3, strict as the reference's ``negatives_lower_than_unmatched``); the rest neutral
   (:func:`libtlt.layers.boxes.match_rpn_tf` without its forcing).
3. Forced matches as the reference's ArgMaxMatcher with ``force_match_for_each_row``: every real GT forces its
   best anchor (one anchor, the first on ties; not every tie) positive with itself as the target, whatever that
   IoU; when several GTs force the same anchor the **first** GT wins. (FasterRCNN's forcing differs: only GTs
   below the threshold, last GT wins; hence MaskRCNN's own step here.)
4. Balanced sampler: at most ⌊batch·fg_fraction⌋ positives and negatives up to ``batch_size_per_im`` (256),
   random subsets from a stateless seed; the others become neutral.
5. Deltas (ty, tx, th, tw) of the matched GT against each sampled positive anchor, weights (1, 1, 1, 1):
   the FasterRCNN coder on (y1, x1, y2, x2) boxes, zero elsewhere.

Labels: 1 positive, 0 negative, −1 ignored (int32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from libtlt.layers import boxes as box_ops

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class RpnTargetConfig:
    """``rpn_positive_overlap``, ``rpn_negative_overlap``, ``rpn_batch_size_per_im``, ``rpn_fg_fraction``."""

    positive_overlap: float = 0.7
    negative_overlap: float = 0.3
    batch_size_per_im: int = 256
    fg_fraction: float = 0.5


def rpn_targets_reference(anchors: np.ndarray, gt_boxes: np.ndarray, gt_classes: np.ndarray,
                          config: RpnTargetConfig, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy steps 1–5 of one image with the sampler's uniform ``keys`` ``[K]`` given: ``(labels, deltas)``."""
    a = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    real = np.asarray(gt_classes).reshape(-1) > 0
    iou = np.where(real[:, None], box_ops.iou_matrix(g, a), 0.0)
    matched, labels = box_ops.match_rpn(iou, positive_threshold=config.positive_overlap,
                                        negative_threshold=config.negative_overlap, force_best=False,
                                        negative_inclusive=False)
    for gt in np.nonzero(real)[0][::-1]:  # reversed, so the first GT forcing an anchor wins
        best = int(np.argmax(iou[gt]))
        matched[best], labels[best] = gt, box_ops.POSITIVE
    labels = box_ops.sample_balanced(labels, config.batch_size_per_im, config.fg_fraction, keys=keys)
    deltas = np.zeros((len(a), 4))
    positive = labels == box_ops.POSITIVE
    if positive.any():
        deltas[positive] = box_ops.encode_deltas(g[matched[positive]], a[positive])
    return labels.astype(np.int32), deltas.astype(np.float32)


def rpn_targets_tf(anchors: np.ndarray, gt_boxes: Any, gt_classes: Any, config: RpnTargetConfig, *,
                   seed: Any = (0, 0), keys: Any | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Steps 1–5 of one image: ``labels`` ``[K]`` int32 and ``deltas`` ``[K, 4]`` float32.

    ``gt_boxes`` ``[G, 4]`` (y1, x1, y2, x2) input pixels, ``gt_classes`` ``[G]`` (−1 = padding); ``seed`` a
    stateless seed pair; ``keys`` replaces the sampler's random keys (tests).
    """
    import tensorflow as tf

    a = tf.constant(np.asarray(anchors, dtype=np.float32).reshape(-1, 4))
    g = tf.reshape(tf.cast(gt_boxes, tf.float32), [-1, 4])
    real = tf.reshape(gt_classes, [-1]) > 0
    iou = tf.where(real[:, None], box_ops.iou_matrix_tf(g, a), 0.0)
    matched, labels = box_ops.match_rpn_tf(iou, positive_threshold=config.positive_overlap,
                                           negative_threshold=config.negative_overlap, force_best=False,
                                           negative_inclusive=False)
    k, gts = tf.shape(a)[0], tf.shape(g)[0]
    best = tf.reduce_max(iou, axis=1, keepdims=True)
    first = tf.reduce_min(tf.where(tf.equal(iou, best), tf.range(k)[None, :], k), axis=1)  # [G]
    # Per anchor the lowest GT index forcing it; anchors nobody forces get the int32 maximum.
    forcing = tf.math.unsorted_segment_min(tf.range(gts), tf.where(real, first, k), k + 1)[:k]
    forced = forcing < gts
    matched = tf.where(forced, forcing, matched)
    labels = tf.where(forced, box_ops.POSITIVE, labels)
    labels = box_ops.sample_balanced_tf(labels, config.batch_size_per_im, config.fg_fraction, seed=seed, keys=keys)
    positive = tf.equal(labels, box_ops.POSITIVE)
    target = tf.gather(tf.concat([g, [[0.0, 0.0, 1.0, 1.0]]], axis=0),
                       tf.where(matched >= 0, matched, tf.shape(g)[0]))  # a dummy unit box off the positives
    deltas = tf.where(positive[:, None], box_ops.encode_deltas_tf(target, a), 0.0)
    return labels, deltas


def batch_rpn_targets(anchors: np.ndarray, gt_boxes: Any, gt_classes: Any, config: RpnTargetConfig,
                      seed: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`rpn_targets_tf` of each image of a batch: ``[N, K]`` and ``[N, K, 4]``; image i folds i into
    ``seed`` (a ``[2]`` integer tensor)."""
    import tensorflow as tf

    seed64 = tf.cast(tf.reshape(seed, [2]), tf.int64)
    k = int(np.asarray(anchors).reshape(-1, 4).shape[0])

    def one(args: tuple[Any, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        index, boxes, classes = args
        image_seed = tf.random.experimental.stateless_fold_in(seed64, tf.cast(index, tf.int64))
        return rpn_targets_tf(anchors, boxes, classes, config, seed=image_seed)

    n = tf.shape(gt_boxes)[0]
    return tf.map_fn(one, (tf.range(n), tf.cast(gt_boxes, tf.float32), tf.cast(gt_classes, tf.int32)),
                     fn_output_signature=(tf.TensorSpec([k], tf.int32), tf.TensorSpec([k, 4], tf.float32)))
