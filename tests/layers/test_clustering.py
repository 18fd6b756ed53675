"""DetectNet_v2 post-processing: REFERENCE.md check value, DBSCAN against a brute-force reference, NMS, HYBRID,
filters, spec messages, KITTI output line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.io.kitti import make_object
from libtlt.layers.boxes import iou_matrix, nms
from libtlt.layers.clustering import ClusteringConfig, cluster_boxes, dbscan, postprocess
from libtlt.spec.protos import detectnet_v2_pb2

CHECK = ClusteringConfig(coverage_threshold=0.005, dbscan_eps=0.15, dbscan_min_samples=1.0)
CHECK_BOXES = np.array([[0, 0, 16, 16]] * 25 + [[0.1, 0.1, 16.1, 16.1]] * 25, dtype=np.float64)


def test_reference_check_value() -> None:
    result = cluster_boxes(CHECK_BOXES, np.ones(50), CHECK)
    np.testing.assert_allclose(result.boxes, [[0.05, 0.05, 16.05, 16.05]], rtol=0, atol=1e-12)
    assert result.confidences.tolist() == [50.0]
    mean = cluster_boxes(CHECK_BOXES, np.ones(50), ClusteringConfig(dbscan_eps=0.15, dbscan_min_samples=1.0,
                                                                     confidence_model="mean_cov"))
    assert mean.confidences.tolist() == [1.0]


def _encode(boxes: np.ndarray, grid_h: int, grid_w: int) -> np.ndarray:
    """bbox channels of one class predicting ``boxes[k]`` at the k-th cell (row-major)."""
    bbox = np.zeros((4, grid_h, grid_w))
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        i, j = divmod(k, grid_w)
        gx, gy = j * 16 + 0.5, i * 16 + 0.5
        bbox[:, i, j] = [(gx - x1) / 35, (gy - y1) / 35, (x2 - gx) / 35, (y2 - gy) / 35]
    return bbox


def test_reference_check_value_from_network_outputs_to_kitti_line() -> None:
    cov = np.zeros((2, 5, 10))
    cov[0].flat[:50] = 1.0
    bbox = np.concatenate([_encode(CHECK_BOXES, 5, 10), np.zeros((4, 5, 10))])
    detections = postprocess(cov, bbox, CHECK)
    assert detections.class_ids.tolist() == [0]
    np.testing.assert_allclose(detections.boxes, [[0.05, 0.05, 16.05, 16.05]], atol=1e-9)
    np.testing.assert_allclose(detections.confidences, [50.0])
    line = make_object("car", detections.boxes[0], float(detections.confidences[0])).to_line()
    assert line == "car 0.00 0 0.00 0.05 0.05 16.05 16.05 0.00 0.00 0.00 0.00 0.00 0.00 0.00 50"
    assert detections.of_class(1).boxes.shape == (0, 4)


def _brute_force_dbscan(boxes: np.ndarray, weights: np.ndarray, eps: float,
                        min_samples: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Textbook DBSCAN on the dense 1 − IoU matrix (region growing from each unvisited core point)."""
    n = len(boxes)
    distance = 1.0 - iou_matrix(boxes, boxes)
    np.fill_diagonal(distance, 0.0)
    near = distance <= eps
    core = (near * weights[None, :]).sum(axis=1) >= min_samples - 1e-9 * abs(min_samples)
    labels = np.full(n, -1)
    cluster = 0
    for start in range(n):
        if not core[start] or labels[start] >= 0:
            continue
        labels[start] = cluster
        stack = [start]
        while stack:
            point = stack.pop()
            for other in np.nonzero(near[point] & core & (labels < 0))[0]:
                labels[other] = cluster
                stack.append(int(other))
        cluster += 1
    return labels, core, near


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.floats(0.02, 0.98), st.floats(0.0, 3.0))
def test_dbscan_matches_brute_force(seed: int, n: int, eps: float, min_samples: float) -> None:
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 60, (n, 2)).round(1)  # rounding makes exact duplicates and ties likely
    size = rng.uniform(2, 30, (n, 2)).round(1)
    boxes = np.concatenate([corner, corner + size], axis=1)
    weights = rng.uniform(0, 1, n)
    labels = dbscan(boxes, weights, eps=eps, min_samples=min_samples)
    expected, core, near = _brute_force_dbscan(boxes, weights, eps, min_samples)
    np.testing.assert_array_equal(labels[core], expected[core])
    iou = iou_matrix(boxes, boxes)
    for point in np.nonzero(~core)[0]:
        anchors = np.nonzero(near[point] & core)[0]
        if len(anchors) == 0:
            assert labels[point] == -1
        else:  # a border point joins its highest-IoU core neighbour's cluster
            best = anchors[np.argmax(iou[point, anchors])]
            assert labels[point] == expected[best]


