"""Architectures whose spec names the model, the images and the output folders (FasterRCNN's ``inference_config``
and ``evaluation_config``, 000 §9.3, §10.3): ``tlt-infer faster_rcnn -e SPEC`` and ``tlt-evaluate faster_rcnn -e
SPEC`` run without ``-m``, ``-i`` and ``-o``, the ``trt_evaluation`` block's ``.etlt`` replaces the model, and a
spec that names nothing is one usage line with exit status 2. Through the installed commands, on an untrained
network (only the paths are under test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
KEY = "spec-paths-key"
DEFAULT_MODEL = "/workspace/tlt-experiments/data/faster_rcnn/frcnn_kitti_resnet18.epoch12.tlt"


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / str(args[0])), *map(str, args[1:])], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TLT_KEY": KEY})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from libtlt.registry import BOX_DETECTOR, get_architecture
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec import load_spec_text
    from libtlt.testing import write_task_sample

    root = tmp_path_factory.mktemp("frcnn_paths")
    data = write_task_sample(BOX_DETECTOR, root / "data")
    arch = get_architecture("faster_rcnn")
    text = arch.sample_spec(data)
    spec = load_spec_text(text, arch.spec_message())
    model = root / "model" / "frcnn.tlt"
    model.parent.mkdir()
    save_tlt_model(model, arch.build(spec), KEY, arch.metadata(spec, arch.class_names(spec)), kdf_iterations=1000)
    named = text.replace(DEFAULT_MODEL, str(model))
    named = named.replace("/workspace/tlt-experiments/data/testing/image_2", data.images)
    named = named.replace("/workspace/tlt-experiments/data/faster_rcnn/inference_results_imgs", str(root / "drawn"))
    named = named.replace("/workspace/tlt-experiments/data/faster_rcnn/inference_dump_labels", str(root / "labels"))
    (root / "named.txt").write_text(named)
    (root / "unnamed.txt").write_text(text.replace(f"    model: '{DEFAULT_MODEL}'\n", "")
                                      .replace("    images_dir: '/workspace/tlt-experiments/data/testing/image_2'\n",
                                               ""))
    return {"root": root, "model": model, "images": Path(data.images)}


def test_infer_takes_model_images_and_folders_from_the_spec(setup: dict[str, Path]) -> None:
    done = run("tlt-infer", "faster_rcnn", "-e", setup["root"] / "named.txt", "-t", "0.0")
    assert done.returncode == 0, done.stderr[-3000:]
    images = sorted(p.name for p in setup["images"].iterdir())
    assert sorted(p.name for p in (setup["root"] / "drawn").iterdir()) == images
    assert len(list((setup["root"] / "labels").glob("*.txt"))) == len(images)


def test_evaluate_takes_the_model_from_the_spec_and_reports_rpn_recall(setup: dict[str, Path]) -> None:
    done = run("tlt-evaluate", "faster_rcnn", "-e", setup["root"] / "named.txt")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((setup["model"].parent / "evaluation.json").read_text())
    assert report["model"] == str(setup["model"])
    assert set(report["rpn_recall"]) == {"car", "cyclist", "person", "all"}
    assert "rpn_recall: " in done.stdout


def test_trt_evaluation_block_evaluates_its_etlt(setup: dict[str, Path]) -> None:
    root = setup["root"]
    etlt = root / "model" / "frcnn.etlt"
    exported = run("tlt-export", "faster_rcnn", "-m", setup["model"], "-e", root / "named.txt", "-o", etlt)
    assert exported.returncode == 0, exported.stderr[-3000:]
    text = (root / "named.txt").read_text().replace(
        "    use_voc07_11point_metric: False\n",
        f"    use_voc07_11point_metric: False\n    trt_evaluation {{ etlt_model {{ model: '{etlt}' }} }}\n")
    (root / "trt.txt").write_text(text)
    done = run("tlt-evaluate", "faster_rcnn", "-e", root / "trt.txt", "-r", root / "trt_eval")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((root / "trt_eval" / "evaluation.json").read_text())
    assert report["model"] == str(etlt) and "rpn_recall" not in report


@pytest.mark.parametrize(("tool", "missing"), [("tlt-evaluate", "-m"), ("tlt-infer", "-i")])
def test_a_spec_that_names_nothing_needs_the_flags(setup: dict[str, Path], tool: str, missing: str) -> None:
    args = ["-m", setup["model"]] if tool == "tlt-infer" else []
    done = run(tool, "faster_rcnn", "-e", setup["root"] / "unnamed.txt", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert f"missing {missing}" in lines[-1], done.stderr[-2000:]
