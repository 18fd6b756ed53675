"""Precision made explicit in the ONNX graph: FP16 conversion and INT8 Q/DQ insertion.

TensorRT 11 has no precision flags and no calibrators: a strongly typed network takes every
tensor's type from the graph. So FP16 and INT8 are graph rewrites done here, once, and the same
graph is checked on CPU with onnxruntime before any GPU sees it (ARCHITECTURE.md, "precision").

``to_fp16`` converts float32 tensors, initializers, ``Constant`` values and ``Cast`` targets to
float16, keeping the graph's inputs and outputs float32 (``Cast`` nodes at the boundary) and keeping
in float32 the ops and inputs that need it (``NonMaxSuppression``, ``RoiAlign``, ``TopK``, the ``roi``
and ``scales`` inputs of ``Resize``).

``insert_qdq`` quantizes the inputs of Conv, ConvTranspose, Gemm and MatMul: each activation input
gets a ``QuantizeLinear``/``DequantizeLinear`` pair (int8, zero point 0) whose scale comes from a
calibration cache, and each constant weight a pair with symmetric per-output-channel scales
``max|w| / 127`` computed from the weights. ``required_tensors`` lists the activations that need a
scale, so a cal.bin that lacks some is reported by name before anything is built.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from libtlt.errors import DataError, UnsupportedError

FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16
INT8_MAX = 127.0
FP16_MAX = float(np.finfo(np.float16).max)

#: Ops kept entirely in float32 by ``to_fp16``: box and score arithmetic that float16 would damage,
#: and ops whose ONNX signature takes float32 only.
DEFAULT_FP32_OPS = frozenset({"NonMaxSuppression", "RoiAlign", "TopK", "Range", "RandomNormal", "RandomUniform",
                              "RandomNormalLike", "RandomUniformLike", "Multinomial"})
#: Inputs (by position) that stay float32 even in a float16 op: ``Resize``'s roi and scales
#: (scales is float32 by definition), ``Upsample``'s scales.
FP32_INPUTS: Mapping[str, tuple[int, ...]] = {"Resize": (1, 2), "Upsample": (1,)}
#: Ops whose inputs ``insert_qdq`` quantizes, with the position of their weight input.
QUANTIZED_OPS: Mapping[str, int] = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
#: The smallest scale written into a Q/DQ pair: a tensor that was zero throughout calibration
#: still gets a valid (positive) scale.
MIN_SCALE = 1e-8


# --------------------------------------------------------------------------------------------- helpers

class _Names:
    """Fresh tensor and node names that collide with nothing already in the graph."""

    def __init__(self, graph: onnx.GraphProto):
        self.used: set[str] = {i.name for i in graph.input} | {o.name for o in graph.output}
        self.used |= {i.name for i in graph.initializer} | {v.name for v in graph.value_info}
        for node in graph.node:
            self.used.update(node.input)
            self.used.update(node.output)
            self.used.add(node.name)

    def fresh(self, base: str) -> str:
        name, index = base, 1
        while name in self.used:
            name = f"{base}_{index}"
            index += 1
        self.used.add(name)
        return name


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor the graph names (inputs, initializers, node outputs)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as err:  # onnx raises several types for graphs it cannot infer
        raise UnsupportedError(f"ONNX type inference failed on this graph: {err}") from None
    graph = inferred.graph
    types: dict[str, int] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    types[node.output[0]] = attr.t.data_type
    return types


def _to_fp16_array(array: np.ndarray) -> np.ndarray:
    """float32 → float16, saturating instead of overflowing to infinity."""
    return np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)


def _cast_node(names: _Names, source: str, target: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [source], [target], name=names.fresh(f"{target}_cast"), to=to)


# ------------------------------------------------------------------------------------------------- FP16

def to_fp16(model: onnx.ModelProto, keep_io_types: bool = True, *,
            fp32_ops: Iterable[str] = DEFAULT_FP32_OPS) -> onnx.ModelProto:
    """A copy of ``model`` computing in float16 where it computed in float32.

    With ``keep_io_types`` the graph's float32 inputs and outputs keep their type and names (a
    ``Cast`` at each boundary); otherwise they become float16. Nodes of ``fp32_ops``, nodes with
    subgraphs and the inputs listed in ``FP32_INPUTS`` stay float32, with casts around them.
    """
    model = copy.deepcopy(model)
    graph = model.graph
    types = elem_types(model)
    keep_ops = frozenset(fp32_ops)
    names = _Names(graph)
    initializers = {init.name: init for init in graph.initializer}
    graph_inputs = {value.name for value in graph.input} - set(initializers)

    def fp16_node(node: onnx.NodeProto) -> bool:
        return node.op_type not in keep_ops and not _has_subgraph(node)

    def wanted(node: onnx.NodeProto, index: int) -> int | None:
        """The float type input ``index`` of ``node`` must have, or None when it is not a float32 input."""
        if types.get(node.input[index]) != FLOAT:
            return None
        if not fp16_node(node) or index in FP32_INPUTS.get(node.op_type, ()):
            return FLOAT
        return FLOAT16

    # Which float types each float32 tensor is consumed as.
    demand: dict[str, set[int]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name:
                want = wanted(node, index)
                if want is not None:
                    demand.setdefault(name, set()).add(want)
    graph_outputs = {value.name for value in graph.output}

    # The type each float32 tensor has after conversion, before any cast.
    produced: dict[str, int] = {}
    constant_nodes: list[onnx.NodeProto] = []
    for name in graph_inputs:
        if types.get(name) == FLOAT:
            produced[name] = FLOAT if keep_io_types else FLOAT16
    for node in graph.node:
        if node.op_type == "Constant":
            if node.output[0] in demand or node.output[0] in graph_outputs:
                constant_nodes.append(node)
            continue
        for out in node.output:
            if out and types.get(out) == FLOAT:
                produced[out] = FLOAT16 if fp16_node(node) else FLOAT
        if fp16_node(node) and node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == FLOAT:
                    attr.i = FLOAT16
                    produced[node.output[0]] = FLOAT16
        if fp16_node(node) and node.op_type in ("ConstantOfShape", "EyeLike", "RandomNormal", "RandomUniform"):
            _convert_dtype_attributes(node)
    # Constants and initializers take the type their consumers want; a mixed demand keeps float32.
    for node in constant_nodes:
        out = node.output[0]
        if types.get(out) == FLOAT and demand.get(out, {FLOAT16}) == {FLOAT16} and out not in graph_outputs:
            for attr in node.attribute:
                if attr.name == "value":
                    attr.t.CopyFrom(numpy_helper.from_array(_to_fp16_array(numpy_helper.to_array(attr.t)), out))
            produced[out] = FLOAT16
        elif types.get(out) == FLOAT:
            produced[out] = FLOAT
    fp16_initializers: dict[str, str] = {}
    for name, init in initializers.items():
        if init.data_type != FLOAT or name not in demand:
            continue
        if demand[name] == {FLOAT16} and name not in graph_outputs:
            init.CopyFrom(numpy_helper.from_array(_to_fp16_array(numpy_helper.to_array(init)), name))
            produced[name] = FLOAT16
        else:
            produced[name] = FLOAT
            if FLOAT16 in demand[name]:  # both: a float16 twin for the float16 consumers
                twin = names.fresh(f"{name}_fp16")
                graph.initializer.append(numpy_helper.from_array(_to_fp16_array(numpy_helper.to_array(init)), twin))
                fp16_initializers[name] = twin

    # Graph outputs keep their names: a float16 producer writes a renamed tensor, a Cast restores the name.
    new_nodes: list[onnx.NodeProto] = []
    tail: list[onnx.NodeProto] = []
    renamed: dict[str, str] = {}
    for value in graph.output:
        name = value.name
        if produced.get(name) == FLOAT16 and keep_io_types:
            inner = names.fresh(f"{name}_fp16")
            renamed[name] = inner
            tail.append(_cast_node(names, inner, name, FLOAT))
        elif types.get(name) == FLOAT and not keep_io_types:
            value.type.tensor_type.elem_type = FLOAT16
            if produced.get(name) == FLOAT:
                inner = names.fresh(f"{name}_fp32")
                renamed[name] = inner
                tail.append(_cast_node(names, inner, name, FLOAT16))
    if not keep_io_types:
        for value in graph.input:
            if value.name in graph_inputs and types.get(value.name) == FLOAT:
                value.type.tensor_type.elem_type = FLOAT16

    casts: dict[tuple[str, int], str] = {}

    def source_for(name: str, want: int) -> str:
        name_now = renamed.get(name, name)
        have = produced.get(name, want)
        if have == want:
            return name_now
        if want == FLOAT16 and name in fp16_initializers:
            return fp16_initializers[name]
        key = (name, want)
        if key not in casts:
            suffix = "fp16" if want == FLOAT16 else "fp32"
            casts[key] = names.fresh(f"{name}_{suffix}")
            new_nodes.append(_cast_node(names, name_now, casts[key], want))
        return casts[key]

    for node in graph.node:
        for index, name in enumerate(node.input):
            if name:
                want = wanted(node, index)
                if want is not None:
                    node.input[index] = source_for(name, want)
                elif name in renamed:
                    node.input[index] = renamed[name]
        for index, name in enumerate(node.output):
            if name in renamed:
                node.output[index] = renamed[name]
        new_nodes.append(node)
    # Casts are appended right after their source's producer would be ideal; a topological sort is simpler.
    del graph.node[:]
    graph.node.extend(_topological_order([*new_nodes, *tail], graph))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def _convert_dtype_attributes(node: onnx.NodeProto) -> None:
    for attr in node.attribute:
        if attr.name == "dtype" and attr.i == FLOAT:
            attr.i = FLOAT16
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FLOAT:
            attr.t.CopyFrom(numpy_helper.from_array(_to_fp16_array(numpy_helper.to_array(attr.t)), attr.t.name))


def _topological_order(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """``nodes`` sorted so each node follows the producers of its inputs (stable for already sorted graphs)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    producers: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for out in node.output:
            producers[out] = index
    ordered: list[onnx.NodeProto] = []
    done = [False] * len(nodes)
    remaining = len(nodes)
    while remaining:
        progressed = False
        for index, node in enumerate(nodes):
            if done[index]:
                continue
            if all(name in available or name not in producers for name in node.input):
                ordered.append(node)
                available.update(node.output)
                done[index] = True
                remaining -= 1
                progressed = True
        if not progressed:
            raise UnsupportedError("the ONNX graph has a cycle or uses tensors nobody produces")
    return ordered


