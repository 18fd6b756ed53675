"""DetectNet_v2 bbox rasterizer: REFERENCE.md check value, painter semantics against a per-supersample reference,
dead-zones, decode∘encode identity, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.layers.bbox_rasterizer import (
    SUPERSAMPLING,
    TargetClassConfig,
    Targets,
    box_geometry,
    rasterize,
)
from libtlt.layers.box_decoder import decode
from libtlt.spec.protos import detectnet_v2_pb2

SAMPLE = TargetClassConfig()  # the manual's 0.5 / 0.5 / 0.4 / 0.4 / 1.0


def test_reference_check_value_geometry() -> None:
    """REFERENCE: box (1,2)–(3,4), centre 0.5/0.5, radius 0.6, min radius 0.5, dead-zone 1.0 (output space)."""
    g = box_geometry([[1, 2, 3, 4]], cov_center_x=0.5, cov_center_y=0.5, cov_radius_x=0.6, cov_radius_y=0.6,
                     bbox_min_radius=0.5, deadzone_radius=1.0)
    assert (g.center_x[0], g.center_y[0]) == (2.0, 3.0)
    assert g.cov_radius_x[0] == pytest.approx(0.6, abs=1e-15)
    assert g.cov_radius_y[0] == pytest.approx(0.6, abs=1e-15)
    assert g.inverse_area[0] == pytest.approx(1 / 1.44, rel=1e-14)
    # Dead-zone 1.0 reaches the box's half-size.
    assert (g.deadzone_radius_x[0], g.deadzone_radius_y[0]) == (1.0, 1.0)


def test_reference_check_value_through_rasterize() -> None:
    """The same box in input pixels (stride 16) gives the same geometry, in output units."""
    config = TargetClassConfig(0.5, 0.5, 0.6, 0.6, 0.5)
    t = rasterize([[16, 32, 48, 64]], [0], num_classes=1, grid_h=8, grid_w=8, class_configs=[config],
                  deadzone_radius=1.0)
    assert (t.geometry.center_x[0], t.geometry.center_y[0]) == (2.0, 3.0)
    assert t.geometry.inverse_area[0] == pytest.approx(1 / 1.44, rel=1e-14)
    # Circle of radius 0.6 around the corner point (2, 3): four cells, symmetric, area ≈ π·0.36.
    assert set(zip(*np.nonzero(t.cov[0]), strict=True)) == {(2, 1), (2, 2), (3, 1), (3, 2)}
    quarter = t.cov[0, 2, 1]
    assert t.cov[0, 2, 2] == t.cov[0, 3, 1] == t.cov[0, 3, 2] == quarter
    assert 4 * quarter == pytest.approx(math.pi * 0.36, rel=0.15)
    np.testing.assert_allclose(t.cov_norm, t.cov / 1.44, rtol=1e-6)


def test_geometry_off_centre_and_min_radius() -> None:
    # cov_center_x < 0.5 measures the half-size towards xmin; a tiny radius is raised keeping the aspect ratio.
    g = box_geometry([[0, 0, 10, 4]], cov_center_x=0.25, cov_center_y=0.5, cov_radius_x=0.5, cov_radius_y=0.5,
                     bbox_min_radius=0.0, deadzone_radius=0.5)
    assert g.center_x[0] == 2.5 and g.center_y[0] == 2.0
    assert g.cov_radius_x[0] == 1.25 and g.cov_radius_y[0] == 1.0
    assert g.deadzone_radius_x[0] == pytest.approx(0.5 * 1.25 + 0.5 * 2.5)
    g = box_geometry([[0, 0, 2, 1]], cov_center_x=0.5, cov_center_y=0.5, cov_radius_x=0.4, cov_radius_y=0.4,
                     bbox_min_radius=1.0)
    assert g.cov_radius_y[0] == pytest.approx(1.0) and g.cov_radius_x[0] == pytest.approx(2.0)
    g = box_geometry([[0, 0, 0.1, 0.1]], cov_center_x=0.5, cov_center_y=0.5, cov_radius_x=0.4, cov_radius_y=0.4,
                     bbox_min_radius=0.0)
    assert g.cov_radius_x[0] == 0.1  # the floor of 0.1 cells


def _reference(boxes: np.ndarray, ids: np.ndarray, num_classes: int, grid_h: int, grid_w: int,
               t: Targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-supersample painter, written with plain loops: cov, cov_norm, owner counts per (class, cell, box)."""
    g, s = t.geometry, SUPERSAMPLING
    valid = [k for k in np.argsort(boxes[:, 3], kind="stable") if boxes[k, 2] > boxes[k, 0]
             and boxes[k, 3] > boxes[k, 1]]
    counts = np.zeros((num_classes, grid_h, grid_w, len(boxes)), dtype=int)
    for c in range(num_classes):
        for yi in range(grid_h * s):
            for xi in range(grid_w * s):
                px, py = (xi + 0.5) / s, (yi + 0.5) / s
                owner = -1
                for k in valid:
                    if ids[k] != c:
                        continue
                    dx, dy = px - g.center_x[k], py - g.center_y[k]
                    if (dx / g.deadzone_radius_x[k]) ** 2 + (dy / g.deadzone_radius_y[k]) ** 2 <= 1.0:
                        owner = -1
                    if (dx / g.cov_radius_x[k]) ** 2 + (dy / g.cov_radius_y[k]) ** 2 <= 1.0:
                        owner = k
                if owner >= 0:
                    counts[c, yi // s, xi // s, owner] += 1
    cov = counts.sum(axis=-1) / s**2
    cov_norm = (counts * g.inverse_area).sum(axis=-1) / s**2
    return cov, cov_norm, counts


boxes_strategy = st.lists(
    st.tuples(st.floats(-20, 120), st.floats(-20, 100), st.floats(0, 80), st.floats(0, 70), st.integers(0, 1)),
    max_size=5,
)


@settings(max_examples=40, deadline=None)
@given(boxes_strategy, st.floats(0.0, 1.0))
def test_matches_per_supersample_reference(raw: list[tuple[float, float, float, float, int]],
                                           deadzone: float) -> None:
    boxes = np.array([(x, y, x + w, y + h) for x, y, w, h, _ in raw], dtype=np.float64).reshape(-1, 4)
    ids = np.array([c for *_, c in raw], dtype=int)
    configs = [SAMPLE, TargetClassConfig(0.3, 0.6, 0.8, 0.5, 0.5)]
    t = rasterize(boxes, ids, num_classes=2, grid_h=6, grid_w=7, class_configs=configs, stride=16,
                  deadzone_radius=deadzone, dtype=np.float64)
    cov, cov_norm, counts = _reference(boxes, ids, 2, 6, 7, t)
    np.testing.assert_array_equal(t.cov, cov)
    np.testing.assert_allclose(t.cov_norm, cov_norm, rtol=1e-12, atol=1e-12)
    assert ((t.cov >= 0) & (t.cov <= 1)).all()
    # The bbox owner of a cell holds the most supersamples; ties go to the nearer box (drawn later).
    rank = np.empty(len(boxes), dtype=int)
    rank[np.argsort(boxes[:, 3], kind="stable")] = np.arange(len(boxes))
    for c, i, j in zip(*np.nonzero(cov > 0), strict=True):
        best = counts[c, i, j].max()
        tied = np.nonzero(counts[c, i, j] == best)[0]
        assert t.box_index[c, i, j] == tied[np.argmax(rank[tied])]
    assert (t.box_index[cov == 0] == -1).all()


@settings(max_examples=40, deadline=None)
@given(boxes_strategy)
def test_decode_inverts_bbox_targets(raw: list[tuple[float, float, float, float, int]]) -> None:
    boxes = np.array([(x, y, x + w, y + h) for x, y, w, h, _ in raw], dtype=np.float64).reshape(-1, 4)
    ids = np.array([c for *_, c in raw], dtype=int)
    t = rasterize(boxes, ids, num_classes=2, grid_h=6, grid_w=7, class_configs=[SAMPLE, SAMPLE],
                  dtype=np.float64)
    decoded = decode(t.cov, t.bbox)
    c, i, j = np.nonzero(t.box_index >= 0)
    np.testing.assert_allclose(decoded[c, i, j], boxes[t.box_index[c, i, j]], rtol=0, atol=1e-9)
    empty = np.broadcast_to((t.box_index < 0)[:, None], (2, 4, 6, 7))
    assert (t.bbox.reshape(2, 4, 6, 7)[empty] == 0).all()


def test_bbox_targets_formula() -> None:
    # Cell (i=2, j=3): reference point gx = 3·16 + 0.5, gy = 2·16 + 0.5.
    t = rasterize([[40, 20, 72, 60]], [0], num_classes=1, grid_h=5, grid_w=6, class_configs=[SAMPLE])
    assert t.box_index[0, 2, 3] == 0
    gx, gy = 48.5, 32.5
    np.testing.assert_allclose(t.bbox[:, 2, 3], [(gx - 40) / 35, (gy - 20) / 35, (72 - gx) / 35, (60 - gy) / 35],
                               rtol=1e-6)
    assert t.cov.dtype == np.float32 and t.bbox.shape == (4, 5, 6)


def test_nearer_box_deadzone_clears_farther_box_of_same_class_only() -> None:
    far = [0, 0, 96, 64]  # ymax 64: drawn first
    near = [32, 16, 128, 96]  # ymax 96: drawn on top
    alone = rasterize([far], [0], num_classes=1, grid_h=8, grid_w=10, class_configs=[SAMPLE])
    both = rasterize([far, near], [0, 0], num_classes=1, grid_h=8, grid_w=10, class_configs=[SAMPLE],
                     deadzone_radius=1.0)
    near_only = rasterize([near], [0], num_classes=1, grid_h=8, grid_w=10, class_configs=[SAMPLE],
                          deadzone_radius=1.0)
    # Where the near box's dead-zone (its whole box, at 1.0) covers, the far box's coverage is gone.
    g = near_only.geometry
    rows, cols = np.nonzero(alone.cov[0] > 0)
    inside = ((cols + 0.5 - g.center_x[0]) / g.deadzone_radius_x[0]) ** 2 \
        + ((rows + 0.5 - g.center_y[0]) / g.deadzone_radius_y[0]) ** 2 < 0.5
    assert inside.any()
    for r, c in zip(rows[inside], cols[inside], strict=True):
        assert both.cov[0, r, c] == near_only.cov[0, r, c]
        assert both.box_index[0, r, c] in (-1, 1)
    # Order is by ymax, not input order.
    swapped = rasterize([near, far], [0, 0], num_classes=1, grid_h=8, grid_w=10, class_configs=[SAMPLE],
                        deadzone_radius=1.0)
    np.testing.assert_array_equal(swapped.cov, both.cov)
    # Another class keeps its own coverage.
    mixed = rasterize([far, near], [0, 1], num_classes=2, grid_h=8, grid_w=10, class_configs=[SAMPLE, SAMPLE],
                      deadzone_radius=1.0)
    np.testing.assert_array_equal(mixed.cov[0], alone.cov[0])
    np.testing.assert_array_equal(mixed.cov[1], near_only.cov[0])


def test_no_boxes_and_degenerate_boxes() -> None:
    for boxes, ids in (([], []), ([[10, 10, 10, 30], [5, 40, 30, 20]], [0, 0])):
        t = rasterize(np.array(boxes).reshape(-1, 4), ids, num_classes=2, grid_h=4, grid_w=5,
                      class_configs=[SAMPLE, SAMPLE])
        assert t.cov.shape == (2, 4, 5) and t.bbox.shape == (8, 4, 5) and t.cov_norm.shape == (2, 4, 5)
        assert not t.cov.any() and not t.bbox.any() and not t.cov_norm.any()
        assert (t.box_index == -1).all()


def test_box_outside_the_image() -> None:
    t = rasterize([[-200, -200, -100, -100], [40, 30, 120, 100]], [0, 0], num_classes=1, grid_h=4, grid_w=5,
                  class_configs=[SAMPLE])
    assert not (t.box_index == 0).any()
    rows, cols = np.nonzero(t.box_index[0] == 1)
    assert len(rows) and (t.cov[0][t.box_index[0] == -1] == 0).all()
    # Distances encode the unclipped box.
    np.testing.assert_allclose(decode(t.cov, t.bbox)[0, rows, cols], [[40, 30, 120, 100]] * len(rows), atol=1e-4)


def test_accepts_spec_messages() -> None:
    config = detectnet_v2_pb2.TargetClassRasterizerConfig(cov_center_x=0.5, cov_center_y=0.5, cov_radius_x=0.4,
                                                          cov_radius_y=0.4, bbox_min_radius=1.0)
    a = rasterize([[10, 10, 90, 60]], [0], num_classes=1, grid_h=5, grid_w=7, class_configs=[config])
    b = rasterize([[10, 10, 90, 60]], [0], num_classes=1, grid_h=5, grid_w=7, class_configs=[SAMPLE])
    np.testing.assert_array_equal(a.cov, b.cov)


@pytest.mark.parametrize(("boxes", "ids", "configs", "match"), [
    ([[0, 0, 10, 10]], [0, 1], [SAMPLE], "1 boxes but 2 class ids"),
    ([[0, 0, 10, 10]], [1], [SAMPLE], r"class ids must lie in \[0, 1\)"),
    ([[0, 0, 10, np.nan]], [0], [SAMPLE], "finite"),
    ([[0, 0, 10, 10]], [0], [SAMPLE, SAMPLE], "expected 1 class configs, got 2"),
])
def test_errors(boxes: list[list[float]], ids: list[int], configs: list[TargetClassConfig], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rasterize(boxes, ids, num_classes=1, grid_h=2, grid_w=2, class_configs=configs)
