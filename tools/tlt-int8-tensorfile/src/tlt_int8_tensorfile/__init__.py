"""tlt-int8-tensorfile: Write INT8 calibration batches to a tensorfile."""

__version__ = "0.1.0"
