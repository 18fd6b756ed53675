"""CLI contract of tlt-train (000 ch. 8, issue 5): flags, outputs in RESULTS_DIR, one-line errors with
exit status 2, resume after kill -9, --gpus on CPU logical devices.

The installed console script runs in subprocesses (as users run it); error cases run in-process with
click's CliRunner. Data: generated 32x32 images of three classes; model: resnet10.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from libtlt.samples import generate_classification_dataset
from tlt_train.cli import main

BIN = Path(sys.executable).parent
KEY = "tlt_test_key"
CLASSES = ("circle", "square", "triangle")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cls_data")
    generate_classification_dataset(root, classes=CLASSES, images_per_split={"train": 16, "val": 4}, size=(32, 32))
    return root


def write_spec(folder: Path, data: Path | None, *, epochs: int = 2, interval: int = 1, model: str = "",
               train: str = "", size: str = "3,32,32") -> Path:
    paths = (f'train_dataset_path: "{data / "train"}"\n  val_dataset_path: "{data / "val"}"' if data else "")
    text = f"""
model_config {{
  arch: "resnet"
  n_layers: 10
  use_batch_norm: true
  all_projections: true
  input_image_size: "{size}"
  {model}
}}
train_config {{
  {paths}
  optimizer: "sgd"
  batch_size_per_gpu: 8
  n_epochs: {epochs}
  checkpoint_interval: {interval}
  random_seed: 7
  {train}
  reg_config {{ type: "L2" scope: "Conv2D,Dense" weight_decay: 0.00005 }}
  lr_config {{ scheduler: "cosine" learning_rate: 0.02 soft_start: 0.1 }}
}}
augment {{ mixup_alpha: 0.0 }}
"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.txt"
    path.write_text(text, encoding="utf-8")
    return path


def tlt_train(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tlt-train"), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def status_lines(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "status.json").read_text().splitlines()]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


# ------------------------------------------------------------------------------------------ contract


def test_help_lists_the_manuals_flags() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for flag in ("-e, --experiment_spec_file", "-r, --results_dir", "-k, --key", "--gpus", "--gpu_index",
                 "--use_amp", "--log_file", "-v, --verbose", "--list-archs"):
        assert flag in result.output


def test_list_archs_names_classification() -> None:
    result = tlt_train("--list-archs")
    assert result.returncode == 0 and "classification" in result.stdout.split()


def test_training_writes_every_output(data: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, data)
    results = tmp_path / "results"
    log = tmp_path / "train.log"
    run = tlt_train("classification", "-e", spec, "-r", results, "-k", KEY, "--log_file", log, "-n", "final_cls")
    assert run.returncode == 0, run.stderr
    weights = results / "weights"
    assert sorted(p.name for p in weights.iterdir()) == ["final_cls.tlt", "resnet_001.tlt", "resnet_002.tlt"]
    assert (weights / "final_cls.tlt").read_bytes() == (weights / "resnet_002.tlt").read_bytes()
    assert json.loads((results / "classmap.json").read_text()) == {"circle": 0, "square": 1, "triangle": 2}
    lines = status_lines(results)
    assert [line["status"] for line in lines] == ["STARTED", "RUNNING", "RUNNING", "SUCCESS"]
    for number, line in enumerate(lines[1:3], start=1):
        assert line["epoch"] == number and line["max_epoch"] == 2
        for name in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time_per_epoch", "images_per_sec"):
            assert isinstance(line[name], float), name
    with open(results / "training.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"] and "accuracy" in rows[0] and "lr" in rows[0]
    assert list((results / "events").glob("train/events.out.tfevents.*"))
    # The progress line per epoch with images/s, and the log file gets the log too.
    assert "Epoch 2/2" in run.stderr and "images/s" in run.stderr
    assert "Training finished; final model:" in log.read_text()
    assert not list(results.rglob(".*.tmp"))

    from libtlt.runtime.keras_model import load_tlt_model

    model, meta = load_tlt_model(results / "weights" / "resnet_002.tlt", KEY, architecture="classification")
    assert meta["classes"] == list(CLASSES) and meta["input_shape"] == [3, 32, 32]
    assert meta["input_layout"] == "NCHW" and meta["preprocess_mode"] == "caffe"
    assert meta["interpolation"] == "bilinear" and "resnet" in meta["spec"]
    assert model.get_layer("input_1") is not None and model.output.shape == (None, 3)


def test_yaml_spec_and_two_replicas(data: Path, tmp_path: Path) -> None:
    """The 003 layout, trained data-parallel on two logical CPU devices (--gpus 2), --use_amp without a GPU."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
data:
  train_dataset_path: "{data / 'train'}"
  preprocess_mode: 'torch'
augment:
  mixup_alpha: 0.0
train:
  checkpoint_interval: 1
  batch_size_per_gpu: 4
  num_epochs: 1
  optim_config:
    optimizer: 'adam'
  lr_config:
    scheduler: 'step'
    learning_rate: 0.001
    step_size: 50
    gamma: 0.1
model:
  arch: 'resnet'
  n_layers: 10
  use_batch_norm: True
  input_image_size: [3, 32, 32]
""", encoding="utf-8")
    results = tmp_path / "results"
    run = tlt_train("classification", "-e", spec, "-r", results, "-k", KEY, "--gpus", "2", "--use_amp")
    assert run.returncode == 0, run.stderr
    assert "Training on 2 replicas" in run.stderr and "batch 8 (4 per replica x 2)" in run.stderr
    # AMP needs a Volta+ GPU: on CPU it says so and trains in float32.
    assert "Automatic mixed precision needs a GPU" in run.stderr and "x 2), float32" in run.stderr
    assert (results / "weights" / "resnet_001.tlt").is_file()
    lines = status_lines(results)
    assert lines[1]["epoch"] == 1 and "val_loss" not in lines[1]


