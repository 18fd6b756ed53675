"""FasterRCNN's Architecture object: spec → network, training configuration and train plan in both spec layouts, a
fit of the trainer that ``training_view`` returns on generated KITTI records, saved through its view; and what the
tools take from it: detection settings, the spec's models, decoding of raw or deployed outputs, the RPN recall and
the metadata that export and DeepStream read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from libtlt.archs.faster_rcnn.architecture import FasterRcnnArchitecture


def _sibling(name: str):  # type: ignore[no-untyped-def]
    """The data tests' spec builder and records fixture (one definition of the small spec)."""
    import importlib.util

    location = Path(__file__).with_name(f"{name}.py")
    found = importlib.util.spec_from_file_location(f"_frcnn_{name}", location)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


_DATA = _sibling("test_faster_rcnn_data")
load, spec_text, root = _DATA.load, _DATA.spec_text, _DATA.root

ARCH = FasterRcnnArchitecture()


@pytest.mark.parametrize("layout", ["002", "000"])
def test_spec_to_configurations(layout: str) -> None:
    spec = load(spec_text(layout=layout))
    network = ARCH.network_config(spec)
    assert network.backbone == "resnet18" and network.input_shape == (3, 160, 256)
    assert network.num_fg_classes == 3 and network.scales == (32.0, 64.0, 128.0)
    assert (network.pre_nms_top_n, network.post_nms_top_n) == (6000, 300)  # TAO's inference defaults
    training = ARCH.training_config(spec)
    assert training.targets.roi_mini_batch == 16 and training.rpn_mini_batch == 64
    assert training.targets.regr_std == (10.0, 10.0, 5.0, 5.0) and training.seed == 42
    plan = ARCH.train_plan(spec)
    assert plan.model_name == "faster_rcnn_resnet18" and plan.optimizer == "sgd"
    assert plan.lr_schedule == "soft_anneal"
    assert plan.lr_params == {"base_lr": 0.02, "soft_start": 0.1, "annealing_points": [0.8],
                              "annealing_divider": 10.0, "start_ratio": pytest.approx(0.1)}


def test_step_schedule_and_regularizer() -> None:
    text = spec_text(**{"learning_rate { soft_start { base_lr: 0.02 start_lr: 0.002 soft_start: 0.1 annealing_points: "
                        "0.8\n                               annealing_divider: 10.0 } }":
                        "learning_rate { step { base_lr: 0.01 gamma: 0.5 step_size: 30 } }\n"
                        "  regularizer { type: L2 weight: 1e-4 }"})
    plan = ARCH.train_plan(load(text))
    assert plan.lr_schedule == "step" and plan.lr_params == {"base_lr": 0.01, "step_size": 30.0, "gamma": 0.5}
    assert plan.regularizer == "L2" and plan.regularizer_weight == pytest.approx(1e-4)


