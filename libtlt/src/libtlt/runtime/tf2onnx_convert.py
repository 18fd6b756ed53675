"""tf2onnx conversion of Keras models with reproducible tensor names, shared by tlt-export and by architectures
whose export graph is stitched from several converted sub-models (FasterRCNN's ``export.to_onnx``).

Why here: tlt-export converted its one Keras model itself, but an architecture that builds its own graph needs the
same conversion and libtlt must not import a tool. TensorFlow and tf2onnx are imported lazily (``libtlt.runtime``
stays light).

* ``convert_keras``: one NCHW image-like input with a dynamic batch, outputs renamed in the Keras output order,
  names made canonical so that converting the same model twice gives the same graph;
* ``optimizers_without_graph_copies``: tf2onnx's optimizers in place (memory, see its docstring);
* ``canonical_order`` / ``canonical_names`` / ``rename_tensor``: graph surgery those need.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import os
from collections.abc import Iterator, Sequence
from typing import Any

import onnx
from onnx import numpy_helper

from libtlt.errors import ModelFileError

#: Name given to a dynamic leading (batch) dimension.
BATCH_DIM = "N"
CATCH_ERRORS_VARIABLE = "TF2ONNX_CATCH_ERRORS"


@contextlib.contextmanager
def optimizers_without_graph_copies() -> Iterator[None]:
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


def rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` everywhere in ``graph``; ``new`` must not exist yet."""
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


def convert_keras(model: Any, input_name: str, output_names: Sequence[str], *, opset: int) -> onnx.ModelProto:
    """``model`` (one input ``[N, ...]`` with static trailing dims) → ONNX with input ``input_name`` (batch
    ``N``) and outputs ``output_names`` in the Keras output order, canonical names, checked."""
    import tensorflow as tf
    import tf2onnx

    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    if len(inputs) != 1:
        raise ModelFileError(f"tf2onnx conversion here handles models with one input; this one has {len(inputs)}")
    shape = tuple(inputs[0].shape)[1:]
    if any(not isinstance(d, int) for d in shape):
        raise ModelFileError(f"the model's input has shape {list(inputs[0].shape)}; its trailing dims must be fixed")
    signature = (tf.TensorSpec((None, *shape), tf.float32, name=input_name),)
    try:
        with optimizers_without_graph_copies():
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as err:  # tf2onnx raises many types for graphs it cannot convert
        raise ModelFileError(f"tf2onnx cannot convert the model: {str(err).splitlines()[0] if str(err) else err!r}"
                             ) from err
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != len(output_names):
        raise ModelFileError(f"the converted graph has {len(graph.input)} input(s) and {len(graph.output)} "
                             f"output(s); expected 1 and {len(output_names)}")
    rename_tensor(graph, graph.input[0].name, input_name)
    current = [value.name for value in graph.output]
    interim = [f"__tlt_output_{index}" for index in range(len(current))]  # a new name may be another's old one
    for old, new in [*zip(current, interim, strict=True), *zip(interim, output_names, strict=True)]:
        rename_tensor(graph, old, new)
    canonical_names(graph)
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM
    onnx.checker.check_model(proto)
    return proto


def canonical_initializers(graph: onnx.GraphProto) -> None:
    """Name each initializer after its first consumer (``Conv_3_input1``): tf2onnx names constants with a
    process-wide counter and under tf.function scopes, so without this a model exported twice, or loaded from disk,
    would give another graph. The nodes already have canonical names (``tf2onnx_convert.canonical_names``)."""
    initializers = {init.name: init for init in graph.initializer}
    mapping: dict[str, str] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in initializers and name not in mapping:
                mapping[name] = f"{node.name}_input{index}"
    ordered = []
    for old, new in mapping.items():  # in order of first use; unused constants are dropped
        init = onnx.TensorProto()
        init.CopyFrom(initializers[old])
        init.name = new
        ordered.append(init)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    for node in graph.node:
        node.input[:] = [mapping.get(name, name) for name in node.input]


def prefixed(graph: onnx.GraphProto, prefix: str, renames: dict[str, str]) -> None:
    """Give every node, tensor and initializer of ``graph`` the ``prefix``, except the names in ``renames``,
    which become their mapped names (the stitched graph's tensors)."""
    names = {out for node in graph.node for out in node.output if out} | {i.name for i in graph.initializer}
    names |= {v.name for v in graph.input} | {v.name for v in graph.output} | {v.name for v in graph.value_info}
    mapping = {name: renames.get(name, f"{prefix}{name}") for name in names}
    for node in graph.node:
        node.name = f"{prefix}{node.name}"
        node.input[:] = [mapping.get(name, name) if name else name for name in node.input]
        node.output[:] = [mapping.get(name, name) if name else name for name in node.output]
    for init in graph.initializer:
        init.name = mapping[init.name]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = mapping[value.name]


def check_standard(graph: onnx.GraphProto, what: str) -> None:
    custom = sorted({f"{n.domain}:{n.op_type}" for n in graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise ValueError(f"the {what} converted to non-standard ops {', '.join(custom)}")
