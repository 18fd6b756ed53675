"""onnxruntime INT8 placement: after ``integer_kernels`` onnxruntime runs the convolutions and residual sums as
integer kernels, with the cal.bin's numerics, and the graph outputs stay float."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from libtlt.runtime.calibration import calibrate
from libtlt.runtime.engine import build_engine, open_engine
from libtlt.runtime.onnx_precision import insert_qdq
from libtlt.runtime.onnxruntime_backend import OrtModel
from libtlt.runtime.onnxruntime_int8 import integer_kernels, saturating_u8s8
from libtlt.runtime.sample_models import classifier_model, detectnet_like_model, image_batches

SHAPE = (3, 32, 48)


def optimized_ops(model: onnx.ModelProto, tmp_path: Path) -> collections.Counter[str]:
    """The ops onnxruntime actually runs (all graph optimizations, as ``open_engine`` sessions use)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return collections.Counter(node.op_type for node in onnx.load(tmp_path / "optimized.onnx").graph.node)


@pytest.fixture(scope="module")
def calibrated() -> tuple[onnx.ModelProto, dict[str, float]]:
    model = detectnet_like_model(*SHAPE[1:])
    amax = calibrate(model, image_batches(6, 8, SHAPE, seed=1))
    return model, {name: value / 127 for name, value in amax.items()}


def test_inputs_only_qdq_leaves_float_convs_and_integer_kernels_fuse_them(calibrated, tmp_path) -> None:
    model, scales = calibrated
    tensorrt_form = insert_qdq(model, scales)
    assert optimized_ops(tensorrt_form, tmp_path)["QLinearConv"] == 0  # why integer_kernels exists
    ops = optimized_ops(integer_kernels(tensorrt_form, scales), tmp_path)
    # conv1, conv2, conv3 and the residual Add run on integers; the Relus fold into uint8 quantization;
    # the two output convolutions keep float outputs (coverage and boxes are not quantized).
    assert ops["QLinearConv"] == 3 and ops["QLinearAdd"] == 1 and ops["Relu"] == 0, ops
    assert ops["Conv"] + ops["FusedConv"] == 2, ops


def test_integer_kernels_keep_the_calibrated_numerics(calibrated) -> None:
    model, scales = calibrated
    images = next(image_batches(1, 8, SHAPE, seed=42))
    want = OrtModel(model.SerializeToString()).run(images)
    got = OrtModel(integer_kernels(insert_qdq(model, scales), scales).SerializeToString()).run(images)
    for name, reference in want.items():
        assert got[name].dtype == np.float32
        error = np.abs(got[name] - reference)
        assert error.max() < 0.04 * max(1.0, float(np.abs(reference).max())), (name, error.max())
        assert error.max() > 0  # it really ran quantized


def test_tensors_without_a_scale_stay_float(calibrated, tmp_path) -> None:
    model, scales = calibrated
    partial = {name: value for name, value in scales.items() if name != "conv3/BiasAdd"}
    ops = optimized_ops(integer_kernels(insert_qdq(model, partial), partial), tmp_path)
    assert ops["QLinearAdd"] == 0 and ops["QLinearConv"] == 2, ops  # conv3's output and the Add: float


def test_onnxruntime_int8_engine_runs_integer_kernels(tmp_path) -> None:
    classifier = classifier_model()
    cal = {name: value / 127 for name, value in calibrate(classifier, image_batches(4, 8, (3, 32, 32), seed=2)).items()}
    engine = tmp_path / "int8.engine"
    build_engine(classifier, engine, backend="onnxruntime", precision="int8", cal_cache=cal, input_dims=(3, 32, 32))
    assert optimized_ops(onnx.load(engine), tmp_path)["QLinearConv"] == 1
    images = next(image_batches(1, 8, (3, 32, 32), seed=7))
    got = open_engine(engine).run(images)["predictions/Softmax"]
    want = OrtModel(classifier.SerializeToString()).run(images)["predictions/Softmax"]
    assert np.abs(got - want).max() < 0.02


