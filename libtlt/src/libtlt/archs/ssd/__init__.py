"""SSD: single-shot multibox detector (000 §7.4); spec validation in validation.py;
registered (so its spec loads and every tool says what brings it) but serving no verb yet."""

from libtlt.registry import BOX_DETECTOR, DeclaredArchitecture
from libtlt.spec.experiments import SpecKind

ARCHITECTURE = DeclaredArchitecture(
    "ssd", BOX_DETECTOR, pending="issue 14",
    spec=SpecKind("ssd", "ssd_pb2", "Experiment", "libtlt.archs.ssd.validation:validate"),
)
