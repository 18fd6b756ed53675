from libtlt.spec.protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class YOLOv3Config(_message.Message):
    __slots__ = ("big_anchor_shape", "mid_anchor_shape", "small_anchor_shape", "matching_neutral_box_iou", "arch", "nlayers", "arch_conv_blocks", "loss_loc_weight", "loss_neg_obj_weights", "loss_class_weights", "freeze_bn", "freeze_blocks")
    BIG_ANCHOR_SHAPE_FIELD_NUMBER: _ClassVar[int]
    MID_ANCHOR_SHAPE_FIELD_NUMBER: _ClassVar[int]
    SMALL_ANCHOR_SHAPE_FIELD_NUMBER: _ClassVar[int]
    MATCHING_NEUTRAL_BOX_IOU_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    NLAYERS_FIELD_NUMBER: _ClassVar[int]
    ARCH_CONV_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    LOSS_LOC_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LOSS_NEG_OBJ_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    LOSS_CLASS_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    big_anchor_shape: str
    mid_anchor_shape: str
    small_anchor_shape: str
    matching_neutral_box_iou: float
    arch: str
    nlayers: int
    arch_conv_blocks: int
    loss_loc_weight: float
    loss_neg_obj_weights: float
    loss_class_weights: float
    freeze_bn: bool
    freeze_blocks: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, big_anchor_shape: _Optional[str] = ..., mid_anchor_shape: _Optional[str] = ..., small_anchor_shape: _Optional[str] = ..., matching_neutral_box_iou: _Optional[float] = ..., arch: _Optional[str] = ..., nlayers: _Optional[int] = ..., arch_conv_blocks: _Optional[int] = ..., loss_loc_weight: _Optional[float] = ..., loss_neg_obj_weights: _Optional[float] = ..., loss_class_weights: _Optional[float] = ..., freeze_bn: _Optional[bool] = ..., freeze_blocks: _Optional[_Iterable[int]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("random_seed", "yolo_config", "training_config", "eval_config", "nms_config", "augmentation_config", "dataset_config")
    RANDOM_SEED_FIELD_NUMBER: _ClassVar[int]
    YOLO_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    EVAL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NMS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DATASET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    random_seed: int
    yolo_config: YOLOv3Config
    training_config: _common_pb2.TrainingConfig
    eval_config: _common_pb2.EvalConfig
    nms_config: _common_pb2.NMSConfig
    augmentation_config: _common_pb2.AugmentationConfig
    dataset_config: _common_pb2.DatasetConfig
    def __init__(self, random_seed: _Optional[int] = ..., yolo_config: _Optional[_Union[YOLOv3Config, _Mapping]] = ..., training_config: _Optional[_Union[_common_pb2.TrainingConfig, _Mapping]] = ..., eval_config: _Optional[_Union[_common_pb2.EvalConfig, _Mapping]] = ..., nms_config: _Optional[_Union[_common_pb2.NMSConfig, _Mapping]] = ..., augmentation_config: _Optional[_Union[_common_pb2.AugmentationConfig, _Mapping]] = ..., dataset_config: _Optional[_Union[_common_pb2.DatasetConfig, _Mapping]] = ...) -> None: ...
