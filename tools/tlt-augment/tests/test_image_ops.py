"""Colour, blur and codec operations (000 §5.1.2, §5.1.4)."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.errors import DataError
from tlt_augment import image_ops


def bgr(r: int, g: int, b: int) -> np.ndarray:
    return np.array([[[b, g, r]]], dtype=np.uint8)


def noise(shape=(24, 32, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_hue_zero_saturation_one_is_lossless() -> None:
    image = noise()
    np.testing.assert_array_equal(image_ops.color_transform(image, 0.0, 1.0), image)


@pytest.mark.parametrize("angle,expected", [(120, (0, 255, 0)), (240, (0, 0, 255)), (300, (255, 0, 255)),
                                            (60, (255, 255, 0))])
def test_hue_rotation_of_pure_red(angle: float, expected) -> None:
    out = image_ops.color_transform(bgr(255, 0, 0), angle, 1.0)
    np.testing.assert_array_equal(out, bgr(*expected))


@settings(max_examples=40, deadline=None)
@given(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
       st.floats(0, 360), st.floats(0, 1))
def test_hue_saturation_matches_colorsys(rgb, hue, sat) -> None:
    """Independent reference: Python's colorsys HSV, hue rotated modulo 360°, saturation scaled."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    expected = np.array(colorsys.hsv_to_rgb((h + hue / 360) % 1.0, s * sat, v)) * 255
    out = image_ops.color_transform(bgr(*rgb), hue, sat)[0, 0, ::-1].astype(float)
    assert np.abs(out - expected).max() <= 1.0


def test_saturation_zero_makes_channels_equal() -> None:
    out = image_ops.color_transform(noise(), 25.0, 0.0)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    np.testing.assert_array_equal(out[..., 0], noise().max(axis=2))  # V = max channel


def test_tone_brightness_then_contrast() -> None:
    scale, shift = image_ops.tone_coefficients(10.0, (0.5, 127.5))
    lut = image_ops.tone_lut(scale, shift)
    for v in (0, 50, 100, 200, 255):
        expected = min(255, max(0, round(((v + 10) - 127.5) * 1.5 + 127.5)))
        assert lut[v] == expected
    assert image_ops.tone_coefficients(None, None) == (1.0, 0.0)
    assert image_ops.tone_coefficients(0.0, (0.0, 127.5)) == (1.0, 0.0)


def test_tone_fused_with_hue_equals_lut_after_hue() -> None:
    image = noise()
    scale, shift = image_ops.tone_coefficients(20.0, (0.3, 100.0))
    fused = image_ops.color_transform(image, 40.0, 0.8, scale, shift)
    two_steps = image_ops.apply_lut(image_ops.color_transform(image, 40.0, 0.8), image_ops.tone_lut(scale, shift))
    assert np.abs(fused.astype(int) - two_steps).max() <= 2  # one rounding instead of two


def test_brightness_saturates() -> None:
    lut = image_ops.tone_lut(*image_ops.tone_coefficients(100.0, None))
    assert lut[0] == 100 and lut[155] == 255 and lut[255] == 255


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_gaussian_kernel(size: int) -> None:
    kernel = image_ops.gaussian_kernel(size, 1.3)
    assert kernel.shape == (size,)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, kernel[::-1])  # centred


def test_gaussian_kernel_matches_opencv_for_odd_sizes() -> None:
    np.testing.assert_allclose(image_ops.gaussian_kernel(7, 1.5), cv2.getGaussianKernel(7, 1.5).ravel(), atol=1e-7)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_blur_keeps_a_constant_image(size: int) -> None:
    image = np.full((10, 12, 3), 77, np.uint8)
    np.testing.assert_array_equal(image_ops.gaussian_blur(image, size, 2.0), image)


def test_blur_smooths_per_channel() -> None:
    image = np.zeros((9, 9, 3), np.uint8)
    image[4, 4, 1] = 255
    out = image_ops.gaussian_blur(image, 3, 1.0)
    assert out[..., 0].max() == 0 and out[..., 2].max() == 0
    k = image_ops.gaussian_kernel(3, 1.0)
    assert out[4, 4, 1] == round(255 * k[1] * k[1])
    assert out[4, 5, 1] == round(255 * k[1] * k[0])


def test_to_one_channel() -> None:
    out = image_ops.to_channels(noise(), 1)
    assert out.shape == (24, 32)


@pytest.mark.parametrize("extension", ["png", "jpg", "jpeg"])
def test_encode_decode(extension: str) -> None:
    image = np.zeros((16, 20, 3), np.uint8)
    image[4:12, 5:15] = (10, 200, 90)
    out = image_ops.decode_image(image_ops.encode_image(image, extension), "x")
    assert out.shape == image.shape
    if extension == "png":
        np.testing.assert_array_equal(out, image)
    else:
        # JPEG: lossy, chroma subsampled at edges; the block's interior keeps its colour
        assert np.abs(out[6:10, 7:13].astype(int) - image[6:10, 7:13]).max() <= 8


def test_decode_garbage_names_the_file() -> None:
    with pytest.raises(DataError, match=r"frame\.png: cannot decode"):
        image_ops.decode_image(b"definitely not an image", "frame.png")


def test_draw_boxes_outlines() -> None:
    out = image_ops.draw_boxes(np.zeros((20, 20), np.uint8), np.array([[2, 3, 10, 12]]))
    assert out.shape == (20, 20, 3)
    assert tuple(out[3, 5]) == image_ops.BOX_COLOR and tuple(out[11, 9]) == image_ops.BOX_COLOR
    assert out[7, 6].sum() == 0


def test_workspace_reuses_arrays() -> None:
    ws = image_ops.Workspace()
    a = ws.get("x", (2, 3, 3))
    assert ws.get("x", (2, 3, 3)) is a
    assert ws.get("y", (2, 3, 3)) is not a
    assert ws.get("x", (2, 3, 3), np.float32) is not a
