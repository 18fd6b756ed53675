"""DetectNet_v2 ground-truth targets (000 §7.2.2, REFERENCE.md "DetectNet_v2"): the bbox rasterizer.

For every class the network learns three maps on its output grid (``grid_h × grid_w`` cells, one cell per
``stride`` input pixels):

* ``cov`` — the coverage target: the fraction of the cell covered by the object's coverage ellipse, measured
  with ``4 × 4`` supersampling;
* ``bbox`` — four channels ``L, T, R, B``: the distances from the cell's reference point
  ``gx = j·stride + offset``, ``gy = i·stride + offset`` to the box's left, top, right and bottom edges,
  divided by ``scale`` (35), so that :func:`libtlt.layers.box_decoder.decode` inverts them exactly;
* ``cov_norm`` — the coverage weighted by the object's inverse coverage area ``1 / (4·rx·ry)``: the weight of
  the bbox L1 cost, so that a large object does not outweigh a small one.

Geometry, per box in output-grid units (input pixels / stride), with the class's ``target_class_config``:
``cx = xmin + cov_center_x·w``; half-size ``sx = cx − xmin`` if ``cov_center_x < 0.5`` else ``xmax − cx``;
coverage radius ``rx = max(cov_radius_x·sx, 0.1)`` (same for y), both scaled up together until the smaller is
``bbox_min_radius``; dead-zone radius ``dx = max((1 − d)·rx + d·sx, rx)`` with ``d = deadzone_radius``.

Boxes are painted back to front, sorted by ``ymax`` ascending (a box lower in the image is nearer the camera).
Painting a box first clears its dead-zone ellipse in its class's maps, then fills its coverage ellipse, so a
nearer box's dead-zone removes farther boxes of the same class. Painting happens per supersample; a cell's
``bbox`` channels come from the box owning most of its covered supersamples (ties: the nearer box).

Pure NumPy; no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

#: Samples per cell along each axis when measuring the covered area.
SUPERSAMPLING = 4
#: Smallest coverage radius before ``bbox_min_radius`` applies (output cells).
MIN_COVERAGE_RADIUS = 0.1
DEFAULT_STRIDE = 16
DEFAULT_SCALE = 35.0
DEFAULT_OFFSET = 0.5
DEFAULT_DEADZONE_RADIUS = 0.67

FloatArray = NDArray[np.float64]


class TargetClassLike(Protocol):
    """Anything with the five ``target_class_config`` fields, e.g. the spec's ``TargetClassRasterizerConfig``."""

    @property
    def cov_center_x(self) -> float: ...
    @property
    def cov_center_y(self) -> float: ...
    @property
    def cov_radius_x(self) -> float: ...
    @property
    def cov_radius_y(self) -> float: ...
    @property
    def bbox_min_radius(self) -> float: ...


@dataclass(frozen=True)
class TargetClassConfig:
    """One class's coverage ellipse; the defaults are the manual's sample values (000 §7.2.2)."""

    cov_center_x: float = 0.5
    cov_center_y: float = 0.5
    cov_radius_x: float = 0.4
    cov_radius_y: float = 0.4
    bbox_min_radius: float = 1.0


@dataclass(frozen=True)
class BoxGeometry:
    """Per-box ellipse geometry in output-grid units (arrays of shape ``[N]``)."""

    center_x: FloatArray
    center_y: FloatArray
    cov_radius_x: FloatArray
    cov_radius_y: FloatArray
    deadzone_radius_x: FloatArray
    deadzone_radius_y: FloatArray
    #: ``1 / (4·cov_radius_x·cov_radius_y)``: the inverse area of the coverage ellipse's bounding rectangle.
    inverse_area: FloatArray


@dataclass(frozen=True)
class Targets:
    """Rasterized ground truth of one image.

    ``cov`` and ``cov_norm`` are ``[C, grid_h, grid_w]``; ``bbox`` is ``[4·C, grid_h, grid_w]``, class-major
    (channels ``4c … 4c+3`` are class ``c``'s ``L, T, R, B``); ``box_index`` ``[C, grid_h, grid_w]`` names the
    input box whose distances a cell carries (−1: none); ``geometry`` is per input box, in input order.
    """

    cov: NDArray[np.floating]
    bbox: NDArray[np.floating]
    cov_norm: NDArray[np.floating]
    box_index: NDArray[np.int32]
    geometry: BoxGeometry


