"""SSD, DSSD, RetinaNet and YOLOv3: a learning run and the deployment round trips (issues 14, 15; not part of ``make test``).

Data: generated KITTI frames at 384×256 (``SSD_BENCH_FRAMES`` training frames, seed 11; 100 validation frames from
seed 1011, never trained on), converted with the installed ``tlt-dataset-convert``. Per architecture, through the
installed commands as a user would run them: ``tlt-train`` (the architecture's ``demo_spec``: resnet10, Adam,
``SSD_BENCH_EPOCHS`` epochs), ``tlt-evaluate`` on the ``.tlt``, then ``tlt-export`` (FP32 ``.etlt``; INT8
with calibration from the spec's training loader and an INT8 engine), ``tlt-converter`` (FP16 engine) and
``tlt-evaluate`` on each. Goals: mAP@0.5 ≥ 0.6 on the validation frames; engines within 0.01 (FP32, FP16) and 0.03
(INT8) of the ``.tlt``'s mAP. Every number is printed and kept in the benchmark's extra_info.

Speed, batch 8 at 384×256 (the engine test on the trained SSD of the first test, so that the NMS sees a trained
network's scores):
``tlt-train``'s pipeline (records → decode → augmentation → targets → fit) against a bare ``model.fit`` of the
same compiled model on the pipeline's first 40 batches held in memory (goal ≥ 0.9×; until 2026-12-05 one repeated batch, measured below); the ORT INT8 engine, NMS included, against the Keras
``.tlt`` with the NumPy decoding and NMS that tlt-infer runs on it (goal ≥ 3×); the share of the FP32 engine's
time spent in the decoder + NMS tail (goal ≤ 10 %).

Run: .venv/bin/python -m pytest bench/test_anchor_detectors_bench.py --benchmark-only -q -s [-k ssd]

Measured 2026-12-04 (2 cores, other work niced in the background; 320 frames, 12 epochs):
SSD: 658 s of training, mAP .tlt 0.6449, .etlt 0.6449, FP16 engine 0.6448, INT8 engine 0.6453 (met).
DSSD (2026-12-05, γ-0 start of the deconvolution modules, no prediction modules, 8 epochs): 769 s, mAP .tlt 0.6966,
.etlt 0.6966, FP16 0.6963, INT8 0.6959 (met; before the γ-0 start: 0.0124 in 1316 s).
YOLOv3 (2026-12-05, TAO's sample loss weights, tlt-kmeans anchors, arch_conv_blocks 0): 12 epochs, 579 s of training,
mAP .tlt 0.6703, .etlt 0.6703, FP16 0.6701, INT8 0.6662 (met). Two 10-epoch runs: 518 s, 0.6350 (FP16 0.6354, INT8
0.6352) and 468 s, 0.5924 (run-to-run spread: 12 epochs is the default). ORT INT8 engine 65.6 images/s against Keras
+ NumPy decoding 24.0: 2.74× (goal 3×, not met: the neck's convolutions feeding LeakyRelu ran in float); the tail ≈ 0 %
of FP32. After LeakyRelu became an integer consumer (2026-12-05, second run, 12 epochs, 560 s): mAP .tlt 0.6677,
.etlt 0.6677, FP16 0.6675, INT8 0.6565 (met); ORT INT8 84.4 images/s against Keras + NumPy decoding 24.1: 3.51× (met;
FP32 engine 30.8), tail ≈ 0 %.
Training pipeline (2026-12-05, one tf.data thread on a CPU, ``share_cpu_with_training``) 9.83 images/s against a bare
fit's 10.42: 0.943 (goal 0.9, met; with tf.data's default pool 7.76 against 9.69: 0.80). ORT INT8 engine 82.6 images/s
against Keras + NumPy decoding 15.0: 5.5× (goal 3×, met); FP32 engine 34.14 with the tail, 33.83 without: the
decoder + NMS tail is within the noise (goal ≤ 10 %, met).

2026-12-06: the Keras path now reduces its decoded outputs with the export's own NMS tail in onnxruntime
(``libtlt.runtime.onnx_nms.run_tail``, 430 → 10 ms for 8 RetinaNet images), so the "≥ 3×" goal is measured against a
much faster Keras side; and head convolutions read through Shape/Transpose/Reshape now run as integer kernels.
Short runs for speed only (160 frames, 6 epochs: mAP too low for the learning goal, which the 12-epoch runs above
meet), alone on 2 cores: SSD INT8 85.17 images/s against Keras 26.66: 3.19× (before the head change); RetinaNet
61.10 against 21.18: 2.88× before the head change, 71.13 against 20.47: **3.47×** after; YOLOv3 99.92 against
25.30: **3.95×**; FP32 tail share ≤ 0.5 % for all three (met). Round trips in those runs, mAP .tlt / .etlt / FP16 /
INT8: SSD 0.2280 / 0.2280 / 0.2280 / 0.2277, RetinaNet 0.4141 / 0.4141 / 0.4148 / 0.4182, YOLOv3 0.1635 / 0.1635 /
0.1634 / 0.1694 (within 0.01 / 0.01 / 0.03). SSD again after the head change (same short run): INT8 111.22 against
Keras 27.82 images/s: **4.00×**; mAP .tlt 0.2264, .etlt 0.2264, FP16 0.2259, INT8 0.2146 (−0.012 with 8-bit head
logits before the softmax, against −0.0003 with float heads; within 0.03).
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
WIDTH, HEIGHT = 384, 256
FRAMES = int(os.environ.get("SSD_BENCH_FRAMES", "320"))
#: DSSD's deconvolution modules make an epoch ~1.6× SSD's: fewer epochs keep both runs near ten minutes.
EPOCHS = {"ssd": int(os.environ.get("SSD_BENCH_EPOCHS", "12")), "dssd": int(os.environ.get("DSSD_BENCH_EPOCHS", "8")),
          "retinanet": int(os.environ.get("RETINANET_BENCH_EPOCHS", "12")),
          "yolo_v3": int(os.environ.get("YOLO_BENCH_EPOCHS", "12"))}
MAP_GOAL = 0.6
TOLERANCES = {"etlt": 0.01, "fp16": 0.01, "int8": 0.03}
BATCH = 8
#: What the learning test leaves for the speed tests: {architecture: (spec, .tlt, INT8 engine, FP32 .etlt)}.
TRAINED: dict[str, tuple[Path, Path, Path, Path]] = {}


def run(*args: str | Path, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TLT_KEY": KEY})
    assert done.returncode == 0, f"{args[0]}: {done.stderr[-3000:]}"
    return done


def convert(root: Path, frames: int, seed: int) -> Path:
    return generated_kitti_records(root, frames, seed, width=WIDTH, height=HEIGHT)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("ssd_data")
    return convert(base / "train", FRAMES, 11), convert(base / "val", 100, 1011)


def spec_text(arch: Any, train: Path, val: Path) -> str:
    return str(arch.demo_spec(train_records=f"{train}/tfrecords/*", train_images=train,
                              val_records=f"{val}/tfrecords/*", val_images=val, width=WIDTH, height=HEIGHT,
                              epochs=EPOCHS[arch.name]))


def evaluate(arch: str, spec: Path, model: Path, out: Path) -> float:
    run(BIN / "tlt-evaluate", arch, "-e", spec, "-m", model, "-r", out)
    return float(json.loads((out / "evaluation.json").read_text())["mean_average_precision"])


@pytest.mark.parametrize("name", ["ssd", "dssd", "retinanet", "yolo_v3"])
def test_learns_and_deploys(benchmark: Any, name: str, data: tuple[Path, Path], tmp_path: Path) -> None:
    from libtlt.registry import get_architecture

    arch = get_architecture(name)
    train, val = data
    spec = tmp_path / "spec.txt"
    spec.write_text(spec_text(arch, train, val), encoding="utf-8")
    results = tmp_path / "results"
    numbers: dict[str, Any] = {"frames": FRAMES, "epochs": EPOCHS[name], "size": f"{WIDTH}x{HEIGHT}",
                               "backbone": "resnet10"}

    def train_once() -> None:
        started = time.perf_counter()
        run(BIN / "tlt-train", name, "-e", spec, "-r", results, "-n", "model")
        numbers["train_seconds"] = round(time.perf_counter() - started, 1)

    benchmark.pedantic(train_once, rounds=1, iterations=1)
    model = results / "weights" / "model.tlt"
    maps = {"tlt": evaluate(name, spec, model, tmp_path / "ev_tlt")}
    run(BIN / "tlt-export", name, "-m", model, "-e", spec, "-o", tmp_path / "fp32.etlt")
    maps["etlt"] = evaluate(name, spec, tmp_path / "fp32.etlt", tmp_path / "ev_etlt")
    from libtlt.spec import load_spec

    outputs = ",".join(arch.deployed_output_names(load_spec(spec, arch.spec_message())))
    run(BIN / "tlt-converter", tmp_path / "fp32.etlt", "-k", KEY, "-d", f"3,{HEIGHT},{WIDTH}", "-o", outputs,
        "-t", "fp16", "-e", tmp_path / "fp16.engine", "--backend", "onnxruntime")
    maps["fp16"] = evaluate(name, spec, tmp_path / "fp16.engine", tmp_path / "ev_fp16")
    run(BIN / "tlt-export", name, "-m", model, "-e", spec, "-o", tmp_path / "int8.etlt", "--data_type", "int8",
        "--batches", "10", "--batch_size", "8", "--cal_cache_file", tmp_path / "cal.bin", "--engine_file",
        tmp_path / "int8.engine")
    maps["int8"] = evaluate(name, spec, tmp_path / "int8.engine", tmp_path / "ev_int8")
    TRAINED[name] = (spec, model, tmp_path / "int8.engine", tmp_path / "fp32.etlt")
    numbers.update({f"mAP_{k}": round(v, 4) for k, v in maps.items()})
    benchmark.extra_info.update(numbers)
    print(f"\n{name}: {json.dumps(numbers)}")
    assert maps["tlt"] >= MAP_GOAL, numbers
    for kind, tolerance in TOLERANCES.items():
        assert abs(maps[kind] - maps["tlt"]) <= tolerance, (kind, numbers)


def fastest(run: Any, rounds: int = 5) -> float:
    run()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def test_training_pipeline_vs_bare_fit(benchmark: Any, data: tuple[Path, Path], tmp_path: Path) -> None:
    """Throughput only, so an untrained SSD will do; each side is measured twice, alternating, and its best run
    counts (a fit's tf.data iterator keeps prefetching for a while after the fit, which would slow what follows)."""
    import keras

    from libtlt.registry import get_architecture
    from libtlt.spec import load_spec

    arch = get_architecture("ssd")
    spec_path = tmp_path / "spec.txt"
    spec_path.write_text(spec_text(arch, *data), encoding="utf-8")
    spec = load_spec(spec_path, arch.spec_message())
    training = arch.training_data(spec, batch_size=BATCH, seed=0)
    model = arch.build(spec)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=arch.loss(spec))
    numbers = pipeline_vs_in_memory(model, training.train, steps=40, batch_size=BATCH, warmup_steps=3)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(numbers)
    print(f"\nssd training, resnet10 {WIDTH}x{HEIGHT} batch {BATCH}: {json.dumps(numbers)}")


