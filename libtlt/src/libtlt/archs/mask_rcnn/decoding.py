"""MaskRCNN inference decoding in NumPy: box-head outputs → ``generate_detections`` rows, and mask pasting
(DETECTORS-TWO-STAGE.md §2 "Inference outputs"), for tlt-infer / tlt-evaluate and as the export's oracle.

Detections, per image: softmax of the ``class-predict`` logits; for every foreground class c (1..C−1) decode the
ROI with that class's (ty, tx, th, tw) ÷ ``bbox_reg_weights`` (log-size clamp ln(1000/16)), clip to
[0, H] × [0, W]; per-class greedy NMS at ``test_nms`` (0.5); the ``test_detections_per_image`` (100) best over
all classes → ``[N, 100, 6]`` rows (y1, x1, y2, x2, class, score) in input pixels, zero rows after the last
detection. Zero-area ROIs (the proposals' padding) never detect.

Masks: the 28×28 probabilities of the detection's class are resized bilinearly onto the box (image pixel (i, j)
reads the mask at ((i + 0.5 − y1)/h·R − 0.5, (j + 0.5 − x1)/w·R − 0.5), edges clamped) and thresholded at 0.5;
only pixels whose centre lies inside the box can be set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libtlt.archs.mask_rcnn.mask_targets import MASK_THRESHOLD, bilinear_clamped
from libtlt.layers import boxes as box_ops

DETECTION_FIELDS = 6


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def decode_class_boxes(rois: np.ndarray, deltas: np.ndarray, image_hw: Sequence[int],
                       bbox_reg_weights: Sequence[float]) -> np.ndarray:
    """``rois`` ``[..., R, 4]`` and ``deltas`` ``[..., R, 4C]`` → clipped ``[..., R, C, 4]`` (y1, x1, y2, x2)."""
    r = np.asarray(rois, dtype=np.float64)
    d = np.asarray(deltas, dtype=np.float64)
    d = d.reshape(*d.shape[:-1], -1, 4)
    boxes = box_ops.decode_deltas(d, r[..., None, :], bbox_reg_weights)
    height, width = float(image_hw[0]), float(image_hw[1])
    return np.clip(boxes, 0.0, np.array([height, width, height, width]))


def generate_detections(rois: np.ndarray, class_logits: np.ndarray, box_deltas: np.ndarray,
                        image_hw: Sequence[int], *, bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
                        nms_iou: float = 0.5, max_detections: int = 100,
                        score_threshold: float = 0.0) -> np.ndarray:
    """``[N, max_detections, 6]`` float32 detections of ``rois`` ``[N, R, 4]``, ``class_logits`` ``[N, R, C]``
    (class 0 background) and ``box_deltas`` ``[N, R, 4C]`` (module docstring). Scores must exceed
    ``score_threshold``."""
    probs = _softmax(np.asarray(class_logits, dtype=np.float64))
    num_classes = probs.shape[-1]
    if np.shape(box_deltas)[-1] != 4 * num_classes:
        raise ValueError(f"{num_classes} classes need {4 * num_classes} deltas per ROI, got {np.shape(box_deltas)[-1]}")
    boxes = decode_class_boxes(rois, box_deltas, image_hw, bbox_reg_weights)
    r = np.asarray(rois, dtype=np.float64)
    empty = (r[..., 2] <= r[..., 0]) | (r[..., 3] <= r[..., 1])
    out = np.zeros((len(probs), max_detections, DETECTION_FIELDS), dtype=np.float32)
    for i in range(len(probs)):
        scores = np.where(empty[i][:, None], -np.inf, probs[i, :, 1:])
        kept = box_ops.batched_nms(boxes[i, :, 1:], scores, iou_threshold=nms_iou, score_threshold=score_threshold,
                                   max_per_class=max_detections, max_total=max_detections)
        n = kept.count
        out[i, :n, :4] = kept.boxes[:n]
        out[i, :n, 4] = kept.classes[:n] + 1
        out[i, :n, 5] = kept.scores[:n]
    return out


def paste_mask(mask: np.ndarray, box: Sequence[float], image_hw: Sequence[int],
               threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """Boolean ``[H, W]`` image mask of one ``[R, R]`` probability map placed into ``box`` (y1, x1, y2, x2)."""
    m = np.asarray(mask, dtype=np.float64)
    height, width = int(image_hw[0]), int(image_hw[1])
    y1, x1, y2, x2 = (float(v) for v in box)
    out = np.zeros((height, width), dtype=bool)
    rows = np.arange(max(int(np.floor(y1 - 0.5)) + 1, 0), min(int(np.ceil(y2 - 0.5)), height))
    cols = np.arange(max(int(np.floor(x1 - 0.5)) + 1, 0), min(int(np.ceil(x2 - 0.5)), width))
    rows = rows[(rows + 0.5 >= y1) & (rows + 0.5 <= y2)]
    cols = cols[(cols + 0.5 >= x1) & (cols + 0.5 <= x2)]
    if not len(rows) or not len(cols) or y2 <= y1 or x2 <= x1:
        return out
    size_y, size_x = m.shape
    ys = (rows + 0.5 - y1) / (y2 - y1) * size_y - 0.5
    xs = (cols + 0.5 - x1) / (x2 - x1) * size_x - 0.5
    out[np.ix_(rows, cols)] = bilinear_clamped(m, ys, xs) >= threshold
    return out


def paste_masks(detections: np.ndarray, mask_probs: np.ndarray, image_hw: Sequence[int],
                threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """Boolean ``[K, H, W]`` masks of one image's detections ``[K, 6]`` from ``mask_probs`` ``[K, C, R, R]``:
    each row uses its own class's channel (rows with score 0, the padding, stay empty)."""
    d = np.asarray(detections, dtype=np.float64)
    p = np.asarray(mask_probs, dtype=np.float64)
    out = np.zeros((len(d), int(image_hw[0]), int(image_hw[1])), dtype=bool)
    for k, row in enumerate(d):
        if row[5] > 0:
            out[k] = paste_mask(p[k, int(row[4])], row[:4], image_hw, threshold)
    return out
