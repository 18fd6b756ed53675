"""MaskRCNN: FPN two-stage detector with a mask head, trained on COCO records (000 §7.9, 004)."""

from libtlt.registry import INSTANCE_SEGMENTER, DeclaredArchitecture

ARCHITECTURE = DeclaredArchitecture("mask_rcnn", INSTANCE_SEGMENTER, pending="issue 17")
