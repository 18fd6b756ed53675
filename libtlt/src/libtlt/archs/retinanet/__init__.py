"""RetinaNet (000 §7.6, §7.8): one folder, one entry point. The network (FPN + shared subnets) is network.py; the
anchors, targets, decoding, evaluation and the export tail are the SSD family's (``libtlt.layers.ssd_family``)
with TLT 2.0's RetinaNet layout: one sigmoid per object class and no background column, so the NMS labels and
labels.txt are the sorted classes 0..C−1 (DeepStream's backgroundLabelId −1). Spec validation in validation.py,
the default spec (the manual's §7.8 sample) in default_spec.txt.

Differences from SSD (DETECTORS-SINGLE-STAGE.md §1.1, §4): five maps P3–P7, every size × the octaves 2^(j/n),
j < n = ``n_anchor_levels`` (TAO's field, default 3: the seed's "three underlying scaling factors"); neutral IoU band [0.4, 0.5); sigmoid focal loss
over the C classes (``focal_loss_alpha``, ``focal_loss_gamma``), ``loss_loc_weight`` × smooth-L1; the spec's depth
is ``nlayers`` or the §7.8 sample's ``n_layers``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from libtlt.archs.retinanet import validation
from libtlt.archs.retinanet.network import CONF_OUTPUT, NUM_MAPS, RetinaNetNetworkConfig, build_retinanet
from libtlt.archs.retinanet.network import feature_sizes as fpn_sizes
from libtlt.layers import anchor_detection as ad
from libtlt.layers.ssd_family import SsdFamilyArchitecture, _f
from libtlt.spec.protos import retinanet_pb2


class RetinaNetArchitecture(SsdFamilyArchitecture):
    """RetinaNet on the SSD family's anchor machinery."""

    num_layers = NUM_MAPS
    conf_output = CONF_OUTPUT
    background_first = False
    negative_threshold = 0.4

    def __init__(self) -> None:
        super().__init__("retinanet", dssd=False, package="libtlt.archs.retinanet", proto=retinanet_pb2,
                         validate=validation.validate)

    def validate(self, spec: Any) -> None:
        super().validate(spec)
        if isinstance(spec.message, retinanet_pb2.Experiment):
            boxes = self.anchor_config(spec).boxes_per_cell()
            if len(set(boxes)) > 1:
                raise spec.error("retinanet_config.aspect_ratios",
                                 f"the subnets are shared by the five maps, so every map needs the same number of "
                                 f"anchors; these lists give {boxes}")

    def backbone(self, spec: Any) -> str:
        from libtlt.spec.backbones import backbone_name

        config = self._config(spec)
        depth = config.n_layers if config.HasField("n_layers") else config.nlayers if config.HasField("nlayers") else None
        field = "n_layers" if config.HasField("n_layers") else "nlayers"
        try:
            return backbone_name(config.arch or "resnet", depth)
        except ValueError as err:
            raise spec.error(f"{self.config_field}.{field}", str(err)) from None

    def anchor_config(self, spec: Any) -> ad.AnchorConfig:
        levels = int(self._config(spec).n_anchor_levels)  # octaves 2^(j/n): 1, 1.26, 1.59 for the default 3
        return dataclasses.replace(super().anchor_config(spec), octaves=tuple(2.0 ** (j / levels) for j in range(levels)))

    def feature_sizes(self, spec: Any) -> list[tuple[int, int]]:
        return fpn_sizes(self.input_shape(spec)[1:])

    def loss_config(self, spec: Any) -> ad.LossConfig:
        config = self._config(spec)
        return ad.LossConfig(loc_weight=_f(config.loss_loc_weight), alpha=_f(config.focal_loss_alpha),
                             gamma=_f(config.focal_loss_gamma), sigmoid=True)

    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        names = list(classes) if classes is not None else self.class_names(spec)
        config = self._config(spec)
        return build_retinanet(RetinaNetNetworkConfig(
            backbone=self.backbone(spec), input_shape=self.input_shape(spec), num_classes=len(names),
            boxes_per_cell=self.anchor_config(spec).boxes_per_cell()[0], n_kernels=int(config.n_kernels),
            feature_size=int(config.feature_size), freeze_bn=bool(config.freeze_bn),
            freeze_blocks=tuple(int(b) for b in config.freeze_blocks)))

    default_literals: ClassVar[Mapping[str, str]] = {
        "depth": "n_layers: 18", "batch": "batch_size_per_gpu: 24", "epochs": "num_epochs: 100",
        "max_lr": "max_learning_rate: 1.5e-2"}

    def _sample_edits(self) -> dict[str, str]:
        return {"feature_size: 256": "feature_size: 32"}

    def _demo_edits(self) -> dict[str, str]:
        """Subnets of 128 channels; scales that give the sample data's objects positive anchors on P3–P5."""
        return {'scales: "[0.045, 0.09, 0.2, 0.4, 0.55, 0.7]"': 'scales: "[0.1, 0.2, 0.4, 0.6, 0.8, 1.0]"',
                "feature_size: 256": "feature_size: 128"}

ARCHITECTURE = RetinaNetArchitecture()
