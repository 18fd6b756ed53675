"""Detection parts shared by architectures (ARCHITECTURE.md): pure NumPy, no TensorFlow.

DetectNet_v2's framework-independent algorithms live here: :mod:`~libtlt.layers.bbox_rasterizer` (ground-truth
coverage and bbox targets), :mod:`~libtlt.layers.box_decoder` (raw outputs to candidate boxes) and
:mod:`~libtlt.layers.clustering` (DBSCAN / NMS / HYBRID post-processing). Import the submodules directly.
"""
