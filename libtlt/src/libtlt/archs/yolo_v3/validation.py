"""Semantic checks of YOLOv3 experiment specs: the "Supported Values" of 000 §7.7 and chapter 3."""

from __future__ import annotations

from typing import Any

from libtlt.spec import values
from libtlt.spec.backbones import SSD_FAMILY_ARCHS
from libtlt.spec.loader import LoadedSpec

#: Chapter 3: W, H >= 128 and multiples of 32.
MIN_SIZE, MULTIPLE = 128, 32
ANCHOR_FIELDS = ("big_anchor_shape", "mid_anchor_shape", "small_anchor_shape")
ARCH_CONV_BLOCKS = (0, 1, 2)


def validate(spec: LoadedSpec[Any]) -> None:
    """Raise ``SpecError`` (file:line, field) for the first unsupported value."""
    if not spec.message.HasField("yolo_config"):
        raise spec.error("yolo_config", "yolo_config is required")
    config = spec.message.yolo_config
    values.check_backbone(spec, "yolo_config", config, SSD_FAMILY_ARCHS)
    for name in ANCHOR_FIELDS:
        field = f"yolo_config.{name}"
        if not config.HasField(name):
            raise spec.error(field, f"{name} is required (at least one (width, height) anchor shape)")
        shapes = values.parse_field(spec, field, getattr(config, name), values.parse_pairs)
        if not shapes:
            raise spec.error(field, "needs at least one (width, height) anchor shape")
        for width, height in shapes:
            if not (width > 0 and height > 0):
                raise spec.error(field, f"anchor shapes must be positive, got ({width:g}, {height:g})")
    values.check_probability(spec, "yolo_config.matching_neutral_box_iou", config.matching_neutral_box_iou)
    if config.arch_conv_blocks not in ARCH_CONV_BLOCKS:
        raise spec.error("yolo_config.arch_conv_blocks", f"must be 0, 1 or 2, got {config.arch_conv_blocks}")
    for name in ("loss_loc_weight", "loss_neg_obj_weights", "loss_class_weights"):
        values.check_range(spec, f"yolo_config.{name}", getattr(config, name), 0.0)
    values.check_training_config(spec)
    values.check_eval_config(spec)
    values.check_nms_config(spec)
    values.check_augmentation_config(spec, min_width=MIN_SIZE, min_height=MIN_SIZE, multiple=MULTIPLE)
    values.check_dataset_config(spec)
