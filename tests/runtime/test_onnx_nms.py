"""The standard-ONNX NMS tail against its NumPy reference (onnxruntime), and the reference against hand checks."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from libtlt.runtime.onnx_nms import (
    BATCHED_OUTPUT_NAMES,
    FILL_SCORE,
    NmsConfig,
    append_nms,
    batched_reference,
    nms_reference,
    nms_tail_model,
    run_tail,
    unpack_batched,
    unpack_nms,
)
from libtlt.runtime.onnxruntime_backend import OrtModel


def run(model: onnx.ModelProto, boxes: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    return OrtModel(model.SerializeToString()).run({"boxes": boxes, "scores": scores})


def random_inputs(seed: int, batch: int = 4, anchors: int = 60, columns: int = 4, *,
                  quantized: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Boxes partly outside [0, 1]; image 1 has no score over 0.3. ``quantized`` puts corners on a 1/8 grid and
    scores on a 1/8 grid, so equal scores, identical boxes and IoUs exactly at common thresholds occur often."""
    rng = np.random.default_rng(seed)
    if quantized:
        xy = rng.integers(-1, 8, (batch, anchors, 2)) / 8
        wh = rng.integers(1, 5, (batch, anchors, 2)) / 8
        scores = rng.integers(0, 9, (batch, anchors, columns)) / 8
    else:
        xy = rng.uniform(-0.1, 0.9, (batch, anchors, 2))
        wh = rng.uniform(0.02, 0.4, (batch, anchors, 2))
        scores = rng.uniform(0, 1, (batch, anchors, columns))
    if batch > 1:
        scores[1] *= 0.3
    boxes = np.concatenate([xy, xy + wh], axis=-1)
    return boxes.astype(np.float32), scores.astype(np.float32)


def assert_same(got: dict[str, np.ndarray], want: tuple[np.ndarray, np.ndarray], config: NmsConfig) -> None:
    nms_name, count_name = config.output_names
    np.testing.assert_array_equal(got[count_name], want[1])
    # Same rows in the same order: labels and image ids exactly, floats to 1e-6 (they are in fact bit-equal).
    np.testing.assert_array_equal(got[nms_name][..., :2], want[0][..., :2])
    np.testing.assert_allclose(got[nms_name], want[0], rtol=0, atol=1e-6)


CONFIGS = [
    NmsConfig(0.3, 0.5, 20),
    NmsConfig(0.3, 0.5, 20, top_k=7, background_class=0),
    NmsConfig(0.125, 0.5, 200, top_k=40, background_class=3, box_order="yxyx"),
    NmsConfig(0.0, 0.0, 5, background_class=1, label_offset=1, clip_boxes=False),
    NmsConfig(0.5, 1.0, 300),
]


@pytest.mark.parametrize(("config", "quantized"), list(itertools.product(CONFIGS, [False, True])))
def test_tail_equals_reference(config: NmsConfig, quantized: bool) -> None:
    model = nms_tail_model(config, 4)
    for seed in range(3):
        boxes, scores = random_inputs(seed, quantized=quantized)
        assert_same(run(model, boxes, scores), nms_reference(boxes, scores, config), config)


def test_quantized_inputs_really_have_ties() -> None:
    _, scores = random_inputs(0, quantized=True)
    assert len(np.unique(scores[0, :, 0])) < scores.shape[1] // 4


def test_hand_check_from_the_docs() -> None:
    """DETECTORS-SINGLE-STAGE.md §7.3: IoU 0.818 is suppressed at 0.6, IoU 0.333 is not; rows past 2 are padding."""
    boxes = np.array([[[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10]]], np.float32) / 20
    scores = np.array([[[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]]], np.float32)  # column 0 = background
    config = NmsConfig(0.5, 0.6, 5, background_class=0)
    nms, count = nms_reference(boxes, scores, config)
    assert count.tolist() == [[[[2]]]]
    np.testing.assert_allclose(nms[0, 0, :2], [[0, 1, 0.9, 0, 0, 0.5, 0.5], [0, 1, 0.7, 0.25, 0, 0.75, 0.5]])
    np.testing.assert_array_equal(nms[0, 0, 2:], np.tile([0, -1, 0, 0, 0, 0, 0], (3, 1)))
    assert_same(run(nms_tail_model(config, 2), boxes, scores), (nms, count), config)


