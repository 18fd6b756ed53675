"""RPN training targets of one image, in NumPy (DETECTORS-TWO-STAGE.md §1 "RPN target assignment").

Runs per image inside the ``tf.data`` pipeline through ``tf.numpy_function``. Steps, as the reference (TAO):

1. Only anchors fully inside the image (x1 ≥ 0, y1 ≥ 0, x2 ≤ W − 1, y2 ≤ H − 1) take part; the others have IoU 0
   and are ignored (label −1).
2. IoU uses TAO's **"+1 pixel" convention**: corners are inclusive pixel indices, area = (x2−x1+1)(y2−y1+1). We keep
   TAO's convention (rather than continuous boxes) so thresholds select the same anchors as a TAO model; the
   difference is < 1 % of IoU for 64 px anchors (0.78685 vs 0.78397 in the reference's example).
3. Positive: best IoU over GT ≥ ``max_overlap`` (target: that GT, lower GT index on ties). Negative: valid and best
   IoU ≤ ``min_overlap``. The rest are neutral (−1).
4. Every GT whose best IoU is below ``max_overlap`` (so no anchor is positive through it) forces its best valid anchor
   (first in (H, W, A) order on ties) positive with itself as target, if that IoU > 0. When several such GTs share
   that anchor the last GT wins (as TAO).
5. Sampling, drawn from the ``rng`` passed in: at most ⌊mini_batch/2⌋ positives (random subset; the rest become −1),
   then negatives (random subset) up to ``mini_batch`` in total; the others become −1.
6. Regression target of each remaining positive, +1 convention: w = x2 − x1 + 1, cx = x1 + w/2 = (x1 + x2 + 1)/2
   (same for the anchor); tx = (cx − cxa)/wa, ty = (cy − cya)/ha, tw = ln(w/wa), th = ln(h/ha). No variances;
   ``std_scaling`` multiplies these targets in the training pipeline (``data.rpn_target_tensors``), and the proposal
   layer divides the predictions by it, so the two agree whatever its value.

Labels: 1 positive, 0 negative, −1 ignored (int8). Deltas are zero outside the final positives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libtlt.layers import boxes as box_ops

#: Fraction of the RPN mini-batch that positives may fill.
RPN_POSITIVE_FRACTION = 0.5


def valid_anchors(anchors: np.ndarray, image_hw: Sequence[int]) -> np.ndarray:
    """Boolean ``(K,)``: anchors lying fully inside an H×W image (inclusive pixel corners 0..W−1, 0..H−1)."""
    height, width = image_hw
    a = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    return (a[:, 0] >= 0) & (a[:, 1] >= 0) & (a[:, 2] <= width - 1) & (a[:, 3] <= height - 1)


def real_gt(gt_boxes: np.ndarray) -> np.ndarray:
    """GT rows without the all-zero padding rows the pipeline appends (``max_objects_num_per_image``)."""
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    return g[np.any(g != 0, axis=1)]


def encode(boxes: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Row-aligned +1-convention deltas ``(tx, ty, tw, th)`` of ``boxes`` against ``references`` (float64)."""
    return box_ops.encode_deltas(boxes, references, plus_one=True)


def assign(anchors: np.ndarray, gt_boxes: np.ndarray, image_hw: Sequence[int], *, min_overlap: float,
           max_overlap: float) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1–4: ``(labels (K,) intp, matched GT (K,) intp)`` before sampling; matched is −1 off positives."""
    a = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    g = real_gt(gt_boxes)
    valid = valid_anchors(a, image_hw)
    iou = np.zeros((len(g), len(a)))
    if len(g) and valid.any():
        iou[:, valid] = box_ops.iou_matrix(g, a[valid], plus_one=True)
    matched, labels = box_ops.match_rpn(iou, positive_threshold=max_overlap, negative_threshold=min_overlap,
                                        valid=valid)
    return labels, matched


def rpn_targets(anchors: np.ndarray, gt_boxes: np.ndarray, image_hw: Sequence[int], *, min_overlap: float,
                max_overlap: float, mini_batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(labels (K,) int8, deltas (K, 4) float32)`` of one image (module docstring, steps 1–6).

    ``anchors`` ``(K, 4)`` from :func:`~libtlt.archs.faster_rcnn.anchors.grid_anchors`; ``gt_boxes`` ``(G, 4)``
    ``[x1, y1, x2, y2]`` in input pixels (all-zero rows are padding and are dropped); ``image_hw`` the input size.
    """
    a = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    labels, matched = assign(a, gt_boxes, image_hw, min_overlap=min_overlap, max_overlap=max_overlap)
    keys = rng.random(len(a))
    labels = box_ops.sample_balanced(labels, mini_batch, RPN_POSITIVE_FRACTION, keys=keys)
    deltas = np.zeros((len(a), 4), dtype=np.float32)
    positive = labels == box_ops.POSITIVE
    if positive.any():
        deltas[positive] = encode(real_gt(gt_boxes)[matched[positive]], a[positive])
    return labels.astype(np.int8), deltas
