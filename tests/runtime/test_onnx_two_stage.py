"""FasterRCNN's plugin-free export pieces: each in onnxruntime against its NumPy reference, RoiAlign against
``tf.image.crop_and_resize`` itself, and the ONNX op semantics the pieces rely on."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from libtlt.runtime.onnx_nms import OPSET, GraphBuilder, unpack_nms
from libtlt.runtime.onnx_two_stage import (
    DetectionConfig,
    ProposalConfig,
    crop_and_resize,
    crop_and_resize_model,
    crop_and_resize_reference,
    detections_model,
    detections_reference,
    proposals,
    proposals_model,
    proposals_reference,
)
from libtlt.runtime.onnxruntime_backend import OrtModel

IMAGE = (64, 80)  # H, W
FEATURE = (4, 5)  # H_f, W_f at stride 16
SIZES = (16.0, 32.0, 48.0)


def run(model: onnx.ModelProto, **feed: np.ndarray) -> dict[str, np.ndarray]:
    return OrtModel(model.SerializeToString()).run(feed)


def grid_anchors(feature: tuple[int, int] = FEATURE, sizes: tuple[float, ...] = SIZES) -> np.ndarray:
    """Square anchors in (H, W, A) row-major order, cell centres at 16·(c + 0.5)."""
    rows, cols = np.meshgrid(np.arange(feature[0]), np.arange(feature[1]), indexing="ij")
    centre = np.stack([16 * (cols + 0.5), 16 * (rows + 0.5)], -1)[:, :, None, :]
    half = np.asarray(sizes)[:, None] / 2
    return np.concatenate([centre - half, centre + half], -1).reshape(-1, 4).astype(np.float32)


def rpn_inputs(seed: int, anchors: int, *, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Batch 2: image 0 has some boxes squeezed below min_size; every box of image 1 is tiny (no proposal)."""
    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, 6, (2, anchors)) / 5 if ties else rng.uniform(0, 1, (2, anchors))).astype(np.float32)
    deltas = rng.normal(0, 0.3, (2, anchors, 4)).astype(np.float32)
    deltas[0, ::7, 2] = -6.0
    deltas[0, 3::11, 3] = -8.0
    deltas[1, :, 2:] = -9.0
    return scores, deltas


PROPOSAL_CONFIGS = [
    ProposalConfig(*IMAGE, pre_nms_top_n=40, post_nms_top_n=30, iou_threshold=0.5),
    ProposalConfig(*IMAGE, pre_nms_top_n=100, post_nms_top_n=80, iou_threshold=0.7),  # both above K = 60
    ProposalConfig(*IMAGE, pre_nms_top_n=20, post_nms_top_n=5, iou_threshold=0.3, std_scaling=2.0, min_size=4.0),
]


@pytest.mark.parametrize("config", PROPOSAL_CONFIGS)
@pytest.mark.parametrize("ties", [False, True])
def test_proposals_equal_reference(config: ProposalConfig, ties: bool) -> None:
    anchors = grid_anchors()
    model = proposals_model(anchors, config)
    for seed in range(2):
        scores, deltas = rpn_inputs(seed, len(anchors), ties=ties)
        got = run(model, rpn_scores=scores, rpn_deltas=deltas)
        rois, roi_scores, count = proposals_reference(scores, deltas, anchors, config)
        np.testing.assert_array_equal(got["roi_count"], count)
        np.testing.assert_array_equal(got["roi_scores"], roi_scores)
        np.testing.assert_allclose(got["rois"], rois, rtol=0, atol=1e-4)
        assert count[1] == 0 and 0 < count[0] <= min(config.post_nms_top_n, len(anchors))
        for n in range(2):
            kept = got["rois"][n, :count[n]]
            assert (np.minimum(kept[:, 2] - kept[:, 0], kept[:, 3] - kept[:, 1]) >= config.min_size).all()
            assert (kept[:, :2] >= 0).all() and (kept[:, 2:] <= [IMAGE[1] - 1, IMAGE[0] - 1]).all()
            assert (np.diff(got["roi_scores"][n, :count[n]]) <= 0).all()
            assert not got["rois"][n, count[n]:].any() and not got["roi_scores"][n, count[n]:].any()


