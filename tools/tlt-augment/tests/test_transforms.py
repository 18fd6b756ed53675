"""Property tests of the matrices, the box rule and the warp (000 §5.1.1, REFERENCE "tlt-augment")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_augment import image_ops
from tlt_augment.transforms import (
    apply_to_points,
    compose,
    flip_matrix,
    resize_matrix,
    rotation_matrix,
    shear_matrix,
    to_pixel_affine,
    transform_boxes,
    translation_matrix,
)

sizes = st.tuples(st.integers(8, 400), st.integers(8, 400))


@st.composite
def boxes_in(draw, width: int, height: int, max_boxes: int = 6) -> np.ndarray:
    n = draw(st.integers(1, max_boxes))
    out = []
    for _ in range(n):
        x1 = draw(st.floats(0, width - 1, allow_nan=False))
        y1 = draw(st.floats(0, height - 1, allow_nan=False))
        x2 = draw(st.floats(x1 + 0.5, width, allow_nan=False))
        y2 = draw(st.floats(y1 + 0.5, height, allow_nan=False))
        out.append((x1, y1, x2, y2))
    return np.round(np.array(out), 2)


@st.composite
def size_and_boxes(draw):
    width, height = draw(sizes)
    return width, height, draw(boxes_in(width, height))


@st.composite
def spatial_chains(draw, width: int, height: int):
    """A random cascade in the documented order (rotation, flip, shear, translation), some absent."""
    chain = []
    if draw(st.booleans()):
        chain.append(rotation_matrix(draw(st.floats(-2 * math.pi, 2 * math.pi)), width, height))
    if draw(st.booleans()):
        h, v = draw(st.sampled_from([(True, False), (False, True), (True, True)]))
        chain.append(flip_matrix(h, v, width, height))
    if draw(st.booleans()):
        chain.append(shear_matrix(draw(st.floats(-0.9, 0.9)), draw(st.floats(-0.9, 0.9)), width, height))
    if draw(st.booleans()):
        chain.append(translation_matrix(draw(st.integers(0, width)), draw(st.integers(0, height))))
    return compose(*chain)


@given(size_and_boxes(), st.data())
def test_translation_shifts_boxes_exactly(sb, data) -> None:
    width, height, boxes = sb
    tx, ty = data.draw(st.integers(0, width)), data.draw(st.integers(0, height))
    out, keep = transform_boxes(boxes, translation_matrix(tx, ty), width, height)
    expected = np.round(np.clip(boxes + [tx, ty, tx, ty], 0, [width, height, width, height]), 2)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(keep, (expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1]))


@given(size_and_boxes())
def test_two_horizontal_flips_are_the_identity(sb) -> None:
    width, height, boxes = sb
    flip = flip_matrix(True, False, width, height)
    np.testing.assert_array_equal(flip @ flip, np.eye(3))
    once, keep = transform_boxes(boxes, flip, width, height)
    assert keep.all()
    np.testing.assert_array_equal(once[:, [1, 3]], boxes[:, [1, 3]])
    np.testing.assert_allclose(once[:, [0, 2]], width - boxes[:, [2, 0]], atol=1e-9)
    twice, _ = transform_boxes(once, flip, width, height)
    np.testing.assert_allclose(twice, boxes, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.tuples(st.integers(1, 40), st.integers(1, 40)), st.integers(0, 2**32 - 1), st.booleans())
def test_two_flips_of_an_image_are_the_identity_and_one_mirrors_it(size, seed, vertical) -> None:
    width, height = size
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixel = to_pixel_affine(flip_matrix(not vertical, vertical, width, height))
    once = image_ops.warp(image, pixel, width, height)
    np.testing.assert_array_equal(once, image[::-1] if vertical else image[:, ::-1])
    np.testing.assert_array_equal(image_ops.warp(once, pixel, width, height), image)


@settings(max_examples=25, deadline=None)
@given(st.tuples(st.integers(1, 40), st.integers(1, 40)), st.integers(0, 2**32 - 1), st.data())
def test_integer_translation_moves_pixels_exactly(size, seed, data) -> None:
    width, height = size
    tx, ty = data.draw(st.integers(0, width)), data.draw(st.integers(0, height))
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = image_ops.warp(image, to_pixel_affine(translation_matrix(tx, ty)), width, height)
    expected = np.zeros_like(image)
    expected[ty:, tx:] = image[:height - ty, :width - tx]
    np.testing.assert_array_equal(out, expected)


@settings(max_examples=25, deadline=None)
@given(size_and_boxes(), st.integers(0, 2**32 - 1), st.sampled_from(["rotation", "shear"]))
def test_rotation_by_zero_and_shear_by_zero_change_nothing(sb, seed, which) -> None:
    width, height, boxes = sb
    matrix = rotation_matrix(0.0, width, height) if which == "rotation" else shear_matrix(0.0, 0.0, width, height)
    np.testing.assert_array_equal(matrix, np.eye(3))
    out, keep = transform_boxes(boxes, matrix, width, height)
    assert keep.all()
    np.testing.assert_array_equal(out, boxes)
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_ops.warp(image, to_pixel_affine(matrix), width, height), image)


@given(sizes, st.data())
def test_box_centre_maps_through_the_matrix(size, data) -> None:
    width, height = size
    matrix = data.draw(spatial_chains(width, height))
    boxes = data.draw(boxes_in(width, height))
    # Clamp limits far away: the bounding box of a mapped box is centred on the mapped centre.
    out, _ = transform_boxes(boxes, matrix, 10**7, 10**7)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    mapped = apply_to_points(centres, matrix)
    inside = (mapped > 0).all(axis=1) & (out[:, 0] > 0) & (out[:, 1] > 0)
    np.testing.assert_allclose(((out[:, :2] + out[:, 2:]) / 2)[inside], mapped[inside], atol=0.006)


@given(sizes, st.data())
def test_boxes_stay_inside_the_image(size, data) -> None:
    width, height = size
    matrix = data.draw(spatial_chains(width, height))
    boxes = data.draw(boxes_in(width, height))
    out, keep = transform_boxes(boxes, matrix, width, height)
    assert (out[:, [0, 2]] >= 0).all() and (out[:, [0, 2]] <= width).all()
    assert (out[:, [1, 3]] >= 0).all() and (out[:, [1, 3]] <= height).all()
    assert (out[:, 2] >= out[:, 0]).all() and (out[:, 3] >= out[:, 1]).all()
    kept = out[keep]
    assert ((kept[:, 2] - kept[:, 0]) > 0).all() and ((kept[:, 3] - kept[:, 1]) > 0).all()


def test_matrices_are_the_manuals() -> None:
    """Golden values written out from the formulas of 000 §5.1.1 (W = 200, H = 100)."""
    w, h, a = 200, 100, math.radians(30)
    c, s = math.cos(a), math.sin(a)
    np.testing.assert_allclose(rotation_matrix(a, w, h), [
        [c, s, 0], [-s, c, 0],
        [h * s / 2 - w * c / 2 + w / 2, -h * c / 2 + h / 2 - w * s / 2, 1]])
    np.testing.assert_allclose(shear_matrix(0.3, 0.1, w, h), [[1, 0.1, 0], [0.3, 1, 0], [-h * 0.3 / 2, -w * 0.1 / 2, 1]])
    np.testing.assert_allclose(flip_matrix(True, True, w, h), [[-1, 0, 0], [0, -1, 0], [w, h, 1]])
    np.testing.assert_allclose(translation_matrix(8, 3), [[1, 0, 0], [0, 1, 0], [8, 3, 1]])
    # The rotation turns about the centre.
    np.testing.assert_allclose(apply_to_points([w / 2, h / 2], rotation_matrix(a, w, h)), [w / 2, h / 2])


def test_rotation_warp_follows_the_matrix() -> None:
    """A pixel's content moves to where the matrix sends its centre (smooth image, bilinear)."""
    w, h = 120, 80
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    image = np.dstack([xx * 2, yy * 3, (xx + yy)]).astype(np.uint8)
    matrix = compose(rotation_matrix(math.radians(5), w, h), shear_matrix(0.3, 0, w, h), translation_matrix(8, 0))
    out = image_ops.warp(image, to_pixel_affine(matrix), w, h).astype(int)
    for px, py in [(60, 40), (30, 20), (90, 55)]:
        qx, qy = apply_to_points([px + 0.5, py + 0.5], matrix) - 0.5  # centre → pixel index
        value = out[round(float(qy)), round(float(qx))]
        expected = image[py, px].astype(int)
        # rounding the target to a whole pixel moves at most half a pixel: ≤ 2-3 levels of the ramps
        assert np.abs(value - expected).max() <= 4, (px, py, value, expected)


def test_resize_scales_boxes() -> None:
    out, keep = transform_boxes(np.array([[10.0, 20.0, 30.0, 40.0]]), resize_matrix(100, 50, 200, 25), 200, 25)
    np.testing.assert_allclose(out, [[20.0, 10.0, 60.0, 20.0]])
    assert keep.all()


def test_box_outside_after_translation_is_dropped() -> None:
    out, keep = transform_boxes(np.array([[80.0, 10.0, 90.0, 20.0], [0, 0, 50, 50]]), translation_matrix(20, 0), 100, 60)
    np.testing.assert_allclose(out, [[100, 10, 100, 20], [20, 0, 70, 50]])
    assert keep.tolist() == [False, True]


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_quarter_turns_keep_box_sizes(angle: int) -> None:
    w = h = 100
    out, _ = transform_boxes(np.array([[10.0, 20.0, 40.0, 30.0]]), rotation_matrix(math.radians(angle), w, h), w, h)
    bw, bh = out[0, 2] - out[0, 0], out[0, 3] - out[0, 1]
    expected = (30.0, 10.0) if angle == 180 else (10.0, 30.0)
    assert (bw, bh) == pytest.approx(expected, abs=0.011)
