"""FasterRCNN anchors (DETECTORS-TWO-STAGE.md §1 "Anchors").

Anchor a of a cell is (size i, ratio j) with a = i·len(ratios) + j: sizes outer, ratios inner, in spec order.
Ratio = w/h, so w = scale·√ratio and h = scale/√ratio (0.5 is a tall box). Boxes are ``(x1, y1, x2, y2)`` in input
pixels around the cell centre (stride·(c + 0.5), stride·(r + 0.5)), neither rounded nor clipped.

Rows come in **(H, W, A) row-major order** (row r, then column c, then anchor a): the Keras model is NHWC inside, so
the RPN outputs ``[N, H, W, A]`` and ``[N, H, W, 4A]`` reshape straight to ``[N, K]`` and ``[N, K, 4]`` with
K = H·W·A. TAO flattens (A, H, W); the order only matters for tie-breaking in the proposal layer's top-k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from libtlt.layers import boxes as box_ops


def anchor_shapes(scales: Sequence[float], ratios: Sequence[float]) -> np.ndarray:
    """``(A, 2)`` float32 ``[w, h]`` of one cell's anchors, row a = i·len(ratios) + j."""
    if not scales or not ratios or min(scales) <= 0 or min(ratios) <= 0:
        raise ValueError(f"anchor scales and ratios must be non-empty and > 0, got {list(scales)}, {list(ratios)}")
    shapes = [(s * math.sqrt(r), s / math.sqrt(r)) for s in scales for r in ratios]
    return np.array(shapes, dtype=np.float32).reshape(-1, 2)


def grid_anchors(feature_hw: Sequence[int], stride: float, scales: Sequence[float],
                 ratios: Sequence[float]) -> np.ndarray:
    """``(H·W·A, 4)`` float32 anchors ``[x1, y1, x2, y2]`` of an H×W feature map, (H, W, A) row-major.

    Computed in float64 and rounded once, so the values equal the reference's to float32 precision.
    """
    anchor_shapes(scales, ratios)  # validates
    anchors = box_ops.frcnn_anchors(feature_hw, list(scales), list(ratios), stride=float(stride))
    return anchors.astype(np.float32)


def num_anchors(scales: Sequence[float], ratios: Sequence[float]) -> int:
    """A, the anchors per cell (the RPN head's class channels)."""
    return len(scales) * len(ratios)
