"""tlt-evaluate's instance-segmenter path, the parts that do not need a model: the COCO ground truth's
completion and the conversion of decoded instances into COCO results (the whole path runs through the installed
command in tests/test_plugin_architecture.py, on the tinyseg plug-in)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from pycocotools import mask as mask_api

from libtlt.errors import DataError, ModelFileError
from tlt_evaluate.instance_segmenter import coco_results, complete_ground_truth


@dataclass(frozen=True)
class Instances:
    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray
    masks: np.ndarray


def instances(count: int = 1, category: int = 2) -> Instances:
    masks = np.zeros((count, 20, 30), bool)
    masks[:, 5:15, 10:25] = True
    return Instances(np.tile([[10.0, 5.0, 25.0, 15.0]], (count, 1)), np.full(count, 0.9), np.full(count, category),
                     masks)


def test_ground_truth_gets_what_cocoeval_needs() -> None:
    truth = complete_ground_truth({"images": [{"id": 1}], "categories": [{"id": 2, "name": "x"}],
                                   "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 4, 5]},
                                                   {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1],
                                                    "iscrowd": 1, "area": 7.0}]})
    first, second = truth["annotations"]
    assert (first["iscrowd"], first["area"]) == (0, 20.0)
    assert (second["iscrowd"], second["area"]) == (1, 7.0)  # what the json says is kept


@pytest.mark.parametrize("field", ["images", "annotations", "categories"])
def test_ground_truth_without_a_list_is_refused(field: str) -> None:
    truth: dict[str, object] = {"images": [], "annotations": [], "categories": []}
    truth[field] = {"not": "a list"}
    with pytest.raises(DataError, match=f"no '{field}' list"):
        complete_ground_truth(truth)


def test_instances_become_coco_results_with_rle_masks() -> None:
    found = instances(2)
    results = coco_results(7, found, {1, 2})
    assert [r["image_id"] for r in results] == [7, 7] and results[0]["category_id"] == 2
    assert results[0]["bbox"] == [10.0, 5.0, 15.0, 10.0] and results[0]["score"] == pytest.approx(0.9)
    decoded = mask_api.decode(results[1]["segmentation"])
    np.testing.assert_array_equal(decoded.astype(bool), found.masks[1])


def test_an_unknown_category_or_missing_masks_are_named() -> None:
    with pytest.raises(DataError, match=r"category id 5, which the COCO ground truth does not list \(its ids: \[1, 2\]\)"):
        coco_results(1, instances(category=5), {1, 2})
    broken = instances(2)
    with pytest.raises(ModelFileError, match="2 boxes but 1 masks"):
        coco_results(1, Instances(broken.boxes, broken.confidences, broken.class_ids, broken.masks[:1]), {2})
