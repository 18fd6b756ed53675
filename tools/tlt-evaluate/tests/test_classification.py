"""tlt-evaluate classification: metrics equal a direct Keras evaluation; outputs; errors exit 2 with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.testing import TINY_CLASSIFIER_KEY, one_error_line
from tlt_evaluate.cli import main

BIN = Path(sys.executable).parent
KEY = TINY_CLASSIFIER_KEY


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def direct_keras_evaluation(trained, dataset: Path) -> tuple[float, float, float, np.ndarray]:  # type: ignore[no-untyped-def]
    """Loss, top-1 and top-3 accuracy and the labels computed with Keras itself on the same inputs."""
    import keras

    from libtlt.data.classification import input_config_from_metadata, load_images_for_inference, scan_folder
    from libtlt.runtime.keras_model import load_tlt_model

    model, meta = load_tlt_model(trained.model_path, KEY)
    index = scan_folder(dataset)
    x = load_images_for_inference(index.paths, input_config_from_metadata(meta))
    y = np.eye(len(trained.classes), dtype=np.float32)[list(index.labels)]
    model.compile(loss="categorical_crossentropy",
                  metrics=["categorical_accuracy", keras.metrics.TopKCategoricalAccuracy(k=3)])
    loss, top1, top3 = model.evaluate(x, y, batch_size=5, verbose=0)
    return loss, top1, top3, np.asarray(index.labels)


def test_metrics_equal_a_direct_keras_evaluation(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("classification", "-e", str(trained.spec_path), "-k", KEY, "-r", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    loss, top1, top3, labels = direct_keras_evaluation(trained, trained.root / "val")
    assert report["num_images"] == len(labels) == 30
    assert report["loss"] == pytest.approx(loss, abs=1e-4)
    assert report["accuracy"] == pytest.approx(top1, abs=1e-6)
    assert report["top_k"] == 3 and report["top_k_accuracy"] == pytest.approx(top3, abs=1e-6)
    matrix = np.asarray(report["confusion_matrix"])
    assert matrix.sum() == 30 and matrix.sum(axis=1).tolist() == [6] * 5
    assert 0 < report["accuracy"] < report["top_k_accuracy"]
    assert np.trace(matrix) / 30 == pytest.approx(report["accuracy"])
    assert report["classes"] == list(trained.classes)
    for name in trained.classes:
        assert set(report["per_class"][name]) == {"precision", "recall", "f1", "support"}
    # The printout lists the manual's metrics.
    assert "Evaluation Loss:" in result.stdout and "Evaluation Top 3 accuracy:" in result.stdout
    assert "precision" in result.stdout and "recall" in result.stdout and "Confusion Matrix" in result.stdout
    with Image.open(tmp_path / "out" / "confusion_matrix.png") as png:
        assert png.format == "PNG" and png.size[0] > 100


def test_results_default_to_the_model_directory_and_m_overrides_the_spec(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "copy" / "other.tlt"
    model.parent.mkdir()
    shutil.copy(trained.model_path, model)
    result = invoke("classification", "-e", str(trained.spec_path), "-k", KEY, "-m", str(model), "--batch_size", "5")
    assert result.exit_code == 0, result.stderr
    assert (model.parent / "evaluation.json").is_file() and (model.parent / "confusion_matrix.png").is_file()
    assert json.loads((model.parent / "evaluation.json").read_text())["model"] == str(model)


def test_003_yaml_layout(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""\
        model:
          arch: 'resnet'
          n_layers: 10
          input_image_size: [3,32,32]
        augment:
          enable_center_crop: False
        evaluate:
          dataset_path: '{trained.root / "val"}'
          model_path: '{trained.model_path}'
          top_k: 1
        """))
    result = invoke("classification", "-e", str(spec), "-k", KEY, "-r", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["top_k"] == 1 and report["top_k_accuracy"] == report["accuracy"]
    assert "Evaluation Top 1 accuracy:" in result.stdout


def test_class_indices_come_from_the_model_not_the_folder_scan(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Evaluating on a folder holding only the model's last class: labels must still be that class's index.
    dataset = tmp_path / "only_last"
    last = trained.classes[-1]
    shutil.copytree(trained.root / "val" / last, dataset / last)
    spec = tmp_path / "spec.txt"
    spec.write_text(trained.spec_path.read_text().replace(str(trained.root / "val"), str(dataset)))
    result = invoke("classification", "-e", str(spec), "-k", KEY, "-r", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["per_class"][last]["support"] == 6
    assert sum(report["per_class"][name]["support"] for name in trained.classes) == 6


def test_corrupt_image_is_skipped_with_a_warning(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset = tmp_path / "val"
    shutil.copytree(trained.root / "val", dataset)
    bad = dataset / trained.classes[0] / "broken.jpg"
    bad.write_bytes((dataset / trained.classes[0] / "000000.jpg").read_bytes()[:300])
    spec = tmp_path / "spec.txt"
    spec.write_text(trained.spec_path.read_text().replace(str(trained.root / "val"), str(dataset)))
    result = invoke("classification", "-e", str(spec), "-k", KEY, "-r", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert "Skipped 1 unreadable image" in result.stderr
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["num_images"] == 30 and report["skipped_images"][0][0] == str(bad)


# ------------------------------------------------------------------------------------------ errors


def test_wrong_key_exits_2_installed_command(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = subprocess.run([str(BIN / "tlt-evaluate"), "classification", "-e", str(trained.spec_path), "-k", "nope",
                          "-r", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("Error: ")
    assert str(trained.model_path) in run.stderr
    assert not (tmp_path / "evaluation.json").exists()


def test_help_of_the_classification_command_installed() -> None:
    run = subprocess.run([str(BIN / "tlt-evaluate"), "classification", "-h"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0
    for flag in ("-e, --experiment_spec_file", "-k, --key", "-m, --model", "-r, --results_dir", "--batch_size"):
        assert flag in run.stdout


def test_missing_model(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    line = one_error_line(invoke("classification", "-e", str(trained.spec_path), "-k", KEY, "-m",
                                 str(tmp_path / "absent.tlt")))
    assert "absent.tlt" in line


def test_spec_without_dataset_path(trained, write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec("", trained.model_path)
    line = one_error_line(invoke("classification", "-e", str(spec), "-k", KEY))
    assert "eval_dataset_path" in line and str(spec) in line


def test_spec_without_model_path_and_no_m(trained, write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(trained.root / "val", None)
    assert "model_path" in one_error_line(invoke("classification", "-e", str(spec), "-k", KEY))


@pytest.mark.parametrize("problem", ["empty_class", "unknown_class", "missing_dir"])
def test_bad_dataset(trained, tmp_path: Path, problem: str) -> None:  # type: ignore[no-untyped-def]
    dataset = tmp_path / "val"
    if problem != "missing_dir":
        shutil.copytree(trained.root / "val", dataset)
    if problem == "empty_class":
        for image in (dataset / trained.classes[1]).iterdir():
            image.unlink()
    if problem == "unknown_class":
        shutil.copytree(dataset / trained.classes[0], dataset / "hexagon")
    spec = tmp_path / "spec.txt"
    spec.write_text(trained.spec_path.read_text().replace(str(trained.root / "val"), str(dataset)))
    line = one_error_line(invoke("classification", "-e", str(spec), "-k", KEY, "-r", str(tmp_path / "out")))
    expected = {"empty_class": "empty class folder", "unknown_class": "'hexagon' are not classes of the model",
                "missing_dir": "dataset directory not found"}[problem]
    assert expected in line
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_bad_spec_value_names_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "spec.txt"
    spec.write_text('model_config { arch: "resnet" n_layers: 10 input_image_size: "3,32,32" }\n'
                    'eval_config { eval_dataset_path: "x" top_k: 4 }\n')
    line = one_error_line(invoke("classification", "-e", str(spec), "-k", KEY))
    assert f"{spec}:2:" in line and "top_k" in line


def test_other_and_unknown_architectures() -> None:
    served = invoke("mask_rcnn", "-e", "spec.txt", "-m", "x.tlt", "-k", "k")  # MaskRCNN reaches its spec
    assert one_error_line(served) == "Error: spec.txt: spec file not found"
    result = invoke("nosuchnet", "-e", "spec.txt")
    assert result.exit_code == 2 and "unknown architecture 'nosuchnet'" in result.output
