"""Keras → ONNX for tlt-export: tf2onnx with a dynamic-batch NCHW input ``input_1`` and the manuals'
output names, then a numerical check of the ONNX graph against the Keras model.

Nothing here is specific to an architecture: the output names come from the architecture's
``export_outputs`` and are matched to the Keras outputs by layer name (``output_cov/Sigmoid`` →
layer ``output_cov``), or by position when the names do not say. The tf2onnx helpers (in-place optimizers,
canonical names) live in ``libtlt.runtime.tf2onnx_convert``, which architectures that build their own export
graph use too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from libtlt.errors import ModelFileError, TltError
from libtlt.runtime.tf2onnx_convert import convert_keras

#: ONNX opset of exported graphs (per-channel Q/DQ for INT8 needs at least 13).
DEFAULT_OPSET = 17
INPUT_NAME = "input_1"
#: ``max|onnx - keras| <= ABS_TOLERANCE * max(1, max|keras|)`` must hold at export time.
ABS_TOLERANCE = 1e-4


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
    if len(shape) == 4 and isinstance(shape[1], int) and shape[2] is None and shape[3] is None:
        raise ModelFileError(f"the model takes images of any size (input shape {list(shape)}), so it cannot be "
                             "exported: engines need one fixed input size; retrain with a fixed one to deploy it")
    if len(shape) != 4 or any(not isinstance(d, int) or d < 1 for d in shape[1:]):
        raise ModelFileError(f"the model's input has shape {list(shape)}; tlt-export needs [N, C, H, W] with "
                             "fixed C, H and W")
    return int(shape[1]), int(shape[2]), int(shape[3])


def keras_to_onnx(model: Any, export_names: Sequence[str], *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Convert ``model`` to ONNX: input ``input_1`` [N, C, H, W] float32, outputs ``export_names`` in that order
    (the conversion itself is ``libtlt.runtime.tf2onnx_convert.convert_keras``)."""
    input_chw(model)
    order = match_outputs(keras_output_layers(model), export_names)
    keras_order = [""] * len(export_names)
    for export_name, index in zip(export_names, order, strict=True):
        keras_order[index] = export_name
    proto = convert_keras(model, INPUT_NAME, keras_order, opset=opset)
    graph = proto.graph
    by_name = {value.name: value for value in graph.output}
    ordered = [by_name[name] for name in export_names]
    del graph.output[:]
    graph.output.extend(ordered)
    proto.producer_name = "tlt-export"
    return proto


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
