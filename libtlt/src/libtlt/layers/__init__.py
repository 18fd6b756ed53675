"""Detection parts shared by architectures (ARCHITECTURE.md), framework-independent first.

DetectNet_v2's algorithms: :mod:`~libtlt.layers.bbox_rasterizer` (ground-truth coverage and bbox targets),
:mod:`~libtlt.layers.box_decoder` (raw outputs to candidate boxes) and :mod:`~libtlt.layers.clustering`
(DBSCAN / NMS / HYBRID post-processing), pure NumPy. The box kernel of the anchor detectors,
:mod:`~libtlt.layers.boxes` (IoU, box coders, priors and anchors, matchers, samplers, NMS), has NumPy functions and
TensorFlow twins (``<name>_tf``, tested equal; TensorFlow is imported only when a twin runs). Import the submodules
directly.
"""
