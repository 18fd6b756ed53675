"""The classification spec's input settings (000 prototxt and 003 YAML forms): the network input and the
training augmentation of a spec, as :class:`libtlt.data.classification.InputConfig`.

It reads the classification spec, so it lives with the architecture; the input pipeline
(``libtlt.data.classification``) knows only ``InputConfig`` and model metadata.
"""

from __future__ import annotations

from typing import Any

from libtlt.archs.classification.validation import canonical_experiment, input_image_size
from libtlt.data.classification import AugmentSettings, InputConfig
from libtlt.log import get_logger

logger = get_logger("libtlt.archs.classification")


def augment_settings(experiment: Any, syntax: str | None = None) -> AugmentSettings:
    """The augmentation a classification spec asks for, with the defaults of the form it is written in.

    The 003 YAML form takes the 003 tables' defaults (random crop, centre crop and colour augmentation
    on, mixup_alpha 0.2, label_smoothing 0.1). In the 000 prototxt form the original toolkit's fields
    are proto3 scalars, so an unwritten ``enable_random_crop``, ``enable_center_crop``,
    ``enable_color_augmentation``, ``mixup_alpha`` or ``label_smoothing`` means false / 0; horizontal
    flip stays on unless ``disable_horizontal_flip``. ``experiment`` is a ``LoadedSpec`` (its
    ``syntax`` decides) or a message (``syntax`` then defaults to "text").
    """
    message = getattr(experiment, "message", experiment)
    form = syntax or getattr(experiment, "syntax", "text")
    exp = canonical_experiment(message)
    augment, train = exp.augment, exp.train_config
    yaml_form = form == "yaml"

    def pick(owner: Any, name: str, zero: Any) -> Any:
        return getattr(owner, name) if yaml_form or owner.HasField(name) else zero

    return AugmentSettings(
        random_crop=bool(pick(augment, "enable_random_crop", False)),
        center_crop=bool(pick(augment, "enable_center_crop", False)),
        color_augmentation=bool(pick(augment, "enable_color_augmentation", False)),
        horizontal_flip=not augment.disable_horizontal_flip,
        mixup_alpha=float(f"{pick(augment, 'mixup_alpha', 0.0):.7g}"),
        label_smoothing=float(f"{pick(train, 'label_smoothing', 0.0):.7g}"),
        defaults="yaml" if yaml_form else "prototxt",
    )


def input_config_from_spec(experiment: Any, *, training: bool) -> InputConfig:
    """The input configuration of a classification spec (a ``LoadedSpec``, or a message: prototxt form).

    Unwritten augmentation settings take the defaults of the spec's form (:func:`augment_settings`).
    Augmentation is returned only for ``training``; evaluation gets only the center crop setting.
    """
    from libtlt.spec.protos import classification_pb2 as pb

    message = getattr(experiment, "message", experiment)
    exp = canonical_experiment(message)
    channels, height, width = input_image_size(exp.model_config)
    bicubic = exp.model_config.resize_interpolation_method == pb.BICUBIC
    mean = tuple(exp.data.image_mean) or None
    if mean is not None and exp.data.preprocess_mode != "caffe":
        logger.warning("data.image_mean is used only with preprocess_mode 'caffe'; ignored for '%s'",
                       exp.data.preprocess_mode)
        mean = None
    settings = augment_settings(experiment)
    common: dict[str, Any] = {
        "channels": channels, "height": height, "width": width, "preprocess_mode": exp.data.preprocess_mode,
        "image_mean": mean, "interpolation": "bicubic" if bicubic else "bilinear",
    }
    if not training:
        return InputConfig(**common, center_crop=settings.center_crop)
    return InputConfig(
        **common,
        random_crop=settings.random_crop,
        color_augmentation=settings.color_augmentation,
        horizontal_flip=settings.horizontal_flip,
        mixup_alpha=settings.mixup_alpha,
        label_smoothing=settings.label_smoothing,
    )
