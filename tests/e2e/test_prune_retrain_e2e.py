"""Acceptance of issue 7 (prune + retrain, CI-sized): generated KITTI frames → ``tlt-dataset-convert`` →
``tlt-train detectnet_v2`` (resnet10, L1 regularizer) → ``tlt-prune`` → ``tlt-train detectnet_v2`` again with
``NO_REG``, ``load_graph: true`` and the pruned file as ``pretrained_model_file`` (000 §7.2.1, §7.2.5, ch. 11).

Checks: the pruned model has fewer parameters than the unpruned one (the ratio is printed), the retrained model
loads, keeps the pruned layer widths and evaluates, and its validation-fold mAP is at most ``MAP_TOLERANCE`` below
the unpruned model's (absolute; being retrained for a few more epochs, it usually ends above it). The run is tiny
(60 frames, a few epochs): the mAPs, the parameter counts and the wall time are printed. Measured on a loaded
2-core machine: 1,243,599 -> 883,759 parameters (-pth 0.6, ratio 0.71), mAP 0.112 unpruned, 0.079 pruned,
0.164 retrained, 266 s (a second run: ratio 0.755, mAP 0.075 / 0.066 / 0.208, 183 s). bench/prune_acceptance.py
is the longer run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from libtlt.samples import generate_detection_dataset, kitti_convert_spec

BIN = Path(sys.executable).parent
KEY = "prune_e2e_key"
FRAMES, EPOCHS, RETRAIN_EPOCHS, BATCH = 60, 8, 6, 4
L1_WEIGHT = 1e-5
THRESHOLD = 0.6
MAP_TOLERANCE = 0.1


def training_spec(root: Path, *, epochs: int, regularizer: str, pretrained: Path | None = None) -> str:
    """The default spec made CPU-friendly (as in test_detectnet_v2_e2e), resnet10, the given regularizer."""
    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture

    text = DetectNetV2Architecture().default_spec()
    edits = {
        "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": f"{root}/tfrecords/*",
        "/workspace/tlt-experiments/data/training": str(root),
        "num_layers: 18": "num_layers: 10",
        "num_epochs: 80": f"num_epochs: {epochs}",
        "batch_size_per_gpu: 8": f"batch_size_per_gpu: {BATCH}",
        "checkpoint_interval: 10": f"checkpoint_interval: {epochs}",
        "validation_period_during_training: 10": f"validation_period_during_training: {epochs}",
        "first_validation_epoch: 10": f"first_validation_epoch: {epochs}",
        "coverage_foreground_weight: 0.05": "coverage_foreground_weight: 0.75",
        "max_learning_rate: 5e-04": "max_learning_rate: 2e-03",
        "soft_start: 0.1": "soft_start: 0.05",
        "annealing: 0.7": "annealing: 0.8",
        "enable_autoweighting: true": "enable_autoweighting: false",
        "initial_weight: 10.0": "initial_weight: 1.0",
        "value: 0.7 }": "value: 0.5 }",
        "hue_rotation_max: 25.0": "hue_rotation_max: 0.0",
        "hflip_probability: 0.5": "hflip_probability: 0.0",
        "translate_max_x: 8.0": "translate_max_x: 0.0",
        "translate_max_y: 8.0": "translate_max_y: 0.0",
        "type: L1\n    weight: 3e-09": (f"type: L1\n    weight: {L1_WEIGHT}" if regularizer == "L1"
                                       else "type: NO_REG\n    weight: 0.0"),
    }
    if pretrained is not None:
        edits['arch: "resnet"'] = f'arch: "resnet"\n  pretrained_model_file: "{pretrained}"\n  load_graph: true'
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def run(*args: object, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / str(args[0])), *map(str, args[1:])], capture_output=True, text=True,
                          timeout=timeout)


def final_map(results: Path, epochs: int) -> float:
    status = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    assert status[-1]["status"] == "SUCCESS"
    return float([s for s in status if s.get("epoch") == epochs][-1]["mAP"])


def conv_filters(model: object) -> dict[str, int]:
    return {layer.name: int(layer.filters) for layer in model.layers if hasattr(layer, "filters")}  # type: ignore[attr-defined]


@pytest.mark.slow
def test_prune_then_retrain_keeps_accuracy(tmp_path: Path) -> None:
    from libtlt.archs.detectnet_v2 import architecture as dn
    from libtlt.runtime.keras_model import load_tlt_model
    from libtlt.spec import load_spec
    from libtlt.spec.protos import detectnet_v2_pb2 as pb

    started = time.perf_counter()
    root = tmp_path / "data"
    generate_detection_dataset(root, num_images=FRAMES, seed=3)
    (tmp_path / "convert.txt").write_text(kitti_convert_spec(root), encoding="utf-8")
    (root / "tfrecords").mkdir()
    converted = run("tlt-dataset-convert", "-d", tmp_path / "convert.txt", "-o", root / "tfrecords" / "kitti",
                    timeout=300)
    assert converted.returncode == 0, converted.stderr[-3000:]

    # 1. unpruned model, L1-regularized (000 §7.2.5: L1 before pruning)
    spec_path = tmp_path / "train.txt"
    spec_path.write_text(training_spec(root, epochs=EPOCHS, regularizer="L1"), encoding="utf-8")
    unpruned_dir = tmp_path / "unpruned"
    trained = run("tlt-train", "detectnet_v2", "-e", spec_path, "-r", unpruned_dir, "-k", KEY, timeout=1200)
    assert trained.returncode == 0, trained.stderr[-3000:]
    unpruned_file = unpruned_dir / "weights" / f"resnet10_detector_{EPOCHS:03d}.tlt"

    # 2. prune
    pruned_file = tmp_path / "pruned.tlt"
    pruned = run("tlt-prune", "-m", unpruned_file, "-o", pruned_file, "-pth", THRESHOLD, "-k", KEY, timeout=600)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    report = json.loads((tmp_path / "pruned.json").read_text())
    assert report["params_after"] < report["params_before"]
    assert report["pruning_ratio"] == pytest.approx(report["params_after"] / report["params_before"])
    assert "Pruning ratio" in pruned.stdout

    # 3. retrain the pruned graph without regularization (000 §7.2.5: NO_REG when retraining)
    retrain_path = tmp_path / "retrain.txt"
    retrain_path.write_text(training_spec(root, epochs=RETRAIN_EPOCHS, regularizer="NO_REG",
                                          pretrained=pruned_file), encoding="utf-8")
    retrained_dir = tmp_path / "retrained"
    retrained = run("tlt-train", "detectnet_v2", "-e", retrain_path, "-r", retrained_dir, "-k", KEY, timeout=1200)
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    retrained_file = retrained_dir / "weights" / f"resnet10_detector_{RETRAIN_EPOCHS:03d}.tlt"
    seconds = time.perf_counter() - started

    # 4. the retrained model is the pruned graph, loads and evaluates; mAP close to the unpruned model's
    spec = load_spec(spec_path, pb.Experiment)
    unpruned_model, _ = load_tlt_model(unpruned_file, KEY, architecture="detectnet_v2")
    pruned_model, pruned_meta = load_tlt_model(pruned_file, KEY, architecture="detectnet_v2")
    retrained_model, meta = load_tlt_model(retrained_file, KEY, architecture="detectnet_v2")
    assert pruned_meta["pruned"]["params_after"] == report["params_after"]
    assert retrained_model.count_params() == report["params_after"] == pruned_model.count_params()
    assert unpruned_model.count_params() == report["params_before"]
    assert conv_filters(retrained_model) == conv_filters(pruned_model) != conv_filters(unpruned_model)
    assert meta["classes"] == ["car", "pedestrian", "cyclist"] and meta["input_shape"] == [3, 272, 480]

    unpruned_map = dn.evaluate(unpruned_model, spec).mean_average_precision
    pruned_map = dn.evaluate(pruned_model, spec).mean_average_precision
    retrained_map = dn.evaluate(retrained_model, spec).mean_average_precision
    print(f"\nprune + retrain e2e (resnet10, -pth {THRESHOLD}): parameters {report['params_before']:,} -> "
          f"{report['params_after']:,} (ratio {report['pruning_ratio']:.4f}), size "
          f"{report['size_before_bytes'] / 2**20:.2f} -> {report['size_after_bytes'] / 2**20:.2f} MiB; validation mAP "
          f"unpruned {unpruned_map:.4f}, pruned before retraining {pruned_map:.4f}, retrained {retrained_map:.4f}; "
          f"{seconds:.0f} s (data + train + prune + retrain)")
    assert unpruned_map == pytest.approx(final_map(unpruned_dir, EPOCHS), abs=1e-6)
    assert retrained_map == pytest.approx(final_map(retrained_dir, RETRAIN_EPOCHS), abs=1e-6)
    assert retrained_map >= unpruned_map - MAP_TOLERANCE
