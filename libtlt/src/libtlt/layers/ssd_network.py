"""The SSD and DSSD networks (DETECTORS-SINGLE-STAGE.md §2.1, §3): six feature maps from a backbone, optional DSSD
deconvolution and prediction modules, and the per-map class and box heads.

NCHW ``Input`` → ``Permute`` to channels-last → backbone (TLT's detector template, ``libtlt.backbones``) →

* the maps: the backbone's stride-8 level ``P3`` (DarkNet: ``P3`` and ``P4``), then *expansion blocks* (1×1 conv
  + ReLU, 3×3 conv of stride s + BN + ReLU; ``ssd_expand_block_<b>_...``) on the trunk's end (``P4``; DarkNet
  ``P5``) in TAO's three sizes: ``large`` (ResNet50/101, VGG, GoogLeNet, DarkNet53), ``mid`` (ResNet18/34,
  DarkNet19) and ``small`` (ResNet10, the MobileNets, SqueezeNet: the trunk's end is itself a map). TAO picks the
  stride-8 map by layer name (``block_2b_relu``, ``conv_pw_relu_5``, ``fire8`` ...); we take the backbone's ``P3``
  level, which is the same layer where the names agree and the stride-8 output everywhere;
* DSSD only: a top-down path of deconvolution modules from the smallest map up (each map's size and channels,
  element-wise product of the two branches), then a residual prediction module per map when
  ``pred_num_channels`` > 0; ResNet10, the MobileNets and SqueezeNet first shrink the first map to 256 channels;
* heads per map k: ``ssd_conf_k`` (3×3, boxes·(C + 1)) and ``ssd_loc_k`` (3×3, boxes·4), reshaped to anchors in
  row / column / box order and concatenated: ``mbox_conf_softmax`` ``[N, A, C + 1]`` (softmax over classes, class 0
  background) and ``mbox_loc`` ``[N, A, 4]`` — the outputs, in this order.

The class heads start with every object class at probability 0.01 (the focal loss paper's prior). Batch
normalization uses momentum 0.9 (as DetectNet_v2: Keras' 0.99 leaves the inference statistics of a short run
far from the training ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libtlt.layers.anchor_detection import CONF_OUTPUT, LOC_OUTPUT

INPUT_NAME = "Input"
BN_MOMENTUM = 0.9
NUM_MAPS = 6
#: Expansion blocks (1×1 filters, 3×3 filters, stride) of TAO's three sizes.
EXPANSIONS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "large": ((512, 512, 1), (256, 512, 2), (128, 256, 2), (128, 256, 2), (128, 256, 2)),
    "mid": ((256, 256, 1), (128, 256, 2), (64, 128, 2), (64, 128, 2), (64, 128, 2)),
    "small": ((64, 128, 2),) * 4,
}
#: Initial probability of each object class at every anchor (the heads' bias, :func:`background_prior_logit`).
PRIOR_PROBABILITY = 0.01
#: Backbones whose first map is shrunk to this many channels before DSSD's deconvolution path.
SHRINK_CHANNELS = 256


@dataclass(frozen=True)
class FeatureLayout:
    """Which backbone levels become maps and which expansion blocks follow on ``trunk_level``."""

    levels: tuple[int, ...]
    trunk_level: int
    expansion: str
    trunk_is_map: bool
    shrink_first: bool

    @property
    def blocks(self) -> tuple[tuple[int, int, int], ...]:
        blocks = EXPANSIONS[self.expansion]
        return blocks[:NUM_MAPS - len(self.levels) - (1 if self.trunk_is_map else 0)]

    def strides(self) -> list[int]:
        """Each map's stride in input pixels."""
        result = [2 ** level for level in self.levels]
        stride = 2 ** self.trunk_level
        if self.trunk_is_map:
            result.append(stride)
        for _, _, step in self.blocks:
            stride *= step
            result.append(stride)
        return result


def feature_layout(backbone: str) -> FeatureLayout:
    """TAO's map choice for a ``libtlt.backbones`` name (DETECTORS-SINGLE-STAGE.md §2.1)."""
    if backbone == "darknet53":
        return FeatureLayout((3, 4), 5, "large", False, False)
    if backbone == "darknet19":
        return FeatureLayout((3, 4), 5, "mid", False, False)
    if backbone in ("resnet18", "resnet34"):
        return FeatureLayout((3,), 4, "mid", False, False)
    if backbone in ("resnet10", "mobilenet_v1", "mobilenet_v2", "squeezenet"):
        return FeatureLayout((3,), 4, "small", True, True)
    return FeatureLayout((3,), 4, "large", False, False)  # resnet50/101, vgg16/19, googlenet


