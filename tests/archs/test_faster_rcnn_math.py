"""FasterRCNN numeric core: the reference's check values (DETECTORS-TWO-STAGE.md §1, §7), TensorFlow vs NumPy
agreement of the proposal layer and ProposalTarget, sampling invariants and edge cases. Tiny tensors only."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from libtlt.archs.faster_rcnn import decoding, losses, proposals, rcnn_targets, rpn_targets
from libtlt.archs.faster_rcnn.anchors import anchor_shapes, grid_anchors
from libtlt.layers import boxes as box_ops

# ------------------------------------------------------------------------------------------------------ anchors


def test_anchor_shapes_order_sizes_outer_ratios_inner() -> None:
    shapes = anchor_shapes([64, 128], [1.0, 0.5, 2.0])
    assert shapes.dtype == np.float32 and shapes.shape == (6, 2)
    np.testing.assert_allclose(shapes[1], [64 * math.sqrt(0.5), 64 / math.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(shapes[3], [128, 128])


def test_grid_anchors_reference_values_and_hwa_order() -> None:
    anchors = grid_anchors((24, 78), 16, [64, 128, 256], [1.0, 0.5, 2.0])
    assert anchors.dtype == np.float32 and anchors.shape == (16848, 4)
    np.testing.assert_allclose(anchors[0], [-24, -24, 40, 40])
    np.testing.assert_allclose(anchors[1], [-14.6274, -37.2548, 30.6274, 53.2548], atol=1e-4)
    np.testing.assert_allclose(anchors[2], [-37.2548, -14.6274, 53.2548, 30.6274], atol=1e-4)
    # (H, W, A): the next 9 rows are cell (row 0, column 1), i.e. centre (24, 8); row 1 starts after 78 cells.
    np.testing.assert_allclose(anchors[9], [-8, -24, 56, 40])
    np.testing.assert_allclose(anchors[78 * 9], [-24, -8, 40, 56])
    grid = anchors.reshape(24, 78, 9, 4)
    np.testing.assert_allclose((grid[5, 7, 4, :2] + grid[5, 7, 4, 2:]) / 2, [16 * 7.5, 16 * 5.5])


# -------------------------------------------------------------------------------------------------- RPN targets

ANCHORS_128 = grid_anchors((8, 8), 16, [64], [1.0])  # one anchor per cell, centres 8 + 16·c
GT_128 = np.array([[44.0, 44.0, 108.0, 108.0]])


def test_rpn_iou_plus_one_reference_values() -> None:
    diagonal = ANCHORS_128.reshape(8, 8, 4)[[2, 3, 4, 5], [2, 3, 4, 5]]
    np.testing.assert_allclose(box_ops.iou_matrix(GT_128, diagonal, plus_one=True)[0],
                               [0.11053, 0.31518, 0.78685, 0.49796], atol=5e-6)
    valid = rpn_targets.valid_anchors(ANCHORS_128, (128, 128)).reshape(8, 8)
    assert valid[2:6, 2:6].all() and valid.sum() == 16


def test_rpn_targets_reference_example() -> None:
    labels, deltas = rpn_targets.rpn_targets(ANCHORS_128, GT_128, (128, 128), min_overlap=0.3, max_overlap=0.7,
                                             mini_batch=256, rng=np.random.default_rng(0))
    assert labels.dtype == np.int8 and deltas.dtype == np.float32
    grid, d = labels.reshape(8, 8), deltas.reshape(8, 8, 4)
    assert [grid[i, i] for i in range(2, 6)] == [0, -1, 1, -1]
    assert grid[~rpn_targets.valid_anchors(ANCHORS_128, (128, 128)).reshape(8, 8)].tolist() == [-1] * 48
    assert np.argwhere(grid == 1).tolist() == [[4, 4]]
    np.testing.assert_allclose(ANCHORS_128.reshape(8, 8, 4)[4, 4], [40, 40, 104, 104])
    np.testing.assert_allclose(d[4, 4], [4 / 65, 4 / 65, 0, 0], atol=1e-7)
    assert not deltas[labels != 1].any()


def test_rpn_forced_best_anchor_for_large_gt_and_no_gt() -> None:
    big = np.array([[0.0, 0.0, 127.0, 127.0]])  # larger than any anchor: best IoU 0.25 < 0.7
    labels, deltas = rpn_targets.rpn_targets(ANCHORS_128, big, (128, 128), min_overlap=0.3, max_overlap=0.7,
                                             mini_batch=256, rng=np.random.default_rng(0))
    assert (labels == 1).sum() == 1 and (labels == 0).sum() == 15
    forced = int(np.flatnonzero(labels == 1)[0])
    assert forced == 2 * 8 + 2  # all 16 valid anchors tie at IoU 0.25: the first in (H, W, A) order
    np.testing.assert_allclose(deltas[forced], rpn_targets.encode(big, ANCHORS_128[forced:forced + 1])[0],
                               rtol=1e-6)
    labels, deltas = rpn_targets.rpn_targets(ANCHORS_128, np.zeros((3, 4)), (128, 128), min_overlap=0.3,
                                             max_overlap=0.7, mini_batch=8, rng=np.random.default_rng(0))
    assert (labels == 0).sum() == 8 and (labels == 1).sum() == 0 and not deltas.any()


def test_rpn_all_anchors_invalid() -> None:
    labels, deltas = rpn_targets.rpn_targets(ANCHORS_128, GT_128, (48, 48), min_overlap=0.3, max_overlap=0.7,
                                             mini_batch=256, rng=np.random.default_rng(0))
    assert (labels == -1).all() and not deltas.any()


def test_rpn_sampling_caps_and_seed() -> None:
    anchors = grid_anchors((16, 16), 8, [16], [1.0])  # 256 anchors of 16 px on an 8 px grid
    rng = np.random.default_rng(3)
    gt = np.concatenate([rng.uniform(0, 100, (20, 2)), np.zeros((20, 2))], axis=1)
    gt[:, 2:] = gt[:, :2] + rng.uniform(12, 24, (20, 2))
    before, _ = rpn_targets.assign(anchors, gt, (128, 128), min_overlap=0.3, max_overlap=0.7)
    n_pos, n_neg = int((before == 1).sum()), int((before == 0).sum())
    assert n_pos > 8 and n_neg > 16
    labels, _ = rpn_targets.rpn_targets(anchors, gt, (128, 128), min_overlap=0.3, max_overlap=0.7, mini_batch=16,
                                        rng=np.random.default_rng(1))
    assert (labels == 1).sum() == 8 and (labels == 0).sum() == 8
    assert np.all(before[labels == 1] == 1) and np.all(before[labels == 0] == 0)
    again, _ = rpn_targets.rpn_targets(anchors, gt, (128, 128), min_overlap=0.3, max_overlap=0.7, mini_batch=16,
                                       rng=np.random.default_rng(1))
    np.testing.assert_array_equal(labels, again)
    few, _ = rpn_targets.rpn_targets(anchors, gt[:1], (128, 128), min_overlap=0.3, max_overlap=0.7,
                                     mini_batch=64, rng=np.random.default_rng(1))
    assert (few == 1).sum() + (few == 0).sum() == 64  # negatives fill what positives leave


# ------------------------------------------------------------------------------------------------------- losses


def test_smooth_l1_sigma_3_check_values() -> None:
    np.testing.assert_allclose(losses.smooth_l1(np.array([0.1, -0.1, 1.0, 0.0]), 3.0),
                               [0.045, 0.045, 1 - 1 / 18, 0.0])
    np.testing.assert_allclose(losses.smooth_l1(np.array([0.5, 2.0]), 1.0), [0.125, 1.5])
    d = np.linspace(-2, 2, 41)
    np.testing.assert_allclose(losses.smooth_l1_tf(d, 3.0).numpy(), losses.smooth_l1(d, 3.0), rtol=1e-6)


def test_rpn_losses_normalised_by_mini_batch_and_batch() -> None:
    labels = np.array([[1, 0, -1, 0], [1, -1, -1, -1]])
    scores = np.array([[0.8, 0.3, 0.9, 0.1], [0.5, 0.5, 0.5, 0.5]], np.float32)
    bce = -(np.log(0.8) + np.log(0.7) + np.log(0.9)) - np.log(0.5)
    assert losses.rpn_class_loss(labels, scores, 8).numpy() == pytest.approx(bce / 8 / 2, rel=1e-5)
    target = np.zeros((2, 4, 4), np.float32)
    pred = np.full((2, 4, 4), 0.1, np.float32)
    expected = (4 * 0.045 + 4 * 0.045) / 8 / 2  # two positives, 4 deltas each at d = 0.1
    assert losses.rpn_regression_loss(labels, target, pred, 8).numpy() == pytest.approx(expected, rel=1e-5)


def test_rcnn_losses_mask_weights_and_class_slots() -> None:
    onehot = np.array([[[0, 1, 0], [0, 0, 1], [0, 0, 0]]], np.float32)  # class 1, background, padding
    probs = np.array([[[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]], np.float32)
    weights = np.array([[1.0, 1.0, 0.0]], np.float32)
    expected = -(np.log(0.5) + np.log(0.8)) / 4
    assert losses.rcnn_class_loss(onehot, probs, weights, 4).numpy() == pytest.approx(expected, rel=1e-5)
    regr = np.zeros((1, 3, 16), np.float32)
    regr[0, 0, 4:8] = 1.0  # class 1's mask
    regr[0, 0, 12:16] = [0.5, 0.0, 0.0, 2.0]
    deltas = np.zeros((1, 3, 8), np.float32)
    deltas[0, :, :4] = 9.0  # class 0 slots and unmasked ROIs do not count
    expected = (0.125 + 1.5) / 4
    assert losses.rcnn_regression_loss(regr, deltas, 4).numpy() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------------------------------- proposals


def _proposal_inputs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    anchors = grid_anchors((6, 8), 16, [16, 48], [1.0, 0.5])  # 192 anchors on a 96×128 image, some outside
    k = len(anchors)
    scores = rng.choice(np.linspace(0.05, 0.95, 12), size=(2, k)).astype(np.float32)  # many ties
    deltas = rng.normal(0.0, 0.4, size=(2, k, 4)).astype(np.float32)
    deltas[:, ::7, 2] = -6.0  # degenerate: width below one pixel
    deltas[:, 5::11, :2] = 40.0  # far outside: clipped to a line at the border
    return scores, deltas, anchors


@pytest.mark.parametrize(("seed", "pre", "post", "iou"), [(0, 120, 40, 0.7), (1, 150, 160, 0.3), (2, 500, 60, 0.5)])
def test_proposals_tf_matches_reference(seed: int, pre: int, post: int, iou: float) -> None:
    scores, deltas, anchors = _proposal_inputs(seed)
    kwargs: dict[str, Any] = {"std_scaling": 1.5, "pre_nms_top_n": pre, "post_nms_top_n": post, "nms_iou": iou}
    rois, count = proposals.proposals(scores, deltas, anchors, (96, 128), **kwargs)
    ref_rois, ref_count = proposals.proposals_reference(scores, deltas, anchors, (96, 128), **kwargs)
    np.testing.assert_array_equal(count.numpy(), ref_count)
    np.testing.assert_allclose(rois.numpy(), ref_rois, atol=1e-4)
    r = rois.numpy()
    for i, n in enumerate(ref_count):
        assert not r[i, n:].any()
        assert np.all(r[i, :n, 2] - r[i, :n, 0] >= 1.0) and np.all(r[i, :n, 3] - r[i, :n, 1] >= 1.0)
        assert r[i, :n, [0, 2]].max() <= 127 and r[i, :n, [1, 3]].max() <= 95
    compiled = tf.function(lambda s, d: proposals.proposals(s, d, anchors, (96, 128), **kwargs))
    np.testing.assert_allclose(compiled(scores, deltas)[0].numpy(), ref_rois, atol=1e-4)


def test_proposals_decode_ties_std_scaling_and_padding() -> None:
    anchors = np.array([[10, 10, 30, 30], [10, 10, 30, 30], [60, 60, 80, 80], [0, 0, 0.5, 40]], np.float32)
    scores = np.array([[0.5, 0.5, 0.5, 0.9]], np.float32)
    deltas = np.zeros((1, 4, 4), np.float32)
    deltas[0, 2] = [0.2, 0.0, math.log(2.0), 0.0]  # ×2 std_scaling → tx 0.1, tw ln(2)/2
    kwargs: dict[str, Any] = {"std_scaling": 2.0, "pre_nms_top_n": 10, "post_nms_top_n": 5, "nms_iou": 0.5}
    rois, count = proposals.proposals(scores, deltas, anchors, (100, 100), **kwargs)
    ref = proposals.proposals_reference(scores, deltas, anchors, (100, 100), **kwargs)
    assert count.numpy().tolist() == [2] and ref[1].tolist() == [2]
    w = 20 * math.sqrt(2.0)
    expected = np.array([[10, 10, 30, 30], [72 - w / 2, 60, 72 + w / 2, 80], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(rois.numpy()[0], expected, atol=1e-4)  # the 0.5 px box is masked, ties: index 0
    np.testing.assert_allclose(ref[0][0], expected, atol=1e-4)
    none, zero = proposals.proposals(scores, np.full((1, 4, 4), -9.0, np.float32), anchors, (100, 100), **kwargs)
    assert zero.numpy().tolist() == [0] and not none.numpy().any()


# ------------------------------------------------------------------------------------------------- RCNN targets

CONFIG = rcnn_targets.RcnnTargetConfig(roi_mini_batch=16)


def _rcnn_inputs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = np.zeros((2, 4, 4), np.float32)
    classes = np.full((2, 4), -1, np.int32)
    gt[0, :3] = [[10, 10, 50, 60], [70, 20, 120, 90], [30, 80, 60, 120]]
    classes[0, :3] = [0, 2, 1]
    gt[1, :1] = [[20, 20, 100, 100]]
    classes[1, :1] = [1]
    rois = np.zeros((2, 30, 4), np.float32)
    for i in range(2):
        centres = gt[i, rng.integers(0, 3 if i == 0 else 1, 30)]
        rois[i] = centres + rng.normal(0, 6, (30, 4))
        rois[i, :, 2:] = np.maximum(rois[i, :, 2:], rois[i, :, :2] + 2)
    rois[:, ::4] = rng.uniform(40, 80, (2, 8, 1)) + [0, 0, 50, 30]  # partial overlaps: background
    counts = np.array([25, 30], np.int32)
    rois[0, 25:] = 0
    return rois, counts, gt, classes


@pytest.mark.parametrize("gt_as_roi", [False, True])
def test_rcnn_assignment_tf_matches_reference(gt_as_roi: bool) -> None:
    config = rcnn_targets.RcnnTargetConfig(roi_mini_batch=16, gt_as_roi=gt_as_roi, min_overlap=0.1)
    rois, counts, gt, classes = _rcnn_inputs(0)
    for i in range(2):
        ref = rcnn_targets.assign_reference(rois[i], counts[i], gt[i], classes[i], config)
        got = rcnn_targets.assign_tf(rois[i], counts[i], gt[i], classes[i], config)
        np.testing.assert_array_equal(got.labels.numpy(), ref.labels)
        np.testing.assert_array_equal(got.matched.numpy(), ref.matched)
        np.testing.assert_allclose(got.deltas.numpy(), ref.deltas, atol=1e-4)
        assert (ref.labels == 1).any() and (ref.labels == 0).any()
        if gt_as_roi:  # a GT as ROI is a positive with zero deltas
            real = int((classes[i] >= 0).sum())
            assert (ref.labels[30:30 + real] == 1).all() and not ref.deltas[30:30 + real].any()
    np.testing.assert_allclose(
        box_ops.encode_deltas([[44, 44, 108, 108]], [[40, 40, 104, 104]], CONFIG.regr_std, plus_one=True),
        [[40 / 65, 40 / 65, 0, 0]], atol=1e-9)


def _check_targets(out: rcnn_targets.RcnnTargets, num_classes: int, batch: int) -> dict[str, np.ndarray]:
    rois, cls, regr, weights = (np.asarray(t) for t in out)
    assert rois.shape[1:] == (batch, 4) and cls.shape[1:] == (batch, num_classes + 1)
    assert regr.shape[1:] == (batch, 8 * num_classes) and weights.shape[1:] == (batch,)
    np.testing.assert_array_equal(cls.sum(axis=-1), weights)  # one-hot exactly where real
    positive = cls[..., :num_classes].sum(axis=-1) > 0
    mask = regr[..., :4 * num_classes]
    np.testing.assert_array_equal(mask.sum(axis=-1), 4 * positive)
    class_of = np.argmax(cls, axis=-1)
    for n, b in zip(*np.nonzero(positive), strict=True):
        assert mask[n, b, 4 * class_of[n, b]:4 * class_of[n, b] + 4].tolist() == [1, 1, 1, 1]
    assert not (regr[..., 4 * num_classes:] * (1 - mask)).any()
    return {"rois": rois, "positive": positive, "weights": weights, "class_of": class_of}


@pytest.mark.parametrize("batch", [16, 8])
def test_rcnn_targets_sampling_invariants_and_determinism(batch: int) -> None:
    config = rcnn_targets.RcnnTargetConfig(roi_mini_batch=batch)
    rois, counts, gt, classes = _rcnn_inputs(1)
    seed = tf.constant([7, 3])
    out = rcnn_targets.rcnn_targets(rois, counts, gt, classes, num_classes=3, config=config, seed=seed)
    checked = _check_targets(out, 3, batch)
    for i in range(2):
        ref = rcnn_targets.assign_reference(rois[i], counts[i], gt[i], classes[i], config)
        n_pos = min(int((ref.labels == 1).sum()), batch // 4)
        assert checked["positive"][i].sum() == n_pos and checked["positive"][i, :n_pos].all()
        assert checked["weights"][i].all()
        positives = checked["rois"][i, :n_pos]
        assert len({tuple(r) for r in positives}) == n_pos  # without replacement
        rows = [int(np.flatnonzero((ref.candidates == r).all(axis=1))[0]) for r in checked["rois"][i]]
        assert all(ref.labels[r] == (1 if k < n_pos else 0) for k, r in enumerate(rows))
        assert all(int(classes[i][ref.matched[r]]) == checked["class_of"][i, k] for k, r in enumerate(rows[:n_pos]))
        assert (checked["class_of"][i, n_pos:] == 3).all()  # background last
        if (ref.labels == 0).sum() >= batch - n_pos:  # enough negatives: drawn without replacement
            assert len(set(rows[n_pos:])) == batch - n_pos
    again = rcnn_targets.rcnn_targets(rois, counts, gt, classes, num_classes=3, config=config, seed=seed)
    np.testing.assert_array_equal(np.asarray(again.rois), checked["rois"])
    other = rcnn_targets.rcnn_targets(rois, counts, gt, classes, num_classes=3, config=config, seed=[8, 3])
    assert not np.array_equal(np.asarray(other.rois), checked["rois"])
    compiled = tf.function(lambda s: rcnn_targets.rcnn_targets(rois, counts, gt, classes, num_classes=3,
                                                                config=config, seed=s))
    np.testing.assert_array_equal(compiled(seed).rois.numpy(), checked["rois"])


def test_rcnn_targets_replacement_cases() -> None:
    gt = np.array([[[20, 20, 60, 60]]], np.float32)
    classes = np.array([[0]], np.int32)
    rois = np.zeros((1, 8, 4), np.float32)
    rois[0, :3] = [[20, 20, 60, 60], [21, 20, 60, 61], [90, 90, 120, 120]]  # 2 positives, 1 negative
    out = rcnn_targets.rcnn_targets(rois, [3], gt, classes, num_classes=1, config=CONFIG, seed=[1, 2])
    c = _check_targets(out, 1, 16)
    assert c["positive"][0, :2].all() and not c["positive"][0, 2:].any()
    assert (c["rois"][0, 2:] == [90, 90, 120, 120]).all() and c["weights"].all()  # negatives with replacement
    only_pos = rcnn_targets.rcnn_targets(rois, [2], gt, classes, num_classes=1, config=CONFIG, seed=[1, 2])
    c = _check_targets(only_pos, 1, 16)
    assert c["positive"].all() and c["weights"].all()  # positives with replacement fill the batch
    config = rcnn_targets.RcnnTargetConfig(roi_mini_batch=16, min_overlap=0.1)
    nothing = rcnn_targets.rcnn_targets(rois[:, 2:], [1], gt, classes, num_classes=1, config=config, seed=[1, 2])
    c = _check_targets(nothing, 1, 16)  # IoU 0 < min_overlap: neither positive nor negative
    assert not c["weights"].any() and not c["rois"].any()


def test_rcnn_targets_without_gt() -> None:
    rois = np.tile(np.array([[[10, 10, 40, 40]]], np.float32), (1, 5, 1))
    out = rcnn_targets.rcnn_targets(rois, [5], np.zeros((1, 0, 4), np.float32), np.zeros((1, 0), np.int32),
                                    num_classes=2, config=CONFIG, seed=[0, 0])
    c = _check_targets(out, 2, 16)
    assert c["weights"].all() and not c["positive"].any() and (c["class_of"] == 2).all()


# ----------------------------------------------------------------------------------------------------- decoding


def test_decoding_reference_check_and_zero_delta() -> None:
    std = (10.0, 10.0, 5.0, 5.0)
    rois = np.array([[[0, 0, 99, 99]]], np.float64)
    deltas = np.array([[[10 * 0.1, 0.0, 5 * math.log(2.0), 0.0]]])
    boxes = decoding.decode_class_boxes(rois, deltas, (128, 128), std)
    np.testing.assert_allclose(boxes[0, 0, 0], [0, 0, 127, 100])  # unclipped [-40, 0, 160, 100]
    roi = np.array([[[12.0, 30.0, 52.0, 41.0]]])
    zero = decoding.decode_class_boxes(roi, np.zeros((1, 1, 8)), (128, 128), std)
    np.testing.assert_allclose(zero[0, 0], [[12, 30, 53, 42]] * 2)  # ROI + (0, 0, 1, 1)


def test_decoding_round_trip_with_the_encoders() -> None:
    gt = np.array([[14.0, 22.0, 70.0, 50.0]])
    anchor = np.array([[10.0, 10.0, 74.0, 74.0]])
    std = (10.0, 10.0, 5.0, 5.0)
    rpn_delta = rpn_targets.encode(gt, anchor)
    decoded = decoding.decode_class_boxes(anchor[None], rpn_delta[None], (128, 128), (1, 1, 1, 1))
    np.testing.assert_allclose(decoded[0, 0, 0], gt[0] + [0, 0, 1, 1], atol=1e-9)
    cfg = rcnn_targets.RcnnTargetConfig(max_overlap=0.3)
    ref = rcnn_targets.assign_reference(anchor, 1, gt, np.array([0]), cfg)
    assert ref.labels.tolist() == [1]
    decoded = decoding.decode_class_boxes(anchor[None], ref.deltas[None], (128, 128), std)
    np.testing.assert_allclose(decoded[0, 0, 0], gt[0] + [0, 0, 1, 1], atol=1e-9)


def test_decode_detections_per_class_nms_threshold_and_cap() -> None:
    rois = np.array([[[10, 10, 49, 49], [12, 12, 51, 51], [60, 60, 99, 99], [0, 0, 9, 9]]], np.float64)
    probs = np.array([[[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.00005, 0.00005, 0.9999]]])
    deltas = np.zeros((1, 4, 8))
    [det] = decoding.decode_detections(rois, probs, deltas, (128, 128), regr_std=(10, 10, 5, 5), nms_iou=0.3,
                                       score_threshold=1e-4, max_boxes=100)
    # class 0: ROI 1 suppressed by ROI 0; class 1: ROI 0 suppressed by ROI 1; ROI 3 is below the threshold
    order = list(zip(det.class_ids.tolist(), np.round(det.confidences, 4).tolist(), strict=True))
    assert order == [(1, 0.8), (0, 0.7), (1, 0.3), (0, 0.1)]
    np.testing.assert_allclose(det.boxes[0], [60, 60, 100, 100])
    [capped] = decoding.decode_detections(rois, probs, deltas, (128, 128), regr_std=(10, 10, 5, 5), nms_iou=0.3,
                                          score_threshold=1e-4, max_boxes=2)
    assert capped.confidences.tolist() == pytest.approx([0.8, 0.7])
    with pytest.raises(ValueError, match="deltas"):
        decoding.decode_detections(rois, probs, deltas[..., :4], (128, 128), regr_std=(10, 10, 5, 5), nms_iou=0.3,
                                   score_threshold=1e-4, max_boxes=2)


def test_padding_rois_never_detect() -> None:
    """All-zero proposal rows would decode to a 1-pixel box with the classifier's confidence; like the exported
    graph, the decoder drops them."""
    rois = np.array([[[10, 10, 50, 50], [0, 0, 0, 0], [30, 30, 30, 60]]], np.float32)
    probs = np.array([[[0.9, 0.1], [0.95, 0.05], [0.99, 0.01]]], np.float32)
    found = decoding.decode_detections(rois, probs, np.zeros((1, 3, 4), np.float32), (100, 100),
                                       regr_std=(10, 10, 5, 5), nms_iou=0.3, score_threshold=0.0, max_boxes=10)[0]
    assert found.confidences.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(found.boxes, [[10, 10, 51, 51]])
