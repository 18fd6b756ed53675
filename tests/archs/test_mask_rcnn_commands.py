"""MaskRCNN through the installed commands on generated COCO data (libtlt.testing's instance-segmenter sample,
converted by tlt-dataset-convert): tlt-train (intervals of num_steps_per_eval steps with COCO validation, losses,
use_amp's warning, resume to a longer total_steps), tlt-evaluate (bbox and segm statistics printed and written,
equal to pycocotools' own evaluation of the written detections.json), tlt-infer (annotated images, KITTI labels and
instance maps), and a spec error that exits 2 at file:line before any training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from libtlt.registry import get_architecture

KEY = "mrcnn-key"
BIN = Path(sys.executable).parent


def run(tool: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), "mask_rcnn", *(str(a) for a in args)], capture_output=True, text=True,
                          env={**os.environ, "TLT_KEY": KEY}, timeout=900)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from libtlt.registry import INSTANCE_SEGMENTER
    from libtlt.testing import write_task_sample

    root = tmp_path_factory.mktemp("mrcnn_cmd")
    data = write_task_sample(INSTANCE_SEGMENTER, root / "data")
    text = get_architecture("mask_rcnn").sample_spec(data).replace("use_amp: False", "use_amp: True")
    spec = root / "spec.txt"
    spec.write_text(text)
    done = run("tlt-train", "-e", spec, "-r", root / "results", "-n", "tiny")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"root": root, "data": data, "spec": spec, "text": text, "train": done,
            "model": root / "results" / "weights" / "tiny.tlt"}


@pytest.mark.slow
def test_train_runs_intervals_validates_and_resumes(trained: dict[str, Any]) -> None:
    stderr = trained["train"].stderr
    assert "use_amp: MaskRCNN trains in float32" in stderr
    status = [json.loads(line) for line in (trained["root"] / "results" / "status.json").read_text().splitlines()]
    assert status[-1]["status"] == "SUCCESS"
    assert "Validation after interval 2: bbox AP" in stderr  # 6 steps = 2 intervals of num_steps_per_eval 3
    weights = sorted(p.name for p in (trained["root"] / "results" / "weights").glob("mask_rcnn_*.tlt"))
    assert weights == ["mask_rcnn_resnet10_001.tlt", "mask_rcnn_resnet10_002.tlt"]

    longer = trained["root"] / "longer.txt"
    longer.write_text(trained["text"].replace("total_steps: 6", "total_steps: 9"))
    done = run("tlt-train", "-e", longer, "-r", trained["root"] / "results")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Resuming from" in done.stderr and "2 epochs done, 6 iterations" in done.stderr
    assert (trained["root"] / "results" / "weights" / "mask_rcnn_resnet10_003.tlt").is_file()


@pytest.mark.slow
def test_evaluate_prints_and_writes_bbox_and_segm_stats(trained: dict[str, Any]) -> None:
    from libtlt.metrics.coco import STAT_NAMES, coco_stats

    out = trained["root"] / "evaluation"
    done = run("tlt-evaluate", "-e", trained["spec"], "-m", trained["model"], "-r", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "COCO bbox metrics:" in done.stdout and "COCO segm metrics:" in done.stdout
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["coco_bbox"]) == set(STAT_NAMES) == set(report["coco_segm"])
    detections = json.loads((out / "detections.json").read_text())
    assert report["num_images"] == 4 and len(detections) == report["num_detections"] > 0
    assert all(d["category_id"] in (1, 2, 3) and "segmentation" in d for d in detections)
    truth = json.loads(Path(trained["data"].annotations).read_text())
    for kind in ("bbox", "segm"):
        assert coco_stats(truth, detections, kind) == pytest.approx(report[f"coco_{kind}"], nan_ok=True)


@pytest.mark.slow
def test_infer_draws_boxes_names_and_masks(trained: dict[str, Any]) -> None:
    out = trained["root"] / "inference"
    done = run("tlt-infer", "-e", trained["spec"], "-m", trained["model"], "-i", trained["data"].images, "-o", out,
               "-t", "0.0")
    assert done.returncode == 0, done.stderr[-3000:]
    images = sorted(Path(trained["data"].images).iterdir())
    labels = sorted((out / "labels").glob("*.txt"))
    assert len(labels) == len(images) == len(list((out / "images_annotated").iterdir()))
    first = labels[0].read_text().splitlines()
    assert first and first[0].split()[0] in ("circle", "triangle", "square")  # class names from val_json_file
    instance_map = np.asarray(Image.open(out / "masks" / f"{labels[0].stem}.png"))
    assert instance_map.shape == Image.open(images[0]).size[::-1]
    assert set(np.unique(instance_map)) <= set(range(len(first) + 1))


def test_a_size_not_divisible_by_two_to_the_max_level_exits_2_at_the_field(tmp_path: Path) -> None:
    from types import SimpleNamespace

    arch = get_architecture("mask_rcnn")
    text = arch.sample_spec(SimpleNamespace(train="/no/train-*", val="/no/val-*", images="/no", root=str(tmp_path)))
    spec = tmp_path / "spec.txt"
    spec.write_text(text.replace('image_size: "(128, 128)"', 'image_size: "(128, 144)"'))
    line = 1 + text.split("image_size")[0].count("\n")
    done = run("tlt-train", "-e", spec, "-r", tmp_path / "results")
    assert done.returncode == 2
    message = done.stderr.strip().splitlines()
    assert len(message) == 1 and f"{spec}:{line}:" in message[0] and "image_size" in message[0], done.stderr
    assert "multiples of 32" in message[0]
    assert not (tmp_path / "results" / "weights").exists()


@pytest.mark.slow
def test_pruned_model_retrains_from_pruned_model_path(trained: dict[str, Any]) -> None:
    from libtlt.runtime.keras_model import load_tlt_model

    root = trained["root"]
    done = subprocess.run([str(BIN / "tlt-prune"), "-m", str(trained["model"]), "-o", str(root / "pruned.tlt"),
                           "-pth", "0.95", "-k", KEY], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    pruned, _ = load_tlt_model(root / "pruned.tlt", KEY)
    original, _ = load_tlt_model(trained["model"], KEY)
    assert pruned.count_params() < original.count_params()
    assert pruned.get_layer("mask_fcn_logits").filters == original.get_layer("mask_fcn_logits").filters  # heads kept
    spec = root / "retrain.txt"
    spec.write_text(trained["text"].replace("total_steps: 6", "total_steps: 3").replace("[5]", "[2]").replace(
        "seed: 123", f'seed: 123\npruned_model_path: "{root / "pruned.tlt"}"'))
    done = run("tlt-train", "-e", spec, "-r", root / "retrain", "-n", "retrained")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Loaded the model graph and weights of" in done.stderr
    retrained, _ = load_tlt_model(root / "retrain" / "weights" / "retrained.tlt", KEY)
    assert retrained.count_params() == pruned.count_params()
