"""RetinaNet: FPN detector trained with focal loss (000 §7.6, §7.8); spec validation in validation.py;
registered (so its spec loads and every tool says what brings it) but serving no verb yet."""

from libtlt.registry import BOX_DETECTOR, DeclaredArchitecture
from libtlt.spec.experiments import SpecKind

ARCHITECTURE = DeclaredArchitecture(
    "retinanet", BOX_DETECTOR, pending="issue 15",
    spec=SpecKind("retinanet", "retinanet_pb2", "Experiment", "libtlt.archs.retinanet.validation:validate"),
)
