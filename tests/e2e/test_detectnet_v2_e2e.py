"""Acceptance of issue 6 (training half): generated KITTI frames → ``tlt-dataset-convert`` → ``tlt-train
detectnet_v2`` (resnet10) → validation-fold mAP with the architecture's ``postprocess`` and
``DetectionEvaluator`` clearly above the untrained model's.

CI-sized: 60 frames at 480×272 (48 train, 12 validation), a few epochs; both mAPs and the wall time are
printed. The spec is the default spec with a higher coverage foreground weight, no auto-weighting, equal
objective weights, a larger learning rate, no spatial or hue augmentation, a DBSCAN eps of 0.5 (the short
run's boxes are still imprecise) and an IoU threshold of 0.5 for every class, so that a from-scratch model
learns within minutes on a CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from libtlt.samples import generate_detection_dataset

BIN = Path(sys.executable).parent
KEY = "e2e_key"
FRAMES, EPOCHS, BATCH = 60, 14, 4
MARGIN = 0.1

CONVERT = """kitti_config {{
  root_directory_path: "{root}"
  image_dir_name: "images"
  label_dir_name: "labels"
  image_extension: ".png"
  partition_mode: "random"
  num_partitions: 2
  val_split: 20
  num_shards: 2
}}
image_directory_path: "{root}"
"""


def experiment_spec(root: Path) -> str:
    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture

    text = DetectNetV2Architecture().default_spec()
    replace = {
        "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": f"{root}/tfrecords/*",
        "/workspace/tlt-experiments/data/training": str(root),
        "num_layers: 18": "num_layers: 10",
        "num_epochs: 80": f"num_epochs: {EPOCHS}",
        "batch_size_per_gpu: 8": f"batch_size_per_gpu: {BATCH}",
        "checkpoint_interval: 10": f"checkpoint_interval: {EPOCHS}",
        "validation_period_during_training: 10": f"validation_period_during_training: {EPOCHS}",
        "first_validation_epoch: 10": f"first_validation_epoch: {EPOCHS}",
        "coverage_foreground_weight: 0.05": "coverage_foreground_weight: 0.75",
        "max_learning_rate: 5e-04": "max_learning_rate: 2e-03",
        "soft_start: 0.1": "soft_start: 0.05",
        "annealing: 0.7": "annealing: 0.8",
        "enable_autoweighting: true": "enable_autoweighting: false",
        "initial_weight: 10.0": "initial_weight: 1.0",
        "value: 0.7 }": "value: 0.5 }",
        "dbscan_eps: 0.15": "dbscan_eps: 0.5",
        "hue_rotation_max: 25.0": "hue_rotation_max: 0.0",
        "hflip_probability: 0.5": "hflip_probability: 0.0",
        "translate_max_x: 8.0": "translate_max_x: 0.0",
        "translate_max_y: 8.0": "translate_max_y: 0.0",
    }
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def run(*args: str | Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / str(args[0])), *map(str, args[1:])], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_resnet10_learns_the_sample(tmp_path: Path) -> None:
    import keras

    from libtlt.archs.detectnet_v2 import architecture as dn
    from libtlt.runtime.keras_model import load_tlt_model
    from libtlt.spec import load_spec
    from libtlt.spec.protos import detectnet_v2_pb2 as pb

    started = time.perf_counter()
    root = tmp_path / "data"
    generate_detection_dataset(root, num_images=FRAMES, seed=3)
    (tmp_path / "convert.txt").write_text(CONVERT.format(root=root), encoding="utf-8")
    (root / "tfrecords").mkdir()
    converted = run("tlt-dataset-convert", "-d", tmp_path / "convert.txt", "-o", root / "tfrecords" / "kitti",
                    timeout=300)
    assert converted.returncode == 0, converted.stderr[-3000:]

    spec_path = tmp_path / "spec.txt"
    spec_path.write_text(experiment_spec(root), encoding="utf-8")
    results = tmp_path / "results"
    trained = run("tlt-train", "detectnet_v2", "-e", spec_path, "-r", results, "-k", KEY, timeout=1200)
    assert trained.returncode == 0, trained.stderr[-3000:]
    seconds = time.perf_counter() - started

    status = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    assert status[-1]["status"] == "SUCCESS"
    last_epoch = [s for s in status if s.get("epoch") == EPOCHS][-1]
    assert "mAP" in last_epoch and last_epoch["mAP"] is not None
    assert (results / "labels.txt").read_text() == "car\npedestrian\ncyclist\n"

    spec = load_spec(spec_path, pb.Experiment)
    model, meta = load_tlt_model(results / "weights" / f"resnet10_detector_{EPOCHS:03d}.tlt", KEY,
                                 architecture="detectnet_v2")
    assert meta["classes"] == ["car", "pedestrian", "cyclist"] and meta["input_shape"] == [3, 272, 480]
    trained_map = dn.evaluate(model, spec).mean_average_precision
    keras.utils.set_random_seed(42)
    untrained_map = dn.evaluate(dn.build_model(spec), spec).mean_average_precision
    print(f"\nDetectNet_v2 resnet10 e2e: validation mAP trained {trained_map:.4f}, untrained {untrained_map:.4f}, "
          f"status.json mAP {last_epoch['mAP']:.4f}, {seconds:.0f} s (data + training)")
    assert trained_map == pytest.approx(last_epoch["mAP"], abs=1e-6)
    assert trained_map > untrained_map + MARGIN
