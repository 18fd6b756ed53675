"""ResNet 10/18/34 (basic blocks) and 50/101 (bottlenecks) with TLT's layer names.

Layout (He et al. 2016): stem ``conv1`` 7x7/2 (64) + ``bn_conv1``; four stages of 64/128/256/512
filters (x4 at the bottleneck output) with 1/1/1/1 (resnet10), 2/2/2/2 (18), 3/4/6/3 (34, 50) or
3/4/23/3 (101) blocks. Block ``j`` of stage ``i`` is ``block_<i><a,b,...>``: ``_conv_<k>``,
``_bn_<k>``, ``_relu_<k>``, shortcut ``_conv_shortcut`` + ``_bn_shortcut``, ``_add``, ``_relu``.

``use_pooling``: 3x3/2 max pooling after the stem (the paper's layout); otherwise the first block
of stage 1 downsamples with a strided convolution. Bottlenecks stride in their 3x3 convolution.
``tlt_template``: TLT's ResNet template (the one its detectors build on): without ``use_pooling`` the
last stage keeps stride 1, so stage 4 runs at stride 16 like stage 3; with ``use_pooling`` it is the
paper's layout (stage 4 at stride 32). The parameters are the same either way.
``all_projections``: every block gets a 1x1 projection shortcut, not only those that change shape.
Levels: P1 (stem), P2-P5 (stages 1-4). Freeze blocks: 0 = stem, 1-4 = stages.
"""

from __future__ import annotations

import re
import string
from typing import Any

from libtlt.backbones.blocks import Builder, Family

#: Blocks per stage and whether the blocks are bottlenecks, by depth.
LAYOUTS: dict[int, tuple[tuple[int, int, int, int], bool]] = {
    10: ((1, 1, 1, 1), False),
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
}
STAGE_FILTERS = (64, 128, 256, 512)
NAMES = tuple(f"resnet{depth}" for depth in LAYOUTS)

_STAGE_LAYER = re.compile(r"block_([1-4])[a-z]+_")
_STEM_LAYERS = frozenset({"conv1", "bn_conv1", "conv1_relu", "pool1"})


def _block_letter(index: int) -> str:
    """a, b, ..., z, then aa, ab, ... (resnet101's stage 3 has 23 blocks)."""
    letters = string.ascii_lowercase
    return letters[index] if index < 26 else letters[index // 26 - 1] + letters[index % 26]


def _residual_block(b: Builder, x: Any, prefix: str, filters: int, strides: int, bottleneck: bool,
                    all_projections: bool) -> Any:
    in_channels = x.shape[-1]
    out_channels = filters * 4 if bottleneck else filters
    kernels: tuple[int, ...] = (1, 3, 1) if bottleneck else (3, 3)
    widths: tuple[int, ...] = (filters, filters, out_channels) if bottleneck else (filters, filters)
    block_strides: tuple[int, ...] = (1, strides, 1) if bottleneck else (strides, 1)
    y = x
    last = len(kernels)
    for k, (kernel, width, stride) in enumerate(zip(kernels, widths, block_strides, strict=True), start=1):
        y = b.conv(y, width, kernel, f"{prefix}_conv_{k}", strides=stride)
        y = b.bn(y, f"{prefix}_bn_{k}")
        if k < last:
            y = b.act(y, f"{prefix}_relu_{k}")
    shortcut = x
    if all_projections or strides != 1 or in_channels != out_channels:
        shortcut = b.conv(x, out_channels, 1, f"{prefix}_conv_shortcut", strides=strides)
        shortcut = b.bn(shortcut, f"{prefix}_bn_shortcut")
    y = b.add([y, shortcut], f"{prefix}_add")
    return b.act(y, f"{prefix}_relu")


def build(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    blocks, bottleneck = LAYOUTS[int(name.removeprefix("resnet"))]
    x = b.conv_bn_act(x, 64, 7, strides=2, conv="conv1", bn="bn_conv1", act="conv1_relu")
    b.level(x, 2)
    stride = 2
    if use_pooling:
        x = b.max_pool(x, "pool1", size=3, strides=2)
        stride = 4
    for stage, (count, filters) in enumerate(zip(blocks, STAGE_FILTERS, strict=True), start=1):
        for j in range(count):
            block_stride = 2 if j == 0 and (stage > 1 or not use_pooling) else 1
            if stage == len(blocks) and b.tlt_template and not use_pooling:
                block_stride = 1
            x = _residual_block(b, x, f"block_{stage}{_block_letter(j)}", filters, block_stride, bottleneck,
                                all_projections)
            stride *= block_stride
        b.level(x, stride)


def block_of(name: str, layer_name: str) -> int | None:
    if layer_name in _STEM_LAYERS:
        return 0
    match = _STAGE_LAYER.match(layer_name)
    return int(match.group(1)) if match else None


FAMILY = Family(NAMES, "resnet", build, block_of)
