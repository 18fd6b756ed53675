"""YOLOv3 (000 §7.7): one folder, one entry point (``yolo_v3``, and TLT 2.0's ``yolo``). The network is network.py;
anchors, targets, loss and decoding are encoding.py; spec validation is validation.py and the default spec (the
manual's §7.7 sample) default_spec.txt. Data, training plan, evaluation, inference and calibration are the SSD
family's (``libtlt.layers.ssd_family``): the same KITTI records, augmentation, BGR − means input, schedule and AP.

Differences from the SSD family (DETECTORS-SINGLE-STAGE.md §5): three maps with grid anchors from
``big/mid/small_anchor_shape`` (pixels of the network input); one raw output ``encoded_detections``; the YOLO loss
with ``loss_loc_weight``, ``loss_neg_obj_weights``, ``loss_class_weights`` and ``matching_neutral_box_iou``;
scores σ(class)·σ(objectness) with no background column (labels and class ids 0..C−1); the deployed graph ends in
DeepStream's four ``BatchedNMS`` outputs (count int32, boxes, scores, classes) in standard ONNX ops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from libtlt.archs.yolo_v3 import encoding, validation
from libtlt.archs.yolo_v3.network import OUTPUT_NAME, YoloNetworkConfig, build_yolo
from libtlt.archs.yolo_v3.network import feature_sizes as yolo_sizes
from libtlt.layers import anchor_detection as ad
from libtlt.layers.ssd_family import SsdFamilyArchitecture, _f
from libtlt.spec.protos import yolo_v3_pb2

ANCHOR_FIELDS = validation.ANCHOR_FIELDS  # big, mid, small


class YoloV3Architecture(SsdFamilyArchitecture):
    """YOLOv3 on the SSD family's data, evaluation and tool plumbing."""

    aliases = ("yolo",)
    background_first = False
    conf_output = OUTPUT_NAME

    def __init__(self) -> None:
        super().__init__("yolo_v3", dssd=False, package="libtlt.archs.yolo_v3", proto=yolo_v3_pb2,
                         validate=validation.validate)
        self.config_field = "yolo_config"

    def validate(self, spec: Any) -> None:
        self._validate(spec)
        if isinstance(spec.message, yolo_v3_pb2.Experiment):
            self.backbone(spec)

    # ------------------------------------------------------------------------------------- anchors
    def anchor_shapes(self, spec: Any) -> list[list[tuple[float, float]]]:
        """(width, height) pixel pairs of the big, mid and small maps."""
        from libtlt.spec import values

        config = self._config(spec)
        return [values.parse_field(spec, f"yolo_config.{name}", getattr(config, name), values.parse_pairs)
                for name in ANCHOR_FIELDS]

    def feature_sizes(self, spec: Any) -> list[tuple[int, int]]:
        return yolo_sizes(self.input_shape(spec)[1:])

    def anchors(self, spec: Any) -> np.ndarray:
        return encoding.grid_anchors(self.input_shape(spec)[1:], self.feature_sizes(spec), self.anchor_shapes(spec))

    def nms(self, spec: Any) -> Any:
        from libtlt.runtime.onnx_nms import BATCHED_OUTPUT_NAMES

        return dataclasses.replace(ad.nms_config(spec.message.nms_config, background_class=None), layout="batched",
                                   output_names=BATCHED_OUTPUT_NAMES)

    # --------------------------------------------------------------------------------------- train
    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        names = list(classes) if classes is not None else self.class_names(spec)
        config = self._config(spec)
        counts = tuple(len(group) for group in self.anchor_shapes(spec))
        return build_yolo(YoloNetworkConfig(
            backbone=self.backbone(spec), input_shape=self.input_shape(spec), num_classes=len(names),
            anchors_per_map=counts, arch_conv_blocks=int(config.arch_conv_blocks),  # type: ignore[arg-type]
            freeze_bn=bool(config.freeze_bn), freeze_blocks=tuple(int(b) for b in config.freeze_blocks)))

    def label_encoder(self, spec: Any) -> Any:
        _, height, width = self.input_shape(spec)
        return encoding.target_encoder((width, height), self.feature_sizes(spec), self.anchor_shapes(spec),
                                       len(self.class_names(spec)))

    def loss(self, spec: Any) -> Any:
        config = self._config(spec)
        # one output: Keras 3 takes a bare loss and bare targets for it (a one-entry dict fails)
        return encoding.make_loss(
            self.anchors(spec), loc_weight=_f(config.loss_loc_weight), neg_obj_weight=_f(config.loss_neg_obj_weights),
            class_weight=_f(config.loss_class_weights), neutral_iou=_f(config.matching_neutral_box_iou))

    # -------------------------------------------------------------------------------- detections
    def detector(self, spec: Any, threshold: float = -math.inf) -> Callable[[Mapping[str, np.ndarray]],
                                                                            list[ad.Detections]]:
        from libtlt.runtime.onnx_nms import run_tail, unpack_batched

        anchors, nms = self.anchors(spec), self.nms(spec)
        _, height, width = self.input_shape(spec)

        def detect(outputs: Mapping[str, np.ndarray]) -> list[ad.Detections]:
            if all(name in outputs for name in nms.output_names):
                images = unpack_batched(*(outputs[name] for name in nms.output_names))
            else:
                encoded = np.asarray(outputs[OUTPUT_NAME], np.float32)
                images = unpack_batched(*run_tail(encoding.decode_boxes(encoded, anchors), encoding.scores(encoded), nms))
            return ad.to_detections(images, width, height, threshold, first=0)

        return detect

    def export_outputs(self, spec: Any) -> list[str]:
        return [OUTPUT_NAME]

    def export_tail(self, spec: Any, onnx_model: Any) -> Any:
        """The exported graph with the YOLO decoder and the standard-ONNX NMS (``BatchedNMS`` … ``_3``)."""
        return encoding.append_decoder_and_nms(onnx_model, self.anchors(spec), self.nms(spec), OUTPUT_NAME)

    def deepstream_settings(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        """§13.3.7: labels.txt = the sorted classes, the batched-NMS parser (TLT 2.0: NvDsInferParseCustomYOLOV3TLT)."""
        return {"labels": list(classes), "num-detected-classes": len(classes),
                "parse-bbox-func-name": "NvDsInferParseCustomBatchedNMSTLT",
                "custom-lib-path": "<path to libnvds_infercustomparser_tlt.so>", "maintain-aspect-ratio": 0}

    # ---------------------------------------------------------------------------------- test hooks
    default_literals: ClassVar[Mapping[str, str]] = {
        "depth": "nlayers: 53", "batch": "batch_size_per_gpu: 16", "epochs": "num_epochs: 80",
        "max_lr": "max_learning_rate: 2e-2"}

    def _resnet(self) -> dict[str, str]:
        """The §7.7 sample's DarkNet53 with frozen BN and blocks → a ResNet trained from scratch."""
        return {'arch: "darknet"': 'arch: "resnet"', "freeze_bn: true": "freeze_bn: false",
                "  freeze_blocks: 0\n  freeze_blocks: 1\n": ""}

    def _sample_edits(self) -> dict[str, str]:
        return {**self._resnet(), **DEMO_ANCHORS}

    def _demo_edits(self) -> dict[str, str]:
        """ResNet10 from scratch with the anchor shapes ``tlt-kmeans -n 9`` picks on the demo's data, TAO's sample
        loss weights and neutral IoU (loc 0.8, negative objectness 100, 0.7: in 112-step runs mAP 0.119 where the
        §7.7 sample's 5 / 50 / 0.5 reached 0.012), and no extra conv pairs in the neck (a quarter less time)."""
        return {**self._resnet(), **DEMO_ANCHORS, "arch_conv_blocks: 2": "arch_conv_blocks: 0",
                "loss_loc_weight: 5.0": "loss_loc_weight: 0.8", "loss_neg_obj_weights: 50.0": "loss_neg_obj_weights: 100.0",
                "matching_neutral_box_iou: 0.5": "matching_neutral_box_iou: 0.7"}


#: ``tlt-kmeans -l LABELS -n 9 -x 384 -y 256`` on the bench's generated frames (320, seed 11; mean IoU 0.763).
DEMO_ANCHORS = {
    'big_anchor_shape: "[ (116,90), (156,198), (373,326) ]"': 'big_anchor_shape: "[(33, 101), (68, 52), (123, 71)]"',
    'mid_anchor_shape: "[ (30,61), (62,45), (59,119) ]"': 'mid_anchor_shape: "[(22, 64), (51, 28), (86, 38)]"',
    'small_anchor_shape: "[ (10,13), (16,30), (33,23) ]"': 'small_anchor_shape: "[(9, 25), (13, 38), (29, 21)]"',
}

ARCHITECTURE = YoloV3Architecture()
