"""ROI level assignment and multilevel RoIAlign over the FPN levels (DETECTORS-TWO-STAGE.md §2 "ROI assignment
and multilevel ROIAlign"), in TensorFlow with a NumPy reference.

Level of a ROI of height h and width w (input pixels, continuous): k = ⌊log2(√(h·w) / 224)⌋ + 4, clamped to the
levels that are pooled, min_level..max_level. TAO's MultilevelCropResize receives every FPN output, P6 included,
and clamps to the largest key it was given, so with the default levels 2..6 a ROI of √area ≥ 448·2 pools from P6.

Sampling (RoIAlign with ``aligned=False``, the original Mask R-CNN/TF reference convention): the box is divided by
the level's stride 2^k into feature-pixel units where pixel i sits at coordinate i (no half-pixel shift). Each of
the n × n bins is averaged over ``sampling_ratio`` × ``sampling_ratio`` bilinear samples at the sub-bin centres
y1 + (i + 0.5)·h / (n·s). Sample coordinates are clamped into [0, size − 1] of their level (the TF reference's
boundary rule; torchvision additionally zeroes samples beyond −1 or size and enlarges boxes to 1 pixel, which the
tests' boxes avoid). The TensorFlow version stacks the levels zero-padded to P_min's size and gathers each ROI's
samples from its own level in one ``gather_nd``: memory is R·(n·s)²·C, never R × feature map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

CANONICAL_SIZE = 224.0
CANONICAL_LEVEL = 4
SAMPLING_RATIO = 2


def assign_levels(boxes: np.ndarray, min_level: int, max_level: int) -> np.ndarray:
    """NumPy level ``[...]`` int of ``(y1, x1, y2, x2)`` boxes ``[..., 4]`` (module docstring)."""
    b = np.asarray(boxes, dtype=np.float32)
    root = np.sqrt(np.maximum((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]), np.float32(1e-12)))
    k = np.floor(np.log(root / np.float32(CANONICAL_SIZE)) / np.float32(math.log(2.0))) + CANONICAL_LEVEL
    return np.clip(k, min_level, max_level).astype(np.int64)


def assign_levels_tf(boxes: Any, min_level: int, max_level: int) -> tf.Tensor:
    """TF twin of :func:`assign_levels` (int32); empty boxes go to min_level."""
    import tensorflow as tf

    b = tf.cast(boxes, tf.float32)
    root = tf.sqrt(tf.maximum((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]), 1e-12))
    k = tf.floor(tf.math.log(root / CANONICAL_SIZE) / math.log(2.0)) + CANONICAL_LEVEL
    return tf.cast(tf.clip_by_value(k, float(min_level), float(max_level)), tf.int32)


def _sample_positions(start: np.ndarray | Any, size: np.ndarray | Any, count: int) -> Any:
    """Sub-bin centres start + (i + 0.5)·size / count, i = 0..count−1, along a new last axis."""
    steps = (np.arange(count, dtype=np.float32) + np.float32(0.5)) / np.float32(count)
    return start[..., None] + steps * size[..., None]


def roi_align_reference(feature: np.ndarray, box: Sequence[float], output_size: int,
                        sampling_ratio: int = SAMPLING_RATIO) -> np.ndarray:
    """NumPy RoIAlign of one ``(y1, x1, y2, x2)`` box in feature-pixel units on ``feature`` ``[H, W, C]`` →
    ``[n, n, C]`` (module docstring), written sample by sample as the oracle of :func:`multilevel_roi_align`."""
    f = np.asarray(feature, dtype=np.float64)
    height, width = f.shape[:2]
    y1, x1, y2, x2 = (float(v) for v in box)
    count = output_size * sampling_ratio
    out = np.zeros((count, count, f.shape[2]))
    for i in range(count):
        y = min(max(y1 + (i + 0.5) * (y2 - y1) / count, 0.0), height - 1.0)
        for j in range(count):
            x = min(max(x1 + (j + 0.5) * (x2 - x1) / count, 0.0), width - 1.0)
            y0, x0 = math.floor(y), math.floor(x)
            ya, xa = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
            ly, lx = y - y0, x - x0
            out[i, j] = ((1 - ly) * (1 - lx) * f[y0, x0] + (1 - ly) * lx * f[y0, xa]
                         + ly * (1 - lx) * f[ya, x0] + ly * lx * f[ya, xa])
    return out.reshape(output_size, sampling_ratio, output_size, sampling_ratio, -1).mean(axis=(1, 3))


def multilevel_roi_align(features: Mapping[int, Any], boxes: Any, output_size: int,
                         sampling_ratio: int = SAMPLING_RATIO) -> tf.Tensor:
    """Crops ``[N, R, n, n, C]`` of ``boxes`` ``[N, R, 4]`` ``(y1, x1, y2, x2)`` input pixels from NHWC
    ``features`` ``{level: [N, H_l, W_l, C]}`` (module docstring). No gradient flows into the boxes."""
    import tensorflow as tf

    levels = sorted(features)
    min_level, max_level = levels[0], levels[-1]
    if levels != list(range(min_level, max_level + 1)):
        raise ValueError(f"feature levels must be consecutive, got {levels}")
    first = features[min_level]
    max_h, max_w = int(first.shape[1]), int(first.shape[2])
    stacked = tf.stack([tf.pad(features[level], [[0, 0], [0, max_h - int(features[level].shape[1])],
                                                 [0, max_w - int(features[level].shape[2])], [0, 0]])
                        for level in levels], axis=1)  # [N, L, H, W, C]
    sizes = tf.constant([[int(features[level].shape[1]), int(features[level].shape[2])] for level in levels],
                        tf.float32)
    b = tf.stop_gradient(tf.cast(boxes, tf.float32))
    level = assign_levels_tf(b, min_level, max_level)  # [N, R]
    index = level - min_level
    scaled = b / tf.pow(2.0, tf.cast(level, tf.float32))[..., None]
    size = tf.gather(sizes, index)  # [N, R, 2]
    count = output_size * sampling_ratio
    ys = tf.clip_by_value(_sample_positions(scaled[..., 0], scaled[..., 2] - scaled[..., 0], count), 0.0,
                          size[..., 0:1] - 1.0)
    xs = tf.clip_by_value(_sample_positions(scaled[..., 1], scaled[..., 3] - scaled[..., 1], count), 0.0,
                          size[..., 1:2] - 1.0)
    y0, x0 = tf.floor(ys), tf.floor(xs)
    ly, lx = ys - y0, xs - x0
    y0i, x0i = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1i = tf.minimum(y0i + 1, tf.cast(size[..., 0:1], tf.int32) - 1)
    x1i = tf.minimum(x0i + 1, tf.cast(size[..., 1:2], tf.int32) - 1)
    lev = tf.broadcast_to(index[..., None, None], tf.concat([tf.shape(index), [count, count]], axis=0))

    def corner(yi: tf.Tensor, xi: tf.Tensor) -> tf.Tensor:
        grid_y = tf.broadcast_to(yi[..., :, None], tf.shape(lev))
        grid_x = tf.broadcast_to(xi[..., None, :], tf.shape(lev))
        return tf.gather_nd(stacked, tf.stack([lev, grid_y, grid_x], axis=-1), batch_dims=1)

    wy0, wy1 = (1.0 - ly)[..., :, None, None], ly[..., :, None, None]
    wx0, wx1 = (1.0 - lx)[..., None, :, None], lx[..., None, :, None]
    samples = (wy0 * wx0 * corner(y0i, x0i) + wy0 * wx1 * corner(y0i, x1i)
               + wy1 * wx0 * corner(y1i, x0i) + wy1 * wx1 * corner(y1i, x1i))  # [N, R, ns, ns, C]
    channels = int(first.shape[-1])
    shape = tf.concat([tf.shape(samples)[:2], [output_size, sampling_ratio, output_size, sampling_ratio,
                                               channels]], axis=0)
    return tf.reduce_mean(tf.reshape(samples, shape), axis=[3, 5])
