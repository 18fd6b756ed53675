"""Fake quantization for QAT: the int8 rounding TensorRT will apply, simulated in float during training.

``fake_quant(x, amax)`` maps ``x`` to the nearest of the 255 values ``k · amax / 127`` (``k`` in
``-127..127``, symmetric, zero point 0: what a cal.bin scale ``amax / 127`` means to TensorRT and to the
Q/DQ graphs of ``libtlt.runtime.onnx_precision``). Its gradient is the straight-through estimator: 1
where ``|x| <= amax``, 0 where the value was clipped, so the network learns to live with the rounding and
to stay inside the range.

Layers (registered for deserialization so a twin model can be cloned or inspected, though tlt-train never
saves them — see :mod:`libtlt.qat`):

``ActivationQuantizer``
    Fake-quantizes its input with a range learned during training: ``amax`` is a moving average of the
    batches' ``max|x|`` (the first batch sets it), frozen at inference.
``QuantizedWeights``
    Calls a weighted layer (Conv2D, DepthwiseConv2D, Conv2DTranspose, Dense ...) with its kernel
    fake-quantized per output channel (``max|w| / 127``, the scales ``insert_qdq`` derives from the exported
    weights), without copying the layer: the kernel variable is read through a ``keras.StatelessScope``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

INT8_MAX = 127.0
#: Smallest range used for rounding: a tensor that was zero so far still has a valid scale.
MIN_AMAX = 1e-8
#: Moving-average momentum of the activation ranges (the weight of the running value per batch).
DEFAULT_MOMENTUM = 0.99


def fake_quant(x: Any, amax: Any) -> Any:
    """``x`` rounded to symmetric int8 steps of ``amax / 127`` and clipped to ``[-amax, amax]``.

    ``amax`` broadcasts against ``x`` (a scalar, or one value per channel). Gradient: straight through
    inside the range, zero outside.
    """
    amax = ops.maximum(ops.cast(amax, x.dtype), ops.cast(MIN_AMAX, x.dtype))
    scale = amax / INT8_MAX
    clipped = ops.clip(x, -amax, amax)
    rounded = ops.round(clipped / scale) * scale
    return clipped + ops.stop_gradient(rounded - clipped)


def weight_reduce_axes(layer: Any, ndim: int) -> tuple[int, ...]:
    """Axes of ``layer``'s kernel to take ``max|w|`` over: all but the output-channel axes.

    Keras kernels put output channels last (``HWIO``, ``(in, out)``), except ``Conv*Transpose``
    (``H, W, out, in``: axis -2) and depthwise convolutions (``H, W, in, multiplier``: every
    ``in × multiplier`` slice is one output channel).
    """
    name = type(layer).__name__
    if "Depthwise" in name:
        return tuple(range(ndim - 2))
    if "Transpose" in name:
        return tuple(i for i in range(ndim) if i != ndim - 2)
    return tuple(range(ndim - 1))


def fake_quant_weights(kernel: Any, axes: tuple[int, ...]) -> Any:
    """``kernel`` fake-quantized with one scale ``max|w| / 127`` per slice not in ``axes``."""
    amax = ops.stop_gradient(ops.max(ops.abs(kernel), axis=axes, keepdims=True))
    return fake_quant(kernel, amax)


@keras.saving.register_keras_serializable(package="tlt")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantizes the tensor ``source`` (a Keras layer name) with a moving-average range.

    ``amax`` is a non-trainable variable: 0 until the first training batch (the input passes through
    unchanged), then ``momentum · amax + (1 - momentum) · max|x|`` after every training batch.
    """

    def __init__(self, source: str, momentum: float = DEFAULT_MOMENTUM, initial_amax: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), not {momentum}")
        self.source = source
        self.momentum = float(momentum)
        self.initial_amax = float(initial_amax)
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        self.amax = self.add_weight(name="amax", shape=(), initializer=keras.initializers.Constant(self.initial_amax),
                                    trainable=False, aggregation="mean")
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        amax = ops.cast(self.amax, inputs.dtype)
        if training:
            batch = ops.stop_gradient(ops.max(ops.abs(inputs)))
            running = self.momentum * amax + (1.0 - self.momentum) * batch
            amax = ops.where(amax > 0, running, batch)
            self.amax.assign(ops.cast(amax, self.amax.dtype))
        return ops.where(amax > 0, fake_quant(inputs, amax), inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "source": self.source, "momentum": self.momentum,
                "initial_amax": self.initial_amax}


@keras.saving.register_keras_serializable(package="tlt")
class QuantizedWeights(keras.layers.Layer):
    """Runs ``layer`` (already built) with its ``kernel`` fake-quantized per output channel.

    The wrapped layer is the original object: its variables are shared with every other model that
    uses it, so the float model sees what the QAT twin trains.
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape: Any) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)
        if getattr(self.layer, "kernel", None) is None:
            raise ValueError(f"layer {self.layer.name} has no kernel to quantize")
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        kernel = self.layer.kernel
        quantized = fake_quant_weights(kernel.value, weight_reduce_axes(self.layer, len(kernel.shape)))
        with keras.StatelessScope(state_mapping=[(kernel, quantized)]):
            return self.layer(inputs, training=training)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": keras.saving.serialize_keras_object(self.layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> QuantizedWeights:
        inner = keras.saving.deserialize_keras_object(config.pop("layer"))
        return cls(inner, **config)
