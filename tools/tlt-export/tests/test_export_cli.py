"""tlt-export's CLI contract on a really trained tiny classifier: .etlt content and numerics, FP16 and INT8
engines, calibration sources, QAT scales, DeepStream files, and the one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result

from libtlt.io.calcache import read_calibration_cache
from libtlt.io.modelfile import load_model_file
from libtlt.runtime.engine import open_engine, read_sidecar
from libtlt.runtime.onnx_precision import required_tensors
from libtlt.runtime.onnxruntime_backend import OrtModel, load_etlt
from libtlt.testing import one_error_line
from tlt_export.cli import main

BIN = Path(sys.executable).parent
KEY = "export-test-key"  # as in conftest.py (importlib import mode: conftest is not importable)
SIZE = 32
Trained = Any  # conftest.Trained


def preprocessed(trained: Trained) -> np.ndarray:
    """The validation images preprocessed as the model's metadata says (classification evaluation path)."""
    from libtlt.data.classification import input_config_from_metadata, load_images_for_inference

    return load_images_for_inference(trained.val_images, input_config_from_metadata(trained.metadata))


def export(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def keras_predict(trained: Trained, batch: np.ndarray) -> np.ndarray:
    return np.asarray(trained.keras_model(batch, training=False))


@pytest.fixture(scope="module")
def fp32_etlt(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fp32") / "model.etlt"
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", out)
    assert result.exit_code == 0, result.output
    assert "Output node(s): ['predictions/Softmax']" in result.stderr
    return out


def test_fp32_etlt_holds_the_graph_with_tlt_names_and_matches_keras(trained: Trained, fp32_etlt: Path) -> None:
    onnx_bytes, meta = load_etlt(fp32_etlt, KEY)
    model = onnx.load_from_string(onnx_bytes)
    (graph_input,) = model.graph.input
    assert graph_input.name == "input_1"
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [3, SIZE, SIZE]
    assert [o.name for o in model.graph.output] == ["predictions/Softmax"]
    assert model.opset_import[0].version >= 13
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)  # standard ops only
    assert meta["architecture"] == "classification" and meta["classes"] == list(trained.classes)
    assert meta["output_names"] == ["predictions/Softmax"] and meta["data_type"] == "fp32"
    assert meta["onnx_opset"] == model.opset_import[0].version
    batch = preprocessed(trained)
    got = OrtModel(onnx_bytes).run({"input_1": batch})["predictions/Softmax"]
    assert np.max(np.abs(got - keras_predict(trained, batch))) <= 1e-4
    assert meta["export_check_max_abs_diff"] <= 1e-4


def test_default_output_is_the_model_path_with_etlt(trained: Trained, tmp_path: Path) -> None:
    model = tmp_path / "resnet_002.tlt"
    shutil.copy(trained.model_path, model)
    result = export("classification", "-m", model, "-k", KEY)
    assert result.exit_code == 0, result.output
    assert load_model_file(tmp_path / "resnet_002.etlt", KEY).files.keys() == {"model.onnx"}


def test_fp16_engine_is_within_1e_2_of_keras(trained: Trained, tmp_path: Path) -> None:
    engine = tmp_path / "fp16.engine"
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "m.etlt",
                    "--data_type", "fp16", "--engine_file", engine, "--max_batch_size", "4")
    assert result.exit_code == 0, result.output
    assert "TensorRT is not installed: building an onnxruntime engine" in result.stderr
    sidecar = read_sidecar(engine)
    assert sidecar["precision"] == "fp16" and sidecar["backend"] == "onnxruntime"
    assert sidecar["outputs"] == ["predictions/Softmax"] and sidecar["profiles"][0]["max"] == [4, 3, SIZE, SIZE]
    batch = preprocessed(trained)
    got = open_engine(engine).run({"input_1": batch})["predictions/Softmax"]
    assert np.max(np.abs(got - keras_predict(trained, batch))) <= 1e-2
    assert load_etlt(tmp_path / "m.etlt", KEY)[1]["data_type"] == "fp16"


