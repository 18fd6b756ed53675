"""FasterRCNN with a dynamic input size (``input_image_config.size_min``, 000 §7.3 / DETECTORS-TWO-STAGE.md §1): each
image resized keeping its aspect ratio so that its shorter side is ``min``, a network that takes any size (anchors,
proposals and RPN targets per image size), batch 1; training, evaluation and inference through the installed
commands on frames of two sizes (landscape 320×192 and portrait 192×256); export and INT8 calibration refused with
one line at the field, as TAO cannot export such a model either."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from libtlt.archs.faster_rcnn import data as D  # noqa: E402
from libtlt.errors import SpecError  # noqa: E402
from libtlt.registry import get_architecture  # noqa: E402
from libtlt.samples import generate_detection_dataset  # noqa: E402
from libtlt.spec import load_spec_text  # noqa: E402
from libtlt.spec.protos import faster_rcnn_pb2 as pb  # noqa: E402

BIN = Path(sys.executable).parent
KEY = "dynamic-size-key"
MIN_SIDE = 160
#: The two frame sizes (width, height) and what size_min 160 makes of them.
SIZES = {(320, 192): (267, 160), (192, 256): (160, 213)}
STATIC = "size_height_width {\n      height: 272\n      width: 480\n    }"


def dynamic_spec_text(root: Path) -> str:
    """The sample spec on both frame sets (fold 0 of each validates), size_min 160, batch 1."""
    arch = get_architecture("faster_rcnn")
    sample = SimpleData(root)
    text = str(arch.sample_spec(sample))
    sources = "".join(f'    data_sources: {{\n      tfrecords_path: "{root}/{name}/records/kitti-*"\n'
                      f'      image_directory_path: "{root}/{name}"\n    }}\n' for name in ("wide", "tall"))
    start = text.index("    data_sources: {")
    end = text.index("    }\n", start) + len("    }\n")
    text = text[:start] + sources + text[end:]
    for old, new in ((STATIC, f"size_min {{\n      min: {MIN_SIDE}\n    }}"),
                     ("batch_size_per_gpu: 2", "batch_size_per_gpu: 1")):
        assert old in text, old
        text = text.replace(old, new)
    return text


class SimpleData:
    """What ``sample_spec`` reads of ``libtlt.testing.SampleData`` (the records are replaced above)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.train = f"{root}/wide/records/kitti-*"
        self.images = str(root / "wide" / "images")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from libtlt.testing import convert_kitti

    root = tmp_path_factory.mktemp("frcnn_dynamic")
    for (name, (width, height)), seed, count in zip((("wide", (320, 192)), ("tall", (192, 256))), (5, 6), (8, 6),
                                                    strict=True):
        generate_detection_dataset(root / name, num_images=count, width=width, height=height, seed=seed,
                                   classes=("car", "pedestrian", "cyclist"), objects_per_image=(1, 3))
        convert_kitti(root / name, root / name / "records")
    (root / "spec.txt").write_text(dynamic_spec_text(root), encoding="utf-8")
    return root


def load(root: Path) -> Any:
    text = (root / "spec.txt").read_text(encoding="utf-8")
    spec = load_spec_text(text, pb.Experiment, name="dynamic.txt")
    get_architecture("faster_rcnn").validate(spec)
    return spec


def test_the_shorter_side_becomes_min_and_the_aspect_ratio_stays() -> None:
    assert D.resized_to_min_side(320, 192, 128) == (213, 128)  # 320·2/3 = 213.3
    assert D.resized_to_min_side(192, 256, 128) == (128, 171)  # 256·2/3 = 170.7
    assert D.resized_to_min_side(1242, 375, 600) == (1987, 600)  # KITTI at TAO's sample min 600
    assert D.resized_to_min_side(100, 100, 300) == (300, 300)  # enlarged too


def test_input_config_of_size_min(root: Path) -> None:
    config = D.input_config(load(root))
    assert config.dynamic and config.min_side == MIN_SIDE and config.shape == (3, -1, -1)
    assert config.resized_size(320, 192) == (267, 160)
    with pytest.raises(ValueError, match="dynamic"):
        _ = config.feature_hw


def test_training_batches_follow_each_images_own_size(root: Path) -> None:
    spec = load(root)
    ds, steps, count = D.training_dataset(spec, batch_size=1, seed=3)
    assert steps == count == 7  # half of each set trains
    a = 9
    seen = set()
    for inputs, targets in ds.take(count):
        _, channels, height, width = inputs[D.INPUT_NAME].shape
        assert channels == 3 and (width, height) in SIZES.values()
        seen.add((width, height))
        feature = (math.ceil(height / 16), math.ceil(width / 16))
        assert targets[D.RPN_CLASS].shape == (1, *feature, 2 * a)
        assert targets[D.RPN_REGRESS].shape == (1, *feature, 8 * a)
        boxes = inputs[D.GT_BOXES].numpy()[0]
        real = boxes[inputs[D.GT_CLASSES].numpy()[0] >= 0]
        assert len(real) and real[:, 2].max() <= width and real[:, 3].max() <= height
        # every image has positive anchors for its objects, on its own grid
        assert targets[D.RPN_CLASS].numpy()[..., a:].sum() > 0
    assert seen == set(SIZES.values())


