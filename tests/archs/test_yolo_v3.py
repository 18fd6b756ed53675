"""YOLOv3 (issue 15): the check values of DETECTORS-SINGLE-STAGE.md §5.2–5.4 (grid, decoding, target encoding),
the loss against a NumPy transcription of §5.4, the network's maps and heads, and the spec wiring (both names,
anchor fields, the deployed outputs). Training, export and the tools run in test_every_architecture.py and
tests/e2e/test_anchor_detectors_e2e.py."""

from __future__ import annotations

import numpy as np
import pytest

from libtlt.archs.yolo_v3 import ARCHITECTURE, encoding
from libtlt.archs.yolo_v3.network import HEAD_NAMES, OUTPUT_NAME, YoloNetworkConfig, build_yolo, feature_sizes
from libtlt.registry import get_architecture
from libtlt.spec.loader import load_spec_text

COCO = [[(116, 90), (156, 198), (373, 326)], [(30, 61), (62, 45), (59, 119)], [(10, 13), (16, 30), (33, 23)]]


def spec_of(text: str | None = None) -> object:
    spec = load_spec_text(text or ARCHITECTURE.default_spec(), ARCHITECTURE.spec_message(), name="yolo.txt")
    ARCHITECTURE.validate(spec)
    return spec


def test_both_names_serve_the_same_architecture() -> None:
    assert get_architecture("yolo") is get_architecture("yolo_v3") is ARCHITECTURE
    assert {"train", "evaluate", "infer", "export", "tensorfile"} <= ARCHITECTURE.verbs


def test_anchor_count_of_the_manuals_input() -> None:
    # §5.2: 1248×384, 3 + 3 + 3 shapes: (39·12 + 78·24 + 156·48)·3
    assert len(ARCHITECTURE.anchors(spec_of())) == 29_484
    assert ARCHITECTURE.feature_sizes(spec_of()) == [(12, 39), (24, 78), (48, 156)]


def test_decoding_check_value() -> None:
    anchors = encoding.grid_anchors((416, 416), feature_sizes((416, 416)), COCO)
    boxes = encoding.decode_boxes(np.zeros((1, len(anchors), 7), np.float32), anchors)
    np.testing.assert_allclose(boxes[0, 0] * 416, [-42, -29, 74, 61], atol=1e-4)  # big (116, 90), cell (0, 0)
    # the last small anchor of the last cell: corner (51/52, 51/52), centre half a step further
    np.testing.assert_allclose(boxes[0, -1] * 416, [416 - 4 - 16.5, 416 - 4 - 11.5, 416 - 4 + 16.5, 416 - 4 + 11.5],
                               atol=1e-3)
    logits = np.array([[[0.0, 0.0, 0.0, 0.0, 2.0, -1.0, 1.0]]], np.float32)
    sig = 1 / (1 + np.exp(-np.array([2.0, -1.0, 1.0])))
    np.testing.assert_allclose(encoding.scores(logits)[0, 0], [sig[1] * sig[0], sig[2] * sig[0]], rtol=1e-6)


def _encode(boxes: list[list[float]], ids: list[int], size: int = 416, classes: int = 2) -> np.ndarray:
    import tensorflow as tf

    encode = encoding.target_encoder((size, size), feature_sizes((size, size)), COCO, classes)
    return encode(tf.constant(boxes, tf.float32), tf.constant(ids, tf.int32)).numpy()


def test_target_encoding_check_value() -> None:
    # §5.3: GT [100, 100, 200, 180] at 416 → big anchor 0, cell row 4 col 4
    target = _encode([[100, 100, 200, 180], [0, 0, 0, 0]], [1, -1])
    anchors = 3 * (13 * 13 + 26 * 26 + 52 * 52)
    assert target.shape == (anchors + 2, 8)
    assert np.flatnonzero(target[:anchors, 5]).tolist() == [(4 * 13 + 4) * 3]
    row = target[(4 * 13 + 4) * 3]
    np.testing.assert_allclose(row, [0.6875, 0.375, np.log(100 / 116), np.log(80 / 90), 1.953772, 1.0, 0.0, 1.0],
                               atol=1e-5)
    # the ground truth follows the anchor rows: normalised corners, flag in column 5; padding stays zero
    np.testing.assert_allclose(target[anchors], [100 / 416, 100 / 416, 200 / 416, 180 / 416, 0, 1, 0, 0], atol=1e-6)
    assert not target[anchors + 1].any()


def test_a_later_box_in_the_same_slot_wins_and_others_keep_theirs() -> None:
    target = _encode([[100, 100, 200, 180], [101, 101, 201, 181], [10, 10, 20, 24]], [0, 1, 0])
    anchors = 3 * (13 * 13 + 26 * 26 + 52 * 52)
    positives = np.flatnonzero(target[:anchors, 5])
    assert len(positives) == 2  # the first two share big anchor 0 of cell (4, 4)
    slot = (4 * 13 + 4) * 3
    assert slot in positives and target[slot, 6:].tolist() == [0.0, 1.0]  # the later box's class
    small = 3 * (13 * 13 + 26 * 26) + (2 * 52 + 1) * 3 + 0  # centre (15, 17) px: cell (2, 1) of 8-pixel cells
    assert small in positives  # 10×14 px → small anchor (10, 13)


