from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InterpolationMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILINEAR: _ClassVar[InterpolationMethod]
    BICUBIC: _ClassVar[InterpolationMethod]
BILINEAR: InterpolationMethod
BICUBIC: InterpolationMethod

class Experiment(_message.Message):
    __slots__ = ("model_config", "train_config", "eval_config", "results_dir", "key", "data", "model", "augment", "train", "evaluate", "prune", "inference", "export")
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAIN_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    RESULTS_DIR_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    AUGMENT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    model_config: ModelConfig
    train_config: TrainConfig
    eval_config: EvalConfig
    results_dir: str
    key: str
    data: DataConfig
    model: ModelConfig
    augment: AugmentConfig
    train: TrainConfig
    evaluate: EvalConfig
    prune: PruneConfig
    inference: InferenceConfig
    export: ExportConfig
    def __init__(self, model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., train_config: _Optional[_Union[TrainConfig, _Mapping]] = ..., eval_config: _Optional[_Union[EvalConfig, _Mapping]] = ..., results_dir: _Optional[str] = ..., key: _Optional[str] = ..., data: _Optional[_Union[DataConfig, _Mapping]] = ..., model: _Optional[_Union[ModelConfig, _Mapping]] = ..., augment: _Optional[_Union[AugmentConfig, _Mapping]] = ..., train: _Optional[_Union[TrainConfig, _Mapping]] = ..., evaluate: _Optional[_Union[EvalConfig, _Mapping]] = ..., prune: _Optional[_Union[PruneConfig, _Mapping]] = ..., inference: _Optional[_Union[InferenceConfig, _Mapping]] = ..., export: _Optional[_Union[ExportConfig, _Mapping]] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("arch", "n_layers", "use_bias", "use_batch_norm", "all_projections", "use_pooling", "freeze_bn", "freeze_blocks", "input_image_size", "resize_interpolation_method", "retain_head", "dropout", "byom_model", "input_image_depth")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    USE_BIAS_FIELD_NUMBER: _ClassVar[int]
    USE_BATCH_NORM_FIELD_NUMBER: _ClassVar[int]
    ALL_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    USE_POOLING_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    INPUT_IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_INTERPOLATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    RETAIN_HEAD_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    BYOM_MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_IMAGE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    arch: str
    n_layers: int
    use_bias: bool
    use_batch_norm: bool
    all_projections: bool
    use_pooling: bool
    freeze_bn: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    input_image_size: _containers.RepeatedScalarFieldContainer[str]
    resize_interpolation_method: InterpolationMethod
    retain_head: bool
    dropout: float
    byom_model: str
    input_image_depth: int
    def __init__(self, arch: _Optional[str] = ..., n_layers: _Optional[int] = ..., use_bias: _Optional[bool] = ..., use_batch_norm: _Optional[bool] = ..., all_projections: _Optional[bool] = ..., use_pooling: _Optional[bool] = ..., freeze_bn: _Optional[bool] = ..., freeze_blocks: _Optional[_Iterable[int]] = ..., input_image_size: _Optional[_Iterable[str]] = ..., resize_interpolation_method: _Optional[_Union[InterpolationMethod, str]] = ..., retain_head: _Optional[bool] = ..., dropout: _Optional[float] = ..., byom_model: _Optional[str] = ..., input_image_depth: _Optional[int] = ...) -> None: ...

class TrainConfig(_message.Message):
    __slots__ = ("train_dataset_path", "val_dataset_path", "pretrained_model_path", "optimizer", "batch_size_per_gpu", "n_epochs", "n_workers", "reg_config", "lr_config", "num_epochs", "checkpoint_interval", "random_seed", "label_smoothing", "optim_config", "bn_config", "qat")
    TRAIN_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    VAL_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_PER_GPU_FIELD_NUMBER: _ClassVar[int]
    N_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    N_WORKERS_FIELD_NUMBER: _ClassVar[int]
    REG_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LR_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    LABEL_SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    OPTIM_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BN_CONFIG_FIELD_NUMBER: _ClassVar[int]
    QAT_FIELD_NUMBER: _ClassVar[int]
    train_dataset_path: str
    val_dataset_path: str
    pretrained_model_path: str
    optimizer: str
    batch_size_per_gpu: int
    n_epochs: int
    n_workers: int
    reg_config: RegConfig
    lr_config: LRConfig
    num_epochs: int
    checkpoint_interval: int
    random_seed: int
    label_smoothing: float
    optim_config: OptimConfig
    bn_config: BNConfig
    qat: bool
    def __init__(self, train_dataset_path: _Optional[str] = ..., val_dataset_path: _Optional[str] = ..., pretrained_model_path: _Optional[str] = ..., optimizer: _Optional[str] = ..., batch_size_per_gpu: _Optional[int] = ..., n_epochs: _Optional[int] = ..., n_workers: _Optional[int] = ..., reg_config: _Optional[_Union[RegConfig, _Mapping]] = ..., lr_config: _Optional[_Union[LRConfig, _Mapping]] = ..., num_epochs: _Optional[int] = ..., checkpoint_interval: _Optional[int] = ..., random_seed: _Optional[int] = ..., label_smoothing: _Optional[float] = ..., optim_config: _Optional[_Union[OptimConfig, _Mapping]] = ..., bn_config: _Optional[_Union[BNConfig, _Mapping]] = ..., qat: _Optional[bool] = ...) -> None: ...

class LRConfig(_message.Message):
    __slots__ = ("scheduler", "learning_rate", "soft_start", "annealing_points", "annealing_divider", "step_size", "gamma", "min_lr_ratio")
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SOFT_START_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_POINTS_FIELD_NUMBER: _ClassVar[int]
    ANNEALING_DIVIDER_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    MIN_LR_RATIO_FIELD_NUMBER: _ClassVar[int]
    scheduler: str
    learning_rate: float
    soft_start: float
    annealing_points: _containers.RepeatedScalarFieldContainer[str]
    annealing_divider: float
    step_size: int
    gamma: float
    min_lr_ratio: float
    def __init__(self, scheduler: _Optional[str] = ..., learning_rate: _Optional[float] = ..., soft_start: _Optional[float] = ..., annealing_points: _Optional[_Iterable[str]] = ..., annealing_divider: _Optional[float] = ..., step_size: _Optional[int] = ..., gamma: _Optional[float] = ..., min_lr_ratio: _Optional[float] = ...) -> None: ...

class RegConfig(_message.Message):
    __slots__ = ("type", "scope", "weight_decay")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    type: str
    scope: _containers.RepeatedScalarFieldContainer[str]
    weight_decay: float
    def __init__(self, type: _Optional[str] = ..., scope: _Optional[_Iterable[str]] = ..., weight_decay: _Optional[float] = ...) -> None: ...

class OptimConfig(_message.Message):
    __slots__ = ("optimizer", "lr", "beta_1", "beta_2", "epsilon", "decay", "momentum", "nesterov")
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    BETA_1_FIELD_NUMBER: _ClassVar[int]
    BETA_2_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DECAY_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    NESTEROV_FIELD_NUMBER: _ClassVar[int]
    optimizer: str
    lr: float
    beta_1: float
    beta_2: float
    epsilon: float
    decay: float
    momentum: float
    nesterov: bool
    def __init__(self, optimizer: _Optional[str] = ..., lr: _Optional[float] = ..., beta_1: _Optional[float] = ..., beta_2: _Optional[float] = ..., epsilon: _Optional[float] = ..., decay: _Optional[float] = ..., momentum: _Optional[float] = ..., nesterov: _Optional[bool] = ...) -> None: ...

class BNConfig(_message.Message):
    __slots__ = ("momentum", "epsilon")
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    momentum: float
    epsilon: float
    def __init__(self, momentum: _Optional[float] = ..., epsilon: _Optional[float] = ...) -> None: ...

class EvalConfig(_message.Message):
    __slots__ = ("eval_dataset_path", "model_path", "top_k", "conf_threshold", "batch_size", "n_workers", "dataset_path")
    EVAL_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    CONF_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_WORKERS_FIELD_NUMBER: _ClassVar[int]
    DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    eval_dataset_path: str
    model_path: str
    top_k: int
    conf_threshold: float
    batch_size: int
    n_workers: int
    dataset_path: str
    def __init__(self, eval_dataset_path: _Optional[str] = ..., model_path: _Optional[str] = ..., top_k: _Optional[int] = ..., conf_threshold: _Optional[float] = ..., batch_size: _Optional[int] = ..., n_workers: _Optional[int] = ..., dataset_path: _Optional[str] = ...) -> None: ...

class DataConfig(_message.Message):
    __slots__ = ("train_dataset_path", "val_dataset_path", "image_mean", "preprocess_mode")
    TRAIN_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    VAL_DATASET_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_MEAN_FIELD_NUMBER: _ClassVar[int]
    PREPROCESS_MODE_FIELD_NUMBER: _ClassVar[int]
    train_dataset_path: str
    val_dataset_path: str
    image_mean: _containers.RepeatedScalarFieldContainer[float]
    preprocess_mode: str
    def __init__(self, train_dataset_path: _Optional[str] = ..., val_dataset_path: _Optional[str] = ..., image_mean: _Optional[_Iterable[float]] = ..., preprocess_mode: _Optional[str] = ...) -> None: ...

class AugmentConfig(_message.Message):
    __slots__ = ("enable_random_crop", "enable_center_crop", "enable_color_augmentation", "disable_horizontal_flip", "mixup_alpha")
    ENABLE_RANDOM_CROP_FIELD_NUMBER: _ClassVar[int]
    ENABLE_CENTER_CROP_FIELD_NUMBER: _ClassVar[int]
    ENABLE_COLOR_AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    DISABLE_HORIZONTAL_FLIP_FIELD_NUMBER: _ClassVar[int]
    MIXUP_ALPHA_FIELD_NUMBER: _ClassVar[int]
    enable_random_crop: bool
    enable_center_crop: bool
    enable_color_augmentation: bool
    disable_horizontal_flip: bool
    mixup_alpha: float
    def __init__(self, enable_random_crop: _Optional[bool] = ..., enable_center_crop: _Optional[bool] = ..., enable_color_augmentation: _Optional[bool] = ..., disable_horizontal_flip: _Optional[bool] = ..., mixup_alpha: _Optional[float] = ...) -> None: ...

class PruneConfig(_message.Message):
    __slots__ = ("normalizer", "equalization_criterion", "granularity", "threshold", "min_num_filters", "excluded_layers")
    NORMALIZER_FIELD_NUMBER: _ClassVar[int]
    EQUALIZATION_CRITERION_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_NUM_FILTERS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_LAYERS_FIELD_NUMBER: _ClassVar[int]
    normalizer: str
    equalization_criterion: str
    granularity: int
    threshold: float
    min_num_filters: int
    excluded_layers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, normalizer: _Optional[str] = ..., equalization_criterion: _Optional[str] = ..., granularity: _Optional[int] = ..., threshold: _Optional[float] = ..., min_num_filters: _Optional[int] = ..., excluded_layers: _Optional[_Iterable[str]] = ...) -> None: ...

class InferenceConfig(_message.Message):
    __slots__ = ("model_path", "image_dir", "classmap")
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIR_FIELD_NUMBER: _ClassVar[int]
    CLASSMAP_FIELD_NUMBER: _ClassVar[int]
    model_path: str
    image_dir: str
    classmap: str
    def __init__(self, model_path: _Optional[str] = ..., image_dir: _Optional[str] = ..., classmap: _Optional[str] = ...) -> None: ...

class ExportConfig(_message.Message):
    __slots__ = ("model_path", "output_path", "data_type")
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    model_path: str
    output_path: str
    data_type: str
    def __init__(self, model_path: _Optional[str] = ..., output_path: _Optional[str] = ..., data_type: _Optional[str] = ...) -> None: ...