# ------------------------------------------------------------------------------------------------- INT8

@dataclass(frozen=True)
class _QuantizedInput:
    node: int
    index: int
    tensor: str


def _quantized_inputs(model: onnx.ModelProto) -> tuple[list[_QuantizedInput], list[_QuantizedInput]]:
    """(activation inputs, constant weight inputs) of the quantized ops, in graph order."""
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    constants |= {node.output[0] for node in graph.node if node.op_type == "Constant"}
    types = elem_types(model)
    activations: list[_QuantizedInput] = []
    weights: list[_QuantizedInput] = []
    for node_index, node in enumerate(graph.node):
        if node.op_type not in QUANTIZED_OPS or (node.domain not in ("", "ai.onnx")):
            continue
        for index in (0, 1):
            if index >= len(node.input) or not node.input[index]:
                continue
            name = node.input[index]
            if types.get(name) != FLOAT:
                continue
            entry = _QuantizedInput(node_index, index, name)
            if name in constants:
                if index == QUANTIZED_OPS[node.op_type]:
                    weights.append(entry)
            else:
                activations.append(entry)
    return activations, weights


def required_tensors(model: onnx.ModelProto) -> list[str]:
    """The activation tensors that need an INT8 scale: float inputs of Conv, ConvTranspose, Gemm and
    MatMul that are not constants, in graph order, without repeats."""
    activations, _ = _quantized_inputs(model)
    return list(dict.fromkeys(entry.tensor for entry in activations))


