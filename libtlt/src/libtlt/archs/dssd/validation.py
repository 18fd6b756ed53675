"""Semantic checks of DSSD experiment specs: the "Supported Values" of 000 §7.5 and chapter 3."""

from __future__ import annotations

from typing import Any

from libtlt.spec import values
from libtlt.spec.backbones import SSD_FAMILY_ARCHS
from libtlt.spec.loader import LoadedSpec

#: Chapter 3: W, H >= 128 and multiples of 32.
MIN_SIZE, MULTIPLE = 128, 32
#: Prediction layers of the DSSD head: ``scales`` has one more entry (7 in both samples).
NUM_PREDICTOR_LAYERS = 6
#: 7.5.6 pred_num_channels: 0 disables the DSSD prediction module.
PRED_NUM_CHANNELS = (0, 256, 512, 1024)


def validate(spec: LoadedSpec[Any]) -> None:
    """Raise ``SpecError`` (file:line, field) for the first unsupported value."""
    if not spec.message.HasField("dssd_config"):
        raise spec.error("dssd_config", "dssd_config is required")
    config = spec.message.dssd_config
    values.check_backbone(spec, "dssd_config", config, SSD_FAMILY_ARCHS)
    values.check_anchor_config(spec, "dssd_config", config, NUM_PREDICTOR_LAYERS)
    if config.pred_num_channels not in PRED_NUM_CHANNELS:
        raise spec.error("dssd_config.pred_num_channels",
                         f"must be one of {', '.join(map(str, PRED_NUM_CHANNELS))}, got {config.pred_num_channels}")
    values.check_training_config(spec)
    values.check_eval_config(spec)
    values.check_nms_config(spec)
    values.check_augmentation_config(spec, min_width=MIN_SIZE, min_height=MIN_SIZE, multiple=MULTIPLE)
    values.check_dataset_config(spec)
