"""MaskRCNN numeric core: the reference's check values (DETECTORS-TWO-STAGE.md §2, §7), TensorFlow vs NumPy
agreement, sampling invariants and hand-computed oracles. Tiny tensors only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from libtlt.archs.mask_rcnn import box_targets as bt
from libtlt.archs.mask_rcnn import decoding, losses, mask_targets, proposals, roi_align, rpn_targets
from libtlt.archs.mask_rcnn.anchors import AnchorConfig, concatenated, level_anchors, multilevel_anchors
from libtlt.layers import boxes as box_ops

# ------------------------------------------------------------------------------------------------------ anchors


def test_level_2_anchors_reference_values() -> None:
    anchors = level_anchors((64, 64), 2, AnchorConfig())
    assert anchors.dtype == np.float32 and anchors.shape == (16 * 16 * 3, 4)
    np.testing.assert_allclose(anchors[0], [-14, -14, 18, 18])
    np.testing.assert_allclose(anchors[1], [-9.2, -20.4, 13.2, 24.4], atol=1e-5)
    np.testing.assert_allclose(anchors[2], [-20.4, -9.2, 24.4, 13.2], atol=1e-5)
    # (H, W, A) row-major: the next cell to the right has centre (2, 6); row 1 starts after 16 cells.
    np.testing.assert_allclose(anchors[3], [-14, -10, 18, 22])
    np.testing.assert_allclose(anchors[16 * 3], [-10, -14, 22, 18])


def test_anchor_levels_counts_order_and_octaves() -> None:
    config = AnchorConfig(min_level=2, max_level=6)
    per_level = multilevel_anchors((64, 128), config)
    assert {level: len(a) for level, a in per_level.items()} == {2: 16 * 32 * 3, 3: 8 * 16 * 3, 4: 4 * 8 * 3,
                                                                  5: 2 * 4 * 3, 6: 1 * 2 * 3}
    np.testing.assert_allclose(per_level[6][0], [32 - 256, 32 - 256, 32 + 256, 32 + 256])
    flat = concatenated(per_level)
    np.testing.assert_array_equal(flat[len(per_level[2])], per_level[3][0])
    # num_scales 2: octave outer, aspect inner; octave 1 is 2^(1/2) larger.
    two = level_anchors((64, 64), 2, AnchorConfig(num_scales=2))
    np.testing.assert_allclose(two[3, 2] - two[3, 0], 32 * math.sqrt(2), rtol=1e-6)
    assert AnchorConfig(num_scales=2).num_anchors == 6


def test_anchor_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="min_level"):
        AnchorConfig(min_level=4, max_level=3)
    with pytest.raises(ValueError, match="pairs"):
        AnchorConfig(aspect_ratios=((1.0, 0.0),))


# ---------------------------------------------------------------------------------------- ROI levels, RoIAlign


@pytest.mark.parametrize(("side", "level"), [(32, 2), (112, 3), (224, 4), (448, 5), (1000, 6), (4, 2)])
def test_roi_level_reference_values(side: float, level: int) -> None:
    box = np.array([[10.0, 20.0, 10.0 + side, 20.0 + side]])
    assert roi_align.assign_levels(box, 2, 6).tolist() == [level]
    assert roi_align.assign_levels_tf(box, 2, 6).numpy().tolist() == [level]


def test_roi_level_clamps_to_the_pooled_levels_and_handles_empty_boxes() -> None:
    boxes = np.array([[0, 0, 1000, 1000], [0, 0, 0, 0], [0, 0, 300, 170]], dtype=np.float32)
    assert roi_align.assign_levels_tf(boxes, 2, 5).numpy().tolist() == [5, 2, 4]  # √(300·170) = 225.8


def test_roi_align_ramp_hand_values() -> None:
    # f[y, x] = x on 4×4; box = the whole map; 2 bins of 2×2 samples at x = 0.5, 1.5 | 2.5, 3.5 → 3 (clamped).
    ramp = np.tile(np.arange(4.0), (4, 1))[..., None]
    np.testing.assert_allclose(roi_align.roi_align_reference(ramp, [0, 0, 4, 4], 2)[0, :, 0], [1.0, 2.75])
    features = {2: tf.constant(ramp[None].astype(np.float32))}
    out = roi_align.multilevel_roi_align(features, np.array([[[0, 0, 16, 16]]], np.float32), 2)  # ÷ stride 4
    np.testing.assert_allclose(out.numpy()[0, 0, :, :, 0], [[1.0, 2.75], [1.0, 2.75]], atol=1e-6)


def test_roi_align_of_a_linear_map_reads_the_bin_centres() -> None:
    # Bilinear sampling is exact on f = x + 10·y, so each bin's mean is f at the bin centre.
    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    feature = (x + 10 * y)[None, ..., None]
    box = np.array([2.0, 3.0, 9.0, 13.0])  # feature pixels at level 2
    out = roi_align.multilevel_roi_align({2: tf.constant(feature)}, (box * 4)[None, None], 5).numpy()[0, 0, ..., 0]
    centres_y = box[0] + (np.arange(5) + 0.5) * (box[2] - box[0]) / 5
    centres_x = box[1] + (np.arange(5) + 0.5) * (box[3] - box[1]) / 5
    np.testing.assert_allclose(out, centres_x[None, :] + 10 * centres_y[:, None], rtol=1e-5)


def test_multilevel_roi_align_matches_the_reference_on_every_level() -> None:
    rng = np.random.default_rng(0)
    features = {level: rng.normal(size=(2, 1024 >> level, 1024 >> level, 2)).astype(np.float32)
                for level in range(2, 7)}
    boxes = np.array([[[4, 4, 30, 40], [0, 0, 1000, 1024], [10, 20, 130, 140]],
                      [[10, 20, 14, 22], [100, 300, 600, 800], [500, 700, 740, 960]]], np.float32)
    out = roi_align.multilevel_roi_align({k: tf.constant(v) for k, v in features.items()}, boxes, 7).numpy()
    levels = roi_align.assign_levels(boxes, 2, 6)
    assert sorted(levels.ravel().tolist()) == [2, 2, 3, 4, 5, 6]
    for i in range(2):
        for r in range(3):
            level = int(levels[i, r])
            expected = roi_align.roi_align_reference(features[level][i], boxes[i, r] / 2 ** level, 7)
            np.testing.assert_allclose(out[i, r], expected, atol=1e-5)


def _onnx_roi_align(feature_nchw: np.ndarray, boxes_yxyx: np.ndarray, batch: np.ndarray, scale: float,
                    size: int) -> np.ndarray:
    """onnxruntime's RoiAlign (avg, sampling_ratio 2, ``output_half_pixel`` = the legacy aligned=False mode)."""
    import onnxruntime
    from onnx import TensorProto, helper

    node = helper.make_node("RoiAlign", ["x", "rois", "index"], ["y"], mode="avg", output_height=size,
                            output_width=size, sampling_ratio=2, spatial_scale=scale,
                            coordinate_transformation_mode="output_half_pixel")
    graph = helper.make_graph([node], "roi_align", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, list(feature_nchw.shape)),
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, [None, 4]),
        helper.make_tensor_value_info("index", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)], ir_version=8)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rois = boxes_yxyx[:, [1, 0, 3, 2]].astype(np.float32)  # RoiAlign takes (x1, y1, x2, y2)
    return session.run(None, {"x": feature_nchw, "rois": rois, "index": batch.astype(np.int64)})[0]


