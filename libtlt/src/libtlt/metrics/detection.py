"""PASCAL VOC style detection metrics (000 §7.2.7 evaluation_config, REFERENCE.md "Average precision").

Matching, per image and class: detections in descending confidence each take the unmatched *valid* ground-truth
box they overlap most, if that IoU reaches the class's threshold (``minimum_detection_ground_truth_overlap``);
each ground-truth box is matched at most once. Ground-truth boxes outside the class's size range
(``evaluation_box_config``) or flagged "don't care" are ignored: a detection that reaches the threshold with one
of them (and with no valid box) is neither a true nor a false positive, and neither is an unmatched detection
outside the size range. The rest are false positives.

"Difficult" ground truth (``gt_difficult``, PASCAL VOC's rule; FasterRCNN flags KITTI-occluded objects so): each
detection, in descending confidence, takes the box of its class it overlaps most among *all* the (valid and
difficult) boxes, matched or not (ties: the lower index). If that IoU reaches the threshold, the detection is
ignored when the box is difficult, a true positive when the box is still unmatched (it becomes matched) and a false
positive otherwise — even when it also reaches another, unmatched box. Difficult boxes never count as ground truth.
Without ``gt_difficult`` the greedy rule above applies unchanged; with both, don't-care and out-of-range boxes stay
outside the VOC choice and still turn a detection's false positive into "ignored" when it reaches one.

Average precision over the ranked detections of every image (ties keep the order they were added in):

* ``SAMPLE`` — VOC2007 11-point: the mean over recall r in {0, 0.1, …, 1} of the highest precision at a recall
  ≥ r (0 where none);
* ``INTEGRATE`` — VOC2010+: the area under the precision envelope (precision made non-increasing in recall).
  A perfect detector scores exactly 1.0 (the original evaluator's (N−1)/N variant is not reproduced).

A class without valid ground truth has AP ``nan`` and is left out of the mean (mAP); boxes use continuous
coordinates (width = x2 − x1). Pure NumPy; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from libtlt.layers.boxes import iou_matrix

AP_MODES = ("SAMPLE", "INTEGRATE")  # the order of the spec enum AveragePrecisionMode
#: IoU threshold of classes without ``minimum_detection_ground_truth_overlap`` (PASCAL VOC's).
DEFAULT_IOU_THRESHOLD = 0.5
TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1

FloatArray = NDArray[np.float64]


def _mode_name(mode: str | int) -> str:
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode < len(AP_MODES):
        return AP_MODES[mode]
    if isinstance(mode, str) and mode.upper() in AP_MODES:
        return mode.upper()
    raise ValueError(f"average_precision_mode must be one of {', '.join(AP_MODES)}, got {mode!r}")


@dataclass(frozen=True)
class BoxSizeRange:
    """``evaluation_box_config``: valid boxes are ``minimum ≤ size ≤ maximum`` in both height and width.

    The defaults accept every box (a class without an ``evaluation_box_config`` entry).
    """

    minimum_height: float = 0.0
    maximum_height: float = math.inf
    minimum_width: float = 0.0
    maximum_width: float = math.inf

    @classmethod
    def from_spec(cls, config: Any) -> BoxSizeRange:
        return cls(float(config.minimum_height), float(config.maximum_height), float(config.minimum_width),
                   float(config.maximum_width))

    def contains(self, boxes: ArrayLike) -> NDArray[np.bool_]:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
        return ((h >= self.minimum_height) & (h <= self.maximum_height)
                & (w >= self.minimum_width) & (w <= self.maximum_width))


# -------------------------------------------------------------------------------------- average precision

def precision_recall(scores: ArrayLike, is_true_positive: ArrayLike,
                     num_ground_truth: int) -> tuple[FloatArray, FloatArray, NDArray[np.intp]]:
    """Precision and recall after each detection ranked by descending score (stable), and the ranking.

    ``recall`` is ``nan`` when there is no ground truth.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    tp = np.asarray(is_true_positive, dtype=bool).reshape(-1)
    order = np.argsort(-s, kind="stable")
    tp_count = np.cumsum(tp[order], dtype=np.float64)
    precision = tp_count / np.arange(1, len(s) + 1)
    recall = tp_count / num_ground_truth if num_ground_truth > 0 else np.full(len(s), np.nan)
    return precision, recall, order