def test_names_shapes_dtypes_and_dynamic_batch() -> None:
    config = NmsConfig(0.2, 0.5, 9, background_class=0)
    model = nms_tail_model(config, 4)
    assert [o.name for o in model.graph.output] == ["NMS", "NMS_1"]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT, TensorProto.INT32]
    assert [i.name for i in model.graph.input] == ["boxes", "scores"]
    for batch in (1, 4):
        boxes, scores = random_inputs(5, batch=batch)
        got = run(model, boxes, scores)
        assert got["NMS"].shape == (batch, 1, 9, 7) and got["NMS"].dtype == np.float32
        assert got["NMS_1"].shape == (batch, 1, 1, 1) and got["NMS_1"].dtype == np.int32
        np.testing.assert_array_equal(got["NMS"][:, 0, :, 0], np.repeat(np.arange(batch), 9).reshape(batch, 9))


def test_custom_output_names() -> None:
    config = NmsConfig(0.2, 0.5, 9, output_names=("dets", "dets_count"))
    model = nms_tail_model(config, 3)
    boxes, scores = random_inputs(6, columns=3)
    got = run(model, boxes, scores)
    assert set(got) == {"dets", "dets_count"}
    assert_same(got, nms_reference(boxes, scores, config), config)


def test_checker_passes_and_only_standard_ops() -> None:
    for config in CONFIGS:
        for opset in (13, 17):
            model = nms_tail_model(config, 4, opset=opset)
            onnx.checker.check_model(model, full_check=True)
            assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
            assert "NonMaxSuppression" in {node.op_type for node in model.graph.node}
    boxes, scores = random_inputs(7)
    assert_same(run(nms_tail_model(CONFIGS[1], 4, opset=13), boxes, scores),
                nms_reference(boxes, scores, CONFIGS[1]), CONFIGS[1])


def test_keep_top_k_truncates_to_the_best_rows() -> None:
    boxes, scores = random_inputs(8, anchors=80)
    wide, narrow = NmsConfig(0.1, 0.7, 500), NmsConfig(0.1, 0.7, 6)
    all_rows, all_counts = nms_reference(boxes, scores, wide)
    got = run(nms_tail_model(narrow, 4), boxes, scores)
    assert_same(got, nms_reference(boxes, scores, narrow), narrow)
    for n in range(4):
        assert got["NMS_1"][n, 0, 0, 0] == min(6, all_counts[n, 0, 0, 0])
        np.testing.assert_array_equal(got["NMS"][n, 0, :got["NMS_1"][n, 0, 0, 0]],
                                      all_rows[n, 0, :got["NMS_1"][n, 0, 0, 0]])
    assert (got["NMS_1"][[0, 2, 3]] == 6).all()
    scores_sorted = got["NMS"][..., 2]
    assert (np.diff(scores_sorted, axis=-1) <= 0).all()


def test_padding_when_fewer_candidates_than_keep_top_k() -> None:
    """keep_top_k above classes·anchors (TopK's input is padded) and images without any box over the threshold."""
    boxes, scores = random_inputs(9, anchors=5, columns=2)
    config = NmsConfig(0.35, 0.5, 32)
    got = run(nms_tail_model(config, 2), boxes, scores)
    assert_same(got, nms_reference(boxes, scores, config), config)
    assert got["NMS_1"][1, 0, 0, 0] == 0
    for n in range(4):
        count = got["NMS_1"][n, 0, 0, 0]
        assert count <= 10
        np.testing.assert_array_equal(got["NMS"][n, 0, count:], np.tile([n, -1, 0, 0, 0, 0, 0], (32 - count, 1)))


def test_no_detection_anywhere() -> None:
    boxes, scores = random_inputs(10)
    config = NmsConfig(0.999, 0.5, 4)
    got = run(nms_tail_model(config, 4), boxes, scores * 0.5)
    assert (got["NMS_1"] == 0).all()
    assert_same(got, nms_reference(boxes, scores * 0.5, config), config)


def test_threshold_is_strict() -> None:
    boxes = np.array([[[0, 0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6]]], np.float32)
    scores = np.array([[[0.5], [0.625]]], np.float32)
    config = NmsConfig(0.5, 0.5, 3)
    nms, count = nms_reference(boxes, scores, config)
    assert count.item() == 1 and nms[0, 0, 0, 2] == np.float32(0.625)
    assert_same(run(nms_tail_model(config, 1), boxes, scores), (nms, count), config)


