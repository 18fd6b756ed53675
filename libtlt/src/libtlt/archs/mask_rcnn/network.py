"""The MaskRCNN network pieces (DETECTORS-TWO-STAGE.md §2 "Network") as Keras 3 building blocks, NHWC inside
like FasterRCNN's: the model input is NCHW ``Input`` ``[N, 3, H, W]`` and a ``Permute`` hands NHWC to the rest.

* :func:`fpn` — ResNet C2..C5 (``libtlt.backbones`` levels P2..P5, TLT layer names) → lateral 1×1 convs ``l2``..``l5``,
  top-down nearest ×2 upsampling (``FPN_up_<l>``) added to the lateral (``FPN_add_<l>``), 3×3 output convs
  ``post_hoc_d2``..``post_hoc_d5``; levels above 5 are stride-2 max pools ``p6``, ``p7`` of the level below.
* :func:`rpn_head` — ``rpn`` 3×3 ReLU, ``rpn-class`` 1×1 (A logits), ``rpn-box`` 1×1 (4A: anchor a's (ty, tx, th,
  tw) at 4a..4a+3): one set of layers applied to every level.
* :func:`build_box_head` — ROI crops ``[M, 7, 7, C]`` → ``fc6`` → ``fc7`` (ReLU) → ``class-predict`` ``[M, C_all]``
  logits (class 0 background) and ``box-predict`` ``[M, 4·C_all]`` (class-specific, background slot included).
* :func:`build_mask_head` — crops ``[M, R/2, R/2, C]`` → ``mask-conv-l0``..``l3`` (3×3 ReLU) → ``conv5-mask`` 2×2
  stride-2 transposed conv (ReLU) → ``mask_fcn_logits`` 1×1 with one channel per class → ``[M, C_all, R, R]``
  logits (channels-first, the layout of TLT's ``mask_fcn_logits`` output).

:class:`MaskRcnnNetwork` holds three functional models (image → FPN features and RPN outputs; box head; mask
head); the ROI operations between them (:mod:`proposals`, :mod:`roi_align`) are TensorFlow functions, so the
training graph (:mod:`training`) and inference compose them. Sizes (FPN channels, head widths) are configurable so
tests run tiny networks. Initializers: RPN convs N(0, 0.01²); ``class-predict`` N(0, 0.01²), ``box-predict``
N(0, 0.001²) (the reference's choices); zero biases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from libtlt.archs.mask_rcnn.anchors import AnchorConfig

INPUT_NAME = "Input"
RPN_CONV, RPN_CLASS, RPN_BOX = "rpn", "rpn-class", "rpn-box"
FC6, FC7, CLASS_PREDICT, BOX_PREDICT = "fc6", "fc7", "class-predict", "box-predict"
MASK_CONVS = tuple(f"mask-conv-l{i}" for i in range(4))
MASK_DECONV, MASK_LOGITS, MASK_LOGITS_NCHW = "conv5-mask", "mask_fcn_logits", "mask_logits_nchw"
BOX_HEAD_LAYERS = ("box_flatten", FC6, FC7)
#: The box head's crop side (TAO: fixed 7, = mrcnn_resolution / 4 at the default 28).
BOX_CROP_SIZE = 7
#: The highest level the ResNet backbone produces (C5, stride 32); levels above are max-pooled.
BACKBONE_TOP_LEVEL = 5


def feature_key(level: int) -> str:
    return f"P{level}"


def rpn_class_key(level: int) -> str:
    return f"rpn_class_P{level}"


def rpn_box_key(level: int) -> str:
    return f"rpn_box_P{level}"


@dataclass(frozen=True)
class MaskRcnnNetworkConfig:
    """Everything the network needs from a MaskRCNN spec (``data_config`` and ``maskrcnn_config``)."""

    num_classes: int  # data_config.num_classes: background (0) included
    image_hw: tuple[int, int] = (832, 1344)
    nlayers: int = 50
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    fpn_channels: int = 256
    mlp_head_dim: int = 1024  # fast_rcnn_mlp_head_dim
    mask_head_channels: int = 256
    mrcnn_resolution: int = 28
    use_pooling: bool = True  # ResNet stem max pool, as the TF reference's ResNet
    all_projections: bool = True
    use_bias: bool = False
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got {self.num_classes}")
        if self.mrcnn_resolution < 2 or self.mrcnn_resolution % 2:
            raise ValueError(f"mrcnn_resolution must be even and >= 2, got {self.mrcnn_resolution}")
        if not 2 <= self.anchors.min_level <= BACKBONE_TOP_LEVEL:
            raise ValueError(f"min_level must be in 2..{BACKBONE_TOP_LEVEL}, got {self.anchors.min_level}")
        step = 2 ** self.anchors.max_level
        if any(v % step for v in self.image_hw):
            raise ValueError(f"image size {self.image_hw} must be divisible by 2^max_level = {step}")

    @property
    def backbone(self) -> str:
        return f"resnet{self.nlayers}"

    @property
    def mask_crop_size(self) -> int:
        return self.mrcnn_resolution // 2


def _normal(stddev: float) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=stddev)


def fpn(backbone_levels: dict[str, Any], min_level: int, max_level: int, channels: int) -> dict[int, Any]:
    """FPN outputs ``{level: [N, H/2^l, W/2^l, channels]}`` for min_level..max_level (module docstring)."""
    layers = keras.layers
    top = min(max_level, BACKBONE_TOP_LEVEL)
    lateral = {level: layers.Conv2D(channels, 1, name=f"l{level}")(backbone_levels[feature_key(level)])
               for level in range(min_level, top + 1)}
    merged = {top: lateral[top]}
    for level in range(top - 1, min_level - 1, -1):
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"FPN_up_{level}")(merged[level + 1])
        merged[level] = layers.Add(name=f"FPN_add_{level}")([lateral[level], up])
    out = {level: layers.Conv2D(channels, 3, padding="same", name=f"post_hoc_d{level}")(merged[level])
           for level in range(min_level, top + 1)}
    for level in range(top + 1, max_level + 1):
        out[level] = layers.MaxPooling2D(1, strides=2, name=f"p{level}")(out[level - 1])
    return out


def rpn_head(features: dict[int, Any], num_anchors: int, channels: int) -> tuple[dict[int, Any], dict[int, Any]]:
    """``({level: rpn-class [N, h, w, A]}, {level: rpn-box [N, h, w, 4A]})``, one shared set of layers."""
    conv = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=_normal(0.01),
                               name=RPN_CONV)
    scores = keras.layers.Conv2D(num_anchors, 1, kernel_initializer=_normal(0.01), name=RPN_CLASS, dtype="float32")
    boxes = keras.layers.Conv2D(4 * num_anchors, 1, kernel_initializer=_normal(0.01), name=RPN_BOX, dtype="float32")
    hidden = {level: conv(x) for level, x in features.items()}
    return ({level: scores(x) for level, x in hidden.items()}, {level: boxes(x) for level, x in hidden.items()})


def rpn_graph(config: MaskRcnnNetworkConfig) -> tuple[Any, dict[int, Any], dict[int, Any], dict[int, Any]]:
    """``(Input NCHW, {level: P<l>}, {level: rpn-class}, {level: rpn-box})``: the trunk, FPN and RPN head (NHWC)."""
    from libtlt.backbones import build_backbone

    height, width = config.image_hw
    inputs = keras.Input(shape=(3, height, width), name=INPUT_NAME, dtype="float32")
    nhwc = keras.layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    levels = build_backbone(config.backbone, nhwc, use_bias=config.use_bias, all_projections=config.all_projections,
                            use_pooling=config.use_pooling, freeze_bn=config.freeze_bn,
                            freeze_blocks=config.freeze_blocks)
    anchors = config.anchors
    features = fpn(levels, anchors.min_level, anchors.max_level, config.fpn_channels)
    scores, boxes = rpn_head(features, anchors.num_anchors, config.fpn_channels)
    return inputs, features, scores, boxes


def build_rpn_model(config: MaskRcnnNetworkConfig) -> keras.Model:
    """``Input`` NCHW → dict of ``P<l>`` features and ``rpn_class_P<l>`` / ``rpn_box_P<l>`` outputs (NHWC)."""
    inputs, features, scores, boxes = rpn_graph(config)
    outputs: dict[str, Any] = {}
    for level in config.anchors.levels:
        outputs[feature_key(level)] = features[level]
        outputs[rpn_class_key(level)] = scores[level]
        outputs[rpn_box_key(level)] = boxes[level]
    return keras.Model(inputs, outputs, name="mask_rcnn_rpn")


def box_head(crops: Any, config: MaskRcnnNetworkConfig) -> tuple[Any, Any]:
    """The box head's layers on ``[M, 7, 7, C]`` crops: ``(class-predict [M, C_all], box-predict [M, 4·C_all])``."""
    layers = keras.layers
    x = layers.Flatten(name="box_flatten")(crops)
    x = layers.Dense(config.mlp_head_dim, activation="relu", name=FC6)(x)
    x = layers.Dense(config.mlp_head_dim, activation="relu", name=FC7)(x)
    logits = layers.Dense(config.num_classes, kernel_initializer=_normal(0.01), name=CLASS_PREDICT,
                          dtype="float32")(x)
    deltas = layers.Dense(4 * config.num_classes, kernel_initializer=_normal(0.001), name=BOX_PREDICT,
                          dtype="float32")(x)
    return logits, deltas


