from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AveragePrecisionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE: _ClassVar[AveragePrecisionMode]
    INTEGRATE: _ClassVar[AveragePrecisionMode]
SAMPLE: AveragePrecisionMode
INTEGRATE: AveragePrecisionMode

class SoftStartAnnealingScheduleConfig(_message.Message):
    __slots__ = ("min_learning_rate", "max_learning_rate", "soft_start", "annealing")
    MIN_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_FIELD_NUMBER: _ClassVar[int]
    min_learning_rate: float
    max_learning_rate: float
    soft_start: float
    annealing: float
    def __init__(self, min_learning_rate: _Optional[float] = ..., max_learning_rate: _Optional[float] = ..., soft_start: _Optional[float] = ..., annealing: _Optional[float] = ...) -> None: ...

class LearningRateConfig(_message.Message):
    __slots__ = ("soft_start_annealing_schedule",)
    SOFT_START_ANNEALING_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    soft_start_annealing_schedule: SoftStartAnnealingScheduleConfig
    def __init__(self, soft_start_annealing_schedule: _Optional[_Union[SoftStartAnnealingScheduleConfig, _Mapping]] = ...) -> None: ...

class RegularizerConfig(_message.Message):
    __slots__ = ("type", "weight")
    class RegularizationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NO_REG: _ClassVar[RegularizerConfig.RegularizationType]
        L1: _ClassVar[RegularizerConfig.RegularizationType]
        L2: _ClassVar[RegularizerConfig.RegularizationType]
    NO_REG: RegularizerConfig.RegularizationType
    L1: RegularizerConfig.RegularizationType
    L2: RegularizerConfig.RegularizationType
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    type: RegularizerConfig.RegularizationType
    weight: float
    def __init__(self, type: _Optional[_Union[RegularizerConfig.RegularizationType, str]] = ..., weight: _Optional[float] = ...) -> None: ...

class AdamOptimizerConfig(_message.Message):
    __slots__ = ("epsilon", "beta1", "beta2")
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    BETA1_FIELD_NUMBER: _ClassVar[int]
    BETA2_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    beta1: float
    beta2: float
    def __init__(self, epsilon: _Optional[float] = ..., beta1: _Optional[float] = ..., beta2: _Optional[float] = ...) -> None: ...

class SGDOptimizerConfig(_message.Message):
    __slots__ = ("momentum", "nesterov")
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    NESTEROV_FIELD_NUMBER: _ClassVar[int]
    momentum: float
    nesterov: bool
    def __init__(self, momentum: _Optional[float] = ..., nesterov: _Optional[bool] = ...) -> None: ...

class RMSpropOptimizerConfig(_message.Message):
    __slots__ = ("rho", "momentum", "epsilon", "centered")
    RHO_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    CENTERED_FIELD_NUMBER: _ClassVar[int]
    rho: float
    momentum: float
    epsilon: float
    centered: bool
    def __init__(self, rho: _Optional[float] = ..., momentum: _Optional[float] = ..., epsilon: _Optional[float] = ..., centered: _Optional[bool] = ...) -> None: ...

class OptimizerConfig(_message.Message):
    __slots__ = ("adam", "sgd", "rmsprop")
    ADAM_FIELD_NUMBER: _ClassVar[int]
    SGD_FIELD_NUMBER: _ClassVar[int]
    RMSPROP_FIELD_NUMBER: _ClassVar[int]
    adam: AdamOptimizerConfig
    sgd: SGDOptimizerConfig
    rmsprop: RMSpropOptimizerConfig
    def __init__(self, adam: _Optional[_Union[AdamOptimizerConfig, _Mapping]] = ..., sgd: _Optional[_Union[SGDOptimizerConfig, _Mapping]] = ..., rmsprop: _Optional[_Union[RMSpropOptimizerConfig, _Mapping]] = ...) -> None: ...

