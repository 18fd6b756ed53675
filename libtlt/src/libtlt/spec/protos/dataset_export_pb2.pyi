from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KittiConfig(_message.Message):
    __slots__ = ("root_directory_path", "image_dir_name", "label_dir_name", "partition_mode", "num_partitions", "image_extension", "val_split", "kitti_sequence_to_frames_file", "num_shards")
    ROOT_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIR_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_DIR_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_MODE_FIELD_NUMBER: _ClassVar[int]
    NUM_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    VAL_SPLIT_FIELD_NUMBER: _ClassVar[int]
    KITTI_SEQUENCE_TO_FRAMES_FILE_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    root_directory_path: str
    image_dir_name: str
    label_dir_name: str
    partition_mode: str
    num_partitions: int
    image_extension: str
    val_split: float
    kitti_sequence_to_frames_file: str
    num_shards: int
    def __init__(self, root_directory_path: _Optional[str] = ..., image_dir_name: _Optional[str] = ..., label_dir_name: _Optional[str] = ..., partition_mode: _Optional[str] = ..., num_partitions: _Optional[int] = ..., image_extension: _Optional[str] = ..., val_split: _Optional[float] = ..., kitti_sequence_to_frames_file: _Optional[str] = ..., num_shards: _Optional[int] = ...) -> None: ...

class CocoConfig(_message.Message):
    __slots__ = ("root_directory_path", "img_dir_names", "annotation_files", "num_partitions", "num_shards", "tags", "include_masks")
    ROOT_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    IMG_DIR_NAMES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_FILES_FIELD_NUMBER: _ClassVar[int]
    NUM_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_MASKS_FIELD_NUMBER: _ClassVar[int]
    root_directory_path: str
    img_dir_names: _containers.RepeatedScalarFieldContainer[str]
    annotation_files: _containers.RepeatedScalarFieldContainer[str]
    num_partitions: int
    num_shards: _containers.RepeatedScalarFieldContainer[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    include_masks: bool
    def __init__(self, root_directory_path: _Optional[str] = ..., img_dir_names: _Optional[_Iterable[str]] = ..., annotation_files: _Optional[_Iterable[str]] = ..., num_partitions: _Optional[int] = ..., num_shards: _Optional[_Iterable[int]] = ..., tags: _Optional[_Iterable[str]] = ..., include_masks: _Optional[bool] = ...) -> None: ...

class SampleModifierConfig(_message.Message):
    __slots__ = ("filter_samples_containing_only", "dominant_target_classes", "minimum_target_class_imbalance", "num_duplicates", "max_training_samples", "source_to_target_class_mapping")
    class MinimumTargetClassImbalanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SourceToTargetClassMappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILTER_SAMPLES_CONTAINING_ONLY_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_TARGET_CLASSES_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_TARGET_CLASS_IMBALANCE_FIELD_NUMBER: _ClassVar[int]
    NUM_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAINING_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TO_TARGET_CLASS_MAPPING_FIELD_NUMBER: _ClassVar[int]
    filter_samples_containing_only: _containers.RepeatedScalarFieldContainer[str]
    dominant_target_classes: _containers.RepeatedScalarFieldContainer[str]
    minimum_target_class_imbalance: _containers.ScalarMap[str, float]
    num_duplicates: int
    max_training_samples: int
    source_to_target_class_mapping: _containers.ScalarMap[str, str]
    def __init__(self, filter_samples_containing_only: _Optional[_Iterable[str]] = ..., dominant_target_classes: _Optional[_Iterable[str]] = ..., minimum_target_class_imbalance: _Optional[_Mapping[str, float]] = ..., num_duplicates: _Optional[int] = ..., max_training_samples: _Optional[int] = ..., source_to_target_class_mapping: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DatasetExportConfig(_message.Message):
    __slots__ = ("kitti_config", "coco_config", "image_directory_path", "sample_modifier_config")
    KITTI_CONFIG_FIELD_NUMBER: _ClassVar[int]
    COCO_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIRECTORY_PATH_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_MODIFIER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    kitti_config: KittiConfig
    coco_config: CocoConfig
    image_directory_path: str
    sample_modifier_config: SampleModifierConfig
    def __init__(self, kitti_config: _Optional[_Union[KittiConfig, _Mapping]] = ..., coco_config: _Optional[_Union[CocoConfig, _Mapping]] = ..., image_directory_path: _Optional[str] = ..., sample_modifier_config: _Optional[_Union[SampleModifierConfig, _Mapping]] = ...) -> None: ...