def test_multilevel_roi_align_equals_onnx_roi_align_per_level() -> None:
    # An independent implementation (the op the export will use) as the oracle; boxes of at least one feature
    # pixel, where onnxruntime's minimum-size rule does not apply.
    rng = np.random.default_rng(5)
    features = {level: rng.normal(size=(2, 512 >> level, 512 >> level, 3)).astype(np.float32)
                for level in range(2, 7)}
    boxes = np.array([[[4, 4, 30, 40], [0, 0, 500, 512], [10, 20, 130, 140]],
                      [[10, 20, 18, 30], [100, 300, 400, 500], [200, 100, 450, 300]]], np.float32)
    out = roi_align.multilevel_roi_align({k: tf.constant(v) for k, v in features.items()}, boxes, 7).numpy()
    levels = roi_align.assign_levels(boxes, 2, 6)
    assert len(set(levels.ravel().tolist())) >= 4
    for level in set(levels.ravel().tolist()):
        image, row = np.nonzero(levels == level)
        expected = _onnx_roi_align(features[level].transpose(0, 3, 1, 2).copy(), boxes[image, row], image,
                                   2.0 ** -level, 7)
        np.testing.assert_allclose(out[image, row], expected.transpose(0, 2, 3, 1), atol=1e-5)


def test_roi_align_passes_gradients_to_features_not_boxes() -> None:
    feature = tf.Variable(np.ones((1, 8, 8, 2), np.float32))
    boxes = tf.Variable([[[0.0, 0.0, 16.0, 16.0]]])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(roi_align.multilevel_roi_align({2: feature}, boxes, 2))
    grad_f, grad_b = tape.gradient(total, [feature, boxes])
    assert float(tf.reduce_sum(grad_f)) == pytest.approx(8.0) and grad_b is None


