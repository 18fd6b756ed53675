"""The YOLOv3 network (DETECTORS-SINGLE-STAGE.md §5.1): three maps from a backbone, the upsample-and-concatenate
neck, and one 1×1 head per map.

NCHW ``Input`` → ``Permute`` to channels-last → backbone (TLT's detector template, ``libtlt.backbones``) →

* the maps, picked by level name (TAO picks trunk layers by negative index): small = ``P3`` (stride 8), mid =
  ``P4`` (stride 16), big = ``P5`` (stride 32) where the backbone has one (DarkNet, GoogLeNet, the MobileNets),
  else ``yolo_expand_conv1`` (3×3 stride 2, BN, LeakyReLU 0.1; 512 channels, 1024 for ResNet50/101) on ``P4``;
* the neck, with f0, f1 = the backbone family's upsample filters (:data:`UPSAMPLE_FILTERS`) and ``L(k, n)`` =
  conv k×k without bias + BN + LeakyReLU 0.1: big: L(1, 2f0) ``yolo_conv1_1`` [+ ``arch_conv_blocks`` pairs
  L(3, 4f0), L(1, 2f0)], head input L(3, 4f0) ``yolo_conv1_6``; then L(1, f0) ``yolo_conv2`` → nearest ×2
  ``upsample0`` → concatenated with mid → L(1, f0) ``yolo_conv3_1`` [+ pairs L(3, 2f0), L(1, f0)], head input
  L(3, 2f0) ``yolo_conv3_6``; then L(1, f1) ``yolo_conv4`` → ``upsample1`` → with small → L(1, f1)
  ``yolo_conv5_1`` [+ pairs], head input L(3, 2f1) ``yolo_conv5_6``;
* heads ``conv_big_object``, ``conv_mid_object``, ``conv_sm_object``: 1×1 conv with bias, anchors·(5 + C)
  channels, per anchor ``[t_x, t_y, t_w, t_h, objectness, C class logits]`` (x before y: this layout is internal,
  the deployed graph ends in ``BatchedNMS``), reshaped to anchors in row / column / anchor order and concatenated
  big, mid, small: ``encoded_detections`` ``[N, A, 5 + C]``, raw logits (decoding and the loss apply the sigmoids).

The objectness bias starts every anchor at probability 0.01 (the focal loss paper's prior): with
``loss_neg_obj_weights`` 50 the first steps otherwise go to pushing thousands of empty anchors down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

INPUT_NAME = "Input"
OUTPUT_NAME = "encoded_detections"
HEAD_NAMES = ("conv_big_object", "conv_mid_object", "conv_sm_object")
#: Strides of the big, mid and small maps.
STRIDES = (32, 16, 8)
BN_MOMENTUM = 0.9
LEAKY_ALPHA = 0.1
OBJECTNESS_PRIOR = 0.01
#: (f0, f1) of the neck by backbone (§5.1); others (GoogLeNet) take ResNet18's.
UPSAMPLE_FILTERS = {"resnet50": (256, 128), "resnet101": (256, 128), "vgg16": (256, 128), "vgg19": (256, 128),
                    "darknet19": (256, 128), "darknet53": (256, 128), "mobilenet_v2": (32, 16),
                    "squeezenet": (64, 64)}
DEFAULT_UPSAMPLE_FILTERS = (128, 64)


@dataclass(frozen=True)
class YoloNetworkConfig:
    """Everything :func:`build_yolo` needs, parsed from a YOLOv3 spec."""

    backbone: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    anchors_per_map: tuple[int, int, int]  # big, mid, small
    arch_conv_blocks: int = 2
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()


def feature_sizes(image_hw: Sequence[int]) -> list[tuple[int, int]]:
    """(h, w) of the big, mid and small maps ('same' padding everywhere: ceil division)."""
    from libtlt.layers.boxes import feature_sizes as sizes

    return sizes(image_hw, list(STRIDES))


def build_yolo(config: YoloNetworkConfig) -> Any:
    """The Keras YOLOv3 of ``config``: one output ``encoded_detections``."""
    import keras

    from libtlt.backbones import build_backbone

    if config.num_classes < 1:
        raise ValueError(f"YOLOv3 needs at least one class, got {config.num_classes}")
    if len(config.anchors_per_map) != 3 or min(config.anchors_per_map) < 1:
        raise ValueError(f"YOLOv3 needs at least one anchor on each of its three maps, got {config.anchors_per_map}")
    layers = keras.layers

    def leaky(x: Any, filters: int, kernel: int, name: str, strides: int = 1) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=name)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-3, name=f"{name}_bn")(x)
        return layers.LeakyReLU(negative_slope=LEAKY_ALPHA, name=f"{name}_leaky")(x)

    def stage(x: Any, narrow: int, wide: int, prefix: str) -> tuple[Any, Any]:
        """The 1×1 (narrow) and pairs of a stage → (its last 1×1 output, the head input)."""
        x = leaky(x, narrow, 1, f"{prefix}_1")
        for pair in range(config.arch_conv_blocks):
            x = leaky(x, wide, 3, f"{prefix}_{2 * pair + 2}")
            x = leaky(x, narrow, 1, f"{prefix}_{2 * pair + 3}")
        return x, leaky(x, wide, 3, f"{prefix}_6")

    def merge(x: Any, lateral: Any, filters: int, index: int) -> Any:
        up = leaky(x, filters, 1, f"yolo_conv{2 * index + 2}")
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"upsample{index}")(up)
        return layers.Concatenate(axis=-1, name=f"yolo_concat{index}")([up, lateral])

    inputs = keras.Input(shape=config.input_shape, name=INPUT_NAME, dtype="float32")
    nhwc = layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    levels = build_backbone(config.backbone, nhwc, freeze_bn=config.freeze_bn, freeze_blocks=config.freeze_blocks,
                            tlt_template=True)
    small, mid = levels["P3"], levels["P4"]
    if "P5" in levels:
        big = levels["P5"]
    else:
        big = leaky(mid, 1024 if config.backbone in ("resnet50", "resnet101") else 512, 3, "yolo_expand_conv1",
                    strides=2)
    expected = feature_sizes(config.input_shape[1:])
    found = [(int(m.shape[1]), int(m.shape[2])) for m in (big, mid, small)]
    if found != expected:  # the grid anchors are computed from `expected`: they must describe the real maps
        raise ValueError(f"{config.backbone}: YOLO maps {found} differ from the expected {expected} "
                         "(the input's width and height must be multiples of 32)")
    f0, f1 = UPSAMPLE_FILTERS.get(config.backbone, DEFAULT_UPSAMPLE_FILTERS)
    x, big_head = stage(big, 2 * f0, 4 * f0, "yolo_conv1")
    x, mid_head = stage(merge(x, mid, f0, 0), f0, 2 * f0, "yolo_conv3")
    _, small_head = stage(merge(x, small, f1, 1), f1, 2 * f1, "yolo_conv5")

    width = 5 + config.num_classes
    prior = -math.log((1.0 - OBJECTNESS_PRIOR) / OBJECTNESS_PRIOR)
    outputs = []
    for name, head, anchors in zip(HEAD_NAMES, (big_head, mid_head, small_head), config.anchors_per_map, strict=True):
        conv = layers.Conv2D(anchors * width, 1, kernel_initializer="he_normal", name=name)
        y = conv(head)
        bias = [0.0] * (anchors * width)
        for a in range(anchors):
            bias[a * width + 4] = prior
        conv.bias.assign(bias)
        outputs.append(layers.Reshape((-1, width), name=f"{name}_reshape")(y))
    encoded = layers.Concatenate(axis=1, name=OUTPUT_NAME, dtype="float32")(outputs)
    model = keras.Model(inputs, encoded, name="yolo_v3")
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model