def test_the_network_runs_at_any_size_and_export_and_calibration_refuse(root: Path) -> None:
    arch = get_architecture("faster_rcnn")
    spec = load(root)
    model = arch.build(spec)
    assert tuple(model.inputs[0].shape) == (None, 3, None, None)
    for images, truths in arch.evaluation_batches(spec):
        assert images.shape[0] == 1 and (images.shape[3], images.shape[2]) in SIZES.values()
        outputs = dict(zip(arch.output_names(spec), model.predict_on_batch(images), strict=True))
        [found] = arch.decode(spec, outputs, [(images.shape[3], images.shape[2])], arch.class_names(spec))
        assert (found.boxes[:, 2] <= images.shape[3] - 1).all() and (found.boxes[:, 3] <= images.shape[2] - 1).all()
        assert len(truths) == 1
    field = "network_config.input_image_config.size_min"
    with pytest.raises(SpecError, match="cannot be exported") as err:
        arch.export_graph(spec, model)
    assert err.value.field == field
    with pytest.raises(SpecError, match="cannot be exported") as err:
        arch.calibration_batches(spec)
    assert err.value.field == field


def test_a_spec_engine_needs_a_fixed_size_and_the_preprocessing_minimum_the_model_s(root: Path) -> None:
    text = (root / "spec.txt").read_text(encoding="utf-8").replace(
        "  evaluation_config {\n", "  evaluation_config {\n    trt_evaluation { trt_engine: 'model.engine' }\n")
    spec = load_spec_text(text, pb.Experiment, name="dynamic.txt")
    arch = get_architecture("faster_rcnn")
    arch.validate(spec)  # a leftover block does not stop training or a -m run
    with pytest.raises(SpecError, match="cannot be exported") as err:
        arch.evaluation_model(spec)
    assert err.value.field == "training_config.evaluation_config.trt_evaluation"
    text = (root / "spec.txt").read_text(encoding="utf-8").replace("      output_image_channel: 3\n",
                                                                  "      output_image_channel: 3\n"
                                                                  "      output_image_min: 200\n")
    with pytest.raises(SpecError, match="size_min") as err:
        arch.validate(load_spec_text(text, pb.Experiment, name="dynamic.txt"))
    assert err.value.field.endswith("preprocessing.output_image_min")
    arch.validate(load_spec_text(text.replace("output_image_min: 200", f"output_image_min: {MIN_SIDE}"),
                                 pb.Experiment, name="dynamic.txt"))


def test_qat_needs_a_fixed_size(root: Path) -> None:
    text = (root / "spec.txt").read_text(encoding="utf-8").replace("  num_epochs: 1\n",
                                                                  "  num_epochs: 1\n  enable_qat: True\n")
    spec = load_spec_text(text, pb.Experiment, name="dynamic.txt")
    with pytest.raises(SpecError, match="size_min") as err:
        get_architecture("faster_rcnn").validate(spec)
    assert err.value.field == "training_config.enable_qat"


def run(tool: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), "faster_rcnn", *(str(a) for a in args)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "TLT_KEY": KEY})


def test_train_evaluate_infer_through_the_commands_and_export_says_no(root: Path, tmp_path: Path) -> None:
    from PIL import Image

    spec = root / "spec.txt"
    done = run("tlt-train", "-e", spec, "-r", tmp_path / "results", "-n", "dynamic")
    assert done.returncode == 0, done.stderr[-3000:]
    model = tmp_path / "results" / "weights" / "dynamic.tlt"
    assert json.loads((tmp_path / "results" / "status.json").read_text().splitlines()[-1])["status"] == "SUCCESS"

    done = run("tlt-evaluate", "-e", spec, "-m", model, "-r", tmp_path / "evaluation")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert report["num_images"] == 7 and "mean_average_precision" in report

    images = tmp_path / "mixed"
    images.mkdir()
    for name in ("wide", "tall"):
        for path in sorted((root / name / "images").glob("*.png"))[:2]:
            (images / f"{name}_{path.name}").write_bytes(path.read_bytes())
    done = run("tlt-infer", "-e", spec, "-m", model, "-i", images, "-o", tmp_path / "inference", "-t", "0.0")
    assert done.returncode == 0, done.stderr[-3000:]
    for path in images.glob("*.png"):
        width, height = Image.open(path).size
        annotated = Image.open(tmp_path / "inference" / "images_annotated" / path.name)
        assert annotated.size == (width, height)
        rows = [line.split() for line in (tmp_path / "inference" / "labels" / f"{path.stem}.txt").read_text()
                .splitlines()]
        assert rows, path.name  # threshold 0: the top boxes of an untrained head still come out
        boxes = np.array([[float(v) for v in row[4:8]] for row in rows])
        assert (boxes >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()

    out = tmp_path / "model.etlt"
    done = run("tlt-export", "-m", model, "-o", out, "-e", spec)
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot be exported" in last and "Traceback" not in done.stderr
    assert not out.exists()
    tensorfile = tmp_path / "calibration.tensor"
    done = run("tlt-int8-tensorfile", "-e", spec, "-o", tensorfile, "-m", 2)
    assert done.returncode == 2 and "size_min" in done.stderr.strip().splitlines()[-1]
    assert not tensorfile.exists()
