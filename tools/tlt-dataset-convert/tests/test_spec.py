"""The dataset export spec: the manual's sample loads as printed, with the documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from libtlt.errors import SpecError
from libtlt.spec import load_spec_text
from libtlt.spec.protos import dataset_export_pb2
from tlt_dataset_convert.convert import load_export_spec

SPECS = Path(__file__).resolve().parents[3] / "tests" / "data" / "specs" / "dataset_export"


def test_manual_sample_spec_loads_as_printed() -> None:
    spec = load_export_spec(SPECS / "kitti_voc_random.txt")
    config = spec.message.kitti_config
    root = "/workspace/tlt-experiments/data/VOCtrainval_11-May-2012/VOCdevkit/VOC2012"
    assert config.root_directory_path == root and spec.message.image_directory_path == root
    assert (config.image_dir_name, config.label_dir_name) == ("JPEGImages_kitti/test", "Annotations_kitti/test")
    assert (config.image_extension, config.partition_mode) == (".jpg", "random")
    assert (config.num_partitions, config.val_split, config.num_shards) == (2, 20, 10)
    assert spec.locate("kitti_config.val_split").endswith("kitti_voc_random.txt:8:3")


def test_documented_defaults() -> None:
    config = load_spec_text("kitti_config { }", dataset_export_pb2.DatasetExportConfig).message.kitti_config
    assert (config.image_extension, config.val_split, config.num_shards, config.num_partitions) == (".png", 20, 10, 2)
    coco = load_spec_text("coco_config { }", dataset_export_pb2.DatasetExportConfig).message.coco_config
    assert coco.include_masks is True


def test_kitti_and_coco_are_exclusive() -> None:
    text = 'kitti_config { image_dir_name: "a" }\ncoco_config { img_dir_names: "b" }\n'
    with pytest.raises(SpecError):
        load_spec_text(text, dataset_export_pb2.DatasetExportConfig)