def test_iou_exactly_at_threshold_is_kept() -> None:
    """IoU 0.5 is not above 0.5; equal scores rank by anchor; identical boxes at IoU threshold 1.0 both stay."""
    boxes = np.array([[[0, 0, 0.5, 0.25], [0, 0, 0.25, 0.25], [0, 0, 0.25, 0.25]]], np.float32)
    scores = np.array([[[0.75], [0.75], [0.5]]], np.float32)
    at_half = NmsConfig(0.1, 0.5, 3)
    nms, count = nms_reference(boxes, scores, at_half)
    assert count.item() == 2 and nms[0, 0, :2, 5].tolist() == [0.5, 0.25]
    assert_same(run(nms_tail_model(at_half, 1), boxes, scores), (nms, count), at_half)
    at_one = NmsConfig(0.1, 1.0, 3)
    assert nms_reference(boxes, scores, at_one)[1].item() == 3


def test_background_column_is_skipped() -> None:
    boxes, scores = random_inputs(11, columns=4)
    for background in (0, 2, 3):
        loud = scores.copy()
        loud[..., background] = 1.0  # the best score everywhere, yet never a detection
        config = NmsConfig(0.2, 0.5, 50, background_class=background)
        got = run(nms_tail_model(config, 4), boxes, loud)
        assert_same(got, nms_reference(boxes, loud, config), config)
        rows = got["NMS"][:, 0]
        labels = rows[..., 1][rows[..., 1] >= 0]
        assert labels.size and background not in labels
        assert set(labels.astype(int)) <= {0, 1, 2, 3} - {background}


def test_label_numbering() -> None:
    """SSD (background column 0) → labels 1..C; background last (FasterRCNN) → 0..C−1; no background + offset 1."""
    boxes, scores = random_inputs(12, columns=3)
    ssd = nms_reference(boxes, scores, NmsConfig(0.2, 0.5, 50, background_class=0))[0][:, 0, :, 1]
    frcnn = nms_reference(boxes, scores[..., [1, 2, 0]], NmsConfig(0.2, 0.5, 50, background_class=2))[0][:, 0, :, 1]
    offset = nms_reference(boxes, scores[..., 1:], NmsConfig(0.2, 0.5, 50, label_offset=1))[0][:, 0, :, 1]
    np.testing.assert_array_equal(ssd, offset)
    np.testing.assert_array_equal(frcnn, np.where(ssd >= 0, ssd - 1, -1))
    assert set(np.unique(ssd)) == {-1.0, 1.0, 2.0}


def test_box_order_yxyx_writes_xyxy() -> None:
    boxes, scores = random_inputs(13)
    yxyx = NmsConfig(0.3, 0.5, 20, box_order="yxyx")
    xyxy = NmsConfig(0.3, 0.5, 20)
    want = nms_reference(boxes, scores, xyxy)
    swapped = boxes[..., [1, 0, 3, 2]]
    np.testing.assert_array_equal(nms_reference(swapped, scores, yxyx)[0], want[0])
    assert_same(run(nms_tail_model(yxyx, 4), swapped, scores), want, yxyx)


