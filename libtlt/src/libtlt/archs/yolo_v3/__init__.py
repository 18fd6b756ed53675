"""YOLOv3: three-scale anchor detector (000 §7.7); spec validation in validation.py;
registered (so its spec loads and every tool says what brings it) but serving no verb yet."""

from libtlt.registry import BOX_DETECTOR, DeclaredArchitecture
from libtlt.spec.experiments import SpecKind

ARCHITECTURE = DeclaredArchitecture(
    "yolo_v3", BOX_DETECTOR, pending="issue 15", aliases=("yolo",),
    spec=SpecKind("yolo_v3", "yolo_v3_pb2", "Experiment", "libtlt.archs.yolo_v3.validation:validate"),
)
