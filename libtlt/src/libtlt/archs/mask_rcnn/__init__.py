"""MaskRCNN: FPN two-stage detector with a mask head, trained on COCO records (000 §7.9, 004)."""

from libtlt.registry import INSTANCE_SEGMENTER, DeclaredArchitecture
from libtlt.spec.experiments import SpecKind

ARCHITECTURE = DeclaredArchitecture(
    "mask_rcnn", INSTANCE_SEGMENTER, pending="issue 17",
    spec=SpecKind("mask_rcnn", "mask_rcnn_pb2", "Experiment", "libtlt.archs.mask_rcnn.validation:validate"),
)