def average_precision(precision: ArrayLike, recall: ArrayLike, mode: str | int = "SAMPLE") -> float:
    """AP of a ranked precision/recall curve (recall non-decreasing), ``SAMPLE`` or ``INTEGRATE``."""
    p = np.asarray(precision, dtype=np.float64).reshape(-1)
    r = np.asarray(recall, dtype=np.float64).reshape(-1)
    if len(p) != len(r):
        raise ValueError(f"{len(p)} precision values but {len(r)} recall values")
    name = _mode_name(mode)
    if np.isnan(r).any():
        return math.nan
    if len(p) == 0:
        return 0.0
    envelope = np.maximum.accumulate(p[::-1])[::-1]  # highest precision at this or any later rank
    if name == "SAMPLE":
        points = np.arange(11) / 10  # k/10 rounds exactly like a recall of the same value
        first = np.searchsorted(r, points, side="left")
        reached = first < len(r)
        return float(np.where(reached, envelope[np.minimum(first, len(r) - 1)], 0.0).sum() / 11)
    steps = np.diff(np.concatenate(([0.0], r)))
    return float(np.sum(steps * envelope))


# ---------------------------------------------------------------------------------------------- matching

def _flags(given: ArrayLike, count: int, what: str) -> NDArray[np.bool_]:
    flags = np.asarray(given, dtype=bool).reshape(-1)
    if len(flags) != count:
        raise ValueError(f"{count} ground-truth boxes but {len(flags)} {what} flags")
    return flags


def match_image(det_boxes: ArrayLike, det_scores: ArrayLike, gt_boxes: ArrayLike, *, iou_threshold: float,
                box_range: BoxSizeRange | None = None, gt_ignore: ArrayLike | None = None,
                gt_difficult: ArrayLike | None = None) -> NDArray[np.int8]:
    """Match one image's detections of one class: ``TRUE_POSITIVE``, ``FALSE_POSITIVE`` or ``IGNORED`` each.

    ``gt_ignore``: "don't care" flags (greedy rule); ``gt_difficult``: VOC's difficult flags (module docstring)."""
    det = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(scores) != len(det):
        raise ValueError(f"{len(det)} detections but {len(scores)} scores")
    size = box_range or BoxSizeRange()
    valid = size.contains(gt)
    if gt_ignore is not None:
        valid &= ~_flags(gt_ignore, len(gt), "ignore")
    difficult = None if gt_difficult is None else _flags(gt_difficult, len(gt), "difficult")
    status = np.full(len(det), FALSE_POSITIVE, dtype=np.int8)
    if len(det) == 0:
        return status
    iou = iou_matrix(det, gt)
    reaches = iou >= iou_threshold
    if difficult is not None:
        _match_difficult(status, scores, iou, reaches, valid, difficult, iou_threshold)
        status[(status == FALSE_POSITIVE) & ~size.contains(det)] = IGNORED
        return status
    good = reaches & valid
    hits_ignored = np.any(reaches & ~valid, axis=1)
    # Per detection, the valid boxes it reaches, best IoU first (ties: lower index).
    ranked: list[list[int]] = np.argsort(np.where(good, -iou, np.inf), axis=1, kind="stable").tolist()
    reachable: list[int] = good.sum(axis=1).tolist()
    matched = [False] * len(gt)
    for d in np.argsort(-scores, kind="stable").tolist():
        for g in ranked[d][:reachable[d]]:
            if not matched[g]:
                matched[g] = True
                status[d] = TRUE_POSITIVE
                break
        else:
            if hits_ignored[d]:
                status[d] = IGNORED
    status[(status == FALSE_POSITIVE) & ~size.contains(det)] = IGNORED
    return status


