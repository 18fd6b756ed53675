"""FasterRCNN: two-stage detector with RPN, RoI crop-and-resize and an RCNN head (000 §7.3, 002).

One folder, one entry point: the network pieces, the data, the training graph and the decoding are the modules
here; ``architecture.FasterRcnnArchitecture`` puts them behind the Architecture protocol (docs/faster_rcnn.md).
Importing the package registers the network's custom Keras layers, which a saved model needs to load.
"""

from libtlt.archs.faster_rcnn import network as _network  # noqa: F401  (registers ProposalLayer, CropAndResize, ...)
from libtlt.archs.faster_rcnn.architecture import FasterRcnnArchitecture

ARCHITECTURE = FasterRcnnArchitecture()
