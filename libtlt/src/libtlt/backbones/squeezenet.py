"""SqueezeNet 1.0 (Iandola et al. 2016) without its classifier (conv10), with TLT's layer names.

Stem ``conv1`` 7x7/2 (96) + ``pool1`` 3x3/2; fire modules ``fire<n>`` (n = 2..9): ``_squeeze_conv``
1x1, then ``_expand_conv1x1`` and ``_expand_conv3x3`` concatenated (``_concat``), BatchNormalization
``<conv>_bn`` when enabled; ``pool4`` and ``pool8`` (3x3/2) follow fire4 and fire8. ``dropout`` > 0
adds ``fire9_dropout`` after fire9, as in the paper. Levels: P1 conv1, P2 fire4, P3 fire8, P4 fire9
(SqueezeNet has no stride-32 level).

The manuals document no freeze-block IDs for SqueezeNet; here block 0 is the stem and block
``n - 1`` fire module ``n`` (with the pool before it): IDs 0-8.
"""

from __future__ import annotations

import re
from typing import Any

from libtlt.backbones.blocks import Builder, Family

NAMES = ("squeezenet",)
#: Fire module -> (squeeze, expand 1x1, expand 3x3) filters.
FIRES = {2: (16, 64, 64), 3: (16, 64, 64), 4: (32, 128, 128), 5: (32, 128, 128), 6: (48, 192, 192),
         7: (48, 192, 192), 8: (64, 256, 256), 9: (64, 256, 256)}
FREEZE_BLOCKS = tuple(range(9))

_FIRE_LAYER = re.compile(r"fire(\d)_")
_POOL_BLOCK = {"pool4": 4, "pool8": 8}


def _fire(b: Builder, x: Any, n: int) -> Any:
    squeeze, expand1, expand3 = FIRES[n]
    p = f"fire{n}"
    s = b.conv_bn_act(x, squeeze, 1, conv=f"{p}_squeeze_conv", bn=f"{p}_squeeze_conv_bn", act=f"{p}_squeeze_relu")
    e1 = b.conv_bn_act(s, expand1, 1, conv=f"{p}_expand_conv1x1", bn=f"{p}_expand_conv1x1_bn",
                       act=f"{p}_expand_relu1x1")
    e3 = b.conv_bn_act(s, expand3, 3, conv=f"{p}_expand_conv3x3", bn=f"{p}_expand_conv3x3_bn",
                       act=f"{p}_expand_relu3x3")
    return b.concat([e1, e3], f"{p}_concat")


def build(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    x = b.level(b.conv_bn_act(x, 96, 7, strides=2, conv="conv1", bn="conv1_bn", act="conv1_relu"), 2)
    x = b.max_pool(x, "pool1", size=3)
    for n in (2, 3, 4):
        x = _fire(b, x, n)
    x = b.max_pool(b.level(x, 4), "pool4", size=3)
    for n in (5, 6, 7, 8):
        x = _fire(b, x, n)
    x = b.max_pool(b.level(x, 8), "pool8", size=3)
    x = b.dropout(_fire(b, x, 9), dropout, "fire9_dropout")
    b.level(x, 16)


def block_of(name: str, layer_name: str) -> int | None:
    if layer_name.startswith("conv1") or layer_name == "pool1":
        return 0
    if layer_name in _POOL_BLOCK:
        return _POOL_BLOCK[layer_name]
    match = _FIRE_LAYER.match(layer_name)
    return int(match.group(1)) - 1 if match else None


FAMILY = Family(NAMES, "squeezenet", build, block_of, FREEZE_BLOCKS)
