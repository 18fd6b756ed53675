"""FasterRCNN's four loss terms in TensorFlow, plus a NumPy smooth-L1 (DETECTORS-TWO-STAGE.md §1 "RPN loss",
"RCNN head and losses").

Every term is a sum over one image's sampled elements divided by a **fixed** normaliser (``rpn_mini_batch`` or
``roi_mini_batch``, not the number actually sampled), then averaged over the batch; each returns a float32 scalar.
The lambdas (``lambda_rpn_class``, ``lambda_rpn_regr``, ``lambda_cls_class``, ``lambda_cls_regr``) are **not** applied
here: the caller multiplies each term by its lambda, so these functions stay comparable to the formulas.

Inputs use the flattened (H, W, A) anchor order of :mod:`libtlt.archs.faster_rcnn.anchors` and the layouts of
:mod:`~libtlt.archs.faster_rcnn.rpn_targets` and :mod:`~libtlt.archs.faster_rcnn.rcnn_targets`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

#: Probabilities are clipped to [EPSILON, 1 − EPSILON] before the log (Keras' backend epsilon).
EPSILON = 1e-7
RPN_SIGMA = 3.0
RCNN_SIGMA = 1.0


def smooth_l1(d: np.ndarray | float, sigma: float) -> np.ndarray:
    """Elementwise smooth-L1 (NumPy reference): 0.5·σ²·d² where |d| < 1/σ², else |d| − 0.5/σ²."""
    x = np.abs(np.asarray(d, dtype=np.float64))
    s2 = sigma * sigma
    return np.where(x < 1.0 / s2, 0.5 * s2 * x * x, x - 0.5 / s2)


def smooth_l1_tf(d: Any, sigma: float) -> tf.Tensor:
    """TF twin of :func:`smooth_l1` (float32)."""
    import tensorflow as tf

    x = tf.abs(tf.cast(d, tf.float32))
    s2 = sigma * sigma
    return tf.where(x < 1.0 / s2, 0.5 * s2 * x * x, x - 0.5 / s2)


def _batch_mean(per_image: tf.Tensor, normaliser: int) -> tf.Tensor:
    import tensorflow as tf

    return tf.reduce_mean(per_image) / float(normaliser)


def rpn_class_loss(labels: Any, scores: Any, rpn_mini_batch: int) -> tf.Tensor:
    """Binary cross-entropy of the sigmoid ``scores`` ``[N, K]`` on anchors with ``labels`` ``[N, K]`` 0 or 1 (−1 is
    ignored), summed per image / ``rpn_mini_batch``, batch mean."""
    import tensorflow as tf

    lab = tf.cast(labels, tf.int32)
    p = tf.clip_by_value(tf.cast(scores, tf.float32), EPSILON, 1.0 - EPSILON)
    bce = -tf.where(lab == 1, tf.math.log(p), tf.math.log(1.0 - p))
    per_image = tf.reduce_sum(tf.where(lab >= 0, bce, 0.0), axis=1)
    return _batch_mean(per_image, rpn_mini_batch)


def rpn_regression_loss(labels: Any, target_deltas: Any, deltas: Any, rpn_mini_batch: int) -> tf.Tensor:
    """Smooth-L1 (σ = 3) of predicted ``deltas`` ``[N, K, 4]`` against ``target_deltas`` on positive anchors
    (``labels`` ``[N, K]`` == 1), summed per image / ``rpn_mini_batch``, batch mean."""
    import tensorflow as tf

    positive = tf.cast(tf.equal(tf.cast(labels, tf.int32), 1), tf.float32)
    loss = tf.reduce_sum(smooth_l1_tf(tf.cast(deltas, tf.float32) - tf.cast(target_deltas, tf.float32), RPN_SIGMA),
                         axis=-1)
    return _batch_mean(tf.reduce_sum(loss * positive, axis=1), rpn_mini_batch)


def rcnn_class_loss(class_targets: Any, probs: Any, weights: Any, roi_mini_batch: int) -> tf.Tensor:
    """Categorical cross-entropy of the softmax ``probs`` ``[N, R, C+1]`` against one-hot ``class_targets`` (background
    last) over ROIs with ``weights`` ``[N, R]`` = 1 (0 = all-zero padding ROI), summed / ``roi_mini_batch``, batch
    mean."""
    import tensorflow as tf

    p = tf.clip_by_value(tf.cast(probs, tf.float32), EPSILON, 1.0 - EPSILON)
    ce = -tf.reduce_sum(tf.cast(class_targets, tf.float32) * tf.math.log(p), axis=-1)
    return _batch_mean(tf.reduce_sum(ce * tf.cast(weights, tf.float32), axis=1), roi_mini_batch)


def rcnn_regression_loss(regression_targets: Any, deltas: Any, roi_mini_batch: int) -> tf.Tensor:
    """Smooth-L1 (σ = 1) of ``deltas`` ``[N, R, 4·C_fg]`` against ``regression_targets`` ``[N, R, 8·C_fg]`` =
    [mask (4·C_fg) | deltas (4·C_fg)]: only the 4 class slots of positive ROIs count (mask 1), summed /
    ``roi_mini_batch``, batch mean."""
    import tensorflow as tf

    targets = tf.cast(regression_targets, tf.float32)
    size = tf.shape(targets)[-1] // 2
    mask, target = targets[..., :size], targets[..., size:]
    loss = smooth_l1_tf(tf.cast(deltas, tf.float32) - target, RCNN_SIGMA) * mask
    return _batch_mean(tf.reduce_sum(loss, axis=[1, 2]), roi_mini_batch)
