"""The QAT graph rewrites: ReLU → ReLU6 on the float model, and the fake-quantized training twin.

Both are ``keras.models.clone_model`` passes that reuse the original layer objects (``clone_function``
returns the layer itself), so no weight is ever copied: the float model, the twin and the optimizer see
the same variables. Which layers are left alone:

* the *output layers*: the weighted layers whose result reaches a model output through weight-free,
  single-input layers only (DetectNet_v2's ``output_cov`` and ``output_bbox``). Their activations stay as
  they are (sigmoid, linear), their kernels and inputs are not quantized — they run in float (000 §8.1).
  The activation feeding them does become ReLU6, like every ReLU layer.
* activations other than ReLU (LeakyReLU, swish) stay as they are; a ReLU fused into a weighted layer's
  own ``activation`` argument too (the backbones use separate activation layers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras

from libtlt.qat.fake_quant import DEFAULT_MOMENTUM, ActivationQuantizer, QuantizedWeights
from libtlt.qat.metadata import METADATA_KEY

RELU6_MAX = 6.0


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return history.operation if history is not None else None


def _is_weighted(layer: Any) -> bool:
    return getattr(layer, "kernel", None) is not None and not isinstance(layer, keras.Model)


def _is_relu(layer: Any) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0
    if isinstance(layer, keras.layers.Activation):
        activation = layer.get_config().get("activation")
        return activation == "relu"
    return False


def output_layers(model: Any) -> set[str]:
    """Names of the weighted layers that produce the model's outputs (through weight-free single-input layers)."""
    found: set[str] = set()
    for tensor in model.outputs:
        layer = _producer(tensor)
        while layer is not None:
            if _is_weighted(layer):
                found.add(layer.name)
                break
            if layer.weights or len(layer._inbound_nodes) != 1:
                break
            inputs = layer._inbound_nodes[0].input_tensors
            if len(inputs) != 1:
                break
            layer = _producer(inputs[0])
    return found


def to_relu6(model: Any) -> Any:
    """``model`` with every ReLU activation layer replaced by ``ReLU(max_value=6)`` of the same name.

    The output layers' own activations (sigmoid, linear) are arguments of those layers and stay; a model
    without ReLU layers is returned unchanged. The new model shares every other layer with ``model``.
    """
    targets = {layer.name for layer in model.layers if _is_relu(layer)}
    if not targets:
        return model

    def clone(layer: Any) -> Any:
        if layer.name in targets:
            return keras.layers.ReLU(max_value=RELU6_MAX, name=layer.name, dtype=layer.dtype_policy)
        return layer

    converted = keras.models.clone_model(model, clone_function=clone)
    converted.name = model.name
    return converted


@dataclass
class QatModel:
    """A float model and its fake-quantized training twin (same layer objects, same variables)."""

    float_model: Any
    model: Any
    momentum: float = DEFAULT_MOMENTUM

    def quantizers(self) -> list[ActivationQuantizer]:
        return [layer for layer in self.model.layers if isinstance(layer, ActivationQuantizer)]

    def ranges(self) -> dict[str, float]:
        """The learned activation ranges: source layer name → amax (layers never trained are left out)."""
        found = {}
        for quantizer in self.quantizers():
            value = float(keras.ops.convert_to_numpy(quantizer.amax))
            if value > 0:
                found[quantizer.source] = value
        return found

    def metadata(self) -> dict[str, Any]:
        """What a saved model records of its QAT (``metadata[METADATA_KEY]``)."""
        return {"ranges": self.ranges(), "momentum": self.momentum, "activations": "int8 symmetric per tensor",
                "weights": "int8 symmetric per output channel",
                "float_layers": sorted(output_layers(self.float_model))}

    def saving_view(self, trained: Any) -> tuple[Any, dict[str, Any]]:
        """The model to save in place of ``trained`` (the twin), and the metadata to add.

        The float model is compiled with the twin's optimizer first, so a checkpoint still holds the
        optimizer state a resumed run needs.
        """
        optimizer = getattr(trained, "optimizer", None)
        if optimizer is not None and getattr(self.float_model, "optimizer", None) is not optimizer:
            self.float_model.compile(optimizer=optimizer)
        return self.float_model, {METADATA_KEY: self.metadata()}


def build_qat_model(model: Any, ranges: Mapping[str, float] | None = None, *,
                    momentum: float = DEFAULT_MOMENTUM) -> QatModel:
    """The QAT setup of the float ``model``: ReLU6 activations, then the fake-quantized twin.

    ``ranges`` (layer name → amax, e.g. from a checkpoint's metadata) start the activation ranges
    where a previous run left them.
    """
    float_model = to_relu6(model)
    skip = output_layers(float_model)
    known = dict(ranges or {})
    quantizers: dict[int, ActivationQuantizer] = {}

    def quantized_input(tensor: Any) -> Any:
        quantizer = quantizers.get(id(tensor))
        if quantizer is None:
            source = _producer(tensor)
            name = source.name if source is not None else str(tensor.name)
            quantizer = ActivationQuantizer(name, momentum=momentum, initial_amax=float(known.get(name, 0.0)),
                                            name=f"{name}_qat_quantizer")
            quantizers[id(tensor)] = quantizer
        return quantizer(tensor)

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_weighted(layer) or layer.name in skip or not args:
            return layer(*args, **kwargs)
        return QuantizedWeights(layer, name=f"{layer.name}_qat_weights")(quantized_input(args[0]), *args[1:],
                                                                          **kwargs)

    twin = keras.models.clone_model(float_model, clone_function=lambda layer: layer, call_function=call)
    twin.name = f"{float_model.name}_qat"
    return QatModel(float_model, twin, momentum)
