"""DetectNet_v2's spec sections for the shared KITTI-TFRecord loader (``libtlt.data.detection``): the class
order (``cost_function_config.target_classes``) and ``augmentation_config`` (``preprocessing``,
``spatial_augmentation``, ``color_augmentation``, 000 §7.2.6) as the loader's :class:`Preprocessing` and
:class:`Augmentation`. The loader itself (frames, folds, class mapping, the ``tf.data`` pipeline) is shared.
"""

from __future__ import annotations

from typing import Any

from libtlt.data.detection import Augmentation, Preprocessing, frames_dataset, split_frames, steps
from libtlt.spec import LoadedSpec
from libtlt.spec import values as spec_values

__all__ = ["augmentation", "frames_dataset", "output_classes", "preprocessing", "split_frames", "steps"]


def output_classes(spec: LoadedSpec[Any]) -> list[str]:
    """Class names in network output order: cost_function_config.target_classes (else the mapping order)."""
    names = [t.name for t in spec.message.cost_function_config.target_classes]
    return names or spec_values.target_classes(spec.message.dataset_config)


def preprocessing(spec: LoadedSpec[Any]) -> Preprocessing:
    pre = spec.message.augmentation_config.preprocessing
    crop = None
    if pre.crop_right > 0 or pre.crop_bottom > 0:
        crop = (pre.crop_left, pre.crop_top, pre.crop_right, pre.crop_bottom)
    return Preprocessing(
        output_width=pre.output_image_width,
        output_height=pre.output_image_height,
        channels=pre.output_image_channel if pre.HasField("output_image_channel") else 3,
        crop=crop,
        scale_x=pre.scale_width if pre.scale_width > 0 else 1.0,
        scale_y=pre.scale_height if pre.scale_height > 0 else 1.0,
        auto_resize=pre.enable_auto_resize,
        min_bbox_width=pre.min_bbox_width,
        min_bbox_height=pre.min_bbox_height,
    )


def augmentation(spec: LoadedSpec[Any]) -> Augmentation:
    config = spec.message.augmentation_config
    spatial, color = config.spatial_augmentation, config.color_augmentation
    result = Augmentation()
    if config.HasField("spatial_augmentation"):
        result = Augmentation(
            hflip_probability=spatial.hflip_probability, vflip_probability=spatial.vflip_probability,
            zoom_min=spatial.zoom_min, zoom_max=spatial.zoom_max, translate_max_x=spatial.translate_max_x,
            translate_max_y=spatial.translate_max_y,
            rotate_rad_max=spatial.rotate_rad_max if spatial.HasField("rotate_rad_max") else 0.0)
    if config.HasField("color_augmentation") and preprocessing(spec).channels == 3:
        result = Augmentation(**{**result.__dict__,
                                 "color_shift_stddev": color.color_shift_stddev,
                                 "hue_rotation_max": color.hue_rotation_max,
                                 "saturation_shift_max": color.saturation_shift_max,
                                 "contrast_scale_max": color.contrast_scale_max,
                                 "contrast_center": color.contrast_center})
    return result
