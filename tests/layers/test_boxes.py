"""Box kernel: the detector documents' hand checks, NumPy vs TensorFlow twins (eager and in ``tf.function`` with
dynamic box counts), encode → decode round trips and edge cases (no boxes, no GT, zero-area boxes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.layers import boxes as bx
from libtlt.layers import clustering

RNG_SEEDS = (0, 1, 2)
SSD_VARIANCES = (0.1, 0.1, 0.2, 0.2)
DSSD_SCALES = [0.1, 0.24166667, 0.38333333, 0.525, 0.66666667, 0.80833333, 0.95]
SSD_RATIOS = [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]


def _random_boxes(rng: np.random.Generator, n: int, extent: float = 100.0, min_size: float = 1.0) -> np.ndarray:
    x1y1 = rng.uniform(0.0, extent, size=(n, 2))
    wh = rng.uniform(min_size, extent / 2.0, size=(n, 2))
    return np.concatenate([x1y1, x1y1 + wh], axis=1)


def _numpy(value: Any) -> Any:
    return tuple(_numpy(v) for v in value) if isinstance(value, tuple) else np.asarray(value)


def _dynamic(fn: Callable[..., Any], *specs: tf.TensorSpec, **kwargs: Any) -> Callable[..., Any]:
    """``fn`` as a ``tf.function`` over inputs of unknown size, returning NumPy."""
    compiled = tf.function(lambda *args: fn(*args, **kwargs), input_signature=specs)
    return lambda *args: _numpy(compiled(*args))


BOXES = tf.TensorSpec([None, 4], tf.float64)
MATRIX = tf.TensorSpec([None, None], tf.float64)
VECTOR = tf.TensorSpec([None], tf.float64)
LABELS = tf.TensorSpec([None], tf.int32)
MASK = tf.TensorSpec([None], tf.bool)


def _fixed_with_keys(labels: Any, keys: Any, draws: Any, **kwargs: Any) -> Any:
    return bx.sample_fixed_tf(labels, keys=keys, draws=draws, **kwargs)


def _rpn_with_mask(iou: Any, valid: Any, **kwargs: Any) -> Any:
    return bx.match_rpn_tf(iou, valid=valid, **kwargs)


# ---------------------------------------------------------------------------------------------- check values

def test_ssd_scales_from_min_max_match_the_dssd_default() -> None:
    np.testing.assert_allclose(bx.ssd_scales(6, min_scale=0.1, max_scale=0.95), DSSD_SCALES, atol=1e-8)
    assert bx.ssd_scales(6, scales=DSSD_SCALES) == DSSD_SCALES
    with pytest.raises(ValueError, match="7 values"):
        bx.ssd_scales(6, scales=DSSD_SCALES[:6])
    with pytest.raises(ValueError, match="min_scale"):
        bx.ssd_scales(6, min_scale=0.5, max_scale=0.1)


def test_ssd_prior_check_values() -> None:
    """Single-stage §1.2: 300×300, first layer 38×38, DSSD scales, ratios [1, 2, 0.5, 3, 1/3], twin boxes."""
    args = ((300, 300), (38, 38), 0.1, 0.2416667, SSD_RATIOS)
    pixels = bx.ssd_layer_anchors(*args, two_boxes_for_ar1=True, normalize=False)
    assert pixels.shape == (38 * 38 * 6, 4)
    np.testing.assert_allclose(pixels[0], [-11.052632] * 2 + [18.947368] * 2, atol=1e-6)
    np.testing.assert_allclose(pixels[1], [-19.371079] * 2 + [27.265816] * 2, atol=1e-5)
    np.testing.assert_allclose(pixels[2], [-17.265835, -6.659233, 25.160572, 14.553970], atol=1e-6)
    normalised = bx.ssd_layer_anchors(*args, two_boxes_for_ar1=True)
    np.testing.assert_allclose(normalised[0], [-0.036842] * 2 + [0.063158] * 2, atol=1e-6)
    np.testing.assert_allclose(normalised[1], [-0.064570] * 2 + [0.090886] * 2, atol=1e-6)
    np.testing.assert_allclose(normalised[2], [-0.057553, -0.022197, 0.083869, 0.048513], atol=1e-6)
    # The next cell moves one step to the right, the next row one step down (HWA order).
    np.testing.assert_allclose(pixels[6] - pixels[0], [300 / 38, 0, 300 / 38, 0], atol=1e-9)
    np.testing.assert_allclose(pixels[38 * 6] - pixels[0], [0, 300 / 38, 0, 300 / 38], atol=1e-9)
    paper = bx.ssd_layer_anchors(*args, two_boxes_for_ar1=True, steps=8, offsets=0.5, normalize=False)
    np.testing.assert_allclose(paper[0], [-11, -11, 19, 19], atol=1e-5)
    np.testing.assert_allclose(paper[1], [4 - 23.318448] * 2 + [4 + 23.318448] * 2, atol=1e-5)


def test_ssd_steps_and_offsets_pairs_are_vertical_then_horizontal() -> None:
    anchors = bx.ssd_layer_anchors((100, 200), (2, 2), 0.1, 0.1, [1.0], two_boxes_for_ar1=False,
                                   steps=(10, 20), offsets=(0.25, 0.75), normalize=False)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    np.testing.assert_allclose(centres, [[15, 2.5], [35, 2.5], [15, 12.5], [35, 12.5]])


def test_ssd_clip_rule_and_normalisation() -> None:
    anchors = bx.ssd_layer_anchors((100, 200), (1, 1), 0.9, 0.9, [1.0], two_boxes_for_ar1=False,
                                   steps=(99.5, 199.5), offsets=1.0, clip=True, normalize=False)
    # centre (199.5, 99.5), half-size 45: x2 = 244.5 ≥ W → W − 1; y2 = 144.5 → H − 1.
    np.testing.assert_allclose(anchors[0], [154.5, 54.5, 199, 99])
    left = bx.ssd_layer_anchors((100, 200), (1, 1), 0.9, 0.9, [1.0], two_boxes_for_ar1=False, clip=True)
    np.testing.assert_allclose(left[0], [55 / 200, 5 / 100, 145 / 200, 95 / 100])
    low = bx.ssd_layer_anchors((100, 200), (1, 1), 0.9, 0.9, [1.0], two_boxes_for_ar1=False, steps=1,
                               offsets=0.5, clip=True, normalize=False)
    np.testing.assert_allclose(low[0], [0, 0, 45.5, 45.5])


def test_retinanet_check_values_and_octaves() -> None:
    np.testing.assert_allclose(bx.octave_factors(3), [1, 1.259921, 1.587401], atol=1e-6)
    anchors = bx.ssd_layer_anchors((256, 256), (32, 32), 0.045, 0.1, [1.0, 2.0, 0.5], two_boxes_for_ar1=False,
                                   octaves=bx.octave_factors(3), normalize=False)
    assert anchors.shape == (32 * 32 * 9, 4)
    np.testing.assert_allclose(anchors[:4], [[-1.76, -1.76, 9.76, 9.76],
                                             [-4.14587, -0.072935, 12.14587, 8.072935],
                                             [-0.072935, -4.14587, 8.072935, 12.14587],
                                             [-3.257145, -3.257145, 11.257145, 11.257145]], atol=1e-5)
    with pytest.raises(ValueError, match="same length"):
        bx.retinanet_anchors((256, 256), [(32, 32), (16, 16)], [0.1, 0.2, 0.3], [[1.0, 2.0], [1.0]],
                             two_boxes_for_ar1=False)


def test_feature_sizes_and_anchor_counts() -> None:
    ssd300 = bx.feature_sizes((300, 300), [8, 16, 32, 64, 128, 256])
    assert ssd300 == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (2, 2)]
    kitti = bx.feature_sizes((384, 1248), [8, 16, 32, 64, 128, 256])
    assert kitti == [(48, 156), (24, 78), (12, 39), (6, 20), (3, 10), (2, 5)]
    ratios = [[1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]] * 6
    assert len(bx.ssd_anchors((300, 300), ssd300, DSSD_SCALES, ratios, two_boxes_for_ar1=True)) == 11658
    assert len(bx.ssd_anchors((384, 1248), kitti, DSSD_SCALES, ratios, two_boxes_for_ar1=True)) == 59928
    retina = bx.retinanet_anchors((384, 1248), kitti[:5], DSSD_SCALES[:6], [[1.0, 2.0, 0.5]] * 5,
                                  two_boxes_for_ar1=False)
    assert len(retina) == 89802
    assert len(bx.frcnn_anchors((24, 78), [64, 128, 256], [1.0, 0.5, 2.0])) == 16848
    with pytest.raises(ValueError, match="7 scales"):
        bx.ssd_anchors((300, 300), ssd300, DSSD_SCALES[:6], ratios, two_boxes_for_ar1=True)
    with pytest.raises(ValueError, match="one entry per layer"):
        bx.ssd_anchors((300, 300), ssd300, DSSD_SCALES, ratios, two_boxes_for_ar1=True, steps=[8, 16])


def test_ssd_anchors_concatenate_layers_with_per_layer_steps() -> None:
    sizes = [(2, 2), (1, 1)]
    both = bx.ssd_anchors((64, 64), sizes, [0.2, 0.5, 0.9], [[1.0], [1.0, 2.0]], two_boxes_for_ar1=True,
                          steps=[32, None], offsets=[0.5, (0.5, 0.5)], normalize=False)
    first = bx.ssd_layer_anchors((64, 64), (2, 2), 0.2, 0.5, [1.0], two_boxes_for_ar1=True, steps=32,
                                 normalize=False)
    second = bx.ssd_layer_anchors((64, 64), (1, 1), 0.5, 0.9, [1.0, 2.0], two_boxes_for_ar1=True, normalize=False)
    np.testing.assert_array_equal(both, np.concatenate([first, second]))
    assert len(first) == 2 * 2 * 2 and len(second) == 3


def test_frcnn_anchor_check_values() -> None:
    anchors = bx.frcnn_anchors((24, 78), [64, 128], [1.0, 0.5, 2.0], stride=16)
    np.testing.assert_allclose(anchors[:3], [[-24, -24, 40, 40],
                                             [-14.6274, -37.2548, 30.6274, 53.2548],
                                             [-37.2548, -14.6274, 53.2548, 30.6274]], atol=1e-4)
    np.testing.assert_allclose(anchors[3], [-56, -56, 72, 72])  # size 128, ratio 1: sizes outer, ratios inner
    np.testing.assert_allclose(anchors[6], [-8, -24, 56, 40])  # next cell: centre (24, 8)


def test_fpn_anchor_check_values() -> None:
    ratios = [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]
    level2 = bx.fpn_level_anchors((832, 1344), 2, anchor_scale=8, num_scales=1, aspect_ratios=ratios)
    assert level2.shape == (208 * 336 * 3, 4)
    np.testing.assert_allclose(bx.swap_xy(level2[:3]), [[-14, -14, 18, 18], [-9.2, -20.4, 13.2, 24.4],
                                                         [-20.4, -9.2, 24.4, 13.2]], atol=1e-9)
    two_octaves = bx.fpn_level_anchors((64, 64), 3, anchor_scale=4, num_scales=2, aspect_ratios=[(1.0, 1.0)])
    np.testing.assert_allclose(two_octaves[:2], [[-12, -12, 20, 20], [4 - 16 * 2 ** 0.5] * 2 + [4 + 16 * 2 ** 0.5] * 2])
    every = bx.fpn_anchors((64, 64), min_level=2, max_level=6, anchor_scale=8, num_scales=1, aspect_ratios=ratios)
    assert len(every) == 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)


def test_centre_size_encoding_check_value() -> None:
    """Single-stage §1.3: anchor (150, 150, 60, 60), GT [120, 135, 200, 195], variances (.1, .1, .2, .2)."""
    anchor = bx.centres_to_corners([150, 150, 60, 60])
    np.testing.assert_allclose(bx.encode_centre_size([120, 135, 200, 195], anchor, SSD_VARIANCES),
                               [1.666667, 2.5, 1.438410, 0], atol=1e-6)
    np.testing.assert_allclose(bx.decode_centre_size([1.666667, 2.5, 1.438410, 0], anchor, SSD_VARIANCES),
                               [120, 135, 200, 195], atol=1e-3)


def test_ssd_matching_check_values() -> None:
    """Single-stage §1.3's matching example (the doc's IoU(GT0, a4) = .1111 is a slip: the boxes do not overlap)."""
    anchors = [[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10], [0, 0, 20, 10], [14, 0, 24, 10], [30, 0, 40, 10]]
    iou = bx.iou_matrix([[2, 0, 12, 10], [9, 0, 19, 10]], anchors)
    np.testing.assert_allclose(iou, [[2 / 3, 7 / 13, 1 / 9, 0.5, 0, 0],
                                     [1 / 19, 3 / 7, 9 / 11, 0.5, 1 / 3, 0]], atol=1e-12)
    for match in (bx.match_bipartite, _dynamic(bx.match_bipartite_tf, MATRIX)):
        matches, labels = match(iou)
        assert matches.tolist() == [0, 0, 1, 0, -1, -1]
        assert labels.tolist() == [1, 1, 1, 1, bx.IGNORE, bx.NEGATIVE]  # SSD: a4 (.3333 ≥ 0.3) is neutral
    matches, labels = bx.match_bipartite(iou, negative_threshold=0.4)  # RetinaNet: a4 is background
    assert labels.tolist() == [1, 1, 1, 1, 0, 0]


def test_bipartite_runs_before_the_threshold() -> None:
    # GT1's best anchor a0 (0.9) also is GT0's best (0.95): GT0 takes a0, GT1 falls back to a1 (IoU 0.1).
    iou = np.array([[0.95, 0.0, 0.6], [0.9, 0.1, 0.0]])
    for match in (bx.match_bipartite, _dynamic(bx.match_bipartite_tf, MATRIX)):
        matches, labels = match(iou)
        assert matches.tolist() == [0, 1, 0] and labels.tolist() == [1, 1, 1]


def test_rpn_check_values() -> None:
    """Two-stage §1: 128×128 image, stride 16, scale 64, ratio 1, GT [44, 44, 108, 108]; the diagonal anchors."""
    anchors = bx.frcnn_anchors((8, 8), [64], [1.0])
    valid = (anchors[:, :2] >= 0).all(axis=1) & (anchors[:, 2:] <= 127).all(axis=1)
    centres = (anchors[valid, 0] + anchors[valid, 2]) / 2
    assert sorted(set(centres.tolist())) == [40, 56, 72, 88]
    gt = [[44, 44, 108, 108]]
    diagonal = [k * 8 + k for k in (2, 3, 4, 5)]  # cells (2, 2) … (5, 5): centres 40, 56, 72, 88
    np.testing.assert_allclose(bx.iou_matrix(gt, anchors)[0, diagonal], [0.10583, 0.30946, 0.78397, 0.49271],
                               atol=1e-5)
    np.testing.assert_allclose(bx.iou_matrix(gt, anchors, plus_one=True)[0, diagonal],
                               [0.11053, 0.31518, 0.78685, 0.49796], atol=1e-5)
    for plus_one in (False, True):
        iou = bx.iou_matrix(gt, anchors, plus_one=plus_one)
        for match in (bx.match_rpn, _dynamic(bx.match_rpn_tf, MATRIX, valid=valid)):
            matches, labels = match(iou, valid=valid) if match is bx.match_rpn else match(iou)
            assert labels[diagonal].tolist() == [bx.NEGATIVE, bx.IGNORE, bx.POSITIVE, bx.IGNORE]
            assert np.nonzero(labels == bx.POSITIVE)[0].tolist() == [4 * 8 + 4]
            assert matches[4 * 8 + 4] == 0 and (labels[~valid] == bx.IGNORE).all()
    np.testing.assert_allclose(anchors[4 * 8 + 4], [40, 40, 104, 104])
    np.testing.assert_allclose(bx.encode_deltas(gt, anchors[4 * 8 + 4]), [[0.0625, 0.0625, 0, 0]])
    np.testing.assert_allclose(bx.encode_deltas(gt, anchors[4 * 8 + 4], plus_one=True), [[4 / 65, 4 / 65, 0, 0]])


def test_rpn_forces_the_best_anchor_of_gts_without_positives() -> None:
    iou = np.array([[0.2, 0.5, 0.0, 0.0],    # GT0: best a1 (0.5 < 0.7) → forced
                    [0.0, 0.0, 0.8, 0.1],    # GT1: has a positive → not forced
                    [0.0, 0.4, 0.0, 0.0],    # GT2: best a1 too → the last GT wins a1
                    [0.0, 0.0, 0.0, 0.0]])   # GT3: IoU 0 everywhere → nothing forced
    for match in (bx.match_rpn, _dynamic(bx.match_rpn_tf, MATRIX)):
        matches, labels = match(iou)
        assert matches.tolist() == [-1, 2, 1, -1]
        assert labels.tolist() == [bx.NEGATIVE, bx.POSITIVE, bx.POSITIVE, bx.NEGATIVE]
    matches, labels = bx.match_rpn(iou, force_best=False)
    assert matches.tolist() == [-1, -1, 1, -1] and labels.tolist() == [0, -1, 1, 0]
    _, strict = bx.match_rpn(np.array([[0.3, 0.2]]), force_best=False, negative_inclusive=False)
    assert strict.tolist() == [bx.IGNORE, bx.NEGATIVE]


def test_roi_matching_bands() -> None:
    iou = np.array([[0.6, 0.45, 0.05, 0.0], [0.2, 0.5, 0.0, 0.0]])
    for match in (bx.match_rois, _dynamic(bx.match_rois_tf, MATRIX, negative_low=0.1)):
        matches, labels = match(iou, negative_low=0.1) if match is bx.match_rois else match(iou)
        assert matches.tolist() == [0, 1, -1, -1]
        assert labels.tolist() == [1, 1, bx.IGNORE, bx.IGNORE]
    _, labels = bx.match_rois(iou, negative_high=0.4)
    assert labels.tolist() == [1, 1, 0, 0]


def test_delta_decoding_check_value() -> None:
    """Two-stage §7: ROI [0, 0, 99, 99] (+1 width 100), deltas (10·0.1, 0, 5·ln 2, 0), std (10, 10, 5, 5)."""
    deltas = [1.0, 0.0, 5 * math.log(2), 0.0]
    decoded = bx.decode_deltas(deltas, [0, 0, 99, 99], (10, 10, 5, 5), plus_one=True)
    np.testing.assert_allclose(decoded, [-40, 0, 160, 100], atol=1e-9)
    np.testing.assert_allclose(bx.clip_boxes(decoded, 127, 127), [0, 0, 127, 100])
    tf_decoded = bx.decode_deltas_tf(np.array(deltas), np.array([0.0, 0, 99, 99]), (10, 10, 5, 5), plus_one=True)
    np.testing.assert_allclose(tf_decoded.numpy(), decoded, atol=1e-9)


def test_decode_clamps_the_log_size() -> None:
    anchor = np.array([0.0, 0.0, 1.0, 1.0])
    huge = bx.decode_centre_size([0, 0, 1e4, 1e4], anchor, SSD_VARIANCES)
    np.testing.assert_allclose(huge[2] - huge[0], 1000 / 16)
    assert np.isfinite(bx.decode_deltas([0, 0, 1e4, 1e4], anchor)).all()
    assert np.isfinite(bx.decode_centre_size_tf(np.array([0, 0, 1e4, 1e4]), anchor).numpy()).all()
    unclamped = bx.decode_centre_size([0, 0, 10.0, 0], anchor, SSD_VARIANCES, log_scale_clip=math.inf)
    np.testing.assert_allclose(unclamped[2] - unclamped[0], math.exp(2.0))


def test_nms_check_value() -> None:
    """Single-stage §7.3: IoU .818 suppressed at 0.6, IoU .333 kept; padded rows carry class −1."""
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10]], dtype=np.float64)
    scores = np.array([[0.9], [0.8], [0.7]])
    result = bx.batched_nms(boxes, scores, iou_threshold=0.6, max_per_class=5, max_total=5)
    assert result.count == 2 and result.indices.tolist() == [0, 2, -1, -1, -1]
    assert result.classes.tolist() == [0, 0, -1, -1, -1]
    np.testing.assert_allclose(result.scores, [0.9, 0.7, 0, 0, 0])
    np.testing.assert_allclose(result.boxes[:2], boxes[[0, 2]])
    assert not result.boxes[2:].any()
    assert bx.nms(boxes, scores[:, 0], 0.6).tolist() == [0, 2]
    assert bx.nms_tf(boxes, scores[:, 0], 0.6).numpy().tolist() == [0, 2]


def test_clustering_still_exports_the_moved_functions() -> None:
    assert clustering.iou_matrix is bx.iou_matrix and clustering.nms is bx.nms


# ------------------------------------------------------------------------------------ NumPy vs TensorFlow

@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_iou_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 11)
    b[0, 2] = b[0, 0]  # zero width
    dynamic = _dynamic(bx.iou_matrix_tf, BOXES, BOXES)
    for plus_one in (False, True):
        expected = bx.iou_matrix(a, b, plus_one=plus_one)
        np.testing.assert_allclose(bx.iou_matrix_tf(a, b, plus_one=plus_one).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(dynamic(a, b), bx.iou_matrix(a, b), atol=1e-12)
    single = bx.iou_matrix_tf(a.astype(np.float32), b)  # float32 in, float32 out
    assert single.dtype == tf.float32
    np.testing.assert_allclose(single.numpy(), bx.iou_matrix(a, b), atol=1e-5)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_format_and_coder_twins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes, anchors = _random_boxes(rng, 9), _random_boxes(rng, 9)
    pairs: list[tuple[Any, Any]] = [
        (bx.corners_to_centres(boxes), bx.corners_to_centres_tf(boxes)),
        (bx.corners_to_centres(boxes, plus_one=True), bx.corners_to_centres_tf(boxes, plus_one=True)),
        (bx.centres_to_corners(boxes), bx.centres_to_corners_tf(boxes)),
        (bx.swap_xy(boxes), bx.swap_xy_tf(boxes)),
        (bx.clip_boxes(boxes, 60, 40), bx.clip_boxes_tf(boxes, 60, 40)),
        (bx.encode_centre_size(boxes, anchors, SSD_VARIANCES), bx.encode_centre_size_tf(boxes, anchors)),
        (bx.decode_centre_size(boxes / 50, anchors, (0.1, 0.2, 0.3, 0.4)),
         bx.decode_centre_size_tf(boxes / 50, anchors, (0.1, 0.2, 0.3, 0.4))),
        (bx.encode_deltas(boxes, anchors, (10, 10, 5, 5), plus_one=True),
         bx.encode_deltas_tf(boxes, anchors, (10, 10, 5, 5), plus_one=True)),
        (bx.decode_deltas(boxes / 20, anchors, (10, 10, 5, 5)), bx.decode_deltas_tf(boxes / 20, anchors, (10, 10, 5, 5))),
    ]
    for expected, actual in pairs:
        assert actual.dtype == tf.float64
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-12, atol=1e-12)
    # Anchors broadcast against boxes [G, A, 4] ↔ [A, 4], as label encoders use them.
    grid = np.broadcast_to(boxes[:, None, :], (9, 9, 4))
    np.testing.assert_allclose(bx.encode_centre_size_tf(grid, anchors).numpy(),
                               bx.encode_centre_size(grid, anchors), rtol=1e-12)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_matcher_twins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    anchors = np.round(_random_boxes(rng, 60, extent=40.0, min_size=4.0))  # integer boxes: repeated IoUs (ties)
    gt = np.round(_random_boxes(rng, 5, extent=40.0, min_size=4.0))
    gt[-1] = gt[0]  # two identical GTs: the bipartite tie-break decides
    iou = bx.iou_matrix(gt, anchors)
    valid = rng.random(60) > 0.2
    cases = [
        (bx.match_bipartite(iou), _dynamic(bx.match_bipartite_tf, MATRIX)(iou)),
        (bx.match_bipartite(iou, positive_threshold=0.3, negative_threshold=0.1),
         _dynamic(bx.match_bipartite_tf, MATRIX, positive_threshold=0.3, negative_threshold=0.1)(iou)),
        (bx.match_rpn(iou, positive_threshold=0.5, negative_threshold=0.2, valid=valid),
         _dynamic(_rpn_with_mask, MATRIX, MASK, positive_threshold=0.5, negative_threshold=0.2)(iou, valid)),
        (bx.match_rois(iou, negative_low=0.1), bx.match_rois_tf(iou, negative_low=0.1)),
    ]
    static = tf.function(bx.match_bipartite_tf)  # traced with the static shape [5, 60]
    cases.append((bx.match_bipartite(iou), static(tf.constant(iou))))
    for (matches, labels), (tf_matches, tf_labels) in cases:
        np.testing.assert_array_equal(np.asarray(tf_matches), matches)
        np.testing.assert_array_equal(np.asarray(tf_labels), labels)
        assert ((matches >= 0) == (labels == bx.POSITIVE)).all()
    matches, _ = cases[0][0]
    assert set(range(5)) <= set(matches.tolist())  # every GT got an anchor


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_sampler_twins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.choice([bx.POSITIVE, bx.NEGATIVE, bx.NEGATIVE, bx.NEGATIVE, bx.IGNORE], size=(4, 50))
    losses = np.round(rng.random((4, 50)), 2) * (rng.random((4, 50)) > 0.1)  # repeated losses and zeros
    batch = tf.TensorSpec([None, None], tf.float64), tf.TensorSpec([None, None], tf.int32)
    for ratio, minimum in ((3.0, 0), (0.5, 0), (1.5, 200)):
        expected = bx.hard_negative_mask(losses, labels, neg_pos_ratio=ratio, min_negatives=minimum)
        actual = bx.hard_negative_mask_tf(losses, labels.astype(np.int32), neg_pos_ratio=ratio, min_negatives=minimum)
        np.testing.assert_array_equal(actual.numpy(), expected)
        mined = _dynamic(bx.hard_negative_mask_tf, *batch, neg_pos_ratio=ratio, min_negatives=minimum)
        np.testing.assert_array_equal(mined(losses, labels.astype(np.int32)), expected)
        candidates = (labels == bx.NEGATIVE) & (losses > 0)
        assert not (expected & ~candidates).any()
        wanted = min(max(math.floor(ratio * (labels == bx.POSITIVE).sum()), minimum), candidates.sum())
        assert expected.sum() == wanted
        if 0 < wanted < candidates.sum():  # the kept ones are the hardest
            assert losses[expected].min() >= losses[candidates & ~expected].max()
    flat = labels.reshape(-1).astype(np.int32)
    keys, draws = rng.random(flat.size), rng.random(40)
    for batch, fraction in ((64, 0.5), (20, 0.25), (400, 0.5)):
        np.testing.assert_array_equal(
            bx.sample_balanced_tf(flat, batch, fraction, keys=keys).numpy(),
            bx.sample_balanced(flat, batch, fraction, keys=keys))
    fixed = _dynamic(_fixed_with_keys, LABELS, VECTOR, VECTOR, batch_size=40, positive_fraction=0.25)
    variants = [flat, np.where(flat == bx.NEGATIVE, bx.IGNORE, flat), np.where(flat == bx.POSITIVE, 0, flat),
                np.full_like(flat, bx.IGNORE), flat[:30]]
    for variant in variants:
        k = keys[:variant.size]
        np.testing.assert_array_equal(fixed(variant, k, draws),
                                      bx.sample_fixed(variant, 40, 0.25, keys=k, draws=draws))


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_nms_twins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 40, extent=50.0)
    scores = rng.random((40, 3))
    scores[5, 0] = scores[6, 0]  # an exact tie: the lower index first
    dynamic_nms = _dynamic(bx.nms_tf, BOXES, VECTOR, iou_threshold=0.4)
    for column in range(3):
        expected = bx.nms(boxes, scores[:, column], 0.4)
        np.testing.assert_array_equal(dynamic_nms(boxes, scores[:, column]), expected)
    per_class = np.stack([boxes, boxes + 1.0, boxes[::-1]], axis=1)
    settings_list = [dict(iou_threshold=0.5, score_threshold=0.3, max_per_class=6, max_total=10),
                     dict(iou_threshold=0.3, max_per_class=20, max_total=50, pre_nms_top_k=8)]
    for kwargs in settings_list:
        for b in (boxes, per_class):
            expected = bx.batched_nms(b, scores, **kwargs)
            spec = BOXES if b.ndim == 2 else tf.TensorSpec([None, None, 4], tf.float64)
            out_boxes, out_scores, classes, index, count = _dynamic(bx.batched_nms_tf, spec, MATRIX, **kwargs)(
                b, scores)
            assert int(count) == expected.count
            np.testing.assert_array_equal(index, expected.indices)
            np.testing.assert_array_equal(classes, expected.classes)
            np.testing.assert_allclose(out_scores, expected.scores, rtol=1e-12)
            np.testing.assert_allclose(out_boxes, expected.boxes, rtol=1e-12)
            assert (np.diff(expected.scores[:expected.count]) <= 0).all()


def test_batched_nms_equals_tf_combined_nms() -> None:
    rng = np.random.default_rng(7)
    boxes = _random_boxes(rng, 50, extent=1.0, min_size=0.05) / 1.5
    scores = rng.random((50, 4))
    expected = bx.batched_nms(boxes, scores, iou_threshold=0.5, score_threshold=0.2, max_per_class=5, max_total=12)
    combined = tf.image.combined_non_max_suppression(
        boxes[None, :, None, :].astype(np.float32), scores[None].astype(np.float32), max_output_size_per_class=5,
        max_total_size=12, iou_threshold=0.5, score_threshold=0.2, clip_boxes=False)
    assert int(combined.valid_detections[0]) == expected.count
    np.testing.assert_allclose(combined.nmsed_scores[0].numpy(), expected.scores, atol=1e-6)
    np.testing.assert_array_equal(combined.nmsed_classes[0].numpy()[:expected.count],
                                  expected.classes[:expected.count])
    np.testing.assert_allclose(combined.nmsed_boxes[0].numpy(), expected.boxes, atol=1e-6)


# ----------------------------------------------------------------------------------------------- round trips

# Sizes within 50× of each other: inside the decoder's ln(1000/16) clamp.
box_strategy = st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(1, 50), st.floats(1, 50))


@settings(max_examples=60, deadline=None)
@given(box=box_strategy, anchor=box_strategy,
       variances=st.tuples(*[st.floats(0.05, 2.0)] * 4))
def test_centre_size_round_trip(box: tuple[float, ...], anchor: tuple[float, ...],
                                variances: tuple[float, ...]) -> None:
    corners = bx.centres_to_corners(box)
    anchor_corners = bx.centres_to_corners(anchor)
    offsets = bx.encode_centre_size(corners, anchor_corners, variances)
    np.testing.assert_allclose(bx.decode_centre_size(offsets, anchor_corners, variances), corners, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(box=box_strategy, reference=box_strategy, weights=st.tuples(*[st.floats(0.5, 20.0)] * 4),
       plus_one=st.booleans())
def test_delta_round_trip(box: tuple[float, ...], reference: tuple[float, ...], weights: tuple[float, ...],
                          plus_one: bool) -> None:
    corners, ref = bx.centres_to_corners(box), bx.centres_to_corners(reference)
    deltas = bx.encode_deltas(corners, ref, weights, plus_one=plus_one)
    shift = np.array([0, 0, 1, 1]) if plus_one else 0.0  # TAO decodes +1 boxes without the −1
    np.testing.assert_allclose(bx.decode_deltas(deltas, ref, weights, plus_one=plus_one), corners + shift,
                               atol=1e-9)


def test_round_trip_in_tensorflow_float32() -> None:
    rng = np.random.default_rng(3)
    boxes, anchors = _random_boxes(rng, 20).astype(np.float32), _random_boxes(rng, 20).astype(np.float32)
    offsets = bx.encode_centre_size_tf(boxes, anchors)
    assert offsets.dtype == tf.float32
    np.testing.assert_allclose(bx.decode_centre_size_tf(offsets, anchors).numpy(), boxes, atol=1e-3)
    deltas = bx.encode_deltas_tf(boxes, anchors, (10, 10, 5, 5))
    np.testing.assert_allclose(bx.decode_deltas_tf(deltas, anchors, (10, 10, 5, 5)).numpy(), boxes, atol=1e-3)


def test_zero_area_box_round_trips_through_minus_infinity() -> None:
    flat = np.array([10.0, 10.0, 10.0, 20.0])
    anchor = np.array([0.0, 0.0, 20.0, 20.0])
    offsets = bx.encode_centre_size(flat, anchor)
    assert offsets[2] == -np.inf
    np.testing.assert_allclose(bx.decode_centre_size(offsets, anchor), flat)
    np.testing.assert_allclose(bx.encode_centre_size_tf(flat, anchor).numpy(), offsets)


# ------------------------------------------------------------------------------------------------ edge cases

def test_empty_box_sets() -> None:
    some = _random_boxes(np.random.default_rng(0), 3)
    none = np.zeros((0, 4))
    dynamic = _dynamic(bx.iou_matrix_tf, BOXES, BOXES)
    for a, b, shape in ((none, some, (0, 3)), (some, none, (3, 0)), (none, none, (0, 0))):
        assert bx.iou_matrix(a, b).shape == shape
        assert dynamic(a, b).shape == shape
    assert bx.nms(none, np.zeros(0), 0.5).tolist() == []
    assert bx.nms_tf(none, np.zeros(0), 0.5).numpy().tolist() == []
    assert bx.encode_centre_size(none, none).shape == (0, 4)
    assert bx.decode_deltas_tf(none, none).shape == (0, 4)
    assert bx.ssd_layer_anchors((64, 64), (4, 4), 0.1, 0.2, [], two_boxes_for_ar1=True).shape == (0, 4)


def test_zero_area_boxes() -> None:
    point = np.array([[5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 10.0, 0.0]])
    iou = bx.iou_matrix(point, np.vstack([point, [[0, 0, 10, 10]]]))
    assert (iou == 0).all()
    np.testing.assert_array_equal(bx.iou_matrix_tf(point, np.vstack([point, [[0, 0, 10, 10]]])).numpy(), iou)
    # A degenerate GT overlaps nothing: the bipartite step leaves it unmatched instead of handing it an anchor.
    matches, labels = bx.match_bipartite(bx.iou_matrix(point[:1], [[0, 0, 10, 10], [20, 20, 30, 30]]))
    assert matches.tolist() == [-1, -1] and labels.tolist() == [0, 0]


@pytest.mark.parametrize("num_anchors", [0, 5])
def test_matchers_without_gt(num_anchors: int) -> None:
    iou = np.zeros((0, num_anchors))
    valid = np.arange(num_anchors) % 2 == 0
    for match in (bx.match_bipartite, _dynamic(bx.match_bipartite_tf, MATRIX), bx.match_rois):
        matches, labels = match(iou)
        assert matches.tolist() == [-1] * num_anchors and labels.tolist() == [bx.NEGATIVE] * num_anchors
    for match in (bx.match_rpn, _dynamic(_rpn_with_mask, MATRIX, MASK)):
        matches, labels = match(iou, valid=valid) if match is bx.match_rpn else match(iou, valid)
        assert matches.tolist() == [-1] * num_anchors
        assert labels.tolist() == np.where(valid, bx.NEGATIVE, bx.IGNORE).tolist()


def test_matchers_without_anchors_and_more_gt_than_anchors() -> None:
    matches, labels = bx.match_bipartite(np.zeros((3, 0)))
    assert matches.shape == (0,) and labels.shape == (0,)
    assert bx.match_rpn(np.zeros((3, 0)))[0].shape == (0,)
    assert bx.match_rpn_tf(np.zeros((3, 0)))[0].shape == (0,)
    iou = np.array([[0.9, 0.1], [0.8, 0.7], [0.6, 0.65]])
    for match in (bx.match_bipartite, _dynamic(bx.match_bipartite_tf, MATRIX)):
        matches, labels = match(iou)
        assert matches.tolist() == [0, 1] and labels.tolist() == [1, 1]


def test_threshold_and_variance_validation() -> None:
    with pytest.raises(ValueError, match="negative threshold"):
        bx.match_bipartite(np.zeros((1, 1)), positive_threshold=0.3, negative_threshold=0.5)
    with pytest.raises(ValueError, match="> 0"):
        bx.encode_centre_size([0, 0, 1, 1], [0, 0, 1, 1], (0.1, 0.1, 0.0, 0.2))
    with pytest.raises(ValueError, match="aspect ratios"):
        bx.prior_sizes(0.1, 0.2, [1.0, -2.0], 300, two_boxes_for_ar1=False)
    with pytest.raises(ValueError, match="IoU matrix"):
        bx.match_rpn(np.zeros(4))
    with pytest.raises(ValueError, match="scores"):
        bx.batched_nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5)


def test_hard_negative_mining_edges() -> None:
    labels = np.array([bx.NEGATIVE] * 6 + [bx.IGNORE])
    losses = np.array([0.5, 0.0, 0.9, 0.1, 0.9, 0.3, 5.0])
    assert not bx.hard_negative_mask(losses, labels).any()  # no positives, no minimum
    kept = bx.hard_negative_mask(losses, labels, min_negatives=2)
    assert np.nonzero(kept)[0].tolist() == [2, 4]  # the two 0.9s; the ignored anchor's 5.0 never counts
    np.testing.assert_array_equal(bx.hard_negative_mask_tf(losses, labels, min_negatives=2).numpy(), kept)
    everything = bx.hard_negative_mask(losses, labels, min_negatives=100)
    assert np.nonzero(everything)[0].tolist() == [0, 2, 3, 4, 5]  # zero losses are not mined
    with pytest.raises(ValueError, match="losses"):
        bx.hard_negative_mask(losses[:3], labels)


def test_balanced_samplers_with_seeds() -> None:
    labels = np.array([bx.POSITIVE] * 200 + [bx.NEGATIVE] * 800 + [bx.IGNORE] * 50)
    for sampled in (bx.sample_balanced(labels, 256, 0.5, seed=3),
                    bx.sample_balanced_tf(labels, 256, 0.5, seed=(3, 4)).numpy()):
        assert (sampled == bx.POSITIVE).sum() == 128 and (sampled == bx.NEGATIVE).sum() == 128
        assert (sampled[labels == bx.IGNORE] == bx.IGNORE).all()
        assert (sampled[labels == bx.POSITIVE] != bx.NEGATIVE).all()
    np.testing.assert_array_equal(bx.sample_balanced(labels, 256, 0.5, seed=3),
                                  bx.sample_balanced(labels, 256, 0.5, seed=3))
    assert (bx.sample_balanced(labels, 256, 0.5, seed=3) != bx.sample_balanced(labels, 256, 0.5, seed=4)).any()
    few = np.array([bx.POSITIVE] * 10 + [bx.NEGATIVE] * 1000)
    assert (bx.sample_balanced(few, 256, 0.5) == bx.NEGATIVE).sum() == 246  # negatives fill up
    assert bx.positive_quota(100, 0.29) == 29 and bx.positive_quota(256, 0.25) == 64
    rois = bx.sample_fixed(labels, 256, 0.25, seed=1)
    assert rois.shape == (256,) and len(set(rois.tolist())) == 256
    assert (labels[rois[:64]] == bx.POSITIVE).all() and (labels[rois[64:]] == bx.NEGATIVE).all()
    tf_rois = bx.sample_fixed_tf(labels, 256, 0.25, seed=(1, 2)).numpy()
    assert (labels[tf_rois[:64]] == bx.POSITIVE).all() and len(set(tf_rois.tolist())) == 256
    short = bx.sample_fixed(np.array([1, 0, 0, -1]), 8, 0.25)  # too few negatives: drawn with replacement
    assert short[0] == 0 and set(short[1:].tolist()) <= {1, 2}  # 1 positive, 2 negatives for 7 slots
    only_positive = bx.sample_fixed(np.array([1, 1, -1]), 6, 0.25)
    assert sorted(set(only_positive.tolist())) <= [0, 1] and len(only_positive) == 6
    assert bx.sample_fixed(np.array([-1, -1]), 4, 0.25).tolist() == [-1] * 4
    assert bx.sample_fixed(np.zeros(0, dtype=int), 3, 0.25).tolist() == [-1] * 3


def test_batched_nms_edges() -> None:
    empty = bx.batched_nms(np.zeros((0, 4)), np.zeros((0, 2)), iou_threshold=0.5, max_total=3)
    assert empty.count == 0 and empty.indices.tolist() == [-1] * 3 and empty.boxes.shape == (3, 4)
    tf_empty = bx.batched_nms_tf(np.zeros((0, 4)), np.zeros((0, 2)), iou_threshold=0.5, max_total=3)
    assert int(tf_empty[4]) == 0 and tf_empty[3].numpy().tolist() == [-1] * 3 and tf_empty[0].shape == (3, 4)
    scores = np.array([[0.2, 0.9], [0.1, 0.95]])
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], dtype=np.float64)
    below = bx.batched_nms(boxes, scores, iou_threshold=0.5, score_threshold=0.2, max_total=4)
    assert below.count == 2 and below.classes.tolist() == [1, 1, -1, -1]  # 0.2 is not > 0.2
    capped = bx.batched_nms(boxes, scores, iou_threshold=0.5, max_per_class=1, max_total=1)
    assert capped.count == 1 and capped.indices.tolist() == [1] and capped.classes.tolist() == [1]