def test_proposals_hand_checks() -> None:
    """Zero deltas give the clipped anchor; a box under min_size never comes out even with room to spare; equal
    scores keep the lower anchor first; IoU exactly at the threshold does not suppress (strict >)."""
    anchors = np.array([[-24, -24, 40, 40], [10, 10, 30, 30], [10, 0, 30, 20], [50, 10, 70, 30], [10, 10, 30, 30.5]],
                       np.float32)
    deltas = np.zeros((1, 5, 4), np.float32)
    deltas[0, 4, 2] = math.log(0.04)  # width 20 → 0.8 < min_size 1
    scores = np.array([[0.5, 0.9, 0.8, 0.9, 1.0]], np.float32)
    # Anchors 1 and 2 overlap by IoU 1/3: kept at iou_threshold 1/3, suppressed below it.
    for iou, want in [(1 / 3, [1, 3, 2, 0]), (0.3, [1, 3, 0])]:
        config = ProposalConfig(*IMAGE, pre_nms_top_n=5, post_nms_top_n=6, iou_threshold=iou)
        rois, roi_scores, count = proposals_reference(scores, deltas, anchors, config)
        got = run(proposals_model(anchors, config), rpn_scores=scores, rpn_deltas=deltas)
        expected = np.clip(anchors[want], 0, None)
        assert count.tolist() == [len(want)] and got["roi_count"].tolist() == [len(want)]
        np.testing.assert_array_equal(rois[0, :len(want)], expected)
        np.testing.assert_array_equal(got["rois"][0, :len(want)], expected)
        np.testing.assert_array_equal(got["roi_scores"], roi_scores)


def test_exp_overflow_gives_the_whole_image_not_nan() -> None:
    """tw, th = 100 overflow exp to inf; the clip turns the box into the whole image (no clamp of tw, no NaN)."""
    anchors = np.array([[10, 10, 30, 30]], np.float32)
    deltas = np.array([[[0, 0, 100, 100]]], np.float32)
    config = ProposalConfig(*IMAGE, pre_nms_top_n=1, post_nms_top_n=1, iou_threshold=0.7)
    got = run(proposals_model(anchors, config), rpn_scores=np.ones((1, 1), np.float32), rpn_deltas=deltas)
    whole = [[[0, 0, IMAGE[1] - 1, IMAGE[0] - 1]]]
    np.testing.assert_array_equal(got["rois"], whole)
    np.testing.assert_array_equal(proposals_reference(np.ones((1, 1)), deltas, anchors, config)[0], whole)


def test_proposals_dynamic_batch_and_composition() -> None:
    """Batch 1 and 3 through one model; proposals feed crop_and_resize inside one graph (distinct prefixes)."""
    anchors = grid_anchors()
    config = PROPOSAL_CONFIGS[0]
    g_p, g_c = GraphBuilder("proposals/"), GraphBuilder("roi_pool/")
    t = proposals(g_p, "rpn_scores", "rpn_deltas", anchors, config)
    crops = crop_and_resize(g_c, "features", t.rois, image_size=IMAGE, feature_size=FEATURE, crop_size=3)
    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        g_p.nodes + g_c.nodes + [helper.make_node("Identity", [crops], ["crops"]),
                                 helper.make_node("Identity", [t.rois], ["rois"])],
        "chain", [info("rpn_scores", TensorProto.FLOAT, ["N", 60]), info("rpn_deltas", TensorProto.FLOAT, ["N", 60, 4]),
                  info("features", TensorProto.FLOAT, ["N", 2, *FEATURE])],
        [info("crops", TensorProto.FLOAT, ["N*30", 2, 3, 3]), info("rois", TensorProto.FLOAT, ["N", 30, 4])],
        g_p.initializers + g_c.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(3)
    for batch in (1, 3):
        scores = rng.uniform(0, 1, (batch, 60)).astype(np.float32)
        deltas = rng.normal(0, 0.3, (batch, 60, 4)).astype(np.float32)
        features = rng.normal(size=(batch, 2, *FEATURE)).astype(np.float32)
        got = run(model, rpn_scores=scores, rpn_deltas=deltas, features=features)
        rois = proposals_reference(scores, deltas, anchors, config)[0]
        np.testing.assert_allclose(got["rois"], rois, atol=1e-4)
        assert got["crops"].shape == (batch * 30, 2, 3, 3)
        np.testing.assert_allclose(got["crops"], crop_and_resize_reference(features, rois, IMAGE, 3), atol=1e-4)


# --------------------------------------------------------------------------------------------- crop_and_resize

@pytest.fixture(scope="module")
def tf() -> Any:
    return pytest.importorskip("tensorflow")


