"""PASCAL VOC detection metrics: REFERENCE.md check values, properties of AP, matching rules, size filters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf import text_format
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.metrics.detection import (
    FALSE_POSITIVE,
    IGNORED,
    TRUE_POSITIVE,
    BoxSizeRange,
    DetectionEvaluator,
    average_precision,
    match_image,
    precision_recall,
)
from libtlt.spec.protos import detectnet_v2_pb2

GT = [[0, 0, 10, 10], [20, 20, 30, 30]]


@pytest.mark.parametrize(("mode", "expected"), [("SAMPLE", 0.848485), ("INTEGRATE", 0.833333)])
def test_reference_check_values(mode: str, expected: float) -> None:
    """REFERENCE: detections ranked TP, FP, TP against 2 ground-truth boxes."""
    precision, recall, _ = precision_recall([0.9, 0.8, 0.7], [True, False, True], 2)
    assert average_precision(precision, recall, mode) == pytest.approx(expected, abs=5e-7)
    evaluator = DetectionEvaluator(["car"], mode=mode)
    evaluator.add_image([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0], GT, [0, 0])
    result = evaluator.result()
    car = result.classes["car"]
    assert car.average_precision == pytest.approx(expected, abs=5e-7)
    assert result.mean_average_precision == car.average_precision
    np.testing.assert_allclose(car.precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(car.recall, [0.5, 0.5, 1])
    assert (car.num_ground_truth, car.num_true_positives, car.num_false_positives) == (2, 2, 1)


def test_exact_11_point_recall_levels() -> None:
    # Recall 3/10 must count for the 0.3 sample point (no 0.30000000000000004 near-miss).
    tp = [True] * 3
    precision, recall, _ = precision_recall([3, 2, 1], tp, 10)
    assert average_precision(precision, recall, "SAMPLE") == pytest.approx(4 / 11)
    assert average_precision(precision, recall, 1) == pytest.approx(0.3)  # spec enum value of INTEGRATE


boxes_st = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 6), st.integers(1, 6)),
                    min_size=0, max_size=8)


def _grid_boxes(raw: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Boxes on a coarse lattice (cells 10 apart), so some overlap and some do not."""
    return np.array([(5 * x, 5 * y, 5 * x + 5 * w, 5 * y + 5 * h) for x, y, w, h in raw], float).reshape(-1, 4)


@settings(max_examples=100, deadline=None)
@given(boxes_st, st.lists(st.integers(1, 5), max_size=5), st.sampled_from(["SAMPLE", "INTEGRATE"]))
def test_perfect_detector_scores_one(raw: list[tuple[int, int, int, int]], scores: list[int], mode: str) -> None:
    gt = _grid_boxes(raw)
    evaluator = DetectionEvaluator(["a"], mode=mode, iou_thresholds={"a": 0.99})
    detections = gt.copy()
    confidence = np.resize(np.array(scores or [1], float), len(gt))
    evaluator.add_image(detections, confidence, np.zeros(len(gt), int), gt, np.zeros(len(gt), int))
    ap = evaluator.result().classes["a"].average_precision
    assert math.isnan(ap) if len(gt) == 0 else ap == 1.0


@settings(max_examples=150, deadline=None)
@given(boxes_st, boxes_st, st.lists(st.floats(0, 1), min_size=8, max_size=8), st.floats(0.0, 1.5),
       st.sampled_from(["SAMPLE", "INTEGRATE"]), st.floats(0.1, 0.9))
def test_ap_in_unit_interval_and_a_false_positive_never_helps(
        raw_gt: list[tuple[int, int, int, int]], raw_det: list[tuple[int, int, int, int]], scores: list[float],
        fp_score: float, mode: str, threshold: float) -> None:
    gt, det = _grid_boxes(raw_gt), _grid_boxes(raw_det)
    conf = np.array(scores[:len(det)])

    def ap(extra: bool) -> float:
        evaluator = DetectionEvaluator(["a"], mode=mode, iou_thresholds=threshold)
        boxes, c = (np.vstack([det, [[500, 500, 520, 520]]]), np.append(conf, fp_score)) if extra else (det, conf)
        evaluator.add_image(boxes, c, np.zeros(len(c), int), gt, np.zeros(len(gt), int))
        return evaluator.result().classes["a"].average_precision

    before, after = ap(False), ap(True)
    if len(gt) == 0:
        assert math.isnan(before) and math.isnan(after)
    else:
        # an extra false positive never raises AP (up to float rounding: the areas are summed in another order)
        assert 0.0 <= after <= before + 1e-12 and before <= 1.0


