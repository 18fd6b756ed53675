"""KITTI labels (libtlt.io.kitti): parsing, file:line errors, verbatim tokens, pairing, sequence maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libtlt.errors import DataError
from libtlt.io.kitti import (
    FIELD_NAMES,
    KittiObject,
    format_labels,
    make_object,
    pair_frames,
    parse_label_line,
    read_label_file,
    read_sequence_map,
    write_label_file,
    write_sequence_map,
)

CAR = "car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59"


def test_parse_15_fields() -> None:
    obj = parse_label_line(CAR)
    assert obj.class_name == "car"
    assert obj.truncation == 0.0 and obj.occlusion == 0 and obj.alpha == -1.58
    assert obj.bbox == (587.01, 173.33, 614.12, 200.12)
    assert obj.dimensions == (1.65, 1.67, 3.64)
    assert obj.location3d == (-0.65, 1.71, 46.70)
    assert obj.rotation_y == -1.59
    assert obj.confidence is None
    assert obj.to_line() == CAR


def test_parse_16_fields_with_confidence() -> None:
    obj = parse_label_line(CAR + " 0.875")
    assert obj.confidence == 0.875
    assert len(obj.fields) == 16 and FIELD_NAMES[15] == "confidence"


def test_whitespace_is_normalised_but_tokens_kept() -> None:
    obj = parse_label_line("  Road_Sign\t0.0 2 0.146 100 120 180 160 0 0 0 0 0 0 0  \n")
    assert obj.class_name == "Road_Sign" and obj.occlusion == 2
    assert obj.fields[4:8] == ("100", "120", "180", "160")


@pytest.mark.parametrize("count", [1, 14, 17])
def test_wrong_field_count(count: int) -> None:
    line = " ".join(["car"] + ["0"] * (count - 1))
    with pytest.raises(DataError, match=rf"labels/000001\.txt:7: expected 15 fields .* found {count}"):
        parse_label_line(line, "labels/000001.txt", 7)


@pytest.mark.parametrize(("index", "token", "message"), [
    (4, "abc", "not a number: 'abc'"),
    (7, "1,5", "not a number"),
    (1, "nan", "not a finite number"),
    (14, "inf", "not a finite number"),
])
def test_non_numbers_name_file_line_and_field(index: int, token: str, message: str) -> None:
    tokens = CAR.split()
    tokens[index] = token
    with pytest.raises(DataError, match=message) as info:
        parse_label_line(" ".join(tokens), "l.txt", 3)
    assert str(info.value).startswith(f"l.txt:3: field '{FIELD_NAMES[index]}': ")


def test_read_label_file_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "000042.txt"
    path.write_text(f"{CAR}\n\n{CAR}\ncar 0 0 0 1 2 3\n")
    with pytest.raises(DataError, match=r"000042\.txt:4: expected 15 fields"):
        read_label_file(path)


def test_read_label_file_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f"\n{CAR}\n   \n{CAR} 0.5\n")
    objects = read_label_file(path)
    assert [o.confidence for o in objects] == [None, 0.5]


def test_read_label_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="label file not found"):
        read_label_file(tmp_path / "absent.txt")
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not UTF-8"):
        read_label_file(binary)


def test_with_bbox_keeps_other_tokens_verbatim() -> None:
    obj = parse_label_line("Person 0.50 1 -0.1000 1 2 3 4 1.650 1.67 3.64 -0.65 1.71 46.70 -1.59 0.9")
    moved = obj.with_bbox(10, 20.556, 30.004, 40)
    assert moved.fields[4:8] == ("10.00", "20.56", "30.00", "40.00")
    assert moved.fields[:4] == obj.fields[:4]
    assert moved.fields[8:] == obj.fields[8:]  # "1.650", "-0.1000" and the confidence untouched
    assert obj.bbox == (1.0, 2.0, 3.0, 4.0)  # frozen: the original is unchanged


def test_make_object_and_format(tmp_path: Path) -> None:
    obj = make_object("car", (1, 2, 3.456, 4), confidence=0.25)
    assert obj.to_line() == "car 0.00 0 0.00 1.00 2.00 3.46 4.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.25"
    assert parse_label_line(obj.to_line()) == obj
    assert make_object("bus", (0, 0, 1, 1)).confidence is None
    assert format_labels([]) == ""
    path = tmp_path / "out" / "1.txt"
    write_label_file(path, [obj, KittiObject(tuple(CAR.split()))])
    assert path.read_text() == f"{obj.to_line()}\n{CAR}\n"
    assert read_label_file(path)[1].to_line() == CAR


def _dataset(tmp_path: Path, images: list[str], labels: list[str]) -> tuple[Path, Path]:
    image_dir, label_dir = tmp_path / "images", tmp_path / "labels"
    image_dir.mkdir()
    label_dir.mkdir()
    for name in images:
        (image_dir / name).write_bytes(b"")
    for name in labels:
        (label_dir / name).write_text(CAR + "\n")
    return image_dir, label_dir


def test_pair_frames(tmp_path: Path) -> None:
    image_dir, label_dir = _dataset(tmp_path, ["000002.png", "000001.PNG", "notes.md"], ["000001.txt", "000002.txt"])
    frames = pair_frames(image_dir, label_dir, ".png")
    assert [f.frame_id for f in frames] == ["000001", "000002"]
    assert frames[0].image_path == image_dir / "000001.PNG"
    assert frames[1].label_path == label_dir / "000002.txt"
    assert [f.frame_id for f in pair_frames(image_dir, label_dir, "png")] == ["000001", "000002"]


def test_pair_frames_image_without_label(tmp_path: Path) -> None:
    image_dir, label_dir = _dataset(tmp_path, ["a.jpg", "b.jpg"], ["a.txt"])
    with pytest.raises(DataError, match=r"images/b\.jpg: image has no label file b\.txt in"):
        pair_frames(image_dir, label_dir, "jpg")


def test_pair_frames_label_without_image(tmp_path: Path) -> None:
    image_dir, label_dir = _dataset(tmp_path, ["a.jpg"], ["a.txt", "c.txt"])
    with pytest.raises(DataError, match=r"labels/c\.txt: label file has no image c\.jpg in"):
        pair_frames(image_dir, label_dir, ".jpg")


def test_pair_frames_missing_directories_and_no_images(tmp_path: Path) -> None:
    image_dir, label_dir = _dataset(tmp_path, ["a.png"], ["a.txt"])
    with pytest.raises(DataError, match="image directory not found"):
        pair_frames(tmp_path / "nope", label_dir, "png")
    with pytest.raises(DataError, match="label directory not found"):
        pair_frames(image_dir, tmp_path / "nope", "png")
    with pytest.raises(DataError, match="no images with extension 'jpg'"):
        pair_frames(image_dir, label_dir, "jpg")


def test_sequence_map_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "kitti_seq_to_map.json"
    sequences = {"seq_b": ["000003", "000004"], "seq_a": ["000001"]}
    write_sequence_map(path, sequences)
    assert read_sequence_map(path) == sequences
    assert json.loads(path.read_text()) == sequences


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "expected"),
    ('{"s": "000001"}', "expected"),
    ('{"s": [1]}', "expected"),
])
def test_sequence_map_bad_structure(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kitti_seq_to_map.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_sequence_map(path)


def test_sequence_map_bad_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "kitti_seq_to_map.json"
    path.write_text('{\n  "s": ["1",]\n}\n')
    with pytest.raises(DataError, match=r"kitti_seq_to_map\.json:2:\d+: invalid JSON"):
        read_sequence_map(path)
    with pytest.raises(DataError, match="sequence map file not found"):
        read_sequence_map(tmp_path / "absent.json")
