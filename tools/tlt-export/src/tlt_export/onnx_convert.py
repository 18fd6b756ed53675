"""Keras → ONNX for tlt-export: tf2onnx with a dynamic-batch NCHW input ``input_1`` and the manuals'
output names, then a numerical check of the ONNX graph against the Keras model.

Nothing here is specific to an architecture: the output names come from the architecture's
``export_outputs`` and are matched to the Keras outputs by layer name (``output_cov/Sigmoid`` →
layer ``output_cov``), or by position when the names do not say.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from libtlt.errors import ModelFileError, TltError

#: ONNX opset of exported graphs (per-channel Q/DQ for INT8 needs at least 13).
DEFAULT_OPSET = 17
INPUT_NAME = "input_1"
BATCH_DIM = "N"
#: ``max|onnx - keras| <= ABS_TOLERANCE * max(1, max|keras|)`` must hold at export time.
ABS_TOLERANCE = 1e-4
CATCH_ERRORS_VARIABLE = "TF2ONNX_CATCH_ERRORS"


def keras_output_layers(model: Any) -> list[str]:
    """Names of the layers producing the Keras model's outputs, in output order."""
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    names = []
    for tensor in outputs:
        history = getattr(tensor, "_keras_history", None)
        names.append(str(history.operation.name) if history is not None else str(tensor.name))
    return names


def match_outputs(layer_names: Sequence[str], export_names: Sequence[str]) -> list[int]:
    """For each export name, the index of the Keras output it names.

    ``output_cov/Sigmoid`` names the output of layer ``output_cov``; if the layer names do not
    identify every output, the order of ``export_names`` is the order of the Keras outputs.
    """
    if len(layer_names) != len(export_names):
        raise ModelFileError(f"the architecture exports {len(export_names)} output(s) ({', '.join(export_names)}) "
                             f"but the model has {len(layer_names)} ({', '.join(layer_names)})")
    prefixes = [name.split("/")[0] for name in export_names]
    if sorted(prefixes) == sorted(layer_names) and len(set(prefixes)) == len(prefixes):
        return [list(layer_names).index(prefix) for prefix in prefixes]
    return list(range(len(export_names)))


