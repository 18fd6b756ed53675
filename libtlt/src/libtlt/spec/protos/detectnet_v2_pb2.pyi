from libtlt.spec.protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CovObjectiveConfig(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BboxObjectiveConfig(_message.Message):
    __slots__ = ("scale", "offset")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    scale: float
    offset: float
    def __init__(self, scale: _Optional[float] = ..., offset: _Optional[float] = ...) -> None: ...

class ObjectiveSetConfig(_message.Message):
    __slots__ = ("cov", "bbox")
    COV_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    cov: CovObjectiveConfig
    bbox: BboxObjectiveConfig
    def __init__(self, cov: _Optional[_Union[CovObjectiveConfig, _Mapping]] = ..., bbox: _Optional[_Union[BboxObjectiveConfig, _Mapping]] = ...) -> None: ...

class TrainingPrecision(_message.Message):
    __slots__ = ("backend_floatx",)
    class BackendFloatx(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FLOAT32: _ClassVar[TrainingPrecision.BackendFloatx]
        FLOAT16: _ClassVar[TrainingPrecision.BackendFloatx]
    FLOAT32: TrainingPrecision.BackendFloatx
    FLOAT16: TrainingPrecision.BackendFloatx
    BACKEND_FLOATX_FIELD_NUMBER: _ClassVar[int]
    backend_floatx: TrainingPrecision.BackendFloatx
    def __init__(self, backend_floatx: _Optional[_Union[TrainingPrecision.BackendFloatx, str]] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("pretrained_model_file", "freeze_bn", "freeze_blocks", "num_layers", "use_pooling", "use_batch_norm", "dropout_rate", "objective_set", "training_precision", "load_graph", "all_projections", "arch")
    PRETRAINED_MODEL_FILE_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    NUM_LAYERS_FIELD_NUMBER: _ClassVar[int]
    USE_POOLING_FIELD_NUMBER: _ClassVar[int]
    USE_BATCH_NORM_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_RATE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_SET_FIELD_NUMBER: _ClassVar[int]
    TRAINING_PRECISION_FIELD_NUMBER: _ClassVar[int]
    LOAD_GRAPH_FIELD_NUMBER: _ClassVar[int]
    ALL_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    pretrained_model_file: str
    freeze_bn: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[float]
    num_layers: int
    use_pooling: bool
    use_batch_norm: bool
    dropout_rate: float
    objective_set: ObjectiveSetConfig
    training_precision: TrainingPrecision
    load_graph: bool
    all_projections: bool
    arch: str
    def __init__(self, pretrained_model_file: _Optional[str] = ..., freeze_bn: _Optional[bool] = ..., freeze_blocks: _Optional[_Iterable[float]] = ..., num_layers: _Optional[int] = ..., use_pooling: _Optional[bool] = ..., use_batch_norm: _Optional[bool] = ..., dropout_rate: _Optional[float] = ..., objective_set: _Optional[_Union[ObjectiveSetConfig, _Mapping]] = ..., training_precision: _Optional[_Union[TrainingPrecision, _Mapping]] = ..., load_graph: _Optional[bool] = ..., all_projections: _Optional[bool] = ..., arch: _Optional[str] = ...) -> None: ...

class TargetClassRasterizerConfig(_message.Message):
    __slots__ = ("cov_center_x", "cov_center_y", "cov_radius_x", "cov_radius_y", "bbox_min_radius")
    COV_CENTER_X_FIELD_NUMBER: _ClassVar[int]
    COV_CENTER_Y_FIELD_NUMBER: _ClassVar[int]
    COV_RADIUS_X_FIELD_NUMBER: _ClassVar[int]
    COV_RADIUS_Y_FIELD_NUMBER: _ClassVar[int]
    BBOX_MIN_RADIUS_FIELD_NUMBER: _ClassVar[int]
    cov_center_x: float
    cov_center_y: float
    cov_radius_x: float
    cov_radius_y: float
    bbox_min_radius: float
    def __init__(self, cov_center_x: _Optional[float] = ..., cov_center_y: _Optional[float] = ..., cov_radius_x: _Optional[float] = ..., cov_radius_y: _Optional[float] = ..., bbox_min_radius: _Optional[float] = ...) -> None: ...

class TargetClassRasterizerEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: TargetClassRasterizerConfig
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[TargetClassRasterizerConfig, _Mapping]] = ...) -> None: ...

class BboxRasterizerConfig(_message.Message):
    __slots__ = ("target_class_config", "deadzone_radius")
    TARGET_CLASS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DEADZONE_RADIUS_FIELD_NUMBER: _ClassVar[int]
    target_class_config: _containers.RepeatedCompositeFieldContainer[TargetClassRasterizerEntry]
    deadzone_radius: float
    def __init__(self, target_class_config: _Optional[_Iterable[_Union[TargetClassRasterizerEntry, _Mapping]]] = ..., deadzone_radius: _Optional[float] = ...) -> None: ...

class ClusteringConfig(_message.Message):
    __slots__ = ("coverage_threshold", "dbscan_eps", "dbscan_min_samples", "minimum_bounding_box_height", "clustering_algorithm", "dbscan_confidence_threshold", "nms_iou_threshold", "nms_confidence_threshold")
    class ClusteringAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DBSCAN: _ClassVar[ClusteringConfig.ClusteringAlgorithm]
        NMS: _ClassVar[ClusteringConfig.ClusteringAlgorithm]
        HYBRID: _ClassVar[ClusteringConfig.ClusteringAlgorithm]
    DBSCAN: ClusteringConfig.ClusteringAlgorithm
    NMS: ClusteringConfig.ClusteringAlgorithm
    HYBRID: ClusteringConfig.ClusteringAlgorithm
    COVERAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DBSCAN_EPS_FIELD_NUMBER: _ClassVar[int]
    DBSCAN_MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_BOUNDING_BOX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DBSCAN_CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NMS_IOU_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NMS_CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    coverage_threshold: float
    dbscan_eps: float
    dbscan_min_samples: float
    minimum_bounding_box_height: int
    clustering_algorithm: ClusteringConfig.ClusteringAlgorithm
    dbscan_confidence_threshold: float
    nms_iou_threshold: float
    nms_confidence_threshold: float
    def __init__(self, coverage_threshold: _Optional[float] = ..., dbscan_eps: _Optional[float] = ..., dbscan_min_samples: _Optional[float] = ..., minimum_bounding_box_height: _Optional[int] = ..., clustering_algorithm: _Optional[_Union[ClusteringConfig.ClusteringAlgorithm, str]] = ..., dbscan_confidence_threshold: _Optional[float] = ..., nms_iou_threshold: _Optional[float] = ..., nms_confidence_threshold: _Optional[float] = ...) -> None: ...

class PostProcessingTargetClassConfig(_message.Message):
    __slots__ = ("clustering_config",)
    CLUSTERING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    clustering_config: ClusteringConfig
    def __init__(self, clustering_config: _Optional[_Union[ClusteringConfig, _Mapping]] = ...) -> None: ...

class PostProcessingTargetClassEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: PostProcessingTargetClassConfig
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[PostProcessingTargetClassConfig, _Mapping]] = ...) -> None: ...

