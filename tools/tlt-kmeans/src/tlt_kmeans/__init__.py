"""tlt-kmeans: YOLOv3 anchor shapes from KITTI labels by IoU-distance k-means (000 §7.7)."""

__version__ = "0.1.0"