def feature_sizes(backbone: str, image_hw: Sequence[int]) -> list[tuple[int, int]]:
    """(h, w) of the six maps for an input of ``image_hw`` ('same' padding everywhere: ceil division)."""
    from libtlt.layers.boxes import feature_sizes as sizes

    return sizes(image_hw, feature_layout(backbone).strides())


@dataclass(frozen=True)
class SsdNetworkConfig:
    """Everything :func:`build_ssd` needs, parsed from an SSD or DSSD spec."""

    backbone: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int  # without background
    boxes_per_cell: tuple[int, ...]
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()
    dssd: bool = False
    pred_num_channels: int = 0


class _Layers:
    """Named layer factory with the network's conventions (he_normal, no bias before BN, BN momentum)."""

    def __init__(self) -> None:
        import keras

        self.keras = keras

    def conv(self, x: Any, filters: int, kernel: Any, name: str, *, strides: int = 1, padding: str = "same",
             bias: bool = False) -> Any:
        return self.keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=bias,
                                        kernel_initializer="he_normal", name=name)(x)

    def bn(self, x: Any, name: str, *, starts_at_one: bool = False) -> Any:
        """``starts_at_one``: γ = 0, β = 1, so the layer outputs 1 until it learns otherwise."""
        initial = {"gamma_initializer": "zeros", "beta_initializer": "ones"} if starts_at_one else {}
        return self.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-3, name=name, **initial)(x)

    def relu(self, x: Any, name: str) -> Any:
        return self.keras.layers.ReLU(name=name)(x)


def _expansion(f: _Layers, x: Any, index: int, one: int, three: int, stride: int) -> Any:
    prefix = f"ssd_expand_block_{index}"
    x = f.relu(f.conv(x, one, 1, f"{prefix}_conv_1", bias=True), f"{prefix}_relu_1")
    x = f.conv(x, three, 3, f"{prefix}_conv_2", strides=stride)
    return f.relu(f.bn(x, f"{prefix}_bn_2"), f"{prefix}_relu_2")


def _kernel_and_padding(small: int, large: int) -> tuple[int, int]:
    """The 'valid' conv after a ×2 deconvolution that lands on ``large`` (§3.1): 2s = l → (3, 1); 2s > l → (2, 0);
    2s < l → (2, 1)."""
    if 2 * small == large:
        return 3, 1
    if 2 * small == large + 1:
        return 2, 0
    if 2 * small == large - 1:
        return 2, 1
    raise ValueError(f"a map of size {small} cannot be deconvolved onto one of size {large}")


def _deconvolution(f: _Layers, small: Any, large: Any, index: int) -> Any:
    prefix = f"dssd_deconv_block_{index}"
    channels = int(large.shape[-1])
    y = f.relu(f.bn(f.conv(large, channels, 3, f"{prefix}_conv_a1"), f"{prefix}_bn_a1"), f"{prefix}_relu_a1")
    y = f.bn(f.conv(y, channels, 3, f"{prefix}_conv_a2"), f"{prefix}_bn_a2")
    up = f.keras.layers.Conv2DTranspose(channels, 2, strides=2, use_bias=False, kernel_initializer="he_normal",
                                        name=f"{prefix}_deconv")(small)
    (kh, ph), (kw, pw) = (_kernel_and_padding(int(small.shape[1]), int(large.shape[1])),
                          _kernel_and_padding(int(small.shape[2]), int(large.shape[2])))
    if ph or pw:
        up = f.keras.layers.ZeroPadding2D(((ph, ph), (pw, pw)), name=f"{prefix}_pad")(up)
    # The product starts as the identity on the lateral path (the top-down factor is 1 until it learns), as
    # zero-γ starts a residual block: with both factors random the product is noise that the heads cannot use,
    # and from scratch DSSD stayed near mAP 0 where SSD learned (docs/ssd.md, "DSSD's deconvolution module").
    up = f.bn(f.conv(up, channels, (kh, kw), f"{prefix}_conv_b", padding="valid"), f"{prefix}_bn_b",
              starts_at_one=True)
    merged = f.keras.layers.Multiply(name=f"{prefix}_mul")([y, up])
    return f.relu(merged, f"{prefix}_relu")


