"""MaskRCNN box-head training targets: proposals sampled against the ground truth, in TensorFlow, with a NumPy
reference of the deterministic assignment (DETECTORS-TWO-STAGE.md §2 "Box head targets and losses").

Per image, static shapes:

1. Candidates: the ``count`` valid proposals, then the real GT boxes (GT is always added to the proposals).
2. IoU (continuous) with the real GTs. Foreground: best IoU ≥ ``fg_thresh`` (0.5), class = that GT's class;
   background: ``bg_thresh_lo`` ≤ best IoU < ``bg_thresh_hi``, class 0 (**background is class 0 in MaskRCNN**);
   others and padding rows are ignored.
3. Exactly ``batch_size_per_im`` slots (512): the first ⌊B·fg_fraction⌋ at most hold foregrounds (random subset
   without replacement), the rest backgrounds (with replacement only when there are too few); an image with
   neither fills −1 slots with zero ROIs and weight 0 (:func:`libtlt.layers.boxes.sample_fixed_tf`, FasterRCNN's
   sampler). So foreground ROIs come first, which the mask branch relies on.
4. Box targets (ty, tx, th, tw) of the matched GT against the ROI, multiplied by ``bbox_reg_weights``
   (10, 10, 5, 5); zero on background slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from libtlt.layers import boxes as box_ops

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class BoxTargetConfig:
    """``batch_size_per_im``, ``fg_fraction``, ``fg_thresh``, ``bg_thresh_hi``, ``bg_thresh_lo``,
    ``bbox_reg_weights`` of ``maskrcnn_config``."""

    batch_size_per_im: int = 512
    fg_fraction: float = 0.25
    fg_thresh: float = 0.5
    bg_thresh_hi: float = 0.5
    bg_thresh_lo: float = 0.0
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)

    @property
    def max_foreground(self) -> int:
        """The slots that can hold foreground ROIs (the mask branch's ROI count)."""
        return box_ops.positive_quota(self.batch_size_per_im, self.fg_fraction)


class BoxTargets(NamedTuple):
    """Batched targets: ``rois`` ``[N, B, 4]``, ``classes`` ``[N, B]`` int32 (0 background), ``box_targets``
    ``[N, B, 4]``, ``matched`` ``[N, B]`` int32 (GT row of foreground slots, −1 elsewhere), ``weights``
    ``[N, B]`` float32 (0 for empty slots)."""

    rois: Any
    classes: Any
    box_targets: Any
    matched: Any
    weights: Any


def assign_reference(rois: np.ndarray, count: int, gt_boxes: np.ndarray, gt_classes: np.ndarray,
                     config: BoxTargetConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy steps 1–2 of one image: ``(candidates [P+G, 4], labels [P+G], matched [P+G])``."""
    r = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    real = np.asarray(gt_classes).reshape(-1) > 0
    candidates = np.concatenate([r, g])
    ok = np.concatenate([np.arange(len(r)) < count, real])
    iou = np.where(real[:, None], box_ops.iou_matrix(g, candidates), -1.0)
    matched, labels = box_ops.match_rois(iou, positive_threshold=config.fg_thresh, negative_low=config.bg_thresh_lo,
                                         negative_high=config.bg_thresh_hi)
    labels = np.where(ok, labels, box_ops.IGNORE)
    return candidates, labels, np.where(labels == box_ops.POSITIVE, matched, box_ops.UNMATCHED)


def _sample_one(rois: Any, count: Any, gt_boxes: Any, gt_classes: Any, seed: Any,
                config: BoxTargetConfig) -> tuple[tf.Tensor, ...]:
    """Steps 1–4 of one image: ``(rois [B, 4], classes [B], box_targets [B, 4], matched [B], weights [B])``."""
    import tensorflow as tf

    r, g = tf.reshape(rois, [-1, 4]), tf.reshape(gt_boxes, [-1, 4])
    classes = tf.reshape(gt_classes, [-1])
    real = classes > 0
    candidates = tf.concat([r, g], axis=0)
    ok = tf.concat([tf.range(tf.shape(r)[0]) < count, real], axis=0)
    iou = tf.where(real[:, None], box_ops.iou_matrix_tf(g, candidates), -1.0)
    matched, labels = box_ops.match_rois_tf(iou, positive_threshold=config.fg_thresh,
                                            negative_low=config.bg_thresh_lo, negative_high=config.bg_thresh_hi)
    labels = tf.where(ok, labels, box_ops.IGNORE)
    picked = box_ops.sample_fixed_tf(labels, config.batch_size_per_im, config.fg_fraction, seed=seed)
    used = picked >= 0
    row = tf.maximum(picked, 0)
    positive = used & tf.equal(tf.gather(labels, row), box_ops.POSITIVE)
    gt_row = tf.where(positive, tf.gather(matched, row), -1)
    sampled = tf.where(used[:, None], tf.gather(candidates, row), 0.0)
    safe_gt = tf.maximum(gt_row, 0)
    padded_g = tf.concat([g, [[0.0, 0.0, 1.0, 1.0]]], axis=0)  # keeps the encoder finite without any GT
    target_boxes = tf.gather(padded_g, tf.where(positive, safe_gt, tf.shape(g)[0]))
    safe_rois = tf.where(positive[:, None], sampled, tf.constant([[0.0, 0.0, 1.0, 1.0]]))
    deltas = box_ops.encode_deltas_tf(target_boxes, safe_rois, config.bbox_reg_weights)
    deltas = tf.where(positive[:, None], deltas, 0.0)
    class_of = tf.where(positive, tf.gather(tf.concat([classes, [0]], axis=0),
                                            tf.where(positive, safe_gt, tf.shape(classes)[0])), 0)
    return sampled, class_of, deltas, gt_row, tf.cast(used, tf.float32)


def box_targets(rois: Any, counts: Any, gt_boxes: Any, gt_classes: Any, config: BoxTargetConfig,
                seed: Any) -> BoxTargets:
    """Sampled ROIs and targets of a batch (module docstring). ``rois`` ``[N, P, 4]`` and ``counts`` ``[N]`` from
    :func:`~libtlt.archs.mask_rcnn.proposals.multilevel_proposals`; ``gt_boxes`` ``[N, G, 4]`` (y1, x1, y2, x2)
    pixels, ``gt_classes`` ``[N, G]`` (1..C−1, −1 = padding); ``seed`` a ``[2]`` integer tensor."""
    import tensorflow as tf

    seed64 = tf.cast(tf.reshape(seed, [2]), tf.int64)
    b = config.batch_size_per_im

    def one(args: tuple[Any, ...]) -> tuple[tf.Tensor, ...]:
        index, r, c, g, k = args
        image_seed = tf.random.experimental.stateless_fold_in(seed64, tf.cast(index, tf.int64))
        return _sample_one(r, c, g, k, image_seed, config)

    out = tf.map_fn(one, (tf.range(tf.shape(rois)[0]), tf.stop_gradient(tf.cast(rois, tf.float32)),
                          tf.cast(counts, tf.int32), tf.cast(gt_boxes, tf.float32), tf.cast(gt_classes, tf.int32)),
                    fn_output_signature=(tf.TensorSpec([b, 4], tf.float32), tf.TensorSpec([b], tf.int32),
                                         tf.TensorSpec([b, 4], tf.float32), tf.TensorSpec([b], tf.int32),
                                         tf.TensorSpec([b], tf.float32)))
    return BoxTargets(*out)