def build_box_head(config: MaskRcnnNetworkConfig) -> keras.Model:
    """Crops ``[M, 7, 7, C]`` → ``[class-predict [M, C_all], box-predict [M, 4·C_all]]``."""
    crops = keras.Input(shape=(BOX_CROP_SIZE, BOX_CROP_SIZE, config.fpn_channels), name="box_crops")
    return keras.Model(crops, list(box_head(crops, config)), name="mask_rcnn_box_head")


def mask_head(crops: Any, config: MaskRcnnNetworkConfig) -> Any:
    """The mask head's layers on ``[M, R/2, R/2, C]`` crops: logits ``[M, C_all, R, R]``."""
    layers = keras.layers
    x = crops
    for name in MASK_CONVS:
        x = layers.Conv2D(config.mask_head_channels, 3, padding="same", activation="relu", name=name)(x)
    x = layers.Conv2DTranspose(config.mask_head_channels, 2, strides=2, activation="relu", name=MASK_DECONV)(x)
    x = layers.Conv2D(config.num_classes, 1, name=MASK_LOGITS, dtype="float32")(x)
    return layers.Permute((3, 1, 2), name=MASK_LOGITS_NCHW)(x)


def build_mask_head(config: MaskRcnnNetworkConfig) -> keras.Model:
    """Crops ``[M, R/2, R/2, C]`` → mask logits ``[M, C_all, R, R]``."""
    size = config.mask_crop_size
    crops = keras.Input(shape=(size, size, config.fpn_channels), name="mask_crops")
    return keras.Model(crops, mask_head(crops, config), name="mask_rcnn_mask_head")


@dataclass
class MaskRcnnNetwork:
    """The three functional models of one MaskRCNN network and the config they were built from."""

    config: MaskRcnnNetworkConfig
    rpn: keras.Model
    box_head: keras.Model
    mask_head: keras.Model

    @property
    def models(self) -> tuple[keras.Model, keras.Model, keras.Model]:
        return self.rpn, self.box_head, self.mask_head

    @property
    def trainable_variables(self) -> list[Any]:
        return [v for model in self.models for v in model.trainable_variables]


def build_network(config: MaskRcnnNetworkConfig) -> MaskRcnnNetwork:
    """A fresh network of ``config`` (random weights)."""
    return MaskRcnnNetwork(config, build_rpn_model(config), build_box_head(config), build_mask_head(config))
