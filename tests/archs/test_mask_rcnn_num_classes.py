"""MaskRCNN's ``data_config.num_classes`` (background included) against the data: a category id of
``val_json_file`` or of a training record that the network has no class for is exit 2 at the spec's
``num_classes`` line before any training (the installed ``tlt-train``), and so is a category id 0 (the
background's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from libtlt.registry import get_architecture
from libtlt.testing import one_error_line

BIN = Path(sys.executable).parent


def _data(root: Path, json_ids: list[int], record_ids: list[list[int]]) -> Path:
    """A val json with categories ``json_ids``, records (one per entry of ``record_ids``) holding those
    category ids, and the sample spec on them; returns the spec."""
    from libtlt.io.example import encode_example
    from libtlt.io.tfrecord import write_tfrecord

    records = []
    for index, ids in enumerate(record_ids):
        n = len(ids)
        records.append(encode_example({
            "image/encoded": [b"not decoded before the check"], "image/source_id": [str(index).encode()],
            "image/object/bbox/xmin": np.full(n, 0.1, np.float32), "image/object/bbox/ymin": np.full(n, 0.1, np.float32),
            "image/object/bbox/xmax": np.full(n, 0.5, np.float32), "image/object/bbox/ymax": np.full(n, 0.5, np.float32),
            "image/object/class/label": np.asarray(ids, np.int64)}))
    write_tfrecord(root / "train-00000-of-00001.tfrecord", records)
    truth = {"images": [], "annotations": [], "categories": [{"id": i, "name": f"c{i}"} for i in json_ids]}
    (root / "val.json").write_text(json.dumps(truth))
    arch = get_architecture("mask_rcnn")
    text = arch.sample_spec(SimpleNamespace(train=str(root / "train-*"), val=str(root / "train-*"), root=str(root),
                                            annotations=str(root / "val.json")))
    spec = root / "spec.txt"
    spec.write_text(text)
    return spec


def _train(spec: Path, results: Path) -> str:
    done = subprocess.run([str(BIN / "tlt-train"), "mask_rcnn", "-e", str(spec), "-r", str(results)],
                          capture_output=True, text=True, env={**os.environ, "TLT_KEY": "k"}, timeout=600)
    line = one_error_line(done)
    assert not (results / "weights").exists()
    return line


def _line_of(spec: Path, field: str) -> int:
    return 1 + spec.read_text().split(f"{field}:")[0].count("\n")


def test_a_json_category_past_num_classes_exits_2_at_num_classes(tmp_path: Path) -> None:
    spec = _data(tmp_path, [1, 2, 3], [[1]])
    spec.write_text(spec.read_text().replace("num_classes: 4", "num_classes: 3"))
    line = _train(spec, tmp_path / "results")
    assert f"{spec}:{_line_of(spec, 'num_classes')}:" in line and "num_classes" in line
    assert "category id 3 ('c3')" in line and "at least 4" in line and str(tmp_path / "val.json") in line


def test_a_json_category_0_exits_2_at_val_json_file(tmp_path: Path) -> None:
    spec = _data(tmp_path, [0, 1, 2], [[1]])
    line = _train(spec, tmp_path / "results")
    assert f"{spec}:{_line_of(spec, 'val_json_file')}:" in line and "category id 0" in line


def test_a_record_category_past_num_classes_exits_2_naming_the_record(tmp_path: Path) -> None:
    spec = _data(tmp_path, [1, 2], [[1, 2], [2, 1, 5]])  # num_classes 3 from the json; a record has category 5
    assert "num_classes: 3" in spec.read_text()
    line = _train(spec, tmp_path / "results")
    assert f"{spec}:{_line_of(spec, 'num_classes')}:" in line
    assert f"record #1 of {tmp_path / 'train-00000-of-00001.tfrecord'}" in line and "category id 5" in line
