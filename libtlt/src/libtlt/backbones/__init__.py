"""Every TLT backbone as Keras 3 functional code with TLT's layer names.

>>> features = build_backbone("resnet18", keras.Input((224, 224, 3)))   # doctest: +SKIP
>>> features["P4"]   # stride 16 (DetectNet_v2); the highest level feeds classification

:func:`build_backbone` returns named feature levels ``{"P1": ..., "P5": ...}`` (``Pn`` = the last
feature map at stride ``2**n``; every level the backbone produces, e.g. SqueezeNet stops at P4).
Data format is channels_last (NHWC). Only standard layers (Conv2D, DepthwiseConv2D,
BatchNormalization, activations, Add, Concatenate, Multiply, pooling, Dropout) so models
serialize in Keras safe mode, prune and convert with tf2onnx.

Freeze blocks (``freeze_blocks``) follow :mod:`libtlt.spec.backbones`; :func:`block_of` maps a layer
name to its block, so :func:`set_freeze` also works on a loaded model. Layers after the last
documented block (e.g. MobileNet v1's ``conv_dw_12``/``13``, GoogLeNet's inception 5) belong to the
last block.

Options the families ignore: ``use_pooling`` applies to ResNet and VGG (the others downsample as
their papers do); ``all_projections`` to ResNet and MobileNet v2; ``dropout`` to VGG and SqueezeNet
(000/003 model_config); ``activation`` (default: ReLU, ReLU6 for MobileNet v1/v2) to every family but DarkNet (LeakyReLU
0.1) and EfficientNet (swish); ``use_batch_norm=False`` to EfficientNet (its batch normalization is part of the architecture).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras

from libtlt.backbones import darknet, efficientnet, googlenet, mobilenet, resnet, squeezenet, vgg
from libtlt.backbones.blocks import Builder, Family
from libtlt.spec.backbones import BACKBONES

__all__ = ["BACKBONE_NAMES", "block_of", "build_backbone", "freeze_block_ids", "set_freeze"]

_FAMILIES: tuple[Family, ...] = (
    resnet.FAMILY, vgg.FAMILY, googlenet.FAMILY, mobilenet.FAMILY_V1, mobilenet.FAMILY_V2, squeezenet.FAMILY,
    darknet.FAMILY, efficientnet.FAMILY,
)
_BY_NAME: dict[str, Family] = {name: family for family in _FAMILIES for name in family.names}

#: Every backbone name :func:`build_backbone` accepts.
BACKBONE_NAMES: tuple[str, ...] = tuple(_BY_NAME)


def _family(name: str) -> tuple[str, Family]:
    key = name.lower().replace("-", "_")
    if key not in _BY_NAME:
        raise ValueError(f"unknown backbone {name!r} (known: {', '.join(BACKBONE_NAMES)})")
    return key, _BY_NAME[key]


def freeze_block_ids(name: str) -> tuple[int, ...]:
    """Valid ``freeze_blocks`` IDs of backbone ``name``."""
    _, family = _family(name)
    if family.freeze_blocks is not None:
        return family.freeze_blocks
    ids = BACKBONES[family.arch].freeze_blocks
    if ids is None:  # every family with an undocumented table defines its own blocks
        raise AssertionError(f"{family.arch}: no freeze-block table")  # pragma: no cover
    return ids


def _check_blocks(name: str, freeze_blocks: Iterable[float]) -> frozenset[int]:
    valid = freeze_block_ids(name)
    chosen = set()
    for block in freeze_blocks:
        if block != int(block) or int(block) not in valid:
            raise ValueError(f"{name} block IDs valid for freezing are {valid[0]}-{valid[-1]}, got {block:g}")
        chosen.add(int(block))
    return frozenset(chosen)


def block_of(name: str, layer_name: str) -> int | None:
    """Freeze-block ID of the layer ``layer_name`` of backbone ``name``; ``None`` outside every block."""
    key, family = _family(name)
    return family.block_of(key, layer_name)


def _apply_freeze(layers: Iterable[keras.layers.Layer], name: str, frozen: frozenset[int], freeze_bn: bool) -> None:
    key, family = _family(name)
    for layer in layers:
        block = family.block_of(key, layer.name)
        if block is not None:
            layer.trainable = block not in frozen
        if freeze_bn and isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def set_freeze(model: keras.Model, name: str, freeze_blocks: Iterable[float], freeze_bn: bool) -> None:
    """(Re)apply freezing to a built or loaded model whose backbone is ``name``.

    Backbone layers in ``freeze_blocks`` become non-trainable and the other backbone layers trainable;
    with ``freeze_bn`` every BatchNormalization layer of the model is non-trainable (Keras 3 then runs
    it in inference mode). Layers outside the backbone keep their flag unless ``freeze_bn`` applies.
    Compile the model after calling this.
    """
    _apply_freeze(_all_layers(model), name, _check_blocks(name, freeze_blocks), freeze_bn)


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found: list[keras.layers.Layer] = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def build_backbone(
    name: str,
    inputs: Any,
    *,
    use_bias: bool = False,
    use_batch_norm: bool = True,
    all_projections: bool = True,
    use_pooling: bool = False,
    freeze_bn: bool = False,
    freeze_blocks: Sequence[float] = (),
    dropout: float = 0.0,
    kernel_regularizer: keras.regularizers.Regularizer | None = None,
    bias_regularizer: keras.regularizers.Regularizer | None = None,
    activation: str | None = None,
    tlt_template: bool = False,
) -> dict[str, Any]:
    """Build backbone ``name`` on ``inputs`` (NHWC, C = 1 or 3, H, W >= 16); returns its feature levels.

    ``tlt_template``: TLT's detector template where it differs from the paper layout (ResNet without
    ``use_pooling`` keeps its last stage at stride 1, so P4 is stage 4's output; VGG is a stride-16 trunk whose
    block 1 is not downsampled, so P4 is block 5's output); other families ignore it.
    """
    key, family = _family(name)
    frozen = _check_blocks(key, freeze_blocks)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout:g}")
    if len(inputs.shape) != 4:
        raise ValueError(f"backbone input must be NHWC (4 dimensions), got shape {tuple(inputs.shape)}")
    builder = Builder(use_bias=use_bias, use_batch_norm=use_batch_norm or family.always_batch_norm,
                      kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                      activation=activation or family.activation, kernel_initializer=family.kernel_initializer,
                      tlt_template=tlt_template)
    family.build(key, inputs, builder, all_projections=all_projections, use_pooling=use_pooling, dropout=dropout)
    _apply_freeze(builder.layers, key, frozen, freeze_bn)
    return builder.feature_levels()
