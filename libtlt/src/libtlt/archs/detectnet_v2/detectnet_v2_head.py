"""The DetectNet_v2 model (000 §7.2.1, REFERENCE.md "DetectNet_v2").

NCHW ``input_1`` (C, H, W) → ``Permute`` to channels-last → backbone → its feature map at the model's
stride (:func:`feature_stride`) → optional dropout → ``Permute`` back to channels-first → two 1×1 convolutions in NCHW:

* ``output_cov``: C filters, sigmoid (exported as ``output_cov/Sigmoid``): the coverage per class and cell;
* ``output_bbox``: 4·C filters, linear (``output_bbox/BiasAdd``): class ``c``'s ``L, T, R, B`` distances in
  channels ``4c … 4c+3``, divided by the objective's ``scale``.

The backbone is built with TLT's template: a ResNet keeps all four stages, the last one at stride 1
without ``use_pooling`` (output stride 16, stage 4's output feeds the heads) and at stride 2 with it
(output stride 32, as TLT's template gives). Other backbones are read at their stride-16 level ``P4``.

Both outputs are ``[N, channels, H / stride, W / stride]``; the heads compute in float32 so a mixed-precision
model still outputs float32.

Batch normalization uses a moving-average momentum of 0.9 (Keras' default 0.99 leaves the inference
statistics far from the training ones after a short run: a model that separates objects from background
with batch statistics would predict almost flat coverage at inference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INPUT_NAME = "input_1"
OUTPUT_COV = "output_cov"
OUTPUT_BBOX = "output_bbox"
#: DetectNet_v2's usual output stride in input pixels (see :func:`feature_stride`).
STRIDE = 16
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class DetectNetConfig:
    """Everything :func:`build_detectnet` needs, already parsed from the spec."""

    backbone: str  # a libtlt.backbones name, e.g. "resnet18"
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    use_batch_norm: bool = False
    all_projections: bool = False
    use_pooling: bool = False
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()
    dropout: float = 0.0


def feature_stride(backbone: str, use_pooling: bool) -> int:
    """The output stride: 32 for a ResNet with ``use_pooling`` (TLT's template strides its stage 4 then), else 16."""
    return 32 if backbone.startswith("resnet") and use_pooling else STRIDE


def output_grid(input_shape: tuple[int, int, int], stride: int = STRIDE) -> tuple[int, int]:
    """(grid_h, grid_w) of the outputs for an NCHW ``input_shape``: ceil(H / stride), ceil(W / stride)."""
    _, height, width = input_shape
    return -(-height // stride), -(-width // stride)


def build_detectnet(config: DetectNetConfig) -> Any:
    """The Keras DetectNet_v2 model of ``config`` (outputs ``[output_cov, output_bbox]``)."""
    import keras

    from libtlt.backbones import build_backbone

    if config.num_classes < 1:
        raise ValueError(f"DetectNet_v2 needs at least one class, got {config.num_classes}")
    inputs = keras.Input(shape=config.input_shape, name=INPUT_NAME, dtype="float32")
    nhwc = keras.layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    features = build_backbone(
        config.backbone,
        nhwc,
        use_batch_norm=config.use_batch_norm,
        all_projections=config.all_projections,
        use_pooling=config.use_pooling,
        freeze_bn=config.freeze_bn,
        freeze_blocks=config.freeze_blocks,
        dropout=config.dropout,
        tlt_template=True,
    )
    stride = feature_stride(config.backbone, config.use_pooling)
    level = f"P{stride.bit_length() - 1}"
    if level not in features:
        raise ValueError(f"backbone {config.backbone} has no stride-{stride} feature level")
    x = features[level]
    if config.dropout > 0.0:
        x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    x = keras.layers.Permute((3, 1, 2), name="features_nchw")(x)
    cov = keras.layers.Conv2D(config.num_classes, 1, activation="sigmoid", data_format="channels_first",
                              name=OUTPUT_COV, dtype="float32")(x)
    bbox = keras.layers.Conv2D(4 * config.num_classes, 1, data_format="channels_first", name=OUTPUT_BBOX,
                               dtype="float32")(x)
    model = keras.Model(inputs, [cov, bbox], name="detectnet_v2")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model
