"""tlt-infer mask_rcnn keeps the aspect ratio as training and evaluation do (each image scaled by min(H/h, W/w),
normalised, zero-padded at the bottom/right): boxes and masks in the original image's pixels equal what
``decode_instances`` (tlt-evaluate's path, through the record pipeline of ``data.py``) gives for the same image; and
``-l`` writes COCO results that pycocotools loads against a json of the images.

The model is a fresh ResNet10 MaskRCNN (no training: the geometry is under test), its mask head set to a constant
so that every mask fills its box. The images' values are multiples of 16 and each is scaled by exactly 2, which
Pillow's and TensorFlow's bilinear resampling compute identically, so both paths feed the network the same pixels.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.registry import get_architecture
from tlt_infer.cli import main

KEY = "mrcnn-infer-key"
#: (width, height): 128×128 network input, each scaled by 2 — one padded at the bottom, one at the right.
SIZES = {"1": (64, 40), "2": (36, 64)}
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "triangle"}, {"id": 3, "name": "square"}]


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def masks_fill_boxes(model: Any) -> None:
    """A constant mask head (sigmoid(4) everywhere): each mask is its whole box."""
    logits = model.get_layer("mask_fcn_logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([np.zeros_like(kernel), np.full_like(bias, 4.0)])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from libtlt.io.example import encode_example
    from libtlt.io.tfrecord import write_tfrecord
    from libtlt.spec import load_spec
    from libtlt.testing import save_untrained_model

    root = tmp_path_factory.mktemp("mrcnn_infer")
    rng = np.random.default_rng(4)
    (root / "images").mkdir()
    truth: dict[str, Any] = {"images": [], "annotations": [], "categories": CATEGORIES}
    records = []
    for stem, (width, height) in SIZES.items():
        pixels = (rng.integers(0, 16, (height, width, 3)) * 16).astype(np.uint8)
        pixels[height // 4:height // 2, width // 4:3 * width // 4] = (240, 32, 16)  # something to find
        data = _png(pixels)
        (root / "images" / f"{stem}.png").write_bytes(data)
        truth["images"].append({"id": int(stem), "file_name": f"{stem}.png", "width": width, "height": height})
        records.append(encode_example({"image/encoded": [data], "image/source_id": [stem.encode()]}))
    write_tfrecord(root / "val-00000-of-00001.tfrecord", records)
    (root / "instances.json").write_text(json.dumps(truth))

    arch = get_architecture("mask_rcnn")
    text = arch.sample_spec(SimpleNamespace(train=str(root / "val-*"), val=str(root / "val-*"), root=str(root),
                                            annotations=str(root / "instances.json")))
    spec_path = root / "spec.txt"
    spec_path.write_text(text.replace("eval_batch_size: 2", "eval_batch_size: 1"))
    spec = load_spec(spec_path, arch.spec_message())
    arch.validate(spec)
    model = save_untrained_model(arch, spec, root / "model.tlt", KEY, seed=3, prepare=masks_fill_boxes)
    return {"root": root, "arch": arch, "spec": spec, "spec_path": spec_path, "model": model, "truth": truth}


def _evaluation_path(setup: dict[str, Any]) -> dict[int, Any]:
    """Image id → ``decode_instances`` of the model's outputs on the records' (letterboxed) images."""
    arch, spec, model = setup["arch"], setup["spec"], setup["model"]
    found = {}
    for images, infos in arch.evaluation_images(spec, batch_size=1):
        outputs = dict(zip(arch.output_names(spec), (np.asarray(o) for o in model.predict_on_batch(images)),
                           strict=True))
        [instances] = arch.decode_instances(spec, outputs, [(infos[0].width, infos[0].height)])
        found[infos[0].image_id] = instances
    return found


@pytest.fixture(scope="module")
def inferred(setup: dict[str, Any]) -> Path:
    out = setup["root"] / "out"
    result = CliRunner().invoke(main, ["mask_rcnn", "-e", str(setup["spec_path"]), "-m", str(setup["root"] / "model.tlt"),
                                       "-k", KEY, "-i", str(setup["root"] / "images"), "-o", str(out), "-t", "0.0",
                                       "-l", str(out / "results.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_boxes_and_masks_match_the_evaluation_path_in_the_original_pixels(setup: dict[str, Any],
                                                                          inferred: Path) -> None:
    from pycocotools import mask as mask_api

    evaluated = _evaluation_path(setup)
    results = json.loads((inferred / "results.json").read_text())
    for stem, (width, height) in SIZES.items():
        expected = evaluated[int(stem)]
        assert len(expected.boxes) > 0
        lines = (inferred / "labels" / f"{stem}.txt").read_text().splitlines()
        assert len(lines) == len(expected.boxes)
        boxes = np.array([[float(v) for v in line.split()[4:8]] for line in lines])
        clipped = np.clip(expected.boxes, 0, [width, height, width, height])  # tlt-infer clips to the image
        np.testing.assert_allclose(boxes, clipped, atol=0.01)
        assert boxes[:, 2].max() > 0.6 * width and boxes[:, 3].max() > 0.6 * height  # the whole image, not a part

        drawn = np.asarray(Image.open(inferred / "images_annotated" / f"{stem}.png"))
        numbers = np.asarray(Image.open(inferred / "masks" / f"{stem}.png"))
        assert drawn.shape[:2] == numbers.shape == (height, width)
        # the whole masks (the COCO results carry them, the instance map only what no earlier one covers)
        masks = [mask_api.decode(r["segmentation"]).astype(bool) for r in results if r["image_id"] == int(stem)]
        assert len(masks) == len(expected.masks)
        ious = [(mine & theirs).sum() / max((mine | theirs).sum(), 1) for mine, theirs in zip(masks, expected.masks,
                                                                                             strict=True)]
        # pasted on the network grid then resized (tlt-infer) or pasted at the image's size (evaluation): edges differ
        assert min(iou for iou, m in zip(ious, expected.masks, strict=True) if m.sum() >= 30) > 0.8
        assert np.mean(ious) > 0.9


def test_coco_results_load_in_pycocotools_against_the_images_json(setup: dict[str, Any], inferred: Path) -> None:
    from pycocotools import mask as mask_api
    from pycocotools.coco import COCO

    results = json.loads((inferred / "results.json").read_text())
    evaluated = _evaluation_path(setup)
    assert len(results) == sum(len(evaluated[int(s)].boxes) for s in SIZES)
    with warnings.catch_warnings(), __import__("contextlib").redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        truth = COCO()
        truth.dataset = setup["truth"]
        truth.createIndex()
        loaded = truth.loadRes(str(inferred / "results.json"))
    assert len(loaded.getAnnIds()) == len(results)
    numbers = {s: np.asarray(Image.open(inferred / "masks" / f"{s}.png")) for s in SIZES}
    taken = {s: np.zeros(numbers[s].shape, bool) for s in SIZES}
    index = {s: 0 for s in SIZES}
    for entry in results:
        stem = str(entry["image_id"])  # the file names are integers: COCO's own ids
        width, height = SIZES[stem]
        assert entry["category_id"] in (1, 2, 3)
        assert entry["segmentation"]["size"] == [height, width]
        mask = mask_api.decode(entry["segmentation"]).astype(bool)
        index[stem] += 1
        np.testing.assert_array_equal(mask & ~taken[stem], numbers[stem] == index[stem])  # the same instances
        taken[stem] |= mask
        line = (inferred / "labels" / f"{stem}.txt").read_text().splitlines()[index[stem] - 1].split()
        x1, y1, x2, y2 = (float(v) for v in line[4:8])
        assert entry["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.011)
        assert entry["score"] == pytest.approx(float(line[15]), abs=1e-4)


def test_a_directory_gets_one_results_file_per_image(setup: dict[str, Any], inferred: Path, tmp_path: Path) -> None:
    image = setup["root"] / "images" / "2.png"
    result = CliRunner().invoke(main, ["mask_rcnn", "-e", str(setup["spec_path"]), "-m", str(setup["root"] / "model.tlt"),
                                       "-k", KEY, "-i", str(image), "-o", str(tmp_path / "out"), "-t", "0.0",
                                       "-l", str(tmp_path / "labels")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["2.json"]
    together = [r for r in json.loads((inferred / "results.json").read_text()) if r["image_id"] == 2]
    assert json.loads((tmp_path / "labels" / "2.json").read_text()) == together
