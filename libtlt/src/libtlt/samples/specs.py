"""Spec files for the generated samples, so that tests, benchmarks and the demo convert them alike."""

from __future__ import annotations

from pathlib import Path


def kitti_convert_spec(root: str | Path, *, val_split: int = 20, num_shards: int = 2,
                       image_extension: str = ".png") -> str:
    """tlt-dataset-convert's spec (000 §6.3) for a KITTI folder ``root`` (``images/``, ``labels/``): a random
    split into two partitions, fold 0 holding ``val_split`` percent of the frames, ``num_shards`` per fold.
    ``image_directory_path`` is ``root`` too, so the records' frame ids resolve against it in training."""
    return f"""kitti_config {{
  root_directory_path: "{root}"
  image_dir_name: "images"
  label_dir_name: "labels"
  image_extension: "{image_extension}"
  partition_mode: "random"
  num_partitions: 2
  val_split: {val_split}
  num_shards: {num_shards}
}}
image_directory_path: "{root}"
"""


def coco_convert_spec(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> str:
    """tlt-dataset-convert's ``coco_config`` for the COCO sample of ``libtlt.samples.instances`` under ``root``
    (``<split>/`` images and ``annotations/instances_<split>.json``): one record file per split, named after it."""
    names = ", ".join(f'"{split}"' for split in splits)
    files = ", ".join(f'"annotations/instances_{split}.json"' for split in splits)
    return f"""coco_config {{
  root_directory_path: "{root}"
  img_dir_names: [{names}]
  annotation_files: [{files}]
  tags: [{names}]
  num_shards: [{", ".join("1" for _ in splits)}]
}}
"""
