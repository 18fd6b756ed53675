"""SSD (000 §7.4): one folder, one entry point; the network, targets, loss, decoding and export tail are the
SSD family's (``libtlt.layers.ssd_family``, shared with DSSD). Spec validation in validation.py, the default spec
(the manual's sample) in default_spec.txt."""

from libtlt.archs.ssd import validation
from libtlt.layers.ssd_family import SsdFamilyArchitecture
from libtlt.spec.protos import ssd_pb2

ARCHITECTURE = SsdFamilyArchitecture("ssd", dssd=False, package="libtlt.archs.ssd", proto=ssd_pb2,
                                     validate=validation.validate)
