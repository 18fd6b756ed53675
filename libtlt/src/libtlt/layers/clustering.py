"""DetectNet_v2 post-processing (000 §7.2.3 and §7.2.9.3, 001 clustering_config): raw cells to detections.

Per class: keep the cells whose coverage is above ``coverage_threshold`` and decode their boxes, then

* ``DBSCAN`` — cluster the boxes with the distance ``1 − IoU``: a box is a *core* box when the coverage of the
  boxes within ``dbscan_eps`` of it (itself included) sums to at least ``dbscan_min_samples``; core boxes within
  ``eps`` of each other share a cluster; a non-core box within ``eps`` of a core box joins the cluster of its
  highest-IoU core neighbour; the others are noise and dropped. A cluster's box is the coverage-weighted mean
  of its boxes, its confidence the coverage sum (``aggregate_cov``) or mean (``mean_cov``); clusters below
  ``dbscan_confidence_threshold`` are dropped.
* ``NMS`` — greedy non-maximum suppression of the boxes by coverage (suppress IoU > ``nms_iou_threshold``);
  a kept box's confidence is its cell's coverage; boxes below ``nms_confidence_threshold`` are dropped.
* ``HYBRID`` — DBSCAN, then NMS inside each surviving cluster over the cluster's own boxes.

Every mode finally drops boxes less than ``minimum_bounding_box_height`` pixels high. Everything is NumPy:
DBSCAN finds neighbour pairs with a sweep over boxes sorted by x1 (IoU ≥ t needs the boxes' x-interval IoU ≥ t,
so only boxes whose x1 lies within ``(1 − t)·width`` are compared), then joins core boxes with a vectorized
union-find. Its cost grows with the number of neighbour pairs, not with the square of the number of cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from libtlt.layers.bbox_rasterizer import DEFAULT_OFFSET, DEFAULT_SCALE, DEFAULT_STRIDE
from libtlt.layers.box_decoder import candidates
from libtlt.layers.boxes import iou_matrix as iou_matrix  # re-exported; both live in boxes, shared by all detectors
from libtlt.layers.boxes import nms

ALGORITHMS = ("DBSCAN", "NMS", "HYBRID")  # the order of the spec enum ClusteringAlgorithm
CONFIDENCE_MODELS = ("aggregate_cov", "mean_cov")
#: Relative slack of the core test, so that e.g. ten coverages of 0.1 reach ``dbscan_min_samples`` 1.0.
CORE_WEIGHT_TOLERANCE = 1e-9

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


@dataclass(frozen=True)
class ClusteringConfig:
    """One class's clustering parameters (spec ``clustering_config`` plus the bbox handler's ``confidence_model``).

    The defaults are the manual's sample values; ``minimum_bounding_box_height`` defaults to 0 (keep all).
    ``clustering_algorithm`` may be a name or the spec enum's number.
    """

    coverage_threshold: float = 0.005
    dbscan_eps: float = 0.15
    dbscan_min_samples: float = 0.05
    minimum_bounding_box_height: float = 0.0
    clustering_algorithm: str | int = "DBSCAN"
    dbscan_confidence_threshold: float = 0.0
    nms_iou_threshold: float = 0.2
    nms_confidence_threshold: float = 0.0
    confidence_model: str = "aggregate_cov"

    def __post_init__(self) -> None:
        algorithm = self.clustering_algorithm
        if isinstance(algorithm, int) and not isinstance(algorithm, bool) and 0 <= algorithm < len(ALGORITHMS):
            algorithm = ALGORITHMS[algorithm]
        if not isinstance(algorithm, str) or algorithm.upper() not in ALGORITHMS:
            raise ValueError(f"clustering_algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
        object.__setattr__(self, "clustering_algorithm", algorithm.upper())
        if self.confidence_model not in CONFIDENCE_MODELS:
            raise ValueError(f"confidence_model must be one of {', '.join(CONFIDENCE_MODELS)}, "
                             f"got {self.confidence_model!r}")

    @classmethod
    def from_spec(cls, clustering_config: Any, *, confidence_model: str = "aggregate_cov",
                  confidence_threshold: float | None = None) -> ClusteringConfig:
        """From a spec ``ClusteringConfig`` message (or any object with its field names).

        ``confidence_threshold`` (the TLT 2.0 bbox handler's) replaces ``dbscan_confidence_threshold`` when given.
        """
        get = clustering_config
        threshold = getattr(get, "dbscan_confidence_threshold", 0.0)
        return cls(
            coverage_threshold=float(get.coverage_threshold),
            dbscan_eps=float(get.dbscan_eps),
            dbscan_min_samples=float(get.dbscan_min_samples),
            minimum_bounding_box_height=float(get.minimum_bounding_box_height),
            clustering_algorithm=getattr(get, "clustering_algorithm", "DBSCAN"),
            dbscan_confidence_threshold=float(threshold if confidence_threshold is None else confidence_threshold),
            nms_iou_threshold=float(getattr(get, "nms_iou_threshold", 0.2)),
            nms_confidence_threshold=float(getattr(get, "nms_confidence_threshold", 0.0)),
            confidence_model=confidence_model,
        )


@dataclass(frozen=True)
class Clusters:
    """Detections of one class: ``boxes`` ``[M, 4]`` (input pixels) and ``confidences`` ``[M]``, most confident
    first."""

    boxes: FloatArray
    confidences: FloatArray


@dataclass(frozen=True)
class Detections:
    """Detections of one image: ``boxes`` ``[M, 4]``, ``confidences`` ``[M]``, ``class_ids`` ``[M]``; grouped by
    class in class order, most confident first within a class."""

    boxes: FloatArray
    confidences: FloatArray
    class_ids: IndexArray

    def of_class(self, class_id: int) -> Clusters:
        mask = self.class_ids == class_id
        return Clusters(self.boxes[mask], self.confidences[mask])


# --------------------------------------------------------------------------------------------------- DBSCAN

def _neighbour_pairs(boxes: FloatArray, eps: float) -> tuple[IndexArray, IndexArray, FloatArray]:
    """Pairs ``u < v`` (indices into ``boxes``) with ``1 − IoU ≤ eps``, and their IoU; for ``eps < 1``.

    A 2-D IoU ≥ t implies the x-interval IoU ≥ t and the y-interval IoU ≥ t (the union holds the cross
    (xa ∪ xb) × (ya ∩ yb)), and interval IoU ≥ t implies ``lo_b − lo_a ≤ (1 − t)·length_a`` for the interval ``a``
    that starts first. Sorting by x1 turns the x bound into a window per box; the y bound prunes the rest before
    the exact IoU. Both bounds get a relative slack of 1e-9, so no pair is lost to rounding.
    """
    n = len(boxes)
    order = np.argsort(boxes[:, 0], kind="stable")
    ordered = boxes[order]
    x1, y1, x2, y2 = (np.ascontiguousarray(ordered[:, k]) for k in range(4))
    width, height = np.maximum(x2 - x1, 0.0), np.maximum(y2 - y1, 0.0)
    area = width * height
    reach = x1 + eps * width * (1.0 + 1e-9) + 1e-12 * np.abs(x1)
    first = np.arange(1, n + 1)
    counts = np.maximum(np.searchsorted(x1, reach, side="right") - first, 0)
    total = int(counts.sum())
    a = np.repeat(np.arange(n), counts)  # pairs a < b in x1 order with x1[b] within a's window
    b = np.arange(total) - np.repeat(np.cumsum(counts) - counts - first, counts)
    ya, yb = y1[a], y1[b]
    start_height = np.where(ya <= yb, height[a], height[b])
    near = np.abs(ya - yb) <= eps * start_height * (1.0 + 1e-9) + 1e-12 * np.abs(ya)
    a, b = a[near], b[near]
    iw = np.minimum(x2[a], x2[b]) - x1[b]  # x1[b] ≥ x1[a]
    ih = np.minimum(y2[a], y2[b]) - np.maximum(y1[a], y1[b])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = area[a] + area[b] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    keep = (1.0 - iou) <= eps
    u, v = order[a[keep]], order[b[keep]]
    return np.minimum(u, v), np.maximum(u, v), iou[keep]


def _components(n: int, u: IndexArray, v: IndexArray) -> IndexArray:
    """Connected components of the graph with edges ``(u, v)``: each node's smallest node index in its component.

    Union-find with hooking of the larger root onto the smaller and full path compression, all vectorized.
    """
    parent = np.arange(n)
    while len(u):
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            break
        low, high = np.minimum(pu[differ], pv[differ]), np.maximum(pu[differ], pv[differ])
        np.minimum.at(parent, high, low)
        while True:  # path compression until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def dbscan(boxes: ArrayLike, weights: ArrayLike, *, eps: float, min_samples: float) -> IndexArray:
    """DBSCAN of boxes with the distance ``1 − IoU`` and sample ``weights``; labels ``[K]`` (−1: noise).

    Clusters are numbered 0, 1, … in the order of their lowest core box index.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    n = len(b)
    if len(w) != n:
        raise ValueError(f"{n} boxes but {len(w)} weights")
    labels = np.full(n, -1, dtype=np.intp)
    if n == 0:
        return labels
    threshold = min_samples - CORE_WEIGHT_TOLERANCE * abs(min_samples)
    if eps >= 1.0:  # every distance 1 − IoU is ≤ 1: one neighbourhood holds everything
        if w.sum() >= threshold:
            labels[:] = 0
        return labels
    u, v, iou = _neighbour_pairs(b, eps)
    neighbourhood = w + np.bincount(u, weights=w[v], minlength=n) + np.bincount(v, weights=w[u], minlength=n)
    core = neighbourhood >= threshold
    if not core.any():
        return labels
    both = core[u] & core[v]
    root = _components(n, u[both], v[both])
    labels[core] = np.unique(root[core], return_inverse=True)[1]
    # Border boxes: non-core with a core neighbour join that neighbour's cluster (highest IoU, then lowest index).
    one = core[u] ^ core[v]
    if one.any():
        border = np.where(core[u[one]], v[one], u[one])
        anchor = np.where(core[u[one]], u[one], v[one])
        ranked = np.lexsort((anchor, -iou[one], border))
        border, anchor = border[ranked], anchor[ranked]
        first = np.ones(len(border), dtype=bool)
        first[1:] = border[1:] != border[:-1]
        labels[border[first]] = labels[anchor[first]]
    return labels


# ------------------------------------------------------------------------------------------- post-processing

def _sorted(boxes: FloatArray, confidences: FloatArray, min_height: float) -> Clusters:
    tall = (boxes[:, 3] - boxes[:, 1]) >= min_height
    boxes, confidences = boxes[tall], confidences[tall]
    order = np.argsort(-confidences, kind="stable")
    return Clusters(boxes[order], confidences[order])


def _merge(boxes: FloatArray, coverage: FloatArray, labels: IndexArray,
           confidence_model: str) -> tuple[FloatArray, FloatArray]:
    member = labels >= 0
    lab, w, bx = labels[member], coverage[member], boxes[member]
    if len(lab) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    count = int(lab.max()) + 1

    def sums(values: FloatArray | None) -> FloatArray:
        return np.bincount(lab, weights=values, minlength=count).astype(np.float64)

    total, members = sums(w), sums(None)
    weighted = np.stack([sums(w * bx[:, k]) for k in range(4)], axis=1)
    plain = np.stack([sums(bx[:, k]) for k in range(4)], axis=1)
    positive = total > 0
    safe_total = np.where(positive, total, 1.0)
    # Coverage-weighted mean; a cluster whose weights are all zero gets the plain mean.
    merged = np.where(positive[:, None], weighted / safe_total[:, None], plain / members[:, None])
    confidence = total if confidence_model == "aggregate_cov" else total / members
    return merged, confidence


def cluster_boxes(boxes: ArrayLike, coverage: ArrayLike, config: ClusteringConfig) -> Clusters:
    """One class's detections from its candidate boxes (``[K, 4]``, input pixels) and their coverage (``[K]``).

    Applies ``coverage_threshold`` first, so the candidates may be every cell of the class.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = np.asarray(coverage, dtype=np.float64).reshape(-1)
    if len(c) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(c)} coverage values")
    keep = (c > config.coverage_threshold) & np.isfinite(b).all(axis=1)
    b, c = b[keep], c[keep]
    min_height = config.minimum_bounding_box_height
    if config.clustering_algorithm == "NMS":
        kept = nms(b, c, config.nms_iou_threshold)
        kept = kept[c[kept] >= config.nms_confidence_threshold]
        return _sorted(b[kept], c[kept], min_height)
    labels = dbscan(b, c, eps=config.dbscan_eps, min_samples=config.dbscan_min_samples)
    merged, confidence = _merge(b, c, labels, config.confidence_model)
    passed = confidence >= config.dbscan_confidence_threshold
    if config.clustering_algorithm == "DBSCAN":
        return _sorted(merged[passed], confidence[passed], min_height)
    # HYBRID: NMS within each surviving cluster, over the cluster's own candidate boxes.
    kept_parts = [np.zeros(0, dtype=np.intp)]
    for label in np.nonzero(passed)[0].tolist():
        members = np.nonzero(labels == label)[0]
        kept_parts.append(members[nms(b[members], c[members], config.nms_iou_threshold)])
    kept = np.concatenate(kept_parts)
    kept = kept[c[kept] >= config.nms_confidence_threshold]
    return _sorted(b[kept], c[kept], min_height)


def postprocess(cov: ArrayLike, bbox: ArrayLike, configs: ClusteringConfig | Sequence[ClusteringConfig], *,
                stride: float = DEFAULT_STRIDE, scale: float = DEFAULT_SCALE,
                offset: float = DEFAULT_OFFSET) -> Detections:
    """One image's detections from DetectNet_v2 outputs ``cov`` ``[C, H, W]`` and ``bbox`` ``[4C, H, W]``.

    ``configs`` is one config per class, or a single config for every class.
    """
    cov_a = np.asarray(cov)
    if cov_a.ndim != 3:
        raise ValueError(f"expected one image's cov [C, H, W], got shape {cov_a.shape}")
    num_classes = cov_a.shape[0]
    per_class = [configs] * num_classes if isinstance(configs, ClusteringConfig) else list(configs)
    if len(per_class) != num_classes:
        raise ValueError(f"{num_classes} classes but {len(per_class)} clustering configs")
    boxes, confidences, class_ids = [], [], []
    for class_id, config in enumerate(per_class):
        found = candidates(cov_a, bbox, class_id, coverage_threshold=config.coverage_threshold, stride=stride,
                           scale=scale, offset=offset)
        clusters = cluster_boxes(found.boxes, found.coverage, config)
        boxes.append(clusters.boxes)
        confidences.append(clusters.confidences)
        class_ids.append(np.full(len(clusters.confidences), class_id, dtype=np.intp))
    if not boxes:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.intp))
    return Detections(np.concatenate(boxes), np.concatenate(confidences), np.concatenate(class_ids))