def test_boxes_are_clipped_on_output_only() -> None:
    """Clipped, the two boxes would be identical (IoU 1); unclipped their IoU is 0.5, so at 0.6 both stay."""
    boxes = np.array([[[-0.5, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]], np.float32)
    scores = np.array([[[0.9], [0.8]]], np.float32)
    config = NmsConfig(0.1, 0.6, 4)
    nms, count = nms_reference(boxes, scores, config)
    assert count.item() == 2
    np.testing.assert_array_equal(nms[0, 0, 0, 3:], [0, 0, 0.5, 0.5])
    assert_same(run(nms_tail_model(config, 1), boxes, scores), (nms, count), config)


def test_pre_nms_top_k_per_class() -> None:
    """Only a class's top_k anchors are candidates; with unknown A the graph takes min(top_k, A) at run time."""
    boxes, scores = random_inputs(14, anchors=30)
    config = NmsConfig(0.05, 0.3, 100, top_k=3)
    got = nms_reference(boxes, scores, config)
    labels = got[0][:, 0, :, 1]
    assert all((labels[n] == c).sum() <= 3 for n in range(4) for c in range(4))
    for model in (nms_tail_model(config, 4), nms_tail_model(config, 4, num_anchors=30)):
        assert_same(run(model, boxes, scores), got, config)
    big = NmsConfig(0.05, 0.3, 100, top_k=50)  # top_k above A: every anchor is a candidate
    assert_same(run(nms_tail_model(big, 4), boxes, scores), nms_reference(boxes, scores, NmsConfig(0.05, 0.3, 100)),
                big)


def test_tail_survives_fp16_conversion() -> None:
    """to_fp16 keeps NMS and TopK in float32 and the fill score (float16's lowest) exact: same detections as the
    reference on float16-rounded inputs."""
    from libtlt.runtime.onnx_precision import to_fp16

    boxes, scores = random_inputs(18)
    config = CONFIGS[1]
    got = run(to_fp16(nms_tail_model(config, 4)), boxes, scores)
    rounded = [a.astype(np.float16).astype(np.float32) for a in (boxes, scores)]
    assert_same(got, nms_reference(*rounded, config), config)


def greedy_oracle(boxes: np.ndarray, scores: np.ndarray, threshold: float, iou: float) -> list[tuple[int, int]]:
    """Textbook per-class greedy NMS in float64 for one image (tie-free inputs): sorted (class, anchor) pairs kept."""
    kept = []
    for c in range(scores.shape[1]):
        order = [int(i) for i in np.argsort(-scores[:, c]) if scores[i, c] > threshold]
        chosen: list[int] = []
        for i in order:
            ok = True
            for j in chosen:
                a, b = boxes[i].astype(np.float64), boxes[j].astype(np.float64)
                w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
                h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
                union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
                ok = ok and w * h / union <= iou
            if ok:
                chosen.append(i)
        kept += [(c, i) for i in chosen]
    return sorted(kept)


def test_reference_matches_a_textbook_oracle() -> None:
    boxes, scores = random_inputs(15, anchors=40, columns=3)
    nms, count = nms_reference(boxes, scores, NmsConfig(0.3, 0.45, 1000, clip_boxes=False))
    for n in range(4):
        rows = nms[n, 0, :count[n, 0, 0, 0]]
        anchor_of = {tuple(box): a for a, box in enumerate(boxes[n].tolist())}
        got = sorted((int(r[1]), anchor_of[tuple(r[3:].tolist())]) for r in rows)
        assert got == greedy_oracle(boxes[n], scores[n], 0.3, 0.45)


def _model_ending_in(boxes_dims: list[int | str], columns: int | str) -> onnx.ModelProto:
    """A tiny 'detector': raw input → Sigmoid scores and identity boxes, with old outputs named like a head's."""
    nodes = [helper.make_node("Sigmoid", ["logits"], ["cls/Sigmoid"], name="cls"),
             helper.make_node("Identity", ["raw_boxes"], ["loc/decoded"], name="loc")]
    inputs = [helper.make_tensor_value_info("raw_boxes", TensorProto.FLOAT, boxes_dims),
              helper.make_tensor_value_info("logits", TensorProto.FLOAT, [*boxes_dims[:2], columns])]
    outputs = [helper.make_tensor_value_info("cls/Sigmoid", TensorProto.FLOAT, [*boxes_dims[:2], columns]),
               helper.make_tensor_value_info("loc/decoded", TensorProto.FLOAT, boxes_dims)]
    graph = helper.make_graph(nodes, "detector", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_append_nms_to_a_model() -> None:
    boxes, scores = random_inputs(16)
    logits = np.log(scores / (1 - scores + 1e-6) + 1e-6).astype(np.float32)
    config = NmsConfig(0.3, 0.5, 25, top_k=10, background_class=0)
    shapes: list[list[int | str]] = [["batch", 60, 4], ["batch", "anchors", 4]]
    for dims in shapes:
        model = append_nms(_model_ending_in(dims, 4), "loc/decoded", "cls/Sigmoid", config)
        assert [o.name for o in model.graph.output] == ["NMS", "NMS_1"]
        assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        got = OrtModel(model.SerializeToString()).run({"raw_boxes": boxes, "logits": logits})
        head = OrtModel(_model_ending_in(dims, 4).SerializeToString()).run({"raw_boxes": boxes, "logits": logits})
        assert_same(got, nms_reference(head["loc/decoded"], head["cls/Sigmoid"], config), config)
        assert got["NMS_1"].ravel().tolist() != [0, 0, 0, 0]
    kept = append_nms(_model_ending_in(["N", 60, 4], 4), "loc/decoded", "cls/Sigmoid", config, keep_outputs=True)
    assert [o.name for o in kept.graph.output] == ["NMS", "NMS_1", "cls/Sigmoid", "loc/decoded"]


def test_append_nms_rejects_bad_models() -> None:
    config = NmsConfig(0.3, 0.5, 25)
    model = _model_ending_in(["N", 60, 4], 4)
    with pytest.raises(ValueError, match="no tensor"):
        append_nms(model, "missing", "cls/Sigmoid", config)
    with pytest.raises(ValueError, match="already has"):
        append_nms(model, "loc/decoded", "cls/Sigmoid", NmsConfig(0.3, 0.5, 25, output_names=("cls/Sigmoid", "n")))
    with pytest.raises(ValueError, match="not known"):
        append_nms(_model_ending_in(["N", 60, 4], "C"), "loc/decoded", "cls/Sigmoid", config)
    old = _model_ending_in(["N", 60, 4], 4)
    old.opset_import[0].version = 11
    with pytest.raises(ValueError, match="opset 13"):
        append_nms(old, "loc/decoded", "cls/Sigmoid", config)


def test_unpack_nms() -> None:
    boxes, scores = random_inputs(17)
    nms, count = nms_reference(boxes, scores, NmsConfig(0.3, 0.5, 20, background_class=0))
    images = unpack_nms(nms, count)
    assert [d.labels.size for d in images] == count.ravel().tolist()
    assert images[1].boxes.shape == (0, 4)
    first = images[0]
    np.testing.assert_array_equal(first.boxes, nms[0, 0, :first.labels.size, 3:])
    assert first.labels.dtype == np.int64 and (first.labels >= 1).all()
    with pytest.raises(ValueError, match="expected NMS"):
        unpack_nms(nms[:, 0], count)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"confidence_threshold": float("nan")}, "confidence_threshold"),
    ({"confidence_threshold": FILL_SCORE * 2}, "confidence_threshold"),
    ({"clustering_iou_threshold": 1.5}, "clustering_iou_threshold"),
    ({"keep_top_k": 0}, "keep_top_k"),
    ({"top_k": 0}, "top_k"),
    ({"background_class": -1}, "background_class"),
    ({"box_order": "cxcywh"}, "box_order"),
    ({"output_names": ("NMS", "NMS")}, "output_names"),
])
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"confidence_threshold": 0.3, "clustering_iou_threshold": 0.5, "keep_top_k": 10}
    values.update(kwargs)
    with pytest.raises(ValueError, match=message):
        NmsConfig(**values)  # type: ignore[arg-type]