def test_each_ground_truth_matched_once_greedy_by_confidence() -> None:
    gt = [[0, 0, 10, 10]]
    status = match_image([[0, 0, 10, 10], [0, 0, 10, 9]], [0.5, 0.9], gt, iou_threshold=0.5)
    assert status.tolist() == [FALSE_POSITIVE, TRUE_POSITIVE]  # the more confident one takes the box
    # A detection takes its best *unmatched* box.
    gt2 = [[0, 0, 10, 10], [2, 0, 12, 10]]
    status = match_image([[1, 0, 11, 10], [0, 0, 10, 10]], [0.9, 0.8], gt2, iou_threshold=0.5)
    assert status.tolist() == [TRUE_POSITIVE, TRUE_POSITIVE]


def test_per_class_iou_threshold() -> None:
    det, gt = [[0, 0, 10, 10]], [[0, 0, 10, 6]]  # IoU 0.6
    evaluator = DetectionEvaluator(["car", "person"], iou_thresholds={"car": 0.7, "person": 0.5})
    evaluator.add_image(det * 2, [0.9, 0.9], [0, 1], gt * 2, [0, 1])
    result = evaluator.result()
    assert result.classes["car"].average_precision == 0.0
    assert result.classes["person"].average_precision == 1.0
    assert result.mean_average_precision == 0.5
    assert match_image(det, [1.0], gt, iou_threshold=0.6).tolist() == [TRUE_POSITIVE]  # the bound is inclusive


def test_size_range_makes_dont_care_boxes() -> None:
    size = BoxSizeRange(minimum_height=10, minimum_width=10, maximum_height=100, maximum_width=100)
    gt = np.array([[0, 0, 20, 20], [50, 50, 55, 55]], float)  # the second is too small: don't care
    det = np.array([[0, 0, 20, 20], [50, 50, 55, 55], [200, 200, 204, 204], [300, 300, 340, 340]], float)
    status = match_image(det, [0.9, 0.8, 0.7, 0.6], gt, iou_threshold=0.5, box_range=size)
    # matched valid box; matched a don't-care box; unmatched and too small; unmatched and valid-sized.
    assert status.tolist() == [TRUE_POSITIVE, IGNORED, IGNORED, FALSE_POSITIVE]
    evaluator = DetectionEvaluator(["car"], box_ranges={"car": size}, mode="INTEGRATE")
    evaluator.add_image(det, [0.9, 0.8, 0.7, 0.6], [0] * 4, gt, [0, 0])
    car = evaluator.result().classes["car"]
    assert car.num_ground_truth == 1 and (car.num_true_positives, car.num_false_positives) == (1, 1)
    assert car.average_precision == 1.0
    # A too-small detection matching a valid box still counts.
    assert match_image([[0, 0, 20, 9.9]], [1], [[0, 0, 20, 10]], iou_threshold=0.5, box_range=size).tolist() \
        == [TRUE_POSITIVE]


def test_explicit_dont_care_flags() -> None:
    evaluator = DetectionEvaluator(["car"])
    evaluator.add_image([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 0], GT, [0, 0], gt_ignore=[False, True])
    car = evaluator.result().classes["car"]
    assert car.num_ground_truth == 1 and car.num_false_positives == 0 and car.average_precision == 1.0


# Two overlapping boxes: a detection on the first has IoU 1 with it and 80/120 = 0.667 with the second.
PAIR = [[0, 0, 10, 10], [2, 0, 12, 10]]


