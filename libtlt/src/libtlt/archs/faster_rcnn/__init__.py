"""FasterRCNN: two-stage detector with RPN, RoI crop-and-resize and an RCNN head (000 §7.3, 002)."""

from libtlt.registry import BOX_DETECTOR, DeclaredArchitecture

ARCHITECTURE = DeclaredArchitecture("faster_rcnn", BOX_DETECTOR, pending="issue 16")
