from libtlt.spec.protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetinaNetConfig(_message.Message):
    __slots__ = ("aspect_ratios_global", "aspect_ratios", "two_boxes_for_ar1", "clip_boxes", "scales", "min_scale", "max_scale", "loss_loc_weight", "focal_loss_alpha", "focal_loss_gamma", "variances", "steps", "offsets", "arch", "nlayers", "freeze_bn", "freeze_blocks", "n_kernels", "feature_size", "n_layers", "n_anchor_levels")
    ASPECT_RATIOS_GLOBAL_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIOS_FIELD_NUMBER: _ClassVar[int]
    TWO_BOXES_FOR_AR1_FIELD_NUMBER: _ClassVar[int]
    CLIP_BOXES_FIELD_NUMBER: _ClassVar[int]
    SCALES_FIELD_NUMBER: _ClassVar[int]
    MIN_SCALE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCALE_FIELD_NUMBER: _ClassVar[int]
    LOSS_LOC_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FOCAL_LOSS_ALPHA_FIELD_NUMBER: _ClassVar[int]
    FOCAL_LOSS_GAMMA_FIELD_NUMBER: _ClassVar[int]
    VARIANCES_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OFFSETS_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    NLAYERS_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    N_KERNELS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SIZE_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    N_ANCHOR_LEVELS_FIELD_NUMBER: _ClassVar[int]
    aspect_ratios_global: str
    aspect_ratios: str
    two_boxes_for_ar1: bool
    clip_boxes: bool
    scales: str
    min_scale: float
    max_scale: float
    loss_loc_weight: float
    focal_loss_alpha: float
    focal_loss_gamma: float
    variances: str
    steps: str
    offsets: str
    arch: str
    nlayers: int
    freeze_bn: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    n_kernels: int
    feature_size: int
    n_layers: int
    n_anchor_levels: int
    def __init__(self, aspect_ratios_global: _Optional[str] = ..., aspect_ratios: _Optional[str] = ..., two_boxes_for_ar1: _Optional[bool] = ..., clip_boxes: _Optional[bool] = ..., scales: _Optional[str] = ..., min_scale: _Optional[float] = ..., max_scale: _Optional[float] = ..., loss_loc_weight: _Optional[float] = ..., focal_loss_alpha: _Optional[float] = ..., focal_loss_gamma: _Optional[float] = ..., variances: _Optional[str] = ..., steps: _Optional[str] = ..., offsets: _Optional[str] = ..., arch: _Optional[str] = ..., nlayers: _Optional[int] = ..., freeze_bn: _Optional[bool] = ..., freeze_blocks: _Optional[_Iterable[int]] = ..., n_kernels: _Optional[int] = ..., feature_size: _Optional[int] = ..., n_layers: _Optional[int] = ..., n_anchor_levels: _Optional[int] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("random_seed", "retinanet_config", "training_config", "eval_config", "nms_config", "augmentation_config", "dataset_config")
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    RETINANET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NMS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    random_seed: int
    retinanet_config: RetinaNetConfig
    training_config: _common_pb2.TrainingConfig
    eval_config: _common_pb2.EvalConfig
    nms_config: _common_pb2.NMSConfig
    augmentation_config: _common_pb2.AugmentationConfig
    dataset_config: _common_pb2.DatasetConfig
    def __init__(self, random_seed: _Optional[int] = ..., retinanet_config: _Optional[_Union[RetinaNetConfig, _Mapping]] = ..., training_config: _Optional[_Union[_common_pb2.TrainingConfig, _Mapping]] = ..., eval_config: _Optional[_Union[_common_pb2.EvalConfig, _Mapping]] = ..., nms_config: _Optional[_Union[_common_pb2.NMSConfig, _Mapping]] = ..., augmentation_config: _Optional[_Union[_common_pb2.AugmentationConfig, _Mapping]] = ..., dataset_config: _Optional[_Union[_common_pb2.DatasetConfig, _Mapping]] = ...) -> None: ...
