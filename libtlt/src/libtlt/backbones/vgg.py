"""VGG 16/19 (Simonyan & Zisserman 2015, configurations D and E) with TLT's layer names.

Five blocks of 64/128/256/512/512 filters with 2/2/3/3/3 (vgg16) or 2/2/4/4/4 (vgg19) 3x3
convolutions; convolution ``j`` of block ``i`` is ``block_<i><a,b,...>_conv_1`` + ``_bn_1`` + ``_relu``
(TLT's CNNBlock names: a one-convolution sub-block's activation has no number). ``use_pooling``: 2x2/2 max
pooling (``block_<i>_pool``) ends each block, as in the paper; otherwise the first convolution of each block
has stride 2. Either way block ``i`` ends at stride ``2**i`` (level ``P<i>``).

``tlt_template`` (the detectors): TLT's VGG template, a stride-16 trunk — block 1 is never downsampled, blocks
2-5 start with a stride-2 convolution (or, with ``use_pooling``, blocks 1-4 end with a pool and block 5 has
none), so block ``i`` ends at stride ``2**(i-1)``: block 4 is ``P3`` (SSD's ``block_4c_relu``) and block 5 is
``P4`` (DetectNet_v2's and FasterRCNN's feature map). ``dropout`` > 0 adds ``block_5_dropout`` after block 5.
Freeze blocks 1-5.
"""

from __future__ import annotations

import re
from typing import Any

from libtlt.backbones.blocks import Builder, Family

CONVS: dict[int, tuple[int, ...]] = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)
NAMES = tuple(f"vgg{depth}" for depth in CONVS)

_BLOCK_LAYER = re.compile(r"block_([1-5])(?:[a-z]_|_)")


def build(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    template = b.tlt_template
    for block, (count, filters) in enumerate(zip(CONVS[int(name.removeprefix("vgg"))], FILTERS, strict=True), 1):
        downsample_first = not use_pooling and not (template and block == 1)
        for j in range(count):
            prefix = f"block_{block}{'abcd'[j]}"
            stride = 2 if j == 0 and downsample_first else 1
            x = b.conv_bn_act(x, filters, 3, strides=stride, conv=f"{prefix}_conv_1", bn=f"{prefix}_bn_1",
                              act=f"{prefix}_relu")
        if template and block < 5:  # the block's own output; a pool (if any) starts the next block
            b.level(x, 2 ** (block - 1))
        if use_pooling and not (template and block == 5):
            x = b.max_pool(x, f"block_{block}_pool")
        if block == 5:
            x = b.dropout(x, dropout, "block_5_dropout")
        if not template:
            b.level(x, 2**block)
        elif block == 5:
            b.level(x, 16)


def block_of(name: str, layer_name: str) -> int | None:
    match = _BLOCK_LAYER.match(layer_name)
    return int(match.group(1)) if match else None


FAMILY = Family(NAMES, "vgg", build, block_of)
