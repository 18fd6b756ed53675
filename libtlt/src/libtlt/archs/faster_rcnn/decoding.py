"""FasterRCNN inference decoding in NumPy: RCNN outputs → per-image detections (DETECTORS-TWO-STAGE.md §1
"Inference decoding and NMS"), for tlt-infer / tlt-evaluate on the Keras model's outputs.

Per image and foreground class k (background is the last probability column and is dropped):

1. ``t = deltas[4k:4k+4] / regr_std`` (classifier_regr_std x, y, w, h).
2. Decode against the ROI with TAO's **+1 widths**: w0 = x2 − x1 + 1, h0 = y2 − y1 + 1, cx0 = x1 + w0/2,
   cy0 = y1 + h0/2; cx = tx·w0 + cx0, w = exp(tw)·w0 (no clamp; overflow → whole image after the clip).
3. Corners centre ± size/2 (no −1), clipped to [0, W − 1] × [0, H − 1] like the proposals. So a zero delta decodes
   to ``ROI + (0, 0, 1, 1)`` before the clip, and decode(encode(g)) = g + (0, 0, 1, 1) for the +1 encoder of
   :mod:`~libtlt.archs.faster_rcnn.rpn_targets` / :mod:`~libtlt.archs.faster_rcnn.rcnn_targets`: the inclusive
   pixel box comes back as its continuous extent.
4. Combined NMS (:func:`libtlt.layers.boxes.batched_nms`): per class, scores > ``score_threshold``
   (object_confidence_thres), greedy NMS at IoU ``nms_iou`` without +1 (classifier_nms_overlap_threshold), at most
   ``max_boxes`` per class; then the ``max_boxes`` (classifier_nms_max_boxes) best over all classes (ties: lower
   class, then better rank).

A ROI with x2 ≤ x1 or y2 ≤ y1 (the all-zero rows that pad the proposals) never detects, whatever the classifier
says of it: its +1 width would otherwise decode to a real box. The exported graph has the same rule
(:func:`libtlt.runtime.onnx_two_stage.detections`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from libtlt.layers import boxes as box_ops
from libtlt.layers.anchor_detection import Detections


def decode_class_boxes(rois: np.ndarray, deltas: np.ndarray, image_hw: Sequence[int],
                       regr_std: Sequence[float]) -> np.ndarray:
    """Steps 1–3: ``rois`` ``[..., R, 4]`` and ``deltas`` ``[..., R, 4·C]`` → clipped boxes ``[..., R, C, 4]``."""
    r = np.asarray(rois, dtype=np.float64)
    d = np.asarray(deltas, dtype=np.float64)
    d = d.reshape(*d.shape[:-1], -1, 4)
    with np.errstate(over="ignore"):
        boxes = box_ops.decode_deltas(d, r[..., None, :], regr_std, plus_one=True, log_scale_clip=math.inf)
    return box_ops.clip_boxes(boxes, image_hw[1] - 1, image_hw[0] - 1)


def decode_detections(rois: np.ndarray, probs: np.ndarray, deltas: np.ndarray, image_hw: Sequence[int], *,
                      regr_std: Sequence[float], nms_iou: float, score_threshold: float,
                      max_boxes: int) -> list[Detections]:
    """Per-image :class:`~libtlt.layers.anchor_detection.Detections` (boxes ``[M, 4]`` input pixels, scores ``[M]``,
    class ids ``[M]`` 0..C_fg−1) of ``rois`` ``[N, R, 4]``, ``probs`` ``[N, R, C_fg + 1]`` (background last) and
    ``deltas`` ``[N, R, 4·C_fg]`` (module docstring)."""
    p = np.asarray(probs, dtype=np.float64)
    num_fg = p.shape[-1] - 1
    if np.shape(deltas)[-1] != 4 * num_fg:
        raise ValueError(f"{num_fg} foreground classes need {4 * num_fg} deltas per ROI, got {np.shape(deltas)[-1]}")
    boxes = decode_class_boxes(rois, deltas, image_hw, regr_std)
    r = np.asarray(rois, dtype=np.float64)
    padding = (r[..., 2] <= r[..., 0]) | (r[..., 3] <= r[..., 1])
    p = np.where(padding[..., None], -np.inf, p)
    result = []
    for image_boxes, image_probs in zip(boxes, p, strict=True):
        kept = box_ops.batched_nms(image_boxes, image_probs[:, :num_fg], iou_threshold=nms_iou,
                                   score_threshold=score_threshold, max_per_class=max_boxes, max_total=max_boxes)
        n = kept.count
        result.append(Detections(kept.boxes[:n], kept.scores[:n], kept.classes[:n]))
    return result