def test_int8_from_images_writes_cal_bin_tensorfile_and_an_agreeing_engine(trained: Trained, tmp_path: Path) -> None:
    cal, tensors, engine = tmp_path / "cal.bin", tmp_path / "cal.tensorfile", tmp_path / "int8.engine"
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "m.etlt",
                    "--data_type", "int8", "--cal_image_dir", trained.root / "train", "--batches", "3",
                    "--batch_size", "8", "--cal_cache_file", cal, "--cal_data_file", tensors,
                    "--engine_file", engine)
    assert result.exit_code == 0, result.output
    assert cal.read_text().splitlines()[0].endswith("-EntropyCalibration2")
    cache = read_calibration_cache(cal)
    onnx_model = onnx.load_from_string(load_etlt(tmp_path / "m.etlt", KEY)[0])
    assert {"input_1", "predictions/Softmax"} <= set(cache.scales)
    assert set(required_tensors(onnx_model)) <= set(cache.scales)
    from libtlt.io.tensorfile import TensorFile

    with TensorFile(tensors) as stored:
        assert len(stored) == 3 and all(batch.shape == (8, 3, SIZE, SIZE) for batch in stored)
    assert read_sidecar(engine)["precision"] == "int8"
    batch = preprocessed(trained)
    int8 = open_engine(engine).run({"input_1": batch})["predictions/Softmax"]
    fp32 = keras_predict(trained, batch)
    agreement = float(np.mean(int8.argmax(1) == fp32.argmax(1)))
    assert agreement >= 0.8, agreement

    # The tensorfile written above is a calibration source by itself, and gives the same cache.
    again = tmp_path / "again.bin"
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "m2.etlt",
                    "--data_type", "int8", "--cal_data_file", tensors, "--cal_cache_file", again)
    assert result.exit_code == 0, result.output
    assert read_calibration_cache(again).scales == cache.scales


def test_qat_scales_are_used_unless_force_ptq(trained: Trained, fp32_etlt: Path, tmp_path: Path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    onnx_model = onnx.load_from_string(load_etlt(fp32_etlt, KEY)[0])
    names = [onnx_model.graph.input[0].name, *(out for node in onnx_model.graph.node for out in node.output)]
    scales = {name: 1.0 + i / 8 for i, name in enumerate(names)}
    keras_model, meta = load_tlt_model(trained.model_path, KEY)
    qat = tmp_path / "qat.tlt"
    save_tlt_model(qat, keras_model, KEY, {**meta, "qat_scales": scales}, kdf_iterations=1000)
    cal = tmp_path / "qat.bin"
    result = export("classification", "-m", qat, "-k", KEY, "--data_type", "int8", "--cal_cache_file", cal)
    assert result.exit_code == 0, result.output
    written = read_calibration_cache(cal).scales
    assert set(written) == set(names)
    assert all(abs(written[n] * 127 - scales[n]) <= 1e-6 * scales[n] for n in names)
    assert load_etlt(tmp_path / "qat.etlt", KEY)[1]["calibration"] == "qat"
    forced = export("classification", "-m", qat, "-k", KEY, "--data_type", "int8", "--cal_cache_file", cal,
                    "--force_ptq")
    assert "needs calibration data" in one_error_line(forced)
    partial = tmp_path / "partial.tlt"
    save_tlt_model(partial, keras_model, KEY, {**meta, "qat_scales": {"not_in_the_graph": 1.0}}, kdf_iterations=1000)
    result = export("classification", "-m", partial, "-k", KEY, "--data_type", "int8", "--cal_cache_file", cal)
    assert "QAT scales match none of the tensors the exported graph quantizes" in one_error_line(result)


def test_gen_ds_config_writes_nvinfer_config_and_labels(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "deploy" / "model.etlt"
    out.parent.mkdir()
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", out, "--gen_ds_config")
    assert result.exit_code == 0, result.output
    assert (out.parent / "nvinfer_config.txt").read_text() == (
        "net-scale-factor=1.0\n"
        "offsets=103.939;116.779;123.68\n"
        f"infer-dims=3;{SIZE};{SIZE}\n"
        "tlt-model-key=<Model export key>\n"
        "network-type=1\n"
        f"num-detected-classes={len(trained.classes)}\n"
        "output-blob-names=predictions/Softmax\n"
        "model-color-format=1\n")
    assert (out.parent / "labels.txt").read_text() == "".join(f"{c}\n" for c in trained.classes)
    assert list(trained.classes) == sorted(trained.classes)


def test_wrong_key_is_one_line(trained: Trained, tmp_path: Path) -> None:
    result = export("classification", "-m", trained.model_path, "-k", "not-the-key", "-o", tmp_path / "x.etlt")
    assert "wrong key" in one_error_line(result)
    assert not (tmp_path / "x.etlt").exists()


def test_an_etlt_given_as_model_is_refused(fp32_etlt: Path, tmp_path: Path) -> None:
    result = export("classification", "-m", fp32_etlt, "-k", KEY, "-o", tmp_path / "x.etlt")
    assert "this is an .etlt" in one_error_line(result)


def test_architecture_mismatch_is_refused(trained: Trained, tmp_path: Path) -> None:
    from libtlt.registry import architecture_names
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    result = export("detectnet_v2", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "x.etlt")
    line = one_error_line(result)
    if "detectnet_v2" in architecture_names():
        assert "this is a classification model, not detectnet_v2" in line
    else:
        assert "unknown architecture 'detectnet_v2'" in line
    keras_model, meta = load_tlt_model(trained.model_path, KEY)
    other = tmp_path / "other.tlt"
    save_tlt_model(other, keras_model, KEY, {**meta, "architecture": "detectnet_v2"}, kdf_iterations=1000)
    result = export("classification", "-m", other, "-k", KEY, "-o", tmp_path / "x.etlt")
    assert "this is a detectnet_v2 model, not classification" in one_error_line(result)


def test_too_few_calibration_images_is_an_error(trained: Trained, tmp_path: Path) -> None:
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "x.etlt",
                    "--data_type", "int8", "--cal_image_dir", trained.root / "val", "--cal_cache_file",
                    tmp_path / "cal.bin")
    line = one_error_line(result)
    assert f"holds {len(trained.val_images)} image(s)" in line and "8 x 10 = 80" in line
    assert not (tmp_path / "cal.bin").exists() and not (tmp_path / "x.etlt").exists()


def test_int8_without_calibration_data_is_an_error(trained: Trained, tmp_path: Path) -> None:
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "x.etlt",
                    "--data_type", "int8")
    assert "--data_type int8 needs calibration data" in one_error_line(result)
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "x.etlt",
                    "--data_type", "int8", "-e", trained.spec_path)
    assert "training data loader" in one_error_line(result)
    result = export("classification", "-m", trained.model_path, "-k", KEY, "-o", tmp_path / "x.etlt",
                    "--data_type", "int8", "--cal_data_file", tmp_path / "missing.tensor")
    assert "calibration tensorfile not found" in one_error_line(result)


