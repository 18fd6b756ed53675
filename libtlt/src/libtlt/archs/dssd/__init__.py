"""DSSD: SSD with deconvolution prediction modules (000 §7.5); spec validation in validation.py;
registered (so its spec loads and every tool says what brings it) but serving no verb yet."""

from libtlt.registry import BOX_DETECTOR, DeclaredArchitecture
from libtlt.spec.experiments import SpecKind

ARCHITECTURE = DeclaredArchitecture(
    "dssd", BOX_DETECTOR, pending="issue 14",
    spec=SpecKind("dssd", "dssd_pb2", "Experiment", "libtlt.archs.dssd.validation:validate"),
)