@pytest.mark.parametrize("name", ["ssd", "retinanet", "yolo_v3"])
def test_engine_speed_and_nms_share(benchmark: Any, name: str) -> None:
    import onnx
    import onnxruntime as ort

    from libtlt.io.modelfile import load_model_file
    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import load_tlt_model
    from libtlt.spec import load_spec

    if name not in TRAINED:
        pytest.skip(f"needs test_learns_and_deploys[{name}] first")
    spec_path, model_path, int8_engine, etlt = TRAINED[name]
    arch = get_architecture(name)
    spec = load_spec(spec_path, arch.spec_message())
    batch = next(arch.evaluation_batches(spec, batch_size=BATCH))[0]
    model, _ = load_tlt_model(model_path, KEY, architecture=name)
    detect, raw_names = arch.detector(spec), arch.export_outputs(spec)

    def keras_with_decoding() -> Any:  # what tlt-infer runs on a .tlt
        outputs = model.predict_on_batch(batch)
        return detect(dict(zip(raw_names, outputs if isinstance(outputs, list) else [outputs], strict=True)))

    def session(data: bytes) -> Any:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = len(os.sched_getaffinity(0))
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    int8 = session(int8_engine.read_bytes())
    full = load_model_file(etlt, KEY).files["model.onnx"]
    raw = onnx.load_from_string(full)
    kept = {o.name: o for o in raw.graph.output}
    del raw.graph.output[:]
    raw.graph.output.extend([onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in raw_names])
    assert set(kept) == set(arch.deployed_output_names(spec))
    fp32_full, fp32_raw = session(full), session(raw.SerializeToString())
    feed = {int8.get_inputs()[0].name: batch}
    seconds = {"keras": fastest(keras_with_decoding, 3), "ort_int8": fastest(lambda: int8.run(None, feed)),
               "ort_fp32": fastest(lambda: fp32_full.run(None, feed)),
               "ort_fp32_without_tail": fastest(lambda: fp32_raw.run(None, feed))}
    benchmark.pedantic(lambda: int8.run(None, feed), rounds=3, iterations=1)
    speed = {k: round(BATCH / v, 2) for k, v in seconds.items()}
    ratio = seconds["keras"] / seconds["ort_int8"]
    share = max(0.0, 1.0 - seconds["ort_fp32_without_tail"] / seconds["ort_fp32"])
    numbers = {"images_per_s": speed, "int8_to_keras": round(ratio, 2), "int8_goal_met": bool(ratio >= 3.0),
               "nms_tail_share": round(share, 3), "nms_goal_met": bool(share <= 0.10)}
    benchmark.extra_info.update(numbers)
    print(f"\n{name} deployment, resnet10 {WIDTH}x{HEIGHT} batch {BATCH}: {json.dumps(numbers)}")
