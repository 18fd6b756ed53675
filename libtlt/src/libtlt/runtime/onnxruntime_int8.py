"""INT8 Q/DQ placement that onnxruntime's CPU kernels can run as integer arithmetic.

``onnx_precision.insert_qdq`` writes TensorRT's explicit-quantization form: Q/DQ pairs on the *inputs* of
Conv, Gemm and MatMul only. TensorRT fuses that into int8 kernels; onnxruntime does not: it turns
``DQ → Conv → Q`` into ``QLinearConv`` only when the Conv's *output* is quantized too, and otherwise runs a
float Conv behind dequantized weights — slower than FP32 (measured: 0.8× FP32 on resnet18).

``integer_kernels`` adds what onnxruntime needs, using the same cal.bin:

* the output of each quantized Conv/Gemm/MatMul (and of each Add whose inputs are all quantized, the
  residual sums of ResNets) gets a Q/DQ pair with its own calibrated scale, so the node fuses into an
  integer kernel (``QLinearConv``, ``QLinearAdd``);
* a quantized output may feed a LeakyRelu (YOLOv3's DarkNet blocks): onnxruntime runs ``DQ → LeakyRelu → Q`` as
  ``QLinearLeakyRelu``; without this every such convolution ran in float behind dequantized weights (a YOLOv3
  INT8 engine: 2.3× faster with it);
* where that output feeds only a Relu, the pair goes after the Relu instead, as uint8 with zero point 0
  over the Relu output's calibrated range: onnxruntime then drops the Relu (the quantization clips at 0);
* a head convolution whose output is only laid out (Shape, Transpose, Reshape) before the score and box
  decoding is quantized too: its logits and offsets are read back at the calibrated 8-bit scale, and the
  Sigmoid/Softmax and box decoding after them run in float (measured on RetinaNet: mAP 0.418 against 0.416
  with the heads in float and 0.414 for the .tlt);
* outputs that are graph outputs, or that feed ops without an integer form (Sigmoid, Softmax ...), stay
  float — the detection and class scores keep float precision, as in TensorRT;
* every activation pair is written as uint8 (int8 zero point z becomes uint8 z + 128: the same numbers;
  :func:`unsigned_activations`): onnxruntime fuses a Conv only when its quantized input and output have the
  same type, and on x86 it makes them match by rewriting int8 pairs as uint8 itself — but only for a Q
  with exactly one DQ after it (and its common-subexpression pass merges duplicated Qs back into one). A
  tensor read by two convolutions (FasterRCNN's RoiAlign crops, read by the RCNN body's first convolution
  and its projection shortcut) kept its int8 pair, and both convolutions ran in float.

The numerics are the cal.bin's: every quantized tensor uses its calibrated amax (``127 × scale``).

One exception, for the CPU the engine is built on: x86 CPUs without VNNI instructions multiply uint8
activations by int8 weights with ``vpmaddubsw``, which adds pairs of products into a saturating int16;
with full-range weights the sums overflow (measured here: errors of 0.09–0.12 on sigmoid outputs instead
of ≤ 0.04). On such CPUs the weights are quantized to 7 bits (±63, the scale doubled), as onnxruntime's
own quantizer does with ``reduce_range``. Build an engine on the machine that runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from libtlt.runtime.onnx_precision import MIN_SCALE, QUANTIZED_OPS, place_after_producers

#: Consumers that take a dequantized tensor without losing an integer fusion (or that onnxruntime runs on
#: int8 directly); a tensor with any other consumer is left float.
#: Shape, Transpose and Reshape only read a shape or move values: a detector's head convolutions, laid out by them
#: before the float Sigmoid/Softmax, then run as QLinearConv (RetinaNet's INT8 engine: 71 → 82 images/s).
INTEGER_CONSUMERS = frozenset({*QUANTIZED_OPS, "Add", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "LeakyRelu",
                               "Shape", "Transpose", "Reshape", "QuantizeLinear"})
UINT8_MAX = 255.0
INT8_MAX = 127.0
#: Weight range on CPUs whose uint8 × int8 products saturate (see the module docstring).
REDUCED_WEIGHT_MAX = 63.0
_VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def saturating_u8s8(cpuinfo: str | None = None) -> bool:
    """Whether this CPU runs onnxruntime's uint8 × int8 kernels with saturating int16 sums (x86 without VNNI)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return "avx2" in flags and not flags & _VNNI_FLAGS
    return False


def _reduce_weight_range(graph: onnx.GraphProto) -> None:
    """Scale every weight quantizer (a QuantizeLinear of an initializer) to ±63 instead of ±127."""
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in initializers:
            continue
        scale = initializers.get(node.input[1])
        if scale is None:
            continue
        values = numpy_helper.to_array(scale).astype(np.float32) * np.float32(INT8_MAX / REDUCED_WEIGHT_MAX)
        scale.CopyFrom(numpy_helper.from_array(values, scale.name))


def _fresh(used: set[str], base: str) -> str:
    name, index = base, 1
    while name in used:
        name = f"{base}_{index}"
        index += 1
    used.add(name)
    return name


