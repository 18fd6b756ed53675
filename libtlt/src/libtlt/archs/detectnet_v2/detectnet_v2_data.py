"""DetectNet_v2's spec sections for the shared KITTI-TFRecord loader (``libtlt.data.detection``): the class
order (``cost_function_config.target_classes``); ``augmentation_config`` (``preprocessing``,
``spatial_augmentation``, ``color_augmentation``, 000 §7.2.6) is common.proto's, read by the loader itself.
"""

from __future__ import annotations

from typing import Any

from libtlt.data.detection import augmentation_from_spec as augmentation
from libtlt.data.detection import frames_dataset, split_frames, steps
from libtlt.data.detection import preprocessing_from_spec as preprocessing
from libtlt.spec import LoadedSpec
from libtlt.spec import values as spec_values

__all__ = ["augmentation", "frames_dataset", "output_classes", "preprocessing", "split_frames", "steps"]


def output_classes(spec: LoadedSpec[Any]) -> list[str]:
    """Class names in network output order: cost_function_config.target_classes (else the mapping order)."""
    names = [t.name for t in spec.message.cost_function_config.target_classes]
    return names or spec_values.target_classes(spec.message.dataset_config)