def test_difficult_best_box_ignores_the_detection_where_dont_care_lets_it_take_another() -> None:
    # VOC: the detection's best box is difficult → ignored, though it reaches the unmatched normal box too.
    assert match_image([[0, 0, 10, 10]], [0.9], PAIR, iou_threshold=0.5, gt_difficult=[True, False]).tolist() \
        == [IGNORED]
    # "Don't care": the detection takes the valid box it reaches.
    assert match_image([[0, 0, 10, 10]], [0.9], PAIR, iou_threshold=0.5, gt_ignore=[True, False]).tolist() \
        == [TRUE_POSITIVE]
    for flags, ap in (({"gt_difficult": [True, False]}, 0.0), ({"gt_ignore": [True, False]}, 1.0)):
        evaluator = DetectionEvaluator(["car"], mode="INTEGRATE")
        evaluator.add_image([[0, 0, 10, 10]], [0.9], [0], PAIR, [0, 0], **flags)  # type: ignore[arg-type]
        car = evaluator.result().classes["car"]
        assert car.num_ground_truth == 1 and car.average_precision == ap


def test_an_already_matched_best_box_makes_a_false_positive_though_a_difficult_one_is_reached() -> None:
    det, scores = [[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8]
    # VOC: the second detection's best box (the first, IoU 1) is taken → false positive, difficult box or not.
    assert match_image(det, scores, PAIR, iou_threshold=0.5, gt_difficult=[False, True]).tolist() \
        == [TRUE_POSITIVE, FALSE_POSITIVE]
    # "Don't care": with no valid box left, reaching the ignored one makes it ignored.
    assert match_image(det, scores, PAIR, iou_threshold=0.5, gt_ignore=[False, True]).tolist() \
        == [TRUE_POSITIVE, IGNORED]
    # Without flags the greedy rule gives the second detection the next box; VOC's takes only the best one.
    assert match_image(det, scores, PAIR, iou_threshold=0.5).tolist() == [TRUE_POSITIVE, TRUE_POSITIVE]
    assert match_image(det, scores, PAIR, iou_threshold=0.5, gt_difficult=[False, False]).tolist() \
        == [TRUE_POSITIVE, FALSE_POSITIVE]
    evaluator = DetectionEvaluator(["car"])
    evaluator.add_image(det, scores, [0, 0], PAIR, [0, 0], gt_difficult=[False, True])
    car = evaluator.result().classes["car"]
    assert (car.num_ground_truth, car.num_true_positives, car.num_false_positives) == (1, 1, 1)


@pytest.mark.parametrize(("mode", "with_flags", "without_flags"), [("INTEGRATE", 0.833333, 0.916667),
                                                                   ("SAMPLE", 0.848485, 0.909091)])
def test_difficult_boxes_leave_the_ground_truth_count(mode: str, with_flags: float, without_flags: float) -> None:
    gt = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]  # the middle one difficult
    det = [[20, 20, 30, 30], [0, 0, 10, 10], [60, 60, 70, 70], [40, 40, 50, 50]]
    scores = [0.95, 0.9, 0.8, 0.7]
    assert match_image(det, scores, gt, iou_threshold=0.5, gt_difficult=[False, True, False]).tolist() \
        == [IGNORED, TRUE_POSITIVE, FALSE_POSITIVE, TRUE_POSITIVE]
    # Counted: TP, FP, TP against 2 boxes (the REFERENCE check values); without the flags TP, TP, FP, TP against 3.
    for flags, expected, count in (([False, True, False], with_flags, 2), (None, without_flags, 3)):
        evaluator = DetectionEvaluator(["car"], mode=mode)
        evaluator.add_image(det, scores, [0] * 4, gt, [0] * 3, gt_difficult=flags)
        car = evaluator.result().classes["car"]
        assert car.num_ground_truth == count and car.average_precision == pytest.approx(expected, abs=5e-7)
    # Only difficult boxes, found or not: no ground truth.
    evaluator = DetectionEvaluator(["car"])
    evaluator.add_image([[20, 20, 30, 30]], [0.9], [0], gt, [0] * 3, gt_difficult=[True, True, True])
    car = evaluator.result().classes["car"]
    assert car.num_ground_truth == 0 and car.num_false_positives == 0 and math.isnan(car.average_precision)


