"""``enable_qat`` for an architecture that trains through a training view (FasterRCNN samples its ROIs against the
ground truth inside the fitted graph): tlt-train builds the fake-quantized twin first and the training view around
it, so the RCNN body on the crops is quantized too; the checkpoint holds the float model with the learned ranges
(trunk, RPN and body), and ``tlt-export --data_type int8`` without calibration data writes them to the cal.bin and
builds an INT8 engine that tlt-evaluate runs. Through the installed commands, one epoch on the task's sample data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
KEY = "qat-view-key"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / str(args[0])), *map(str, args[1:])], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TLT_KEY": KEY})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_faster_rcnn_trains_with_qat_and_exports_its_ranges(tmp_path: Path) -> None:
    from libtlt.io.modelfile import load_model_file
    from libtlt.registry import BOX_DETECTOR, get_architecture
    from libtlt.runtime.keras_model import load_tlt_model
    from libtlt.testing import write_task_sample

    data = write_task_sample(BOX_DETECTOR, tmp_path / "data")
    text = str(get_architecture("faster_rcnn").sample_spec(data))
    start = text.index("training_config {") + len("training_config {")
    spec = tmp_path / "spec.txt"
    spec.write_text(text[:start] + "\n  enable_qat: true" + text[start:], encoding="utf-8")
    done = run("tlt-train", "faster_rcnn", "-e", spec, "-r", tmp_path / "results", "-k", KEY)
    assert "Quantization-aware training" in done.stderr
    model_path = next((tmp_path / "results" / "weights").glob("*.tlt"))
    model, metadata = load_tlt_model(model_path, KEY, architecture="faster_rcnn")
    ranges = metadata["qat"]["ranges"]
    assert {"crop_and_resize", "block_4a_relu_1"} <= set(ranges), ranges  # the RCNN body's inputs learned ranges
    assert all(value > 0 for value in ranges.values())
    assert not any("qat" in layer.name for layer in model.layers)  # the float model is saved, not the twin

    run("tlt-export", "faster_rcnn", "-m", model_path, "-e", spec, "-k", KEY, "-o", tmp_path / "int8.etlt",
        "--data_type", "int8", "--cal_cache_file", tmp_path / "cal.bin", "--engine_file", tmp_path / "int8.engine")
    assert load_model_file(tmp_path / "int8.etlt", KEY).metadata["calibration"] == "qat"
    cache = (tmp_path / "cal.bin").read_text().splitlines()
    assert len(cache) - 1 == len(ranges)  # one cal.bin entry per learned range
    run("tlt-evaluate", "faster_rcnn", "-e", spec, "-m", tmp_path / "int8.engine", "-k", KEY, "-r", tmp_path / "ev")
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert "mean_average_precision" in report