def test_saturating_cpus_are_told_apart_by_their_flags() -> None:
    assert saturating_u8s8("processor: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert not saturating_u8s8("flags\t\t: avx2 avx512f avx512_vnni\n")
    assert not saturating_u8s8("flags\t\t: avx2 avx_vnni\n")
    assert not saturating_u8s8("Features\t: fp asimd asimddp\n")  # aarch64 (Jetson): no such kernels


def test_reduced_weight_range_doubles_only_weight_scales(calibrated) -> None:
    model, scales = calibrated
    source = insert_qdq(model, scales)
    full = integer_kernels(source, scales, reduce_weight_range=False)
    reduced = integer_kernels(source, scales, reduce_weight_range=True)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in full.graph.initializer}
    weight_scales = {n.input[1] for n in full.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in inits}
    assert weight_scales
    for init in reduced.graph.initializer:
        expected = inits[init.name] * (127 / 63) if init.name in weight_scales else inits[init.name]
        np.testing.assert_allclose(onnx.numpy_helper.to_array(init), expected, rtol=1e-6)


def leaky_model() -> onnx.ModelProto:
    """input_1 → conv1 → LeakyRelu → conv2 → LeakyRelu → conv3 (output): YOLOv3's DarkNet blocks in miniature."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(3)
    weights = [rng.normal(0, 0.3, shape).astype(np.float32) for shape in ((8, 3, 3, 3), (8, 8, 3, 3), (2, 8, 1, 1))]
    inits = [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)]
    inits += [numpy_helper.from_array(rng.normal(0, 0.1, w.shape[0]).astype(np.float32), f"b{i}")
              for i, w in enumerate(weights)]
    nodes = [helper.make_node("Conv", ["input_1", "w0", "b0"], ["conv1"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["conv1"], ["leaky1"], alpha=0.1),
             helper.make_node("Conv", ["leaky1", "w1", "b1"], ["conv2"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["conv2"], ["leaky2"], alpha=0.1),
             helper.make_node("Conv", ["leaky2", "w2", "b2"], ["output"])]
    graph = helper.make_graph(nodes, "leaky", [helper.make_tensor_value_info("input_1", onnx.TensorProto.FLOAT,
                                                                             ["N", *SHAPE])],
                              [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", 2, *SHAPE[1:]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_leaky_relu_blocks_run_on_integers(tmp_path) -> None:
    """A Conv feeding a LeakyRelu keeps a quantized output (ORT: QLinearConv, then QLinearLeakyRelu); before, such
    convolutions ran in float behind dequantized weights and YOLOv3's INT8 engine was barely faster than FP32."""
    model = leaky_model()
    scales = {name: value / 127 for name, value in calibrate(model, image_batches(4, 8, SHAPE, seed=5)).items()}
    ops = optimized_ops(integer_kernels(insert_qdq(model, scales), scales), tmp_path)
    assert ops["QLinearConv"] == 2 and ops["QLinearLeakyRelu"] == 2, ops
    images = next(image_batches(1, 8, SHAPE, seed=9))
    want = OrtModel(model.SerializeToString()).run(images)["output"]
    tensorrt_form = insert_qdq(model, scales)
    inputs_only = OrtModel(tensorrt_form.SerializeToString()).run(images)["output"]
    got = OrtModel(integer_kernels(tensorrt_form, scales).SerializeToString()).run(images)["output"]
    # the error comes from quantizing the convolutions' inputs; quantizing their outputs adds little to it
    assert np.abs(got - want).mean() <= 1.2 * np.abs(inputs_only - want).mean() + 1e-3