def test_difficult_below_the_threshold_is_a_false_positive_and_dont_care_still_absorbs_one() -> None:
    # Best box difficult but IoU 0.4 < 0.5: a false positive, as VOC.
    assert match_image([[0, 0, 10, 4]], [1], [[0, 0, 10, 10]], iou_threshold=0.5, gt_difficult=[True]).tolist() \
        == [FALSE_POSITIVE]
    # Both flags: the don't-care box stays outside the VOC choice and turns the duplicate into "ignored".
    gt = [[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]]
    status = match_image([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8, 0.7], gt, iou_threshold=0.5,
                         gt_ignore=[False, True, False], gt_difficult=[False, False, True])
    assert status.tolist() == [TRUE_POSITIVE, IGNORED, IGNORED]


def test_no_ground_truth_and_no_detections() -> None:
    evaluator = DetectionEvaluator(["car", "person", "bike"], mode="INTEGRATE")
    evaluator.add_image([[0, 0, 10, 10]], [0.5], [1], [[0, 0, 10, 10]], [0])
    evaluator.add_image(np.zeros((0, 4)), [], [], np.zeros((0, 4)), [])
    result = evaluator.result()
    assert result.classes["car"].average_precision == 0.0  # ground truth, no detections
    assert math.isnan(result.classes["person"].average_precision)  # detections, no ground truth
    assert math.isnan(result.classes["bike"].average_precision)  # nothing at all
    assert result.classes["person"].num_false_positives == 1
    assert result.mean_average_precision == 0.0  # classes without ground truth are left out
    assert math.isnan(DetectionEvaluator(["car"]).result().mean_average_precision)
    assert average_precision([], [], "SAMPLE") == 0.0


def test_ranking_across_images() -> None:
    evaluator = DetectionEvaluator(["car"], mode="SAMPLE")
    evaluator.add_image([[0, 0, 10, 10]], [0.9], [0], [[0, 0, 10, 10]], [0])
    evaluator.add_image([[50, 50, 60, 60]], [0.8], [0], np.zeros((0, 4)), [])
    evaluator.add_image([[20, 20, 30, 30]], [0.7], [0], [[20, 20, 30, 30]], [0])
    car = evaluator.result().classes["car"]
    assert car.average_precision == pytest.approx(0.848485, abs=5e-7)
    np.testing.assert_array_equal(car.scores, [0.9, 0.8, 0.7])


def test_from_spec() -> None:
    config = text_format.Parse("""
        average_precision_mode: INTEGRATE
        minimum_detection_ground_truth_overlap { key: "car" value: 0.7 }
        minimum_detection_ground_truth_overlap { key: "truck" value: 0.3 }
        evaluation_box_config { key: "car" value { minimum_height: 4 maximum_height: 9999 minimum_width: 4
                                                   maximum_width: 9999 } }
    """, detectnet_v2_pb2.EvaluationConfig())
    evaluator = DetectionEvaluator.from_spec(config, ["car", "person"])
    assert evaluator.mode == "INTEGRATE"
    assert evaluator.iou_thresholds == pytest.approx([0.7, 0.5])
    assert evaluator.box_ranges[0] == BoxSizeRange(4, 9999, 4, 9999)
    assert evaluator.box_ranges[1] == BoxSizeRange()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: DetectionEvaluator(["a"], mode="VOC"), "average_precision_mode"),
    (lambda: DetectionEvaluator(["a"], iou_thresholds={"b": 0.5}), "unknown classes: b"),
    (lambda: DetectionEvaluator(["a"]).add_image([[0, 0, 1, 1]], [1, 2], [0], [], []), "1 detection boxes, 2"),
    (lambda: DetectionEvaluator(["a"]).add_image([[0, 0, 1, 1]], [1], [1], [], []), "detection class indices"),
    (lambda: average_precision([1.0], [0.5, 1.0]), "1 precision values but 2"),
    (lambda: DetectionEvaluator(["a"]).add_image([], [], [], [[0, 0, 1, 1]], [0], gt_difficult=[True, False]),
     "1 ground-truth boxes, 2 difficult flags"),
    (lambda: match_image([[0, 0, 1, 1]], [1], [[0, 0, 1, 1]], iou_threshold=0.5, gt_difficult=[]),
     "1 ground-truth boxes but 0 difficult flags"),
])
def test_errors(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
