"""The IoU-distance k-means of tlt-kmeans on hand-made box sets, where the right anchors are known."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from libtlt.errors import DataError, TltError
from tlt_kmeans.kmeans import (
    _reseed_empty,
    anchor_lines,
    format_shapes,
    iou_wh,
    kmeans,
    kmeans_once,
    read_boxes,
    run,
    sort_by_area,
)

GROUPS = ((10.0, 10.0), (50.0, 20.0), (100.0, 100.0))


def jittered_groups() -> np.ndarray:
    """Five boxes around each of GROUPS, symmetric so that each group's median is the group itself."""
    boxes = []
    for w, h in GROUPS:
        boxes += [(w, h), (w - 1, h), (w + 1, h), (w, h - 1), (w, h + 1)]
    return np.array(boxes)


def test_iou_by_hand() -> None:
    # (2, 3) and (3, 2): intersection 2·2 = 4, union 6 + 6 - 4 = 8.
    assert iou_wh(np.array([[2, 3]]), np.array([[3, 2]]))[0, 0] == pytest.approx(0.5)
    # (4, 4) holds (2, 2): 4 / 16.
    assert iou_wh(np.array([[4, 4]]), np.array([[2, 2]]))[0, 0] == pytest.approx(0.25)
    # (10, 1) and (1, 10): 1 / (10 + 10 - 1).
    assert iou_wh(np.array([[10, 1]]), np.array([[1, 10]]))[0, 0] == pytest.approx(1 / 19)
    table = iou_wh(np.array([[1, 1], [2, 2], [3, 1]]), np.array([[1, 1], [2, 2]]))
    assert table.shape == (3, 2)
    np.testing.assert_allclose(table, [[1, 0.25], [0.25, 1], [1 / 3, 2 / 5]])


def test_identical_groups_give_exact_centres_and_iou_one() -> None:
    boxes = np.array([shape for shape in GROUPS for _ in range(5)])
    for seed in range(5):
        result = kmeans(boxes, 3, seed=seed, restarts=2)
        assert sorted(map(tuple, result.centres.tolist())) == sorted(GROUPS)
        assert result.mean_iou == 1.0


def test_tight_groups_give_their_centres() -> None:
    result = kmeans(jittered_groups(), 3, seed=0, restarts=10)
    assert sorted(map(tuple, result.centres.tolist())) == sorted(GROUPS)
    assert 0.85 < result.mean_iou < 1.0
    # Every box sits in the cluster of its own group.
    labels = result.assignments.reshape(3, 5)
    assert all(len(set(row)) == 1 for row in labels) and len({row[0] for row in labels}) == 3


def test_centre_is_the_median_not_the_mean() -> None:
    boxes = np.array([[1.0, 1.0], [2.0, 2.0], [100.0, 100.0]])
    result = kmeans_once(boxes, 1, np.random.default_rng(0), max_steps=100)
    np.testing.assert_array_equal(result.centres, [[2.0, 2.0]])  # the mean would be 34.33
    assert result.steps == 2  # one update, then one step that changes no assignment
    # Median per coordinate: widths and heights are taken independently.
    boxes = np.array([[1.0, 9.0], [5.0, 7.0], [3.0, 8.0], [4.0, 6.0]])
    result = kmeans_once(boxes, 1, np.random.default_rng(0), max_steps=100)
    np.testing.assert_array_equal(result.centres, [[3.5, 7.5]])


def test_max_steps_bounds_the_iterations() -> None:
    result = kmeans_once(jittered_groups(), 3, np.random.default_rng(0), max_steps=1)
    assert result.steps == 1 and result.centres.shape == (3, 2)


def test_same_seed_same_anchors() -> None:
    boxes = np.random.default_rng(7).uniform(5, 200, size=(300, 2))
    first = kmeans(boxes, 9, seed=3, restarts=3)
    second = kmeans(boxes, 9, seed=3, restarts=3)
    np.testing.assert_array_equal(first.centres, second.centres)
    np.testing.assert_array_equal(first.assignments, second.assignments)
    assert first.mean_iou == second.mean_iou


def test_restarts_keep_the_best() -> None:
    boxes = np.random.default_rng(11).uniform(5, 200, size=(200, 2))
    restarts = 6
    singles = [kmeans_once(boxes, 5, np.random.default_rng(child), 10000).mean_iou
               for child in np.random.SeedSequence(4).spawn(restarts)]
    best = kmeans(boxes, 5, seed=4, restarts=restarts)
    assert best.mean_iou == max(singles)
    assert best.mean_iou >= kmeans(boxes, 5, seed=4, restarts=1).mean_iou


def test_empty_cluster_takes_the_farthest_box() -> None:
    boxes = np.array([[10.0, 10.0], [11.0, 10.0], [10.0, 30.0], [50.0, 50.0]])
    centres = np.array([[10.0, 10.0], [500.0, 500.0], [50.0, 50.0]])
    ious = iou_wh(boxes, centres)
    assignments = np.array([0, 0, 0, 2])  # cluster 1 is empty
    _reseed_empty(boxes, centres, assignments, ious[np.arange(4), assignments])
    np.testing.assert_array_equal(centres[1], [10.0, 30.0])  # IoU 1/3 with (10, 10): the worst served
    np.testing.assert_array_equal(assignments, [0, 0, 1, 2])