def _prediction_module(f: _Layers, x: Any, index: int, channels: int) -> Any:
    prefix = f"ssd_mpred_block_{index}"
    y = f.relu(f.bn(f.conv(x, channels // 4, 1, f"{prefix}_conv_1"), f"{prefix}_bn_1"), f"{prefix}_relu_1")
    y = f.relu(f.bn(f.conv(y, channels // 4, 1, f"{prefix}_conv_2"), f"{prefix}_bn_2"), f"{prefix}_relu_2")
    y = f.bn(f.conv(y, channels, 1, f"{prefix}_conv_3"), f"{prefix}_bn_3")
    skip = f.bn(f.conv(x, channels, 1, f"{prefix}_conv_skip"), f"{prefix}_bn_skip")
    return f.relu(f.keras.layers.Add(name=f"{prefix}_add")([y, skip]), f"{prefix}_relu")


def build_ssd(config: SsdNetworkConfig) -> Any:
    """The Keras SSD (or DSSD) model of ``config``: outputs ``[mbox_conf_softmax, mbox_loc]``."""
    import keras

    from libtlt.backbones import build_backbone

    if config.num_classes < 1:
        raise ValueError(f"SSD needs at least one class, got {config.num_classes}")
    if len(config.boxes_per_cell) != NUM_MAPS:
        raise ValueError(f"SSD has {NUM_MAPS} prediction layers; got {len(config.boxes_per_cell)} box counts")
    f = _Layers()
    inputs = keras.Input(shape=config.input_shape, name=INPUT_NAME, dtype="float32")
    nhwc = keras.layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    levels = build_backbone(config.backbone, nhwc, freeze_bn=config.freeze_bn, freeze_blocks=config.freeze_blocks,
                            tlt_template=True)
    layout = feature_layout(config.backbone)
    maps = [levels[f"P{level}"] for level in layout.levels]
    x = levels[f"P{layout.trunk_level}"]
    if layout.trunk_is_map:
        maps.append(x)
    for index, (one, three, stride) in enumerate(layout.blocks):
        x = _expansion(f, x, index, one, three, stride)
        maps.append(x)
    expected = feature_sizes(config.backbone, config.input_shape[1:])
    found = [(int(m.shape[1]), int(m.shape[2])) for m in maps]
    if found != expected:  # the anchors are computed from `expected`: they must describe the real maps
        raise ValueError(f"{config.backbone}: feature maps {found} differ from the expected {expected}")
    if config.dssd:
        if layout.shrink_first:
            maps[0] = f.conv(maps[0], SHRINK_CHANNELS, 1, "ssd_shrink_block_0")
        top_down = [maps[-1]]
        for index in range(NUM_MAPS - 2, -1, -1):
            top_down.insert(0, _deconvolution(f, top_down[0], maps[index], index))
        maps = top_down
        if config.pred_num_channels > 0:
            maps = [_prediction_module(f, m, k, config.pred_num_channels) for k, m in enumerate(maps)]
    confs, locs = [], []
    for k, (feature, boxes) in enumerate(zip(maps, config.boxes_per_cell, strict=True)):
        conf = keras.layers.Conv2D(boxes * (config.num_classes + 1), 3, padding="same", kernel_initializer="he_normal",
                                   name=f"ssd_conf_{k}")(feature)
        loc = keras.layers.Conv2D(boxes * 4, 3, padding="same", kernel_initializer="he_normal",
                                  name=f"ssd_loc_{k}")(feature)
        confs.append(keras.layers.Reshape((-1, config.num_classes + 1), name=f"ssd_conf_reshape_{k}")(conf))
        locs.append(keras.layers.Reshape((-1, 4), name=f"ssd_loc_reshape_{k}")(loc))
    conf = keras.layers.Concatenate(axis=1, name="mbox_conf")(confs)
    conf = keras.layers.Softmax(axis=-1, name=CONF_OUTPUT, dtype="float32")(conf)
    loc = keras.layers.Concatenate(axis=1, name=LOC_OUTPUT, dtype="float32")(locs)
    model = keras.Model(inputs, [conf, loc], name="dssd" if config.dssd else "ssd")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    background = background_prior_logit(config.num_classes)
    for k, boxes in enumerate(config.boxes_per_cell):
        bias = np.zeros((boxes, config.num_classes + 1), np.float32)
        bias[:, 0] = background
        model.get_layer(f"ssd_conf_{k}").bias.assign(bias.reshape(-1))
    return model


def background_prior_logit(num_classes: int, prior: float = PRIOR_PROBABILITY) -> float:
    """The background logit (the others 0) that makes every class start at probability ``prior``: the focal loss
    paper's initialisation, so that the first steps are not spent on the many easy background anchors. With more
    than 50 classes the prior shrinks so that background keeps at least half the probability."""
    each = min(prior, 0.5 / num_classes)
    return math.log((1.0 - num_classes * each) / each)
