"""Faults met by tlt-train, through the installed command as a user runs it (issue 12 §1b, §5, §6):

* a NaN / exploding loss stops at once: exit 2, one line saying what to lower, status.json FAILED;
* a truncated image reached through DetectNet_v2's TFRecords: exit 2, one line naming the file, FAILED;
* a failure before training started removes the results folder the run created, never one that existed;
* SIGTERM mid-run: exit 143 and an INTERRUPTED status line, never a run left at STARTED;
* a log file (stderr redirected) gets one plain line per epoch: no ``\\r`` progress updates and no
  TensorFlow C++ start-up banners.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from libtlt.samples import generate_classification_dataset, generate_detection_dataset, kitti_convert_spec

BIN = Path(sys.executable).parent
KEY = "fault-test-key"
CLASSES = ("circle", "square", "triangle")


def tlt(tool: str, *args: str | Path, timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          **kwargs)  # type: ignore[call-overload]


def status_lines(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "status.json").read_text().splitlines()]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def classification_spec(folder: Path, data: Path, *, learning_rate: float = 0.01, epochs: int = 1,
                        batch: int = 8) -> Path:
    text = f"""
model_config {{ arch: "resnet" n_layers: 10 use_batch_norm: true all_projections: true input_image_size: "3,32,32" }}
train_config {{
  train_dataset_path: "{data / 'train'}"
  optimizer: "sgd" batch_size_per_gpu: {batch} n_epochs: {epochs} checkpoint_interval: 1 random_seed: 3
  lr_config {{ scheduler: "step" learning_rate: {learning_rate} step_size: 50 gamma: 0.1 }}
}}
"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cls")
    generate_classification_dataset(root, classes=CLASSES, images_per_split={"train": 8}, size=(32, 32))
    return root


# ------------------------------------------------------------------------------------------ divergence


def test_exploding_loss_stops_training_with_one_line_and_failed_status(data: Path, tmp_path: Path) -> None:
    spec = classification_spec(tmp_path, data, learning_rate=1e6, epochs=3)
    results = tmp_path / "results"
    run = tlt("tlt-train", "classification", "-e", spec, "-r", results, "-k", KEY)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    [line] = error_lines(run.stderr)
    assert "training diverged at epoch 1" in line and "lower the learning rate" in line
    lines = status_lines(results)
    assert lines[-1]["status"] == "FAILED" and "training diverged" in lines[-1]["message"]
    assert not any(line["status"] in ("RUNNING", "SUCCESS") for line in lines)
    assert not list(results.rglob("*.tlt"))  # no checkpoint of a diverged epoch


# ------------------------------------------------------------------------------------------ failures


def test_failure_before_training_removes_only_a_results_folder_it_created(data: Path, tmp_path: Path) -> None:
    spec = classification_spec(tmp_path, data, batch=64)  # 24 images: fewer than one batch
    created = tmp_path / "new" / "results"
    run = tlt("tlt-train", "classification", "-e", spec, "-r", created, "-k", KEY)
    assert run.returncode == 2 and "fewer than one batch" in error_lines(run.stderr)[0]
    assert not created.exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    run = tlt("tlt-train", "classification", "-e", spec, "-r", existing, "-k", KEY)
    assert run.returncode == 2
    assert (existing / "notes.txt").read_text() == "mine"
    [last] = status_lines(existing)
    assert last["status"] == "FAILED" and "fewer than one batch" in last["message"]


