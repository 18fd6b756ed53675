"""COCO → MaskRCNN TFRecords, read back and decoded (images and PNG masks) with TensorFlow."""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tlt_dataset_convert.convert import convert

tf = pytest.importorskip("tensorflow")
mask_api = pytest.importorskip("pycocotools.mask")

KEYS = {
    "image/height": tf.int64, "image/width": tf.int64, "image/filename": tf.string, "image/source_id": tf.string,
    "image/key/sha256": tf.string, "image/encoded": tf.string, "image/format": tf.string,
    "image/object/bbox/xmin": tf.float32, "image/object/bbox/ymin": tf.float32,
    "image/object/bbox/xmax": tf.float32, "image/object/bbox/ymax": tf.float32,
    "image/object/class/text": tf.string, "image/object/class/label": tf.int64,
    "image/object/is_crowd": tf.int64, "image/object/area": tf.float32, "image/object/mask": tf.string,
}


def read(paths: list[str], keys: dict[str, Any] = KEYS) -> list[dict[str, Any]]:
    spec = {k: tf.io.VarLenFeature(t) for k, t in keys.items()}
    out = []
    for raw in tf.data.TFRecordDataset(paths):
        parsed = tf.io.parse_single_example(raw, spec)
        out.append({k: tf.sparse.to_dense(v).numpy().tolist() for k, v in parsed.items()})
    return out


def reference_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, list):
        rle = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], str):
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    else:
        rle = mask_api.frPyObjects(segmentation, height, width)
    return mask_api.decode(rle)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_round_trip_with_masks(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "tfrecords"
    result = convert(coco_spec(coco_root), f"{out_dir}/")
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["train2017-00000-of-00002.tfrecord", "train2017-00001-of-00002.tfrecord",
                     "val2017-00000-of-00001.tfrecord", "warning.json"]
    assert [p.name for p in result.files] == names[:3]
    # The patterns of MaskRCNN's data_config find exactly the right files.
    train = sorted(glob.glob(f"{out_dir}/train*.tfrecord"))
    val = sorted(glob.glob(f"{out_dir}/val*.tfrecord"))
    assert len(train) == 2 and len(val) == 1

    for files, tag in ((train, "train2017"), (val, "val2017")):
        data = json.loads((coco_root / "annotations" / f"instances_{tag}.json").read_text())
        records = read(files)
        assert [r["image/source_id"][0].decode() for r in records] == [str(i["id"]) for i in data["images"]]
        for record, image in zip(records, data["images"], strict=True):
            raw = (coco_root / tag / image["file_name"]).read_bytes()
            assert record["image/encoded"] == [raw]  # embedded unchanged
            assert record["image/key/sha256"] == [hashlib.sha256(raw).hexdigest().encode()]
            assert record["image/format"] == [b"jpeg"]
            assert record["image/filename"] == [image["file_name"].encode()]
            height, width = image["height"], image["width"]
            assert (record["image/height"], record["image/width"]) == ([height], [width])
            assert tf.io.decode_jpeg(raw).shape == (height, width, 3)
            anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and a["bbox"][2] > 0]
            assert record["image/object/class/label"] == [a["category_id"] for a in anns]
            category = {1: b"person", 3: b"car"}
            assert record["image/object/class/text"] == [category[a["category_id"]] for a in anns]
            assert record["image/object/is_crowd"] == [a["iscrowd"] for a in anns]
            assert record["image/object/area"] == np.array([a["area"] for a in anns], dtype=np.float32).tolist()
            boxes = np.array([a["bbox"] for a in anns], dtype=np.float64)
            expected = np.stack([boxes[:, 0] / width, boxes[:, 1] / height, (boxes[:, 0] + boxes[:, 2]) / width,
                                 (boxes[:, 1] + boxes[:, 3]) / height], axis=1).astype(np.float32)
            got = np.array([record[f"image/object/bbox/{k}"] for k in ("xmin", "ymin", "xmax", "ymax")]).T
            np.testing.assert_array_equal(got, expected)
            assert len(record["image/object/mask"]) == len(anns)
            for png, ann in zip(record["image/object/mask"], anns, strict=True):
                decoded = tf.io.decode_png(png).numpy()
                assert decoded.shape == (height, width, 1)
                np.testing.assert_array_equal(decoded[:, :, 0], reference_mask(ann["segmentation"], height, width))
                assert decoded.max() == 1  # values 0/1, as MaskRCNN's decoder expects (mask > 0)

    warning = json.loads((out_dir / "warning.json").read_text())
    assert warning["skipped_boxes"] == 2


def test_coco_prefix_naming_and_boxes_only(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = coco_spec(coco_root, extra='  include_masks: false\n  tags: ["train", "val"]\n')
    convert(spec, str(tmp_path / "out" / "coco"))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["coco-train-00000-of-00002.tfrecord", "coco-train-00001-of-00002.tfrecord",
                     "coco-val-00000-of-00001.tfrecord", "coco_warning.json"]
    raw = next(iter(tf.data.TFRecordDataset(str(tmp_path / "out" / "coco-val-00000-of-00001.tfrecord"))))
    keys = set(tf.train.Example.FromString(raw.numpy()).features.feature)
    assert keys == set(KEYS) - {"image/object/mask"}


def test_coco_conversion_is_deterministic(coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    spec = coco_spec(coco_root)
    convert(spec, f"{tmp_path}/a/")
    convert(spec, f"{tmp_path}/b/")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