# -------------------------------------------------------------------------------------------------- RPN targets

ANCHORS = concatenated(multilevel_anchors((64, 64), AnchorConfig(max_level=4)))
TARGETS = rpn_targets.RpnTargetConfig(batch_size_per_im=64)


def test_rpn_targets_exact_anchor_is_positive_with_zero_deltas_far_anchors_negative() -> None:
    gt = ANCHORS[5 * 16 * 3 + 6 * 3][None]  # level 2, cell (5, 6), square anchor, fully inside: [6, 10, 38, 42]
    keys = np.linspace(0, 1, len(ANCHORS), endpoint=False)
    labels, deltas = rpn_targets.rpn_targets_tf(ANCHORS, gt, [1], TARGETS, keys=keys)
    labels, deltas = labels.numpy(), deltas.numpy()
    index = 5 * 16 * 3 + 6 * 3
    assert labels[index] == 1
    np.testing.assert_allclose(deltas[index], 0.0, atol=1e-6)
    iou = box_ops.iou_matrix(gt, ANCHORS)[0]
    assert np.all(labels[iou >= 0.3] != 0)  # strict "< 0.3" negatives
    assert np.all(labels[(labels == 1)] == 1) and set(np.unique(labels)) <= {-1, 0, 1}
    assert (labels >= 0).sum() == 64 and (labels == 1).sum() == (iou >= 0.7).sum() <= 32


def test_rpn_targets_force_the_best_anchor_of_a_gt_below_the_threshold() -> None:
    gt = np.array([[30.0, 30.0, 33.0, 50.0]])  # thin: no anchor reaches IoU 0.7
    iou = box_ops.iou_matrix(gt, ANCHORS)[0]
    assert iou.max() < 0.7
    labels, deltas = rpn_targets.rpn_targets_tf(ANCHORS, gt, [2], TARGETS, keys=np.zeros(len(ANCHORS)))
    positives = np.nonzero(labels.numpy() == 1)[0]
    assert len(positives) == 1 and iou[positives[0]] == pytest.approx(iou.max(), abs=1e-6)  # one, among the ties
    decoded = box_ops.decode_deltas(deltas.numpy()[positives], ANCHORS[positives], log_scale_clip=math.inf)
    np.testing.assert_allclose(decoded, gt, atol=1e-4)


