"""Images: header-only sizes, decoding to HWC uint8, atomic writes, DataError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libtlt.errors import DataError, UnsupportedError
from libtlt.io.images import (
    IMAGE_EXTENSIONS,
    check_complete,
    complete_image_size,
    image_size,
    is_image_file,
    read_image,
    write_image,
)


def _pattern(height: int = 6, width: int = 10, channels: int = 3) -> np.ndarray:
    values = np.arange(height * width * channels, dtype=np.uint32) * 7 % 256
    return values.astype(np.uint8).reshape(height, width, channels)


def test_extensions() -> None:
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png")
    assert is_image_file("a/000001.PNG") and is_image_file("x.jpeg") and not is_image_file("x.txt")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".PNG"])
def test_size_from_header(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    write_image(path, _pattern(6, 10))
    assert image_size(path) == (10, 6)


def test_size_reads_only_the_header(tmp_path: Path) -> None:
    """A PNG whose pixel data is cut off still has a size; decoding it is a DataError naming the file."""
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    write_image(path, noise, png_compress_level=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert image_size(path) == (80, 64)
    with pytest.raises(DataError, match="corrupt or truncated image") as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ")


def test_png_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    array = _pattern()
    write_image(path, array)
    got = read_image(path)
    assert got.dtype == np.uint8 and got.shape == (6, 10, 3)
    np.testing.assert_array_equal(got, array)


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    array = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    write_image(path, array, jpeg_quality=100)
    with Image.open(path) as image:
        assert image.format == "JPEG"
    got = read_image(path)
    assert np.abs(got.astype(int) - array).max() <= 3


def test_jpeg_quality_and_png_level_are_used(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    write_image(tmp_path / "q10.jpg", noise, jpeg_quality=10)
    write_image(tmp_path / "q95.jpg", noise, jpeg_quality=95)
    assert (tmp_path / "q10.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    smooth = np.zeros((64, 64, 3), np.uint8)
    write_image(tmp_path / "l0.png", smooth, png_compress_level=0)
    write_image(tmp_path / "l9.png", smooth, png_compress_level=9)
    assert (tmp_path / "l9.png").stat().st_size < (tmp_path / "l0.png").stat().st_size


def test_channels(tmp_path: Path) -> None:
    gray = tmp_path / "gray.png"
    write_image(gray, _pattern(4, 5, 1))
    with Image.open(gray) as image:
        assert image.mode == "L"
    assert read_image(gray, channels=1).shape == (4, 5, 1)
    rgb = read_image(gray, channels=3)
    assert rgb.shape == (4, 5, 3)
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 2])
    color = tmp_path / "color.png"
    write_image(color, np.full((2, 2, 3), (255, 0, 0), np.uint8))
    assert read_image(color, channels=1)[0, 0, 0] == 76  # ITU-R 601 luma of pure red
    with pytest.raises(ValueError):
        read_image(color, channels=4)


def test_rgba_palette_and_16_bit(tmp_path: Path) -> None:
    rgba = tmp_path / "rgba.png"
    write_image(rgba, np.full((3, 3, 4), (10, 20, 30, 0), np.uint8))
    np.testing.assert_array_equal(read_image(rgba)[0, 0], [10, 20, 30])
    palette = tmp_path / "p.png"
    Image.new("P", (3, 2), 1).save(palette)
    assert read_image(palette).shape == (2, 3, 3)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((2, 2), 0xABCD, np.uint16)).save(deep)
    assert read_image(deep, channels=1)[0, 0, 0] == 0xAB


@pytest.mark.parametrize(("content", "message"), [
    (b"", "not a readable image"),
    (b"this is not an image", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "not a readable image"),
])
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    for call in (image_size, read_image):
        with pytest.raises(DataError, match=message) as info:
            call(path)
        assert str(info.value).startswith(f"{path}: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="image not found"):
        read_image(tmp_path / "absent.jpg")
    with pytest.raises(DataError, match="image not found"):
        image_size(tmp_path / "absent.jpg")
    with pytest.raises(DataError, match="found a directory"):
        image_size(tmp_path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    write_image(path, np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert image_size(path) == (64, 64)
    with pytest.raises(DataError, match=r"cut\.jpg: corrupt or truncated image"):
        read_image(path)


def test_write_is_atomic_and_validates_first(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    write_image(path, _pattern())
    before = path.read_bytes()
    with pytest.raises(ValueError, match="uint8"):
        write_image(path, _pattern().astype(np.float32))
    with pytest.raises(ValueError, match="channels"):
        write_image(path, np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "a.jpg", np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(UnsupportedError, match=r"extension '\.gif'"):
        write_image(tmp_path / "a.gif", _pattern())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_write_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.jpg"
    write_image(path, _pattern())
    assert image_size(path) == (10, 6)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_complete_image_size_finds_truncation_and_accepts_trailers(tmp_path: Path, suffix: str) -> None:
    """Whole files (also a JPEG with zero padding or a camera trailer after EOI) pass; a cut one does not."""
    path = tmp_path / f"a{suffix}"
    write_image(path, _pattern(40, 50))
    data = path.read_bytes()
    assert complete_image_size(path) == (50, 40)
    if suffix == ".jpg":
        for tail in (b"\0" * 100, b"TRAILER" * 500):
            path.write_bytes(data + tail)
            assert complete_image_size(path) == (50, 40)
    path.write_bytes(data[:-20])
    with pytest.raises(DataError, match=r"a\.(png|jpg): truncated image"):
        complete_image_size(path)
    with pytest.raises(DataError, match="truncated image"):
        check_complete(path, "PNG" if suffix == ".png" else "JPEG")
