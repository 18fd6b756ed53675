"""Bad input exits with status 2 and one line naming file:line and the field; nothing is half-written.

Runs the click command in-process (CliRunner); test_cli.py runs the installed console script.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tlt_dataset_convert.cli import main


def run(spec: Path, output: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-d", str(spec), "-o", str(output), *extra])
    return result.exit_code, result.stderr


def assert_nothing_written(out_dir: Path) -> None:
    assert not out_dir.exists() or list(out_dir.iterdir()) == []  # not even a staging directory


def assert_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]


def test_label_line_without_15_fields(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    label = kitti_root / "labels" / "000007.txt"
    label.write_text("car 0.00 0 0.00 1 2 30 40 0 0 0 0 0 0 0\ncar 0.00 0 0.00 1 2 30 40 0 0 0 0 0 0\n")
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti")
    assert_error(code, err, f"{label}:2:", "expected 15 fields, found 14")
    assert_nothing_written(tmp_path / "out")


def test_predicted_label_with_confidence(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    label = kitti_root / "labels" / "000003.txt"
    label.write_text("car 0.00 0 0.00 1 2 30 40 0 0 0 0 0 0 0 0.87\n")
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti")
    assert_error(code, err, f"{label}:1:", "found 16", "confidence")
    assert_nothing_written(tmp_path / "out")


def test_label_field_not_a_number(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    label = kitti_root / "labels" / "000011.txt"
    label.write_text("\ncar 0.00 0 0.00 1 2 abc 40 0 0 0 0 0 0 0\n")
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti")
    assert_error(code, err, f"{label}:2:", "field 'xmax'", "'abc'")
    assert_nothing_written(tmp_path / "out")


def test_image_without_label(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    (kitti_root / "labels" / "000012.txt").unlink()
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti")
    assert_error(code, err, str(kitti_root / "images" / "000012.png"), "no label file")
    assert_nothing_written(tmp_path / "out")


def test_label_without_image(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    (kitti_root / "images" / "000013.png").unlink()
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti")
    assert_error(code, err, str(kitti_root / "labels" / "000013.txt"), "no image")
    assert_nothing_written(tmp_path / "out")


def test_unreadable_image(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    image = kitti_root / "images" / "000014.png"
    image.write_bytes(b"not a png at all")
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti")
    assert_error(code, err, str(image))
    assert_nothing_written(tmp_path / "out")


def test_missing_sequence_file(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    (kitti_root / "kitti_seq_to_map.json").unlink()
    spec = kitti_spec(kitti_root, mode="sequence", num_partitions=2)
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:9:", "field 'kitti_config.kitti_sequence_to_frames_file'", "not found")
    assert_nothing_written(tmp_path / "out")


def test_sequence_map_names_a_missing_frame(kitti_root: Path, kitti_spec: Callable[..., Path],
                                            tmp_path: Path) -> None:
    path = kitti_root / "kitti_seq_to_map.json"
    sequences = json.loads(path.read_text())
    name = sorted(sequences)[1]
    sequences[name].append("999999")
    path.write_text(json.dumps(sequences, indent=2))
    line = path.read_text().splitlines().index('    "999999"') + 1
    code, err = run(kitti_spec(kitti_root, mode="sequence", num_partitions=2), tmp_path / "out" / "kitti")
    assert_error(code, err, f"{path}:{line}:", f"field '{name}[{len(sequences[name]) - 1}]'", "'999999'")
    assert_nothing_written(tmp_path / "out")


def test_frame_in_no_sequence(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = kitti_root / "kitti_seq_to_map.json"
    sequences = json.loads(path.read_text())
    first = sorted(sequences)[0]
    sequences[first] = sequences[first][1:]
    path.write_text(json.dumps(sequences))
    code, err = run(kitti_spec(kitti_root, mode="sequence", num_partitions=2), tmp_path / "out" / "kitti")
    assert_error(code, err, str(path), "in no sequence")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("val_split", [-1, 100.5, 250])
def test_val_split_outside_0_to_100(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path,
                                    val_split: float) -> None:
    spec = kitti_spec(kitti_root, val_split=val_split)
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:8:", "field 'kitti_config.val_split'", "0-100")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("partitions", [1, 3])
def test_random_mode_needs_two_partitions(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path,
                                          partitions: int) -> None:
    spec = kitti_spec(kitti_root, num_partitions=partitions)
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:7:", "field 'kitti_config.num_partitions'", "exactly 2")
    assert_nothing_written(tmp_path / "out")


def test_unknown_partition_mode(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = kitti_spec(kitti_root, mode="stratified")
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:6:", "field 'kitti_config.partition_mode'", "'stratified'")


def test_more_partitions_than_sequences(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = kitti_spec(kitti_root, mode="sequence", num_partitions=99)
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:7:", "field 'kitti_config.num_partitions'", "sequences")


def test_spec_typo_gets_a_suggestion(kitti_root: Path, write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    spec = write_spec(f'kitti_config {{\n  root_directory_path: "{kitti_root}"\n  val_splitt: 20\n}}\n')
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:3:", "val_splitt", "did you mean 'val_split'")


def test_validation_fold_out_of_range(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    code, err = run(kitti_spec(kitti_root), tmp_path / "out" / "kitti", "-f", "2")
    assert_error(code, err, "validation fold 2", "0-1")
    assert_nothing_written(tmp_path / "out")


def test_sample_modifier_needs_validation_fold(kitti_root: Path, kitti_spec: Callable[..., Path],
                                               tmp_path: Path) -> None:
    spec = kitti_spec(kitti_root, top="sample_modifier_config {\n  max_training_samples: 5\n}\n")
    code, err = run(spec, tmp_path / "out" / "kitti")
    assert_error(code, err, f"{spec}:12:", "field 'sample_modifier_config'", "-f")


def test_failed_run_keeps_previous_outputs(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = kitti_spec(kitti_root, num_shards=2)
    out = tmp_path / "out"
    code, err = run(spec, out / "kitti")
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (kitti_root / "labels" / "000001.txt").write_text("car 1 2 3\n")
    (kitti_root / "labels" / "000000.txt").write_text("")  # would change the output if anything were written
    code, err = run(spec, out / "kitti")
    assert_error(code, err, "000001.txt:1:")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ------------------------------------------------------------------------------------------- COCO


def test_coco_json_that_is_not_coco(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = coco_root / "annotations" / "instances_val2017.json"
    path.write_text('[\n  {"images": []}\n]\n')
    code, err = run(coco_spec(coco_root), tmp_path / "out/")
    assert_error(code, err, f"{path}:1:1:", "not a COCO instances file")
    assert_nothing_written(tmp_path / "out")


def test_coco_json_syntax_error(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = coco_root / "annotations" / "instances_train2017.json"
    path.write_text('{\n  "images": [],\n  "annotations": [,]\n}\n')
    code, err = run(coco_spec(coco_root), tmp_path / "out/")
    assert_error(code, err, f"{path}:3:", "invalid JSON")


# (key, new value, field named, lines below the key where the error points, message)
@pytest.mark.parametrize(("key", "value", "field", "below", "message"), [
    ("bbox", [1, 2, 3], "bbox", 0, "expected bbox"),
    ("bbox", [1, 2, "x", 4], "bbox[2]", 3, "finite number"),
    ("category_id", 77, "category_id", 0, "no category with id 77"),
    ("image_id", 5000, "image_id", 0, "no image with id 5000"),
    ("iscrowd", 3, "iscrowd", 0, "0 or 1"),
    ("segmentation", {"size": [1, 1], "counts": [1]}, "segmentation.size", 1, "RLE size"),
    ("segmentation", [[1, 2, 3]], "segmentation[0]", 1, "polygon"),
    ("segmentation", [], "segmentation", 0, "empty polygon list"),
    ("segmentation", [[1, 2, float("nan"), 4, 5, 6]], "segmentation[0][2]", 4, "finite number"),  # crashed pycocotools
    ("segmentation", "polygon", "segmentation", 0, "expected polygons or an RLE object"),
])
def test_coco_bad_annotation(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path, key: str,
                             value: object, field: str, below: int, message: str) -> None:
    path = coco_root / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    data["annotations"][3][key] = value
    path.write_text(json.dumps(data, indent=1))
    lines = path.read_text().splitlines()
    annotations_at = next(i for i, line in enumerate(lines) if line.startswith(' "annotations"'))
    key_line = next(i for i in range(annotations_at, len(lines)) if f'"{key}":' in lines[i]
                    and sum('"image_id":' in ln for ln in lines[annotations_at:i + 1]) >= 4) + 1 + below
    code, err = run(coco_spec(coco_root), tmp_path / "out/")
    assert_error(code, err, f"{path}:{key_line}:", f"field 'annotations[3].{field}'", message)
    assert_nothing_written(tmp_path / "out")


def test_coco_annotation_missing_bbox(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = coco_root / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    del data["annotations"][1]["bbox"]
    path.write_text(json.dumps(data, indent=1))
    code, err = run(coco_spec(coco_root), tmp_path / "out/")
    assert_error(code, err, f"{path}:", "field 'annotations[1]'", "expected bbox")


def test_coco_image_size_mismatch(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = coco_root / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["images"][2]["width"] += 1
    path.write_text(json.dumps(data, indent=1))
    code, err = run(coco_spec(coco_root, extra="  include_masks: false\n"), tmp_path / "out/")
    assert_error(code, err, f"{path}:", "field 'images[2]'", "but the annotation says")
    assert_nothing_written(tmp_path / "out")


def test_coco_missing_image(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    image = coco_root / "train2017" / "000000000002.jpg"
    image.unlink()
    path = coco_root / "annotations" / "instances_train2017.json"
    line = 1 + path.read_text().split('"000000000002.jpg"')[0].count("\n")
    code, err = run(coco_spec(coco_root), tmp_path / "out/")
    assert_error(code, err, f"{path}:{line}:", "field 'images[1].file_name'", str(image), "not found")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize(("counts", "message"), [("??", "RLE counts sum to 30"), ("0~", "not a valid compressed RLE"),
                                                  ("a", "not a valid compressed RLE")])
def test_coco_damaged_compressed_rle(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path, counts: str,
                                     message: str) -> None:
    """pycocotools decodes any string into some mask: a damaged one was converted without a word."""
    path = coco_root / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    index = next(i for i, a in enumerate(data["annotations"]) if isinstance(a["segmentation"], dict)
                 and isinstance(a["segmentation"]["counts"], str))
    data["annotations"][index]["segmentation"]["counts"] = counts
    path.write_text(json.dumps(data, indent=1))
    code, err = run(coco_spec(coco_root), tmp_path / "out/")
    assert_error(code, err, f"{path}:", f"field 'annotations[{index}].segmentation.counts'", message)
    assert_nothing_written(tmp_path / "out")


def test_coco_spec_mismatched_lists(coco_root: Path, write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    spec = write_spec(f'coco_config {{\n  root_directory_path: "{coco_root}"\n  img_dir_names: ["train2017"]\n'
                      '  annotation_files: ["annotations/instances_train2017.json", "x.json"]\n}\n')
    code, err = run(spec, tmp_path / "out/")
    assert_error(code, err, f"{spec}:3:", "field 'coco_config.img_dir_names'")