def test_rpn_forced_anchor_goes_to_the_first_gt_forcing_it() -> None:
    # ArgMaxMatcher(force_match_for_each_row): GT 0 (shifted) and GT 1 (exact) both have anchor X as their best;
    # by IoU X belongs to GT 1 (1.0 > 0.79), but the forcing of the first GT wins.
    x = 5 * 16 * 3 + 6 * 3
    exact = ANCHORS[x]
    shifted = exact + np.array([0.0, 2.0, 0.0, 2.0], np.float32)
    gt = np.stack([shifted, exact])
    iou = box_ops.iou_matrix(gt, ANCHORS)
    assert np.argmax(iou[0]) == x == np.argmax(iou[1]) and iou[0, x] >= 0.7
    keys = np.random.default_rng(0).random(len(ANCHORS))
    labels, deltas = rpn_targets.rpn_targets_tf(ANCHORS, gt, [1, 2], TARGETS, keys=keys)
    assert labels.numpy()[x] == 1
    np.testing.assert_allclose(deltas.numpy()[x], box_ops.encode_deltas(shifted[None], exact[None])[0], atol=1e-6)
    ref_labels, ref_deltas = rpn_targets.rpn_targets_reference(ANCHORS, gt, [1, 2], TARGETS, keys)
    np.testing.assert_array_equal(labels.numpy(), ref_labels)
    np.testing.assert_allclose(deltas.numpy(), ref_deltas, atol=1e-5)


def test_rpn_targets_tf_equals_numpy_and_ignores_padding_rows() -> None:
    rng = np.random.default_rng(3)
    gt = np.array([[5, 5, 30, 25], [20, 30, 60, 62], [0, 0, 0, 0]], np.float32)
    classes = np.array([1, 3, -1])
    keys = rng.random(len(ANCHORS))
    labels, deltas = rpn_targets.rpn_targets_tf(ANCHORS, gt, classes, TARGETS, keys=keys)
    ref_labels, ref_deltas = rpn_targets.rpn_targets_reference(ANCHORS, gt, classes, TARGETS, keys)
    np.testing.assert_array_equal(labels.numpy(), ref_labels)
    np.testing.assert_allclose(deltas.numpy(), ref_deltas, atol=1e-5)
    batched, _ = rpn_targets.batch_rpn_targets(ANCHORS, gt[None].repeat(2, 0), classes[None].repeat(2, 0), TARGETS,
                                               tf.constant([1, 2]))
    assert batched.shape == (2, len(ANCHORS)) and not np.array_equal(batched[0], batched[1])  # per-image seeds


# ---------------------------------------------------------------------------------------------------- proposals


