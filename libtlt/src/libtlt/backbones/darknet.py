"""DarkNet 19 (Redmon & Farhadi 2017) and 53 (2018) without their classifiers, with TLT's layer names.

Blocks ``b0``-``b5``; convolution ``j`` of block ``i`` is ``b<i>_conv<j>`` (+ ``b<i>_bn<j>``,
``b<i>_leaky<j>``: LeakyReLU 0.1, the papers' activation, whatever ``activation`` says).
Block 0 is one 3x3 convolution (32) at full resolution; blocks 1-5 each halve the resolution, so
block ``i`` ends at stride ``2**i`` (level ``P<i>``). Freeze blocks 0-5.

- darknet19: blocks 1-5 open with 2x2/2 max pooling (``b<i>_pool``), then 3x3 / 1x1 convolutions
  of 64 | 128-64-128 | 256-128-256 | 512-256-512-256-512 | 1024-512-1024-512-1024 filters.
- darknet53: blocks 1-5 open with a 3x3/2 convolution of 64/128/256/512/1024 filters, then 1/2/8/8/4
  residual units (1x1 to half the filters, 3x3 back, ``b<i>_add<u>``).
"""

from __future__ import annotations

import re
from typing import Any

from libtlt.backbones.blocks import Builder, Family

NAMES = ("darknet19", "darknet53")

#: darknet19: filters of blocks 1-5 (3x3 and 1x1 alternating, starting with 3x3).
DARKNET19 = ((64,), (128, 64, 128), (256, 128, 256), (512, 256, 512, 256, 512), (1024, 512, 1024, 512, 1024))
#: darknet53: (filters, residual units) of blocks 1-5.
DARKNET53 = ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))

_BLOCK_LAYER = re.compile(r"b([0-5])_")


def _conv(b: Builder, x: Any, block: int, j: int, filters: int, kernel: int, strides: int = 1) -> Any:
    return b.conv_bn_act(x, filters, kernel, strides=strides, conv=f"b{block}_conv{j}", bn=f"b{block}_bn{j}",
                         act=f"b{block}_leaky{j}", activation="leaky_relu")


def build(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    x = _conv(b, x, 0, 1, 32, 3)
    if name == "darknet19":
        for block, filters in enumerate(DARKNET19, start=1):
            x = b.max_pool(x, f"b{block}_pool")
            for j, width in enumerate(filters, start=1):
                x = _conv(b, x, block, j, width, 3 if j % 2 else 1)
            b.level(x, 2**block)
        return
    for block, (channels, units) in enumerate(DARKNET53, start=1):
        x = _conv(b, x, block, 1, channels, 3, strides=2)
        j = 2
        for unit in range(1, units + 1):
            y = _conv(b, x, block, j, channels // 2, 1)
            y = _conv(b, y, block, j + 1, channels, 3)
            x = b.add([x, y], f"b{block}_add{unit}")
            j += 2
        b.level(x, 2**block)


def block_of(name: str, layer_name: str) -> int | None:
    match = _BLOCK_LAYER.match(layer_name)
    return int(match.group(1)) if match else None


FAMILY = Family(NAMES, "darknet", build, block_of)
