"""tlt-dataset-convert: Convert KITTI or COCO datasets to TFRecords."""

__version__ = "0.1.0"
