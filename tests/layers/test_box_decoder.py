"""DetectNet_v2 box decoding: REFERENCE.md formula, batch dimensions, candidate selection, encode∘decode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.layers.bbox_rasterizer import TargetClassConfig, rasterize
from libtlt.layers.box_decoder import candidates, decode


def test_reference_formula() -> None:
    cov = np.zeros((2, 3, 4), dtype=np.float32)
    bbox = np.zeros((8, 3, 4), dtype=np.float32)
    bbox[4:8, 1, 2] = [0.5, 0.25, 1.0, 2.0]  # class 1, cell i=1, j=2: gx = 2·16 + 0.5, gy = 1·16 + 0.5
    boxes = decode(cov, bbox)
    assert boxes.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(boxes[1, 1, 2], [32.5 - 17.5, 16.5 - 8.75, 32.5 + 35, 16.5 + 70])
    # A zero cell decodes to its reference point.
    np.testing.assert_array_equal(boxes[0, 2, 3], [48.5, 32.5, 48.5, 32.5])
    custom = decode(cov, bbox, stride=8, scale=10.0, offset=0.0)
    np.testing.assert_allclose(custom[1, 1, 2], [16 - 5, 8 - 2.5, 16 + 10, 8 + 20])


def test_batch_dimensions_pass_through() -> None:
    rng = np.random.default_rng(0)
    cov = rng.uniform(size=(2, 3, 5, 6))
    bbox = rng.normal(size=(2, 12, 5, 6))
    batched = decode(cov, bbox)
    assert batched.shape == (2, 3, 5, 6, 4)
    for n in range(2):
        np.testing.assert_array_equal(batched[n], decode(cov[n], bbox[n]))


def test_candidates_select_cells_above_threshold() -> None:
    rng = np.random.default_rng(1)
    cov = rng.uniform(size=(2, 5, 6)).astype(np.float32)
    bbox = rng.normal(size=(8, 5, 6)).astype(np.float32)
    found = candidates(cov, bbox, 1, coverage_threshold=0.5)
    rows, cols = np.nonzero(cov[1] > 0.5)
    np.testing.assert_array_equal(found.rows, rows)
    np.testing.assert_array_equal(found.cols, cols)
    np.testing.assert_array_equal(found.coverage, cov[1, rows, cols])
    np.testing.assert_allclose(found.boxes, decode(cov, bbox)[1, rows, cols], rtol=1e-12)
    none = candidates(cov, bbox, 0, coverage_threshold=1.0)
    assert none.boxes.shape == (0, 4) and none.coverage.shape == (0,)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 200), st.floats(0, 100), st.floats(1, 120), st.floats(1, 90)),
                min_size=1, max_size=6))
def test_decode_after_encode_is_identity(raw: list[tuple[float, float, float, float]]) -> None:
    boxes = np.array([(x, y, x + w, y + h) for x, y, w, h in raw])
    t = rasterize(boxes, np.zeros(len(boxes), dtype=int), num_classes=1, grid_h=8, grid_w=14,
                  class_configs=[TargetClassConfig()], dtype=np.float64)
    found = candidates(t.cov, t.bbox, 0, coverage_threshold=0.0)
    owners = t.box_index[0, found.rows, found.cols]
    assert (owners >= 0).all()
    np.testing.assert_allclose(found.boxes, boxes[owners], rtol=0, atol=1e-9)
    # float32 targets (what training uses) still decode to within a thousandth of a pixel.
    t32 = rasterize(boxes, np.zeros(len(boxes), dtype=int), num_classes=1, grid_h=8, grid_w=14,
                    class_configs=[TargetClassConfig()])
    found32 = candidates(t32.cov, t32.bbox, 0, coverage_threshold=0.0)
    np.testing.assert_allclose(found32.boxes, boxes[t32.box_index[0, found32.rows, found32.cols]], atol=1e-3)


@pytest.mark.parametrize(("cov_shape", "bbox_shape"), [((2, 3, 4), (4, 3, 4)), ((2, 3, 4), (8, 3, 5)), ((3, 4), (4, 3, 4))])
def test_shape_errors(cov_shape: tuple[int, ...], bbox_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected cov"):
        decode(np.zeros(cov_shape), np.zeros(bbox_shape))


def test_candidates_need_one_image() -> None:
    with pytest.raises(ValueError, match="one image"):
        candidates(np.zeros((1, 1, 2, 2)), np.zeros((1, 4, 2, 2)), 0, coverage_threshold=0.1)