def test_dbscan_weighted_core_test() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    assert dbscan(boxes, [0.3, 0.3], eps=0.1, min_samples=0.5).tolist() == [0, 0]
    assert dbscan(boxes, [0.3, 0.3], eps=0.1, min_samples=0.7).tolist() == [-1, -1]
    # Ten coverages of 0.1 reach 1.0 despite rounding.
    assert (dbscan(np.repeat(boxes[:1], 10, axis=0), [0.1] * 10, eps=0.1, min_samples=1.0) == 0).all()
    # eps ≥ 1 puts everything, even disjoint boxes, in one neighbourhood.
    far = np.array([[0, 0, 1, 1], [100, 100, 101, 101]], dtype=np.float64)
    assert dbscan(far, [0.5, 0.6], eps=1.0, min_samples=1.0).tolist() == [0, 0]
    assert dbscan(far, [0.5, 0.6], eps=0.99, min_samples=1.0).tolist() == [-1, -1]
    assert dbscan(np.zeros((0, 4)), [], eps=0.5, min_samples=0.1).shape == (0,)


def _brute_force_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda k: (-scores[k], k))
    iou = iou_matrix(boxes, boxes)
    kept: list[int] = []
    for k in order:
        if all(iou[k, m] <= threshold for m in kept):
            kept.append(k)
    return kept


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 40), st.floats(0.0, 1.0))
def test_nms_matches_brute_force(seed: int, n: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 50, (n, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(1, 30, (n, 2))], axis=1)
    scores = rng.integers(0, 5, n) / 4  # ties
    assert nms(boxes, scores, threshold).tolist() == _brute_force_nms(boxes, scores, threshold)


def test_nms_mode() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 70], [0, 0, 10, 10.5]], dtype=np.float64)
    coverage = np.array([0.9, 0.8, 0.3, 0.001])
    config = ClusteringConfig(clustering_algorithm="NMS", nms_iou_threshold=0.5, coverage_threshold=0.005)
    result = cluster_boxes(boxes, coverage, config)
    np.testing.assert_array_equal(result.boxes, boxes[[0, 2]])
    assert result.confidences.tolist() == [0.9, 0.3]
    strict = cluster_boxes(boxes, coverage, ClusteringConfig(clustering_algorithm=1, nms_iou_threshold=0.5,
                                                             nms_confidence_threshold=0.5))
    assert strict.confidences.tolist() == [0.9]


def test_hybrid_mode_runs_nms_inside_each_cluster() -> None:
    # Two DBSCAN clusters (eps 0.1) whose boxes overlap each other with IoU ≈ 0.67 > nms_iou_threshold 0.2:
    # NMS inside each cluster keeps one box per cluster, they do not suppress each other.
    a = np.array([[0, 0, 100, 100], [1, 0, 101, 100]], dtype=np.float64)
    b = a + [20, 0, 20, 0]
    boxes = np.concatenate([a, b])
    coverage = np.array([0.5, 0.6, 0.7, 0.4])
    config = ClusteringConfig(clustering_algorithm="HYBRID", dbscan_eps=0.1, dbscan_min_samples=0.5,
                              nms_iou_threshold=0.2)
    assert dbscan(boxes, coverage, eps=0.1, min_samples=0.5).tolist() == [0, 0, 1, 1]
    result = cluster_boxes(boxes, coverage, config)
    np.testing.assert_array_equal(result.boxes, boxes[[2, 1]])
    assert result.confidences.tolist() == [0.7, 0.6]
    # Plain NMS over all four keeps only the best; DBSCAN keeps both clusters as merged boxes.
    assert len(cluster_boxes(boxes, coverage, ClusteringConfig(clustering_algorithm="NMS",
                                                               nms_iou_threshold=0.2)).boxes) == 1
    merged = cluster_boxes(boxes, coverage, ClusteringConfig(dbscan_eps=0.1, dbscan_min_samples=0.5))
    np.testing.assert_allclose(merged.confidences, [1.1, 1.1])
    # A cluster below dbscan_confidence_threshold gives no HYBRID output.
    weak = cluster_boxes(boxes, [0.5, 0.6, 0.3, 0.2], ClusteringConfig(
        clustering_algorithm="HYBRID", dbscan_eps=0.1, dbscan_min_samples=0.5, dbscan_confidence_threshold=1.0))
    np.testing.assert_array_equal(weak.boxes, boxes[[1]])