class CostScalingConfig(_message.Message):
    __slots__ = ("enabled", "initial_exponent", "increment", "decrement")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    INITIAL_EXPONENT_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_FIELD_NUMBER: _ClassVar[int]
    DECREMENT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    initial_exponent: float
    increment: float
    decrement: float
    def __init__(self, enabled: _Optional[bool] = ..., initial_exponent: _Optional[float] = ..., increment: _Optional[float] = ..., decrement: _Optional[float] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("batch_size_per_gpu", "num_epochs", "learning_rate", "regularizer", "optimizer", "cost_scaling", "checkpoint_interval", "enable_qat")
    BATCH_SIZE_PER_GPU_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    REGULARIZER_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    COST_SCALING_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    ENABLE_QAT_FIELD_NUMBER: _ClassVar[int]
    batch_size_per_gpu: int
    num_epochs: int
    learning_rate: LearningRateConfig
    regularizer: RegularizerConfig
    optimizer: OptimizerConfig
    cost_scaling: CostScalingConfig
    checkpoint_interval: float
    enable_qat: bool
    def __init__(self, batch_size_per_gpu: _Optional[int] = ..., num_epochs: _Optional[int] = ..., learning_rate: _Optional[_Union[LearningRateConfig, _Mapping]] = ..., regularizer: _Optional[_Union[RegularizerConfig, _Mapping]] = ..., optimizer: _Optional[_Union[OptimizerConfig, _Mapping]] = ..., cost_scaling: _Optional[_Union[CostScalingConfig, _Mapping]] = ..., checkpoint_interval: _Optional[float] = ..., enable_qat: _Optional[bool] = ...) -> None: ...

class PreprocessingConfig(_message.Message):
    __slots__ = ("output_image_width", "output_image_height", "output_image_channel", "crop_right", "crop_left", "crop_top", "crop_bottom", "min_bbox_height", "min_bbox_width", "scale_height", "scale_width", "output_image_min", "output_image_max", "enable_auto_resize")
    OUTPUT_IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CROP_RIGHT_FIELD_NUMBER: _ClassVar[int]
    CROP_LEFT_FIELD_NUMBER: _ClassVar[int]
    CROP_TOP_FIELD_NUMBER: _ClassVar[int]
    CROP_BOTTOM_FIELD_NUMBER: _ClassVar[int]
    MIN_BBOX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_BBOX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    SCALE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCALE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_MIN_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_MAX_FIELD_NUMBER: _ClassVar[int]
    ENABLE_AUTO_RESIZE_FIELD_NUMBER: _ClassVar[int]
    output_image_width: int
    output_image_height: int
    output_image_channel: int
    crop_right: int
    crop_left: int
    crop_top: int
    crop_bottom: int
    min_bbox_height: float
    min_bbox_width: float
    scale_height: float
    scale_width: float
    output_image_min: int
    output_image_max: int
    enable_auto_resize: bool
    def __init__(self, output_image_width: _Optional[int] = ..., output_image_height: _Optional[int] = ..., output_image_channel: _Optional[int] = ..., crop_right: _Optional[int] = ..., crop_left: _Optional[int] = ..., crop_top: _Optional[int] = ..., crop_bottom: _Optional[int] = ..., min_bbox_height: _Optional[float] = ..., min_bbox_width: _Optional[float] = ..., scale_height: _Optional[float] = ..., scale_width: _Optional[float] = ..., output_image_min: _Optional[int] = ..., output_image_max: _Optional[int] = ..., enable_auto_resize: _Optional[bool] = ...) -> None: ...

class SpatialAugmentationConfig(_message.Message):
    __slots__ = ("hflip_probability", "vflip_probability", "zoom_min", "zoom_max", "translate_max_x", "translate_max_y", "rotate_rad_max", "zoom_out_probability", "zoom_out_max_scale", "iou_crop_probability")
    HFLIP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    VFLIP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ZOOM_MIN_FIELD_NUMBER: _ClassVar[int]
    ZOOM_MAX_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_MAX_X_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_MAX_Y_FIELD_NUMBER: _ClassVar[int]
    ROTATE_RAD_MAX_FIELD_NUMBER: _ClassVar[int]
    ZOOM_OUT_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ZOOM_OUT_MAX_SCALE_FIELD_NUMBER: _ClassVar[int]
    IOU_CROP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    hflip_probability: float
    vflip_probability: float
    zoom_min: float
    zoom_max: float
    translate_max_x: float
    translate_max_y: float
    rotate_rad_max: float
    zoom_out_probability: float
    zoom_out_max_scale: float
    iou_crop_probability: float
    def __init__(self, hflip_probability: _Optional[float] = ..., vflip_probability: _Optional[float] = ..., zoom_min: _Optional[float] = ..., zoom_max: _Optional[float] = ..., translate_max_x: _Optional[float] = ..., translate_max_y: _Optional[float] = ..., rotate_rad_max: _Optional[float] = ..., zoom_out_probability: _Optional[float] = ..., zoom_out_max_scale: _Optional[float] = ..., iou_crop_probability: _Optional[float] = ...) -> None: ...

class ColorAugmentationConfig(_message.Message):
    __slots__ = ("color_shift_stddev", "hue_rotation_max", "saturation_shift_max", "contrast_scale_max", "contrast_center")
    COLOR_SHIFT_STDDEV_FIELD_NUMBER: _ClassVar[int]
    HUE_ROTATION_MAX_FIELD_NUMBER: _ClassVar[int]
    SATURATION_SHIFT_MAX_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_SCALE_MAX_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_CENTER_FIELD_NUMBER: _ClassVar[int]
    color_shift_stddev: float
    hue_rotation_max: float
    saturation_shift_max: float
    contrast_scale_max: float
    contrast_center: float
    def __init__(self, color_shift_stddev: _Optional[float] = ..., hue_rotation_max: _Optional[float] = ..., saturation_shift_max: _Optional[float] = ..., contrast_scale_max: _Optional[float] = ..., contrast_center: _Optional[float] = ...) -> None: ...

class AugmentationConfig(_message.Message):
    __slots__ = ("preprocessing", "spatial_augmentation", "color_augmentation")
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    SPATIAL_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    COLOR_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    preprocessing: PreprocessingConfig
    spatial_augmentation: SpatialAugmentationConfig
    color_augmentation: ColorAugmentationConfig
    def __init__(self, preprocessing: _Optional[_Union[PreprocessingConfig, _Mapping]] = ..., spatial_augmentation: _Optional[_Union[SpatialAugmentationConfig, _Mapping]] = ..., color_augmentation: _Optional[_Union[ColorAugmentationConfig, _Mapping]] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("tfrecords_path", "image_directory_path")
    TFRECORDS_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    tfrecords_path: str
    image_directory_path: str
    def __init__(self, tfrecords_path: _Optional[str] = ..., image_directory_path: _Optional[str] = ...) -> None: ...

class ClassMapping(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class DatasetConfig(_message.Message):
    __slots__ = ("data_sources", "image_extension", "target_class_mapping", "validation_fold", "validation_data_source")
    DATA_SOURCES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_CLASS_MAPPING_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FOLD_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    data_sources: _containers.RepeatedCompositeFieldContainer[DataSource]
    image_extension: str
    target_class_mapping: _containers.RepeatedCompositeFieldContainer[ClassMapping]
    validation_fold: int
    validation_data_source: DataSource
    def __init__(self, data_sources: _Optional[_Iterable[_Union[DataSource, _Mapping]]] = ..., image_extension: _Optional[str] = ..., target_class_mapping: _Optional[_Iterable[_Union[ClassMapping, _Mapping]]] = ..., validation_fold: _Optional[int] = ..., validation_data_source: _Optional[_Union[DataSource, _Mapping]] = ...) -> None: ...

class EvalConfig(_message.Message):
    __slots__ = ("validation_period_during_training", "average_precision_mode", "batch_size", "matching_iou_threshold")
    VALIDATION_PERIOD_DURING_TRAINING_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRECISION_MODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MATCHING_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    validation_period_during_training: int
    average_precision_mode: AveragePrecisionMode
    batch_size: int
    matching_iou_threshold: float
    def __init__(self, validation_period_during_training: _Optional[int] = ..., average_precision_mode: _Optional[_Union[AveragePrecisionMode, str]] = ..., batch_size: _Optional[int] = ..., matching_iou_threshold: _Optional[float] = ...) -> None: ...

class NMSConfig(_message.Message):
    __slots__ = ("confidence_threshold", "clustering_iou_threshold", "top_k")
    CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    confidence_threshold: float
    clustering_iou_threshold: float
    top_k: int
    def __init__(self, confidence_threshold: _Optional[float] = ..., clustering_iou_threshold: _Optional[float] = ..., top_k: _Optional[int] = ...) -> None: ...