def shared_reader_model() -> onnx.ModelProto:
    """input_1 → conv0 → {conv_a, conv_b} → Add → conv_out (output): a signed tensor read by two convolutions, as
    a ResNet block's input is read by its first convolution and its projection shortcut (FasterRCNN's crops)."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(4)
    shapes = {"w0": (8, 3, 3, 3), "wa": (8, 8, 3, 3), "wb": (8, 8, 1, 1), "wo": (2, 8, 1, 1)}
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, s).astype(np.float32), n) for n, s in shapes.items()]
    inits += [numpy_helper.from_array(rng.normal(0, 0.1, s[0]).astype(np.float32), f"b{n}") for n, s in shapes.items()]
    nodes = [helper.make_node("Conv", ["input_1", "w0", "bw0"], ["conv0"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["conv0", "wa", "bwa"], ["conv_a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["conv0", "wb", "bwb"], ["conv_b"]),
             helper.make_node("Add", ["conv_a", "conv_b"], ["sum"]),
             helper.make_node("Conv", ["sum", "wo", "bwo"], ["output"])]
    graph = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("input_1", onnx.TensorProto.FLOAT,
                                                                              ["N", *SHAPE])],
                              [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", 2, *SHAPE[1:]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_tensor_read_by_two_convolutions_runs_on_integers(tmp_path) -> None:
    """Before: conv0's int8 pair was shared by conv_a and conv_b, onnxruntime could not make it uint8 (it converts
    only a Q with one DQ after it) and both ran in float (FasterRCNN's INT8 engine was slower than Keras)."""
    model = shared_reader_model()
    scales = {name: value / 127 for name, value in calibrate(model, image_batches(4, 8, SHAPE, seed=6)).items()}
    tensorrt_form = insert_qdq(model, scales)
    converted = integer_kernels(tensorrt_form, scales)
    ops = optimized_ops(converted, tmp_path)
    assert ops["QLinearConv"] == 3 and ops["QLinearAdd"] == 1, ops
    zero_points = {i.name: onnx.numpy_helper.to_array(i) for i in converted.graph.initializer}
    activation_pairs = [n for n in converted.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in zero_points]
    assert activation_pairs and all(zero_points[n.input[2]].dtype == np.uint8 for n in activation_pairs)
    images = next(image_batches(1, 8, SHAPE, seed=10))
    got = OrtModel(converted.SerializeToString()).run(images)["output"]
    want = OrtModel(model.SerializeToString()).run(images)["output"]
    assert np.abs(got - want).max() < 0.04 * max(1.0, float(np.abs(want).max()))


def head_model() -> onnx.ModelProto:
    """input_1 → conv0 → Relu → head conv → {Shape, Transpose} → Reshape → Sigmoid (output): a detector's class head,
    whose output is laid out (Transpose/Reshape, with Shape for the batch) before the float Sigmoid."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(5)
    shapes = {"w0": (8, 3, 3, 3), "wh": (6, 8, 3, 3)}
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, s).astype(np.float32), n) for n, s in shapes.items()]
    inits += [numpy_helper.from_array(rng.normal(0, 0.1, s[0]).astype(np.float32), f"b{n}") for n, s in shapes.items()]
    inits += [numpy_helper.from_array(np.array([0], np.int64), "zero"), numpy_helper.from_array(np.array([-1, 3], np.int64), "tail")]
    nodes = [helper.make_node("Conv", ["input_1", "w0", "bw0"], ["conv0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv0"], ["relu0"]),
             helper.make_node("Conv", ["relu0", "wh", "bwh"], ["head"], pads=[1, 1, 1, 1]),
             helper.make_node("Shape", ["head"], ["head_shape"]),
             helper.make_node("Gather", ["head_shape", "zero"], ["batch"], axis=0),
             helper.make_node("Concat", ["batch", "tail"], ["layout"], axis=0),
             helper.make_node("Transpose", ["head"], ["nhwc"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["nhwc", "layout"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["output"])]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("input_1", onnx.TensorProto.FLOAT,
                                                                            ["N", *SHAPE])],
                              [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", None, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_head_read_through_shape_and_transpose_runs_on_integers(tmp_path) -> None:
    """Shape, Transpose and Reshape only read a shape or move values, so a head convolution feeding them keeps a
    quantized output: before, RetinaNet's ten head convolutions ran in float (15 % of its INT8 engine's time)."""
    model = head_model()
    scales = {name: value / 127 for name, value in calibrate(model, image_batches(4, 8, SHAPE, seed=7)).items()}
    converted = integer_kernels(insert_qdq(model, scales), scales)
    ops = optimized_ops(converted, tmp_path)
    assert ops["QLinearConv"] == 2 and ops["Conv"] == 0, ops
    images = next(image_batches(1, 8, SHAPE, seed=11))
    got = OrtModel(converted.SerializeToString()).run(images)["output"]
    want = OrtModel(model.SerializeToString()).run(images)["output"]
    assert got.shape == want.shape and np.abs(got - want).max() < 0.04
