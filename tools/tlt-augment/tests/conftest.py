"""Fixtures for tlt-augment tests: tiny generated KITTI datasets and spec files."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from libtlt.samples import generate_detection_dataset

REPO = Path(__file__).resolve().parents[3]
SAMPLE_SPEC = REPO / "tests" / "data" / "specs" / "augment" / "sample_spec.txt"

#: Small frames keep the suite fast; 64×48 is the generator's minimum.
WIDTH, HEIGHT = 96, 64


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """``make_dataset(name="ds", num_images=4, ...)`` → dataset root with images/ and labels/."""

    def make(name: str = "ds", *, num_images: int = 4, width: int = WIDTH, height: int = HEIGHT,
             image_extension: str = "png", seed: int = 0) -> Path:
        root = tmp_path / name
        generate_detection_dataset(root, num_images=num_images, width=width, height=height, seed=seed,
                                   image_extension=image_extension, objects_per_image=(2, 5))
        return root

    return make


@pytest.fixture(scope="session")
def source_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-frame dataset generated once per session (read-only)."""
    root = tmp_path_factory.mktemp("augment_source")
    generate_detection_dataset(root, num_images=6, width=WIDTH, height=HEIGHT, seed=7, objects_per_image=(2, 5))
    return root


@pytest.fixture
def dataset(source_dataset: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the session dataset (tests may break it)."""
    root = tmp_path / "ds"
    shutil.copytree(source_dataset, root)
    return root


def spec_text(body: str = "", *, width: int = WIDTH, height: int = HEIGHT, channels: int = 3,
              extension: str = ".png", dataset: bool = True) -> str:
    """A spec with ``body`` (operator messages) plus the data dimensions and dataset_config."""
    text = textwrap.dedent(body).strip() + "\n"
    if dataset:
        text += 'dataset_config { image_path: "images" label_path: "labels" }\n'
    text += (f"output_image_width: {width}\noutput_image_height: {height}\n"
             f"output_image_channel: {channels}\nimage_extension: \"{extension}\"\n")
    return text


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """``write_spec(body, **dims)`` writes a spec file and returns its path; ``raw=`` writes text verbatim."""
    counter = iter(range(1000))

    def write(body: str = "", *, raw: str | None = None, **dims: object) -> Path:
        path = tmp_path / f"spec_{next(counter)}.txt"
        path.write_text(raw if raw is not None else spec_text(body, **dims), encoding="utf-8")  # type: ignore[arg-type]
        return path

    return write


def manual_spec_for(root_relative_images: str = "images", root_relative_labels: str = "labels", *,
                    width: int = WIDTH, height: int = HEIGHT) -> str:
    """The manual's sample spec (5.1) with only the dataset folders and the output size changed."""
    text = SAMPLE_SPEC.read_text(encoding="utf-8")
    text = text.replace('image_path: "image_2"', f'image_path: "{root_relative_images}"')
    text = text.replace('label_path: "label_2"', f'label_path: "{root_relative_labels}"')
    text = text.replace("output_image_width: 1248", f"output_image_width: {width}")
    return text.replace("output_image_height: 384", f"output_image_height: {height}")


@pytest.fixture
def manual_spec() -> Callable[..., str]:
    return manual_spec_for
