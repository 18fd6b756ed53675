"""Small deterministic ONNX models and image batches for tests, benchmarks and the converter demo.

``detectnet_like_model`` has DetectNet_v2's interface (input ``input_1`` NCHW, outputs
``output_cov/Sigmoid`` and ``output_bbox/BiasAdd``, stride 4 here); ``classifier_model`` ends in
``predictions/Softmax``. Weights are random but fixed by the seed (He-scaled, so activations stay in
a realistic range); ``image_batches`` gives smooth, image-like NCHW float32 batches in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _conv(rng: np.random.Generator, name: str, x: str, cin: int, cout: int, k: int, stride: int,
          inits: list[onnx.TensorProto], out: str | None = None) -> onnx.NodeProto:
    weight = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
    bias = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(weight, f"{name}/kernel"), numpy_helper.from_array(bias, f"{name}/bias")]
    pad = k // 2
    return helper.make_node("Conv", [x, f"{name}/kernel", f"{name}/bias"], [out or f"{name}/BiasAdd"], name=name,
                            kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)


def _finish(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], inputs: list[onnx.ValueInfoProto],
            outputs: list[onnx.ValueInfoProto], name: str) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tlt-samples")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def detectnet_like_model(height: int = 32, width: int = 48, num_classes: int = 2, *, seed: int = 0,
                         batch: int | str = "N") -> onnx.ModelProto:
    """A small conv net with DetectNet_v2's input and output names (NCHW, stride 4)."""
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes = [
        _conv(rng, "conv1", "input_1", 3, 8, 3, 2, inits),
        helper.make_node("Relu", ["conv1/BiasAdd"], ["conv1/Relu"], name="conv1/relu"),
        _conv(rng, "conv2", "conv1/Relu", 8, 16, 3, 2, inits),
        helper.make_node("Relu", ["conv2/BiasAdd"], ["conv2/Relu"], name="conv2/relu"),
        _conv(rng, "conv3", "conv2/Relu", 16, 16, 3, 1, inits),
        helper.make_node("Add", ["conv3/BiasAdd", "conv2/Relu"], ["block/add"], name="block/add"),
        helper.make_node("Relu", ["block/add"], ["block/Relu"], name="block/relu"),
        _conv(rng, "output_cov", "block/Relu", 16, num_classes, 1, 1, inits),
        helper.make_node("Sigmoid", ["output_cov/BiasAdd"], ["output_cov/Sigmoid"], name="output_cov/Sigmoid"),
        _conv(rng, "output_bbox", "block/Relu", 16, 4 * num_classes, 1, 1, inits),
    ]
    out_h, out_w = -(-height // 4), -(-width // 4)
    inputs = [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [batch, 3, height, width])]
    outputs = [
        helper.make_tensor_value_info("output_cov/Sigmoid", TensorProto.FLOAT, [batch, num_classes, out_h, out_w]),
        helper.make_tensor_value_info("output_bbox/BiasAdd", TensorProto.FLOAT,
                                      [batch, 4 * num_classes, out_h, out_w]),
    ]
    return _finish(nodes, inits, inputs, outputs, "detectnet_like")


def classifier_model(height: int = 32, width: int = 32, num_classes: int = 5, *, seed: int = 0) -> onnx.ModelProto:
    """Conv → ReLU → global average pool → Gemm → ``predictions/Softmax``."""
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    dense = (rng.standard_normal((num_classes, 16)) * np.sqrt(2.0 / 16)).astype(np.float32)
    inits += [numpy_helper.from_array(dense, "predictions/kernel"),
              numpy_helper.from_array(np.zeros(num_classes, np.float32), "predictions/bias")]
    nodes = [
        _conv(rng, "conv1", "input_1", 3, 16, 3, 2, inits),
        helper.make_node("Relu", ["conv1/BiasAdd"], ["conv1/Relu"], name="conv1/relu"),
        helper.make_node("GlobalAveragePool", ["conv1/Relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flatten"], name="flatten"),
        helper.make_node("Gemm", ["flatten", "predictions/kernel", "predictions/bias"], ["predictions/BiasAdd"],
                         name="predictions", transB=1),
        helper.make_node("Softmax", ["predictions/BiasAdd"], ["predictions/Softmax"], name="predictions/Softmax",
                         axis=1),
    ]
    inputs = [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", 3, height, width])]
    outputs = [helper.make_tensor_value_info("predictions/Softmax", TensorProto.FLOAT, ["N", num_classes])]
    return _finish(nodes, inits, inputs, outputs, "classifier")


def image_batches(count: int, batch_size: int, shape: tuple[int, int, int], *, seed: int = 0
                  ) -> Iterator[np.ndarray]:
    """``count`` batches of smooth image-like NCHW float32 data in [0, 1] (gradients, blobs, noise)."""
    rng = np.random.default_rng(seed)
    channels, height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(count):
        batch = np.empty((batch_size, channels, height, width), np.float32)
        for sample in range(batch_size):
            for channel in range(channels):
                fx, fy = rng.uniform(0.02, 0.3, size=2)
                phase = rng.uniform(0, 2 * np.pi)
                base = 0.5 + 0.3 * np.sin(fx * xx + fy * yy + phase)
                cy, cx = rng.uniform(0, height), rng.uniform(0, width)
                blob = 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 8) ** 2))
                noise = rng.normal(0, 0.03, size=(height, width))
                batch[sample, channel] = np.clip(base + blob + noise, 0.0, 1.0)
        yield batch
