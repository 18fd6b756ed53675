"""The COCO instance sample (libtlt.samples.instances): valid COCO, masks that are the drawn objects, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools.coco import COCO
from scipy import ndimage

from libtlt.samples import generate_coco_dataset


def test_annotations_are_valid_coco_and_match_the_pixels(tmp_path: Path) -> None:
    sample = generate_coco_dataset(tmp_path, num_images=6, width=96, height=64, seed=4)
    coco = COCO(str(sample.annotation_file))
    assert sorted(coco.getCatIds()) == [1, 2, 3] and len(coco.getImgIds()) == 6
    assert sample.num_objects == len(coco.getAnnIds()) >= 6
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        pixels = np.asarray(Image.open(sample.image_dir / info["file_name"]), np.float32)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        masks = np.stack([coco.annToMask(a) for a in annotations]).astype(bool)
        assert masks.sum(axis=0).max() == 1  # objects never overlap: each polygon is its visible mask
        for annotation, mask in zip(annotations, masks, strict=True):
            assert annotation["area"] == mask.sum() > 0 and annotation["iscrowd"] == 0
            x, y, w, h = annotation["bbox"]
            rows, cols = np.nonzero(mask)
            assert x - 1 <= cols.min() and cols.max() <= x + w and y - 1 <= rows.min() and rows.max() <= y + h
            # The object is one flat colour (plus sensor noise and JPEG): far less spread than the background.
            inner = ndimage.binary_erosion(mask, iterations=2)  # JPEG blurs the outline
            if inner.sum() >= 10:
                assert pixels[inner].std(axis=0).mean() < 8.0


def test_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    first = generate_coco_dataset(tmp_path / "a", num_images=3, seed=9)
    second = generate_coco_dataset(tmp_path / "b", num_images=3, seed=9)
    assert json.loads(first.annotation_file.read_text()) == json.loads(second.annotation_file.read_text())
    for image in sorted(first.image_dir.iterdir()):
        assert image.read_bytes() == (second.image_dir / image.name).read_bytes()


def test_command_line_writes_both_splits_and_refuses_unknown_shapes(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "libtlt.samples", "instances"]
    done = subprocess.run([*run, str(tmp_path / "ok"), "--train", "3", "--val", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    train = json.loads((tmp_path / "ok" / "annotations" / "instances_train.json").read_text())
    val = json.loads((tmp_path / "ok" / "annotations" / "instances_val.json").read_text())
    assert len(train["images"]) == 3 and len(val["images"]) == 2
    assert not {i["id"] for i in train["images"]} & {i["id"] for i in val["images"]}  # one id space
    bad = subprocess.run([*run, str(tmp_path / "bad"), "--classes", "hexagon"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown shape class(es) hexagon" in bad.stderr


def test_task_sample_for_instance_segmenters_is_converted(tmp_path: Path) -> None:
    """libtlt.testing.write_task_sample: the COCO sample converted by the installed tlt-dataset-convert into the
    records an instance segmenter's sample_spec points at (one file per split, every image in it)."""
    from libtlt.io.tfrecord import read_records
    from libtlt.registry import INSTANCE_SEGMENTER
    from libtlt.testing import write_task_sample

    data = write_task_sample(INSTANCE_SEGMENTER, tmp_path)
    for pattern, count in ((data.train, 8), (data.val, 4)):
        files = sorted(Path(pattern).parent.glob(Path(pattern).name))
        assert len(files) == 1 and sum(1 for _ in read_records(files[0])) == count
    assert len(COCO(data.annotations).getImgIds()) == 4 and data.classes == ("circle", "triangle", "square")