def _match_difficult(status: NDArray[np.int8], scores: FloatArray, iou: FloatArray, reaches: NDArray[np.bool_],
                     valid: NDArray[np.bool_], difficult: NDArray[np.bool_], iou_threshold: float) -> None:
    """VOC's rule in place: each detection against its best box among the ``valid`` ones, difficult included."""
    hits_ignored = np.any(reaches & ~valid, axis=1)  # don't care / out of range: outside the VOC choice
    if valid.any():
        masked = np.where(valid, iou, -np.inf)
        best: list[int] = np.argmax(masked, axis=1).tolist()  # ties: the lower index
        best_iou: list[float] = masked.max(axis=1).tolist()
    else:
        best, best_iou = [0] * len(status), [-math.inf] * len(status)
    matched = [False] * iou.shape[1]
    for d in np.argsort(-scores, kind="stable").tolist():
        g = best[d]
        if best_iou[d] >= iou_threshold:
            if difficult[g]:
                status[d] = IGNORED
                continue
            if not matched[g]:
                matched[g] = True
                status[d] = TRUE_POSITIVE
                continue
        if hits_ignored[d]:
            status[d] = IGNORED


# --------------------------------------------------------------------------------------------- evaluator

@dataclass(frozen=True)
class ClassResult:
    """One class: AP, and the curve over its ranked non-ignored detections (for plotting)."""

    name: str
    average_precision: float
    precision: FloatArray
    recall: FloatArray
    scores: FloatArray
    num_ground_truth: int
    num_true_positives: int
    num_false_positives: int


@dataclass(frozen=True)
class DetectionResult:
    mode: str
    classes: dict[str, ClassResult]
    #: Mean AP over the classes with ground truth (``nan`` when none has).
    mean_average_precision: float
    #: An architecture's further numbers for the report, e.g. FasterRCNN's ``rpn_recall`` ({class: fraction}).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Accumulator:
    scores: list[FloatArray] = field(default_factory=list)
    true_positive: list[NDArray[np.bool_]] = field(default_factory=list)
    num_ground_truth: int = 0


