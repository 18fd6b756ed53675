"""tlt-evaluate detectnet_v2: mAP equals a direct DetectionEvaluator run on the same predictions; outputs; errors.

Dataset: ``libtlt.samples.generate_detection_dataset`` (480×272) converted by the installed
``tlt-dataset-convert`` (random partition, fold 0 = validation). Model: a tiny hand-built network with
DetectNet_v2's interface, plus one run with the real architecture's ``build_model``. The direct computation reads
the validation records with ``libtlt.io`` and the images with Pillow — not through the tool's data loader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.metrics.coco import STAT_NAMES
from libtlt.samples import generate_detection_dataset
from libtlt.testing import (
    convert_kitti,
    detectnet_v2_spec_text,
    one_error_line,
    tiny_detectnet_metadata,
    tiny_detectnet_model,
)
from tlt_evaluate.cli import main

BIN = Path(sys.executable).parent
KEY = "evaluate-dn-key"
WIDTH, HEIGHT = 480, 272
CLASSES = ("car", "pedestrian", "cyclist")
COVERAGE_THRESHOLD, EPS, MIN_HEIGHT = 0.45, 0.6, 4
NUM_IMAGES = 8


def build_tiny_detectnet(num_classes: int, seed: int = 0) -> Any:
    return tiny_detectnet_model(num_classes, WIDTH, HEIGHT, seed)


def tiny_metadata(classes: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    return tiny_detectnet_metadata(classes, WIDTH, HEIGHT)


def experiment_spec(tfrecords: str, image_dir: Path, *, mapping: dict[str, str] | None = None,
                    num_layers: int = 18) -> str:
    """The architecture's default spec pointed at the test data, with tighter clustering for a random network."""
    text = detectnet_v2_spec_text(tfrecords, image_dir, {
        "coverage_threshold: 0.005": f"coverage_threshold: {COVERAGE_THRESHOLD}",
        "dbscan_eps: 0.15": f"dbscan_eps: {EPS}", "num_layers: 18": f"num_layers: {num_layers}"})
    if mapping is not None:
        lines = [line for line in text.splitlines() if "target_class_mapping" not in line]
        at = next(i for i, line in enumerate(lines) if "image_extension" in line) + 1
        lines[at:at] = [f'  target_class_mapping {{ key: "{k}" value: "{v}" }}' for k, v in mapping.items()]
        text = "\n".join(lines) + "\n"
    return text


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from libtlt.runtime.keras_model import save_tlt_model

    base = tmp_path_factory.mktemp("evaluate_detectnet")
    root = base / "kitti"
    generate_detection_dataset(root, num_images=NUM_IMAGES, width=WIDTH, height=HEIGHT, classes=CLASSES, seed=5,
                               objects_per_image=(2, 5))
    records = base / "tfrecords"
    spec = base / "spec.txt"
    spec.write_text(experiment_spec(convert_kitti(root, records, num_shards=2), root))
    model = base / "model" / "model.tlt"
    model.parent.mkdir()
    save_tlt_model(model, build_tiny_detectnet(len(CLASSES)), KEY, tiny_metadata(), kdf_iterations=1000)
    return {"base": base, "root": root, "records": records, "spec": spec, "model": model}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tlt-evaluate"), "detectnet_v2", *args], capture_output=True, text=True,
                          timeout=300)


def invoke(*args: str) -> Any:
    """In process (TensorFlow is imported once for the session); the subprocess runs check the installed script."""
    return CliRunner().invoke(main, ["detectnet_v2", *args], catch_exceptions=False)


