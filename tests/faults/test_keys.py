"""The model key stays out of sight (issue 12 §6), through the installed commands.

The key is passed the two ways that keep it out of ``ps`` (``--key_file``, ``$TLT_KEY``) and written
into a 003 YAML spec's ``key:`` field; after training, evaluating, exporting (with ``--gen_ds_config``
and an engine) and converting, no file written and no line printed holds it, and the decrypted ``.tlt``
and ``.etlt`` metadata hold neither the key nor (in the ``.etlt``) the training spec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from libtlt.samples import generate_classification_dataset

BIN = Path(sys.executable).parent
KEY = "Zq7-distinctive-key-4711"
CLASSES = ("circle", "square", "triangle")
KEY_TOOLS = ("tlt-train", "tlt-export", "tlt-prune", "tlt-converter")


def tlt(tool: str, *args: str | Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TLT_KEY"}
    environ.update(env or {})
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=environ)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("keys")
    secret = tmp_path_factory.mktemp("secret")
    data = base / "data"
    generate_classification_dataset(data, classes=CLASSES, images_per_split={"train": 8, "val": 3}, size=(32, 32))
    key_file = secret / "model.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    spec = secret / "spec.yaml"  # holds the key (003 `key:`), so it is kept outside the searched folder
    spec.write_text(f"""results_dir: '{base / "results"}'
key: '{KEY}'
data:
  train_dataset_path: '{data / "train"}'
  val_dataset_path: '{data / "val"}'
  preprocess_mode: 'caffe'
augment:
  enable_random_crop: False
  enable_center_crop: False
  enable_color_augmentation: False
  mixup_alpha: 0.0
train:
  checkpoint_interval: 1
  batch_size_per_gpu: 8
  num_epochs: 1
  optim_config:
    optimizer: 'sgd'
  lr_config:
    scheduler: 'step'
    learning_rate: 0.01
    step_size: 50
    gamma: 0.1
model:
  arch: 'resnet'
  n_layers: 10
  use_batch_norm: True
  input_image_size: [3, 32, 32]
evaluate:
  dataset_path: '{data / "val"}'
  top_k: 1
