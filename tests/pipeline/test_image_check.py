"""Undecodable images are named (issue 12 §5): in the graph for truncated files, after the fact for
complete but corrupt ones; other TensorFlow errors are left alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libtlt.data.image_check import checked_decode, image_error

tf = pytest.importorskip("tensorflow")


def first_error(paths: list[str]) -> str:
    ds = tf.data.Dataset.from_tensor_slices(paths).map(lambda p: checked_decode(p, 3), num_parallel_calls=2)
    with pytest.raises(tf.errors.OpError) as info:
        for _ in ds:
            pass
    return str(info.value.message)


@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    paths = {}
    for name, suffix in (("good", ".png"), ("good_jpeg", ".jpg"), ("truncated", ".png"), ("truncated_jpeg", ".jpg"),
                         ("corrupt", ".png")):
        path = tmp_path / f"{name}{suffix}"
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(path)
        paths[name] = path
    for name in ("truncated", "truncated_jpeg"):
        data = paths[name].read_bytes()
        paths[name].write_bytes(data[: len(data) // 2])
    data = bytearray(paths["corrupt"].read_bytes())
    data[len(data) // 2: len(data) // 2 + 128] = bytes(128)
    paths["corrupt"].write_bytes(bytes(data))
    return paths


def test_good_images_decode(images: dict[str, Path]) -> None:
    for name in ("good", "good_jpeg"):
        assert tuple(checked_decode(str(images[name]), 3).shape) == (48, 48, 3)


@pytest.mark.parametrize("name", ["truncated", "truncated_jpeg"])
def test_truncated_image_is_named_from_the_error(images: dict[str, Path], name: str) -> None:
    error = image_error(first_error([str(images["good"]), str(images[name])]))
    assert error is not None and error.location == str(images[name]) and "truncated" in error.message


def test_corrupt_image_is_found_among_the_files(images: dict[str, Path]) -> None:
    paths = [str(images["good"]), str(images["corrupt"])]
    message = first_error(paths)
    assert "corrupt" not in message  # TensorFlow names no file ...
    unnamed = image_error(message)
    assert unnamed is not None and unnamed.location is None and "could not be decoded" in unnamed.message
    named = image_error(message, paths)  # ... the pipeline's file list does
    assert named is not None and named.location == str(images["corrupt"])


def test_other_errors_are_not_image_errors() -> None:
    assert image_error("Graph execution error:\nIncompatible shapes: [2,3] vs. [2,4]") is None
