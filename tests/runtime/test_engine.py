"""build_engine: validation against the graph, explicit precision, onnxruntime engines with sidecars."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from libtlt.errors import DataError, ModelFileError, TltError, UnsupportedError
from libtlt.runtime.calibration import calibrate_to_cache
from libtlt.runtime.engine import (
    OptProfile,
    build_engine,
    check_input_dims,
    check_output_names,
    open_engine,
    parse_dims,
    parse_profile,
    sidecar_path,
)
from libtlt.runtime.onnxruntime_backend import OrtModel
from libtlt.runtime.sample_models import detectnet_like_model, image_batches
from libtlt.runtime.tensorrt_backend import tensorrt_available

SHAPE = (3, 32, 48)
OUTPUTS = ["output_cov/Sigmoid", "output_bbox/BiasAdd"]


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return detectnet_like_model(*SHAPE[1:])


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return next(image_batches(1, 4, SHAPE, seed=31))


@pytest.fixture(scope="module")
def cal_bin(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "cal.bin"
    calibrate_to_cache(model, image_batches(6, 8, SHAPE, seed=1), path)
    return path


def build(model, path, **options):
    options.setdefault("input_dims", SHAPE)
    options.setdefault("output_names", OUTPUTS)
    return build_engine(model, path, backend="onnxruntime", **options)


def test_parse_dims_and_profiles() -> None:
    assert parse_dims("3,544,960") == (3, 544, 960)
    for bad in ("3,x,960", "3,0,960", ""):
        with pytest.raises(TltError, match="comma-separated positive integers"):
            parse_dims(bad)
    assert parse_profile("input_1,1x3x544x960,8x3x544x960,16x3x544x960") == OptProfile(
        "input_1", (1, 3, 544, 960), (8, 3, 544, 960), (16, 3, 544, 960))
    with pytest.raises(TltError, match="<input_name>,<min_shape>"):
        parse_profile("input_1,1x3x544x960")
    with pytest.raises(TltError, match="not of the form"):
        parse_profile("input_1,1x3xAx960,1x3x5x9,1x3x5x9")


def test_input_dims_mismatch_names_the_real_shape(model) -> None:
    assert check_input_dims(model, SHAPE) == "input_1"
    with pytest.raises(ModelFileError) as err:
        check_input_dims(model, (3, 544, 960))
    assert err.value.one_line() == ("-d 3,544,960 (-i nchw) does not match the model's input 'input_1' of shape "
                                    "[N,3,32,48]: use -d 3,32,48")
    with pytest.raises(TltError, match="expects C,H,W"):
        check_input_dims(model, (3, 32))


def test_nhwc_input_takes_dims_as_c_h_w(tmp_path, images) -> None:
    nodes = [helper.make_node("Transpose", ["input_1"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Relu", ["nchw"], ["out"])]
    graph = helper.make_graph(nodes, "nhwc", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT,
                                                                            ["N", 32, 48, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, 32, 48])])
    nhwc = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    nhwc.ir_version = 8
    assert check_input_dims(nhwc, SHAPE, "nhwc") == "input_1"
    with pytest.raises(ModelFileError, match=r"shape \[N,32,48,3\]: use -d 3,32,48 -i nhwc$"):
        check_input_dims(nhwc, SHAPE, "nchw")
    sidecar = build_engine(nhwc, tmp_path / "nhwc.engine", backend="onnxruntime", input_dims=SHAPE,
                           input_order="nhwc", output_names=["out"])
    assert sidecar["profiles"] == [{"name": "input_1", "min": [1, 32, 48, 3], "opt": [16, 32, 48, 3],
                                    "max": [16, 32, 48, 3]}]


def test_unknown_output_names_list_the_real_ones(model) -> None:
    assert check_output_names(model, ["output_bbox/BiasAdd"]) == ["output_bbox/BiasAdd"]
    with pytest.raises(ModelFileError) as err:
        check_output_names(model, ["output_cov/Sigmoid", "predictions/Softmax"])
    assert err.value.one_line() == ("-o names output(s) the model does not have: predictions/Softmax; this model's "
                                    "outputs are: output_cov/Sigmoid, output_bbox/BiasAdd")


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 0.0), ("fp16", 2e-3), ("int8", 0.04)])
def test_onnxruntime_engines_match_the_source_model(model, images, cal_bin, tmp_path, precision, tolerance) -> None:
    path = tmp_path / f"{precision}.engine"
    sidecar = build(model, path, precision=precision, cal_cache=cal_bin)
    assert sidecar["backend"] == "onnxruntime" and sidecar["precision"] == precision
    assert sidecar["inputs"] == ["input_1"] and sidecar["outputs"] == OUTPUTS
    assert json.loads(sidecar_path(path).read_text()) == sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{precision}.engine", f"{precision}.engine.json"]
    engine = open_engine(path)
    got, want = engine.run(images), OrtModel(model.SerializeToString()).run(images)
    for name in OUTPUTS:
        scale = max(1.0, float(np.abs(want[name]).max()))
        assert np.abs(got[name] - want[name]).max() <= tolerance * scale
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert ("QuantizeLinear" in ops) == (precision == "int8")
    assert ("Cast" in ops) == (precision == "fp16")


def test_selected_outputs_only(model, tmp_path) -> None:
    sidecar = build(model, tmp_path / "cov.engine", output_names=["output_cov/Sigmoid"])
    assert sidecar["outputs"] == ["output_cov/Sigmoid"]
    assert open_engine(tmp_path / "cov.engine").output_names == ["output_cov/Sigmoid"]


def test_int8_without_scales_for_the_graph_fails_and_writes_nothing(model, tmp_path) -> None:
    cal = tmp_path / "other.bin"
    cal.write_text("TRT-101300-EntropyCalibration2\ninput_1: 3c010204\nconv1/Relu: 3c010204\nother/Relu: 3c010204\n")
    with pytest.raises(DataError) as err:
        build(model, tmp_path / "int8.engine", precision="int8", cal_cache=cal)
    assert f"{cal} has no scale for 2 tensor(s) this model quantizes: 'conv2/Relu', 'block/Relu'" in str(err.value)
    with pytest.raises(DataError, match="needs a calibration cache"):
        build(model, tmp_path / "int8.engine", precision="int8")
    with pytest.raises(DataError, match="calibration cache not found"):
        build(model, tmp_path / "int8.engine", precision="int8", cal_cache=tmp_path / "missing.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.bin"]


def test_profiles_are_validated_and_recorded(model, tmp_path) -> None:
    profile = OptProfile("input_1", (1, *SHAPE), (4, *SHAPE), (8, *SHAPE))
    sidecar = build(model, tmp_path / "p.engine", opt_profiles=[profile])
    assert sidecar["profiles"] == [{"name": "input_1", "min": [1, *SHAPE], "opt": [4, *SHAPE], "max": [8, *SHAPE]}]
    with pytest.raises(ModelFileError, match="-p names input 'image', but the model's inputs are: input_1"):
        build(model, tmp_path / "p.engine", opt_profiles=[OptProfile("image", (1,), (1,), (1,))])
    with pytest.raises(ModelFileError, match=r"min shape 1x3x64x48 does not fit the input's shape \[N,3,32,48\]"):
        build(model, tmp_path / "p.engine", opt_profiles=[OptProfile("input_1", (1, 3, 64, 48), (1, *SHAPE),
                                                                     (1, *SHAPE))])
    with pytest.raises(TltError, match="min <= opt <= max"):
        build(model, tmp_path / "p.engine", opt_profiles=[OptProfile("input_1", (8, *SHAPE), (1, *SHAPE),
                                                                     (8, *SHAPE))])


def test_open_engine_checks_the_sidecar(model, tmp_path) -> None:
    path = tmp_path / "e.engine"
    build(model, path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its sidecar"):
        open_engine(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="no sidecar"):
        open_engine(path)
    with pytest.raises(ModelFileError, match="engine file not found"):
        open_engine(tmp_path / "none.engine")


def test_onnxruntime_has_no_dla(model, tmp_path) -> None:
    with pytest.raises(UnsupportedError, match="DLA"):
        build(model, tmp_path / "dla.engine", dla_core=0)


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is installed here")
def test_tensorrt_backend_without_tensorrt_says_how_to_install(model, tmp_path) -> None:
    with pytest.raises(UnsupportedError, match=r"TensorRT is not installed.*--backend onnxruntime"):
        build_engine(model, tmp_path / "trt.engine", backend="tensorrt", input_dims=SHAPE, output_names=OUTPUTS)
    assert not list(tmp_path.iterdir())


def test_sidecar_records_the_model_metadata_but_never_the_spec(model, tmp_path) -> None:
    from libtlt.runtime.engine import engine_metadata

    metadata = {"architecture": "detectnet_v2", "classes": ["car", "person"], "input_shape": list(SHAPE),
                "spec": "key: 'secret'", "key": "secret"}
    build(model, tmp_path / "m.engine", metadata=engine_metadata(metadata))
    recorded = json.loads(sidecar_path(tmp_path / "m.engine").read_text())["model_metadata"]
    assert recorded == {"architecture": "detectnet_v2", "classes": ["car", "person"], "input_shape": list(SHAPE)}
    assert "secret" not in sidecar_path(tmp_path / "m.engine").read_text()


def test_an_nms_output_brings_its_numbered_companions() -> None:
    """TLT's ``-o NMS`` names the NMS layer, whose outputs are NMS and NMS_1 (BatchedNMS: _1, _2, _3)."""
    from onnx import TensorProto, helper

    names = ["NMS", "NMS_1", "NMS_extra", "other"]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], [n]) for n in names], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in names])
    model = helper.make_model(graph)
    assert check_output_names(model, ["NMS"]) == ["NMS", "NMS_1"]
    assert check_output_names(model, ["other", "NMS"]) == ["other", "NMS", "NMS_1"]
    assert check_output_names(model, ["NMS_1"]) == ["NMS_1"]
