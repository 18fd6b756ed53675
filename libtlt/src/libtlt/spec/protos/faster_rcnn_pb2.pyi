from libtlt.spec.protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RGB: _ClassVar[ImageType]
    GRAYSCALE: _ClassVar[ImageType]
RGB: ImageType
GRAYSCALE: ImageType

class Experiment(_message.Message):
    __slots__ = ("random_seed", "enc_key", "verbose", "network_config", "training_config", "model_config", "dataset_config", "augmentation_config", "inference_config", "evaluation_config")
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    ENC_KEY_FIELD_NUMBER: _ClassVar[int]
    VERBOSE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    random_seed: int
    enc_key: str
    verbose: bool
    network_config: ModelConfig
    training_config: TrainingConfig
    model_config: ModelConfig
    dataset_config: _common_pb2.DatasetConfig
    augmentation_config: _common_pb2.AugmentationConfig
    inference_config: InferenceConfig
    evaluation_config: EvaluationConfig
    def __init__(self, random_seed: _Optional[int] = ..., enc_key: _Optional[str] = ..., verbose: _Optional[bool] = ..., network_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., training_config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., dataset_config: _Optional[_Union[_common_pb2.DatasetConfig, _Mapping]] = ..., augmentation_config: _Optional[_Union[_common_pb2.AugmentationConfig, _Mapping]] = ..., inference_config: _Optional[_Union[InferenceConfig, _Mapping]] = ..., evaluation_config: _Optional[_Union[EvaluationConfig, _Mapping]] = ...) -> None: ...

class ImageSizeConfigHeightWidth(_message.Message):
    __slots__ = ("height", "width")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ...) -> None: ...

class ImageSizeConfigMin(_message.Message):
    __slots__ = ("min",)
    MIN_FIELD_NUMBER: _ClassVar[int]
    min: int
    def __init__(self, min: _Optional[int] = ...) -> None: ...

class ChannelMean(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: float
    def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class InputImageConfig(_message.Message):
    __slots__ = ("image_type", "image_channel_order", "size_height_width", "size_min", "image_channel_mean", "image_scaling_factor", "max_objects_num_per_image")
    IMAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CHANNEL_ORDER_FIELD_NUMBER: _ClassVar[int]
    SIZE_HEIGHT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    SIZE_MIN_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CHANNEL_MEAN_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SCALING_FACTOR_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECTS_NUM_PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    image_type: ImageType
    image_channel_order: str
    size_height_width: ImageSizeConfigHeightWidth
    size_min: ImageSizeConfigMin
    image_channel_mean: _containers.RepeatedCompositeFieldContainer[ChannelMean]
    image_scaling_factor: float
    max_objects_num_per_image: int
    def __init__(self, image_type: _Optional[_Union[ImageType, str]] = ..., image_channel_order: _Optional[str] = ..., size_height_width: _Optional[_Union[ImageSizeConfigHeightWidth, _Mapping]] = ..., size_min: _Optional[_Union[ImageSizeConfigMin, _Mapping]] = ..., image_channel_mean: _Optional[_Iterable[_Union[ChannelMean, _Mapping]]] = ..., image_scaling_factor: _Optional[float] = ..., max_objects_num_per_image: _Optional[int] = ...) -> None: ...

class AnchorBoxConfig(_message.Message):
    __slots__ = ("scale", "ratio")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    scale: _containers.RepeatedScalarFieldContainer[float]
    ratio: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, scale: _Optional[_Iterable[float]] = ..., ratio: _Optional[_Iterable[float]] = ...) -> None: ...

class RoiPoolingConfig(_message.Message):
    __slots__ = ("pool_size", "pool_size_2x")
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_2X_FIELD_NUMBER: _ClassVar[int]
    pool_size: int
    pool_size_2x: bool
    def __init__(self, pool_size: _Optional[int] = ..., pool_size_2x: _Optional[bool] = ...) -> None: ...