def tf_crop_and_resize(tf: Any, features: np.ndarray, rois: np.ndarray, image: tuple[int, int], n: int) -> np.ndarray:
    """What TAO's Keras ROI pooling computes, in our NCHW / [N·R] layout."""
    height, width = image
    boxes = rois.reshape(-1, 4)[:, [1, 0, 3, 2]] / np.array([height - 1, width - 1] * 2, np.float32)
    index = np.repeat(np.arange(rois.shape[0]), rois.shape[1])
    out = tf.image.crop_and_resize(features.transpose(0, 2, 3, 1), boxes, index, [n, n], method="bilinear",
                                   extrapolation_value=0.0)
    return out.numpy().transpose(0, 3, 1, 2)


def inside_rois(rng: np.random.Generator, image: tuple[int, int], count: int) -> np.ndarray:
    """Boxes inside the image: ordinary, tiny (< 1 feature pixel), degenerate (x1 == x2 and y1 == y2), full image."""
    height, width = image
    xy = rng.uniform(0, [width - 1, height - 1], (2, count, 2))
    boxes = np.concatenate([xy.min(0), xy.max(0)], -1)
    boxes[1, 2:] = boxes[1, :2] + rng.uniform(0, 6, 2)  # tiny
    boxes[2, 2] = boxes[2, 0]  # x1 == x2
    boxes[3, 3] = boxes[3, 1]  # y1 == y2
    boxes[4] = [0, 0, width - 1, height - 1]
    boxes[5] = 0  # padding row
    return np.clip(boxes, 0, [width - 1, height - 1] * 2).astype(np.float32)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_roi_align_equals_tf_crop_and_resize_inside_the_map(tf: Any, n: int) -> None:
    rng = np.random.default_rng(n)
    image, feature = (96, 112), (6, 7)
    features = rng.normal(size=(2, 3, *feature)).astype(np.float32)
    rois = np.stack([inside_rois(rng, image, 12), inside_rois(rng, image, 12)])
    want = tf_crop_and_resize(tf, features, rois, image, n)
    got = run(crop_and_resize_model(image, feature, 3, n, 12), features=features, rois=rois)["crops"]
    assert got.shape == (24, 3, n, n)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(crop_and_resize_reference(features, rois, image, n), want, rtol=0, atol=1e-5)


def test_outside_the_map_roi_align_clamps_within_one_pixel(tf: Any) -> None:
    """Image 4×4 on a 4×4 map (pixels = feature pixels); samples along row 1 at x = −2, −1.5, ..., 4.5. TF gives 0
    outside [0, 3]; RoiAlign gives the edge value for x in [−1, 0) and (3, 4], and 0 beyond."""
    features = (np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) + 1)
    rois = np.array([[[-2.0, 1.0, 4.5, 1.0]]], np.float32)
    n = 14
    xs = np.linspace(-2.0, 4.5, n)
    tf_row = tf_crop_and_resize(tf, features, rois, (4, 4), n)[0, 0, 0]
    ort_row = run(crop_and_resize_model((4, 4), (4, 4), 1, n, 1), features=features, rois=rois)["crops"][0, 0, 0]
    row = features[0, 0, 1]
    inside = (xs >= 0) & (xs <= 3)
    np.testing.assert_allclose(tf_row, np.where(inside, np.interp(xs, np.arange(4), row), 0), atol=1e-6)
    np.testing.assert_allclose(crop_and_resize_reference(features, rois, (4, 4), n)[0, 0, 0], tf_row, atol=1e-6)
    np.testing.assert_allclose(ort_row[inside], tf_row[inside], atol=1e-5)
    clamped = np.where(xs < 0, row[0], row[3])
    near = ~inside & (xs >= -1) & (xs <= 4)
    np.testing.assert_allclose(ort_row[near], clamped[near], atol=1e-5)
    np.testing.assert_array_equal(ort_row[(xs < -1) | (xs > 4)], 0)
    assert near.sum() == 4 and not np.allclose(ort_row[near], tf_row[near])


