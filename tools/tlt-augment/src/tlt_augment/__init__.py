"""tlt-augment: Offline augmentation of KITTI detection datasets."""

__version__ = "0.1.0"