class DetectionEvaluator:
    """Accumulates images, then computes per-class AP and mAP.

    ``iou_thresholds`` is one value or {class: value} (classes left out get 0.5); ``box_ranges`` one
    :class:`BoxSizeRange` or {class: range} (classes left out accept every size).
    """

    def __init__(self, class_names: Sequence[str], *, iou_thresholds: float | Mapping[str, float] = 0.5,
                 box_ranges: BoxSizeRange | Mapping[str, BoxSizeRange] | None = None,
                 mode: str | int = "SAMPLE"):
        self.class_names = list(class_names)
        self.mode = _mode_name(mode)
        for what, given in (("iou_thresholds", iou_thresholds), ("box_ranges", box_ranges)):
            if isinstance(given, Mapping) and (unknown := set(given) - set(self.class_names)):
                raise ValueError(f"{what} names unknown classes: {', '.join(sorted(unknown))}")
        if isinstance(iou_thresholds, Mapping):
            self.iou_thresholds = [float(iou_thresholds.get(n, DEFAULT_IOU_THRESHOLD)) for n in self.class_names]
        else:
            self.iou_thresholds = [float(iou_thresholds)] * len(self.class_names)
        if isinstance(box_ranges, Mapping):
            self.box_ranges = [box_ranges.get(n, BoxSizeRange()) for n in self.class_names]
        else:
            self.box_ranges = [box_ranges or BoxSizeRange()] * len(self.class_names)
        self._classes = [_Accumulator() for _ in self.class_names]

    @classmethod
    def from_spec(cls, evaluation_config: Any, class_names: Sequence[str]) -> DetectionEvaluator:
        """From DetectNet_v2's ``evaluation_config`` (entries for classes not in ``class_names`` are skipped)."""
        known = set(class_names)
        overlaps = {e.key: float(e.value) for e in evaluation_config.minimum_detection_ground_truth_overlap
                    if e.key in known}
        ranges = {e.key: BoxSizeRange.from_spec(e.value) for e in evaluation_config.evaluation_box_config
                  if e.key in known}
        return cls(class_names, iou_thresholds=overlaps, box_ranges=ranges,
                   mode=evaluation_config.average_precision_mode)

    def add_image(self, det_boxes: ArrayLike, det_scores: ArrayLike, det_classes: ArrayLike, gt_boxes: ArrayLike,
                  gt_classes: ArrayLike, gt_ignore: ArrayLike | None = None, *,
                  gt_difficult: ArrayLike | None = None) -> None:
        """One image: detections (``[D, 4]``, ``[D]``, class indices ``[D]``) and ground truth (``[G, 4]``,
        class indices ``[G]``, optional "don't care" flags ``[G]``, optional VOC "difficult" flags ``[G]``)."""
        det = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        det_cls = np.asarray(det_classes).reshape(-1)
        gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
        gt_cls = np.asarray(gt_classes).reshape(-1)
        ignore = np.zeros(len(gt), dtype=bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(-1)
        difficult = None if gt_difficult is None else np.asarray(gt_difficult, bool).reshape(-1)
        if not len(det) == len(scores) == len(det_cls):
            raise ValueError(f"{len(det)} detection boxes, {len(scores)} scores, {len(det_cls)} classes")
        if not len(gt) == len(gt_cls) == len(ignore):
            raise ValueError(f"{len(gt)} ground-truth boxes, {len(gt_cls)} classes, {len(ignore)} ignore flags")
        if difficult is not None and len(difficult) != len(gt):
            raise ValueError(f"{len(gt)} ground-truth boxes, {len(difficult)} difficult flags")
        n = len(self.class_names)
        for what, ids in (("detection", det_cls), ("ground-truth", gt_cls)):
            if len(ids) and (ids.min() < 0 or ids.max() >= n):
                raise ValueError(f"{what} class indices must lie in [0, {n})")
        for c, acc in enumerate(self._classes):
            d, g = det_cls == c, gt_cls == c
            status = match_image(det[d], scores[d], gt[g], iou_threshold=self.iou_thresholds[c],
                                 box_range=self.box_ranges[c], gt_ignore=ignore[g],
                                 gt_difficult=None if difficult is None else difficult[g])
            counted = status != IGNORED
            acc.scores.append(scores[d][counted])
            acc.true_positive.append(status[counted] == TRUE_POSITIVE)
            countable = self.box_ranges[c].contains(gt[g]) & ~ignore[g]
            if difficult is not None:
                countable &= ~difficult[g]
            acc.num_ground_truth += int(countable.sum())

    def result(self) -> DetectionResult:
        classes: dict[str, ClassResult] = {}
        for name, acc in zip(self.class_names, self._classes, strict=True):
            scores = np.concatenate(acc.scores) if acc.scores else np.zeros(0)
            tp = np.concatenate(acc.true_positive) if acc.true_positive else np.zeros(0, dtype=bool)
            precision, recall, order = precision_recall(scores, tp, acc.num_ground_truth)
            classes[name] = ClassResult(
                name=name,
                average_precision=(average_precision(precision, recall, self.mode) if acc.num_ground_truth
                                   else math.nan),
                precision=precision,
                recall=recall,
                scores=scores[order],
                num_ground_truth=acc.num_ground_truth,
                num_true_positives=int(tp.sum()),
                num_false_positives=int((~tp).sum()),
            )
        aps = [r.average_precision for r in classes.values() if r.num_ground_truth > 0]
        return DetectionResult(self.mode, classes, float(np.mean(aps)) if aps else math.nan)
