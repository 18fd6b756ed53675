"""FasterRCNN ProposalTarget: RCNN training targets sampled from the proposals, in TensorFlow
(DETECTORS-TWO-STAGE.md §1 "RCNN target assignment"), with a NumPy reference of its deterministic part.

Per image, inside the training graph, with static shapes:

1. Candidates: the first ``count`` proposal rows (the rest is zero padding), then, with ``gt_as_roi``, the real GT
   boxes (class id ≥ 0; padding GT rows have id −1) appended as ROIs. Candidates = R (+ G) rows, padding flagged.
2. IoU with TAO's **+1 convention** (area = (x2−x1+1)(y2−y1+1)) against the real GTs; best GT per candidate (lower
   index on ties). Positive: best IoU ≥ ``max_overlap``; negative (background): ``min_overlap`` ≤ best IoU <
   ``max_overlap``; otherwise ignored. Without real GT every candidate has IoU 0 (background if min_overlap ≤ 0).
3. Sampling (:func:`libtlt.layers.boxes.sample_fixed_tf`): slots 0..p−1 hold p = min(positives,
   ⌊positive_fraction·roi_mini_batch⌋) distinct random positives; the other slots hold distinct random negatives when
   there are enough, else negatives drawn **with replacement**; without negatives, positives drawn with
   replacement; without either, an all-zero ROI with weight 0.
4. Targets of each slot: class one-hot over C_fg + 1 with **background last** (all zero for a weight-0 slot);
   regression ``[mask (4·C_fg) | deltas (4·C_fg)]`` — the reference writes (R, 8·(C−1)) = [mask | deltas] too: the
   first half is the 0/1 mask, the second the deltas, class k owning slots 4k..4k+3 of each half. Only positives
   have a non-zero mask and deltas: the +1-convention encoding of the GT against the ROI (w = x2 − x1 + 1,
   cx = x1 + w/2; tx = (cx − cxr)/wr, tw = ln(w/wr), ...) **multiplied by** ``regr_std`` (x, y, w, h).
   ``weights`` ``[roi_mini_batch]`` is 1 for a real ROI (positive or negative), 0 for an all-zero padding slot.

Randomness: stateless ``tf.random`` ops keyed by a seed tensor ``[2]`` int (e.g. (global seed, step)); image i uses
``stateless_fold_in(seed, i)``, so the sample is a pure function of (inputs, seed, image index), identical eagerly,
in ``tf.function`` and on any device. Random subsets are the lowest uniform keys, draws with replacement pick
member ⌊u·count⌋ of the key-ordered candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from libtlt.layers import boxes as box_ops

if TYPE_CHECKING:
    import tensorflow as tf

#: TAO's fixed share of positives in the ROI mini-batch.
ROI_POSITIVE_FRACTION = 0.25


@dataclass(frozen=True)
class RcnnTargetConfig:
    """The spec fields ProposalTarget reads (``training_config`` and ``model_config.roi_mini_batch``)."""

    min_overlap: float = 0.0  # classifier_min_overlap
    max_overlap: float = 0.5  # classifier_max_overlap
    roi_mini_batch: int = 256
    gt_as_roi: bool = False
    regr_std: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)  # classifier_regr_std x, y, w, h
    positive_fraction: float = ROI_POSITIVE_FRACTION


class Assignment(NamedTuple):
    """Step 1–2 result of one image, per candidate: boxes ``[R', 4]``, labels ``[R']`` (1/0/−1), matched GT
    ``[R']`` (−1 off positives) and the scaled deltas ``[R', 4]`` to the matched GT (0 off positives)."""

    candidates: Any
    labels: Any
    matched: Any
    deltas: Any


class RcnnTargets(NamedTuple):
    """Batched outputs: ``rois`` ``[N, B, 4]``, ``class_targets`` ``[N, B, C_fg + 1]``, ``regression_targets``
    ``[N, B, 8·C_fg]``, ``weights`` ``[N, B]`` (B = roi_mini_batch; all float32)."""

    rois: Any
    class_targets: Any
    regression_targets: Any
    weights: Any


# ---------------------------------------------------------------------------------------------- NumPy reference

def assign_reference(rois: np.ndarray, count: int, gt_boxes: np.ndarray, gt_classes: np.ndarray,
                     config: RcnnTargetConfig) -> Assignment:
    """NumPy (float64) steps 1–2 of one image, the oracle for :func:`assign_tf`."""
    r = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    real = np.asarray(gt_classes).reshape(-1) >= 0
    ok = np.arange(len(r)) < count
    if config.gt_as_roi:
        r, ok = np.concatenate([r, g]), np.concatenate([ok, real])
    iou = np.where(real[:, None], box_ops.iou_matrix(g, r, plus_one=True), -1.0)
    matched, labels = box_ops.match_rois(iou, positive_threshold=config.max_overlap,
                                         negative_low=config.min_overlap)
    labels = np.where(ok, labels, box_ops.IGNORE)
    matched = np.where(labels == box_ops.POSITIVE, matched, box_ops.UNMATCHED)
    positive = matched >= 0
    deltas = np.zeros((len(r), 4))
    if positive.any():
        deltas[positive] = box_ops.encode_deltas(g[matched[positive]], r[positive], config.regr_std, plus_one=True)
    return Assignment(r, labels, matched, deltas)


# --------------------------------------------------------------------------------------------------- TensorFlow

def _gather_padded(values: Any, index: Any) -> tf.Tensor:
    """``values[index]`` with −1 (and G = 0) reading an extra zero row: CPU gathers fail out of range."""
    import tensorflow as tf

    extra = tf.zeros(tf.concat([[1], tf.shape(values)[1:]], axis=0), values.dtype)
    padded = tf.concat([values, extra], axis=0)
    return tf.gather(padded, tf.where(index >= 0, index, tf.shape(values)[0]))


def assign_tf(rois: Any, count: Any, gt_boxes: Any, gt_classes: Any, config: RcnnTargetConfig) -> Assignment:
    """Steps 1–2 of one image (float32; int32 labels and matches): TF twin of :func:`assign_reference`."""
    import tensorflow as tf

    r = tf.cast(tf.reshape(rois, [-1, 4]), tf.float32)
    g = tf.cast(tf.reshape(gt_boxes, [-1, 4]), tf.float32)
    real = tf.reshape(gt_classes, [-1]) >= 0
    ok = tf.range(tf.shape(r)[0]) < tf.cast(count, tf.int32)
    if config.gt_as_roi:
        r, ok = tf.concat([r, g], axis=0), tf.concat([ok, real], axis=0)
    iou = tf.where(real[:, None], box_ops.iou_matrix_tf(g, r, plus_one=True), -1.0)
    matched, labels = box_ops.match_rois_tf(iou, positive_threshold=config.max_overlap,
                                            negative_low=config.min_overlap)
    labels = tf.where(ok, labels, box_ops.IGNORE)
    positive = tf.equal(labels, box_ops.POSITIVE)
    matched = tf.where(positive, matched, box_ops.UNMATCHED)
    deltas = box_ops.encode_deltas_tf(_gather_padded(g, matched), r, config.regr_std, plus_one=True)
    deltas = tf.where(positive[:, None], deltas, tf.zeros_like(deltas))  # non-positives encode the dummy row
    return Assignment(r, labels, matched, deltas)


def _sample_one(rois: Any, count: Any, gt_boxes: Any, gt_classes: Any, seed: Any, num_classes: int,
                config: RcnnTargetConfig) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Steps 3–4 of one image: ``(rois [B, 4], class one-hot [B, C+1], regression [B, 8C], weights [B])``."""
    import tensorflow as tf

    assigned = assign_tf(rois, count, gt_boxes, gt_classes, config)
    picked = box_ops.sample_fixed_tf(assigned.labels, config.roi_mini_batch, config.positive_fraction, seed=seed)
    real = picked >= 0
    row = tf.maximum(picked, 0)
    label = tf.where(real, tf.gather(assigned.labels, row), box_ops.IGNORE)
    positive = tf.equal(label, box_ops.POSITIVE)
    used = tf.cast(positive | tf.equal(label, box_ops.NEGATIVE), tf.float32)
    sampled_rois = tf.where(real[:, None], tf.gather(assigned.candidates, row), 0.0)
    gt_class = _gather_padded(tf.reshape(gt_classes, [-1]), tf.gather(assigned.matched, row))
    class_id = tf.where(positive, tf.cast(gt_class, tf.int32), num_classes)  # background is the last id
    class_targets = tf.one_hot(class_id, num_classes + 1, dtype=tf.float32) * used[:, None]
    mask = tf.repeat(tf.one_hot(tf.where(positive, class_id, -1), num_classes, dtype=tf.float32), 4, axis=1)
    deltas = tf.tile(tf.gather(assigned.deltas, row), [1, num_classes]) * mask
    return sampled_rois, class_targets, tf.concat([mask, deltas], axis=1), used


