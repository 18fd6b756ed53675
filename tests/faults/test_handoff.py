"""Data that passes one tool and breaks the next (issue 12 §5, the data tools): truncated images, an
earlier run's shards, and boxes that one tool skipped while the other flipped or kept them."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from libtlt.io.example import decode_example
from libtlt.io.tfrecord import count_records, read_records
from libtlt.samples import generate_detection_dataset
from libtlt.samples.specs import kitti_convert_spec

NUM_FRAMES = 12


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    generate_detection_dataset(root, num_images=NUM_FRAMES, width=96, height=64, seed=5, objects_per_image=(1, 2))
    return root


def convert_spec(tmp_path: Path, root: Path, *, num_shards: int = 2, extension: str = ".png") -> Path:
    spec = tmp_path / f"convert_{num_shards}.txt"
    spec.write_text(kitti_convert_spec(root, num_shards=num_shards, image_extension=extension), encoding="utf-8")
    return spec


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_dataset_convert_refuses_a_truncated_image(faults: ModuleType, tmp_path: Path, extension: str) -> None:
    root = tmp_path / "ds"
    generate_detection_dataset(root, num_images=4, width=96, height=64, seed=5, image_extension=extension.lstrip("."))
    damaged = root / "images" / f"000002{extension}"
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])  # the header (and the size in it) is intact
    out = tmp_path / "out"
    result = faults.run("tlt-dataset-convert", "-d", convert_spec(tmp_path, root, extension=extension), "-o",
                        out / "kitti")
    line = faults.one_error_line(result)
    assert line.startswith(f"Error: {damaged}: truncated image"), line
    assert not out.exists() or list(out.iterdir()) == []


def test_reconverting_with_other_shards_replaces_the_earlier_set(faults: ModuleType, dataset: Path,
                                                                 tmp_path: Path) -> None:
    """num_shards 4, then 2, into the same folder: ``kitti-*`` then reads every frame exactly once, and
    files of another output prefix are left alone."""
    out = tmp_path / "tfrecords"
    for prefix, shards in (("other", 3), ("kitti", 4), ("kitti", 2)):
        result = faults.run("tlt-dataset-convert", "-d", convert_spec(tmp_path, dataset, num_shards=shards), "-o",
                            out / prefix)
        assert result.returncode == 0, result.stderr
    assert "Removed 8 file(s) of an earlier run" in result.stderr
    kitti = sorted(p for p in out.glob("kitti-*"))
    assert [p.name.rsplit("-of-", 1)[1] for p in kitti] == ["00002"] * 4
    ids = [decode_example(r)["frame/id"][0] for p in kitti for r in read_records(p)]
    assert len(ids) == len(set(ids)) == NUM_FRAMES
    assert sum(count_records(p) for p in out.glob("other-*")) == NUM_FRAMES


BAD_BOXES = {
    "inverted": "car 0.00 0 0.00 50.00 10.00 20.00 40.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    "outside": "car 0.00 0 0.00 120.00 10.00 150.00 40.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
}


def _add_bad_boxes(root: Path) -> tuple[Path, int]:
    """Append the two bad boxes to frame 000003's labels; returns the file and the first bad line."""
    label = root / "labels" / "000003.txt"
    lines = label.read_text(encoding="utf-8").splitlines()
    label.write_text("\n".join([*lines, *BAD_BOXES.values()]) + "\n", encoding="utf-8")
    return label, len(lines) + 1


def test_both_data_tools_skip_inverted_and_outside_boxes_naming_the_line(faults: ModuleType, dataset: Path,
                                                                         tmp_path: Path) -> None:
    label, first = _add_bad_boxes(dataset)
    expected = [f"{label}:{first}: skipped box: xmax < xmin", f"{label}:{first + 1}: skipped box: entirely outside"]

    converted = faults.run("tlt-dataset-convert", "-d", convert_spec(tmp_path, dataset), "-o", tmp_path / "tf" / "kitti")
    assert converted.returncode == 0, converted.stderr
    for text in expected:
        assert text in converted.stderr, converted.stderr
    warning = json.loads((tmp_path / "tf" / "kitti_warning.json").read_text())
    skipped = {entry["line"]: entry["reason"] for entry in warning["frames"]["000003"]}
    assert skipped[first].startswith("xmax < xmin") and skipped[first + 1].startswith("entirely outside")

    spec = faults.augment_spec(tmp_path, 96, 64)
    augmented = faults.run("tlt-augment", "-d", dataset, "-a", spec, "-o", tmp_path / "aug", "-j", "1")
    assert augmented.returncode == 0, augmented.stderr
    for text in expected:
        assert text in augmented.stderr, augmented.stderr
    kept = (tmp_path / "aug" / "labels" / "000003.txt").read_text().splitlines()
    assert len(kept) <= first - 1, "the bad boxes must not reach the augmented labels"
