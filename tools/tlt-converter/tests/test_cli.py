"""CLI contract of the installed tlt-converter (000 §13.2, 001 tao-converter), run as a subprocess on
small ONNX models and .etlt files made here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from libtlt.io.modelfile import save_model_file
from libtlt.runtime.calibration import calibrate_to_cache
from libtlt.runtime.engine import open_engine
from libtlt.runtime.onnxruntime_backend import OrtModel
from libtlt.runtime.sample_models import classifier_model, detectnet_like_model, image_batches

CONVERTER = Path(sys.executable).parent / "tlt-converter"
KEY = "nvidia_tlt"
SHAPE = (3, 32, 48)
OUTPUTS = "output_cov/Sigmoid,output_bbox/BiasAdd"


def converter(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CONVERTER), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("converter")
    model = detectnet_like_model(*SHAPE[1:])
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    save_model_file(folder / "model.etlt", KEY, {"model.onnx": model.SerializeToString()},
                    {"architecture": "detectnet_v2"}, kdf_iterations=1000)
    save_model_file(folder / "model.tlt", KEY, {"model.keras": b"PK\x03\x04"}, {"architecture": "detectnet_v2"},
                    kdf_iterations=1000)
    calibrate_to_cache(model, image_batches(6, 8, SHAPE, seed=1), folder / "cal.bin")
    return folder


@pytest.fixture(scope="module")
def reference(workdir) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    images = next(image_batches(1, 4, SHAPE, seed=77))
    return images, OrtModel((workdir / "model.onnx").read_bytes()).run(images)


@pytest.mark.parametrize(("data_type", "tolerance"), [("fp32", 0.0), ("fp16", 2e-3), ("int8", 0.04)])
def test_etlt_to_onnxruntime_engine_close_to_the_source(workdir, reference, tmp_path, data_type, tolerance) -> None:
    engine = tmp_path / f"{data_type}.engine"
    result = converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "-t", data_type, "-c", workdir / "cal.bin",
                       "-e", engine, "--backend", "onnxruntime", workdir / "model.etlt")
    assert result.returncode == 0, result.stderr
    assert "Detected 1 inputs and 2 output network tensors." in result.stderr
    sidecar = json.loads(Path(f"{engine}.json").read_text())
    assert (sidecar["backend"], sidecar["precision"], sidecar["outputs"]) == \
        ("onnxruntime", data_type, OUTPUTS.split(","))
    images, want = reference
    got = open_engine(engine).run(images)
    for name in want:
        assert np.abs(got[name] - want[name]).max() <= tolerance * max(1.0, float(np.abs(want[name]).max()))
    assert sorted(p.name for p in tmp_path.iterdir()) == [engine.name, f"{engine.name}.json"]


def test_default_engine_path_and_third_party_plain_onnx(workdir, tmp_path) -> None:
    classifier = tmp_path / "resnet.onnx"
    classifier.write_bytes(classifier_model().SerializeToString())
    result = converter("-d", "3,32,32", "-o", "predictions/Softmax", "-t", "fp16", "--backend", "onnxruntime",
                       classifier, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "plain ONNX model" in result.stderr
    assert (tmp_path / "saved.engine").is_file() and (tmp_path / "saved.engine.json").is_file()
    probabilities = open_engine(tmp_path / "saved.engine").run(np.full((2, 3, 32, 32), 0.5, np.float32))
    np.testing.assert_allclose(probabilities["predictions/Softmax"].sum(axis=1), 1.0, atol=1e-3)


def third_party_classifier(size: int = 32, num_classes: int = 6, seed: int = 3) -> onnx.ModelProto:
    """A plain ONNX classifier as other toolkits write them: NHWC input ``image``, BatchNormalization, MaxPool,
    MatMul + Add and output ``probabilities`` — none of TLT's names or layout."""
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    arrays = {
        "stem.w": weight(16, 3, 3, 3), "stem.b": np.zeros(16, np.float32),
        "bn.scale": rng.uniform(0.5, 1.5, 16).astype(np.float32), "bn.bias": rng.normal(0, 0.1, 16).astype(np.float32),
        "bn.mean": rng.normal(0, 0.1, 16).astype(np.float32), "bn.var": rng.uniform(0.5, 2.0, 16).astype(np.float32),
        "block.w": weight(32, 16, 3, 3), "block.b": rng.normal(0, 0.1, 32).astype(np.float32),
        "head.w": (rng.standard_normal((32, num_classes)) * np.sqrt(2.0 / 32)).astype(np.float32),
        "head.b": rng.normal(0, 0.1, num_classes).astype(np.float32),
    }
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "stem.w", "stem.b"], ["stem"], kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("BatchNormalization", ["stem", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["stem.relu"]),
        helper.make_node("MaxPool", ["stem.relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool", "block.w", "block.b"], ["block"], kernel_shape=[3, 3], pads=[1] * 4,
                         strides=[2, 2]),
        helper.make_node("Relu", ["block"], ["block.relu"]),
        helper.make_node("GlobalAveragePool", ["block.relu"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["features"]),
        helper.make_node("MatMul", ["features", "head.w"], ["head.matmul"]),
        helper.make_node("Add", ["head.matmul", "head.b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "third_party_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", num_classes])],
        [numpy_helper.from_array(value, name) for name, value in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="not-tlt")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


#: kind → (plain ONNX model, -d, -o, -i, held-out images): the detector has DetectNet_v2's interface but was
#: never an .etlt; the classifier is the channels-last model above.
THIRD_PARTY: dict[str, tuple[Any, str, str, str]] = {
    "detector": (lambda: detectnet_like_model(*SHAPE[1:], seed=5), "3,32,48", OUTPUTS, "nchw"),
    "classifier": (third_party_classifier, "3,32,32", "probabilities", "nhwc"),
}


@pytest.fixture(scope="module")
def third_party(tmp_path_factory) -> dict[str, tuple[Path, Path, np.ndarray]]:
    """Per kind: the plain .onnx, a cal.bin calibrated (entropy) for it, and held-out images in its layout."""
    folder = tmp_path_factory.mktemp("third_party")
    made = {}
    for kind, (build, dims, _, order) in THIRD_PARTY.items():
        model = build()
        shape = tuple(int(d) for d in dims.split(","))
        layout = (lambda b: b.transpose(0, 2, 3, 1).copy()) if order == "nhwc" else (lambda b: b)
        path, cal = folder / f"{kind}.onnx", folder / f"{kind}.cal.bin"
        path.write_bytes(model.SerializeToString())
        calibrate_to_cache(model, (layout(b) for b in image_batches(8, 8, shape, seed=11)), cal,
                           input_name=model.graph.input[0].name)
        made[kind] = (path, cal, layout(next(image_batches(1, 16, shape, seed=99))))
    return made


@pytest.mark.parametrize("kind", sorted(THIRD_PARTY))
@pytest.mark.parametrize(("data_type", "tolerance"), [("fp16", 2e-3), ("int8", 0.04)])
def test_third_party_plain_onnx_to_fp16_and_int8_stays_close_to_fp32(third_party, tmp_path, kind, data_type,
                                                                     tolerance) -> None:
    path, cal, images = third_party[kind]
    _, dims, outputs, order = THIRD_PARTY[kind]
    engine = tmp_path / f"{kind}.{data_type}.engine"
    result = converter("-d", dims, "-i", order, "-o", outputs, "-t", data_type, "-c", cal, "-e", engine,
                       "--backend", "onnxruntime", path)
    assert result.returncode == 0, result.stderr
    assert "plain ONNX model" in result.stderr
    want = OrtModel(path.read_bytes()).run(images)
    got = open_engine(engine).run(images)
    assert sorted(got) == sorted(outputs.split(","))
    for name, reference in want.items():
        assert got[name].dtype == np.float32 and got[name].shape == reference.shape
        assert np.abs(got[name] - reference).max() <= tolerance * max(1.0, float(np.abs(reference).max()))
    if kind == "classifier":  # the decision a user sees: the top class, on (nearly) every image
        agree = np.mean(got["probabilities"].argmax(axis=1) == want["probabilities"].argmax(axis=1))
        assert agree >= (1.0 if data_type == "fp16" else 0.9)
    if data_type == "int8":  # the graph really runs quantized: the engine holds Q/DQ pairs for every Conv/MatMul
        graph = onnx.load_from_string(engine.read_bytes()).graph
        assert any(node.op_type in ("QuantizeLinear", "QLinearConv", "DynamicQuantizeLinear") for node in graph.node)


def test_wrong_key(workdir, tmp_path) -> None:
    line = one_error_line(converter("-k", "wrong", "-d", "3,32,48", "-o", OUTPUTS, "--backend", "onnxruntime",
                                    "-e", tmp_path / "x.engine", workdir / "model.etlt"))
    assert line.startswith(f"Error: {workdir / 'model.etlt'}: wrong key or damaged file")
    assert not list(tmp_path.iterdir())


def test_a_tlt_where_an_etlt_is_expected(workdir, tmp_path) -> None:
    line = one_error_line(converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "--backend", "onnxruntime",
                                    "-e", tmp_path / "x.engine", workdir / "model.tlt"))
    assert "this is a .tlt (Keras training model), not an .etlt: export it first with tlt-export" in line


def test_output_names_that_do_not_exist_list_the_real_ones(workdir, tmp_path) -> None:
    line = one_error_line(converter("-k", KEY, "-d", "3,32,48", "-o", "output_cov/Sigmoid,output_bbox/Conv2D",
                                    "--backend", "onnxruntime", "-e", tmp_path / "x.engine", workdir / "model.etlt"))
    assert line == ("Error: -o names output(s) the model does not have: output_bbox/Conv2D; this model's outputs "
                    "are: output_cov/Sigmoid, output_bbox/BiasAdd")


def test_input_dims_mismatch(workdir, tmp_path) -> None:
    line = one_error_line(converter("-k", KEY, "-d", "3,384,1248", "-o", OUTPUTS, "--backend", "onnxruntime",
                                    "-e", tmp_path / "x.engine", workdir / "model.etlt"))
    assert line == ("Error: -d 3,384,1248 (-i nchw) does not match the model's input 'input_1' of shape "
                    "[N,3,32,48]: use -d 3,32,48")


def test_cal_bin_without_the_graphs_tensors(workdir, tmp_path) -> None:
    cal = tmp_path / "other_model.bin"
    cal.write_text("TRT-7000-EntropyCalibration2\ninput_1: 3c010204\nconv1/Relu_1: 3c9e3702\n")
    line = one_error_line(converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "-t", "int8", "-c", cal,
                                    "--backend", "onnxruntime", "-e", tmp_path / "x.engine", workdir / "model.etlt"))
    assert "has no scale for 3 tensor(s) this model quantizes: 'conv1/Relu', 'conv2/Relu', 'block/Relu'" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other_model.bin"]


def test_without_tensorrt_the_default_backend_says_what_to_do(workdir, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    line = one_error_line(converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "-e", tmp_path / "x.engine",
                                    workdir / "model.etlt"))
    assert "TensorRT is not installed" in line and "pip install tensorrt" in line and "--backend onnxruntime" in line


def test_bad_flags_are_one_line_errors(workdir, tmp_path) -> None:
    line = one_error_line(converter("-k", KEY, "-d", "3,x,48", "-o", OUTPUTS, "--backend", "onnxruntime",
                                    workdir / "model.etlt"))
    assert "-d expects comma-separated positive integers" in line
    line = one_error_line(converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "--backend", "onnxruntime", "-p",
                                    "image,1x3x32x48,2x3x32x48,4x3x32x48", workdir / "model.etlt"))
    assert "-p names input 'image', but the model's inputs are: input_1" in line
    line = one_error_line(converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "--backend", "onnxruntime", "-u", "0",
                                    workdir / "model.etlt"))
    assert "DLA" in line
    result = converter("-d", "3,32,48", "-o", OUTPUTS, "--backend", "onnxruntime", workdir / "model.etlt")
    assert "pass its key with -k" in one_error_line(result)


def test_profiles_and_strict_types_are_recorded(workdir, tmp_path) -> None:
    engine = tmp_path / "p.engine"
    result = converter("-k", KEY, "-d", "3,32,48", "-o", OUTPUTS, "--backend", "onnxruntime", "-s", "-m", "4",
                       "-p", "input_1,1x3x32x48,2x3x32x48,4x3x32x48", "-e", engine, workdir / "model.etlt")
    assert result.returncode == 0, result.stderr
    sidecar = json.loads(Path(f"{engine}.json").read_text())
    assert sidecar["profiles"] == [{"name": "input_1", "min": [1, 3, 32, 48], "opt": [2, 3, 32, 48],
                                    "max": [4, 3, 32, 48]}]
    assert sidecar["strict_type_constraints"] is True and sidecar["max_batch_size"] == 4