def input_chw(model: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` of the Keras model's single NCHW input."""
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    if len(inputs) != 1:
        raise ModelFileError(f"tlt-export handles models with one input; this one has {len(inputs)}")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
        raise ModelFileError(f"the model's input has shape {list(shape)}; tlt-export needs [N, C, H, W] with "
                             "fixed C, H and W")
    return int(shape[1]), int(shape[2]), int(shape[3])


def keras_to_onnx(model: Any, export_names: Sequence[str], *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Convert ``model`` to ONNX: input ``input_1`` [N, C, H, W] float32, outputs ``export_names``."""
    import tensorflow as tf
    import tf2onnx

    channels, height, width = input_chw(model)
    order = match_outputs(keras_output_layers(model), export_names)
    signature = (tf.TensorSpec((None, channels, height, width), tf.float32, name=INPUT_NAME),)
    try:
        with _optimizers_without_graph_copies():
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as err:  # tf2onnx raises many types for graphs it cannot convert
        raise ModelFileError(f"tf2onnx cannot convert the model: {str(err).splitlines()[0] if str(err) else err!r}"
                             ) from err
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != len(export_names):
        raise ModelFileError(f"the converted graph has {len(graph.input)} input(s) and {len(graph.output)} "
                             f"output(s); expected 1 and {len(export_names)}")
    _rename_tensor(graph, graph.input[0].name, INPUT_NAME)
    current = [value.name for value in graph.output]
    for export_name, index in zip(export_names, order, strict=True):
        _rename_tensor(graph, current[index], export_name)
    by_name = {value.name: value for value in graph.output}
    ordered = [by_name[name] for name in export_names]
    del graph.output[:]
    graph.output.extend(ordered)
    canonical_names(graph)
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM
    proto.producer_name = "tlt-export"
    onnx.checker.check_model(proto)
    return proto


@contextlib.contextmanager
def _optimizers_without_graph_copies() -> Iterator[None]:
    """Run tf2onnx's graph optimizers in place.

    By default tf2onnx deep-copies the whole graph, weights included, before each optimizer so that it can fall
    back when one fails; the copies pile up faster than they are freed, and a DarkNet53 YOLOv3 (62 M weights)
    peaked above 21 GiB and was killed. Its switch is the ``TF2ONNX_CATCH_ERRORS`` variable, read at conversion
    time (tf2onnx 1.17 turns catching off whenever it is set). Peak memory measured on YOLOv3 at 1248x384:
    DarkNet19 15.5 → 8.2 GiB, DarkNet53 OOM → 12.9 GiB. An optimizer that fails now fails the export with its
    message instead of being skipped silently.
    """
    previous = os.environ.get(CATCH_ERRORS_VARIABLE)
    os.environ[CATCH_ERRORS_VARIABLE] = "FALSE"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(CATCH_ERRORS_VARIABLE, None)
        else:
            os.environ[CATCH_ERRORS_VARIABLE] = previous


def canonical_order(graph: onnx.GraphProto) -> None:
    """Sort the nodes topologically with ties broken by structure (inputs, op type, attributes, weights).

    tf2onnx's own order depends on the names it generated, and those depend on how many conversions
    ran before in the process; this order depends only on the graph.
    """
    import hashlib
    import heapq

    ids: dict[str, tuple[Any, ...]] = {value.name: ("input", value.name) for value in graph.input}
    for init in graph.initializer:
        content = numpy_helper.to_array(init)
        ids[init.name] = ("weight", hashlib.sha256(f"{content.dtype}{content.shape}".encode() +
                                                   content.tobytes()).hexdigest())
    nodes = list(graph.node)
    missing = [sum(1 for name in node.input if name and name not in ids) for node in nodes]
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            if name and name not in ids:
                consumers.setdefault(name, []).append(index)

    def key(index: int) -> tuple[Any, ...]:
        node = nodes[index]
        attrs = b"".join(a.SerializeToString(deterministic=True) for a in sorted(node.attribute, key=lambda a: a.name))
        return (tuple(ids[name] if name else ("none",) for name in node.input), node.op_type, node.domain,
                hashlib.sha256(attrs).hexdigest(), index)

    ready = [key(i) for i, count in enumerate(missing) if count == 0]
    heapq.heapify(ready)
    ordered: list[onnx.NodeProto] = []
    while ready:
        index = heapq.heappop(ready)[-1]
        position = len(ordered)
        ordered.append(nodes[index])
        for out_index, name in enumerate(nodes[index].output):
            if not name:
                continue
            ids[name] = ("node", position, out_index)
            for consumer in consumers.get(name, []):
                missing[consumer] -= 1
                if missing[consumer] == 0:
                    heapq.heappush(ready, key(consumer))
    if len(ordered) != len(nodes):
        raise ModelFileError("the converted graph is not acyclic")
    del graph.node[:]
    graph.node.extend(ordered)


def canonical_names(graph: onnx.GraphProto) -> None:
    """Order the nodes canonically and name every intermediate tensor and node ``<OpType>_<position>``.

    tf2onnx numbers the tensors it creates with a process-wide counter, so converting the same model
    twice gives different names; the cal.bin and QAT scales are keyed by tensor name and must not
    depend on how many conversions ran before. Graph inputs, outputs and initializers keep their names.
    """
    canonical_order(graph)
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {i.name for i in graph.initializer}
    mapping: dict[str, str] = {}
    for position, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{position}"
        for index, name in enumerate(node.output):
            if name and name not in keep:
                mapping[name] = node.name if index == 0 else f"{node.name}_{index}"
    taken = keep & set(mapping.values())
    if taken:
        raise ModelFileError(f"cannot give the graph's tensors canonical names: {', '.join(sorted(taken))} exist")
    for node in graph.node:
        node.input[:] = [mapping.get(name, name) for name in node.input]
        node.output[:] = [mapping.get(name, name) for name in node.output]
    kept_info = [value for value in graph.value_info if value.name in mapping]
    for value in kept_info:
        value.name = mapping[value.name]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)


def _rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    if old == new:
        return
    existing = {out for node in graph.node for out in node.output} | {v.name for v in graph.input} | \
        {init.name for init in graph.initializer}
    if new in existing:
        raise ModelFileError(f"cannot name a graph tensor '{new}': the converted graph already has one")
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new


def keras_outputs(model: Any, batch: np.ndarray, export_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The Keras model's outputs on ``batch`` (inference mode), keyed by export name."""
    results = model(batch, training=False)
    results = list(results) if isinstance(results, (list, tuple)) else [results]
    order = match_outputs(keras_output_layers(model), export_names)
    return {name: np.asarray(results[index]) for name, index in zip(export_names, order, strict=True)}


def max_differences(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict[str, float]:
    """``max |reference - other|`` per output name."""
    return {name: float(np.max(np.abs(np.asarray(other[name], np.float64) - np.asarray(value, np.float64))))
            for name, value in reference.items()}


def check_conversion(model: Any, onnx_model: onnx.ModelProto, batch: np.ndarray,
                     export_names: Sequence[str]) -> float:
    """Run ``batch`` through Keras and onnxruntime; returns the largest difference or raises ``TltError``."""
    from libtlt.runtime.onnxruntime_backend import OrtModel

    reference = keras_outputs(model, batch, export_names)
    converted = OrtModel(onnx_model.SerializeToString()).run({INPUT_NAME: batch})
    worst = 0.0
    for name, diff in max_differences(reference, converted).items():
        scale = max(1.0, float(np.max(np.abs(reference[name]))))
        if not diff <= ABS_TOLERANCE * scale:
            raise TltError(f"the ONNX graph differs from the Keras model by {diff:.3g} on '{name}' (tolerance "
                           f"{ABS_TOLERANCE * scale:.3g}): the conversion is wrong, nothing was written")
        worst = max(worst, diff)
    return worst
