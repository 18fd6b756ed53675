"""Semantic checks of SSD experiment specs: the "Supported Values" of 000 §7.4 and chapter 3."""

from __future__ import annotations

from typing import Any

from libtlt.spec import values
from libtlt.spec.backbones import SSD_FAMILY_ARCHS
from libtlt.spec.loader import LoadedSpec

#: Chapter 3: W, H >= 128 and multiples of 32.
MIN_SIZE, MULTIPLE = 128, 32
#: Prediction layers of the SSD head: ``scales`` has one more entry (7 in every sample).
NUM_PREDICTOR_LAYERS = 6


def validate(spec: LoadedSpec[Any]) -> None:
    """Raise ``SpecError`` (file:line, field) for the first unsupported value."""
    if not spec.message.HasField("ssd_config"):
        raise spec.error("ssd_config", "ssd_config is required")
    config = spec.message.ssd_config
    values.check_backbone(spec, "ssd_config", config, SSD_FAMILY_ARCHS)
    values.check_anchor_config(spec, "ssd_config", config, NUM_PREDICTOR_LAYERS)
    values.check_training_config(spec)
    values.check_eval_config(spec)
    values.check_nms_config(spec)
    values.check_augmentation_config(spec, min_width=MIN_SIZE, min_height=MIN_SIZE, multiple=MULTIPLE)
    values.check_dataset_config(spec)