def check_scales(model: onnx.ModelProto, scales: Mapping[str, float], *, source: str = "the calibration cache") -> None:
    """Raise ``DataError`` when ``scales`` cannot be this graph's cache.

    A cache may leave some quantized tensors out (a QAT cache, 000 §8.1: those stay float, as TensorRT
    runs tensors without a scale in higher precision), but it must cover at least one, and a partial
    cache must not name tensors the graph lacks: both mean a cache of another model.
    """
    required = required_tensors(model)
    missing = [name for name in required if name not in scales]
    if not missing:
        return
    known = {value.name for value in model.graph.input} | {out for node in model.graph.node for out in node.output}
    foreign = [name for name in scales if name not in known]
    if len(missing) < len(required) and not foreign:
        return
    shown = ", ".join(f"'{name}'" for name in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    raise DataError(f"{source} has no scale for {len(missing)} tensor(s) this model quantizes: {shown}{more} "
                    "(was it calibrated for another model? recalibrate with tlt-export --data_type int8)")


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def weight_scales(weight: np.ndarray, axis: int | None) -> np.ndarray:
    """Symmetric int8 scales ``max|w| / 127``: one per slice along ``axis``, or a scalar for ``axis=None``."""
    magnitude = np.abs(weight.astype(np.float64))
    if axis is None:
        amax = np.asarray(magnitude.max() if magnitude.size else 0.0)
    else:
        other = tuple(i for i in range(weight.ndim) if i != axis)
        amax = magnitude.max(axis=other) if other else magnitude
    return np.maximum(amax / INT8_MAX, MIN_SCALE).astype(np.float32)


def _weight_axis(node: onnx.NodeProto, weight: np.ndarray) -> int | None:
    """The output-channel axis of a weight, or None when only a per-tensor scale is valid."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv":
        return 0 if weight.ndim >= 2 else None
    if node.op_type == "ConvTranspose":
        return 1 if weight.ndim >= 2 and int(attrs.get("group", 1)) == 1 else None
    if node.op_type == "Gemm":
        return 0 if int(attrs.get("transB", 0)) else 1
    if node.op_type == "MatMul":
        return weight.ndim - 1 if weight.ndim >= 2 else None
    return None


def insert_qdq(model: onnx.ModelProto, scales: Mapping[str, float], per_channel_weights: bool = True) -> onnx.ModelProto:
    """A copy of ``model`` with int8 QuantizeLinear/DequantizeLinear pairs on the inputs of its
    Conv, ConvTranspose, Gemm and MatMul nodes.

    ``scales`` maps activation tensor names to their scale (``amax / 127``, as a cal.bin stores it)
    and must pass :func:`check_scales`. A node whose activation input has no scale stays entirely float
    (weights included), as TensorRT runs it. Weights get symmetric scales from their own values, per
    output channel when ``per_channel_weights`` (needs opset 13).
    """
    opset = _opset(model)
    if opset < 10:
        raise UnsupportedError(f"INT8 needs QuantizeLinear (ONNX opset 10 or later); this model uses opset {opset}")
    check_scales(model, scales)
    per_channel = per_channel_weights and opset >= 13
    model = copy.deepcopy(model)
    graph = model.graph
    activations, weights = _quantized_inputs(model)
    float_nodes = {entry.node for entry in activations if entry.tensor not in scales}
    activations = [entry for entry in activations if entry.node not in float_nodes]
    weights = [entry for entry in weights if entry.node not in float_nodes]
    names = _Names(graph)
    new_initializers: list[onnx.TensorProto] = []
    inserted: dict[str, list[onnx.NodeProto]] = {}  # producer tensor -> Q/DQ nodes to place after it
    dequantized: dict[str, str] = {}
    zero_point = names.fresh("qdq_zero_point")
    new_initializers.append(numpy_helper.from_array(np.zeros((), np.int8), zero_point))

    def add_pair(tensor: str, scale_name: str, axis: int | None, label: str) -> str:
        quantized = names.fresh(f"{label}_QuantizeLinear")
        output = names.fresh(f"{label}_DequantizeLinear")
        extra: dict[str, Any] = {"axis": axis} if axis is not None else {}
        zp = zero_point
        if axis is not None:
            size = next(init for init in new_initializers if init.name == scale_name).dims[0]
            zp = names.fresh(f"{label}_zero_point")
            new_initializers.append(numpy_helper.from_array(np.zeros((size,), np.int8), zp))
        nodes = [
            helper.make_node("QuantizeLinear", [tensor, scale_name, zp], [quantized], name=quantized,
                             **extra),
            helper.make_node("DequantizeLinear", [quantized, scale_name, zp], [output], name=output,
                             **extra),
        ]
        inserted.setdefault(tensor, []).extend(nodes)
        return output

    for entry in activations:
        if entry.tensor not in dequantized:
            scale_value = max(float(scales[entry.tensor]), MIN_SCALE)
            scale_name = names.fresh(f"{entry.tensor}_scale")
            new_initializers.append(numpy_helper.from_array(np.asarray(scale_value, np.float32), scale_name))
            dequantized[entry.tensor] = add_pair(entry.tensor, scale_name, None, entry.tensor)
        graph.node[entry.node].input[entry.index] = dequantized[entry.tensor]

    values = {init.name: init for init in graph.initializer}
    constant_nodes = {node.output[0]: node for node in graph.node if node.op_type == "Constant"}
    for entry in weights:
        node = graph.node[entry.node]
        if entry.tensor in values:
            weight = numpy_helper.to_array(values[entry.tensor])
        else:
            weight = numpy_helper.to_array(helper.get_attribute_value(constant_nodes[entry.tensor].attribute[0]))
        axis = _weight_axis(node, weight) if per_channel else None
        scale = weight_scales(weight, axis)
        scale_name = names.fresh(f"{node.name or entry.tensor}_weight_scale")
        new_initializers.append(numpy_helper.from_array(scale if axis is not None else scale.reshape(()), scale_name))
        node.input[entry.index] = add_pair(entry.tensor, scale_name, axis, f"{node.name or entry.tensor}_weight")

    graph.initializer.extend(new_initializers)
    place_after_producers(graph, inserted)
    onnx.checker.check_model(model)
    return model


def place_after_producers(graph: onnx.GraphProto, inserted: Mapping[str, Sequence[onnx.NodeProto]]) -> None:
    """Add the nodes ``inserted[tensor]`` right after the node producing ``tensor`` (for graph inputs and
    constants: at the front), keeping the graph topologically sorted as ONNX requires."""
    produced_here = {out for node in graph.node for out in node.output}
    ordered: list[onnx.NodeProto] = []
    for tensor, nodes in inserted.items():
        if tensor not in produced_here:
            ordered.extend(nodes)
    for node in list(graph.node):
        ordered.append(node)
        for out in node.output:
            ordered.extend(inserted.get(out, []))
    del graph.node[:]
    graph.node.extend(ordered)
