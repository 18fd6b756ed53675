"""tf.data input pipelines shared by tlt-train, tlt-evaluate, tlt-infer, tlt-int8-tensorfile and export
calibration.

Importing this package is light: TensorFlow is imported inside the functions that build datasets.
"""

from __future__ import annotations

from libtlt.data.classification import (
    AugmentSettings,
    ClassMap,
    FolderIndex,
    InputConfig,
    input_config_from_metadata,
    load_images_for_inference,
    make_dataset,
    preprocess,
    scan_folder,
)

__all__ = [
    "AugmentSettings",
    "ClassMap",
    "FolderIndex",
    "InputConfig",
    "input_config_from_metadata",
    "load_images_for_inference",
    "make_dataset",
    "preprocess",
    "scan_folder",
]