def test_sigterm_mid_run_records_interrupted(data: Path, tmp_path: Path) -> None:
    spec = classification_spec(tmp_path, data, epochs=200)
    results = tmp_path / "results"
    proc = subprocess.Popen([str(BIN / "tlt-train"), "classification", "-e", str(spec), "-r", str(results),
                             "-k", KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = results / "status.json"
            if status.exists() and any(line["status"] == "RUNNING" for line in status_lines(results)):
                break
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    last = status_lines(results)[-1]
    assert last["status"] == "INTERRUPTED" and "SIGTERM" in last["message"]


# ------------------------------------------------------------------------------------------ logs


def test_log_file_gets_plain_epoch_lines_without_banners(data: Path, tmp_path: Path) -> None:
    spec = classification_spec(tmp_path, data, epochs=2)
    log = tmp_path / "stderr.log"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    with open(log, "w") as handle:
        done = subprocess.run([str(BIN / "tlt-train"), "classification", "-e", str(spec), "-r",
                               str(tmp_path / "results"), "-k", KEY], stdout=subprocess.PIPE, stderr=handle,
                              text=True, timeout=300, env=env)
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "\r" not in text
    for banner in ("I0000", "absl::InitializeLog", "cpu_feature_guard", "oneDNN custom operations"):
        assert banner not in text, banner
    epochs = [line for line in text.splitlines() if "tlt_train.status: Epoch " in line]
    assert [line.split("Epoch ")[1].split(" ")[0] for line in epochs] == ["1/2", "2/2"]
    assert text.splitlines()[0].startswith(tuple("0123456789"))  # the first line is one of ours


def test_verbose_keeps_tensorflow_banners(data: Path, tmp_path: Path) -> None:
    spec = classification_spec(tmp_path, data, batch=64)  # fails after TensorFlow is imported
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = tlt("tlt-train", "classification", "-e", spec, "-r", tmp_path / "a", "-k", KEY, env=env)
    loud = tlt("tlt-train", "classification", "-e", spec, "-r", tmp_path / "b", "-k", KEY, "--verbose", env=env)
    assert quiet.returncode == loud.returncode == 2
    assert "I0000" not in quiet.stderr and "absl" not in quiet.stderr
    assert quiet.stderr.splitlines()[0].startswith("Error: ")  # nothing before our own line
    assert "I0000" in loud.stderr and "Traceback" in loud.stderr


# ------------------------------------------------------------------------------------------ bad data


def detectnet_spec(root: Path) -> str:
    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture

    text = DetectNetV2Architecture().default_spec()
    replace = {
        "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": f"{root}/tfrecords/*",
        "/workspace/tlt-experiments/data/training": str(root),
        "num_layers: 18": "num_layers: 10",
        "num_epochs: 80": "num_epochs: 1",
        "batch_size_per_gpu: 8": "batch_size_per_gpu: 2",
        "checkpoint_interval: 10": "checkpoint_interval: 1",
        "validation_period_during_training: 10": "validation_period_during_training: 1",
        "first_validation_epoch: 10": "first_validation_epoch: 1",
    }
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "missing"])
def test_undecodable_image_in_detectnet_training_names_the_file(tmp_path: Path, damage: str) -> None:
    """``truncated``: cut in half (caught in the graph by the missing IEND chunk); ``corrupt``: complete
    but with zeroed data in the middle (TensorFlow's decoder fails naming nothing; tlt-train finds it);
    ``missing``: the images moved away after conversion (as a wrong image_directory_path does)."""
    root = tmp_path / "data"
    generate_detection_dataset(root, num_images=6, width=480, height=272, seed=5, objects_per_image=(1, 2))
    (tmp_path / "convert.txt").write_text(kitti_convert_spec(root, val_split=20, num_shards=1))
    (root / "tfrecords").mkdir()
    done = tlt("tlt-dataset-convert", "-d", tmp_path / "convert.txt", "-o", root / "tfrecords" / "kitti")
    assert done.returncode == 0, done.stderr[-2000:]
    # The images break after conversion (a copy cut short): training is what meets them.
    images = sorted((root / "images").glob("*.png"))
    for image in images:
        if damage == "missing":
            image.rename(image.with_suffix(".moved"))
            continue
        data = bytearray(image.read_bytes())
        middle = len(data) // 2
        if damage == "truncated":
            del data[middle:]
        else:
            data[middle:middle + 256] = bytes(256)
        image.write_bytes(bytes(data))
    spec = tmp_path / "spec.txt"
    spec.write_text(detectnet_spec(root))
    results = tmp_path / "results"
    run = tlt("tlt-train", "detectnet_v2", "-e", spec, "-r", results, "-k", KEY)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    [line] = error_lines(run.stderr)
    reason = {"truncated": "truncated", "corrupt": "not a decodable image", "missing": "does not exist"}[damage]
    assert reason in line and any(line.startswith(f"Error: {image}:") for image in images), line
    last = status_lines(results)[-1]
    assert last["status"] == "FAILED" and reason in last["message"]
