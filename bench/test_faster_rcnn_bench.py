"""FasterRCNN: a learning run, the deployment round trips and the speed goals of issue 16 (not part of ``make test``).

Data: generated KITTI frames at 480×272 (``FRCNN_BENCH_FRAMES`` training frames, seed 3; 60 validation frames from
seed 1003, never trained on), converted with the installed ``tlt-dataset-convert``. Through the installed commands as
a user would run them: ``tlt-train faster_rcnn`` (the architecture's ``demo_spec``: resnet10 from scratch, Adam 1e-3,
ROI batches of 32, ``FRCNN_BENCH_EPOCHS`` epochs), ``tlt-evaluate`` on the ``.tlt`` (mAP and RPN recall), then
``tlt-export`` (FP32 ``.etlt``: one graph of standard ONNX ops ending in ``NMS`` / ``NMS_1``; INT8 with calibration
from the spec's training loader and an INT8 engine), ``tlt-converter`` (FP16 engine) and ``tlt-evaluate`` on each.
Goals: mAP@0.5 ≥ 0.5 within about 15 minutes of training; engines within 0.01 (FP32, FP16) and 0.03 (INT8) of the
``.tlt``'s mAP.

Speed, batch 4 at 480×272: the ORT INT8 engine (proposals, RoiAlign and NMS included) against the Keras ``.tlt`` with
the NumPy decoding and NMS that tlt-infer runs on it (goal ≥ 2.5×); ``tlt-train``'s pipeline (records → decode →
augmentation → RPN targets → fit of the trainer) against a bare fit of the same trainer on the pipeline's first 12 batches held in memory (goal
≥ 0.9×).

Run: .venv/bin/python -m pytest bench/test_faster_rcnn_bench.py --benchmark-only -q -s

Measured 2026-12-05 (2 cores, nothing else running; 240 frames, 10 epochs of 60 steps, batch 4): 656 s of training
(10.9 min), mAP@0.5 .tlt 0.6359, .etlt 0.6359, FP16 engine 0.6406, INT8 engine 0.6367; RPN recall 0.893. Then the
ORT INT8 engine ran at 0.88x Keras: the two convolutions reading RoiAlign's crops stayed float, because onnxruntime
turns an int8 Q/DQ pair into uint8 (which its Conv fusion needs) only when the Q has one DQ after it.

Measured 2026-12-05, after activation pairs became uint8 (libtlt.runtime.onnxruntime_int8.unsigned_activations), same
data and settings, one run: 677.8 s of training (11.3 min), mAP@0.5 .tlt 0.6635, .etlt 0.6635, FP16 0.6642, INT8
0.6644 (goal 0.5 and round trips met); RPN recall 0.903 (car 0.99, cyclist 0.99, person 0.72). ORT INT8 engine 16.18
images/s against Keras + NumPy decoding 5.68: **2.85x** (goal 2.5x, met). Training pipeline against the same
trainer on its first 12 batches held in memory (seeded): 2.34 against 2.35 images/s, **0.997** (goal 0.9, met).
A step's cost depends on the network's state and the images: one batch repeated measured 2.35 or 4.21 images/s in
different runs (the earlier "0.59" compared a bare fit in its fast state with a pipeline in its slow one), hence the
seeded model and the same batches on both sides.
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

from libtlt.testing import generated_kitti_records, pipeline_vs_in_memory

BIN = Path(sys.executable).parent
KEY = "bench_key"
NAME = "faster_rcnn"
WIDTH, HEIGHT = 480, 272
FRAMES = int(os.environ.get("FRCNN_BENCH_FRAMES", "240"))
EPOCHS = int(os.environ.get("FRCNN_BENCH_EPOCHS", "10"))
MAP_GOAL = 0.5
TOLERANCES = {"etlt": 0.01, "fp16": 0.01, "int8": 0.03}
BATCH = 4
#: What the learning test leaves for the speed test: (spec, .tlt, INT8 engine).
TRAINED: list[tuple[Path, Path, Path]] = []


def run(*args: str | Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TLT_KEY": KEY})
    assert done.returncode == 0, f"{args[0]}: {done.stderr[-3000:]}"
    return done


def convert(root: Path, frames: int, seed: int) -> Path:
    return generated_kitti_records(root, frames, seed, width=WIDTH, height=HEIGHT)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("frcnn_data")
    return convert(base / "train", FRAMES, 3), convert(base / "val", 60, 1003)


def spec_text(train: Path, val: Path, epochs: int = EPOCHS) -> str:
    from libtlt.registry import get_architecture

    return str(get_architecture(NAME).demo_spec(train_records=f"{train}/tfrecords/*", train_images=train,
                                                val_records=f"{val}/tfrecords/*", val_images=val, width=WIDTH,
                                                height=HEIGHT, epochs=epochs))


def evaluate(spec: Path, model: Path, out: Path) -> dict[str, Any]:
    run(BIN / "tlt-evaluate", NAME, "-e", spec, "-m", model, "-r", out)
    return dict(json.loads((out / "evaluation.json").read_text()))


def test_training_pipeline_vs_bare_fit(benchmark: Any, data: tuple[Path, Path], tmp_path: Path) -> None:
    """Throughput only, so an untrained network will do; each side is measured twice, alternating, and its best run
    counts. Both fit the architecture's trainer (``training_view``, seeded), the bare one on the pipeline's first
    ``steps`` batches held in memory: a step's cost depends on the images (the proposals' NMS and the ROI
    sampling), and one batch repeated measured anywhere from 2.3 to 4.2 images/s depending on which batch and
    which random start it met."""
    import keras

    from libtlt.registry import get_architecture
    from libtlt.spec import load_spec

    arch = get_architecture(NAME)
    spec_path = tmp_path / "spec.txt"
    spec_path.write_text(spec_text(*data), encoding="utf-8")
    spec = load_spec(spec_path, arch.spec_message())
    keras.utils.set_random_seed(0)
    training = arch.training_data(spec, batch_size=BATCH, seed=0)
    trainer, _ = arch.training_view(spec, arch.build(spec))
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    numbers = pipeline_vs_in_memory(trainer, training.train, steps=12, batch_size=BATCH)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(numbers)
    print(f"\n{NAME} training, resnet10 {WIDTH}x{HEIGHT} batch {BATCH}: {json.dumps(numbers)}")


def test_learns_and_deploys(benchmark: Any, data: tuple[Path, Path], tmp_path: Path) -> None:
    train, val = data
    spec = tmp_path / "spec.txt"
    spec.write_text(spec_text(train, val), encoding="utf-8")
    results = tmp_path / "results"
    numbers: dict[str, Any] = {"frames": FRAMES, "epochs": EPOCHS, "size": f"{WIDTH}x{HEIGHT}", "backbone": "resnet10"}

    def train_once() -> None:
        started = time.perf_counter()
        run(BIN / "tlt-train", NAME, "-e", spec, "-r", results, "-n", "model")
        numbers["train_seconds"] = round(time.perf_counter() - started, 1)

    benchmark.pedantic(train_once, rounds=1, iterations=1)
    model = results / "weights" / "model.tlt"
    report = evaluate(spec, model, tmp_path / "ev_tlt")
    maps = {"tlt": float(report["mean_average_precision"])}
    numbers["rpn_recall"] = report["rpn_recall"]
    run(BIN / "tlt-export", NAME, "-m", model, "-e", spec, "-o", tmp_path / "fp32.etlt")
    maps["etlt"] = float(evaluate(spec, tmp_path / "fp32.etlt", tmp_path / "ev_etlt")["mean_average_precision"])
    run(BIN / "tlt-converter", tmp_path / "fp32.etlt", "-k", KEY, "-d", f"3,{HEIGHT},{WIDTH}", "-o", "NMS,NMS_1",
        "-t", "fp16", "-e", tmp_path / "fp16.engine", "--backend", "onnxruntime")
    maps["fp16"] = float(evaluate(spec, tmp_path / "fp16.engine", tmp_path / "ev_fp16")["mean_average_precision"])
    run(BIN / "tlt-export", NAME, "-m", model, "-e", spec, "-o", tmp_path / "int8.etlt", "--data_type", "int8",
        "--batches", "10", "--batch_size", str(BATCH), "--cal_cache_file", tmp_path / "cal.bin", "--engine_file",
        tmp_path / "int8.engine")
    maps["int8"] = float(evaluate(spec, tmp_path / "int8.engine", tmp_path / "ev_int8")["mean_average_precision"])
    TRAINED.append((spec, model, tmp_path / "int8.engine"))
    numbers.update({f"mAP_{k}": round(v, 4) for k, v in maps.items()})
    benchmark.extra_info.update(numbers)
    print(f"\n{NAME}: {json.dumps(numbers)}")
    assert maps["tlt"] >= MAP_GOAL, numbers
    for kind, tolerance in TOLERANCES.items():
        assert abs(maps[kind] - maps["tlt"]) <= tolerance, (kind, numbers)


DYNAMIC_EPOCHS = int(os.environ.get("FRCNN_BENCH_DYNAMIC_EPOCHS", "6"))
#: The held-out frames of the dynamic-size run: another size and aspect ratio than the training frames'.
DYNAMIC_VAL_SIZE = (400, 300)
DYNAMIC_MAP_FLOOR = 0.3


def test_learns_at_a_dynamic_input_size(benchmark: Any, data: tuple[Path, Path], tmp_path: Path) -> None:
    """``size_min { min: 272 }`` (batch 1, as TAO requires): the same training frames (480×272 stay 480×272), held-out
    frames of another shape (400×300 → 363×272) that a fixed-size model would have to squash; mAP@0.5 on them. The
    issue's 0.5 is the fixed-size run's goal; this one shows that the dynamic-size network learns and carries over to
    another shape (clearly above an untrained model's ~0).

    Measured 2026-12-06 (2 cores shared with two other benches): 6 epochs of 240 steps, 984 s of training, mAP@0.5 on
    the 400×300 frames 0.456, RPN recall 0.74 (car 0.94, cyclist 0.86, person 0.42)."""
    train, _ = data
    val = generated_kitti_records(tmp_path / "val_other_size", 60, 1004, width=DYNAMIC_VAL_SIZE[0],
                                  height=DYNAMIC_VAL_SIZE[1])
    text = spec_text(train, val, DYNAMIC_EPOCHS)
    for old, new in ((f"size_height_width {{\n      height: {HEIGHT}\n      width: {WIDTH}\n    }}",
                      f"size_min {{\n      min: {HEIGHT}\n    }}"), (f"batch_size_per_gpu: {BATCH}", "batch_size_per_gpu: 1")):
        assert old in text, old
        text = text.replace(old, new)
    spec = tmp_path / "spec.txt"
    spec.write_text(text, encoding="utf-8")
    numbers: dict[str, Any] = {"frames": FRAMES, "epochs": DYNAMIC_EPOCHS, "size_min": HEIGHT, "batch": 1,
                               "validation_size": "x".join(map(str, DYNAMIC_VAL_SIZE))}

    def train_once() -> None:
        started = time.perf_counter()
        run(BIN / "tlt-train", NAME, "-e", spec, "-r", tmp_path / "results", "-n", "model")
        numbers["train_seconds"] = round(time.perf_counter() - started, 1)

    benchmark.pedantic(train_once, rounds=1, iterations=1)
    report = evaluate(spec, tmp_path / "results" / "weights" / "model.tlt", tmp_path / "ev")
    numbers.update(mAP=round(float(report["mean_average_precision"]), 4), rpn_recall=report["rpn_recall"])
    benchmark.extra_info.update(numbers)
    print(f"\n{NAME} size_min: {json.dumps(numbers)}")
    assert numbers["mAP"] >= DYNAMIC_MAP_FLOOR, numbers


def fastest(call: Any, rounds: int = 5) -> float:
    call()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def test_engine_speed(benchmark: Any) -> None:
    import onnxruntime as ort

    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import load_tlt_model
    from libtlt.spec import load_spec

    if not TRAINED:
        pytest.skip("needs test_learns_and_deploys first (a trained network's proposals)")
    spec_path, model_path, int8_engine = TRAINED[0]
    arch = get_architecture(NAME)
    spec = load_spec(spec_path, arch.spec_message())
    batch = next(arch.evaluation_batches(spec, batch_size=BATCH))[0]
    model, _ = load_tlt_model(model_path, KEY, architecture=NAME)
    names = arch.export_outputs(spec)

    def keras_with_decoding() -> Any:  # what tlt-infer runs on a .tlt
        return arch.decode(spec, dict(zip(names, model.predict_on_batch(batch), strict=True)),
                           [(WIDTH, HEIGHT)] * len(batch), arch.class_names(spec))

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    int8 = ort.InferenceSession(int8_engine.read_bytes(), options, providers=["CPUExecutionProvider"])
    feed = {int8.get_inputs()[0].name: batch}
    seconds = {"keras": fastest(keras_with_decoding, 3), "ort_int8": fastest(lambda: int8.run(None, feed))}
    benchmark.pedantic(lambda: int8.run(None, feed), rounds=3, iterations=1)
    ratio = seconds["keras"] / seconds["ort_int8"]
    numbers = {"images_per_s": {k: round(BATCH / v, 2) for k, v in seconds.items()},
               "int8_to_keras": round(ratio, 2), "goal": 2.5, "goal_met": bool(ratio >= 2.5)}
    benchmark.extra_info.update(numbers)
    print(f"\n{NAME} deployment, resnet10 {WIDTH}x{HEIGHT} batch {BATCH}: {json.dumps(numbers)}")