def test_filters_height_confidence_and_coverage() -> None:
    boxes = np.array([[0, 0, 50, 19]] * 3 + [[100, 100, 150, 200]] * 2, dtype=np.float64)
    coverage = np.array([0.5, 0.5, 0.5, 0.2, 0.004])
    result = cluster_boxes(boxes, coverage, ClusteringConfig(dbscan_min_samples=0.1))
    np.testing.assert_allclose(result.confidences, [1.5, 0.2])  # the 0.004 cell is below coverage_threshold
    tall = cluster_boxes(boxes, coverage, ClusteringConfig(dbscan_min_samples=0.1, minimum_bounding_box_height=20))
    np.testing.assert_allclose(tall.boxes, [[100, 100, 150, 200]])
    confident = cluster_boxes(boxes, coverage, ClusteringConfig(dbscan_min_samples=0.1,
                                                                dbscan_confidence_threshold=0.9))
    np.testing.assert_allclose(confident.confidences, [1.5])
    noise = cluster_boxes(boxes, coverage, ClusteringConfig(dbscan_min_samples=1.0))
    np.testing.assert_allclose(noise.confidences, [1.5])  # the 0.2 cell alone is not a core point


def test_weighted_mean_box() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], dtype=np.float64)
    result = cluster_boxes(boxes, [0.75, 0.25], ClusteringConfig(dbscan_eps=0.5, dbscan_min_samples=0.1))
    np.testing.assert_allclose(result.boxes, [[0.25, 0.25, 10.25, 10.25]])


def test_empty_inputs() -> None:
    for algorithm in ("DBSCAN", "NMS", "HYBRID"):
        config = ClusteringConfig(clustering_algorithm=algorithm)
        result = cluster_boxes(np.zeros((0, 4)), np.zeros(0), config)
        assert result.boxes.shape == (0, 4) and result.confidences.shape == (0,)
        detections = postprocess(np.zeros((3, 4, 5)), np.zeros((12, 4, 5)), config)
        assert detections.boxes.shape == (0, 4) and detections.class_ids.shape == (0,)


def test_per_class_configs_and_class_ids() -> None:
    cov = np.zeros((2, 5, 10))
    cov[1].flat[:50] = 1.0
    bbox = np.concatenate([np.zeros((4, 5, 10)), _encode(CHECK_BOXES, 5, 10)])
    loose = ClusteringConfig(coverage_threshold=0.005, dbscan_eps=0.15, dbscan_min_samples=1.0)
    detections = postprocess(cov, bbox, [CHECK, loose])
    assert detections.class_ids.tolist() == [1]
    with pytest.raises(ValueError, match="2 classes but 1 clustering configs"):
        postprocess(cov, bbox, [CHECK])


def test_config_from_spec_message() -> None:
    message = detectnet_v2_pb2.ClusteringConfig(coverage_threshold=0.005, dbscan_eps=0.3, dbscan_min_samples=0.05,
                                                 minimum_bounding_box_height=4)
    config = ClusteringConfig.from_spec(message)
    assert config.clustering_algorithm == "DBSCAN"
    assert config.dbscan_confidence_threshold == pytest.approx(0.1)  # the proto default
    assert config.nms_iou_threshold == pytest.approx(0.2)
    message.clustering_algorithm = detectnet_v2_pb2.ClusteringConfig.HYBRID
    handler = ClusteringConfig.from_spec(message, confidence_model="mean_cov", confidence_threshold=0.9)
    assert handler.clustering_algorithm == "HYBRID"
    assert handler.confidence_model == "mean_cov"
    assert handler.dbscan_confidence_threshold == 0.9


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"clustering_algorithm": "KMEANS"}, "clustering_algorithm"),
    ({"clustering_algorithm": 3}, "clustering_algorithm"),
    ({"confidence_model": "max_cov"}, "confidence_model"),
])
def test_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClusteringConfig(**kwargs)  # type: ignore[arg-type]


def test_iou_matrix() -> None:
    iou = iou_matrix([[0, 0, 2, 2], [5, 5, 5, 9]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 9]])
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]])
