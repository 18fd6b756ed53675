"""EfficientNet B0-B5 (Tan & Le 2019) without the classifier, with TLT's (Keras') layer names.

B0: stem ``stem_conv`` 3x3/2 (32) + ``stem_bn`` + ``stem_activation``; seven stages of MBConv
blocks ``block<i><a,b,...>`` (expansion, kernel, stride, output channels, repeats):
(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
(6, 5, 2, 192, 4), (6, 3, 1, 320, 1); then ``top_conv`` 1x1 (1280) + ``top_bn`` + ``top_activation``.
A block is ``_expand_conv`` 1x1 (not for expansion 1), ``_dwconv`` (+ ``_bn``, ``_activation``),
squeeze-and-excitation (``_se_squeeze`` global average, ``_se_reduce`` 1x1 to a quarter of the
block's input channels, swish, ``_se_expand`` 1x1, sigmoid, ``_se_excite`` multiply),
``_project_conv`` 1x1 linear (+ ``_project_bn``); stride-1 blocks with equal channels add their input
after stochastic depth (``_drop``: Dropout of whole samples, rate 0.2 x block index / blocks).
B1-B5 scale widths and depths by (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2): channels
rounded to multiples of 8 (never below 90 %), repeats rounded up. The activation is swish.

Levels: P1 stage 1, P2 stage 2, P3 stage 3, P4 stage 5, P5 top. Freeze blocks 0-7: 0 = stem,
``i`` = stage ``i``; the top convolution joins block 7.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import keras

from libtlt.backbones.blocks import Builder, Family

#: Variant -> (width coefficient, depth coefficient).
SCALING = {"b0": (1.0, 1.0), "b1": (1.0, 1.1), "b2": (1.1, 1.2), "b3": (1.2, 1.4), "b4": (1.4, 1.8),
           "b5": (1.6, 2.2)}
NAMES = tuple(f"efficientnet_{variant}" for variant in SCALING)
#: B0 stages: (expansion, kernel, stride, input channels, output channels, repeats).
STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))
SE_RATIO = 0.25
DROP_CONNECT_RATE = 0.2
SWISH = "swish"

_STAGE_LAYER = re.compile(r"block([1-7])[a-z]+_")


def round_filters(filters: int, width: float) -> int:
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def _mbconv(b: Builder, x: Any, p: str, expansion: int, kernel: int, strides: int, filters: int, se_filters: int,
            drop_rate: float) -> Any:
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = b.conv_bn_act(y, in_channels * expansion, 1, conv=f"{p}_expand_conv", bn=f"{p}_expand_bn",
                          act=f"{p}_expand_activation", activation=SWISH)
    y = b.depthwise(y, kernel, f"{p}_dwconv", strides=strides)
    y = b.act(b.bn(y, f"{p}_bn"), f"{p}_activation", SWISH)
    se = b.apply(keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{p}_se_squeeze"), y)
    se = b.act(b.conv(se, se_filters, 1, f"{p}_se_reduce", use_bias=True), f"{p}_se_reduce_activation", SWISH)
    se = b.act(b.conv(se, y.shape[-1], 1, f"{p}_se_expand", use_bias=True), f"{p}_se_expand_activation",
               "sigmoid")
    y = b.apply(keras.layers.Multiply(name=f"{p}_se_excite"), [y, se])
    y = b.bn(b.conv(y, filters, 1, f"{p}_project_conv"), f"{p}_project_bn")
    if strides != 1 or in_channels != filters:
        return y
    y = b.dropout(y, drop_rate, f"{p}_drop", noise_shape=(None, 1, 1, 1))
    return b.add([y, x], f"{p}_add")


def build(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    width, depth = SCALING[name.removeprefix("efficientnet_")]
    x = b.conv_bn_act(x, round_filters(32, width), 3, strides=2, conv="stem_conv", bn="stem_bn",
                      act="stem_activation", activation=SWISH)
    repeats = [math.ceil(depth * stage[-1]) for stage in STAGES]
    total, index, stride = sum(repeats), 0, 2
    for i, ((expansion, kernel, first_stride, in_filters, out_filters, _), count) in enumerate(
            zip(STAGES, repeats, strict=True), start=1):
        in_filters, out_filters = round_filters(in_filters, width), round_filters(out_filters, width)
        for j in range(count):
            block_stride = first_stride if j == 0 else 1
            if block_stride == 2:
                b.level(x, stride)
                stride *= 2
            se_filters = max(1, int((in_filters if j == 0 else out_filters) * SE_RATIO))
            x = _mbconv(b, x, f"block{i}{string.ascii_lowercase[j]}", expansion, kernel, block_stride,
                        out_filters, se_filters, DROP_CONNECT_RATE * index / total)
            index += 1
    x = b.conv_bn_act(x, round_filters(1280, width), 1, conv="top_conv", bn="top_bn", act="top_activation",
                      activation=SWISH)
    b.level(x, stride)


def block_of(name: str, layer_name: str) -> int | None:
    if layer_name.startswith("stem_"):
        return 0
    if layer_name.startswith("top_"):
        return 7
    match = _STAGE_LAYER.match(layer_name)
    return int(match.group(1)) if match else None


# Batch normalization always: without it the swish/SE stack shrinks activations ~10x per block at
# initialization and the network does not train (a 003 YAML spec leaves use_batch_norm at its default,
# false); TLT's EfficientNet template has no use_batch_norm option either.
# Convolution kernels start at He-style scale over the fan-out, truncated normal (the EfficientNet paper's
# reference code and Keras use it): with Keras' default Glorot uniform the squeeze-and-excitation gates
# start near 0.5 everywhere and the network learns slowly (issue 12, digits bench, bare fit of the same
# network: 0.37 training accuracy with Glorot, 0.56 with this; keras.applications.EfficientNetB0 0.64).
KERNEL_INITIALIZER = {"class_name": "VarianceScaling",
                      "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"}}
FAMILY = Family(NAMES, "efficientnet", build, block_of, always_batch_norm=True, kernel_initializer=KERNEL_INITIALIZER)
