"""Image files: header-only sizes, decoding to HWC uint8 arrays, atomic writing.

Pixels are used in stored order: EXIF orientation is ignored, as ``tf.image.decode_*`` does, so
sizes, pixels and KITTI box coordinates always refer to the same grid.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from libtlt.errors import DataError, UnsupportedError
from libtlt.io.atomic import write_bytes

#: Extensions the manuals accept for datasets and calibration images (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
_WRITE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
DEFAULT_JPEG_QUALITY = 95
DEFAULT_PNG_COMPRESS_LEVEL = 6
# Pillow raises these for unreadable, truncated or corrupt data (SyntaxError: "broken PNG file").
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def is_image_file(path: str | Path) -> bool:
    """True when the extension is one of ``IMAGE_EXTENSIONS`` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise DataError("image not found", location=path) from None
    except IsADirectoryError:
        raise DataError("expected an image file, found a directory", location=path) from None
    except UnidentifiedImageError:
        raise DataError("not a readable image (unknown or corrupt format)", location=path) from None
    except _DECODE_ERRORS as err:
        raise DataError(f"not a readable image ({err})", location=path) from None


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the file header; the pixels are not decoded."""
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
    return int(width), int(height)


#: A PNG ends with its IEND chunk (length 0, type, CRC); a JPEG with the end-of-image marker.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
#: How far from the end an end marker may sit (some cameras append trailers after a JPEG's EOI).
TAIL_BYTES = 65536
_QUICK_TAIL = 64


def check_complete(path: str | Path, image_format: str) -> None:
    """``DataError("truncated image")`` naming ``path`` unless its end marker is there.

    Why: readers that only look at the header (sizes for TFRecords, augmentation planning) pass a
    truncated copy, and the next tool then dies mid-epoch. The check reads only the file's tail:
    the last 64 bytes, and the last ``TAIL_BYTES`` only when the marker is not right at the end.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            _check_tail(handle, path, image_format)
    except OSError as err:
        raise DataError(f"not a readable image ({err.strerror or err})", location=path) from None


def _check_tail(handle: BinaryIO, path: Path, image_format: str) -> None:
    marker = {"PNG": PNG_END, "JPEG": JPEG_END}.get(image_format)
    if marker is None:
        return
    size = handle.seek(0, 2)
    handle.seek(max(0, size - _QUICK_TAIL))
    tail = handle.read()
    if marker == JPEG_END:
        tail = tail.rstrip(b"\x00")  # zero padding after EOI is common and harmless
    if tail.endswith(marker):
        return
    handle.seek(max(0, size - TAIL_BYTES))
    if marker not in handle.read():
        what = "no IEND chunk at the end" if image_format == "PNG" else "no end-of-image marker"
        raise DataError(f"truncated image ({image_format} file with {what})", location=path)


def complete_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the header, after checking the file is not truncated (see
    :func:`check_complete`); one open for both (the converter's rate depends on it)."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError:
        _open(path).close()  # raises the usual DataError (not found, a directory, ...)
        raise
    with handle:
        try:
            image = Image.open(handle)
        except UnidentifiedImageError:
            raise DataError("not a readable image (unknown or corrupt format)", location=path) from None
        except _DECODE_ERRORS as err:
            raise DataError(f"not a readable image ({err})", location=path) from None
        width, height = image.size
        _check_tail(handle, path, image.format or "")
    return int(width), int(height)


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Decode ``path`` to an HWC uint8 array: RGB for ``channels=3``, luma (ITU-R 601) for ``channels=1``.

    Alpha is dropped; 16-bit images keep their high byte. A missing, truncated or corrupt file raises
    ``DataError`` naming it.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    path = Path(path)
    with _open(path) as image:
        try:
            image.load()
            if image.mode.startswith("I;16"):
                wide = np.asarray(image).astype(np.uint16)
                image = Image.fromarray((wide >> 8).astype(np.uint8))
            converted = image.convert("RGB" if channels == 3 else "L")
        except _DECODE_ERRORS as err:
            raise DataError(f"corrupt or truncated image ({err})", location=path) from None
    array = np.asarray(converted, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return array


def encode_image(array: np.ndarray, suffix: str, *, jpeg_quality: int = DEFAULT_JPEG_QUALITY,
                 png_compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL) -> bytes:
    """Encode an HWC (or HW) uint8 array as the format named by ``suffix`` (``.png``, ``.jpg``, ``.jpeg``)."""
    fmt = _WRITE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise UnsupportedError(f"cannot write images with extension '{suffix}' (supported: "
                               f"{', '.join(IMAGE_EXTENSIONS)})")
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"images are written from uint8 arrays, not {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"expected an HW or HWC array with 1, 3 or 4 channels, got shape {array.shape}")
    if fmt == "JPEG" and array.ndim == 3 and array.shape[2] == 4:
        raise ValueError("JPEG cannot store an alpha channel")
    image = Image.fromarray(np.ascontiguousarray(array))
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=jpeg_quality)
    else:
        image.save(buffer, format="PNG", compress_level=png_compress_level)
    return buffer.getvalue()


def write_image(path: str | Path, array: np.ndarray, *, jpeg_quality: int = DEFAULT_JPEG_QUALITY,
                png_compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL, fsync: bool = False) -> None:
    """Write ``array`` atomically, in the format given by the path's suffix.

    ``fsync`` is off by default: datasets hold many small images and the rename already keeps a
    half-written file from appearing under the final name.
    """
    path = Path(path)
    data = encode_image(array, path.suffix, jpeg_quality=jpeg_quality, png_compress_level=png_compress_level)
    write_bytes(path, data, fsync=fsync)
