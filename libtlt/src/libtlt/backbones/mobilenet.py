"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018), width 1.0, with TLT's layer names;
ReLU6 activations, as in both papers and Keras (TLT's templates default to a plain ReLU: see
:attr:`libtlt.backbones.blocks.Family.activation` for why ours do not).

v1: stem ``conv1`` 3x3/2 (32) + ``conv1_bn``; thirteen depthwise-separable units ``conv_dw_<k>``
(3x3 depthwise, + ``_bn``, ``_relu``) and ``conv_pw_<k>`` (1x1 pointwise); units 2, 4, 6 and 12
stride 2. Levels: P1 pw 1, P2 pw 3, P3 pw 5, P4 pw 11, P5 pw 13. Freeze blocks 0-11: 0 = stem,
``k`` = unit ``k`` (1-11, the stride-16 part); units 12 and 13 join block 11.

v2: stem ``conv1`` 3x3/2 (32) + ``bn_conv1``; seventeen inverted-residual blocks ``block_<k>``
(``_expand`` 1x1, ``_depthwise`` 3x3, ``_project`` 1x1 linear, each with ``_bn``; block 0 has no
expansion); output channels 16, 24x2, 32x3, 64x4, 96x3, 160x3, 320; blocks 1, 3, 6, 13 stride 2;
then ``conv_1`` 1x1 (1280). Stride-1 blocks with equal input and output channels add their input;
with ``all_projections`` that shortcut is a 1x1 linear projection ``block_<k>_projected_inputs`` (no
bias, no batch normalization, as in TLT's template) instead of the identity. Levels: P1 block 0, P2 block 2, P3 block 5, P4 block 12,
P5 conv_1. Freeze blocks 0-13: 0 = stem + block 0, ``k`` = block ``k``; blocks 14-16 and conv_1 join
block 13.
"""

from __future__ import annotations

import re
from typing import Any

from libtlt.backbones.blocks import Builder, Family

V1_NAMES = ("mobilenet_v1",)
V2_NAMES = ("mobilenet_v2",)

#: v1 units: (pointwise filters, depthwise stride).
V1_UNITS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
            (512, 1), (1024, 2), (1024, 1))
V1_LAST_BLOCK = 11

#: v2 stages: (expansion, output channels, repeats, first stride).
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1))
V2_LAST_BLOCK = 13

_V1_UNIT = re.compile(r"conv_(?:dw|pw)_(\d+)_?")
_V2_BLOCK = re.compile(r"block_(\d+)_")


def build_v1(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    x = b.level(b.conv_bn_act(x, 32, 3, strides=2, conv="conv1", bn="conv1_bn", act="conv1_relu"), 2)
    stride = 2
    for k, (filters, unit_stride) in enumerate(V1_UNITS, start=1):
        if unit_stride == 2:
            b.level(x, stride)
            stride *= 2
        x = b.depthwise(x, 3, f"conv_dw_{k}", strides=unit_stride)
        x = b.act(b.bn(x, f"conv_dw_{k}_bn"), f"conv_dw_{k}_relu")
        x = b.conv_bn_act(x, filters, 1, conv=f"conv_pw_{k}", bn=f"conv_pw_{k}_bn", act=f"conv_pw_{k}_relu")
    b.level(x, stride)


def block_of_v1(name: str, layer_name: str) -> int | None:
    if layer_name.startswith("conv1"):
        return 0
    match = _V1_UNIT.match(layer_name)
    return min(int(match.group(1)), V1_LAST_BLOCK) if match else None


def _inverted_residual(b: Builder, x: Any, k: int, expansion: int, filters: int, strides: int,
                       all_projections: bool) -> Any:
    p = f"block_{k}"
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = b.conv_bn_act(y, in_channels * expansion, 1, conv=f"{p}_expand", bn=f"{p}_expand_bn",
                          act=f"{p}_expand_relu")
    y = b.depthwise(y, 3, f"{p}_depthwise", strides=strides)
    y = b.act(b.bn(y, f"{p}_depthwise_bn"), f"{p}_depthwise_relu")
    y = b.bn(b.conv(y, filters, 1, f"{p}_project"), f"{p}_project_bn")
    if strides != 1 or in_channels != filters:
        return y
    shortcut = x
    if all_projections:  # a plain linear map: a batch-normalized one (tried first) trains to 0.27 against 0.57
        shortcut = b.conv(x, filters, 1, f"{p}_projected_inputs", use_bias=False)
    return b.add([y, shortcut], f"{p}_add")


def build_v2(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    x = b.conv_bn_act(x, 32, 3, strides=2, conv="conv1", bn="bn_conv1", act="conv1_relu")
    stride, k = 2, 0
    for expansion, filters, repeats, first_stride in V2_STAGES:
        for j in range(repeats):
            block_stride = first_stride if j == 0 else 1
            if block_stride == 2:
                b.level(x, stride)
                stride *= 2
            x = _inverted_residual(b, x, k, expansion, filters, block_stride, all_projections)
            k += 1
    x = b.conv_bn_act(x, 1280, 1, conv="conv_1", bn="conv_1_bn", act="conv_1_relu")
    b.level(x, stride)


def block_of_v2(name: str, layer_name: str) -> int | None:
    if layer_name.startswith("conv1") or layer_name == "bn_conv1":
        return 0
    if layer_name.startswith("conv_1"):
        return V2_LAST_BLOCK
    match = _V2_BLOCK.match(layer_name)
    return min(int(match.group(1)), V2_LAST_BLOCK) if match else None


FAMILY_V1 = Family(V1_NAMES, "mobilenet_v1", build_v1, block_of_v1, activation="relu6")
FAMILY_V2 = Family(V2_NAMES, "mobilenet_v2", build_v2, block_of_v2, activation="relu6")