def direct_result(data: dict[str, Path], *, folds: tuple[str, ...] = ("fold-000",)) -> Any:
    """DetectionEvaluator and COCO statistics of the model's predictions for the records of ``folds``, computed
    without the tool."""
    from libtlt.io.example import decode_example
    from libtlt.io.tfrecord import read_records
    from libtlt.layers.clustering import ClusteringConfig, postprocess
    from libtlt.metrics.coco import CocoEvaluator
    from libtlt.metrics.detection import BoxSizeRange, DetectionEvaluator
    from libtlt.runtime.keras_model import load_tlt_model

    model, _ = load_tlt_model(data["model"], KEY)
    config = ClusteringConfig(coverage_threshold=COVERAGE_THRESHOLD, dbscan_eps=EPS, dbscan_min_samples=0.05,
                              minimum_bounding_box_height=MIN_HEIGHT, dbscan_confidence_threshold=0.1)
    evaluator = DetectionEvaluator(CLASSES, iou_thresholds={"car": 0.7, "pedestrian": 0.5, "cyclist": 0.5},
                                   box_ranges=BoxSizeRange(4, 9999, 4, 9999), mode="INTEGRATE")
    coco = CocoEvaluator(CLASSES)
    count = 0
    for path in sorted(data["records"].glob("kitti-*")):
        if not any(f in path.name for f in folds):
            continue
        for record in read_records(path):
            example = decode_example(record)
            frame = example["frame/id"][0].decode()
            image = np.asarray(Image.open(data["root"] / f"{frame}.png").convert("RGB"), np.float32) / 255.0
            cov, bbox = model.predict_on_batch(image.transpose(2, 0, 1)[np.newaxis])
            found = postprocess(np.asarray(cov[0], np.float64), np.asarray(bbox[0], np.float64), config)
            boxes = np.clip(found.boxes, 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
            gt = np.stack([example[f"target/coordinates_{k}"] for k in ("x1", "y1", "x2", "y2")], axis=1)
            gt_classes = [CLASSES.index(n.decode()) for n in example["target/object_class"]]
            evaluator.add_image(boxes, found.confidences, found.class_ids, gt, gt_classes)
            coco.add_image(boxes, found.confidences, found.class_ids, gt, gt_classes)
            count += 1
    return evaluator.result(), coco.result(), count


def test_map_equals_a_direct_evaluation(data: dict[str, Path]) -> None:
    out = data["base"] / "results"
    result = run("-e", str(data["spec"]), "-m", str(data["model"]), "-k", KEY, "-r", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "evaluation.json").read_text())
    expected, coco, count = direct_result(data)
    assert report["num_images"] == count == NUM_IMAGES // 2
    assert report["average_precision_mode"] == "INTEGRATE"
    assert report["mean_average_precision"] == pytest.approx(expected.mean_average_precision, abs=1e-9)
    for name in CLASSES:
        got, want = report["classes"][name], expected.classes[name]
        assert got["average_precision"] == pytest.approx(want.average_precision, abs=1e-9)
        assert got["num_ground_truth"] == want.num_ground_truth > 0
        assert (got["num_true_positives"], got["num_false_positives"]) == (want.num_true_positives,
                                                                           want.num_false_positives)
        png = out / got["precision_recall_curve"]
        assert png.name == f"precision_recall_{name}.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sum(r.num_true_positives + r.num_false_positives for r in expected.classes.values()) > 0
    assert "Mean average_precision (in %): " in result.stdout
    assert f"{100 * expected.mean_average_precision:.4f}" in result.stdout
    assert report["coco_bbox"] == pytest.approx(coco, abs=1e-9) and set(coco) == set(STAT_NAMES)
    assert f"COCO bbox: AP@[.50:.95] {coco['AP']:.4f}, AP50 {coco['AP50']:.4f}" in result.stdout
    assert all(name in result.stdout for name in CLASSES)


def test_training_set_and_default_results_dir(data: dict[str, Path]) -> None:
    result = invoke("-e", str(data["spec"]), "-m", str(data["model"]), "-k", KEY, "--use_training_set")
    assert result.exit_code == 0, result.stderr
    report = json.loads((data["model"].parent / "evaluation.json").read_text())
    expected, _, count = direct_result(data, folds=("fold-000", "fold-001"))
    assert report["num_images"] == count == NUM_IMAGES
    assert report["dataset"] == "training+validation"
    assert report["mean_average_precision"] == pytest.approx(expected.mean_average_precision, abs=1e-9)
    assert (data["model"].parent / "precision_recall_car.png").is_file()


