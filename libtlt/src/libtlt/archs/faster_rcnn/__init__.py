"""FasterRCNN: two-stage detector with RPN, RoI crop-and-resize and an RCNN head (000 §7.3, 002)."""

from libtlt.registry import BOX_DETECTOR, DeclaredArchitecture
from libtlt.spec.experiments import SpecKind

ARCHITECTURE = DeclaredArchitecture(
    "faster_rcnn", BOX_DETECTOR, pending="issue 16",
    spec=SpecKind("faster_rcnn", "faster_rcnn_pb2", "Experiment", "libtlt.archs.faster_rcnn.validation:validate"),
)
