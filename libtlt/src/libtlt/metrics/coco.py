"""COCO detection metrics through pycocotools (a real dependency, not a re-implementation).

The box detectors report them next to the VOC AP of their spec (``evaluation.json``'s ``coco_bbox``); MaskRCNN
reports them for boxes and masks (``segm``), as TAO prints them. :class:`CocoEvaluator` takes images one by one,
like :class:`libtlt.metrics.detection.DetectionEvaluator`, builds the ground-truth and result sets in memory
(category id = class index + 1, boxes ``x1, y1, x2, y2`` in continuous pixels turned into COCO's
``x, y, w, h``) and runs ``COCOeval``: AP over IoU 0.50:0.95, at 0.50 and 0.75, by area, and AR at 1, 10 and
100 detections per image, by area (-1 where COCO has nothing to measure, e.g. no small objects).

Ground truth "don't care" boxes become COCO crowd regions (detections on them count neither way).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

IOU_TYPES = ("bbox", "segm")
#: The 12 numbers of ``COCOeval.summarize()``, in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl")
_STAT_LINES = (
    ("Average Precision", "AP", "0.50:0.95", "all", 100), ("Average Precision", "AP", "0.50", "all", 100),
    ("Average Precision", "AP", "0.75", "all", 100), ("Average Precision", "AP", "0.50:0.95", "small", 100),
    ("Average Precision", "AP", "0.50:0.95", "medium", 100), ("Average Precision", "AP", "0.50:0.95", "large", 100),
    ("Average Recall", "AR", "0.50:0.95", "all", 1), ("Average Recall", "AR", "0.50:0.95", "all", 10),
    ("Average Recall", "AR", "0.50:0.95", "all", 100), ("Average Recall", "AR", "0.50:0.95", "small", 100),
    ("Average Recall", "AR", "0.50:0.95", "medium", 100), ("Average Recall", "AR", "0.50:0.95", "large", 100),
)


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """pycocotools prints progress to stdout and warns about NumPy 2; neither belongs in a tool's output."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_api

    with warnings.catch_warnings():  # pycocotools' NumPy-2 "copy keyword" notice, harmless
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = mask_api.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    encoded["counts"] = encoded["counts"].decode("ascii")
    return dict(encoded)


class CocoEvaluator:
    """Accumulates images, then computes the COCO statistics of ``iou_type`` (``bbox`` or ``segm``)."""

    def __init__(self, class_names: Sequence[str], iou_type: str = "bbox"):
        if iou_type not in IOU_TYPES:
            raise ValueError(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
        self.class_names = list(class_names)
        self.iou_type = iou_type
        self._images: list[dict[str, Any]] = []
        self._truths: list[dict[str, Any]] = []
        self._detections: list[dict[str, Any]] = []

    def add_image(self, det_boxes: ArrayLike, det_scores: ArrayLike, det_classes: ArrayLike, gt_boxes: ArrayLike,
                  gt_classes: ArrayLike, gt_dont_care: ArrayLike | None = None, *,
                  image_size: tuple[int, int] | None = None, det_masks: ArrayLike | None = None,
                  gt_masks: ArrayLike | None = None) -> None:
        """One image: detections (``[D, 4]`` x1 y1 x2 y2, ``[D]`` scores, class indices ``[D]``) and ground truth
        (``[G, 4]``, class indices ``[G]``, optional don't-care flags). ``segm`` also needs ``image_size``
        (width, height) and binary masks ``[D, H, W]`` / ``[G, H, W]`` in that image's pixels."""
        image_id = len(self._images) + 1
        width, height = image_size if image_size is not None else (0, 0)
        self._images.append({"id": image_id, "width": int(width), "height": int(height)})
        boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        classes = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
        crowd = (np.zeros(len(boxes), bool) if gt_dont_care is None
                 else np.asarray(gt_dont_care, dtype=bool).reshape(-1))
        d_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        d_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        d_classes = np.asarray(det_classes, dtype=np.int64).reshape(-1)
        if not len(boxes) == len(classes) == len(crowd) or not len(d_boxes) == len(d_scores) == len(d_classes):
            raise ValueError("boxes, classes, scores and flags of one image must have the same length")
        for what, ids in (("ground-truth", classes), ("detection", d_classes)):
            if ids.size and (ids.min() < 0 or ids.max() >= len(self.class_names)):
                raise ValueError(f"{what} class indices must lie in [0, {len(self.class_names)})")
        if self.iou_type == "segm":
            if image_size is None or gt_masks is None or det_masks is None:
                raise ValueError("segm evaluation needs image_size and the masks of truths and detections")
            gt_segm: list[Any] = [_rle(m) for m in np.asarray(gt_masks).reshape(-1, height, width)]
            det_segm: list[Any] = [_rle(m) for m in np.asarray(det_masks).reshape(-1, height, width)]
            if len(gt_segm) != len(boxes) or len(det_segm) != len(d_boxes):
                raise ValueError("one mask per ground-truth box and per detection")
        for i, box in enumerate(boxes):
            entry = self._annotation(image_id, box, int(classes[i]), gt_segm[i] if self.iou_type == "segm" else None,
                                     id_=len(self._truths) + 1)
            entry["iscrowd"] = int(crowd[i])
            self._truths.append(entry)
        for i, box in enumerate(d_boxes):
            entry = self._annotation(image_id, box, int(d_classes[i]),
                                     det_segm[i] if self.iou_type == "segm" else None, id_=len(self._detections) + 1)
            entry["score"] = float(d_scores[i])
            self._detections.append(entry)

    @staticmethod
    def _annotation(image_id: int, box: np.ndarray, class_index: int, segmentation: dict[str, Any] | None,
                    id_: int) -> dict[str, Any]:
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
        entry: dict[str, Any] = {"id": id_, "image_id": image_id, "category_id": class_index + 1,
                                 "bbox": [x1, y1, w, h], "area": w * h}
        if segmentation is not None:
            from pycocotools import mask as mask_api

            entry["segmentation"] = segmentation
            entry["area"] = float(mask_api.area(segmentation))
        return entry

    def ground_truth(self) -> dict[str, Any]:
        """The accumulated ground truth as a COCO instances dataset (images, annotations, categories)."""
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(self.class_names)]
        return {"images": self._images, "annotations": self._truths, "categories": categories}

    def result(self) -> dict[str, float]:
        """The 12 statistics by :data:`STAT_NAMES` (0 everywhere when nothing was detected)."""
        return coco_stats(self.ground_truth(), self._detections, self.iou_type)