class Activation(_message.Message):
    __slots__ = ("activation_type",)
    ACTIVATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    activation_type: str
    def __init__(self, activation_type: _Optional[str] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("input_image_config", "feature_extractor", "anchor_box_config", "roi_mini_batch", "rpn_stride", "freeze_bn", "freeze_blocks", "conv_bn_share_bias", "roi_pooling_config", "all_projections", "use_pooling", "arch", "use_bias", "dropout_rate", "drop_connect_rate", "activation")
    INPUT_IMAGE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    FEATURE_EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_BOX_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROI_MINI_BATCH_FIELD_NUMBER: _ClassVar[int]
    RPN_STRIDE_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    CONV_BN_SHARE_BIAS_FIELD_NUMBER: _ClassVar[int]
    ROI_POOLING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ALL_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    USE_POOLING_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    USE_BIAS_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_RATE_FIELD_NUMBER: _ClassVar[int]
    DROP_CONNECT_RATE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    input_image_config: InputImageConfig
    feature_extractor: str
    anchor_box_config: AnchorBoxConfig
    roi_mini_batch: int
    rpn_stride: int
    freeze_bn: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    conv_bn_share_bias: bool
    roi_pooling_config: RoiPoolingConfig
    all_projections: bool
    use_pooling: bool
    arch: str
    use_bias: bool
    dropout_rate: float
    drop_connect_rate: float
    activation: Activation
    def __init__(self, input_image_config: _Optional[_Union[InputImageConfig, _Mapping]] = ..., feature_extractor: _Optional[str] = ..., anchor_box_config: _Optional[_Union[AnchorBoxConfig, _Mapping]] = ..., roi_mini_batch: _Optional[int] = ..., rpn_stride: _Optional[int] = ..., freeze_bn: _Optional[bool] = ..., freeze_blocks: _Optional[_Iterable[int]] = ..., conv_bn_share_bias: _Optional[bool] = ..., roi_pooling_config: _Optional[_Union[RoiPoolingConfig, _Mapping]] = ..., all_projections: _Optional[bool] = ..., use_pooling: _Optional[bool] = ..., arch: _Optional[str] = ..., use_bias: _Optional[bool] = ..., dropout_rate: _Optional[float] = ..., drop_connect_rate: _Optional[float] = ..., activation: _Optional[_Union[Activation, _Mapping]] = ...) -> None: ...

class RegrStd(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: float
    def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class RegConfig(_message.Message):
    __slots__ = ("reg_type", "weight_decay")
    REG_TYPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    reg_type: str
    weight_decay: float
    def __init__(self, reg_type: _Optional[str] = ..., weight_decay: _Optional[float] = ...) -> None: ...

class AdamOptimizerConfig(_message.Message):
    __slots__ = ("lr", "beta_1", "beta_2", "epsilon", "decay")
    LR_FIELD_NUMBER: _ClassVar[int]
    BETA_1_FIELD_NUMBER: _ClassVar[int]
    BETA_2_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DECAY_FIELD_NUMBER: _ClassVar[int]
    lr: float
    beta_1: float
    beta_2: float
    epsilon: float
    decay: float
    def __init__(self, lr: _Optional[float] = ..., beta_1: _Optional[float] = ..., beta_2: _Optional[float] = ..., epsilon: _Optional[float] = ..., decay: _Optional[float] = ...) -> None: ...

class SgdOptimizerConfig(_message.Message):
    __slots__ = ("lr", "momentum", "decay", "nesterov")
    LR_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    DECAY_FIELD_NUMBER: _ClassVar[int]
    NESTEROV_FIELD_NUMBER: _ClassVar[int]
    lr: float
    momentum: float
    decay: float
    nesterov: bool
    def __init__(self, lr: _Optional[float] = ..., momentum: _Optional[float] = ..., decay: _Optional[float] = ..., nesterov: _Optional[bool] = ...) -> None: ...

class RmspropOptimizerConfig(_message.Message):
    __slots__ = ("lr",)
    LR_FIELD_NUMBER: _ClassVar[int]
    lr: float
    def __init__(self, lr: _Optional[float] = ...) -> None: ...

class OptimizerConfig(_message.Message):
    __slots__ = ("adam", "sgd", "rmsprop")
    ADAM_FIELD_NUMBER: _ClassVar[int]
    SGD_FIELD_NUMBER: _ClassVar[int]
    RMSPROP_FIELD_NUMBER: _ClassVar[int]
    adam: AdamOptimizerConfig
    sgd: SgdOptimizerConfig
    rmsprop: RmspropOptimizerConfig
    def __init__(self, adam: _Optional[_Union[AdamOptimizerConfig, _Mapping]] = ..., sgd: _Optional[_Union[SgdOptimizerConfig, _Mapping]] = ..., rmsprop: _Optional[_Union[RmspropOptimizerConfig, _Mapping]] = ...) -> None: ...

class SoftStartLRConfig(_message.Message):
    __slots__ = ("base_lr", "start_lr", "soft_start", "annealing_points", "annealing_divider")
    BASE_LR_FIELD_NUMBER: _ClassVar[int]
    START_LR_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_POINTS_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_DIVIDER_FIELD_NUMBER: _ClassVar[int]
    base_lr: float
    start_lr: float
    soft_start: float
    annealing_points: _containers.RepeatedScalarFieldContainer[float]
    annealing_divider: float
    def __init__(self, base_lr: _Optional[float] = ..., start_lr: _Optional[float] = ..., soft_start: _Optional[float] = ..., annealing_points: _Optional[_Iterable[float]] = ..., annealing_divider: _Optional[float] = ...) -> None: ...

class StepLRConfig(_message.Message):
    __slots__ = ("base_lr", "gamma", "step_size")
    BASE_LR_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    base_lr: float
    gamma: float
    step_size: float
    def __init__(self, base_lr: _Optional[float] = ..., gamma: _Optional[float] = ..., step_size: _Optional[float] = ...) -> None: ...

class LRConfig(_message.Message):
    __slots__ = ("soft_start", "step")
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    soft_start: SoftStartLRConfig
    step: StepLRConfig
    def __init__(self, soft_start: _Optional[_Union[SoftStartLRConfig, _Mapping]] = ..., step: _Optional[_Union[StepLRConfig, _Mapping]] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("kitti_data_config", "data_augmentation", "enable_augmentation", "batch_size_per_gpu", "num_epochs", "pretrained_weights", "resume_from_model", "retrain_pruned_model", "output_model", "checkpoint_interval", "rpn_min_overlap", "rpn_max_overlap", "classifier_min_overlap", "classifier_max_overlap", "gt_as_roi", "std_scaling", "classifier_regr_std", "rpn_mini_batch", "rpn_pre_nms_top_N", "rpn_nms_max_boxes", "rpn_nms_overlap_threshold", "reg_config", "optimizer", "lr_scheduler", "lambda_rpn_regr", "lambda_rpn_class", "lambda_cls_regr", "lambda_cls_class", "inference_config", "evaluation_config", "regularizer", "learning_rate", "enable_qat", "model_parallelism")
    KITTI_DATA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATA_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    ENABLE_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_PER_GPU_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    RETRAIN_PRUNED_MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODEL_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    RPN_MIN_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    RPN_MAX_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_MIN_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_MAX_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    GT_AS_ROI_FIELD_NUMBER: _ClassVar[int]
    STD_SCALING_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_REGR_STD_FIELD_NUMBER: _ClassVar[int]
    RPN_MINI_BATCH_FIELD_NUMBER: _ClassVar[int]
    RPN_PRE_NMS_TOP_N_FIELD_NUMBER: _ClassVar[int]
    RPN_NMS_MAX_BOXES_FIELD_NUMBER: _ClassVar[int]
    RPN_NMS_OVERLAP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REG_CONFIG_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    LR_SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_RPN_REGR_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_RPN_CLASS_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_CLS_REGR_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_CLS_CLASS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    REGULARIZER_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    ENABLE_QAT_FIELD_NUMBER: _ClassVar[int]
    MODEL_PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    kitti_data_config: _common_pb2.DatasetConfig
    data_augmentation: _common_pb2.AugmentationConfig
    enable_augmentation: bool
    batch_size_per_gpu: int
    num_epochs: int
    pretrained_weights: str
    resume_from_model: str
    retrain_pruned_model: str
    output_model: str
    checkpoint_interval: int
    rpn_min_overlap: float
    rpn_max_overlap: float
    classifier_min_overlap: float
    classifier_max_overlap: float
    gt_as_roi: bool
    std_scaling: float
    classifier_regr_std: _containers.RepeatedCompositeFieldContainer[RegrStd]
    rpn_mini_batch: int
    rpn_pre_nms_top_N: int
    rpn_nms_max_boxes: int
    rpn_nms_overlap_threshold: float
    reg_config: RegConfig
    optimizer: OptimizerConfig
    lr_scheduler: LRConfig
    lambda_rpn_regr: float
    lambda_rpn_class: float
    lambda_cls_regr: float
    lambda_cls_class: float
    inference_config: InferenceConfig
    evaluation_config: EvaluationConfig
    regularizer: _common_pb2.RegularizerConfig
    learning_rate: LRConfig
    enable_qat: bool
    model_parallelism: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, kitti_data_config: _Optional[_Union[_common_pb2.DatasetConfig, _Mapping]] = ..., data_augmentation: _Optional[_Union[_common_pb2.AugmentationConfig, _Mapping]] = ..., enable_augmentation: _Optional[bool] = ..., batch_size_per_gpu: _Optional[int] = ..., num_epochs: _Optional[int] = ..., pretrained_weights: _Optional[str] = ..., resume_from_model: _Optional[str] = ..., retrain_pruned_model: _Optional[str] = ..., output_model: _Optional[str] = ..., checkpoint_interval: _Optional[int] = ..., rpn_min_overlap: _Optional[float] = ..., rpn_max_overlap: _Optional[float] = ..., classifier_min_overlap: _Optional[float] = ..., classifier_max_overlap: _Optional[float] = ..., gt_as_roi: _Optional[bool] = ..., std_scaling: _Optional[float] = ..., classifier_regr_std: _Optional[_Iterable[_Union[RegrStd, _Mapping]]] = ..., rpn_mini_batch: _Optional[int] = ..., rpn_pre_nms_top_N: _Optional[int] = ..., rpn_nms_max_boxes: _Optional[int] = ..., rpn_nms_overlap_threshold: _Optional[float] = ..., reg_config: _Optional[_Union[RegConfig, _Mapping]] = ..., optimizer: _Optional[_Union[OptimizerConfig, _Mapping]] = ..., lr_scheduler: _Optional[_Union[LRConfig, _Mapping]] = ..., lambda_rpn_regr: _Optional[float] = ..., lambda_rpn_class: _Optional[float] = ..., lambda_cls_regr: _Optional[float] = ..., lambda_cls_class: _Optional[float] = ..., inference_config: _Optional[_Union[InferenceConfig, _Mapping]] = ..., evaluation_config: _Optional[_Union[EvaluationConfig, _Mapping]] = ..., regularizer: _Optional[_Union[_common_pb2.RegularizerConfig, _Mapping]] = ..., learning_rate: _Optional[_Union[LRConfig, _Mapping]] = ..., enable_qat: _Optional[bool] = ..., model_parallelism: _Optional[_Iterable[float]] = ...) -> None: ...

class EtltModel(_message.Message):
    __slots__ = ("model", "calibration_cache")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CACHE_FIELD_NUMBER: _ClassVar[int]
    model: str
    calibration_cache: str
    def __init__(self, model: _Optional[str] = ..., calibration_cache: _Optional[str] = ...) -> None: ...

class TrtInference(_message.Message):
    __slots__ = ("trt_engine", "etlt_model", "trt_data_type", "max_workspace_size_MB")
    TRT_ENGINE_FIELD_NUMBER: _ClassVar[int]
    ETLT_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRT_DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKSPACE_SIZE_MB_FIELD_NUMBER: _ClassVar[int]
    trt_engine: str
    etlt_model: EtltModel
    trt_data_type: str
    max_workspace_size_MB: int
    def __init__(self, trt_engine: _Optional[str] = ..., etlt_model: _Optional[_Union[EtltModel, _Mapping]] = ..., trt_data_type: _Optional[str] = ..., max_workspace_size_MB: _Optional[int] = ...) -> None: ...

class InferenceConfig(_message.Message):
    __slots__ = ("images_dir", "model", "batch_size", "detection_image_output_dir", "labels_dump_dir", "rpn_pre_nms_top_N", "rpn_nms_max_boxes", "rpn_nms_overlap_threshold", "object_confidence_thres", "bbox_visualize_threshold", "classifier_nms_max_boxes", "classifier_nms_overlap_threshold", "bbox_caption_on", "trt_inference", "nms_score_bits")
    IMAGES_DIR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    DETECTION_IMAGE_OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    LABELS_DUMP_DIR_FIELD_NUMBER: _ClassVar[int]
    RPN_PRE_NMS_TOP_N_FIELD_NUMBER: _ClassVar[int]
    RPN_NMS_MAX_BOXES_FIELD_NUMBER: _ClassVar[int]
    RPN_NMS_OVERLAP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OBJECT_CONFIDENCE_THRES_FIELD_NUMBER: _ClassVar[int]
    BBOX_VISUALIZE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_NMS_MAX_BOXES_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_NMS_OVERLAP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BBOX_CAPTION_ON_FIELD_NUMBER: _ClassVar[int]
    TRT_INFERENCE_FIELD_NUMBER: _ClassVar[int]
    NMS_SCORE_BITS_FIELD_NUMBER: _ClassVar[int]
    images_dir: str
    model: str
    batch_size: int
    detection_image_output_dir: str
    labels_dump_dir: str
    rpn_pre_nms_top_N: int
    rpn_nms_max_boxes: int
    rpn_nms_overlap_threshold: float
    object_confidence_thres: float
    bbox_visualize_threshold: float
    classifier_nms_max_boxes: int
    classifier_nms_overlap_threshold: float
    bbox_caption_on: bool
    trt_inference: TrtInference
    nms_score_bits: int
    def __init__(self, images_dir: _Optional[str] = ..., model: _Optional[str] = ..., batch_size: _Optional[int] = ..., detection_image_output_dir: _Optional[str] = ..., labels_dump_dir: _Optional[str] = ..., rpn_pre_nms_top_N: _Optional[int] = ..., rpn_nms_max_boxes: _Optional[int] = ..., rpn_nms_overlap_threshold: _Optional[float] = ..., object_confidence_thres: _Optional[float] = ..., bbox_visualize_threshold: _Optional[float] = ..., classifier_nms_max_boxes: _Optional[int] = ..., classifier_nms_overlap_threshold: _Optional[float] = ..., bbox_caption_on: _Optional[bool] = ..., trt_inference: _Optional[_Union[TrtInference, _Mapping]] = ..., nms_score_bits: _Optional[int] = ...) -> None: ...

class IoUThresholdRange(_message.Message):
    __slots__ = ("start", "step", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: float
    step: float
    end: float
    def __init__(self, start: _Optional[float] = ..., step: _Optional[float] = ..., end: _Optional[float] = ...) -> None: ...

class EvaluationConfig(_message.Message):
    __slots__ = ("model", "labels_dump_dir", "batch_size", "validation_period_during_training", "rpn_pre_nms_top_N", "rpn_nms_max_boxes", "rpn_nms_overlap_threshold", "classifier_nms_max_boxes", "classifier_nms_overlap_threshold", "object_confidence_thres", "use_voc07_11point_metric", "trt_evaluation", "gt_matching_iou_threshold", "gt_matching_iou_threshold_range", "gt_occluded_as_difficult")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LABELS_DUMP_DIR_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PERIOD_DURING_TRAINING_FIELD_NUMBER: _ClassVar[int]
    RPN_PRE_NMS_TOP_N_FIELD_NUMBER: _ClassVar[int]
    RPN_NMS_MAX_BOXES_FIELD_NUMBER: _ClassVar[int]
    RPN_NMS_OVERLAP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_NMS_MAX_BOXES_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_NMS_OVERLAP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OBJECT_CONFIDENCE_THRES_FIELD_NUMBER: _ClassVar[int]
    USE_VOC07_11POINT_METRIC_FIELD_NUMBER: _ClassVar[int]
    TRT_EVALUATION_FIELD_NUMBER: _ClassVar[int]
    GT_MATCHING_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GT_MATCHING_IOU_THRESHOLD_RANGE_FIELD_NUMBER: _ClassVar[int]
    GT_OCCLUDED_AS_DIFFICULT_FIELD_NUMBER: _ClassVar[int]
    model: str
    labels_dump_dir: str
    batch_size: int
    validation_period_during_training: int
    rpn_pre_nms_top_N: int
    rpn_nms_max_boxes: int
    rpn_nms_overlap_threshold: float
    classifier_nms_max_boxes: int
    classifier_nms_overlap_threshold: float
    object_confidence_thres: float
    use_voc07_11point_metric: bool
    trt_evaluation: TrtInference
    gt_matching_iou_threshold: float
    gt_matching_iou_threshold_range: IoUThresholdRange
    gt_occluded_as_difficult: bool
    def __init__(self, model: _Optional[str] = ..., labels_dump_dir: _Optional[str] = ..., batch_size: _Optional[int] = ..., validation_period_during_training: _Optional[int] = ..., rpn_pre_nms_top_N: _Optional[int] = ..., rpn_nms_max_boxes: _Optional[int] = ..., rpn_nms_overlap_threshold: _Optional[float] = ..., classifier_nms_max_boxes: _Optional[int] = ..., classifier_nms_overlap_threshold: _Optional[float] = ..., object_confidence_thres: _Optional[float] = ..., use_voc07_11point_metric: _Optional[bool] = ..., trt_evaluation: _Optional[_Union[TrtInference, _Mapping]] = ..., gt_matching_iou_threshold: _Optional[float] = ..., gt_matching_iou_threshold_range: _Optional[_Union[IoUThresholdRange, _Mapping]] = ..., gt_occluded_as_difficult: _Optional[bool] = ...) -> None: ...