def test_list_archs_and_usage() -> None:
    result = export("--list-archs")
    assert result.exit_code == 0 and "classification" in result.output.split()
    assert export("classification").exit_code == 2


def test_installed_console_script_help_and_version() -> None:
    run = subprocess.run([str(BIN / "tlt-export"), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "Usage: tlt-export" in run.stdout
    for flag in ("--cal_image_dir", "--cal_cache_file", "--engine_file", "--force_ptq", "--gen_ds_config",
                 "--max_workspace_size", "--strict_type_constraints"):
        assert flag in run.stdout
    version = subprocess.run([str(BIN / "tlt-export"), "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.strip() == "tlt-export, version 0.1.0"


def _detectnet_registered() -> bool:
    from libtlt.registry import architecture_names

    return "detectnet_v2" in architecture_names()


@pytest.mark.skipif(not _detectnet_registered(), reason="the detectnet_v2 architecture is not registered yet")
def test_detectnet_v2_export_names_numerics_and_deepstream(tmp_path: Path) -> None:
    import keras

    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import save_tlt_model

    keras.utils.set_random_seed(3)
    inputs = keras.Input((3, 32, 48), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=4, padding="same", activation="relu")(x)
    cov = keras.layers.Permute((3, 1, 2), name="output_cov")(keras.layers.Conv2D(2, 1, activation="sigmoid")(x))
    bbox = keras.layers.Permute((3, 1, 2), name="output_bbox")(keras.layers.Conv2D(8, 1)(x))
    model = keras.Model(inputs, [cov, bbox])
    meta = {"architecture": "detectnet_v2", "classes": ["car", "person"], "input_shape": [3, 32, 48],
            "input_layout": "NCHW", "preprocessing": "rgb/255",
            "spec": get_architecture("detectnet_v2").default_spec()}
    save_tlt_model(tmp_path / "det.tlt", model, KEY, meta, kdf_iterations=1000)
    result = export("detectnet_v2", "-m", tmp_path / "det.tlt", "-k", KEY, "--gen_ds_config")
    assert result.exit_code == 0, result.output
    onnx_bytes, exported = load_etlt(tmp_path / "det.etlt", KEY)
    names = ["output_cov/Sigmoid", "output_bbox/BiasAdd"]
    assert exported["output_names"] == names
    batch = (np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 48)) / 255).astype(np.float32)
    got = OrtModel(onnx_bytes).run({"input_1": batch})
    cov_ref, bbox_ref = (np.asarray(t) for t in model(batch, training=False))
    assert np.max(np.abs(got[names[0]] - cov_ref)) <= 1e-4 and np.max(np.abs(got[names[1]] - bbox_ref)) <= 1e-4
    config = (tmp_path / "nvinfer_config.txt").read_text().splitlines()
    assert {"net-scale-factor=0.00392156862745098", "offsets=0;0;0", "infer-dims=3;32;48", "network-type=0",
            "num-detected-classes=2", "output-blob-names=output_cov/Sigmoid;output_bbox/BiasAdd",
            "model-color-format=0"} <= set(config)
    assert (tmp_path / "labels.txt").read_text() == "car\nperson\n"