def test_two_local_workers_train_one_model(data: Path, tmp_path: Path) -> None:
    """Multi-node as the docs describe it: the same command on every worker, each with its TF_CONFIG.

    Both workers report the same epoch losses (one model, gradients all-reduced); only the chief writes.
    """
    import re
    import socket

    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("localhost", 0))
    cluster = {"worker": [f"localhost:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    spec = write_spec(tmp_path, data, epochs=2)
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [str(BIN / "tlt-train"), "classification", "-e", str(spec), "-r", str(tmp_path / f"results{index}"),
                   "-k", KEY]
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "Multi-worker training: 2 replicas in sync" in stderr
        assert "batch 16 (8 per replica x 2)" in stderr
    epoch_lines = [re.findall(r"Epoch \d/2 - (.*) - lr", stderr) for _, stderr in outputs]
    assert len(epoch_lines[0]) == 2 and epoch_lines[0] == epoch_lines[1]
    chief, other = tmp_path / "results0", tmp_path / "results1"
    assert sorted(p.name for p in (chief / "weights").iterdir()) == ["resnet_001.tlt", "resnet_002.tlt"]
    assert [line["epoch"] for line in status_lines(chief)[1:3]] == [1, 2]
    assert not other.exists() or not any(other.iterdir())


def test_resume_after_kill_continues_the_epochs_and_schedule(data: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, data, epochs=6)
    results = tmp_path / "results"
    command = [str(BIN / "tlt-train"), "classification", "-e", str(spec), "-r", str(results), "-k", KEY]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not (results / "weights" / "resnet_001.tlt").exists():
            assert first.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.02)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    done = max(int(p.stem.split("_")[1]) for p in (results / "weights").glob("resnet_*.tlt"))
    assert 1 <= done < 6, "the first run finished before it could be killed"
    before = status_lines(results)

    second = tlt_train("classification", "-e", spec, "-r", results, "-k", KEY)
    assert second.returncode == 0, second.stderr
    assert f"Resuming training at epoch {done + 1}" in second.stderr
    lines = status_lines(results)
    assert lines[:len(before)] == before  # appended to, never rewritten
    resumed = lines[len(before):]
    assert resumed[0]["status"] == "STARTED" and resumed[0]["epoch"] == done
    assert [line["epoch"] for line in resumed if line["status"] == "RUNNING"] == list(range(done + 1, 7))
    assert resumed[-1]["status"] == "SUCCESS"
    with open(results / "training.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == [str(e) for e in range(1, 7)]
    assert sorted(p.name for p in (results / "weights").glob("*.tlt")) == [f"resnet_{e:03d}.tlt" for e in range(1, 7)]
    # The learning rate is where the uninterrupted schedule would be: cosine over 6 x 6 steps.
    from tlt_train.schedules import cosine

    schedule = cosine(0.02, 0.1)
    by_epoch = {line["epoch"]: line["lr"] for line in lines if line["status"] == "RUNNING"}
    for epoch in range(done + 1, 7):
        assert by_epoch[epoch] == pytest.approx(schedule.lr(epoch * 6, 6, 36), rel=1e-4, abs=1e-9)
    # A completed run is not trained again.
    again = tlt_train("classification", "-e", spec, "-r", results, "-k", KEY)
    assert again.returncode == 0 and "Training already complete" in again.stderr


# ------------------------------------------------------------------------------------------- errors


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_spec_without_train_dataset_path(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, None)
    line = one_error(invoke("classification", "-e", spec, "-r", tmp_path / "r", "-k", KEY))
    assert line.startswith(f"Error: {spec}:") and "train_dataset_path is required" in line


def test_empty_class_folder(data: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("train", "val"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for image in (data / split / name).iterdir():
                (root / split / name / image.name).write_bytes(image.read_bytes())
    (root / "train" / "empty").mkdir()
    line = one_error(invoke("classification", "-e", write_spec(tmp_path, root), "-r", tmp_path / "r", "-k", KEY))
    assert "empty class folder" in line and str(root / "train" / "empty") in line


def test_unreadable_image_skipped_or_strict(data: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in CLASSES:
        (root / "train" / name).mkdir(parents=True)
        for image in (data / "train" / name).iterdir():
            (root / "train" / name / image.name).write_bytes(image.read_bytes())
    (root / "train" / "circle" / "broken.jpg").write_bytes(b"not a jpeg at all")
    spec = write_spec(tmp_path, None, epochs=1, train=f'train_dataset_path: "{root / "train"}"')
    line = one_error(invoke("classification", "-e", spec, "-r", tmp_path / "r", "-k", KEY, "--strict"))
    assert "broken.jpg" in line
    result = invoke("classification", "-e", spec, "-r", tmp_path / "r2", "-k", KEY)
    assert result.exit_code == 0, result.stderr
    assert "Skipped 1 unreadable image" in result.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ('arch: "resnet"\n  n_layers: 12', "resnet supports n_layers 10, 18, 34, 50, 101, got 12"),
    ('arch: "resnot"', "unknown value 'resnot'"),
])
def test_unknown_backbone_or_depth(tmp_path: Path, setting: str, message: str) -> None:
    spec = write_spec(tmp_path, None)
    text = spec.read_text().replace('arch: "resnet"\n  n_layers: 10', setting)
    spec.write_text(text)
    assert message in one_error(invoke("classification", "-e", spec, "-r", tmp_path / "r", "-k", KEY))


def test_input_size_below_16(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, None, size="3,8,32")
    line = one_error(invoke("classification", "-e", spec, "-r", tmp_path / "r", "-k", KEY))
    assert "input_image_size" in line and "must be >= 16" in line


def test_wrong_key_for_the_pretrained_model(data: Path, tmp_path: Path) -> None:
    first = write_spec(tmp_path / "a", data, epochs=1)
    assert invoke("classification", "-e", first, "-r", tmp_path / "a" / "r", "-k", KEY).exit_code == 0
    pretrained = tmp_path / "a" / "r" / "weights" / "resnet_001.tlt"
    spec = write_spec(tmp_path / "b", data, epochs=1, train=f'pretrained_model_path: "{pretrained}"')
    line = one_error(invoke("classification", "-e", spec, "-r", tmp_path / "b" / "r", "-k", "other_key"))
    assert line.startswith(f"Error: {pretrained}:") and "wrong key" in line
    # With the right key every layer with weights is loaded, and the 000 §8.5 table is printed.
    result = invoke("classification", "-e", spec, "-r", tmp_path / "b" / "r2", "-k", KEY)
    assert result.exit_code == 0, result.stderr
    assert "Pretrained weights loaded" in result.stderr
    assert "| conv1 " in result.stderr and "| Yes " in result.stderr and "| No " not in result.stderr


def test_unknown_and_pending_architectures(tmp_path: Path) -> None:
    assert "unknown architecture 'nosuch' (known: classification" in one_error(invoke("nosuch", "-e", "x.txt"))
    # MaskRCNN serves tlt-train (and not tlt-export: tests/test_pending_architectures.py): here it reaches the spec.
    assert one_error(invoke("mask_rcnn", "-e", tmp_path / "x.txt", "-r", tmp_path / "r", "-k", "k")).endswith(
        "x.txt: spec file not found")


def test_model_name_must_be_a_file_name(data: Path, tmp_path: Path) -> None:
    result = invoke("classification", "-e", write_spec(tmp_path, data), "-r", tmp_path / "r", "-k", KEY,
                    "-n", "../elsewhere")
    assert result.exit_code == 2
    assert "-n/--model_name must be a plain file name" in one_error(result)


def test_resume_model_weights_must_exist(data: Path, tmp_path: Path) -> None:
    """-m (000 §8.6) names a model file; a missing one is one line and exit 2 before anything is built."""
    result = invoke("classification", "-e", write_spec(tmp_path, data), "-r", tmp_path / "r", "-k", KEY,
                    "-m", tmp_path / "missing.tlt")
    assert result.exit_code == 2
    assert one_error(result).endswith("missing.tlt: -m: model file not found")
    assert not (tmp_path / "r").exists()


def test_missing_spec_file_and_options(tmp_path: Path) -> None:
    line = one_error(invoke("classification", "-e", tmp_path / "none.txt", "-r", tmp_path / "r", "-k", KEY))
    assert "spec file not found" in line
    result = invoke("classification", "-e", tmp_path / "none.txt")
    assert result.exit_code == 2 and "missing option(s) -r, -k" in result.stderr


def test_pruned_tlt_is_retrained_whole(data: Path, tmp_path: Path) -> None:
    """A .tlt that tlt-prune marked as pruned is loaded as a graph (its layers differ from a fresh build)."""
    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model
    from libtlt.spec import load_spec

    arch = get_architecture("classification")
    small = load_spec(write_spec(tmp_path / "small", data, model="use_bias: true"), arch.spec_message())
    pruned_model = arch.build(small, list(CLASSES))
    pruned = tmp_path / "pruned.tlt"
    save_tlt_model(pruned, pruned_model, KEY, {**arch.metadata(small, CLASSES), "pruned": {"from": "x.tlt"}},
                   kdf_iterations=1000)
    spec = write_spec(tmp_path / "retrain", data, epochs=1, train=f'pretrained_model_path: "{pruned}"')
    result = invoke("classification", "-e", spec, "-r", tmp_path / "r", "-k", KEY)
    assert result.exit_code == 0, result.stderr
    assert "Loaded the model graph and weights of" in result.stderr
    retrained, _ = load_tlt_model(tmp_path / "r" / "weights" / "resnet_001.tlt", KEY)
    assert retrained.get_layer("conv1").use_bias  # the pruned graph, not the spec's (use_bias unset)
