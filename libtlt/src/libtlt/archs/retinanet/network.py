"""The RetinaNet network (DETECTORS-SINGLE-STAGE.md §4.1, §4.2): an FPN over three backbone levels and class and box
subnets shared by its five maps.

NCHW ``Input`` → ``Permute`` to channels-last → backbone (TLT's detector template) →

* C3 = the backbone's stride-8 level ``P3``; C4 = the trunk's end (``P4``, stride 16); C5 = ``expand_conv1`` (3×3,
  stride 2, F channels, ReLU) on C4. DarkNet: C3, C4 = ``P3``, ``P4`` and C5 = a 1×1 conv (F, ReLU) on ``P5``;
* top-down: P5r = 1×1(C5), P5 = ReLU(3×3(P5r)); P4m = up×2(P5r) + 1×1(C4), P4 = ReLU(3×3(P4m)); P3m = up×2(P4m) +
  1×1(C3), P3 = ReLU(3×3(P3m)); P6 = ReLU(3×3 stride 2(C5)); P7 = ReLU(3×3 stride 2(P6)). Nearest upsampling;
  a map of odd size is cropped to the lateral one (ceil division makes it one larger);
* subnets, the same layer objects on every map: ``n_kernels`` × (3×3 conv F, ReLU) then 3×3 convs to
  boxes·C sigmoids (bias −ln((1 − π)/π), π = 0.01) and boxes·4 offsets, reshaped to anchors in row / column / box
  order and concatenated: ``mbox_conf_sigmoid`` ``[N, A, C]`` (TLT 2.0's layout: no background column) and
  ``mbox_loc`` ``[N, A, 4]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from libtlt.layers.anchor_detection import LOC_OUTPUT

INPUT_NAME = "Input"
CONF_OUTPUT = "mbox_conf_sigmoid"
NUM_MAPS = 5
STRIDES = (8, 16, 32, 64, 128)
PRIOR_PROBABILITY = 0.01
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class RetinaNetNetworkConfig:
    """Everything :func:`build_retinanet` needs, parsed from a RetinaNet spec."""

    backbone: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    boxes_per_cell: int
    n_kernels: int = 2
    feature_size: int = 256
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()


def feature_sizes(image_hw: Sequence[int]) -> list[tuple[int, int]]:
    """(h, w) of P3 … P7 ('same' padding everywhere: ceil division)."""
    from libtlt.layers.boxes import feature_sizes as sizes

    return sizes(image_hw, list(STRIDES))


def prior_bias(prior: float = PRIOR_PROBABILITY) -> float:
    """The class logits' bias that makes every class start at probability ``prior`` (the focal loss paper's)."""
    return -math.log((1.0 - prior) / prior)


def build_retinanet(config: RetinaNetNetworkConfig) -> Any:
    """The Keras RetinaNet of ``config``: outputs ``[mbox_conf_sigmoid, mbox_loc]``."""
    import keras

    from libtlt.backbones import build_backbone

    if config.num_classes < 1:
        raise ValueError(f"RetinaNet needs at least one class, got {config.num_classes}")
    if config.boxes_per_cell < 1 or config.feature_size < 1:
        raise ValueError("RetinaNet needs at least one box per cell and one subnet channel")
    layers = keras.layers
    size = config.feature_size

    def conv(x: Any, filters: int, kernel: int, name: str, strides: int = 1) -> Any:
        return layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal",
                             name=name)(x)

    def relu(x: Any, name: str) -> Any:
        return layers.ReLU(name=name)(x)

    def upsample_onto(small: Any, large: Any, name: str) -> Any:
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_upsample")(small)
        extra_h, extra_w = int(up.shape[1]) - int(large.shape[1]), int(up.shape[2]) - int(large.shape[2])
        if extra_h or extra_w:
            up = layers.Cropping2D(((0, extra_h), (0, extra_w)), name=f"{name}_crop")(up)
        return up

    inputs = keras.Input(shape=config.input_shape, name=INPUT_NAME, dtype="float32")
    nhwc = layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    levels = build_backbone(config.backbone, nhwc, freeze_bn=config.freeze_bn, freeze_blocks=config.freeze_blocks,
                            tlt_template=True)
    c3, c4 = levels["P3"], levels["P4"]
    if config.backbone.startswith("darknet"):
        c5 = relu(conv(levels["P5"], size, 1, "expand_conv1"), "expand_conv1_relu")
    else:
        c5 = relu(conv(c4, size, 3, "expand_conv1", strides=2), "expand_conv1_relu")
    p5r = conv(c5, size, 1, "fpn_c5_reduced")
    p5 = relu(conv(p5r, size, 3, "fpn_p5"), "fpn_p5_relu")
    p4m = layers.Add(name="fpn_p4_merged")([upsample_onto(p5r, c4, "fpn_p5"), conv(c4, size, 1, "fpn_c4_reduced")])
    p4 = relu(conv(p4m, size, 3, "fpn_p4"), "fpn_p4_relu")
    p3m = layers.Add(name="fpn_p3_merged")([upsample_onto(p4m, c3, "fpn_p4"), conv(c3, size, 1, "fpn_c3_reduced")])
    p3 = relu(conv(p3m, size, 3, "fpn_p3"), "fpn_p3_relu")
    p6 = relu(conv(c5, size, 3, "fpn_p6", strides=2), "fpn_p6_relu")
    p7 = relu(conv(p6, size, 3, "fpn_p7", strides=2), "fpn_p7_relu")
    maps = [p3, p4, p5, p6, p7]
    expected = feature_sizes(config.input_shape[1:])
    found = [(int(m.shape[1]), int(m.shape[2])) for m in maps]
    if found != expected:  # the anchors are computed from `expected`: they must describe the real maps
        raise ValueError(f"{config.backbone}: FPN maps {found} differ from the expected {expected}")

    small = keras.initializers.RandomNormal(stddev=0.01, seed=None)

    def tower(kind: str) -> list[Any]:
        return [layers.Conv2D(size, 3, padding="same", kernel_initializer=small, name=f"retinanet_{kind}_subn_{i}")
                for i in range(config.n_kernels)]

    boxes, classes = config.boxes_per_cell, config.num_classes
    class_tower, box_tower = tower("class"), tower("loc")
    class_out = layers.Conv2D(boxes * classes, 3, padding="same", kernel_initializer=small,
                              bias_initializer=keras.initializers.Constant(prior_bias()),
                              name="retinanet_conf_regressor")
    box_out = layers.Conv2D(boxes * 4, 3, padding="same", kernel_initializer=small, name="retinanet_loc_regressor")
    confs, locs = [], []
    for k, feature in enumerate(maps):
        x = feature
        for i, layer in enumerate(class_tower):
            x = relu(layer(x), f"retinanet_class_subn_{i}_relu_{k}")
        confs.append(layers.Reshape((-1, classes), name=f"retinanet_conf_reshape_{k}")(class_out(x)))
        y = feature
        for i, layer in enumerate(box_tower):
            y = relu(layer(y), f"retinanet_loc_subn_{i}_relu_{k}")
        locs.append(layers.Reshape((-1, 4), name=f"retinanet_loc_reshape_{k}")(box_out(y)))
    conf = layers.Concatenate(axis=1, name="mbox_conf")(confs)
    conf = layers.Activation("sigmoid", name=CONF_OUTPUT, dtype="float32")(conf)
    loc = layers.Concatenate(axis=1, name=LOC_OUTPUT, dtype="float32")(locs)
    model = keras.Model(inputs, [conf, loc], name="retinanet")
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model