def test_shape_errors() -> None:
    config = NmsConfig(0.3, 0.5, 10, background_class=4)
    with pytest.raises(ValueError, match="not a column"):
        nms_reference(np.zeros((1, 3, 4)), np.zeros((1, 3, 4)), config)
    with pytest.raises(ValueError, match="expected boxes"):
        nms_reference(np.zeros((1, 3, 4)), np.zeros((1, 2, 4)), config)
    with pytest.raises(ValueError, match="only the background"):
        nms_tail_model(NmsConfig(0.3, 0.5, 10, background_class=0), 1)


# --------------------------------------------------------------------------------------------- batched layout

def batched(config: NmsConfig) -> NmsConfig:
    return dataclasses.replace(config, layout="batched", output_names=BATCHED_OUTPUT_NAMES)


def assert_same_batched(got: dict[str, np.ndarray], want: tuple[np.ndarray, ...], config: NmsConfig) -> None:
    assert list(got) == list(config.output_names)
    for name, expected in zip(config.output_names, want, strict=True):
        assert got[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


def test_batched_hand_check() -> None:
    """The §7.3 hand check in the BatchedNMS layout: IoU 0.818 suppressed at 0.6, IoU 0.333 kept, 3 padding rows."""
    boxes = np.array([[[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10]]], np.float32) / 20
    scores = np.array([[[0.9], [0.8], [0.7]]], np.float32)
    config = NmsConfig(0.5, 0.6, 5, layout="batched", output_names=BATCHED_OUTPUT_NAMES)
    model = nms_tail_model(config, 1)
    assert [o.name for o in model.graph.output] == list(BATCHED_OUTPUT_NAMES)
    got = run(model, boxes, scores)
    count, out_boxes, out_scores, classes = (got[name] for name in BATCHED_OUTPUT_NAMES)
    assert [a.dtype for a in (count, out_boxes, out_scores, classes)] == [np.int32, np.float32, np.float32, np.float32]
    assert [a.shape for a in (count, out_boxes, out_scores, classes)] == [(1, 1), (1, 5, 4), (1, 5), (1, 5)]
    assert count.tolist() == [[2]]
    np.testing.assert_array_equal(out_scores, np.array([[0.9, 0.7, 0, 0, 0]], np.float32))
    np.testing.assert_array_equal(classes, [[0, 0, -1, -1, -1]])
    np.testing.assert_array_equal(out_boxes[0, :2], np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32) / 20)
    np.testing.assert_array_equal(out_boxes[0, 2:], np.zeros((3, 4), np.float32))
    assert_same_batched(got, batched_reference(boxes, scores, config), config)


