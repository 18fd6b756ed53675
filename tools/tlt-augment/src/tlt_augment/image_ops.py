"""Pixel operations: decode/encode, the affine warp, colour operators, blur (000 §5.1).

Images are uint8 arrays in OpenCV's BGR order, ``(H, W, 3)``; only the final conversion makes a
1-channel image. OpenCV does the work: on a 1248×384 frame it was 1.1–25× faster than Pillow for
every step measured (docs/tlt-augment.md has the numbers).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from libtlt.errors import DataError

#: PNG: zlib level 1, run-length matching, the fast row filters (none/sub/up). On the sample frames
#: this encodes in half the time of level 1's defaults and is 11% smaller (docs/tlt-augment.md).
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FAST_FILTERS]
JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 95]
#: Never apply EXIF orientation: the labels are in the stored pixel grid.
DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
BOX_COLOR = (0, 255, 0)


def decode_image(data: bytes, path: str | Path) -> np.ndarray:
    """Decode PNG/JPEG bytes to BGR uint8; a file OpenCV cannot decode is a ``DataError`` naming it."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), DECODE_FLAGS) if data else None
    if image is None:
        raise DataError("cannot decode image (damaged or not a PNG/JPEG file)", location=path)
    return image


def encode_image(image: np.ndarray, extension: str) -> bytes:
    """Encode to ``extension`` ("png", "jpg" or "jpeg")."""
    if extension == "png":
        ok, buf = cv2.imencode(".png", image, PNG_PARAMS)
    else:
        ok, buf = cv2.imencode(".jpg", image, JPEG_PARAMS)
    if not ok:  # pragma: no cover - OpenCV fails only on unsupported array types
        raise RuntimeError(f"OpenCV could not encode a {image.shape} {image.dtype} image as {extension}")
    return buf.tobytes()


class Workspace:
    """Reusable output arrays, one per (role, shape, dtype).

    At 1248×384 a fresh 1.4 MB array costs more in page faults than the operation writing it: a
    warp into a new array took 5.1 ms, into a reused one 2.7 ms (docs/tlt-augment.md). A result
    written here is valid until the same role is used again.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...], str], np.ndarray] = {}

    def get(self, role: str, shape: tuple[int, ...], dtype: type = np.uint8) -> np.ndarray:
        key = (role, tuple(shape), np.dtype(dtype).str)
        array = self._arrays.get(key)
        if array is None:
            array = self._arrays[key] = np.empty(shape, dtype=dtype)
        return array


def warp(image: np.ndarray, pixel_affine: np.ndarray, width: int, height: int,
         out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear affine warp with the forward 2×3 map ``pixel_affine``; outside pixels are 0."""
    return cv2.warpAffine(image, pixel_affine, (width, height), dst=out, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def tone_coefficients(brightness: float | None, contrast: tuple[float, float] | None) -> tuple[float, float]:
    """Brightness (``v + offset``) then contrast (``(v - center)·(1 + c) + center``) as ``a·v + b``."""
    offset = brightness or 0.0
    scale, center = (1.0 + contrast[0], contrast[1]) if contrast is not None else (1.0, 0.0)
    return scale, scale * (offset - center) + center


def tone_lut(scale: float, shift: float) -> np.ndarray:
    """The 256-entry table of ``round(scale·v + shift)`` saturated to 0..255."""
    values = np.arange(256, dtype=np.float64) * scale + shift
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def apply_lut(image: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return cv2.LUT(image, lut, dst=out)


def color_transform(image: np.ndarray, hue_degrees: float, saturation: float, scale: float = 1.0,
                    shift: float = 0.0, workspace: Workspace | None = None) -> np.ndarray:
    """HSV hue rotation and saturation multiplier, then the tone map ``scale·v + shift``, in one float pass.

    Works in float32 HSV with the hue in degrees, so nothing is quantized until the single
    rounding at the end (uint8 HSV would keep only 2° hue steps). OpenCV's float conversion is
    linear in V, so values stay in 0..255, and its HSV→BGR wraps hues of 360° and more.
    """
    workspace = workspace or Workspace()
    buf = workspace.get("color", image.shape, np.float32)
    np.copyto(buf, image, casting="unsafe")
    cv2.cvtColor(buf, cv2.COLOR_BGR2HSV, dst=buf)
    if hue_degrees:
        buf[..., 0] += np.float32(hue_degrees)
    if saturation != 1.0:
        buf[..., 1] *= np.float32(saturation)
    cv2.cvtColor(buf, cv2.COLOR_HSV2BGR, dst=buf)
    out = workspace.get("color_u8", image.shape)
    # addWeighted with an integer dtype rounds and saturates: the tone map and the conversion in one pass.
    return cv2.addWeighted(buf, scale, buf, 0.0, shift, dst=out, dtype=cv2.CV_8U)


def gaussian_kernel(size: int, std: float) -> np.ndarray:
    """Normalized 1-D Gaussian of ``size`` taps centred at ``(size - 1) / 2`` (any size > 0, even too)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    kernel = np.exp(-(x * x) / (2.0 * std * std))
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_blur(image: np.ndarray, size: int, std: float, out: np.ndarray | None = None) -> np.ndarray:
    """Separable Gaussian blur per channel, mirrored borders."""
    if size == 1:
        return image
    kernel = gaussian_kernel(size, std)
    return cv2.sepFilter2D(image, -1, kernel, kernel, dst=out, borderType=cv2.BORDER_REFLECT_101)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if channels == 1 else image


def draw_boxes(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """A BGR copy of ``image`` with ``boxes`` (x1, y1, x2, y2) outlined, for ``--verbose``."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
        top_left = (round(float(x1)), round(float(y1)))
        bottom_right = (max(round(float(x2)) - 1, top_left[0]), max(round(float(y2)) - 1, top_left[1]))
        cv2.rectangle(canvas, top_left, bottom_right, BOX_COLOR, 1)
    return canvas
