"""MaskRCNN: FPN two-stage detector with a mask head, trained on COCO records (000 §7.9, 004).

One folder, one entry point: the network pieces and ROI operations, the flat inference model (``model``), the data
pipeline (``data``), the training graph and trainer (``training``), and ``architecture.MaskRcnnArchitecture``, which
serves tlt-train, tlt-evaluate and tlt-infer. Importing the package registers the custom Keras layers a saved model
needs to load.
"""

from libtlt.archs.mask_rcnn import layers as _layers  # noqa: F401  (registers MultilevelProposals, ...)
from libtlt.archs.mask_rcnn.architecture import MaskRcnnArchitecture

ARCHITECTURE = MaskRcnnArchitecture()
