"""Shared building blocks: a :class:`Builder` that creates named layers with the backbone options.

Every backbone family builds through one :class:`Builder`, which applies the options common to all
of them (``use_bias``, ``use_batch_norm``, regularizers, activation), records every layer it creates
(so freezing can be applied right after the build) and collects the named feature levels
(``P<n>`` = the last tensor at stride ``2**n``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

#: ``build(name, x, builder, all_projections=..., use_pooling=..., dropout=...)`` of one family.
BuildFn = Callable[..., None]


@dataclass(frozen=True)
class Family:
    """One backbone family: its backbone names, builder and block layout."""

    #: Backbone names this family builds (``resnet18``, ...).
    names: tuple[str, ...]
    #: ``arch`` in :data:`libtlt.spec.backbones.BACKBONES` whose freeze-block IDs apply.
    arch: str
    build: BuildFn
    #: ``block_of(name, layer_name)``: freeze-block ID of a layer, ``None`` outside every block.
    block_of: Callable[[str, str], int | None]
    #: Freeze-block IDs where the spec table documents none (SqueezeNet); ``None``: use the table.
    freeze_blocks: tuple[int, ...] | None = None
    #: Batch normalization is part of the architecture: ``use_batch_norm=False`` does not remove it.
    always_batch_norm: bool = False
    #: The activation when the caller names none. MobileNet's is ReLU6, as in the papers and Keras. TLT's
    #: classification builder leaves its MobileNet templates at their default, a plain ReLU; we do not follow
    #: it: with a plain ReLU the inverted residuals' activations grow without bound and training at the
    #: classification samples' learning rates stalls (issue 12: 0.35-0.52 against 0.78 training accuracy).
    activation: str = "relu"
    #: Kernel initializer of the convolutions (Keras name or config), ``None`` for Keras' default
    #: (Glorot uniform). EfficientNet's is He-style fan-out scaling (see ``efficientnet``).
    kernel_initializer: Any = None


@dataclass
class Builder:
    """Creates the layers of one backbone with the common options and records them."""

    use_bias: bool = False
    use_batch_norm: bool = True
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    activation: str = "relu"
    kernel_initializer: Any = None
    #: Build TLT's detector template where it differs from the paper (ResNet: see ``resnet``).
    tlt_template: bool = False
    layers: list[keras.layers.Layer] = field(default_factory=list)
    levels: dict[int, Any] = field(default_factory=dict)

    def apply(self, layer: keras.layers.Layer, inputs: Any) -> Any:
        """Record ``layer`` and call it on ``inputs``."""
        self.layers.append(layer)
        return layer(inputs)

    def _initializer(self) -> Any:
        """A fresh kernel initializer per layer (Keras warns when one instance serves several)."""
        if self.kernel_initializer is None:
            return "glorot_uniform"
        return keras.initializers.get(self.kernel_initializer)

    def level(self, x: Any, stride: int) -> Any:
        """Mark ``x`` as the current feature map at ``stride`` (a power of two; stride 1 is not a level)."""
        n = stride.bit_length() - 1
        if stride != 1 << n:
            raise ValueError(f"stride {stride} is not a power of two")
        if n >= 1:
            self.levels[n] = x
        return x

    def feature_levels(self) -> dict[str, Any]:
        return {f"P{n}": self.levels[n] for n in sorted(self.levels)}

    # --- weighted layers ---------------------------------------------------------------------

    def conv(self, x: Any, filters: int, kernel: int, name: str, *, strides: int = 1,
             use_bias: bool | None = None) -> Any:
        """``Conv2D`` with "same" padding; ``use_bias`` defaults to the backbone option."""
        bias = self.use_bias if use_bias is None else use_bias
        layer = keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=bias, name=name,
            kernel_initializer=self._initializer(), kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer if bias else None,
        )
        return self.apply(layer, x)

    def depthwise(self, x: Any, kernel: int, name: str, *, strides: int = 1) -> Any:
        """``DepthwiseConv2D`` (multiplier 1) with "same" padding."""
        layer = keras.layers.DepthwiseConv2D(
            kernel, strides=strides, padding="same", use_bias=self.use_bias, name=name,
            depthwise_initializer=self._initializer(), depthwise_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer if self.use_bias else None,
        )
        return self.apply(layer, x)

    def bn(self, x: Any, name: str) -> Any:
        """``BatchNormalization`` over channels (last axis); identity with ``use_batch_norm=False``."""
        if not self.use_batch_norm:
            return x
        return self.apply(keras.layers.BatchNormalization(axis=-1, name=name), x)

    # --- parameter-free layers ---------------------------------------------------------------

    def act(self, x: Any, name: str, activation: str | None = None) -> Any:
        """The activation (``relu6`` and ``leaky_relu`` as ReLU/LeakyReLU layers)."""
        kind = activation or self.activation
        layer: keras.layers.Layer
        if kind == "relu6":
            layer = keras.layers.ReLU(max_value=6.0, name=name)
        elif kind == "leaky_relu":
            layer = keras.layers.LeakyReLU(negative_slope=0.1, name=name)
        else:
            layer = keras.layers.Activation(kind, name=name)
        return self.apply(layer, x)

    def conv_bn_act(self, x: Any, filters: int, kernel: int, *, conv: str, bn: str, act: str,
                    strides: int = 1, activation: str | None = None) -> Any:
        x = self.conv(x, filters, kernel, conv, strides=strides)
        x = self.bn(x, bn)
        return self.act(x, act, activation)

    def max_pool(self, x: Any, name: str, *, size: int = 2, strides: int = 2) -> Any:
        return self.apply(keras.layers.MaxPooling2D(size, strides=strides, padding="same", name=name), x)

    def add(self, inputs: list[Any], name: str) -> Any:
        return self.apply(keras.layers.Add(name=name), inputs)

    def concat(self, inputs: list[Any], name: str) -> Any:
        return self.apply(keras.layers.Concatenate(axis=-1, name=name), inputs)

    def dropout(self, x: Any, rate: float, name: str, *, noise_shape: tuple[int | None, ...] | None = None) -> Any:
        """``Dropout`` when ``rate > 0``; identity otherwise (no layer)."""
        if rate <= 0.0:
            return x
        return self.apply(keras.layers.Dropout(rate, noise_shape=noise_shape, name=name), x)
