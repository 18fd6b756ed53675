"""MaskRCNN's five loss terms in TensorFlow, plus a NumPy Huber (DETECTORS-TWO-STAGE.md §2 "RPN targets" and
"Box head targets and losses").

* RPN score: sigmoid cross-entropy of the ``rpn-class`` logits on sampled anchors (label 0 or 1; −1 ignored),
  summed and divided by N·``rpn_batch_size_per_im`` (a fixed normaliser).
* RPN box: Huber with δ = 1/9 per FPN level, as the reference: the weights are the non-zero target coordinates
  (targets are zero off the positive anchors; a positive's coordinate whose target is exactly 0 is left out too),
  each level's sum is divided by its number of non-zero weights (at least 1), and the levels' terms are added.
* Box-head class: softmax cross-entropy of ``class-predict`` logits over the sampled ROIs (weight 0 for empty
  slots), divided by the number of sampled ROIs.
* Box-head box: Huber with δ = 1 on the true class's four ``box-predict`` outputs of foreground ROIs, divided by
  the number of non-zero weights (4 per foreground ROI; at least 1).
* Mask: sigmoid cross-entropy of the true class's 28×28 logits against the binary target on foreground ROIs,
  averaged over those pixels.

:func:`total_loss` applies ``rpn_box_loss_weight``, ``fast_rcnn_box_loss_weight`` and ``mrcnn_weight_loss_mask``;
the score and class terms have weight 1 as in TAO. Huber(d, δ) = ½d² for |d| ≤ δ, else δ(|d| − ½δ), which is
δ times FasterRCNN's smooth-L1 with σ² = 1/δ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

RPN_HUBER_DELTA = 1.0 / 9.0
BOX_HUBER_DELTA = 1.0
LOSS_NAMES = ("rpn_score_loss", "rpn_box_loss", "fast_rcnn_class_loss", "fast_rcnn_box_loss", "mask_loss")


@dataclass(frozen=True)
class LossWeights:
    """``rpn_box_loss_weight``, ``fast_rcnn_box_loss_weight``, ``mrcnn_weight_loss_mask``."""

    rpn_box: float = 1.0
    fast_rcnn_box: float = 1.0
    mask: float = 1.0


def huber(d: np.ndarray | float, delta: float) -> np.ndarray:
    """Elementwise Huber loss (NumPy reference)."""
    x = np.abs(np.asarray(d, dtype=np.float64))
    return np.where(x <= delta, 0.5 * x * x, delta * (x - 0.5 * delta))


def huber_tf(d: Any, delta: float) -> tf.Tensor:
    """TF twin of :func:`huber` (float32)."""
    import tensorflow as tf

    x = tf.abs(tf.cast(d, tf.float32))
    return tf.where(x <= delta, 0.5 * x * x, delta * (x - 0.5 * delta))


def _sigmoid_ce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def rpn_score_loss(labels: Any, logits: Any, batch_size_per_im: int) -> tf.Tensor:
    """``labels`` ``[N, K]`` (1, 0, −1) and ``logits`` ``[N, K]`` → scalar (module docstring)."""
    import tensorflow as tf

    lab = tf.cast(labels, tf.int32)
    ce = _sigmoid_ce(tf.cast(tf.equal(lab, 1), tf.float32), tf.cast(logits, tf.float32))
    total = tf.reduce_sum(tf.where(lab >= 0, ce, 0.0))
    return total / tf.cast(tf.shape(lab)[0] * batch_size_per_im, tf.float32)


def rpn_box_loss(labels: Any, target_deltas: Any, deltas: Any, level_sizes: Sequence[int]) -> tf.Tensor:
    """Huber(δ 1/9) of ``deltas`` ``[N, K, 4]`` against ``target_deltas`` on positive anchors → scalar, the levels
    being consecutive runs of ``level_sizes`` anchors along K (module docstring)."""
    import tensorflow as tf

    positive = tf.cast(tf.equal(tf.cast(labels, tf.int32), 1), tf.float32)[..., None]
    target = tf.cast(target_deltas, tf.float32)
    weight = positive * tf.cast(tf.not_equal(target, 0.0), tf.float32)
    loss = huber_tf(tf.cast(deltas, tf.float32) - target, RPN_HUBER_DELTA) * weight
    if loss.shape[1] is not None and sum(level_sizes) != loss.shape[1]:
        raise ValueError(f"level sizes {list(level_sizes)} do not add up to the {loss.shape[1]} anchors")
    total = tf.constant(0.0)
    for level_loss, level_weight in zip(tf.split(loss, list(level_sizes), axis=1),
                                        tf.split(weight, list(level_sizes), axis=1), strict=True):
        total += tf.reduce_sum(level_loss) / tf.maximum(tf.reduce_sum(level_weight), 1.0)
    return total


def box_class_loss(classes: Any, logits: Any, weights: Any) -> tf.Tensor:
    """Softmax CE of ``logits`` ``[N, B, C]`` against ``classes`` ``[N, B]`` weighted by ``weights`` → scalar."""
    import tensorflow as tf

    w = tf.cast(weights, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(classes, tf.int32),
                                                        logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1.0)


def class_slots(values: Any, classes: Any) -> tf.Tensor:
    """The slice of class ``classes`` ``[N, B]`` from class-major ``values`` ``[N, B, C, ...]``."""
    import tensorflow as tf

    return tf.gather(values, tf.cast(classes, tf.int32), batch_dims=2)


def box_regression_loss(classes: Any, box_targets: Any, deltas: Any) -> tf.Tensor:
    """Huber(δ 1) of the true class's 4 of ``deltas`` ``[N, B, 4C]`` on foreground ROIs (``classes`` > 0)."""
    import tensorflow as tf

    d = tf.cast(deltas, tf.float32)
    per_class = tf.reshape(d, tf.concat([tf.shape(d)[:2], [-1, 4]], axis=0))
    chosen = class_slots(per_class, classes)
    foreground = tf.cast(tf.cast(classes, tf.int32) > 0, tf.float32)[..., None]
    loss = huber_tf(chosen - tf.cast(box_targets, tf.float32), BOX_HUBER_DELTA) * foreground
    return tf.reduce_sum(loss) / tf.maximum(4.0 * tf.reduce_sum(foreground), 1.0)


def mask_loss(targets: Any, logits: Any, weights: Any) -> tf.Tensor:
    """Sigmoid CE of the true class's ``logits`` ``[N, M, R, R]`` against ``targets`` on ROIs with
    ``weights`` ``[N, M]`` = 1 (foreground), averaged over their pixels → scalar."""
    import tensorflow as tf

    w = tf.cast(weights, tf.float32)[..., None, None]
    logit = tf.cast(logits, tf.float32)
    ce = _sigmoid_ce(tf.cast(targets, tf.float32), logit) * w
    pixels = tf.reduce_sum(w) * tf.cast(tf.shape(logit)[-1] * tf.shape(logit)[-2], tf.float32)
    return tf.reduce_sum(ce) / tf.maximum(pixels, 1.0)


def total_loss(terms: Mapping[str, Any], weights: LossWeights) -> tf.Tensor:
    """The weighted sum of the five terms named in :data:`LOSS_NAMES`."""
    factor = {"rpn_box_loss": weights.rpn_box, "fast_rcnn_box_loss": weights.fast_rcnn_box,
              "mask_loss": weights.mask}
    return sum(factor.get(name, 1.0) * terms[name] for name in LOSS_NAMES)  # type: ignore[return-value]