def integer_kernels(model: onnx.ModelProto, scales: Mapping[str, float], *,
                    reduce_weight_range: bool | None = None) -> onnx.ModelProto:
    """A copy of ``model`` (the output of ``insert_qdq``) with Q/DQ pairs on the outputs of its quantized
    nodes, where ``scales`` (tensor → ``amax / 127``) has them; see the module docstring.

    ``reduce_weight_range``: 7-bit weights; ``None`` decides by this CPU (:func:`saturating_u8s8`)."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    graph = model_copy.graph
    if reduce_weight_range if reduce_weight_range is not None else saturating_u8s8():
        _reduce_weight_range(graph)
    used = {i.name for i in graph.initializer} | {v.name for v in graph.input} | {v.name for v in graph.output}
    for node in graph.node:
        used.update(node.input)
        used.update(node.output)
        used.add(node.name)
    graph_outputs = {value.name for value in graph.output}
    nodes = list(graph.node)
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    activation_q = {node.input[0]: node for node in nodes
                    if node.op_type == "QuantizeLinear" and node.input[0] in producer}
    dq_of = {node.input[0]: node.output[0] for node in nodes if node.op_type == "DequantizeLinear"}
    new_inits: list[onnx.TensorProto] = []
    after: dict[str, list[onnx.NodeProto]] = {}  # tensor → new Q/DQ nodes placed right after its producer

    def from_dq(name: str) -> bool:
        source = producer.get(name)
        return source is not None and source.op_type == "DequantizeLinear"

    def quantize(tensor: str, unsigned: bool) -> None:
        amax = max(float(scales[tensor]), MIN_SCALE) * INT8_MAX
        scale = _fresh(used, f"{tensor}_ort_scale")
        zero = _fresh(used, f"{tensor}_ort_zero_point")
        new_inits.append(numpy_helper.from_array(np.asarray(amax / (UINT8_MAX if unsigned else INT8_MAX),
                                                            np.float32), scale))
        new_inits.append(numpy_helper.from_array(np.zeros((), np.uint8 if unsigned else np.int8), zero))
        existing = activation_q.get(tensor)
        if existing is not None:  # insert_qdq already quantizes it for a Conv: one pair, in the wider type
            dequantized = dq_of[existing.output[0]]
            for node in (existing, *consumers.get(existing.output[0], [])):
                if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                    node.input[1], node.input[2] = scale, zero
        else:
            q_out = _fresh(used, f"{tensor}_ort_QuantizeLinear")
            dequantized = _fresh(used, f"{tensor}_ort_DequantizeLinear")
            pair = [helper.make_node("QuantizeLinear", [tensor, scale, zero], [q_out], name=q_out),
                    helper.make_node("DequantizeLinear", [q_out, scale, zero], [dequantized], name=dequantized)]
            after[tensor] = pair
            producer.update({q_out: pair[0], dequantized: pair[1]})
        for node in consumers.get(tensor, []):
            if node is existing:
                continue
            for index, name in enumerate(node.input):
                if name == tensor:
                    node.input[index] = dequantized

    for node in nodes:
        integer = (node.op_type in QUANTIZED_OPS and len(node.input) > 0 and from_dq(node.input[0])) or \
            (node.op_type == "Add" and all(from_dq(name) for name in node.input))
        if not integer or node.output[0] in graph_outputs:
            continue
        tensor, unsigned = node.output[0], False
        users = consumers.get(tensor, [])
        if len(users) == 1 and users[0].op_type == "Relu" and users[0].output[0] not in graph_outputs:
            tensor, unsigned = users[0].output[0], True
        users = consumers.get(tensor, [])
        if tensor in scales and users and all(user.op_type in INTEGER_CONSUMERS for user in users):
            quantize(tensor, unsigned)

    graph.initializer.extend(new_inits)
    place_after_producers(graph, after)
    unsigned_activations(graph)
    onnx.checker.check_model(model_copy)
    return model_copy


def unsigned_activations(graph: onnx.GraphProto) -> None:
    """Re-express every int8 activation Q/DQ pair (scalar zero point z) as uint8 with zero point z + 128: the
    same numbers, in the type onnxruntime's x86 kernels take; see the module docstring for why."""
    initializers = {init.name: init for init in graph.initializer}
    graph_outputs = {value.name for value in graph.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    converted: dict[str, str] = {}  # int8 zero point → its uint8 twin

    def unsigned(zero_name: str) -> str | None:
        if zero_name in converted:
            return converted[zero_name]
        zero = initializers.get(zero_name)
        if zero is None:
            return None
        values = numpy_helper.to_array(zero)
        if values.dtype != np.int8 or values.size != 1:
            return None
        twin = f"{zero_name}/uint8"
        graph.initializer.append(numpy_helper.from_array((values.astype(np.int16) + 128).astype(np.uint8), twin))
        converted[zero_name] = twin
        return twin

    for q in list(graph.node):
        if (q.op_type != "QuantizeLinear" or q.input[0] in initializers or len(q.input) < 3
                or q.output[0] in graph_outputs):
            continue
        dqs = readers.get(q.output[0], [])
        if not dqs or any(dq.op_type != "DequantizeLinear" or len(dq.input) < 3 for dq in dqs):
            continue
        zero_names = {q.input[2], *(dq.input[2] for dq in dqs)}
        twins = {name: unsigned(name) for name in zero_names}
        if any(twin is None for twin in twins.values()):
            continue
        for node in (q, *dqs):
            node.input[2] = twins[node.input[2]]  # type: ignore[assignment]
