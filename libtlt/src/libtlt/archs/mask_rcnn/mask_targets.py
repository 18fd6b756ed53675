"""MaskRCNN mask targets (DETECTORS-TWO-STAGE.md §2 "Box head targets and losses": mask target).

The data pipeline stores each GT mask cropped to its GT box and resampled to ``gt_mask_size`` × ``gt_mask_size``
(112; :func:`crop_gt_masks`). The target of a foreground ROI is that crop resampled into the ROI at
``mrcnn_resolution`` (28) and thresholded at 0.5. Sampling is pixel-centre aligned on both sides: target pixel j
is the ROI point y1 + (j + 0.5)·h/R, read bilinearly from the crop whose pixel i covers the GT box point
gy1 + (i + 0.5)·gh/S; beyond the crop's outer pixel centres the value is 0 (outside the GT box). (The TF reference
maps box edges to crop edges with ``crop_and_resize``, half a pixel off this; the masks it learns are the same.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

MASK_THRESHOLD = 0.5
GT_MASK_SIZE = 112


def bilinear_clamped(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``image`` ``[H, W]`` at pixel-index coordinates ``ys`` ``[h]`` × ``xs`` ``[w]``, edges clamped."""
    height, width = image.shape
    y = np.clip(ys, 0.0, height - 1.0)
    x = np.clip(xs, 0.0, width - 1.0)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    ly, lx = (y - y0)[:, None], (x - x0)[None, :]
    return ((1 - ly) * (1 - lx) * image[np.ix_(y0, x0)] + (1 - ly) * lx * image[np.ix_(y0, x1)]
            + ly * (1 - lx) * image[np.ix_(y1, x0)] + ly * lx * image[np.ix_(y1, x1)])


def crop_gt_masks(masks: np.ndarray, boxes: np.ndarray, size: int = GT_MASK_SIZE) -> np.ndarray:
    """Full-image binary masks ``[G, H, W]`` → ``[G, size, size]`` float32 crops of their ``(y1, x1, y2, x2)``
    boxes (pixel centres, bilinear, edges clamped), the layout :func:`mask_targets_tf` reads."""
    m = np.asarray(masks, dtype=np.float64)
    out = np.zeros((len(m), size, size), dtype=np.float32)
    steps = (np.arange(size) + 0.5) / size
    for g, (mask, (y1, x1, y2, x2)) in enumerate(zip(m, np.asarray(boxes, dtype=np.float64), strict=True)):
        out[g] = bilinear_clamped(mask, y1 + steps * (y2 - y1) - 0.5, x1 + steps * (x2 - x1) - 0.5)
    return out


def mask_targets_tf(rois: Any, gt_boxes: Any, gt_mask_crops: Any, resolution: int) -> tf.Tensor:
    """Binary float32 targets ``[M, R, R]`` of ROIs ``[M, 4]`` from their matched GT boxes ``[M, 4]`` and those
    GTs' crops ``[M, S, S]`` (module docstring). No gradient flows into any input."""
    import tensorflow as tf

    r = tf.stop_gradient(tf.cast(rois, tf.float32))
    g = tf.cast(gt_boxes, tf.float32)
    crops = tf.cast(gt_mask_crops, tf.float32)
    size = int(crops.shape[-1])
    gt_size = tf.maximum(g[:, 2:] - g[:, :2], 1e-6)
    roi_size = r[:, 2:] - r[:, :2]
    first = r[:, :2] + 0.5 * roi_size / resolution
    last = r[:, 2:] - 0.5 * roi_size / resolution
    to_crop = [((point - g[:, :2]) / gt_size * size - 0.5) / max(size - 1, 1) for point in (first, last)]
    boxes = tf.concat(to_crop, axis=1)  # (y1, x1, y2, x2) normalised so that 0..1 spans crop pixels 0..S−1
    sampled = tf.image.crop_and_resize(crops[..., None], boxes, tf.range(tf.shape(r)[0]), [resolution, resolution],
                                       method="bilinear", extrapolation_value=0.0)[..., 0]
    return tf.cast(sampled >= MASK_THRESHOLD, tf.float32)
