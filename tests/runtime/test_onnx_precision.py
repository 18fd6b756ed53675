"""FP16 conversion and INT8 Q/DQ insertion, checked by running the graphs with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from libtlt.errors import DataError
from libtlt.runtime.calibration import calibrate
from libtlt.runtime.onnx_precision import insert_qdq, required_tensors, to_fp16, weight_scales
from libtlt.runtime.onnxruntime_backend import OrtModel
from libtlt.runtime.sample_models import classifier_model, detectnet_like_model, image_batches

DETECTNET_OUTPUTS = ["output_cov/Sigmoid", "output_bbox/BiasAdd"]


def run(model: onnx.ModelProto, feed: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    return OrtModel(model.SerializeToString()).run(feed)


def run_unfused(model: onnx.ModelProto, feed: np.ndarray) -> dict[str, np.ndarray]:
    """The Q/DQ graph's own ONNX semantics: onnxruntime's graph optimizer off, so no Q/DQ pair is fused into
    an integer kernel (whose uint8 x int8 sums saturate on x86 CPUs without VNNI; see onnxruntime_int8)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return OrtModel(model.SerializeToString(), session_options=options).run(feed)


def max_error(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.abs(got[name].astype(np.float64) - want[name]).max()) for name in want}


def make_model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def detectnet() -> onnx.ModelProto:
    return detectnet_like_model(32, 48)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return next(image_batches(1, 8, (3, 32, 48), seed=123))


# ------------------------------------------------------------------------------------------------- FP16

def test_fp16_output_within_tolerance_and_io_stays_float32(detectnet, images) -> None:
    reference = run(detectnet, images)
    half = to_fp16(detectnet)
    assert [v.type.tensor_type.elem_type for v in half.graph.input] == [TensorProto.FLOAT]
    assert [v.name for v in half.graph.output] == DETECTNET_OUTPUTS
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in half.graph.output)
    kernels = {i.name: i.data_type for i in half.graph.initializer}
    assert kernels["conv1/kernel"] == TensorProto.FLOAT16 and kernels["output_bbox/bias"] == TensorProto.FLOAT16
    errors = max_error(run(half, images), reference)
    # float16 has an 11-bit mantissa: relative error ~1e-3 after a few layers.
    assert errors["output_cov/Sigmoid"] < 2e-3
    assert errors["output_bbox/BiasAdd"] < 1e-2 * float(np.abs(reference["output_bbox/BiasAdd"]).max())
    # Boundary casts: one in for the input, one out per output, and nothing else.
    assert [n.op_type for n in half.graph.node].count("Cast") == 3


def test_fp16_without_keep_io_types_changes_the_interface(detectnet, images) -> None:
    half = to_fp16(detectnet, keep_io_types=False)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in half.graph.output)
    assert "Cast" not in {n.op_type for n in half.graph.node}
    out = run(half, images.astype(np.float16))
    assert out["output_cov/Sigmoid"].dtype == np.float16
    assert max_error(out, run(detectnet, images))["output_cov/Sigmoid"] < 5e-3


def test_fp16_keeps_resize_scales_and_nms_in_float32() -> None:
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    weight = numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), "w")
    iou = numpy_helper.from_array(np.array([0.5], np.float32), "iou")
    score = numpy_helper.from_array(np.array([0.1], np.float32), "score_threshold")
    top = numpy_helper.from_array(np.array([10], np.int64), "max_boxes")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["conv"]),
        helper.make_node("Resize", ["conv", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Sigmoid", ["scores_in"], ["scores"]),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_boxes", "iou", "score_threshold"], ["selected"]),
    ]
    model = make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4]),
         helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 6, 4]),
         helper.make_tensor_value_info("scores_in", TensorProto.FLOAT, [1, 1, 6])],
        [helper.make_tensor_value_info("up", TensorProto.FLOAT, [1, 2, 8, 8]),
         helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])],
        [scales, weight, iou, score, top])
    half = to_fp16(model)
    types = {i.name: i.data_type for i in half.graph.initializer}
    assert types == {"scales": TensorProto.FLOAT, "w": TensorProto.FLOAT16, "iou": TensorProto.FLOAT,
                     "score_threshold": TensorProto.FLOAT, "max_boxes": TensorProto.INT64}
    nms = next(n for n in half.graph.node if n.op_type == "NonMaxSuppression")
    cast_to = {n.output[0]: n.attribute[0].i for n in half.graph.node if n.op_type == "Cast"}
    assert cast_to[nms.input[1]] == TensorProto.FLOAT  # the float16 Sigmoid is cast back for NMS
    assert nms.input[0] == "boxes"
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 10, (1, 6, 2)).astype(np.float32)
    feed = {"x": rng.standard_normal((1, 2, 4, 4)).astype(np.float32),
            "boxes": np.concatenate([corners, corners + 3], axis=2),
            "scores_in": rng.standard_normal((1, 1, 6)).astype(np.float32)}
    want, got = run(model, feed), run(half, feed)
    np.testing.assert_array_equal(got["selected"], want["selected"])
    np.testing.assert_allclose(got["up"], want["up"], atol=5e-3)