""", encoding="utf-8")
    results = base / "results"
    model = results / "weights" / "resnet_001.tlt"
    runs = []
    runs.append(tlt("tlt-train", "classification", "-e", spec, "-r", results, "--key_file", key_file))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    env = {"TLT_KEY": KEY}
    runs.append(tlt("tlt-evaluate", "classification", "-e", spec, "-m", model, "-r", base / "eval", "--batch_size",
                    "1", env=env))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    etlt = base / "deploy" / "model.etlt"
    etlt.parent.mkdir()
    runs.append(tlt("tlt-export", "classification", "-m", model, "-o", etlt, "--gen_ds_config",
                    "--engine_file", base / "deploy" / "export.engine", env=env))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    runs.append(tlt("tlt-converter", etlt, "--key_file", key_file, "-d", "3,32,32", "-o", "predictions/Softmax",
                    "-e", base / "deploy" / "converted.engine", "--backend", "onnxruntime"))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    runs.append(tlt("tlt-prune", "-m", model, "-o", base / "pruned" / "pruned.tlt", "-pth", "0.1",
                    "--key_file", key_file))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    shutil.copytree(data / "val" / CLASSES[0], base / "infer")
    runs.append(tlt("tlt-infer", "classification", "-m", etlt, "-d", base / "infer", "-cm",
                    results / "classmap.json", env=env))
    assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
    # A wrong key: an error that does not quote it.
    runs.append(tlt("tlt-export", "classification", "-m", model, "-o", base / "x.etlt", "-k", KEY[::-1]))
    assert runs[-1].returncode == 2
    return {"base": base, "runs": runs, "model": model, "etlt": etlt, "key_file": key_file}


def test_no_file_written_holds_the_key(pipeline: dict[str, object]) -> None:
    base = pipeline["base"]
    assert isinstance(base, Path)
    needle = KEY.encode()
    files = [p for p in base.rglob("*") if p.is_file()]
    assert len(files) > 8
    holding = [str(p) for p in files if needle in p.read_bytes()]
    assert holding == []
    names = {p.name for p in files}
    assert {"status.json", "nvinfer_config.txt", "labels.txt", "classmap.json", "model.etlt", "pruned.tlt",
            "result.csv", "converted.engine.json"} <= names


def test_no_line_printed_holds_the_key(pipeline: dict[str, object]) -> None:
    runs = pipeline["runs"]
    assert isinstance(runs, list)
    for run in runs:
        assert KEY not in run.stdout + run.stderr, run.args
        assert KEY[::-1] not in run.stdout + run.stderr, run.args  # the wrong key is not quoted either
        assert "\r" not in run.stderr, run.args  # stderr is a pipe: plain progress lines, no bar updates
        assert "I0000" not in run.stderr and "absl::InitializeLog" not in run.stderr, run.args  # no TF banners
    evaluate = runs[1]
    assert "Evaluating: " in evaluate.stderr and "%)" in evaluate.stderr  # one line per 10 % instead


def test_model_metadata_holds_no_key_and_the_etlt_no_spec(pipeline: dict[str, object]) -> None:
    from libtlt.io.modelfile import load_model_file

    tlt_meta = load_model_file(pipeline["model"], KEY).metadata
    assert KEY not in repr(tlt_meta)
    assert "resnet" in tlt_meta["spec"] and "key:" in tlt_meta["spec"]  # the field stays, its value does not
    base = pipeline["base"]
    assert isinstance(base, Path)
    assert KEY not in repr(load_model_file(base / "pruned" / "pruned.tlt", KEY).metadata)
    etlt_meta = load_model_file(pipeline["etlt"], KEY).metadata
    assert KEY not in repr(etlt_meta)
    assert "spec" not in etlt_meta and str(pipeline["base"]) not in repr(etlt_meta)  # no dataset paths
    assert "training_state" not in etlt_meta  # no epoch counter or optimizer settings in a deployment file
    assert etlt_meta["classes"] == list(CLASSES) and etlt_meta["input_shape"] == [3, 32, 32]
    assert etlt_meta["center_crop"] is False


def test_help_says_how_to_keep_the_key_off_the_command_line() -> None:
    for tool in KEY_TOOLS:
        text = tlt(tool, "--help").stdout
        assert "--key_file" in text and "TLT_KEY" in text, tool
    for sub in ("classification", "detectnet_v2"):
        for tool in ("tlt-evaluate", "tlt-infer"):
            text = tlt(tool, sub, "--help").stdout
            assert "--key_file" in text and "TLT_KEY" in text, (tool, sub)


def test_key_sources_are_checked(pipeline: dict[str, object], tmp_path: Path) -> None:
    model, key_file = pipeline["model"], pipeline["key_file"]
    both = tlt("tlt-export", "classification", "-m", model, "-k", KEY, "--key_file", key_file, "-o", tmp_path / "a")
    assert both.returncode == 2 and "not both" in both.stderr
    missing = tlt("tlt-export", "classification", "-m", model, "-o", tmp_path / "b")
    assert missing.returncode == 2 and "TLT_KEY" in missing.stderr
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    run = tlt("tlt-export", "classification", "-m", model, "--key_file", empty, "-o", tmp_path / "c")
    assert run.returncode == 2 and "empty" in run.stderr
    assert not any(tmp_path.glob("*.etlt")) and not (tmp_path / "a").exists()


def test_an_engine_needs_no_key_and_a_model_file_says_how_to_give_one(pipeline: dict[str, object],
                                                                       tmp_path: Path) -> None:
    base = pipeline["base"]
    assert isinstance(base, Path)
    engine = base / "deploy" / "converted.engine"  # onnxruntime engine: plain, no key in it
    run = tlt("tlt-infer", "classification", "-m", engine, "-d", base / "infer", "-cm",
              base / "results" / "classmap.json")
    assert run.returncode == 0, run.stderr[-3000:]
    no_key = tlt("tlt-infer", "classification", "-m", pipeline["etlt"], "-d", base / "infer", "-cm",
                 base / "results" / "classmap.json")
    assert no_key.returncode == 2 and "encrypted model file" in no_key.stderr and "TLT_KEY" in no_key.stderr
    assert len(no_key.stderr.strip().splitlines()) == 1, no_key.stderr
