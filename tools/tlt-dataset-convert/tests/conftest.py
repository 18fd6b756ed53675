"""Fixtures for tlt-dataset-convert: small KITTI datasets (libtlt.samples), a COCO dataset, spec files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libtlt.samples import generate_detection_dataset

KITTI_FRAMES = 40


@pytest.fixture(scope="session")
def kitti_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-frame KITTI dataset with a sequence map, generated once per session (read-only)."""
    root = tmp_path_factory.mktemp("kitti_source")
    generate_detection_dataset(root, num_images=KITTI_FRAMES, width=128, height=96, seed=3, with_sequence_map=True,
                               objects_per_image=(0, 5))
    return root


@pytest.fixture
def kitti_root(kitti_source: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the session dataset (tests may break it)."""
    root = tmp_path / "dataset"
    shutil.copytree(kitti_source, root)
    return root


def kitti_spec_text(root: Path, *, mode: str = "random", num_partitions: int = 2, val_split: float = 20,
                    num_shards: int = 3, extra: str = "", top: str = "") -> str:
    sequence = '  kitti_sequence_to_frames_file: "kitti_seq_to_map.json"\n' if mode == "sequence" else ""
    return (
        "kitti_config {\n"
        f'  root_directory_path: "{root}"\n'
        '  image_dir_name: "images"\n'
        '  label_dir_name: "labels"\n'
        '  image_extension: ".png"\n'
        f'  partition_mode: "{mode}"\n'
        f"  num_partitions: {num_partitions}\n"
        f"  val_split: {val_split:g}\n"
        f"{sequence}"
        f"  num_shards: {num_shards}\n"
        f"{extra}"
        "}\n"
        f'image_directory_path: "{root}"\n'
        f"{top}"
    )


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    counter = iter(range(1000))

    def write(text: str) -> Path:
        path = tmp_path / f"spec_{next(counter)}.txt"
        path.write_text(text, encoding="utf-8")
        return path

    return write


# ------------------------------------------------------------------------------------------- COCO

COCO_CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
                   {"id": 3, "name": "car", "supercategory": "vehicle"}]


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE of a binary mask (column-major, starting with a run of zeros)."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts = []
    current, run = 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = int(value), 1
    counts.append(run)
    return counts


def make_coco_dataset(root: Path, *, tag: str, num_images: int, first_id: int, seed: int) -> dict[str, object]:
    """JPEG images in ``root/<tag>`` and ``root/annotations/instances_<tag>.json`` with polygon, RLE and
    crowd annotations; returns the json."""
    rng = np.random.default_rng(seed)
    image_dir = root / tag
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = first_id * 100
    for i in range(num_images):
        width, height = int(rng.integers(60, 100)), int(rng.integers(40, 80))
        image_id = first_id + i
        name = f"{image_id:012d}.jpg"
        pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(image_dir / name, quality=90)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        # a triangle polygon
        x0, y0 = float(rng.integers(0, width // 2)), float(rng.integers(0, height // 2))
        poly = [x0, y0, x0 + 20.5, y0, x0, y0 + 15.5]
        annotations.append({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                            "bbox": [x0, y0, 20.5, 15.5], "area": 158.875, "segmentation": [poly]})
        ann_id += 1
        # a rectangle as an uncompressed RLE crowd region
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[5:15, 10:30] = 1
        annotations.append({"id": ann_id, "image_id": image_id, "category_id": 3, "iscrowd": 1,
                            "bbox": [10, 5, 20, 10], "area": 200,
                            "segmentation": {"size": [height, width], "counts": _rle_counts(mask)}})
        ann_id += 1
        if i == 1:  # a compressed RLE string, as pycocotools writes it
            from pycocotools import mask as mask_api

            blob = np.zeros((height, width), dtype=np.uint8)
            blob[20:30, 2:9] = 1
            blob[22:25, 40:50] = 1
            counts = mask_api.encode(np.asfortranarray(blob))["counts"].decode("ascii")
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [2, 20, 48, 10], "area": 100,
                                "segmentation": {"size": [height, width], "counts": counts}})
            ann_id += 1
        if i == 0:  # an empty box, skipped with a warning
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": 3, "iscrowd": 0,
                                "bbox": [3, 3, 0, 5], "area": 0, "segmentation": [[3, 3, 3, 8, 3, 5]]})
            ann_id += 1
    data: dict[str, object] = {"info": {"description": "synthetic"}, "images": images, "annotations": annotations,
            "categories": COCO_CATEGORIES}
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"instances_{tag}.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return data


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    make_coco_dataset(root, tag="train2017", num_images=5, first_id=1, seed=1)
    make_coco_dataset(root, tag="val2017", num_images=3, first_id=100, seed=2)
    return root


def coco_spec_text(root: Path, *, extra: str = "") -> str:
    return (
        "coco_config {\n"
        f'  root_directory_path: "{root}"\n'
        '  img_dir_names: ["train2017", "val2017"]\n'
        '  annotation_files: ["annotations/instances_train2017.json", "annotations/instances_val2017.json"]\n'
        "  num_shards: [2, 1]\n"
        f"{extra}"
        "}\n"
    )


@pytest.fixture
def kitti_spec(write_spec: Callable[[str], Path]) -> Callable[..., Path]:
    """``kitti_spec(root, **options)`` writes a kitti_config spec file and returns its path."""

    def make(root: Path, **options: object) -> Path:
        return write_spec(kitti_spec_text(root, **options))  # type: ignore[arg-type]

    return make


@pytest.fixture
def coco_spec(write_spec: Callable[[str], Path]) -> Callable[..., Path]:
    """``coco_spec(root, extra="")`` writes a coco_config spec file and returns its path."""

    def make(root: Path, extra: str = "") -> Path:
        return write_spec(coco_spec_text(root, extra=extra))

    return make


@pytest.fixture
def coco_builder() -> Callable[..., dict[str, object]]:
    return make_coco_dataset
