"""IoU-distance k-means on box shapes, for YOLOv3's nine anchors (000 §7.7).

Anchors only need a width and a height, so every box is reduced to ``(w, h)`` and compared with the
others as if both were centred at the origin. The distance is ``1 - IoU``: Euclidean distance would let
big boxes dominate the clustering, while IoU treats a 10 % mismatch the same at every size. Each centre
moves to the *median* of its members (as TAO's example does), which ignores a few odd labels.

Rule on pixel sizes: TLT 2.0 trains YOLOv3 on images already resized to the network input, and KITTI
labels carry no image size, so the ``(w, h)`` written in the labels are used as they are, in pixels.
The network input size (``-x``, ``-y``) only rejects a box larger than the image and scales the shapes
to ``[0, 1]`` while clustering; IoU and the median do not change under that scaling, so the anchors
printed are the pixel shapes the network sees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libtlt.errors import DataError, TltError, location
from libtlt.io.atomic import check_writable, write_text
from libtlt.io.kitti import LABEL_EXTENSION, read_label_lines

logger = logging.getLogger(__name__)

#: The YOLOv3 spec fields that take the three anchor groups, smallest first (000 §7.7).
GROUP_FIELDS = ("small_anchor_shape", "mid_anchor_shape", "big_anchor_shape")
#: The one field printed when the anchors cannot be split into three equal groups.
SINGLE_FIELD = "anchor_shapes"


# --------------------------------------------------------------------------------------- the algorithm


def iou_wh(boxes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``[N, K]`` IoU of each ``(w, h)`` box with each ``(w, h)`` centre, both centred at the origin."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(boxes[:, None, 0], centres[None, :, 0]) * np.minimum(boxes[:, None, 1], centres[None, :, 1])
    union = (boxes[:, 0] * boxes[:, 1])[:, None] + (centres[:, 0] * centres[:, 1])[None, :] - inter
    return np.asarray(inter / union)


@dataclass(frozen=True)
class Clustering:
    """One k-means result: ``centres`` ``[K, 2]``, each box's cluster, the mean IoU with it, steps run."""

    centres: np.ndarray
    assignments: np.ndarray
    mean_iou: float
    steps: int


def _reseed_empty(boxes: np.ndarray, centres: np.ndarray, assignments: np.ndarray, best: np.ndarray) -> None:
    """Give each empty cluster the box farthest from its own centre (in place).

    Why the farthest: that box is the worst served, so a new centre there helps the mean IoU most. A box
    that is alone in its cluster is never taken, so re-seeding cannot empty another cluster.
    """
    distance = 1.0 - best
    for cluster in range(len(centres)):
        if np.any(assignments == cluster):
            continue
        sizes = np.bincount(assignments, minlength=len(centres))
        candidates = np.where(sizes[assignments] > 1, distance, -np.inf)
        index = int(np.argmax(candidates))
        if not np.isfinite(candidates[index]):
            return
        centres[cluster] = boxes[index]
        assignments[index] = cluster
        distance[index] = -np.inf


def kmeans_once(boxes: np.ndarray, k: int, rng: np.random.Generator, max_steps: int) -> Clustering:
    """One k-means run from ``k`` distinct random box shapes; stops when no box changes cluster."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 2)
    shapes = np.unique(boxes, axis=0)
    if k < 1 or k > len(shapes):
        raise ValueError(f"k={k} needs 1 <= k <= {len(shapes)} distinct shapes")
    centres = shapes[rng.choice(len(shapes), size=k, replace=False)].copy()
    assignments: np.ndarray | None = None
    steps = 0
    while steps < max_steps:
        steps += 1
        ious = iou_wh(boxes, centres)
        new = np.argmax(ious, axis=1)
        if assignments is not None and np.array_equal(new, assignments):
            break
        assignments = new
        _reseed_empty(boxes, centres, assignments, ious[np.arange(len(boxes)), assignments])
        for cluster in range(k):
            members = boxes[assignments == cluster]
            if len(members):
                centres[cluster] = np.median(members, axis=0)
    ious = iou_wh(boxes, centres)
    final = np.argmax(ious, axis=1)
    return Clustering(centres, final, float(np.mean(ious[np.arange(len(boxes)), final])), steps)


def kmeans(boxes: np.ndarray, k: int, *, seed: int = 0, restarts: int = 10, max_steps: int = 10000) -> Clustering:
    """The best of ``restarts`` runs (highest mean IoU; the first on a tie), each with a seed derived from ``seed``.

    Why restarts: k-means only finds a local optimum that depends on the first centres.
    """
    best: Clustering | None = None
    for child in np.random.SeedSequence(seed).spawn(restarts):
        result = kmeans_once(boxes, k, np.random.default_rng(child), max_steps)
        if best is None or result.mean_iou > best.mean_iou:
            best = result
    if best is None:
        raise ValueError("restarts must be at least 1")
    return best


def sort_by_area(centres: np.ndarray) -> np.ndarray:
    """Centres from the smallest area to the largest (then by width), the order the spec's groups take."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    order = np.lexsort((centres[:, 1], centres[:, 0], centres[:, 0] * centres[:, 1]))
    return centres[order]


def format_shapes(shapes: Iterable[Sequence[float]]) -> str:
    """``"[(12.00, 15.00), ...]"``: the quoted list syntax of the YOLOv3 spec, 2 decimals."""
    return '"[' + ", ".join(f"({w:.2f}, {h:.2f})" for w, h in shapes) + ']"'


