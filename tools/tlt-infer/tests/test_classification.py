"""tlt-infer classification: one image to stdout, a directory to result.csv; errors exit 2 with one line."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from libtlt.testing import TINY_CLASSIFIER_KEY, one_error_line
from tlt_infer.cli import main

BIN = Path(sys.executable).parent
KEY = TINY_CLASSIFIER_KEY


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def classmap(trained) -> str:  # type: ignore[no-untyped-def]
    return str(trained.model_path.parent / "classmap.json")


def direct_predictions(trained, paths: list[Path]) -> np.ndarray:  # type: ignore[no-untyped-def]
    from libtlt.data.classification import input_config_from_metadata, load_images_for_inference
    from libtlt.runtime.keras_model import load_tlt_model

    model, meta = load_tlt_model(trained.model_path, KEY)
    return np.asarray(model.predict(load_images_for_inference(paths, input_config_from_metadata(meta)), verbose=0))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def image_dir(trained, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Two classes' validation images in one flat directory (names prefixed with the class)."""
    directory = tmp_path / "images"
    directory.mkdir()
    for name in trained.classes[:2]:
        for image in sorted((trained.root / "val" / name).iterdir()):
            shutil.copy(image, directory / f"{name}_{image.name}")
    return directory


def test_directory_writes_one_row_per_image_matching_the_model(trained, image_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("classification", "-m", str(trained.model_path), "-k", KEY, "-cm", classmap(trained),
                    "-d", str(image_dir), "-b", "4")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(image_dir / "result.csv")
    paths = sorted(image_dir.glob("*.jpg"))
    assert [row[0] for row in rows] == [str(p) for p in paths]
    scores = direct_predictions(trained, paths)
    assert [row[1] for row in rows] == [trained.classes[i] for i in scores.argmax(axis=1)]
    assert all(row[1] in trained.classes for row in rows)
    np.testing.assert_allclose([float(row[2]) for row in rows], scores.max(axis=1), atol=1e-4)
    # Batch size does not change the answers.
    again = invoke("classification", "-m", str(trained.model_path), "-k", KEY, "-cm", classmap(trained),
                   "-d", str(image_dir))
    assert again.exit_code == 0, again.stderr
    assert [r[:2] for r in read_rows(image_dir / "result.csv")] == [r[:2] for r in rows]


def test_single_image_prints_path_label_confidence_installed(trained) -> None:  # type: ignore[no-untyped-def]
    image = sorted((trained.root / "val" / trained.classes[0]).iterdir())[0]
    run = subprocess.run([str(BIN / "tlt-infer"), "classification", "-m", str(trained.model_path), "-k", KEY,
                          "-cm", classmap(trained), "-i", str(image)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    path, label, confidence = run.stdout.strip().split(" ")
    scores = direct_predictions(trained, [image])[0]
    assert path == str(image)
    assert label == trained.classes[int(scores.argmax())]
    assert float(confidence) == pytest.approx(float(scores.max()), abs=1e-4)


def test_corrupt_image_in_a_directory_is_skipped_with_a_warning(trained, image_dir: Path) -> None:  # type: ignore[no-untyped-def]
    (image_dir / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (image_dir / "notes.txt").write_text("ignored: not an image")
    result = invoke("classification", "-m", str(trained.model_path), "-k", KEY, "-cm", classmap(trained),
                    "-d", str(image_dir))
    assert result.exit_code == 0, result.stderr
    assert "Skipping" in result.stderr and "zz_broken.jpg" in result.stderr
    rows = read_rows(image_dir / "result.csv")
    assert len(rows) == 12 and all("zz_broken" not in row[0] for row in rows)


def test_corrupt_single_image_exits_2(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = tmp_path / "broken.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    line = one_error_line(invoke("classification", "-m", str(trained.model_path), "-k", KEY, "-cm",
                                 classmap(trained), "-i", str(image)))
    assert str(image) in line


@pytest.mark.parametrize("mapping", [
    {"circle": 1, "triangle": 0, "star": 2, "square": 3, "cross": 4},  # same classes, another order
    {"circle": 0, "triangle": 1, "star": 2},  # fewer classes
])
def test_classmap_disagreeing_with_the_model_exits_2(trained, tmp_path: Path, mapping: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "classmap.json"
    path.write_text(json.dumps(mapping))
    image = sorted((trained.root / "val" / trained.classes[0]).iterdir())[0]
    line = one_error_line(invoke("classification", "-m", str(trained.model_path), "-k", KEY, "-cm", str(path),
                                 "-i", str(image)))
    assert str(path) in line and "does not match the model" in line


def test_malformed_classmap_exits_2(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "classmap.json"
    path.write_text('{"circle": 0,')
    line = one_error_line(invoke("classification", "-m", str(trained.model_path), "-k", KEY, "-cm", str(path),
                                 "-d", str(tmp_path)))
    assert str(path) in line and "not valid JSON" in line


def test_image_and_directory_both_or_neither_exit_2(trained, image_dir: Path) -> None:  # type: ignore[no-untyped-def]
    image = next(image_dir.iterdir())
    common = ["classification", "-m", str(trained.model_path), "-k", KEY, "-cm", classmap(trained)]
    assert "exactly one of -i" in one_error_line(invoke(*common, "-i", str(image), "-d", str(image_dir)))
    assert "exactly one of -i" in one_error_line(invoke(*common))
    assert not (image_dir / "result.csv").exists()


def test_wrong_key_exits_2_installed(trained, image_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run = subprocess.run([str(BIN / "tlt-infer"), "classification", "-m", str(trained.model_path), "-k", "wrong",
                          "-cm", classmap(trained), "-d", str(image_dir)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("Error: ") and run.stderr.strip().count("\n") == 0
    assert not (image_dir / "result.csv").exists()


def test_missing_model_and_missing_inputs(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = sorted((trained.root / "val" / trained.classes[0]).iterdir())[0]
    assert "absent.tlt" in one_error_line(invoke("classification", "-m", str(tmp_path / "absent.tlt"), "-k", KEY,
                                                 "-cm", classmap(trained), "-i", str(image)))
    assert "image not found" in one_error_line(invoke("classification", "-m", str(trained.model_path), "-k", KEY,
                                                      "-cm", classmap(trained), "-i", str(tmp_path / "no.jpg")))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no .jpg" in one_error_line(invoke("classification", "-m", str(trained.model_path), "-k", KEY,
                                              "-cm", classmap(trained), "-d", str(empty)))


def test_help_and_other_architectures() -> None:
    result = invoke("classification", "-h")
    assert result.exit_code == 0
    for flag in ("-m, --model", "-i, --image", "-d, --image_dir", "-b, --batch_size", "-k, --key",
                 "-cm, --class_map"):
        assert flag in result.output
    served = invoke("mask_rcnn", "-e", "spec.txt", "-m", "x.tlt", "-k", "k")  # MaskRCNN reaches its spec
    assert one_error_line(served) == "Error: spec.txt: spec file not found"