def coco_stats(ground_truth: dict[str, Any], detections: Sequence[dict[str, Any]], iou_type: str = "bbox",
               image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """``COCOeval`` of ``detections`` (COCO result dicts: ``image_id``, ``category_id``, ``bbox`` x y w h,
    ``score``, and ``segmentation`` RLE for ``segm``) against ``ground_truth`` (a COCO instances dataset, e.g. a
    loaded ``val_json_file``), restricted to ``image_ids`` when given (the images evaluated)."""
    from pycocotools import mask as mask_api
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    found_annotations = []
    for number, detection in enumerate(detections, start=1):
        entry = dict(detection)
        entry["id"] = number
        _, _, w, h = entry["bbox"]
        entry.setdefault("area", float(mask_api.area(entry["segmentation"])) if iou_type == "segm" else w * h)
        entry.setdefault("iscrowd", 0)
        found_annotations.append(entry)
    with _quiet():
        truth = COCO()
        truth.dataset = ground_truth
        truth.createIndex()
        found = COCO()
        found.dataset = {"images": ground_truth.get("images", []), "categories": ground_truth.get("categories", []),
                         "annotations": found_annotations}
        found.createIndex()
        evaluation = COCOeval(truth, found, iouType=iou_type)
        if image_ids is not None:
            evaluation.params.imgIds = sorted(int(i) for i in image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(STAT_NAMES, evaluation.stats, strict=True)}


def mask_to_rle(mask: ArrayLike) -> dict[str, Any]:
    """A binary ``[H, W]`` mask as COCO's compressed RLE with a JSON-ready ``counts`` string."""
    return _rle(np.asarray(mask))


def result_entry(image_id: int, box: ArrayLike, score: float, category_id: int,
                 mask: ArrayLike | None = None) -> dict[str, Any]:
    """One detection as a COCO results dict: ``bbox`` [x, y, width, height] of an (x1, y1, x2, y2) ``box``, the
    score, the category id and, with a binary ``mask``, its compressed RLE ``segmentation`` (what pycocotools'
    ``loadRes`` reads: tlt-evaluate's detections.json, tlt-infer's ``-l`` files, validation during training)."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    entry: dict[str, Any] = {"image_id": int(image_id), "category_id": int(category_id), "score": float(score),
                             "bbox": [x1, y1, max(x2 - x1, 0.0), max(y2 - y1, 0.0)]}
    if mask is not None:
        entry["segmentation"] = mask_to_rle(mask)
    return entry


def format_stats(stats: dict[str, float], iou_type: str = "bbox") -> str:
    """The statistics as ``COCOeval.summarize()`` prints them (TAO's MaskRCNN evaluation log), under a title."""
    lines = [f"COCO {iou_type} metrics:"]
    for (title, short, iou, area, max_dets), name in zip(_STAT_LINES, STAT_NAMES, strict=True):
        lines.append(f" {title:<18} ({short}) @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = "
                     f"{stats[name]:0.3f}")
    return "\n".join(lines)