def _numpy_loss(y_true: np.ndarray, y_pred: np.ndarray, anchors: np.ndarray, *, loc: float, neg: float, cls: float,
                neutral: float) -> float:
    """§5.4 transcribed: the batch's total, per-term normalised by the batch's positive / negative counts."""
    count = len(anchors)
    target, truth = y_true[:, :count], y_true[:, count:]
    sig = 1 / (1 + np.exp(-y_pred.astype(np.float64)))
    positive = target[..., 5]
    loc_term = target[..., 4] * 0.5 * (((sig[..., :2] - target[..., :2]) ** 2).sum(-1)
                                      + ((y_pred[..., 2:4] - target[..., 2:4]) ** 2).sum(-1))
    centre = anchors[:, :2] + sig[..., :2] * anchors[:, 4:6]
    half = np.exp(y_pred[..., 2:4]) * anchors[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], -1)
    negatives = np.zeros_like(positive)
    for b in range(len(y_true)):
        gts = truth[b][truth[b, :, 5] > 0, :4]
        for a in range(count):
            best = 0.0
            for g in gts:
                w = max(0.0, min(boxes[b, a, 2], g[2]) - max(boxes[b, a, 0], g[0]))
                h = max(0.0, min(boxes[b, a, 3], g[3]) - max(boxes[b, a, 1], g[1]))
                union = np.prod(boxes[b, a, 2:] - boxes[b, a, :2]) + np.prod(g[2:] - g[:2]) - w * h
                best = max(best, w * h / union)
            negatives[b, a] = (1 - positive[b, a]) * (best < neutral)

    def bce(label: np.ndarray, p: np.ndarray) -> np.ndarray:
        return -(label * np.log(p) + (1 - label) * np.log(1 - p))

    obj = bce(positive, sig[..., 4])
    cls_term = bce(target[..., 6:], sig[..., 5:]).sum(-1)
    n_pos, n_neg = max(positive.sum(), 1.0), max(negatives.sum(), 1.0)
    return float((positive * (loc * loc_term + obj + cls * cls_term)).sum() / n_pos
                  + neg * (negatives * obj).sum() / n_neg)


@pytest.mark.parametrize("neutral", [0.5, 0.05])
def test_loss_equals_the_formula(neutral: float) -> None:
    import tensorflow as tf

    size = 128
    anchors = encoding.grid_anchors((size, size), feature_sizes((size, size)), COCO)
    encode = encoding.target_encoder((size, size), feature_sizes((size, size)), COCO, 2)
    y_true = np.stack([encode(tf.constant(b, tf.float32), tf.constant(i)).numpy() for b, i in (
        ([[10, 12, 50, 70], [60, 60, 120, 100]], [0, 1]), ([[30, 30, 40, 38], [0, 0, 0, 0]], [1, -1]))])
    rng = np.random.default_rng(0)
    y_pred = rng.normal(0, 1.0, (2, len(anchors), 7)).astype(np.float32)
    loss = encoding.make_loss(anchors, loc_weight=5.0, neg_obj_weight=50.0, class_weight=1.0, neutral_iou=neutral)
    per_image = loss(tf.constant(y_true), tf.constant(y_pred)).numpy()
    expected = _numpy_loss(y_true, y_pred, anchors, loc=5.0, neg=50.0, cls=1.0, neutral=neutral)
    assert per_image.shape == (2,)
    np.testing.assert_allclose(per_image.mean(), expected, rtol=1e-4)


def test_the_neutral_band_removes_overlapping_negatives() -> None:
    import tensorflow as tf

    size = 128
    anchors = encoding.grid_anchors((size, size), feature_sizes((size, size)), COCO)
    encode = encoding.target_encoder((size, size), feature_sizes((size, size)), COCO, 1)
    y_true = encode(tf.constant([[0, 0, 64, 64]], tf.float32), tf.constant([0])).numpy()[None]
    y_pred = np.zeros((1, len(anchors), 6), np.float32)
    centres = encoding.decode_boxes(y_pred, anchors)[0]
    inside = ((centres[:, :2] + centres[:, 2:]) / 2 < 0.5).all(axis=1)
    y_pred[0, :, 4] = np.where(inside, 3.0, -5.0)  # confident where the predicted boxes overlap the ground truth
    strict = encoding.make_loss(anchors, loc_weight=1, neg_obj_weight=50, class_weight=1, neutral_iou=1.0)
    lenient = encoding.make_loss(anchors, loc_weight=1, neg_obj_weight=50, class_weight=1, neutral_iou=0.01)
    # at 0.01 the overlapping confident predictions are neutral, not negatives: only the easy ones are left
    assert float(lenient(y_true, y_pred)[0]) < 0.5 * float(strict(y_true, y_pred)[0])