def test_fp16_converts_constants_and_cast_targets_and_saturates() -> None:
    big = numpy_helper.from_array(np.array([1e6, -1e6, 2.0], np.float32), "big")
    nodes = [
        helper.make_node("Cast", ["count"], ["count_f"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
        helper.make_node("Mul", ["x", "count_f"], ["scaled"]),
        helper.make_node("Add", ["scaled", "half"], ["shifted"]),
        helper.make_node("Min", ["shifted", "big"], ["y"]),
    ]
    model = make_model(nodes,
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
                        helper.make_tensor_value_info("count", TensorProto.INT64, [3])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [big])
    half = to_fp16(model)
    cast = next(n for n in half.graph.node if n.op_type == "Cast" and n.input[0] == "count")
    assert cast.attribute[0].i == TensorProto.FLOAT16
    constant = next(n for n in half.graph.node if n.op_type == "Constant")
    assert constant.attribute[0].t.data_type == TensorProto.FLOAT16
    saturated = numpy_helper.to_array(next(i for i in half.graph.initializer if i.name == "big"))
    assert saturated.dtype == np.float16 and np.isfinite(saturated).all() and saturated[0] == 65504
    feed = {"x": np.array([1.5, -2.0, 3.0], np.float32), "count": np.array([2, 3, 1], np.int64)}
    np.testing.assert_allclose(run(half, feed)["y"], [3.5, -65504.0, 2.0])  # -1e6 saturated to float16's min


# ------------------------------------------------------------------------------------------------- INT8

def test_required_tensors_are_the_activation_inputs_of_quantized_ops(detectnet) -> None:
    assert required_tensors(detectnet) == ["input_1", "conv1/Relu", "conv2/Relu", "block/Relu"]
    assert required_tensors(classifier_model()) == ["input_1", "flatten"]


def test_insert_qdq_reports_every_missing_scale_by_name(detectnet) -> None:
    # Partial and naming a tensor this graph lacks: another model's cache.
    with pytest.raises(DataError) as err:
        insert_qdq(detectnet, {"input_1": 1 / 127, "conv1/Relu": 0.02, "conv1/Relu_1": 0.02})
    message = err.value.one_line()
    assert "2 tensor(s)" in message and "'conv2/Relu'" in message and "'block/Relu'" in message
    assert "'conv1/Relu'" not in message
    with pytest.raises(DataError, match="has no scale for 4 tensor"):  # covers nothing
        insert_qdq(detectnet, {"elsewhere": 0.1})


def test_a_partial_cache_leaves_the_uncovered_nodes_float(detectnet) -> None:
    """A QAT cache (000 §8.1) has no scales for some tensors: their consumers run in float, weights included."""
    quantized = insert_qdq(detectnet, {"input_1": 1 / 127, "conv1/Relu": 0.02})
    producers = {out: node for node in quantized.graph.node for out in node.output}
    for node in quantized.graph.node:
        if node.op_type != "Conv":
            continue
        dequantized = [name in producers and producers[name].op_type == "DequantizeLinear" for name in node.input[:2]]
        source = producers[producers[node.input[0]].input[0]].input[0] if dequantized[0] else node.input[0]
        covered = source in ("input_1", "conv1/Relu")
        assert dequantized == [covered, covered], (node.name, source)
    assert sum(node.op_type == "QuantizeLinear" for node in quantized.graph.node) == 4  # 2 activations, 2 weights


def test_weight_scales_are_symmetric_per_output_channel() -> None:
    weight = np.array([[[[1.0, -2.0]]], [[[0.5, 0.25]]], [[[0.0, 0.0]]]], np.float32)  # (3, 1, 1, 2)
    np.testing.assert_allclose(weight_scales(weight, 0), [2 / 127, 0.5 / 127, 1e-8], rtol=1e-6)
    np.testing.assert_allclose(weight_scales(weight, None), 2 / 127, rtol=1e-6)


def test_qdq_structure_per_channel_weights(detectnet) -> None:
    scales = dict.fromkeys(required_tensors(detectnet), 0.02)
    quantized = insert_qdq(detectnet, scales)
    ops = [n.op_type for n in quantized.graph.node]
    assert ops.count("QuantizeLinear") == ops.count("DequantizeLinear") == 4 + 5  # 4 activations + 5 conv weights
    values = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    conv2 = next(n for n in quantized.graph.node if n.name == "conv2")
    weight_dq = next(n for n in quantized.graph.node if n.output[0] == conv2.input[1])
    assert helper.get_attribute_value(weight_dq.attribute[0]) == 0  # axis 0: output channels
    assert values[weight_dq.input[1]].shape == (16,)
    assert values[weight_dq.input[2]].dtype == np.int8 and not values[weight_dq.input[2]].any()
    kernel = values["conv2/kernel"]
    np.testing.assert_allclose(values[weight_dq.input[1]], np.abs(kernel).max(axis=(1, 2, 3)) / 127, rtol=1e-6)
    act_dq = next(n for n in quantized.graph.node if n.output[0] == conv2.input[0])
    assert float(values[act_dq.input[1]]) == pytest.approx(0.02) and values[act_dq.input[2]].dtype == np.int8
    per_tensor = insert_qdq(detectnet, scales, per_channel_weights=False)
    assert all(numpy_helper.to_array(i).ndim == 0 for i in per_tensor.graph.initializer if i.name.endswith("scale"))


@pytest.mark.parametrize("algorithm", ["entropy", "minmax"])
def test_int8_output_close_to_fp32_after_calibration(detectnet, images, algorithm) -> None:
    amax = calibrate(detectnet, image_batches(6, 8, (3, 32, 48), seed=1), algorithm=algorithm)
    quantized = insert_qdq(detectnet, {name: value / 127 for name, value in amax.items()})
    reference = run(detectnet, images)
    got = run(quantized, images)
    for name in DETECTNET_OUTPUTS:
        scale = float(np.abs(reference[name]).max())
        error = np.abs(got[name] - reference[name])
        assert error.max() < 0.04 * scale, (name, error.max(), scale)
        assert error.mean() < 0.008 * scale, (name, error.mean(), scale)
    # Quantization really happened: the outputs differ from float32.
    assert max_error(got, reference)["output_bbox/BiasAdd"] > 1e-4


def test_int8_classifier_gemm_and_matmul_convtranspose() -> None:
    classifier = classifier_model()
    images = next(image_batches(1, 8, (3, 32, 32), seed=7))
    amax = calibrate(classifier, image_batches(4, 8, (3, 32, 32), seed=2))
    quantized = insert_qdq(classifier, {k: v / 127 for k, v in amax.items()})
    gemm_dq = next(n for n in quantized.graph.node if n.op_type == "DequantizeLinear" and "predictions" in n.name)
    assert helper.get_attribute_value(gemm_dq.attribute[0]) == 0  # transB=1: (N, K), axis 0
    probabilities = run(quantized, images)["predictions/Softmax"]
    assert np.abs(probabilities - run(classifier, images)["predictions/Softmax"]).max() < 0.02

    rng = np.random.default_rng(3)
    deconv = numpy_helper.from_array((rng.standard_normal((4, 3, 2, 2)) * 0.5).astype(np.float32), "deconv_w")
    dense = numpy_helper.from_array((rng.standard_normal((8, 5)) * 0.3).astype(np.float32), "dense_w")
    model = make_model(
        [helper.make_node("ConvTranspose", ["x", "deconv_w"], ["up"], strides=[2, 2], name="deconv"),
         helper.make_node("Relu", ["up"], ["up_relu"]),
         helper.make_node("MatMul", ["up_relu", "dense_w"], ["y"], name="dense")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 5])], [deconv, dense])
    batches = [rng.standard_normal((8, 4, 2, 4)).astype(np.float32) for _ in range(4)]
    amax = calibrate(model, batches, algorithm="minmax")
    assert required_tensors(model) == ["x", "up_relu"]
    quantized = insert_qdq(model, {k: v / 127 for k, v in amax.items()})
    axes = {n.name: helper.get_attribute_value(n.attribute[0]) for n in quantized.graph.node
            if n.op_type == "DequantizeLinear" and n.attribute}
    assert axes == {"deconv_weight_DequantizeLinear": 1, "dense_weight_DequantizeLinear": 1}
    feed = batches[0]
    want, got = run(model, feed)["y"], run_unfused(quantized, feed)["y"]
    assert np.abs(got - want).max() < 0.03 * np.abs(want).max()
