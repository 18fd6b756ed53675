"""Semantic checks of RetinaNet experiment specs: the "Supported Values" of 000 §7.6 / §7.8 and chapter 3."""

from __future__ import annotations

from typing import Any

from libtlt.spec import values
from libtlt.spec.backbones import SSD_FAMILY_ARCHS
from libtlt.spec.loader import LoadedSpec

#: Chapter 3: W, H >= 128 and multiples of 32.
MIN_SIZE, MULTIPLE = 128, 32
#: "RetinaNet FPN generates 5 feature maps, thus the scales field requires a list of 6 scaling factors."
NUM_PREDICTOR_LAYERS = 5


def validate(spec: LoadedSpec[Any]) -> None:
    """Raise ``SpecError`` (file:line, field) for the first unsupported value."""
    if not spec.message.HasField("retinanet_config"):
        raise spec.error("retinanet_config", "retinanet_config is required")
    config = spec.message.retinanet_config
    depth_field = "nlayers"
    if config.HasField("n_layers"):
        # The 7.8 sample writes n_layers for 7.6's nlayers: the same setting under another name.
        if config.HasField("nlayers") and config.nlayers != config.n_layers:
            raise spec.error("retinanet_config.n_layers",
                             f"conflicts with nlayers ({config.nlayers}); n_layers is another name for nlayers")
        depth_field = "n_layers"
    values.check_backbone(spec, "retinanet_config", config, SSD_FAMILY_ARCHS, depth_field=depth_field)
    values.check_anchor_config(spec, "retinanet_config", config, NUM_PREDICTOR_LAYERS)
    for name in ("n_kernels", "feature_size", "n_anchor_levels"):
        if getattr(config, name) < 1:
            raise spec.error(f"retinanet_config.{name}", f"must be > 0, got {getattr(config, name)}")
    values.check_training_config(spec)
    values.check_eval_config(spec)
    values.check_nms_config(spec)
    values.check_augmentation_config(spec, min_width=MIN_SIZE, min_height=MIN_SIZE, multiple=MULTIPLE)
    values.check_dataset_config(spec)