BATCHED_CONFIGS = [
    NmsConfig(0.3, 0.5, 20),
    NmsConfig(0.3, 0.5, 20, top_k=7, background_class=0),
    NmsConfig(0.2, 0.45, 30, background_class=2, label_offset=1, clip_boxes=False),
    NmsConfig(0.25, 0.5, 8, label_offset=1, box_order="yxyx"),
]


@pytest.mark.parametrize("config", BATCHED_CONFIGS)
def test_batched_tail_equals_reference_and_ssd_layout(config: NmsConfig) -> None:
    """Tie-free random inputs: onnxruntime's BatchedNMS outputs are bit-equal to batched_reference, and both
    layouts read back to the same detections."""
    layout = batched(config)
    model, ssd_model = nms_tail_model(layout, 4), nms_tail_model(config, 4)
    for seed in range(3):
        boxes, scores = random_inputs(20 + seed, batch=3)
        assert all(len(np.unique(scores[n, :, c])) == scores.shape[1] for n in range(3) for c in range(4))
        got = run(model, boxes, scores)
        want = batched_reference(boxes, scores, layout)
        assert_same_batched(got, want, layout)
        assert want[0][0, 0] > 0 and want[0][2, 0] > 0  # image 1 may be empty (its scores are scaled by 0.3)
        ssd = run(ssd_model, boxes, scores)
        mine = unpack_batched(*(got[name] for name in layout.output_names))
        theirs = unpack_nms(ssd["NMS"], ssd["NMS_1"])
        assert len(mine) == len(theirs) == 3
        for a, b in zip(mine, theirs, strict=True):
            assert a.labels.dtype == b.labels.dtype == np.int64
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_array_equal(a.scores, b.scores)
            np.testing.assert_array_equal(a.boxes, b.boxes)
    # nms_reference ignores the layout: the SSD rows either way.
    boxes, scores = random_inputs(23, batch=3)
    for x, y in zip(nms_reference(boxes, scores, layout), nms_reference(boxes, scores, config), strict=True):
        np.testing.assert_array_equal(x, y)