class PostProcessingConfig(_message.Message):
    __slots__ = ("target_class_config",)
    TARGET_CLASS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    target_class_config: _containers.RepeatedCompositeFieldContainer[PostProcessingTargetClassEntry]
    def __init__(self, target_class_config: _Optional[_Iterable[_Union[PostProcessingTargetClassEntry, _Mapping]]] = ...) -> None: ...

class CostFunctionObjective(_message.Message):
    __slots__ = ("name", "initial_weight", "weight_target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INITIAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    initial_weight: float
    weight_target: float
    def __init__(self, name: _Optional[str] = ..., initial_weight: _Optional[float] = ..., weight_target: _Optional[float] = ...) -> None: ...

class CostFunctionTargetClass(_message.Message):
    __slots__ = ("name", "class_weight", "coverage_foreground_weight", "objectives")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FOREGROUND_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    name: str
    class_weight: float
    coverage_foreground_weight: float
    objectives: _containers.RepeatedCompositeFieldContainer[CostFunctionObjective]
    def __init__(self, name: _Optional[str] = ..., class_weight: _Optional[float] = ..., coverage_foreground_weight: _Optional[float] = ..., objectives: _Optional[_Iterable[_Union[CostFunctionObjective, _Mapping]]] = ...) -> None: ...

class CostFunctionConfig(_message.Message):
    __slots__ = ("target_classes", "enable_autoweighting", "max_objective_weight", "min_objective_weight")
    TARGET_CLASSES_FIELD_NUMBER: _ClassVar[int]
    ENABLE_AUTOWEIGHTING_FIELD_NUMBER: _ClassVar[int]
    MAX_OBJECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_OBJECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    target_classes: _containers.RepeatedCompositeFieldContainer[CostFunctionTargetClass]
    enable_autoweighting: bool
    max_objective_weight: float
    min_objective_weight: float
    def __init__(self, target_classes: _Optional[_Iterable[_Union[CostFunctionTargetClass, _Mapping]]] = ..., enable_autoweighting: _Optional[bool] = ..., max_objective_weight: _Optional[float] = ..., min_objective_weight: _Optional[float] = ...) -> None: ...

class EvaluationBoxConfig(_message.Message):
    __slots__ = ("minimum_height", "maximum_height", "minimum_width", "maximum_width")
    MINIMUM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_WIDTH_FIELD_NUMBER: _ClassVar[int]
    minimum_height: float
    maximum_height: float
    minimum_width: float
    maximum_width: float
    def __init__(self, minimum_height: _Optional[float] = ..., maximum_height: _Optional[float] = ..., minimum_width: _Optional[float] = ..., maximum_width: _Optional[float] = ...) -> None: ...

class EvaluationBoxEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: EvaluationBoxConfig
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[EvaluationBoxConfig, _Mapping]] = ...) -> None: ...

class MinimumOverlapEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: float
    def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class EvaluationConfig(_message.Message):
    __slots__ = ("validation_period_during_training", "first_validation_epoch", "minimum_detection_ground_truth_overlap", "evaluation_box_config", "average_precision_mode")
    VALIDATION_PERIOD_DURING_TRAINING_FIELD_NUMBER: _ClassVar[int]
    FIRST_VALIDATION_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_DETECTION_GROUND_TRUTH_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_BOX_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRECISION_MODE_FIELD_NUMBER: _ClassVar[int]
    validation_period_during_training: int
    first_validation_epoch: int
    minimum_detection_ground_truth_overlap: _containers.RepeatedCompositeFieldContainer[MinimumOverlapEntry]
    evaluation_box_config: _containers.RepeatedCompositeFieldContainer[EvaluationBoxEntry]
    average_precision_mode: _common_pb2.AveragePrecisionMode
    def __init__(self, validation_period_during_training: _Optional[int] = ..., first_validation_epoch: _Optional[int] = ..., minimum_detection_ground_truth_overlap: _Optional[_Iterable[_Union[MinimumOverlapEntry, _Mapping]]] = ..., evaluation_box_config: _Optional[_Iterable[_Union[EvaluationBoxEntry, _Mapping]]] = ..., average_precision_mode: _Optional[_Union[_common_pb2.AveragePrecisionMode, str]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("random_seed", "dataset_config", "augmentation_config", "postprocessing_config", "model_config", "evaluation_config", "cost_function_config", "training_config", "bbox_rasterizer_config")
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESSING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    COST_FUNCTION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BBOX_RASTERIZER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    random_seed: int
    dataset_config: _common_pb2.DatasetConfig
    augmentation_config: _common_pb2.AugmentationConfig
    postprocessing_config: PostProcessingConfig
    model_config: ModelConfig
    evaluation_config: EvaluationConfig
    cost_function_config: CostFunctionConfig
    training_config: _common_pb2.TrainingConfig
    bbox_rasterizer_config: BboxRasterizerConfig
    def __init__(self, random_seed: _Optional[int] = ..., dataset_config: _Optional[_Union[_common_pb2.DatasetConfig, _Mapping]] = ..., augmentation_config: _Optional[_Union[_common_pb2.AugmentationConfig, _Mapping]] = ..., postprocessing_config: _Optional[_Union[PostProcessingConfig, _Mapping]] = ..., model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., evaluation_config: _Optional[_Union[EvaluationConfig, _Mapping]] = ..., cost_function_config: _Optional[_Union[CostFunctionConfig, _Mapping]] = ..., training_config: _Optional[_Union[_common_pb2.TrainingConfig, _Mapping]] = ..., bbox_rasterizer_config: _Optional[_Union[BboxRasterizerConfig, _Mapping]] = ...) -> None: ...

class CalibratorConfig(_message.Message):
    __slots__ = ("calibration_cache", "n_batches", "batch_size")
    CALIBRATION_CACHE_FIELD_NUMBER: _ClassVar[int]
    N_BATCHES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    calibration_cache: str
    n_batches: int
    batch_size: int
    def __init__(self, calibration_cache: _Optional[str] = ..., n_batches: _Optional[int] = ..., batch_size: _Optional[int] = ...) -> None: ...

class TensorRTConfig(_message.Message):
    __slots__ = ("parser", "etlt_model", "backend_data_type", "save_engine", "trt_engine", "calibrator_config")
    class Parser(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ETLT: _ClassVar[TensorRTConfig.Parser]
    ETLT: TensorRTConfig.Parser
    class BackendDataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FP32: _ClassVar[TensorRTConfig.BackendDataType]
        FP16: _ClassVar[TensorRTConfig.BackendDataType]
        INT8: _ClassVar[TensorRTConfig.BackendDataType]
    FP32: TensorRTConfig.BackendDataType
    FP16: TensorRTConfig.BackendDataType
    INT8: TensorRTConfig.BackendDataType
    PARSER_FIELD_NUMBER: _ClassVar[int]
    ETLT_MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAVE_ENGINE_FIELD_NUMBER: _ClassVar[int]
    TRT_ENGINE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATOR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    parser: TensorRTConfig.Parser
    etlt_model: str
    backend_data_type: TensorRTConfig.BackendDataType
    save_engine: bool
    trt_engine: str
    calibrator_config: CalibratorConfig
    def __init__(self, parser: _Optional[_Union[TensorRTConfig.Parser, str]] = ..., etlt_model: _Optional[str] = ..., backend_data_type: _Optional[_Union[TensorRTConfig.BackendDataType, str]] = ..., save_engine: _Optional[bool] = ..., trt_engine: _Optional[str] = ..., calibrator_config: _Optional[_Union[CalibratorConfig, _Mapping]] = ...) -> None: ...

class TLTConfig(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class InferencerConfig(_message.Message):
    __slots__ = ("target_classes", "batch_size", "image_height", "image_width", "image_channels", "gpu_index", "tensorrt_config", "tlt_config")
    TARGET_CLASSES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    GPU_INDEX_FIELD_NUMBER: _ClassVar[int]
    TENSORRT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TLT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    target_classes: _containers.RepeatedScalarFieldContainer[str]
    batch_size: int
    image_height: int
    image_width: int
    image_channels: int
    gpu_index: int
    tensorrt_config: TensorRTConfig
    tlt_config: TLTConfig
    def __init__(self, target_classes: _Optional[_Iterable[str]] = ..., batch_size: _Optional[int] = ..., image_height: _Optional[int] = ..., image_width: _Optional[int] = ..., image_channels: _Optional[int] = ..., gpu_index: _Optional[int] = ..., tensorrt_config: _Optional[_Union[TensorRTConfig, _Mapping]] = ..., tlt_config: _Optional[_Union[TLTConfig, _Mapping]] = ...) -> None: ...

class BboxColor(_message.Message):
    __slots__ = ("R", "G", "B")
    R_FIELD_NUMBER: _ClassVar[int]
    G_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    R: int
    G: int
    B: int
    def __init__(self, R: _Optional[int] = ..., G: _Optional[int] = ..., B: _Optional[int] = ...) -> None: ...

class ClasswiseBboxHandlerConfig(_message.Message):
    __slots__ = ("clustering_config", "confidence_model", "output_map", "confidence_threshold", "bbox_color")
    CLUSTERING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MAP_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BBOX_COLOR_FIELD_NUMBER: _ClassVar[int]
    clustering_config: ClusteringConfig
    confidence_model: str
    output_map: str
    confidence_threshold: float
    bbox_color: BboxColor
    def __init__(self, clustering_config: _Optional[_Union[ClusteringConfig, _Mapping]] = ..., confidence_model: _Optional[str] = ..., output_map: _Optional[str] = ..., confidence_threshold: _Optional[float] = ..., bbox_color: _Optional[_Union[BboxColor, _Mapping]] = ...) -> None: ...

class ClasswiseBboxHandlerEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: ClasswiseBboxHandlerConfig
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ClasswiseBboxHandlerConfig, _Mapping]] = ...) -> None: ...

class BboxHandlerConfig(_message.Message):
    __slots__ = ("kitti_dump", "disable_overlay", "overlay_linewidth", "classwise_bbox_handler_config")
    KITTI_DUMP_FIELD_NUMBER: _ClassVar[int]
    DISABLE_OVERLAY_FIELD_NUMBER: _ClassVar[int]
    OVERLAY_LINEWIDTH_FIELD_NUMBER: _ClassVar[int]
    CLASSWISE_BBOX_HANDLER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    kitti_dump: bool
    disable_overlay: bool
    overlay_linewidth: int
    classwise_bbox_handler_config: _containers.RepeatedCompositeFieldContainer[ClasswiseBboxHandlerEntry]
    def __init__(self, kitti_dump: _Optional[bool] = ..., disable_overlay: _Optional[bool] = ..., overlay_linewidth: _Optional[int] = ..., classwise_bbox_handler_config: _Optional[_Iterable[_Union[ClasswiseBboxHandlerEntry, _Mapping]]] = ...) -> None: ...

class InferenceSpec(_message.Message):
    __slots__ = ("inferencer_config", "bbox_handler_config")
    INFERENCER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BBOX_HANDLER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    inferencer_config: InferencerConfig
    bbox_handler_config: BboxHandlerConfig
    def __init__(self, inferencer_config: _Optional[_Union[InferencerConfig, _Mapping]] = ..., bbox_handler_config: _Optional[_Union[BboxHandlerConfig, _Mapping]] = ...) -> None: ...