def test_mapping_class_absent_from_the_data_warns_with_the_class_map(data: dict[str, Path]) -> None:
    spec = data["base"] / "truck.txt"
    spec.write_text(experiment_spec(str(data["records"] / "kitti*"), data["root"],
                                    mapping={"car": "car", "truck": "car", "pedestrian": "pedestrian",
                                             "cyclist": "cyclist"}))
    result = invoke("-e", str(spec), "-m", str(data["model"]), "-k", KEY, "-r", str(data["base"] / "truck"))
    assert result.exit_code == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "truck" in line)
    assert "truck: car" in warning and "car: car" in warning


def test_no_object_of_any_target_class(data: dict[str, Path]) -> None:
    spec = data["base"] / "none.txt"
    spec.write_text(experiment_spec(str(data["records"] / "kitti*"), data["root"],
                                    mapping={"truck": "car", "bus": "pedestrian", "tram": "cyclist"}))
    error = one_error_line(invoke("-e", str(spec), "-m", str(data["model"]), "-k", KEY, "-r", str(data["base"] / "x")))
    assert "no object of any target class" in error and "truck: car" in error


def test_tfrecords_matching_no_file(data: dict[str, Path]) -> None:
    spec = data["base"] / "nofiles.txt"
    spec.write_text(experiment_spec(str(data["base"] / "nowhere" / "*"), data["root"]))
    error = one_error_line(invoke("-e", str(spec), "-m", str(data["model"]), "-k", KEY))
    assert "nowhere" in error and "nofiles.txt:" in error


def test_wrong_key_and_tensorrt(data: dict[str, Path]) -> None:
    error = one_error_line(run("-e", str(data["spec"]), "-m", str(data["model"]), "-k", "wrong"))
    assert "model.tlt" in error
    error = one_error_line(run("-e", str(data["spec"]), "-m", str(data["model"]), "-k", KEY, "-f", "tensorrt"))
    assert "TensorRT is not installed" in error and "pip install tensorrt" in error


def test_model_classes_must_match_the_spec(data: dict[str, Path]) -> None:
    from libtlt.runtime.keras_model import save_tlt_model

    other = data["base"] / "other" / "model.tlt"
    other.parent.mkdir(exist_ok=True)
    save_tlt_model(other, build_tiny_detectnet(2), KEY, tiny_metadata(("car", "bus")), kdf_iterations=1000)
    error = one_error_line(invoke("-e", str(data["spec"]), "-m", str(other), "-k", KEY))
    assert "[car, bus]" in error and "[car, pedestrian, cyclist]" in error


def test_real_architecture_model(data: dict[str, Path]) -> None:
    """A model from the architecture's own build_model and metadata (untrained) evaluates end to end."""
    from libtlt.archs.detectnet_v2 import architecture as arch
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec.experiments import load_experiment

    spec_path = data["base"] / "resnet10.txt"
    spec_path.write_text(experiment_spec(str(data["records"] / "kitti*"), data["root"], num_layers=10))
    spec = load_experiment("detectnet_v2", spec_path)
    classes = arch.class_names(spec)
    model_path = data["base"] / "real" / "model.tlt"
    model_path.parent.mkdir()
    save_tlt_model(model_path, arch.build_model(spec), KEY, arch.metadata(spec, classes), kdf_iterations=1000)
    result = invoke("-e", str(spec_path), "-m", str(model_path), "-k", KEY)
    assert result.exit_code == 0, result.stderr
    report = json.loads((model_path.parent / "evaluation.json").read_text())
    assert list(report["classes"]) == list(CLASSES) and report["num_images"] == NUM_IMAGES // 2


def test_missing_images(data: dict[str, Path]) -> None:
    spec = data["base"] / "noimages.txt"
    spec.write_text(experiment_spec(str(data["records"] / "kitti*"), data["base"] / "no_images_here"))
    error = one_error_line(invoke("-e", str(spec), "-m", str(data["model"]), "-k", KEY, "-r", str(data["base"] / "y")))
    assert "no_images_here" in error and "does not exist" in error  # names the missing file
    assert not (data["base"] / "y" / "evaluation.json").exists()
