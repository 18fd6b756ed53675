"""DSSD (000 §7.5): one folder, one entry point; the network, targets, loss, decoding and export tail are the
SSD family's (``libtlt.layers.ssd_family``, shared with SSD). Spec validation in validation.py, the default spec
(the manual's sample) in default_spec.txt."""

from libtlt.archs.dssd import validation
from libtlt.layers.ssd_family import SsdFamilyArchitecture
from libtlt.spec.protos import dssd_pb2

ARCHITECTURE = SsdFamilyArchitecture("dssd", dssd=True, package="libtlt.archs.dssd", proto=dssd_pb2,
                                     validate=validation.validate)