def test_training_view_fits_and_saves_the_inference_model(root: Path, tmp_path: Path) -> None:
    import keras

    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    spec = load(spec_text(root, **{"arch: \"resnet:18\"": "arch: \"resnet:10\"",
                                   "enable_augmentation: True": "enable_augmentation: False"}))
    keras.utils.set_random_seed(0)
    model = ARCH.build(spec)
    trainer, view = ARCH.training_view(spec, model)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    data = ARCH.training_data(spec, batch_size=2, seed=0)
    assert data.classes == ["bike", "car", "person"] and data.files["labels.txt"].splitlines()[-1] == "background"
    before = model.get_layer("rpn_out_class").get_weights()[0].copy()
    history = trainer.fit(data.train, steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert np.abs(model.get_layer("rpn_out_class").get_weights()[0] - before).max() > 0
    saved, extra = view(trainer)
    assert saved is model and extra == {}
    save_tlt_model(tmp_path / "m.tlt", saved, "key", {"architecture": "faster_rcnn"})
    loaded, _ = load_tlt_model(tmp_path / "m.tlt", "key")
    image = np.zeros((1, 3, 160, 256), np.float32)
    for got, want in zip(loaded.predict_on_batch(image), model.predict_on_batch(image), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


# ------------------------------------------------------------------------------------------- tools' side


def test_detection_settings_come_from_the_section_asked_for() -> None:
    spec = load(spec_text(layout="000").replace(
        "training_config {\n", "training_config {\n  evaluation_config { object_confidence_thres: 0.05 "
        "classifier_nms_max_boxes: 7 }\n  inference_config { classifier_nms_overlap_threshold: 0.45 }\n", 1))
    evaluation, inference = ARCH.detection_settings(spec), ARCH.detection_settings(spec, "inference")
    assert (evaluation.confidence_threshold, evaluation.nms_iou, evaluation.max_boxes) == (0.05, 0.3, 7)
    assert (inference.confidence_threshold, inference.nms_iou, inference.max_boxes) == (1e-4, 0.45, 100)
    assert evaluation.regr_std == (10.0, 10.0, 5.0, 5.0)


def test_spec_models_prefer_the_tensorrt_block() -> None:
    text = spec_text()
    assert ARCH.evaluation_model(load(text)) is None
    spec = load(text + "evaluation_config { model: '/m/a.tlt' }\n")
    assert ARCH.evaluation_model(spec) == "/m/a.tlt"
    spec = load(text + "evaluation_config { model: '/m/a.tlt' trt_evaluation { trt_engine: '/m/a.engine' } }\n")
    assert ARCH.evaluation_model(spec) == "/m/a.engine"
    spec = load(text + "inference_config { model: '/m/a.tlt' trt_inference { etlt_model { model: '/m/a.etlt' } } }\n")
    assert ARCH.inference_model(spec) == "/m/a.etlt"


def test_decode_reads_raw_outputs_or_the_deployed_nms_alike() -> None:
    spec = load(spec_text() + "evaluation_config { object_confidence_thres: 0.5 }\n")
    rois = np.zeros((1, 3, 4), np.float32)
    rois[0, 0] = (10, 20, 60, 90)  # two real proposals, then a padding row
    rois[0, 1] = (100, 30, 140, 70)
    probs = np.zeros((1, 3, 4), np.float32)
    probs[0, 0] = (0.1, 0.8, 0.05, 0.05)  # class 1 (car), background last
    probs[0, 1] = (0.9, 0.02, 0.03, 0.05)  # class 0 (bike)
    probs[0, 2] = (0.0, 0.99, 0.0, 0.01)  # the padding row never detects
    raw = {"proposals": rois, "dense_class_td": probs, "dense_regress_td": np.zeros((1, 3, 12), np.float32)}
    [found] = ARCH.decode(spec, raw, [(256, 160)], ARCH.class_names(spec))
    assert found.class_ids.tolist() == [0, 1] and found.confidences == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(found.boxes, [[100, 30, 141, 71], [10, 20, 61, 91]])  # the +1 widths of TAO
    assert found.proposals is not None and len(found.proposals) == 2

    nms = np.zeros((1, 1, 100, 7), np.float32)
    nms[0, 0, :2] = [[0, 0, 0.9, 100 / 256, 30 / 160, 141 / 256, 71 / 160],
                     [0, 1, 0.8, 10 / 256, 20 / 160, 61 / 256, 91 / 160]]
    [deployed] = ARCH.decode(spec, {"NMS": nms, "NMS_1": np.array([[[[2]]]], np.int32)}, [(256, 160)], [])
    assert deployed.class_ids.tolist() == [0, 1] and deployed.proposals is None
    np.testing.assert_allclose(deployed.boxes, found.boxes, atol=1e-4)


def test_rpn_recall_counts_ground_truth_covered_by_a_proposal() -> None:
    from libtlt.archs.faster_rcnn.architecture import RpnRecallEvaluator

    evaluator = RpnRecallEvaluator(["a", "b"], iou_thresholds=0.5, mode="INTEGRATE")
    truth = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], float)
    evaluator.add_image(truth[:1], [0.9], [0], truth, [0, 0, 1])
    evaluator.add_proposals(np.array([[0, 0, 10, 11], [20, 20, 30, 30]], float), truth, [0, 0, 1])
    result = evaluator.result()
    assert result.extra["rpn_recall"] == {"a": 0.5, "b": 0.0, "all": pytest.approx(1 / 3)}
    assert result.classes["a"].num_ground_truth == 2