def _rpn_outputs(seed: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
    per_level = multilevel_anchors((64, 64), AnchorConfig(max_level=4))
    rng = np.random.default_rng(seed)
    scores = {level: rng.normal(size=(2, len(a))).astype(np.float32) for level, a in per_level.items()}
    deltas = {level: (0.2 * rng.normal(size=(2, len(a), 4))).astype(np.float32) for level, a in per_level.items()}
    return scores, deltas, per_level


def test_multilevel_proposals_tf_equals_numpy() -> None:
    scores, deltas, anchors = _rpn_outputs(0)
    config = proposals.ProposalConfig(pre_nms_top_n=100, post_nms_top_n=40, nms_iou=0.7, min_size=2.0)
    rois, count = proposals.multilevel_proposals(scores, deltas, anchors, (64, 64), config)
    ref_rois, ref_count = proposals.proposals_reference(scores, deltas, anchors, (64, 64), config)
    np.testing.assert_array_equal(count.numpy(), ref_count)
    np.testing.assert_allclose(rois.numpy(), ref_rois, atol=1e-4)
    r = rois.numpy()
    assert r.min() >= 0 and r[..., [0, 2]].max() <= 64 and r[..., [1, 3]].max() <= 64


def test_proposals_keep_per_level_top_k_and_drop_small_boxes() -> None:
    anchors = {2: np.array([[0, 0, 8, 8], [0, 0, 8, 8.5], [30, 30, 40, 40]], np.float32),
               3: np.array([[10, 10, 11, 30], [20, 20, 50, 50]], np.float32)}
    scores = {2: np.array([[3.0, 2.0, 1.0]], np.float32), 3: np.array([[9.0, 0.5]], np.float32)}
    deltas = {level: np.zeros((1, len(a), 4), np.float32) for level, a in anchors.items()}
    config = proposals.ProposalConfig(pre_nms_top_n=2, post_nms_top_n=4, nms_iou=0.7, min_size=2.0)
    rois, count = proposals.multilevel_proposals(scores, deltas, anchors, (64, 64), config)
    # Level 2: top 2 are near-duplicates (one kept), the third is past pre_nms_top_n; level 3: the thin one is
    # dropped; merged by score.
    assert count.numpy().tolist() == [2]
    np.testing.assert_allclose(rois.numpy()[0], [[0, 0, 8, 8], [20, 20, 50, 50], [0, 0, 0, 0], [0, 0, 0, 0]])


# ------------------------------------------------------------------------------------------ box and mask targets

BOX_CONFIG = bt.BoxTargetConfig(batch_size_per_im=16, fg_fraction=0.25)


def test_box_targets_with_no_proposals_sample_the_gt_itself() -> None:
    gt = np.array([[[10, 10, 30, 40], [0, 0, 0, 0]]], np.float32)
    out = bt.box_targets(np.zeros((1, 5, 4), np.float32), [0], gt, [[2, -1]], BOX_CONFIG, tf.constant([0, 0]))
    assert out.classes.numpy()[0].tolist() == [2] * 16  # no background anywhere: positives drawn again
    np.testing.assert_allclose(out.rois.numpy()[0, 0], gt[0, 0])
    np.testing.assert_allclose(out.box_targets.numpy(), 0.0, atol=1e-6)
    assert out.matched.numpy()[0, 0] == 0 and out.weights.numpy().sum() == 16


def test_box_targets_fraction_order_classes_and_encoding() -> None:
    rng = np.random.default_rng(1)
    gt = np.array([[10, 10, 30, 40], [35, 5, 60, 25]], np.float32)
    jitter = rng.uniform(-4, 4, size=(12, 4))
    near = np.concatenate([gt[0] + jitter[:6], gt[1] + jitter[6:]])
    far = rng.uniform(0, 30, size=(20, 2))
    far = np.concatenate([far, far + rng.uniform(5, 30, size=(20, 2))], axis=1)
    rois = np.concatenate([near, far]).astype(np.float32)[None]
    out = bt.box_targets(rois, [32], gt[None], [[1, 3]], BOX_CONFIG, tf.constant([4, 2]))
    classes, sampled = out.classes.numpy()[0], out.rois.numpy()[0]
    fg = classes > 0
    assert fg.sum() == 4 and fg[:4].all()  # ⌊16·0.25⌋ foregrounds, first
    iou = box_ops.iou_matrix(gt, sampled)
    matched = out.matched.numpy()[0]
    assert np.all(iou.max(axis=0)[fg] >= 0.5) and np.all(iou.max(axis=0)[~fg] < 0.5)
    assert np.all(classes[fg] == np.array([1, 3])[matched[fg]]) and np.all(matched[~fg] == -1)
    expected = box_ops.encode_deltas(gt[matched[fg]], sampled[fg], (10, 10, 5, 5))
    np.testing.assert_allclose(out.box_targets.numpy()[0][fg], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.box_targets.numpy()[0][~fg], 0.0)
    _, labels, _ = bt.assign_reference(rois[0], 32, gt, [1, 3], BOX_CONFIG)
    assert (labels == 1).sum() >= 4  # the reference assignment has enough foregrounds for the quota


def test_box_target_encoding_hand_value() -> None:
    # ROI [0, 0, 10, 10], GT shifted one pixel right: tx = 0.1·10 = 1, ty = tw = th = 0.
    deltas = box_ops.encode_deltas([[0, 1, 10, 11]], [[0, 0, 10, 10]], (10, 10, 5, 5))
    np.testing.assert_allclose(deltas, [[0, 1, 0, 0]], atol=1e-12)


def test_mask_target_crops_the_gt_mask_into_the_roi() -> None:
    full = np.zeros((1, 32, 32))
    full[0, :, 16:] = 1  # right half of a GT box covering the 32×32 image
    gt_box = np.array([[0.0, 0.0, 32.0, 32.0]])
    crop = mask_targets.crop_gt_masks(full, gt_box, 32)
    np.testing.assert_array_equal(crop, full)
    # The ROI [0, 16, 32, 48] sees the GT's right half in its left half and nothing (outside the GT) after.
    target = mask_targets.mask_targets_tf([[0.0, 16.0, 32.0, 48.0]], gt_box, crop, 28).numpy()[0]
    assert target.sum(axis=0).tolist() == [28.0] * 14 + [0.0] * 14
    same = mask_targets.mask_targets_tf(gt_box, gt_box, mask_targets.crop_gt_masks(full, gt_box, 112), 28).numpy()
    assert same[0].sum(axis=0).tolist() == [0.0] * 14 + [28.0] * 14


# ------------------------------------------------------------------------------------------------------- losses


def test_huber_reference_values() -> None:
    np.testing.assert_allclose(losses.huber([0.1, 1.0], 1 / 9), [0.005, (1 - 1 / 18) / 9])
    np.testing.assert_allclose(losses.huber([0.5, -2.0], 1.0), [0.125, 1.5])
    np.testing.assert_allclose(losses.huber_tf([0.1, 1.0, -2.0], 1 / 9).numpy(), losses.huber([0.1, 1.0, -2.0], 1 / 9),
                               rtol=1e-6)


def test_rpn_losses_match_their_formulas() -> None:
    labels = np.array([[1, 0, -1, 0], [-1, -1, 1, 0]])
    logits = np.array([[2.0, -1.0, 5.0, 0.5], [0.0, 0.0, -1.0, 3.0]], np.float32)

    def bce(z: float, y: int) -> float:
        return math.log1p(math.exp(-z)) if y else math.log1p(math.exp(z))

    expected = sum(bce(z, y) for z, y in zip(logits.ravel(), labels.ravel(), strict=True) if y >= 0) / (2 * 256)
    assert float(losses.rpn_score_loss(labels, logits, 256)) == pytest.approx(expected, rel=1e-5)
    target = np.zeros((2, 4, 4), np.float32)
    target[0, 0] = [0.5, 0.5, 0.0, 0.2]  # positive, level A (anchors 0-1): its 0.0 coordinate is not weighted
    target[1, 2] = [1.0, -1.0, 2.0, 3.0]  # positive, level B (anchors 2-3)
    pred = target.copy()
    pred[0, 0] += [0.1, 1.0, 7.0, 0.0]
    pred[0, 1] = [9.0, 9, 9, 9]  # a negative anchor: no box loss
    pred[1, 2] += [0.1, 0.0, 0.0, 0.0]
    level_a = (0.005 + (1 - 1 / 18) / 9 + 0.0) / 3  # three non-zero target weights
    level_b = 0.005 / 4
    assert float(losses.rpn_box_loss(labels, target, pred, [2, 2])) == pytest.approx(level_a + level_b, rel=1e-5)
    with pytest.raises(ValueError, match="add up"):
        losses.rpn_box_loss(labels, target, pred, [2, 3])


def test_box_head_losses_use_the_true_class_slot_and_weights() -> None:
    classes = np.array([[2, 0, 0]])
    weights = np.array([[1.0, 1.0, 0.0]])
    logits = np.zeros((1, 3, 3), np.float32)
    assert float(losses.box_class_loss(classes, logits, weights)) == pytest.approx(math.log(3), rel=1e-6)
    deltas = np.full((1, 3, 12), 50.0, np.float32)
    deltas[0, 0, 8:12] = [0.5, 0, 0, 2.0]  # class 2's slot of the foreground ROI
    expected = (0.125 + 1.5) / 4
    assert float(losses.box_regression_loss(classes, np.zeros((1, 3, 4)), deltas)) == pytest.approx(expected)


def test_mask_loss_averages_foreground_pixels_only() -> None:
    targets = np.zeros((1, 2, 2, 2), np.float32)
    targets[0, 0, 0] = 1
    logits = np.zeros((1, 2, 2, 2), np.float32)
    logits[0, 1] = 100.0  # background slot: ignored
    assert float(losses.mask_loss(targets, logits, [[1.0, 0.0]])) == pytest.approx(math.log(2), rel=1e-6)
    picked = losses.class_slots(np.arange(12.0).reshape(1, 2, 3, 2), [[2, 0]]).numpy()
    np.testing.assert_array_equal(picked, [[[4, 5], [6, 7]]])


def test_total_loss_applies_the_spec_weights() -> None:
    terms = dict(zip(losses.LOSS_NAMES, [1.0, 2.0, 3.0, 4.0, 5.0], strict=True))
    weights = losses.LossWeights(rpn_box=0.5, fast_rcnn_box=2.0, mask=3.0)
    assert losses.total_loss(terms, weights) == pytest.approx(1 + 1 + 3 + 8 + 15)


# ----------------------------------------------------------------------------------------------------- decoding


def test_decoding_reference_example() -> None:
    # ROI (y1, x1, y2, x2) = [0, 0, 100, 100]; class 1 deltas (ty, tx, th, tw) = (0, 10·0.1, 0, 5·ln 2):
    # centre x 50 + 10 = 60, width 200, height 100 → x from −40 (clipped to 0) to 160 (clipped to W = 128).
    deltas = np.zeros((1, 1, 8))
    deltas[0, 0, 4:] = [0.0, 1.0, 0.0, 5 * math.log(2)]
    boxes = decoding.decode_class_boxes([[[0, 0, 100, 100]]], deltas, (128, 128), (10, 10, 5, 5))
    np.testing.assert_allclose(boxes[0, 0, 1], [0, 0, 100, 128], atol=1e-9)


def test_generate_detections_rows_classes_nms_and_padding() -> None:
    rois = np.array([[[10, 10, 50, 50], [12, 12, 52, 52], [60, 60, 90, 100], [0, 0, 0, 0]]], np.float32)
    logits = np.log(np.array([[[0.1, 0.8, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7], [0.0, 1.0, 0.0]]]) + 1e-12)
    dets = decoding.generate_detections(rois, logits, np.zeros((1, 4, 12)), (128, 128), max_detections=5)
    assert dets.shape == (1, 5, 6) and dets.dtype == np.float32
    rows = dets[0]
    np.testing.assert_allclose(rows[0], [10, 10, 50, 50, 1, 0.8], rtol=1e-5)
    np.testing.assert_allclose(rows[1], [60, 60, 90, 100, 2, 0.7], rtol=1e-5)
    # ROI 1 is suppressed for class 1 by ROI 0 (IoU 0.82) but is a class-2 candidate; the zero ROI never detects.
    np.testing.assert_allclose(rows[2], [12, 12, 52, 52, 2, 0.2], rtol=1e-5)
    assert set(rows[:, 4].tolist()) <= {0.0, 1.0, 2.0} and np.all(rows[4] == 0)


def test_paste_mask_hand_values() -> None:
    mask = np.zeros((28, 28))
    mask[:, :14] = 1.0
    pasted = decoding.paste_mask(mask, [0, 0, 10, 20], (16, 32))
    assert pasted[:10, :10].all() and not pasted[:, 10:].any() and not pasted[10:].any()
    full = decoding.paste_mask(np.ones((28, 28)), [2.2, 3.6, 7.4, 9.5], (16, 16))
    assert np.argwhere(full).min(axis=0).tolist() == [2, 4] and np.argwhere(full).max(axis=0).tolist() == [6, 8]
    dets = np.array([[0, 0, 10, 20, 2, 0.9], [0, 0, 0, 0, 0, 0]])
    probs = np.zeros((2, 3, 28, 28))
    probs[0, 2] = mask
    masks = decoding.paste_masks(dets, probs, (16, 32))
    np.testing.assert_array_equal(masks[0], pasted)
    assert not masks[1].any()
