"""DetectNet_v2's NumPy algorithms at KITTI-like sizes: 960×544 input (60×34 grid, stride 16), 3 classes.

* ``rasterize``: ground-truth targets of one image with 10 boxes;
* ``postprocess``: one image's clustering from network-like outputs with about 1000 candidate cells;
* ``dbscan_3000``: one class with 3000 candidate boxes (a worst case: every cell of a crowded class);
* ``evaluate``: AP over 500 images with 10 detections and 8 ground-truth boxes each;
* ``coco_500_images``: the same images through pycocotools (``libtlt.metrics.coco``), the extra report
  tlt-evaluate adds for every box detector: what it costs next to the VOC AP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from libtlt.layers.bbox_rasterizer import TargetClassConfig, rasterize
from libtlt.layers.clustering import ClusteringConfig, dbscan, postprocess
from libtlt.metrics.coco import CocoEvaluator
from libtlt.metrics.detection import DetectionEvaluator

GRID_H, GRID_W, CLASSES = 34, 60, 3
CONFIGS = [TargetClassConfig()] * CLASSES


def _boxes(rng: np.random.Generator, count: int, low: float = 16, high: float = 240) -> np.ndarray:
    x1, y1 = rng.uniform(0, 900, count), rng.uniform(0, 500, count)
    return np.stack([x1, y1, x1 + rng.uniform(low, high, count), y1 + rng.uniform(low, high * 0.7, count)], axis=1)


def test_rasterize_960x544(benchmark: Any) -> None:
    rng = np.random.default_rng(0)
    boxes, ids = _boxes(rng, 10), rng.integers(0, CLASSES, 10)
    benchmark(rasterize, boxes, ids, num_classes=CLASSES, grid_h=GRID_H, grid_w=GRID_W, class_configs=CONFIGS)


def _network_like_outputs() -> tuple[np.ndarray, np.ndarray, int]:
    """Targets of 24 objects with wide coverage ellipses, plus noise: about 1000 cells above 0.005."""
    rng = np.random.default_rng(1)
    wide = [TargetClassConfig(0.5, 0.5, 1.0, 1.0, 1.0)] * CLASSES
    targets = rasterize(_boxes(rng, 24, 48, 260), rng.integers(0, CLASSES, 24), num_classes=CLASSES,
                        grid_h=GRID_H, grid_w=GRID_W, class_configs=wide, deadzone_radius=0.0)
    cov = np.clip(targets.cov + rng.normal(0, 0.002, targets.cov.shape) * (targets.cov > 0), 0, 1)
    bbox = targets.bbox + rng.normal(0, 0.02, targets.bbox.shape)
    return cov.astype(np.float32), bbox.astype(np.float32), int((cov > 0.005).sum())


@pytest.mark.parametrize("algorithm", ["DBSCAN", "NMS", "HYBRID"])
def test_postprocess_1000_cells(benchmark: Any, algorithm: str) -> None:
    cov, bbox, cells = _network_like_outputs()
    config = ClusteringConfig(coverage_threshold=0.005, dbscan_eps=0.15, dbscan_min_samples=0.05,
                              clustering_algorithm=algorithm)
    benchmark(postprocess, cov, bbox, config)
    benchmark.extra_info["candidate_cells"] = cells


def test_dbscan_3000(benchmark: Any) -> None:
    rng = np.random.default_rng(2)
    objects = _boxes(rng, 20, 30, 200)
    boxes = objects[rng.integers(0, 20, 3000)] + rng.normal(0, 2, (3000, 4))
    benchmark(dbscan, boxes, rng.uniform(0.01, 1, 3000), eps=0.15, min_samples=0.05)


def _evaluation_images() -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(3)
    images = []
    for _ in range(500):
        gt = _boxes(rng, 8)
        det = np.concatenate([gt[:6] + rng.normal(0, 4, (6, 4)), _boxes(rng, 4)])
        images.append((det, rng.uniform(0, 1, 10), rng.integers(0, CLASSES, 10), gt, rng.integers(0, CLASSES, 8)))
    return images


def test_evaluate_500_images(benchmark: Any) -> None:
    images = _evaluation_images()

    def evaluate() -> float:
        evaluator = DetectionEvaluator(["car", "cyclist", "pedestrian"], iou_thresholds=0.5, mode="INTEGRATE")
        for image in images:
            evaluator.add_image(*image)
        return evaluator.result().mean_average_precision

    benchmark(evaluate)


def test_coco_500_images(benchmark: Any) -> None:
    images = _evaluation_images()

    def evaluate() -> float:
        evaluator = CocoEvaluator(["car", "cyclist", "pedestrian"])
        for image in images:
            evaluator.add_image(*image)
        return evaluator.result()["AP50"]

    benchmark(evaluate)
