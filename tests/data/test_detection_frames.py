"""The shared KITTI-record loader's frames (libtlt.data.detection): each object's KITTI occlusion stays with its box
through target_class_mapping, records without ``target/occlusion`` read as fully visible, and ``kept_objects``
picks a frame's per-object values for the rows the tf.data pipeline kept. No TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libtlt.data.detection import NO_CLASS, Frame, kept_objects, read_frames
from libtlt.errors import DataError
from libtlt.io.example import encode_example
from libtlt.io.tfrecord import write_tfrecord

CLASSES = ["car", "person"]
MAPPING = {"car": "car", "pedestrian": "person"}


def record(frame_id: str, objects: list[tuple[str, int]], *, occlusion: bool | list[int] = True) -> bytes:
    """One frame with an object per (class, occlusion); object i's box is (i, i, i + 10, i + 10)."""
    n = len(objects)
    features: dict[str, Any] = {
        "frame/id": [frame_id.encode()], "frame/width": [100], "frame/height": [80],
        "target/object_class": [c.encode() for c, _ in objects],
        "target/coordinates_x1": [float(i) for i in range(n)], "target/coordinates_y1": [float(i) for i in range(n)],
        "target/coordinates_x2": [i + 10.0 for i in range(n)], "target/coordinates_y2": [i + 10.0 for i in range(n)],
    }
    if occlusion is True:
        features["target/occlusion"] = [o for _, o in objects]
    elif occlusion is not False:
        features["target/occlusion"] = occlusion
    kinds = {k: ("bytes" if k in ("frame/id", "target/object_class") else
                 "int64" if k in ("frame/width", "frame/height", "target/occlusion") else "float") for k in features}
    return encode_example(features, kinds)


def frames_of(tmp_path: Path, *records: bytes) -> list[Frame]:
    path = tmp_path / "kitti-fold-000-of-002-shard-00000-of-00001"
    write_tfrecord(path, records, fsync=False)
    return read_frames([str(path)], str(tmp_path), "png", MAPPING, CLASSES)


def test_occlusion_follows_its_object_through_the_class_mapping(tmp_path: Path) -> None:
    # The cyclist is not mapped: dropped with its occlusion, the rest keep theirs in order.
    [frame] = frames_of(tmp_path, record("a", [("car", 1), ("cyclist", 3), ("Pedestrian", 0), ("car", 2)]))
    assert frame.classes.tolist() == [0, 1, 0]
    assert frame.occlusion.tolist() == [1, 0, 2] and frame.occlusion.dtype == np.int32
    np.testing.assert_array_equal(frame.boxes[:, 0], [0, 2, 3])


def test_records_without_occlusion_read_as_visible_and_a_wrong_count_fails(tmp_path: Path) -> None:
    [frame] = frames_of(tmp_path, record("b", [("car", 0), ("pedestrian", 0)], occlusion=False))
    assert frame.occlusion.tolist() == [0, 0]
    with pytest.raises(DataError, match="2 objects but 1 target/occlusion values"):
        frames_of(tmp_path, record("c", [("car", 0), ("pedestrian", 0)], occlusion=[1]))


def test_frame_defaults_to_visible_objects_and_checks_the_count() -> None:
    boxes, classes = np.zeros((2, 4), np.float32), np.array([0, 1], np.int32)
    frame = Frame("f", "f.png", 10, 10, boxes, classes)  # the constructor of before: positional, no occlusion
    assert frame.occlusion.tolist() == [0, 0]
    assert Frame("e", "e.png", 10, 10, np.zeros((0, 4), np.float32), np.zeros(0, np.int32)).occlusion.shape == (0,)
    with pytest.raises(ValueError, match="2 objects but 3 occlusion values"):
        Frame("f", "f.png", 10, 10, boxes, classes, np.zeros(3, np.int32))


def test_kept_objects_picks_the_rows_the_pipeline_kept() -> None:
    # Row i is object i; object 1 was dropped (clipped away), rows 3 and 4 are padding.
    classes = np.array([0, NO_CLASS, 1, NO_CLASS, NO_CLASS])
    assert kept_objects(np.array([2, 1, 0]), classes).tolist() == [2, 0]
    assert kept_objects(np.zeros(0, np.int32), np.full(3, NO_CLASS)).tolist() == []
    with pytest.raises(ValueError, match="3 per-object values but only 2 rows"):
        kept_objects(np.zeros(3), np.zeros(2))
