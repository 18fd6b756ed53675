"""tlt-int8-tensorfile detectnet_v2: count, shape and values of the batches; bad input exits 2 with one line.

Dataset: ``libtlt.samples.generate_detection_dataset`` (480×272, 8 frames) converted by the installed
``tlt-dataset-convert`` into two folds (fold 0 = validation). The expected pixels are read with ``libtlt.io`` and
Pillow (RGB / 255, NCHW), not through the tool's loader, and also compared with the architecture's eval loader.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.io.tensorfile import TensorFile
from libtlt.samples import generate_detection_dataset
from libtlt.testing import convert_kitti, detectnet_v2_spec_text, one_error_line
from tlt_int8_tensorfile.cli import main

BIN = Path(sys.executable).parent
WIDTH, HEIGHT = 480, 272
CLASSES = ("car", "pedestrian", "cyclist")
BATCH = 2


def experiment_spec(tfrecords: str, image_dir: Path, *, batch_size: int = BATCH) -> str:
    return detectnet_v2_spec_text(tfrecords, image_dir, {"batch_size_per_gpu: 8": f"batch_size_per_gpu: {batch_size}"})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tensorfile_detectnet")
    root = base / "kitti"
    generate_detection_dataset(root, num_images=8, width=WIDTH, height=HEIGHT, classes=CLASSES, seed=7,
                               objects_per_image=(1, 3))
    records = base / "tfrecords"
    spec = base / "spec.txt"
    spec.write_text(experiment_spec(convert_kitti(root, records), root))
    return {"base": base, "root": root, "records": records, "spec": spec}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["detectnet_v2", *args], catch_exceptions=False)


def expected_images(data: dict[str, Path], fold: str) -> np.ndarray:
    """The fold's images in record order, RGB / 255, NCHW float32."""
    from libtlt.io.example import decode_example
    from libtlt.io.tfrecord import read_records

    images = []
    for path in sorted(data["records"].glob(f"kitti-{fold}-*")):
        for record in read_records(path):
            frame = decode_example(record)["frame/id"][0].decode()
            pixels = np.asarray(Image.open(data["root"] / f"{frame}.png").convert("RGB"), np.float32) / 255.0
            images.append(pixels.transpose(2, 0, 1))
    return np.stack(images)


def test_installed_script_writes_the_requested_batches(data: dict[str, Path]) -> None:
    out = data["base"] / "cal" / "calibration.tensor"
    result = subprocess.run([str(BIN / "tlt-int8-tensorfile"), "detectnet_v2", "-e", str(data["spec"]),
                             "-o", str(out), "-m", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = expected_images(data, "fold-001")
    with TensorFile(out) as tensors:
        assert len(tensors) == 1
        batch = tensors[0]
    assert batch.shape == (BATCH, 3, HEIGHT, WIDTH) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, expected[:BATCH], atol=1e-6)


def test_values_equal_the_eval_preprocessing_and_data_running_out(data: dict[str, Path]) -> None:
    from libtlt.archs.detectnet_v2 import architecture as arch
    from libtlt.spec.experiments import load_experiment

    out = data["base"] / "all.tensor"
    result = invoke("-e", str(data["spec"]), "-o", str(out), "-m", "5")
    assert result.exit_code == 0, result.stderr
    assert "only 2 full batch(es)" in result.stderr
    spec = load_experiment("detectnet_v2", data["spec"])
    loader = [images for images, _ in arch.eval_dataset(spec, use_training_set=True, batch_size=BATCH)]
    with TensorFile(out) as tensors:
        batches = list(tensors)
    assert len(batches) == 2  # 4 training frames, batches of 2
    for got, want in zip(batches, loader, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(np.concatenate(batches), expected_images(data, "fold-001"), atol=1e-6)


def test_validation_set(data: dict[str, Path]) -> None:
    out = data["base"] / "val.tensor"
    result = invoke("-e", str(data["spec"]), "-o", str(out), "-m", "2", "--use_validation_set")
    assert result.exit_code == 0, result.stderr
    with TensorFile(out) as tensors:
        batches = np.concatenate(list(tensors))
    np.testing.assert_allclose(batches, expected_images(data, "fold-000"), atol=1e-6)


def test_tfrecords_matching_no_file(data: dict[str, Path]) -> None:
    spec = data["base"] / "nofiles.txt"
    spec.write_text(experiment_spec(str(data["base"] / "nowhere" / "*"), data["root"]))
    out = data["base"] / "none.tensor"
    error = one_error_line(invoke("-e", str(spec), "-o", str(out), "-m", "1"))
    assert "nowhere" in error and "nofiles.txt:" in error
    assert not out.exists()


def test_missing_images_are_an_error_not_random_tensors(data: dict[str, Path]) -> None:
    spec = data["base"] / "noimages.txt"
    spec.write_text(experiment_spec(str(data["records"] / "kitti*"), data["base"] / "no_images_here"))
    out = data["base"] / "missing.tensor"
    error = one_error_line(invoke("-e", str(spec), "-o", str(out), "-m", "1"))
    assert "no_images_here" in error and "does not exist" in error  # names the missing file
    assert not out.exists()


def test_fewer_images_than_one_batch(data: dict[str, Path]) -> None:
    spec = data["base"] / "big_batch.txt"
    spec.write_text(experiment_spec(str(data["records"] / "kitti*"), data["root"], batch_size=16))
    out = data["base"] / "big.tensor"
    error = one_error_line(invoke("-e", str(spec), "-o", str(out), "-m", "1"))
    assert "fewer images than one batch" in error and "batch_size_per_gpu" in error
    assert not out.exists()


def test_usage_errors() -> None:
    result = CliRunner().invoke(main, ["detectnet_v2", "-e", "spec.txt", "-o", "x.tensor", "-m", "0"])
    assert result.exit_code == 2 and "max_batches" in result.stderr
    result = CliRunner().invoke(main, ["classification", "-e", "spec.txt"])
    assert result.exit_code == 2 and "classification architecture does not serve tlt-int8-tensorfile" in result.stderr
