"""COCO metrics through pycocotools (libtlt.metrics.coco): check values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from libtlt.metrics.coco import STAT_NAMES, CocoEvaluator, format_stats

BOX = [10.0, 10.0, 110.0, 110.0]  # 100 x 100: a "large" object (area > 96²)


def test_a_perfect_detector_scores_one_for_boxes_and_masks() -> None:
    masks = np.zeros((2, 120, 160), np.uint8)
    masks[0, 10:110, 10:110] = 1
    masks[1, 20:50, 120:150] = 1
    boxes = [BOX, [120.0, 20.0, 150.0, 50.0]]
    for iou_type in ("bbox", "segm"):
        evaluator = CocoEvaluator(["car", "person"], iou_type)
        evaluator.add_image(boxes, [0.9, 0.8], [0, 1], boxes, [0, 1], image_size=(160, 120), det_masks=masks,
                            gt_masks=masks)
        stats = evaluator.result()
        assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
        assert stats["ARmax100"] == pytest.approx(1.0)
        assert stats["APs"] == pytest.approx(1.0)  # the 30 x 30 one
        assert stats["APm"] == -1.0  # no medium objects: nothing to measure


def test_iou_060_matches_three_of_the_ten_thresholds() -> None:
    # IoU = 6000 / 10000: shifting a 100x100 box by 25 px gives 75·100 / (2·10000 − 7500) = 0.6.
    evaluator = CocoEvaluator(["car"])
    evaluator.add_image([[35.0, 10.0, 135.0, 110.0]], [0.9], [0], [BOX], [0])
    stats = evaluator.result()
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(0.0)
    assert stats["AP"] == pytest.approx(0.3)  # matched at 0.50, 0.55, 0.60


def test_a_confident_false_positive_halves_precision_at_full_recall() -> None:
    evaluator = CocoEvaluator(["car"])
    evaluator.add_image([[300.0, 300.0, 400.0, 400.0], BOX], [0.95, 0.5], [0, 0], [BOX], [0])
    stats = evaluator.result()
    assert stats["AP50"] == pytest.approx(0.5, abs=0.01)  # precision 1/2 at the only recall level


def test_dont_care_regions_count_neither_way_and_no_detection_scores_zero() -> None:
    evaluator = CocoEvaluator(["car"])
    evaluator.add_image([BOX, [200.0, 0.0, 300.0, 100.0]], [0.9, 0.95], [0, 0],
                        [BOX, [200.0, 0.0, 300.0, 100.0]], [0, 0], [False, True])
    assert evaluator.result()["AP50"] == pytest.approx(1.0)
    empty = CocoEvaluator(["car"])
    empty.add_image(np.zeros((0, 4)), [], [], [BOX], [0])
    assert empty.result()["AP"] == 0.0


def test_bad_input_is_refused() -> None:
    evaluator = CocoEvaluator(["car"])
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 1\)"):
        evaluator.add_image([BOX], [0.9], [1], [BOX], [0])
    with pytest.raises(ValueError, match="same length"):
        evaluator.add_image([BOX], [0.9, 0.1], [0], [BOX], [0])
    with pytest.raises(ValueError, match="iou_type"):
        CocoEvaluator(["car"], "keypoints")
    with pytest.raises(ValueError, match="needs image_size"):
        CocoEvaluator(["car"], "segm").add_image([BOX], [0.9], [0], [BOX], [0])


def test_the_summary_reads_like_cocoeval() -> None:
    text = format_stats(dict.fromkeys(STAT_NAMES, 0.5), "segm")
    lines = text.splitlines()
    assert lines[0] == "COCO segm metrics:" and len(lines) == 13
    assert lines[1] == " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.500"
    assert lines[7] == " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.500"
