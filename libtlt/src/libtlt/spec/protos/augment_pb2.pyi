from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RotationConfig(_message.Message):
    __slots__ = ("angle", "units")
    ANGLE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    angle: float
    units: str
    def __init__(self, angle: _Optional[float] = ..., units: _Optional[str] = ...) -> None: ...

class ShearConfig(_message.Message):
    __slots__ = ("shear_ratio_x", "shear_ratio_y")
    SHEAR_RATIO_X_FIELD_NUMBER: _ClassVar[int]
    SHEAR_RATIO_Y_FIELD_NUMBER: _ClassVar[int]
    shear_ratio_x: float
    shear_ratio_y: float
    def __init__(self, shear_ratio_x: _Optional[float] = ..., shear_ratio_y: _Optional[float] = ...) -> None: ...

class FlipConfig(_message.Message):
    __slots__ = ("flip_horizontal", "flip_vertical")
    FLIP_HORIZONTAL_FIELD_NUMBER: _ClassVar[int]
    FLIP_VERTICAL_FIELD_NUMBER: _ClassVar[int]
    flip_horizontal: bool
    flip_vertical: bool
    def __init__(self, flip_horizontal: _Optional[bool] = ..., flip_vertical: _Optional[bool] = ...) -> None: ...

class TranslationConfig(_message.Message):
    __slots__ = ("translate_x", "translate_y")
    TRANSLATE_X_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_Y_FIELD_NUMBER: _ClassVar[int]
    translate_x: int
    translate_y: int
    def __init__(self, translate_x: _Optional[int] = ..., translate_y: _Optional[int] = ...) -> None: ...

class SpatialAugmentationConfig(_message.Message):
    __slots__ = ("rotation_config", "shear_config", "flip_config", "translation_config")
    ROTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SHEAR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    FLIP_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    rotation_config: RotationConfig
    shear_config: ShearConfig
    flip_config: FlipConfig
    translation_config: TranslationConfig
    def __init__(self, rotation_config: _Optional[_Union[RotationConfig, _Mapping]] = ..., shear_config: _Optional[_Union[ShearConfig, _Mapping]] = ..., flip_config: _Optional[_Union[FlipConfig, _Mapping]] = ..., translation_config: _Optional[_Union[TranslationConfig, _Mapping]] = ...) -> None: ...

class HueSaturationConfig(_message.Message):
    __slots__ = ("hue_rotation_angle", "saturation_shift")
    HUE_ROTATION_ANGLE_FIELD_NUMBER: _ClassVar[int]
    SATURATION_SHIFT_FIELD_NUMBER: _ClassVar[int]
    hue_rotation_angle: float
    saturation_shift: float
    def __init__(self, hue_rotation_angle: _Optional[float] = ..., saturation_shift: _Optional[float] = ...) -> None: ...

class BrightnessConfig(_message.Message):
    __slots__ = ("offset",)
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    offset: float
    def __init__(self, offset: _Optional[float] = ...) -> None: ...

class ContrastConfig(_message.Message):
    __slots__ = ("contrast", "center")
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    contrast: float
    center: float
    def __init__(self, contrast: _Optional[float] = ..., center: _Optional[float] = ...) -> None: ...

class ColorAugmentationConfig(_message.Message):
    __slots__ = ("hue_saturation_config", "contrast_config", "brightness_config")
    HUE_SATURATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    hue_saturation_config: HueSaturationConfig
    contrast_config: ContrastConfig
    brightness_config: BrightnessConfig
    def __init__(self, hue_saturation_config: _Optional[_Union[HueSaturationConfig, _Mapping]] = ..., contrast_config: _Optional[_Union[ContrastConfig, _Mapping]] = ..., brightness_config: _Optional[_Union[BrightnessConfig, _Mapping]] = ...) -> None: ...

class BlurConfig(_message.Message):
    __slots__ = ("size", "std")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    size: int
    std: float
    def __init__(self, size: _Optional[int] = ..., std: _Optional[float] = ...) -> None: ...

class DatasetConfig(_message.Message):
    __slots__ = ("image_path", "label_path")
    IMAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    LABEL_PATH_FIELD_NUMBER: _ClassVar[int]
    image_path: str
    label_path: str
    def __init__(self, image_path: _Optional[str] = ..., label_path: _Optional[str] = ...) -> None: ...

class AugmentationConfig(_message.Message):
    __slots__ = ("spatial_config", "color_config", "blur_config", "dataset_config", "output_image_width", "output_image_height", "output_image_channel", "output_image_channels", "image_extension")
    SPATIAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    COLOR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BLUR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    spatial_config: SpatialAugmentationConfig
    color_config: ColorAugmentationConfig
    blur_config: BlurConfig
    dataset_config: DatasetConfig
    output_image_width: int
    output_image_height: int
    output_image_channel: int
    output_image_channels: int
    image_extension: str
    def __init__(self, spatial_config: _Optional[_Union[SpatialAugmentationConfig, _Mapping]] = ..., color_config: _Optional[_Union[ColorAugmentationConfig, _Mapping]] = ..., blur_config: _Optional[_Union[BlurConfig, _Mapping]] = ..., dataset_config: _Optional[_Union[DatasetConfig, _Mapping]] = ..., output_image_width: _Optional[int] = ..., output_image_height: _Optional[int] = ..., output_image_channel: _Optional[int] = ..., output_image_channels: _Optional[int] = ..., image_extension: _Optional[str] = ...) -> None: ...