def test_output_half_pixel_mode_would_clamp_small_rois(tf: Any) -> None:
    """Why ROI_ALIGN_MODE is half_pixel: output_half_pixel forces a ROI to ≥ 1×1 feature pixel, so a small ROI
    (here 0.3 feature pixels wide once widened) is sampled over a whole pixel instead of TF's points."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1, 1, 4, 4)).astype(np.float32)
    rois = np.array([[[1.0, 1.0, 1.2, 1.15]]], np.float32)
    want = tf_crop_and_resize(tf, features, rois, (4, 4), 2)
    good = run(crop_and_resize_model((4, 4), (4, 4), 1, 2, 1), features=features, rois=rois)["crops"]
    np.testing.assert_allclose(good, want, atol=1e-5)
    widened = np.array([[0.9, 0.925, 1.3, 1.225]], np.float32)  # each side ± half a step, no half-pixel shift
    node = helper.make_node("RoiAlign", ["features", "boxes", "index"], ["crops"], mode="avg", output_height=2,
                            output_width=2, sampling_ratio=1, coordinate_transformation_mode="output_half_pixel")
    info = helper.make_tensor_value_info
    graph = helper.make_graph([node], "legacy", [info("features", TensorProto.FLOAT, [1, 1, 4, 4]),
                                                 info("boxes", TensorProto.FLOAT, [1, 4]),
                                                 info("index", TensorProto.INT64, [1])],
                              [info("crops", TensorProto.FLOAT, [1, 1, 2, 2])])
    legacy = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    legacy.ir_version = 8
    bad = run(legacy, features=features, boxes=widened, index=np.zeros(1, np.int64))["crops"]
    assert np.abs(bad - want).max() > 1e-2


def test_crop_and_resize_hand_check() -> None:
    """DETECTORS-TWO-STAGE.md §7: ramp f[y, x] = x on 4×4, box over the full map, n = 2 → [0, 3] per row."""
    features = np.tile(np.arange(4, dtype=np.float32), (4, 1))[None, None]
    rois = np.array([[[0, 0, 63, 63]]], np.float32)  # a 64×64 image: 63 ↦ feature pixel 3
    want = np.tile([0.0, 3.0], (2, 1))
    np.testing.assert_allclose(crop_and_resize_reference(features, rois, (64, 64), 2)[0, 0], want)
    got = run(crop_and_resize_model((64, 64), (4, 4), 1, 2, 1), features=features, rois=rois)["crops"]
    np.testing.assert_allclose(got[0, 0], want, atol=1e-6)


# --------------------------------------------------------------------------------------------- detections

def rcnn_inputs(seed: int, rois_per_image: int, classes: int, *, ties: bool) -> tuple[np.ndarray, ...]:
    """Image 0: real ROIs, the last 5 zero padding with confident scores; image 1: only background."""
    rng = np.random.default_rng(seed)
    height, width = IMAGE
    xy = rng.uniform(0, [width - 1, height - 1], (2, 2, rois_per_image, 2))
    rois = np.concatenate([xy.min(0), xy.max(0) + 1], -1)
    rois = np.clip(rois, 0, [width - 1, height - 1] * 2)
    rois[0, -5:] = 0
    if ties:
        logits = rng.integers(0, 4, (2 * rois_per_image, classes + 1)).astype(np.float64)
    else:
        logits = rng.normal(0, 2, (2 * rois_per_image, classes + 1))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[rois_per_image - 5:rois_per_image, 0] = 0.99  # padding rows of image 0
    probs[rois_per_image:] = 0  # image 1: foreground probability exactly 0, not above any threshold (strict >)
    probs[rois_per_image:, classes] = 1
    deltas = rng.normal(0, 1, (2 * rois_per_image, 4 * classes))
    if ties:
        deltas = np.round(deltas * 4) / 4
    return rois.astype(np.float32), probs.astype(np.float32), deltas.astype(np.float32)


DETECTION_CONFIGS = [
    DetectionConfig(*IMAGE, num_classes=3, confidence_threshold=0.05, iou_threshold=0.3, keep_top_k=20),
    DetectionConfig(*IMAGE, num_classes=3, confidence_threshold=0.0, iou_threshold=0.5, keep_top_k=5),
    DetectionConfig(*IMAGE, num_classes=2, confidence_threshold=1e-4, iou_threshold=0.7, keep_top_k=60,
                    regr_std=(1.0, 2.0, 3.0, 4.0)),
]


@pytest.mark.parametrize("config", DETECTION_CONFIGS)
@pytest.mark.parametrize("ties", [False, True])
def test_detections_equal_reference(config: DetectionConfig, ties: bool) -> None:
    r = 16
    model = detections_model(config, r)
    for seed in range(2):
        rois, probs, deltas = rcnn_inputs(seed, r, config.num_classes, ties=ties)
        got = run(model, rois=rois, class_probs=probs, class_deltas=deltas)
        nms, count = detections_reference(rois, probs, deltas, config)
        np.testing.assert_array_equal(got["NMS_1"], count)
        np.testing.assert_array_equal(got["NMS"][..., :3], nms[..., :3])
        np.testing.assert_allclose(got["NMS"], nms, rtol=0, atol=1e-5)
        assert count[1].item() == 0 and count[0].item() > 0
        found = unpack_nms(got["NMS"], got["NMS_1"])
        assert (found[0].labels < config.num_classes).all() and (found[0].scores > config.confidence_threshold).all()
        assert (found[0].boxes >= 0).all() and (found[0].boxes < 1).all()
        assert (np.diff(found[0].scores) <= 0).all()
        padding = got["NMS"][0, 0, count[0].item():]
        np.testing.assert_array_equal(padding, np.tile([0, -1, 0, 0, 0, 0, 0], (len(padding), 1)))


def test_padding_rois_never_detect() -> None:
    """All-zero ROIs with probability 1 for a class give no detection (their +1 width would decode to a box)."""
    config = DETECTION_CONFIGS[0]
    rois = np.zeros((2, 4, 4), np.float32)
    probs = np.tile(np.array([1.0, 0, 0, 0], np.float32), (8, 1))
    deltas = np.zeros((8, 12), np.float32)
    got = run(detections_model(config, 4), rois=rois, class_probs=probs, class_deltas=deltas)
    assert got["NMS_1"].tolist() == [[[[0]]], [[[0]]]]
    assert detections_reference(rois, probs, deltas, config)[1].sum() == 0


def test_detections_hand_check() -> None:
    """DETECTORS-TWO-STAGE.md §7: ROI [0, 0, 99, 99], deltas (10·0.1, 0, 5·log 2, 0), std (10, 10, 5, 5) → centre x 60,
    width 200 → x1 −40 → 0, x2 160 → W − 1; normalised by W = 120, H = 100. Class 1 (score 0.7) comes out with label 1;
    class 0 at probability exactly the threshold does not (strict >)."""
    config = DetectionConfig(100, 120, num_classes=2, confidence_threshold=0.2, iou_threshold=0.3, keep_top_k=4)
    rois = np.array([[[0, 0, 99, 99]]], np.float32)
    probs = np.array([[0.2, 0.7, 0.1]], np.float32)
    deltas = np.array([[0, 0, 0, 0, 1.0, 0, 5 * math.log(2), 0]], np.float32)
    want = [0, 1, 0.7, 0, 0, 119 / 120, 99 / 100]
    nms, count = detections_reference(rois, probs, deltas, config)
    got = run(detections_model(config, 1), rois=rois, class_probs=probs, class_deltas=deltas)
    for rows, kept in [(nms, count), (got["NMS"], got["NMS_1"])]:
        assert kept.tolist() == [[[[1]]]]
        np.testing.assert_allclose(rows[0, 0, 0], want, atol=1e-6)


# --------------------------------------------------------------------------------------------- models and configs

def test_models_pass_the_full_checker_with_standard_ops() -> None:
    models = [proposals_model(grid_anchors(), PROPOSAL_CONFIGS[0]),
              crop_and_resize_model(IMAGE, FEATURE, 8, 7, 30),
              detections_model(DETECTION_CONFIGS[0], 30)]
    for model in models:
        onnx.checker.check_model(model, full_check=True)
        assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
        assert [o.version for o in model.opset_import] == [OPSET]
    assert {"NonMaxSuppression", "TopK", "ScatterND"} <= {node.op_type for node in models[0].graph.node}
    assert "RoiAlign" in {node.op_type for node in models[1].graph.node}
    assert [o.name for o in models[2].graph.output] == ["NMS", "NMS_1"]
    assert [o.type.tensor_type.elem_type for o in models[2].graph.output] == [TensorProto.FLOAT, TensorProto.INT32]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ProposalConfig(1, 80, 10, 5, 0.7), "at least 2"),
    (lambda: ProposalConfig(*IMAGE, 0, 5, 0.7), "pre_nms_top_n"),
    (lambda: ProposalConfig(*IMAGE, 10, 5, 1.5), "iou_threshold"),
    (lambda: ProposalConfig(*IMAGE, 10, 5, 0.7, std_scaling=0.0), "std_scaling"),
    (lambda: DetectionConfig(*IMAGE, 0, 0.1, 0.3, 10), "num_classes"),
    (lambda: DetectionConfig(*IMAGE, 2, 0.1, 0.3, 0), "keep_top_k"),
    (lambda: DetectionConfig(*IMAGE, 2, 0.1, 0.3, 10, regr_std=(10.0, 10.0, 0.0, 5.0)), "regr_std"),
    (lambda: crop_and_resize_model(IMAGE, FEATURE, 1, 0, 3), "crop_size"),
    (lambda: proposals_model(np.zeros((3, 5)), PROPOSAL_CONFIGS[0]), "anchors"),
])
def test_bad_parameters_are_rejected(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