def rcnn_targets(rois: Any, counts: Any, gt_boxes: Any, gt_classes: Any, *, num_classes: int,
                 config: RcnnTargetConfig, seed: Any) -> RcnnTargets:
    """Sampled ROIs and their targets for a batch (module docstring).

    ``rois`` ``[N, R, 4]`` and ``counts`` ``[N]`` from :func:`~libtlt.archs.faster_rcnn.proposals.proposals`;
    ``gt_boxes`` ``[N, G, 4]`` pixels and ``gt_classes`` ``[N, G]`` int (0..num_classes−1, −1 = padding);
    ``num_classes`` = C_fg, the foreground classes; ``seed`` a ``[2]`` integer tensor.
    """
    import tensorflow as tf

    seed64 = tf.cast(tf.reshape(seed, [2]), tf.int64)
    b = config.roi_mini_batch

    def one(args: tuple[Any, ...]) -> tuple[tf.Tensor, ...]:
        index, r, c, g, k = args
        image_seed = tf.random.experimental.stateless_fold_in(seed64, tf.cast(index, tf.int64))
        return _sample_one(r, c, g, k, image_seed, num_classes, config)

    n = tf.shape(rois)[0]
    out = tf.map_fn(one, (tf.range(n), tf.cast(rois, tf.float32), tf.cast(counts, tf.int32),
                          tf.cast(gt_boxes, tf.float32), tf.cast(gt_classes, tf.int32)),
                    fn_output_signature=(tf.TensorSpec([b, 4], tf.float32),
                                         tf.TensorSpec([b, num_classes + 1], tf.float32),
                                         tf.TensorSpec([b, 8 * num_classes], tf.float32),
                                         tf.TensorSpec([b], tf.float32)))
    return RcnnTargets(*out)
