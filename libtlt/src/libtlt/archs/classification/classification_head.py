"""The classification model: NCHW ``input_1`` → backbone → pooling → ``predictions`` (softmax).

The input is TLT's channels-first ``input_1`` (C, H, W), permuted once to channels-last for the
backbone (weights are the same in both layouts; REFERENCE.md "Measured on this machine"). The head:

* default: ``avg_pool`` (global average pooling of the backbone's last feature level) and the Dense
  ``predictions`` layer with softmax, exported as ``predictions/Softmax``;
* ``retain_head`` (003): the ImageNet head of the original network where it differs — VGG's
  ``flatten`` → ``fc1`` → ``fc2`` (4096 units each, ReLU, each followed by the spec's ``dropout``)
  and EfficientNet's ``top_dropout`` (the spec's ``dropout``, else 0.2) — otherwise the default.

The spec's ``dropout`` goes to the backbone, which applies it where the manuals say it is valid (VGG
and SqueezeNet); the default head adds none.

The softmax layer always computes in float32, so a mixed-precision (AMP) model still outputs
float32 probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INPUT_NAME = "input_1"
PREDICTIONS = "predictions"
#: Units of VGG's retained fully connected layers.
VGG_FC_UNITS = 4096
EFFICIENTNET_TOP_DROPOUT = 0.2


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything :func:`build_classifier` needs, already parsed from the spec."""

    backbone: str  # a ``libtlt.backbones`` name, e.g. "resnet18"
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    use_bias: bool = False
    use_batch_norm: bool = True
    all_projections: bool = True
    use_pooling: bool = False
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()
    dropout: float = 0.0
    retain_head: bool = False
    bn_momentum: float | None = None
    bn_epsilon: float | None = None
    backbone_options: dict[str, Any] = field(default_factory=dict)


def build_classifier(config: ClassifierConfig) -> Any:
    """The Keras functional model for ``config`` (not compiled)."""
    import keras

    from libtlt.backbones import build_backbone

    inputs = keras.Input(shape=config.input_shape, name=INPUT_NAME, dtype="float32")
    nhwc = keras.layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    features = build_backbone(
        config.backbone,
        nhwc,
        use_bias=config.use_bias,
        use_batch_norm=config.use_batch_norm,
        all_projections=config.all_projections,
        use_pooling=config.use_pooling,
        freeze_bn=config.freeze_bn,
        freeze_blocks=config.freeze_blocks,
        dropout=config.dropout,
        **config.backbone_options,
    )
    x = features[max(features, key=lambda level: int(level[1:]))]
    family = _family(config.backbone)
    if config.retain_head and family == "vgg":
        x = keras.layers.Flatten(name="flatten")(x)
        for name in ("fc1", "fc2"):
            x = keras.layers.Dense(VGG_FC_UNITS, activation="relu", name=name)(x)
            if config.dropout > 0:
                x = keras.layers.Dropout(config.dropout, name=f"{name}_dropout")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if config.retain_head and family == "efficientnet":
            x = keras.layers.Dropout(config.dropout or EFFICIENTNET_TOP_DROPOUT, name="top_dropout")(x)
    outputs = keras.layers.Dense(config.num_classes, activation="softmax", name=PREDICTIONS, dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=config.backbone)
    set_batch_norm(model, config.bn_momentum, config.bn_epsilon)
    return model


def set_batch_norm(model: Any, momentum: float | None, epsilon: float | None) -> None:
    """Apply the spec's ``bn_config`` (003) to every BatchNormalization layer of ``model``."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            if momentum is not None:
                layer.momentum = momentum
            if epsilon is not None:
                layer.epsilon = epsilon


def _family(backbone: str) -> str:
    for family in ("efficientnet", "vgg"):
        if backbone.startswith(family):
            return family
    return backbone