def test_an_iou_range_averages_ap_over_its_thresholds() -> None:
    """One box of class a at IoU 0.64 with its ground truth, one exact box of class b: at IoU 0.5..0.6 both classes
    have AP 1, from 0.65 up class a has AP 0 (its detection is a false positive and the box a miss)."""
    from libtlt.archs.faster_rcnn.architecture import RpnRecallEvaluator, iou_range

    assert iou_range(0.5, 0.05, 1.0) == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert iou_range(0.5, 0.1, 0.75) == [0.5, 0.6, 0.7] and iou_range(0.5, 0.5, 0.6) == [0.5]
    evaluator = RpnRecallEvaluator(["a", "b"], iou_thresholds=iou_range(0.5, 0.05, 1.0), mode="INTEGRATE")
    truth = np.array([[0, 0, 100, 100], [200, 200, 250, 250]], float)
    detections = np.array([[0, 0, 100, 64], [200, 200, 250, 250]], float)  # IoU 0.64 and 1.0
    evaluator.add_image(detections, [0.9, 0.8], [0, 1], truth, [0, 1])
    result = evaluator.result()
    assert result.classes["a"].average_precision == pytest.approx(3 / 10)  # AP 1 at 0.5, 0.55, 0.6
    assert result.classes["b"].average_precision == pytest.approx(1.0)
    assert result.mean_average_precision == pytest.approx(0.65)
    per_iou = result.extra["mAP_per_iou"]
    assert list(per_iou) == ["0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95"]
    assert [per_iou[k] for k in ("0.6", "0.65")] == [1.0, 0.5]
    assert result.classes["a"].num_true_positives == 1  # counts and curves are those at the first threshold
    single = RpnRecallEvaluator(["a", "b"], iou_thresholds=0.7, mode="INTEGRATE")
    single.add_image(detections, [0.9, 0.8], [0, 1], truth, [0, 1])
    assert single.result().mean_average_precision == 0.5 and "mAP_per_iou" not in single.result().extra


def test_the_spec_chooses_one_iou_or_a_range() -> None:
    spec = load(spec_text() + "evaluation_config { gt_matching_iou_threshold_range { start: 0.5 step: 0.1 "
                              "end: 0.8 } }\n")
    assert [iou for iou, _ in ARCH.evaluator(spec, ["a"]).per_iou] == [0.5, 0.6, 0.7]
    spec = load(spec_text() + "evaluation_config { gt_matching_iou_threshold: 0.7 }\n")
    assert [iou for iou, _ in ARCH.evaluator(spec, ["a"]).per_iou] == [0.7]
    assert [iou for iou, _ in ARCH.evaluator(load(spec_text()), ["a"]).per_iou] == [0.5]


def test_occluded_ground_truth_is_difficult_unless_the_spec_says_otherwise(root: Path) -> None:
    """The same detections (every visible box, none of the occluded ones) on every generated frame: with
    ``gt_occluded_as_difficult`` (default) the occluded boxes are no misses, AP 1; with ``false`` they count."""
    occlusion = {path.stem: np.array([int(line.split()[2]) for line in path.read_text().splitlines()
                                      if line.split()[0].lower() in _DATA.CLASS_MAP])
                 for path in (root / "labels").glob("*.txt")}
    results, occluded_per_class = {}, np.zeros(3, int)
    for setting in ("", "evaluation_config { gt_occluded_as_difficult: false }\n"):
        spec = load(spec_text(root) + setting)
        classes = ARCH.class_names(spec)
        evaluator = ARCH.evaluator(spec, classes)
        for _, truths in ARCH.evaluation_batches(spec, use_training_set=True, batch_size=4):
            for truth in truths:
                occluded = occlusion[Path(truth.frame_id).name] > 0  # the records keep the labels' object order
                assert truth.difficult.tolist() == (occluded if not setting else np.zeros_like(occluded)).tolist()
                if not setting:
                    np.add.at(occluded_per_class, truth.class_ids[occluded], 1)
                seen = ~occluded
                evaluator.add_image(truth.boxes[seen], np.full(int(seen.sum()), 0.9), truth.class_ids[seen],
                                    truth.boxes, truth.class_ids, gt_difficult=truth.difficult)
        results[setting] = evaluator.result()
    assert occluded_per_class.sum() > 0  # the generated frames hold occluded objects
    difficult, counted = results.values()
    assert difficult.mean_average_precision == 1.0
    expected = []
    for name, occluded_count in zip(classes, occluded_per_class, strict=True):
        every = counted.classes[name].num_ground_truth
        assert every == difficult.classes[name].num_ground_truth + occluded_count
        expected.append(1 - occluded_count / every)  # integrated AP: precision 1 up to the visible fraction
        assert counted.classes[name].average_precision == pytest.approx(expected[-1])
    assert counted.mean_average_precision == pytest.approx(np.mean(expected)) and np.mean(expected) < 1.0


def test_metadata_records_the_preprocessing_for_export_and_deepstream() -> None:
    spec = load(spec_text())
    meta = ARCH.metadata(spec, ARCH.class_names(spec))
    assert meta["architecture"] == "faster_rcnn" and meta["color_format"] == "bgr"
    assert meta["image_offsets"] == pytest.approx([103.939 / 2, 116.779 / 2, 123.68 / 2])  # scaling factor 2.0
    assert meta["image_scale"] == 0.5 and meta["input_shape"] == [3, 160, 256]
    settings = ARCH.deepstream_settings(spec, ARCH.class_names(spec))
    assert settings["labels"] == ["bike", "car", "person", "background"] and settings["num-detected-classes"] == 4
