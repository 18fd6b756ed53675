"""QAT ranges by Keras layer name → scales by the exported ONNX graph's tensor names.

tlt-train stores the learned ranges by Keras layer name (``metadata["qat"]["ranges"]``, see
``libtlt.qat``), because the ONNX tensor names only exist once tf2onnx has converted the model. The
translation matches *values*, not names: on the check batch, each tensor the INT8 graph quantizes (the
activation inputs of Conv/Gemm/MatMul, followed back through layout-only ops such as Transpose) is compared
with the outputs of the Keras layers that have a range. Layout changes reorder values but keep their
distribution, so two tensors match when their sizes and sorted values (sampled at fixed quantiles) agree.
This holds whatever names, transposes or node order tf2onnx produced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from libtlt.log import get_logger

logger = get_logger("tlt_export")

#: Ops that move values without changing them: a quantized tensor's amax is its source's.
LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze"})
QUANTILES = np.linspace(0.0, 1.0, 65)
RELATIVE_TOLERANCE = 1e-3


def _sources(model: onnx.ModelProto, tensors: list[str]) -> dict[str, str]:
    """For each tensor, the tensor it copies values from (through ``LAYOUT_OPS``), or itself."""
    producers = {out: node for node in model.graph.node for out in node.output}
    found = {}
    for tensor in tensors:
        source = tensor
        while source in producers and producers[source].op_type in LAYOUT_OPS:
            source = producers[source].input[0]
        found[tensor] = source
    return found


def _fingerprint(values: np.ndarray) -> tuple[int, np.ndarray]:
    flat = np.asarray(values, np.float64).ravel()
    return flat.size, (np.quantile(flat, QUANTILES) if flat.size else np.zeros_like(QUANTILES))


def _same(a: tuple[int, np.ndarray], b: tuple[int, np.ndarray]) -> bool:
    if a[0] != b[0]:
        return False
    scale = max(float(np.max(np.abs(a[1]))), float(np.max(np.abs(b[1]))), 1e-6)
    return bool(np.all(np.abs(a[1] - b[1]) <= RELATIVE_TOLERANCE * scale))


def _keras_values(keras_model: Any, names: list[str], batch: np.ndarray) -> dict[str, np.ndarray]:
    import keras

    outputs = []
    for name in names:
        layer = keras_model.get_layer(name)
        outputs.append(layer.output)
    probe = keras.Model(keras_model.inputs, outputs)
    values = probe(batch, training=False)
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    return {name: np.asarray(value) for name, value in zip(names, values, strict=True)}


def _onnx_values(model: onnx.ModelProto, tensors: list[str], input_name: str,
                 batch: np.ndarray) -> dict[str, np.ndarray]:
    from libtlt.runtime.onnxruntime_backend import OrtModel

    probe = copy.deepcopy(model)
    present = {value.name for value in probe.graph.output}
    inputs = {value.name for value in probe.graph.input}
    for name in tensors:
        if name not in present and name not in inputs:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    results = OrtModel(probe.SerializeToString()).run({input_name: batch})
    values = {name: np.asarray(results[name]) for name in tensors if name in results}
    if input_name in tensors:
        values[input_name] = batch
    return values


def onnx_scales(keras_model: Any, onnx_model: onnx.ModelProto, ranges: Mapping[str, float], batch: np.ndarray,
                *, input_name: str = "input_1") -> dict[str, float]:
    """amax per ONNX tensor name for the tensors ``insert_qdq`` quantizes whose source has a QAT range.

    Both the quantized tensor and its layout-only source get the range. Layers whose range matches no
    quantized tensor are logged and left out.
    """
    from libtlt.runtime.onnx_precision import required_tensors

    names = [name for name in ranges if _has_layer(keras_model, name)]
    if not names:
        return {}
    keras_prints = {name: _fingerprint(value) for name, value in _keras_values(keras_model, names, batch).items()}
    required = required_tensors(onnx_model)
    sources = _sources(onnx_model, required)
    onnx_values = _onnx_values(onnx_model, sorted(set(sources.values())), input_name, batch)
    scales: dict[str, float] = {}
    used: set[str] = set()
    for tensor in required:
        source = sources[tensor]
        if source not in onnx_values:
            continue
        fingerprint = _fingerprint(onnx_values[source])
        match = next((name for name in names if _same(keras_prints[name], fingerprint)), None)
        if match is None:
            continue
        scales[tensor] = scales[source] = float(ranges[match])
        used.add(match)
    unused = [name for name in names if name not in used]
    if unused:
        logger.info("QAT ranges of %d layer(s) match no quantized tensor of the exported graph: %s", len(unused),
                    ", ".join(unused[:8]))
    return scales


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True