@pytest.mark.parametrize("blocks", [0, 2])
def test_network_maps_heads_and_prior(blocks: int) -> None:
    model = build_yolo(YoloNetworkConfig("resnet10", (3, 128, 192), 3, (3, 2, 1), arch_conv_blocks=blocks))
    assert model.output_names == [OUTPUT_NAME] or model.output.name.startswith(OUTPUT_NAME)
    assert tuple(model.output.shape[1:]) == ((4 * 6) * 3 + (8 * 12) * 2 + (16 * 24) * 1, 8)
    for name in HEAD_NAMES:
        model.get_layer(name)
    assert sum(1 for layer in model.layers if layer.name.startswith("yolo_conv1_")) == 3 * (2 + 2 * blocks)
    bias = model.get_layer("conv_big_object").bias.numpy().reshape(3, 8)
    np.testing.assert_allclose(1 / (1 + np.exp(-bias[:, 4])), 0.01, rtol=1e-5)
    assert not bias[:, [0, 1, 2, 3, 5, 6, 7]].any()


def test_darknet_takes_its_own_stride_32_level() -> None:
    model = build_yolo(YoloNetworkConfig("darknet19", (3, 128, 128), 1, (1, 1, 1), arch_conv_blocks=0))
    assert not any(layer.name.startswith("yolo_expand_conv1") for layer in model.layers)
    assert tuple(model.output.shape[1:]) == (4 * 4 + 8 * 8 + 16 * 16, 6)


def test_deployed_outputs_and_labels() -> None:
    spec = spec_of()
    assert ARCHITECTURE.deployed_output_names(spec) == ["BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3"]
    assert ARCHITECTURE.export_outputs(spec) == [OUTPUT_NAME]
    assert ARCHITECTURE.labels(["car", "cyclist"]) == ["car", "cyclist"]
    settings = ARCHITECTURE.deepstream_settings(spec, ["car", "cyclist"])
    assert settings["num-detected-classes"] == 2 and settings["labels"] == ["car", "cyclist"]
    assert settings["parse-bbox-func-name"] == "NvDsInferParseCustomBatchedNMSTLT"


def test_raw_and_deployed_outputs_give_the_same_detections() -> None:
    """The NumPy path (a .tlt's raw output) and the BatchedNMS path (an engine's) read the same detections."""
    from libtlt.runtime.onnx_nms import batched_reference

    spec = spec_of(ARCHITECTURE.sample_spec(type("Data", (), {"train": "x/*", "images": "y/images"})()))
    anchors = ARCHITECTURE.anchors(spec)
    rng = np.random.default_rng(1)
    raw = rng.normal(-2.0, 2.0, (2, len(anchors), 8)).astype(np.float32)
    detect = ARCHITECTURE.detector(spec, threshold=0.2)
    from_raw = detect({OUTPUT_NAME: raw})
    names = ARCHITECTURE.deployed_output_names(spec)
    nms = ARCHITECTURE.nms(spec)
    deployed = batched_reference(encoding.decode_boxes(raw, anchors), encoding.scores(raw), nms)
    from_deployed = detect(dict(zip(names, deployed, strict=True)))
    for ours, theirs in zip(from_raw, from_deployed, strict=True):
        assert len(ours.class_ids) > 0
        np.testing.assert_array_equal(ours.class_ids, theirs.class_ids)
        np.testing.assert_allclose(ours.boxes, theirs.boxes)
        assert ((ours.class_ids >= 0) & (ours.class_ids < 3)).all() and (ours.confidences > 0.2).all()


def test_targets_decode_back_to_their_boxes() -> None:
    """Raw outputs equal to the targets (σ⁻¹ of the cell offsets, the log sizes) decode to the ground truth, on a
    non-square input: x and y, width and height are not swapped anywhere."""
    import tensorflow as tf

    width, height = 320, 192
    shapes = [[(33, 101), (68, 52), (123, 71)], [(22, 64), (51, 28), (86, 38)], [(9, 25), (13, 38), (29, 21)]]
    sizes = feature_sizes((height, width))
    anchors = encoding.grid_anchors((height, width), sizes, shapes)
    truth = np.array([[62, 28, 131, 56], [110, 39, 192, 97], [151, 12, 175, 83], [300, 150, 318, 190]], np.float32)
    target = encoding.target_encoder((width, height), sizes, shapes, 3)(
        tf.constant(truth), tf.constant([0, 1, 2, 0])).numpy()[:len(anchors)]
    positives = np.flatnonzero(target[:, 5])
    assert len(positives) == len(truth)
    raw = np.zeros((1, len(anchors), 8), np.float32)
    offsets = np.clip(target[:, :2], 1e-6, 1 - 1e-6)
    raw[0, :, :2], raw[0, :, 2:4] = np.log(offsets / (1 - offsets)), target[:, 2:4]
    decoded = encoding.decode_boxes(raw, anchors)[0, positives] * [width, height, width, height]
    order = np.argsort(decoded[:, 0])
    np.testing.assert_allclose(decoded[order], truth[np.argsort(truth[:, 0])], atol=1e-3)
