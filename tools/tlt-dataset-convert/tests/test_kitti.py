"""KITTI → TFRecords, read back with TensorFlow's own reader and parser.

Every object of the input must come back exactly once with its class (lower-cased) and values; the
folds, shards and record order must follow the documented rules (REFERENCE.md check values).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tlt_dataset_convert.convert import convert
from tlt_dataset_convert.kitti_converter import FEATURES

tf = pytest.importorskip("tensorflow")

FLOAT_FIELDS = ["target/truncation", "target/observation_angle", "target/coordinates_x1", "target/coordinates_y1",
                "target/coordinates_x2", "target/coordinates_y2", "target/world_bbox_h", "target/world_bbox_w",
                "target/world_bbox_l", "target/world_bbox_x", "target/world_bbox_y", "target/world_bbox_z",
                "target/world_bbox_rot_y"]
# Label columns (0-based token index) of each float feature, in FLOAT_FIELDS order.
FLOAT_COLUMNS = [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
DOCUMENTED_KEYS = {"frame/id": "bytes_list", "frame/height": "int64_list", "frame/width": "int64_list",
                   "target/object_class": "bytes_list", "target/occlusion": "int64_list",
                   **dict.fromkeys(FLOAT_FIELDS, "float_list")}


def read_tfrecords(paths: list[Path]) -> list[dict[str, list[Any]]]:
    """Every record of ``paths`` in order, parsed by tf.io.parse_single_example."""
    dtype = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}
    spec = {key: tf.io.VarLenFeature(dtype[kind]) for key, kind in DOCUMENTED_KEYS.items()}
    out = []
    for record in tf.data.TFRecordDataset([str(p) for p in paths]):
        parsed = tf.io.parse_single_example(record, spec)
        out.append({k: tf.sparse.to_dense(v).numpy().tolist() for k, v in parsed.items()})
    return out


def shard_files(output: Path, partitions: int, shards: int) -> list[list[Path]]:
    return [[Path(f"{output}-fold-{p:03d}-of-{partitions:03d}-shard-{s:05d}-of-{shards:05d}") for s in range(shards)]
            for p in range(partitions)]


def label_objects(root: Path) -> Counter[tuple[Any, ...]]:
    """Every valid object of the labels as (frame id, class, float32 values..., occlusion)."""
    objects: Counter[tuple[Any, ...]] = Counter()
    for path in sorted((root / "labels").glob("*.txt")):
        for line in path.read_text().splitlines():
            tokens = line.split()
            if not tokens:
                continue
            x1, y1, x2, y2 = (float(t) for t in tokens[4:8])
            if not (int(x1) < int(x2) and int(y1) < int(y2)):
                continue
            values = tuple(float(np.float32(float(tokens[c]))) for c in FLOAT_COLUMNS)
            objects[(f"images/{path.stem}", tokens[0].lower(), *values, int(float(tokens[2])))] += 1
    return objects


def record_objects(records: list[dict[str, list[Any]]]) -> Counter[tuple[Any, ...]]:
    objects: Counter[tuple[Any, ...]] = Counter()
    for rec in records:
        frame = rec["frame/id"][0].decode()
        for i, name in enumerate(rec["target/object_class"]):
            values = tuple(rec[f][i] for f in FLOAT_FIELDS)
            objects[(frame, name.decode(), *values, rec["target/occlusion"][i])] += 1
    return objects


def expected_order(ids: list[str]) -> list[str]:
    order = np.arange(len(ids))
    np.random.RandomState(42).shuffle(order)
    return [ids[i] for i in order]


def test_random_mode_round_trip(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    # One upper-case class and one box that must be skipped (int(x1) == int(x2)).
    label = kitti_root / "labels" / "000005.txt"
    label.write_text(label.read_text() + "Car 0.00 0 0.00 10.20 20.00 10.90 40.00 1.5 1.6 3.9 1.0 2.0 30.0 0.1\n"
                     "Van 0.50 1 -1.25 30.00 20.00 50.00 40.00 1.5 1.6 3.9 -1.0 2.0 30.5 -1.5\n")
    output = tmp_path / "out" / "kitti"
    result = convert(kitti_spec(kitti_root, val_split=20, num_shards=3), str(output))

    files = shard_files(output, 2, 3)
    assert result.files == [f for fold in files for f in fold]
    assert sorted(p.name for p in output.parent.iterdir()) == sorted([f.name for fold in files for f in fold]
                                                                    + ["kitti_warning.json"])
    folds = [read_tfrecords(fold) for fold in files]
    records = folds[0] + folds[1]

    # Every object exactly once, with class and all values; nothing else.
    assert record_objects(records) == label_objects(kitti_root)
    assert sum(len(r["target/object_class"]) for r in records) == sum(label_objects(kitti_root).values())
    van = next(r for r in records if r["frame/id"] == [b"images/000005"])
    assert b"van" in van["target/object_class"] and b"Van" not in van["target/object_class"]
    # Frame sizes from the image headers.
    assert {(r["frame/width"][0], r["frame/height"][0]) for r in records} == {(128, 96)}

    # Folds: sorted ids, first int(20 / 100 * 40) = 8 are validation; each fold shuffled with RandomState(42).
    ids = sorted(p.stem for p in (kitti_root / "images").glob("*.png"))
    assert [r["frame/id"][0].decode() for r in folds[0]] == [f"images/{i}" for i in expected_order(ids[:8])]
    assert [r["frame/id"][0].decode() for r in folds[1]] == [f"images/{i}" for i in expected_order(ids[8:])]
    # Shards: len // num_shards each, remainder in the last (8 → 2, 2, 4; 32 → 10, 10, 12).
    assert [len(read_tfrecords([f])) for f in files[0]] == [2, 2, 4]
    assert [len(read_tfrecords([f])) for f in files[1]] == [10, 10, 12]

    # The skipped box is in the warning file and not in the records.
    warning = json.loads(Path(f"{output}_warning.json").read_text())
    assert warning["skipped_boxes"] == 1
    (skipped,) = warning["frames"]["000005"]
    assert skipped["class"] == "car" and skipped["bbox"] == [10.2, 20.0, 10.9, 40.0]
    assert skipped["line"] == len(label.read_text().splitlines()) - 1


def test_records_hold_exactly_the_documented_features(kitti_root: Path, kitti_spec: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    output = tmp_path / "kitti"
    convert(kitti_spec(kitti_root, num_shards=1), str(output))
    assert {k: v.value for k, v in FEATURES.items()} == {k: v.split("_")[0] for k, v in DOCUMENTED_KEYS.items()}
    path = shard_files(output, 2, 1)[1][0]
    for raw in tf.data.TFRecordDataset(str(path)):
        example = tf.train.Example.FromString(raw.numpy())
        kinds = {k: f.WhichOneof("kind") for k, f in example.features.feature.items()}
        assert kinds == DOCUMENTED_KEYS


def test_output_is_deterministic(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = kitti_spec(kitti_root, num_shards=2)
    convert(spec, str(tmp_path / "a" / "kitti"))
    convert(spec, str(tmp_path / "b" / "kitti"))
    a = sorted((tmp_path / "a").iterdir())
    b = sorted((tmp_path / "b").iterdir())
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("val_split", "expected_val"), [(0, 0), (12.5, 5), (20, 8), (33, 13), (100, 40)])
def test_partition_sizes_follow_val_split(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path,
                                          val_split: float, expected_val: int) -> None:
    result = convert(kitti_spec(kitti_root, val_split=val_split, num_shards=1), str(tmp_path / "kitti"))
    assert [len(f) for f in result.folds] == [expected_val, 40 - expected_val]
    assert len(read_tfrecords(shard_files(tmp_path / "kitti", 2, 1)[0])) == expected_val


def test_sequence_mode_keeps_sequences_whole(kitti_root: Path, kitti_spec: Callable[..., Path],
                                             tmp_path: Path) -> None:
    sequences = json.loads((kitti_root / "kitti_seq_to_map.json").read_text())
    output = tmp_path / "seq"
    result = convert(kitti_spec(kitti_root, mode="sequence", num_partitions=3, num_shards=2), str(output))
    folds = [read_tfrecords(fold) for fold in shard_files(output, 3, 2)]
    fold_of = {}
    for p, records in enumerate(folds):
        for r in records:
            frame = r["frame/id"][0].decode().split("/")[1]
            assert frame not in fold_of  # every frame exactly once
            fold_of[frame] = p
    assert len(fold_of) == 40
    for frames in sequences.values():
        assert len({fold_of[f] for f in frames}) == 1  # a sequence never spans two folds
    # Dealt round-robin by (-length, name), each fold shuffled with RandomState(42).
    order = sorted(sequences, key=lambda s: (-len(sequences[s]), s))
    for p in range(3):
        frames = [f for s in order[p::3] for f in sequences[s]]
        assert result.folds[p] == expected_order(frames)
        assert [r["frame/id"][0].decode() for r in folds[p]] == [f"images/{f}" for f in expected_order(frames)]
    assert record_objects(folds[0] + folds[1] + folds[2]) == label_objects(kitti_root)


def test_logs_follow_the_manual(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    convert(kitti_spec(kitti_root, num_shards=2), str(tmp_path / "kitti"))
    text = caplog.text
    for needle in ["Instantiating a kitti converter", "Num images in\nTrain: 32\tVal: 8",
                   "Validation data in partition 0. Hence, while choosing the validation set during training "
                   "choose validation_fold 0.",
                   "Writing partition 0, shard 0", "Writing partition 0, shard 1", "Writing partition 1, shard 1",
                   "Wrote the following numbers of objects:", "Cumulative object statistics",
                   "Class map. \nLabel in GT: Label in tfrecords file \ncar: car",
                   "Tfrecords generation complete."]:
        assert needle in text
    counts = Counter(name for _, name, *_ in label_objects(kitti_root))
    assert "\n".join(f"{c}: {counts[c]}" for c in sorted(counts)) in text  # cumulative counts
    assert text.index("Writing partition 1, shard 1") < text.index("Cumulative object statistics")


def test_sample_modifier_filters_duplicates_and_caps(kitti_root: Path, kitti_spec: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    objects = label_objects(kitti_root)
    per_frame: dict[str, set[str]] = {}
    for frame, name, *_ in objects:
        per_frame.setdefault(frame.split("/")[1], set()).add(name)
    modifier = ('sample_modifier_config {\n  filter_samples_containing_only: ["car"]\n'
                '  dominant_target_classes: ["car", "pedestrian"]\n'
                '  minimum_target_class_imbalance { key: "cyclist" value: 0.5 }\n  num_duplicates: 2\n}\n')
    result = convert(kitti_spec(kitti_root, num_shards=1, top=modifier), str(tmp_path / "mod"), validation_fold=0)
    val, train = result.folds
    assert len(val) == 8 and len(set(val)) == 8  # the validation fold is untouched
    ids = sorted(p.stem for p in (kitti_root / "images").glob("*.png"))
    expected: list[str] = []
    for frame in expected_order(ids[8:]):
        classes = per_frame.get(frame, set())
        if classes and classes <= {"car"}:
            continue
        expected += [frame] * (3 if "cyclist" in classes else 1)
    assert train == expected
    records = read_tfrecords(shard_files(tmp_path / "mod", 2, 1)[1])
    assert [r["frame/id"][0].decode() for r in records] == [f"images/{f}" for f in expected]

    capped = convert(kitti_spec(kitti_root, num_shards=1, top="sample_modifier_config { max_training_samples: 10 }\n"),
                     str(tmp_path / "cap"), validation_fold=0)
    full = expected_order(ids[8:])
    assert len(capped.folds[1]) == 10
    positions = [full.index(f) for f in capped.folds[1]]
    assert positions == sorted(positions)  # a subset in the original order