def test_batched_dynamic_batch_and_declared_outputs() -> None:
    config = batched(NmsConfig(0.2, 0.5, 9, background_class=0))
    model = nms_tail_model(config, 4)
    declared = [(o.name, o.type.tensor_type.elem_type,
                 [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    assert declared == [("BatchedNMS", TensorProto.INT32, ["N", 1]), ("BatchedNMS_1", TensorProto.FLOAT, ["N", 9, 4]),
                        ("BatchedNMS_2", TensorProto.FLOAT, ["N", 9]), ("BatchedNMS_3", TensorProto.FLOAT, ["N", 9])]
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    for batch in (1, 5):
        boxes, scores = random_inputs(24, batch=batch)
        got = run(model, boxes, scores)
        assert [got[n].shape for n in BATCHED_OUTPUT_NAMES] == [(batch, 1), (batch, 9, 4), (batch, 9), (batch, 9)]
        assert_same_batched(got, batched_reference(boxes, scores, config), config)


def test_batched_survives_fp16_conversion() -> None:
    from libtlt.runtime.onnx_precision import to_fp16

    boxes, scores = random_inputs(25)
    config = batched(CONFIGS[1])
    got = run(to_fp16(nms_tail_model(config, 4)), boxes, scores)
    boxes_16, scores_16 = (a.astype(np.float16).astype(np.float32) for a in (boxes, scores))
    assert_same_batched(got, batched_reference(boxes_16, scores_16, config), config)


def test_append_nms_batched_layout() -> None:
    boxes, scores = random_inputs(26)
    logits = np.log(scores / (1 - scores + 1e-6) + 1e-6).astype(np.float32)
    config = batched(NmsConfig(0.3, 0.5, 25, top_k=10))
    shapes: list[list[int | str]] = [["batch", 60, 4], ["batch", "anchors", 4]]
    for dims in shapes:
        model = append_nms(_model_ending_in(dims, 4), "loc/decoded", "cls/Sigmoid", config)
        assert [o.name for o in model.graph.output] == list(BATCHED_OUTPUT_NAMES)
        assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in model.graph.output)
        assert all(n.name.startswith("BatchedNMS/") for n in model.graph.node if n.op_type == "NonMaxSuppression")
        got = OrtModel(model.SerializeToString()).run({"raw_boxes": boxes, "logits": logits})
        head = OrtModel(_model_ending_in(dims, 4).SerializeToString()).run({"raw_boxes": boxes, "logits": logits})
        assert_same_batched(got, batched_reference(head["loc/decoded"], head["cls/Sigmoid"], config), config)
        assert got["BatchedNMS"].ravel().tolist() != [0, 0, 0, 0]
    kept = append_nms(_model_ending_in(["N", 60, 4], 4), "loc/decoded", "cls/Sigmoid", config, keep_outputs=True)
    assert [o.name for o in kept.graph.output] == [*BATCHED_OUTPUT_NAMES, "cls/Sigmoid", "loc/decoded"]


def test_append_nms_batched_name_clash_covers_every_output() -> None:
    model = _model_ending_in(["N", 60, 4], 4)
    for position in range(4):
        names = list(BATCHED_OUTPUT_NAMES)
        names[position] = "loc/decoded"
        clash = NmsConfig(0.3, 0.5, 25, layout="batched", output_names=tuple(names))
        with pytest.raises(ValueError, match="already has"):
            append_nms(model, "loc/decoded", "cls/Sigmoid", clash)
    prefixed = NmsConfig(0.3, 0.5, 25, layout="batched", output_names=("cls", "b", "s", "c"))
    with pytest.raises(ValueError, match="already has"):
        append_nms(model, "loc/decoded", "cls/Sigmoid", prefixed)  # "cls/Sigmoid" starts with the prefix "cls/"


@pytest.mark.parametrize(("layout", "names"), [
    ("batched", ("NMS", "NMS_1")),
    ("batched", ("a", "b", "c")),
    ("batched", ("a", "b", "c", "a")),
    ("batched", ("a", "b", "c", "")),
    ("nms", BATCHED_OUTPUT_NAMES),
    ("nms", ("NMS",)),
])
def test_config_output_names_must_fit_the_layout(layout: str, names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=f"output_names of layout '{layout}'"):
        NmsConfig(0.3, 0.5, 10, layout=layout, output_names=names)  # type: ignore[arg-type]


def test_config_layout_validation_and_defaults() -> None:
    with pytest.raises(ValueError, match="layout must be"):
        NmsConfig(0.3, 0.5, 10, layout="ssd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'batched'"):
        NmsConfig(0.3, 0.5, 10, layout="batched")  # the default names are the NMS layout's two
    assert NmsConfig(0.3, 0.5, 10).layout == "nms"
    assert NmsConfig(0.3, 0.5, 10, layout="batched", output_names=BATCHED_OUTPUT_NAMES).output_names == (
        "BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")


def test_unpack_batched_keeps_every_row_below_the_count() -> None:
    """Rows below the count stay whatever their class (DeepStream's public parser drops some by an inverted class
    check); rows past it never appear; a count above K reads K rows."""
    boxes = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 24
    scores = np.array([[0.9, 0.8, 0.0], [0.7, 0.6, 0.5]], np.float32)
    classes = np.array([[0, 7, -1], [3, 0, 2]], np.float32)
    images = unpack_batched(np.array([[2], [5]], np.int32), boxes, scores, classes)
    assert [d.labels.tolist() for d in images] == [[0, 7], [3, 0, 2]]
    assert images[0].labels.dtype == np.int64
    np.testing.assert_array_equal(images[0].scores, scores[0, :2])
    np.testing.assert_array_equal(images[1].boxes, boxes[1])
    empty = unpack_batched([0, 1], boxes, scores, classes)
    assert empty[0].boxes.shape == (0, 4) and empty[0].labels.shape == (0,)


@pytest.mark.parametrize("bad", ["count", "boxes", "scores", "classes"])
def test_unpack_batched_rejects_mismatched_shapes(bad: str) -> None:
    arrays = {"count": np.zeros((2, 1), np.int32), "boxes": np.zeros((2, 5, 4), np.float32),
              "scores": np.zeros((2, 5), np.float32), "classes": np.zeros((2, 5), np.float32)}
    unpack_batched(**arrays)  # well formed
    arrays[bad] = {"count": np.zeros((3, 1), np.int32), "boxes": np.zeros((2, 5, 7), np.float32),
                   "scores": np.zeros((2, 4), np.float32), "classes": np.zeros((2, 5, 1), np.float32)}[bad]
    with pytest.raises(ValueError, match="expected N counts"):
        unpack_batched(**arrays)


def _one_box_at_a_time(corners: np.ndarray, scores: np.ndarray, config: NmsConfig) -> list[int]:
    """Greedy NMS written the plain way (sort all, cut to top_k, filter, then one kept box at a time against every
    remaining one): the oracle of the blocked ``class_nms``."""
    order = np.argsort(-scores, kind="stable")
    if config.top_k is not None:
        order = order[:config.top_k]
    order = order[scores[order] > np.float32(config.confidence_threshold)]
    threshold = np.float32(config.clustering_iou_threshold)
    kept: list[int] = []
    while order.size and len(kept) < config.max_per_class:
        best, order = order[0], order[1:]
        kept.append(int(best))
        b, o = corners[best], corners[order]
        ix0, iy0 = np.maximum(b[0], o[:, 0]), np.maximum(b[1], o[:, 1])
        ix1, iy1 = np.minimum(b[2], o[:, 2]), np.minimum(b[3], o[:, 3])
        inter = (ix1 - ix0) * (iy1 - iy0)
        area_b, area_o = (b[2] - b[0]) * (b[3] - b[1]), (o[:, 2] - o[:, 0]) * (o[:, 3] - o[:, 1])
        union = area_b + area_o - inter
        overlap = (ix1 > ix0) & (iy1 > iy0) & (inter > 0) & (area_b > 0) & (area_o > 0) & (union > 0)
        order = order[~(overlap & (inter / np.where(overlap, union, np.float32(1)) > threshold))]
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_blocked_class_nms_keeps_what_one_box_at_a_time_keeps(seed: int) -> None:
    """Several hundred candidates (more than a few blocks), ties and zero-area boxes included, with and without
    top_k and a per-class cap."""
    from libtlt.runtime.onnx_nms import _corners, class_nms

    boxes, scores = random_inputs(seed, batch=1, anchors=700, columns=1, quantized=seed % 2 == 1)
    boxes[0, :20, 2] = boxes[0, :20, 0]  # zero width: never suppresses nor is suppressed
    corners = _corners(boxes[0], "xyxy")
    for config in (NmsConfig(0.05, 0.45, 1000), NmsConfig(0.2, 0.7, 30), NmsConfig(0.0, 0.3, 500, top_k=250),
                   NmsConfig(0.1, 1.0, 900)):
        want = _one_box_at_a_time(corners, scores[0, :, 0], config)
        assert class_nms(corners, scores[0, :, 0], config).tolist() == want
        assert len(want) > 5


@pytest.mark.parametrize("config", [*CONFIGS, *(batched(c) for c in BATCHED_CONFIGS)])
def test_run_tail_is_the_exported_tail(config: NmsConfig) -> None:
    """What tools run on a Keras model's outputs: the outputs of the layout in output_names' order, equal to the
    NumPy oracle; one session per (config, columns), and a second column count gets its own."""
    boxes, scores = random_inputs(5, batch=3)
    got = run_tail(boxes, scores, config)
    want = nms_reference(boxes, scores, config) if config.layout == "nms" else batched_reference(boxes, scores, config)
    assert len(got) == len(config.output_names)
    for x, y in zip(got, want, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    wider = np.concatenate([scores, np.float32(0.999) - scores[..., :1]], axis=-1)
    more = run_tail(boxes, wider, config)
    assert more[0].shape == want[0].shape and not all(np.array_equal(x, y) for x, y in zip(more, got, strict=True))
    with pytest.raises(ValueError, match="expected boxes"):
        run_tail(boxes[0], scores[0], config)