def box_geometry(boxes: ArrayLike, *, cov_center_x: ArrayLike, cov_center_y: ArrayLike, cov_radius_x: ArrayLike,
                 cov_radius_y: ArrayLike, bbox_min_radius: ArrayLike,
                 deadzone_radius: float = DEFAULT_DEADZONE_RADIUS) -> BoxGeometry:
    """Ellipse geometry of ``boxes`` (``[N, 4]`` x1, y1, x2, y2 in output-grid units).

    The class parameters are scalars or ``[N]`` arrays (one value per box).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    ccx = np.asarray(cov_center_x, dtype=np.float64)
    ccy = np.asarray(cov_center_y, dtype=np.float64)
    cx = x1 + ccx * (x2 - x1)
    cy = y1 + ccy * (y2 - y1)
    half_x = np.where(ccx < 0.5, cx - x1, x2 - cx)
    half_y = np.where(ccy < 0.5, cy - y1, y2 - cy)
    rx = np.maximum(np.asarray(cov_radius_x, dtype=np.float64) * half_x, MIN_COVERAGE_RADIUS)
    ry = np.maximum(np.asarray(cov_radius_y, dtype=np.float64) * half_y, MIN_COVERAGE_RADIUS)
    # bbox_min_radius: grow both radii by the same factor until the smaller one reaches it.
    smaller = np.minimum(rx, ry)
    grow = np.maximum(np.asarray(bbox_min_radius, dtype=np.float64) / smaller, 1.0)
    rx, ry = rx * grow, ry * grow
    d = float(deadzone_radius)
    dzx = np.maximum((1.0 - d) * rx + d * half_x, rx)
    dzy = np.maximum((1.0 - d) * ry + d * half_y, ry)
    return BoxGeometry(cx, cy, rx, ry, dzx, dzy, 1.0 / (4.0 * rx * ry))


def _class_parameters(class_configs: Sequence[TargetClassLike], num_classes: int) -> FloatArray:
    if len(class_configs) != num_classes:
        raise ValueError(f"expected {num_classes} class configs, got {len(class_configs)}")
    return np.array([[c.cov_center_x, c.cov_center_y, c.cov_radius_x, c.cov_radius_y, c.bbox_min_radius]
                     for c in class_configs], dtype=np.float64).reshape(num_classes, 5)


def rasterize(boxes: ArrayLike, class_ids: ArrayLike, *, num_classes: int, grid_h: int, grid_w: int,
              class_configs: Sequence[TargetClassLike], stride: float = DEFAULT_STRIDE,
              deadzone_radius: float = DEFAULT_DEADZONE_RADIUS, scale: float = DEFAULT_SCALE,
              offset: float = DEFAULT_OFFSET, dtype: DTypeLike = np.float32) -> Targets:
    """Targets for ``boxes`` (``[N, 4]`` x1, y1, x2, y2 in input pixels) of classes ``class_ids`` (``[N]``).

    ``class_configs[c]`` is class ``c``'s ``target_class_config``. Boxes with no area are skipped; boxes may
    extend past the image (their coverage is clipped to the grid, their distances are not).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ids = np.asarray(class_ids).reshape(-1)
    if len(ids) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(ids)} class ids")
    if not np.isfinite(b).all():
        raise ValueError("box coordinates must be finite")
    ids = ids.astype(np.intp)
    if len(ids) and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"class ids must lie in [0, {num_classes})")
    params = _class_parameters(class_configs, num_classes)[ids]
    geometry = box_geometry(b / stride, cov_center_x=params[:, 0], cov_center_y=params[:, 1],
                            cov_radius_x=params[:, 2], cov_radius_y=params[:, 3], bbox_min_radius=params[:, 4],
                            deadzone_radius=deadzone_radius)

    s = SUPERSAMPLING
    owner = np.full((num_classes, grid_h * s, grid_w * s), -1, dtype=np.int32)
    sample_x = (np.arange(grid_w * s) + 0.5) / s
    sample_y = (np.arange(grid_h * s) + 0.5) / s
    order = np.argsort(b[:, 3], kind="stable")
    order = order[((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))[order]]
    cx, cy = geometry.center_x.tolist(), geometry.center_y.tolist()
    rx, ry = geometry.cov_radius_x.tolist(), geometry.cov_radius_y.tolist()
    dzx, dzy = geometry.deadzone_radius_x.tolist(), geometry.deadzone_radius_y.tolist()
    painted: list[tuple[int, int, int, int, int, int]] = []  # box, class, cell rows r0:r1, cell columns c0:c1
    for box in order.tolist():
        # Cells the dead-zone ellipse can touch.
        c0, c1 = max(int(np.floor(cx[box] - dzx[box])), 0), min(int(np.floor(cx[box] + dzx[box])) + 1, grid_w)
        r0, r1 = max(int(np.floor(cy[box] - dzy[box])), 0), min(int(np.floor(cy[box] + dzy[box])) + 1, grid_h)
        if c0 >= c1 or r0 >= r1:
            continue
        dx = sample_x[c0 * s:c1 * s] - cx[box]
        dy = sample_y[r0 * s:r1 * s, None] - cy[box]
        window = owner[ids[box], r0 * s:r1 * s, c0 * s:c1 * s]
        window[(dx / dzx[box]) ** 2 + (dy / dzy[box]) ** 2 <= 1.0] = -1
        window[(dx / rx[box]) ** 2 + (dy / ry[box]) ** 2 <= 1.0] = box
        painted.append((box, int(ids[box]), r0, r1, c0, c1))

    # Each supersample has one owner (or none), so per-box block counts add up to the covered area; a cell's
    # bbox distances come from the box owning most of its supersamples (ties: the nearer box).
    cov = np.zeros((num_classes, grid_h, grid_w), dtype=np.float64)
    cov_norm = np.zeros((num_classes, grid_h, grid_w), dtype=np.float64)
    box_index = np.full((num_classes, grid_h, grid_w), -1, dtype=np.int32)
    best = np.zeros((num_classes, grid_h, grid_w), dtype=np.int64)
    inverse_area = geometry.inverse_area.tolist()
    for box, cls, r0, r1, c0, c1 in painted:
        owned = owner[cls, r0 * s:r1 * s, c0 * s:c1 * s] == box
        counts = owned.reshape(r1 - r0, s, c1 - c0, s).sum(axis=(1, 3))
        fraction = counts / (s * s)
        cov[cls, r0:r1, c0:c1] += fraction
        cov_norm[cls, r0:r1, c0:c1] += fraction * inverse_area[box]
        best_window, index_window = best[cls, r0:r1, c0:c1], box_index[cls, r0:r1, c0:c1]
        better = (counts >= best_window) & (counts > 0)
        best_window[better] = counts[better]
        index_window[better] = box

    bbox = np.zeros((num_classes, 4, grid_h, grid_w), dtype=np.float64)
    cls_i, row, col = np.nonzero(box_index >= 0)
    if len(cls_i):
        owned = b[box_index[cls_i, row, col]]
        gx = col * stride + offset
        gy = row * stride + offset
        bbox[cls_i, 0, row, col] = (gx - owned[:, 0]) / scale
        bbox[cls_i, 1, row, col] = (gy - owned[:, 1]) / scale
        bbox[cls_i, 2, row, col] = (owned[:, 2] - gx) / scale
        bbox[cls_i, 3, row, col] = (owned[:, 3] - gy) / scale
    return Targets(
        cov=cov.astype(dtype, copy=False),
        bbox=bbox.reshape(num_classes * 4, grid_h, grid_w).astype(dtype, copy=False),
        cov_norm=cov_norm.astype(dtype, copy=False),
        box_index=box_index,
        geometry=geometry,
    )