def anchor_lines(centres: np.ndarray) -> list[str]:
    """The spec lines for ``yolo_config``: three groups by area when K divides by 3, else one list."""
    ordered = sort_by_area(centres)
    if len(ordered) % 3:
        return [f"{SINGLE_FIELD}: {format_shapes(ordered)}"]
    third = len(ordered) // 3
    return [f"{field}: {format_shapes(ordered[i * third:(i + 1) * third])}" for i, field in enumerate(GROUP_FIELDS)]


# --------------------------------------------------------------------------------------- the labels


@dataclass
class BoxSet:
    """The ``(w, h)`` pixel shapes read from the labels, and how many boxes were left out and why."""

    shapes: np.ndarray
    files: int = 0
    degenerate: int = 0
    too_small: int = 0


def read_boxes(label_dirs: Sequence[str | Path], width: float, height: float, min_x: float = 0.0,
               min_y: float = 0.0) -> BoxSet:
    """Every box of every ``*.txt`` in ``label_dirs`` as ``(w, h)`` pixels.

    A box with ``w <= 0`` or ``h <= 0`` is counted and skipped (it has no shape), as is one narrower
    than ``min_x`` or lower than ``min_y``; a box wider or taller than the ``width`` × ``height``
    image is an error naming ``file:line``, since the labels must be for images at the network size.
    """
    shapes: list[tuple[float, float]] = []
    found = BoxSet(np.zeros((0, 2)))
    for folder in map(Path, label_dirs):
        if not folder.is_dir():
            raise DataError("label directory not found", location=folder)
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == LABEL_EXTENSION)
        if not files:
            raise DataError(f"no label files (*{LABEL_EXTENSION}) in the label directory", location=folder)
        found.files += len(files)
        for path in files:
            for lineno, obj in read_label_lines(path):
                x1, y1, x2, y2 = obj.bbox
                w, h = x2 - x1, y2 - y1
                if w <= 0 or h <= 0:
                    found.degenerate += 1
                    continue
                if w > width or h > height:
                    raise DataError(f"box {w:g}x{h:g} is larger than the {width:g}x{height:g} image "
                                    f"(labels must be for images at the network input size, -x/-y)",
                                    location=location(path, lineno))
                if w < min_x or h < min_y:
                    found.too_small += 1
                    continue
                shapes.append((w, h))
    found.shapes = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)
    return found


# --------------------------------------------------------------------------------------- the tool


def check_options(num_clusters: int, width: float, height: float, max_steps: int, restarts: int,
                  min_x: float, min_y: float, seed: int = 0) -> None:
    """Reject impossible option values as one-line user errors (before any label is read)."""
    if num_clusters < 1:
        raise TltError(f"-n/--num_clusters must be at least 1, got {num_clusters}")
    for flag, value in (("-x/--image_width", width), ("-y/--image_height", height)):
        if not value > 0:
            raise TltError(f"{flag} must be greater than 0, got {value:g}")
    if max_steps < 1:
        raise TltError(f"--max_steps must be at least 1, got {max_steps}")
    if restarts < 1:
        raise TltError(f"--restarts must be at least 1, got {restarts}")
    for flag, value in (("--min_x", min_x), ("--min_y", min_y)):
        if value < 0:
            raise TltError(f"{flag} must not be negative, got {value:g}")
    if seed < 0:
        raise TltError(f"--seed must not be negative, got {seed}")


def run(label_dirs: Sequence[str | Path], num_clusters: int, width: float, height: float, *,
        max_steps: int = 10000, min_x: float = 0.0, min_y: float = 0.0, seed: int = 0, restarts: int = 10,
        output: str | Path | None = None) -> list[str]:
    """The whole tool: read the boxes, cluster them, return (and optionally write) the spec lines."""
    check_options(num_clusters, width, height, max_steps, restarts, min_x, min_y, seed)
    if output is not None:
        check_writable(output)
    found = read_boxes(label_dirs, width, height, min_x, min_y)
    logger.info("Read %d box(es) from %d label file(s)", len(found.shapes), found.files)
    if found.degenerate:
        logger.warning("Skipped %d degenerate box(es) (width or height <= 0)", found.degenerate)
    if found.too_small:
        logger.info("Skipped %d box(es) smaller than --min_x %g / --min_y %g", found.too_small, min_x, min_y)
    distinct = len(np.unique(found.shapes, axis=0))
    if num_clusters > len(found.shapes):
        raise DataError(f"{num_clusters} clusters requested but only {len(found.shapes)} usable box(es) "
                        f"in the labels", location=", ".join(map(str, label_dirs)))
    if num_clusters > distinct:
        raise DataError(f"{num_clusters} clusters requested but the boxes have only {distinct} distinct shape(s)",
                        location=", ".join(map(str, label_dirs)))
    scale = np.array([width, height], dtype=np.float64)
    best = kmeans(found.shapes / scale, num_clusters, seed=seed, restarts=restarts, max_steps=max_steps)
    logger.info("Average IoU of the boxes with their anchors: %.4f", best.mean_iou)
    if num_clusters % 3:
        logger.warning("%d anchors do not split into YOLOv3's three groups (small/mid/big); "
                       "printing them in one list (use a multiple of 3, e.g. -n 9)", num_clusters)
    lines = anchor_lines(best.centres * scale)
    if output is not None:
        write_text(output, "\n".join(lines) + "\n")
        logger.info("Wrote the anchor shapes to %s", output)
    return lines
