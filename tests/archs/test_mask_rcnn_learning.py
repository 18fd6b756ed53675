"""MaskRCNN learns, end to end through the installed commands, and every tool serves what it learned:
``python -m libtlt.demo --arch mask_rcnn``'s chain (libtlt.demo.instance_steps) on generated COCO shapes at 128×128 (the smallest size MaskRCNN accepts)
(48 training frames from one seed, 16 held-out validation frames from another): tlt-dataset-convert → ``tlt-train``
(the demo spec, 400 steps from scratch) → tlt-evaluate: bbox and segm AP50 clearly above an untrained model's on the
held-out frames → tlt-prune → retrain (``pruned_model_path``) → tlt-export INT8 with ``--gen_ds_config`` →
tlt-converter → tlt-evaluate and tlt-infer on the engine. Then the trained ``.tlt``'s FP32 export evaluates to the
same COCO numbers within 0.01. The learning run of the issue's size is bench/test_mask_rcnn_bench.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from libtlt.registry import get_architecture

BIN = Path(sys.executable).parent


def evaluate(spec: Path, model: Path, key: str, out: Path) -> dict[str, dict[str, float]]:
    done = subprocess.run([str(BIN / "tlt-evaluate"), "mask_rcnn", "-e", str(spec), "-m", str(model), "-k", key,
                           "-r", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    return {"bbox": report["coco_bbox"], "segm": report["coco_segm"]}


@pytest.mark.slow
def test_learns_above_an_untrained_model_and_every_tool_serves_it(tmp_path: Path) -> None:
    from libtlt.demo import run_demo
    from libtlt.demo.context import KEY, QUICK
    from libtlt.demo.instance_steps import instance_steps
    from libtlt.spec import load_spec
    from libtlt.testing import save_untrained_model

    size = replace(QUICK, instance_train_images=48, instance_val_images=16, instance_steps=400,
                   instance_retrain_steps=20, instance_size=128)
    ctx = run_demo(tmp_path / "demo", steps=instance_steps("mask_rcnn"), size=size)  # tools run as commands
    arch = get_architecture("mask_rcnn")
    spec = ctx.results["spec"]
    untrained = tmp_path / "untrained.tlt"
    save_untrained_model(arch, load_spec(spec, arch.spec_message()), untrained, KEY)
    before = evaluate(spec, untrained, KEY, tmp_path / "eval_untrained")
    after = ctx.results["ap_unpruned"]
    for kind in ("bbox", "segm"):
        assert after[kind] >= before[kind]["AP50"] + 0.1, (kind, before[kind]["AP50"], after[kind])

    final = ctx.results["final"]
    assert (final / "labels.txt").read_text().splitlines() == ["BG", "circle", "triangle", "square"]
    config = (final / "nvinfer_config.txt").read_text()
    assert "output-blob-names=generate_detections;mask_fcn_logits/BiasAdd" in config and "network-type=3" in config
    assert json.loads((final / "evaluation" / "evaluation.json").read_text())["num_images"] == 16
    assert len(list((final / "inference" / "masks").glob("*.png"))) == 16
    assert not list(tmp_path.rglob(".*.tmp"))

    etlt = tmp_path / "learned.etlt"
    done = subprocess.run([str(BIN / "tlt-export"), "mask_rcnn", "-m", str(ctx.results["model"]), "-k", KEY, "-e",
                           str(spec), "-o", str(etlt)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    tlt, exported = (evaluate(spec, m, KEY, tmp_path / f"eval_{m.suffix[1:]}") for m in (ctx.results["model"], etlt))
    for kind in ("bbox", "segm"):
        for stat in ("AP", "AP50"):
            assert abs(exported[kind][stat] - tlt[kind][stat]) <= 0.01, (kind, stat)
