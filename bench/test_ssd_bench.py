"""SSD and DSSD: a learning run and the deployment round trips (issue 14 acceptance; not part of ``make test``).

Data: generated KITTI frames at 384×256 (``SSD_BENCH_FRAMES`` training frames, seed 11; 100 validation frames from
seed 1011, never trained on), converted with the installed ``tlt-dataset-convert``. Per architecture, through the
installed commands as a user would run them: ``tlt-train`` (the default spec with resnet10, the data's size,
``SSD_BENCH_EPOCHS`` epochs, Adam), ``tlt-evaluate`` on the ``.tlt``, then ``tlt-export`` (FP32 ``.etlt``; INT8
with calibration from the spec's training loader and an INT8 engine), ``tlt-converter`` (FP16 engine) and
``tlt-evaluate`` on each. Goals: mAP@0.5 ≥ 0.6 on the validation frames; engines within 0.01 (FP32, FP16) and 0.03
(INT8) of the ``.tlt``'s mAP. Every number is printed and kept in the benchmark's extra_info.

Run: .venv/bin/python -m pytest bench/test_ssd_bench.py --benchmark-only -q -s [-k ssd]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from libtlt.samples import generate_detection_dataset, kitti_convert_spec

BIN = Path(sys.executable).parent
KEY = "bench_key"
WIDTH, HEIGHT = 384, 256
FRAMES = int(os.environ.get("SSD_BENCH_FRAMES", "320"))
EPOCHS = int(os.environ.get("SSD_BENCH_EPOCHS", "12"))
MAP_GOAL = 0.6
TOLERANCES = {"etlt": 0.01, "fp16": 0.01, "int8": 0.03}


def run(*args: str | Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TLT_KEY": KEY})
    assert done.returncode == 0, f"{args[0]}: {done.stderr[-3000:]}"
    return done


def convert(root: Path, frames: int, seed: int) -> Path:
    generate_detection_dataset(root, num_images=frames, width=WIDTH, height=HEIGHT, seed=seed)
    (root / "convert.txt").write_text(kitti_convert_spec(root), encoding="utf-8")
    (root / "tfrecords").mkdir()
    run(BIN / "tlt-dataset-convert", "-d", root / "convert.txt", "-o", root / "tfrecords" / "kitti")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("ssd_data")
    return convert(base / "train", FRAMES, 11), convert(base / "val", 100, 1011)


def spec_text(arch: Any, train: Path, val: Path) -> str:
    from libtlt.spec.edits import edit_spec_text

    adam = "  optimizer {\n    adam {\n      epsilon: 1e-7\n      beta1: 0.9\n      beta2: 0.999\n    }\n  }\n"
    replacements = {
        "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": f"{train}/tfrecords/*",
        "/workspace/tlt-experiments/data/training": str(train),
        "  validation_fold: 0\n": f'  validation_data_source: {{\n    tfrecords_path: "{val}/tfrecords/*"\n'
                                  f'    image_directory_path: "{val}"\n  }}\n',
        "nlayers: 18": "nlayers: 10", "batch_size_per_gpu: 16": "batch_size_per_gpu: 8",
        "num_epochs: 80": f"num_epochs: {EPOCHS}", "max_learning_rate: 2e-2": "max_learning_rate: 1e-3",
        "  regularizer {": adam + "  regularizer {",
        "validation_period_during_training: 10": f"validation_period_during_training: {EPOCHS}",
        "output_image_width: 1248": f"output_image_width: {WIDTH}",
        "output_image_height: 384": f"output_image_height: {HEIGHT}", "crop_right: 1248": f"crop_right: {WIDTH}",
        "crop_bottom: 384": f"crop_bottom: {HEIGHT}", "zoom_min: 0.7": "zoom_min: 1.0", "zoom_max: 1.8": "zoom_max: 1.0",
    }
    return edit_spec_text(arch.default_spec(), replacements, f"the default {arch.name} spec")


def evaluate(arch: str, spec: Path, model: Path, out: Path) -> float:
    run(BIN / "tlt-evaluate", arch, "-e", spec, "-m", model, "-r", out)
    return float(json.loads((out / "evaluation.json").read_text())["mean_average_precision"])


@pytest.mark.parametrize("name", ["ssd", "dssd"])
def test_learns_and_deploys(benchmark: Any, name: str, data: tuple[Path, Path], tmp_path: Path) -> None:
    from libtlt.registry import get_architecture

    arch = get_architecture(name)
    train, val = data
    spec = tmp_path / "spec.txt"
    spec.write_text(spec_text(arch, train, val), encoding="utf-8")
    results = tmp_path / "results"
    numbers: dict[str, Any] = {"frames": FRAMES, "epochs": EPOCHS, "size": f"{WIDTH}x{HEIGHT}", "backbone": "resnet10"}

    def train_once() -> None:
        started = time.perf_counter()
        run(BIN / f"tlt-train", name, "-e", spec, "-r", results, "-n", "model")
        numbers["train_seconds"] = round(time.perf_counter() - started, 1)

    benchmark.pedantic(train_once, rounds=1, iterations=1)
    model = results / "weights" / "model.tlt"
    maps = {"tlt": evaluate(name, spec, model, tmp_path / "ev_tlt")}
    run(BIN / "tlt-export", name, "-m", model, "-e", spec, "-o", tmp_path / "fp32.etlt")
    maps["etlt"] = evaluate(name, spec, tmp_path / "fp32.etlt", tmp_path / "ev_etlt")
    run(BIN / "tlt-converter", tmp_path / "fp32.etlt", "-k", KEY, "-d", f"3,{HEIGHT},{WIDTH}", "-o", "NMS",
        "-t", "fp16", "-e", tmp_path / "fp16.engine", "--backend", "onnxruntime")
    maps["fp16"] = evaluate(name, spec, tmp_path / "fp16.engine", tmp_path / "ev_fp16")
    run(BIN / "tlt-export", name, "-m", model, "-e", spec, "-o", tmp_path / "int8.etlt", "--data_type", "int8",
        "--batches", "10", "--batch_size", "8", "--cal_cache_file", tmp_path / "cal.bin", "--engine_file",
        tmp_path / "int8.engine")
    maps["int8"] = evaluate(name, spec, tmp_path / "int8.engine", tmp_path / "ev_int8")
    numbers.update({f"mAP_{k}": round(v, 4) for k, v in maps.items()})
    benchmark.extra_info.update(numbers)
    print(f"\n{name}: {json.dumps(numbers)}")
    assert maps["tlt"] >= MAP_GOAL, numbers
    for kind, tolerance in TOLERANCES.items():
        assert abs(maps[kind] - maps["tlt"]) <= tolerance, (kind, numbers)