def test_a_lone_box_is_not_taken_from_its_cluster() -> None:
    boxes = np.array([[10.0, 10.0], [90.0, 10.0]])
    centres = np.array([[10.0, 10.0], [90.0, 10.0], [1.0, 1.0]])
    assignments = np.array([0, 1])
    _reseed_empty(boxes, centres, assignments, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(assignments, [0, 1])


def test_more_clusters_than_shapes_is_refused() -> None:
    with pytest.raises(ValueError):
        kmeans_once(np.array([[1.0, 1.0], [1.0, 1.0]]), 2, np.random.default_rng(0), 10)


def test_anchor_lines_group_by_area() -> None:
    centres = np.array([[100, 100], [12, 15], [35, 25], [20, 31], [50, 20], [60, 61], [40, 40], [200, 150],
                        [150.004, 300]])
    lines = anchor_lines(centres)
    assert lines == [
        'small_anchor_shape: "[(12.00, 15.00), (20.00, 31.00), (35.00, 25.00)]"',
        'mid_anchor_shape: "[(50.00, 20.00), (40.00, 40.00), (60.00, 61.00)]"',
        'big_anchor_shape: "[(100.00, 100.00), (200.00, 150.00), (150.00, 300.00)]"',
    ]
    assert anchor_lines(centres[:4]) == ['anchor_shapes: "[(12.00, 15.00), (20.00, 31.00), (35.00, 25.00), '
                                         '(100.00, 100.00)]"']
    np.testing.assert_array_equal(sort_by_area(np.array([[4, 1], [2, 2], [1, 1]])), [[1, 1], [2, 2], [4, 1]])
    assert format_shapes([(1.005, 2)]) in ('"[(1.00, 2.00)]"', '"[(1.01, 2.00)]"')


def write_labels(folder: Path, name: str, boxes: Sequence[Sequence[float]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f"car 0.00 0 0.00 {x1} {y1} {x2} {y2} 0 0 0 0 0 0 0\n" for x1, y1, x2, y2 in boxes))
    return path


def test_read_boxes_counts_what_it_skips(tmp_path: Path) -> None:
    write_labels(tmp_path / "a", "1.txt", [(0, 0, 10, 20), (5, 5, 5, 9), (9, 9, 3, 12), (0, 0, 2, 50)])
    write_labels(tmp_path / "b", "2.txt", [(10, 10, 40, 30)])
    (tmp_path / "b" / "notes.md").write_text("not a label file")
    found = read_boxes([tmp_path / "a", tmp_path / "b"], 100, 100, min_x=3)
    np.testing.assert_array_equal(found.shapes, [[10, 20], [30, 20]])
    assert (found.files, found.degenerate, found.too_small) == (2, 2, 1)


def test_read_boxes_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = write_labels(tmp_path / "a", "1.txt", [(0, 0, 10, 10), (0, 0, 120, 10)])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:2: box 120x10 is larger than the 100x100 image"):
        read_boxes([tmp_path / "a"], 100, 100)
    path.write_text("car 0 0 0 1 1 5 5 0 0 0 0 0 0 0\n\ncar 1 2 3\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:3: expected 15 fields"):
        read_boxes([tmp_path / "a"], 100, 100)
    with pytest.raises(DataError, match="label directory not found"):
        read_boxes([tmp_path / "missing"], 100, 100)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no label files"):
        read_boxes([tmp_path / "empty"], 100, 100)


def test_run_scales_back_to_pixels(tmp_path: Path) -> None:
    boxes = [(0, 0, w, h) for w, h in GROUPS for _ in range(3)]
    write_labels(tmp_path / "labels", "1.txt", boxes)
    lines = run([tmp_path / "labels"], 3, 416, 256, output=tmp_path / "out" / "anchors.txt")
    assert lines == ['small_anchor_shape: "[(10.00, 10.00)]"', 'mid_anchor_shape: "[(50.00, 20.00)]"',
                     'big_anchor_shape: "[(100.00, 100.00)]"']
    assert (tmp_path / "out" / "anchors.txt").read_text() == "\n".join(lines) + "\n"
    (single,) = run([tmp_path / "labels"], 2, 416, 256)  # not a multiple of 3: one list
    field, value = single.split(": ", 1)
    assert field == "anchor_shapes" and len(ast.literal_eval(ast.literal_eval(value))) == 2
    with pytest.raises(TltError, match="-n/--num_clusters must be at least 1"):
        run([tmp_path / "labels"], 0, 416, 256)
    with pytest.raises(DataError, match="only 3 distinct shape"):
        run([tmp_path / "labels"], 4, 416, 256)
    with pytest.raises(DataError, match="only 9 usable box"):
        run([tmp_path / "labels"], 10, 416, 256)
