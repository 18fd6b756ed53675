"""DetectNet_v2 raw outputs to boxes in input pixels (REFERENCE.md "DetectNet_v2", decode).

Cell ``(i, j)`` has the reference point ``gx = j·stride + offset``, ``gy = i·stride + offset``; its four
bbox channels ``L, T, R, B`` give ``x1 = gx − L·scale``, ``y1 = gy − T·scale``, ``x2 = gx + R·scale``,
``y2 = gy + B·scale``. This is the exact inverse of :func:`libtlt.layers.bbox_rasterizer.rasterize`'s bbox
targets. Pure NumPy; no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from libtlt.layers.bbox_rasterizer import DEFAULT_OFFSET, DEFAULT_SCALE, DEFAULT_STRIDE


@dataclass(frozen=True)
class Candidates:
    """Cells of one class above a coverage threshold: ``boxes`` ``[K, 4]`` in input pixels, ``coverage`` ``[K]``,
    and the cells' ``rows`` and ``cols`` (``[K]``), in row-major cell order."""

    boxes: NDArray[np.float64]
    coverage: NDArray[np.float64]
    rows: NDArray[np.intp]
    cols: NDArray[np.intp]


def _check_shapes(cov: NDArray[np.generic], bbox: NDArray[np.generic]) -> None:
    if cov.ndim < 3 or bbox.shape[:-3] + bbox.shape[-2:] != cov.shape[:-3] + cov.shape[-2:] \
            or bbox.shape[-3] != 4 * cov.shape[-3]:
        raise ValueError(f"expected cov [..., C, H, W] and bbox [..., 4C, H, W], got {cov.shape} and {bbox.shape}")


def decode(cov: ArrayLike, bbox: ArrayLike, *, stride: float = DEFAULT_STRIDE, scale: float = DEFAULT_SCALE,
           offset: float = DEFAULT_OFFSET) -> NDArray[np.float64]:
    """Every cell's box: ``cov`` ``[..., C, H, W]`` and ``bbox`` ``[..., 4C, H, W]`` → ``[..., C, H, W, 4]``
    (x1, y1, x2, y2 in input pixels). ``cov`` only fixes the shapes; any leading batch dimensions pass through."""
    cov_a, bbox_a = np.asarray(cov), np.asarray(bbox, dtype=np.float64)
    _check_shapes(cov_a, bbox_a)
    classes, height, width = cov_a.shape[-3:]
    deltas = bbox_a.reshape(*bbox_a.shape[:-3], classes, 4, height, width)
    gx = np.arange(width) * stride + offset
    gy = (np.arange(height) * stride + offset)[:, None]
    boxes = np.empty((*deltas.shape[:-3], height, width, 4), dtype=np.float64)
    boxes[..., 0] = gx - deltas[..., 0, :, :] * scale
    boxes[..., 1] = gy - deltas[..., 1, :, :] * scale
    boxes[..., 2] = gx + deltas[..., 2, :, :] * scale
    boxes[..., 3] = gy + deltas[..., 3, :, :] * scale
    return boxes


def candidates(cov: ArrayLike, bbox: ArrayLike, class_index: int, *, coverage_threshold: float,
               stride: float = DEFAULT_STRIDE, scale: float = DEFAULT_SCALE,
               offset: float = DEFAULT_OFFSET) -> Candidates:
    """The boxes of one image's class ``class_index`` at cells whose coverage is above ``coverage_threshold``.

    ``cov`` is ``[C, H, W]``, ``bbox`` ``[4C, H, W]``; only the selected cells are decoded.
    """
    cov_a, bbox_a = np.asarray(cov), np.asarray(bbox)
    _check_shapes(cov_a, bbox_a)
    if cov_a.ndim != 3:
        raise ValueError(f"expected one image's cov [C, H, W], got shape {cov_a.shape}")
    plane = cov_a[class_index]
    rows, cols = np.nonzero(plane > coverage_threshold)
    deltas = bbox_a[4 * class_index:4 * class_index + 4, rows, cols].astype(np.float64).T * scale
    gx = cols * stride + offset
    gy = rows * stride + offset
    boxes = np.stack([gx - deltas[:, 0], gy - deltas[:, 1], gx + deltas[:, 2], gy + deltas[:, 3]], axis=1)
    return Candidates(boxes.reshape(-1, 4), plane[rows, cols].astype(np.float64), rows, cols)
