"""GoogLeNet (Szegedy et al. 2015, Inception v1 without the auxiliary heads) with TLT's layer names.

Stem: ``conv1`` 7x7/2 (64), ``pool1`` 3x3/2, ``conv2_reduce`` 1x1 (64), ``conv2`` 3x3 (192),
``pool2`` 3x3/2 (BatchNormalization ``bn_<conv>``). Inception modules ``inception_<3a..5b>``: four
branches ``_conv_1x1``, ``_conv_3x3_reduce`` -> ``_conv_3x3``, ``_conv_5x5_reduce`` -> ``_conv_5x5``,
``_pool`` (3x3/1) -> ``_conv_pool_proj``, concatenated as ``_output``; ``pool3``/``pool4`` (3x3/2)
sit before modules 4a and 5a. Levels: P1 conv1, P2 conv2, P3 3b, P4 4e, P5 5b.

Freeze blocks 0-7: 0 = stem, 1-7 = modules 3a, 3b, 4a, 4b, 4c, 4d, 4e (the stride-16 part that
DetectNet_v2 uses); ``pool4`` and modules 5a/5b (classification only) join block 7.
"""

from __future__ import annotations

import re
from typing import Any

from libtlt.backbones.blocks import Builder, Family

NAMES = ("googlenet",)

#: Module -> (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) filters (the paper's table 1).
MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
_MODULE_BLOCK = {"3a": 1, "3b": 2, "4a": 3, "4b": 4, "4c": 5, "4d": 6, "4e": 7, "5a": 7, "5b": 7}
_STEM = re.compile(r"(?:bn_)?conv[12](?:_reduce)?(?:_relu)?$|pool[12]$")
_POOL_BLOCK = {"pool3": 3, "pool4": 7}
_MODULE_LAYER = re.compile(r"inception_(\d[a-e])_")


def _conv(b: Builder, x: Any, filters: int, kernel: int, name: str, *, strides: int = 1) -> Any:
    """``name`` + ``bn_<name>`` + ``<name>_relu``."""
    return b.conv_bn_act(x, filters, kernel, strides=strides, conv=name, bn=f"bn_{name}", act=f"{name}_relu")


def _inception(b: Builder, x: Any, module: str) -> Any:
    f1, r3, f3, r5, f5, proj = MODULES[module]
    p = f"inception_{module}"

    def unit(y: Any, filters: int, kernel: int, branch: str) -> Any:
        return b.conv_bn_act(y, filters, kernel, conv=f"{p}_conv_{branch}", bn=f"{p}_bn_{branch}",
                             act=f"{p}_relu_{branch}")

    branch1 = unit(x, f1, 1, "1x1")
    branch3 = unit(unit(x, r3, 1, "3x3_reduce"), f3, 3, "3x3")
    branch5 = unit(unit(x, r5, 1, "5x5_reduce"), f5, 5, "5x5")
    pooled = b.max_pool(x, f"{p}_pool", size=3, strides=1)
    branch_pool = unit(pooled, proj, 1, "pool_proj")
    return b.concat([branch1, branch3, branch5, branch_pool], f"{p}_output")


def build(name: str, x: Any, b: Builder, *, all_projections: bool, use_pooling: bool, dropout: float) -> None:
    x = b.level(_conv(b, x, 64, 7, "conv1", strides=2), 2)
    x = b.max_pool(x, "pool1", size=3)
    x = _conv(b, x, 64, 1, "conv2_reduce")
    x = b.level(_conv(b, x, 192, 3, "conv2"), 4)
    x = b.max_pool(x, "pool2", size=3)
    for module in ("3a", "3b"):
        x = _inception(b, x, module)
    b.level(x, 8)
    x = b.max_pool(x, "pool3", size=3)
    for module in ("4a", "4b", "4c", "4d", "4e"):
        x = _inception(b, x, module)
    b.level(x, 16)
    x = b.max_pool(x, "pool4", size=3)
    for module in ("5a", "5b"):
        x = _inception(b, x, module)
    b.level(x, 32)


def block_of(name: str, layer_name: str) -> int | None:
    if _STEM.match(layer_name):
        return 0
    if layer_name in _POOL_BLOCK:
        return _POOL_BLOCK[layer_name]
    match = _MODULE_LAYER.match(layer_name)
    return _MODULE_BLOCK.get(match.group(1)) if match else None


FAMILY = Family(NAMES, "googlenet", build, block_of)
