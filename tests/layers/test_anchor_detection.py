"""The SSD family's shared pieces (DETECTORS-SINGLE-STAGE.md §1–§3, §7): anchors from the spec, targets, losses,
decoding (NumPy and the exported ONNX graph give the same detections) and the network's feature maps."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from libtlt.layers import anchor_detection as ad
from libtlt.registry import get_architecture
from libtlt.spec import load_spec_text
from libtlt.spec.edits import edit_spec_text

VARIANCES = (0.1, 0.1, 0.2, 0.2)


def ssd_spec(name: str = "ssd", **edits: str) -> object:
    arch = get_architecture(name)
    return load_spec_text(edit_spec_text(arch.default_spec(), edits, "the default spec") if edits
                          else arch.default_spec(), arch.spec_message())


# ------------------------------------------------------------------------------------------------ anchors

def test_default_spec_anchors_match_the_documented_count() -> None:
    """1248x384, six boxes per cell (ratios 1, 2, 0.5, 3, 1/3 + the ar-1 twin): 6 * 9988 = 59 928 anchors."""
    arch = get_architecture("ssd")
    spec = ssd_spec()
    config = arch.anchor_config(spec)
    assert config.aspect_ratios[0] == pytest.approx((1.0, 2.0, 0.5, 3.0, 1.0 / 3.0))
    assert config.boxes_per_cell() == [6] * 6
    assert arch.anchors(spec).shape == (59_928, 4)


def test_min_and_max_scale_give_evenly_spaced_scales() -> None:
    spec = ssd_spec(**{'scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"': "min_scale: 0.1\n  max_scale: 0.95"})
    config = get_architecture("ssd").anchor_config(spec)
    assert config.scales == pytest.approx([0.1, 0.24166667, 0.38333333, 0.525, 0.66666667, 0.80833333, 0.95])


def test_first_anchors_of_the_documented_layer() -> None:
    """§1.2: 300x300, a 38x38 first layer, scales 0.1 / 0.2416667: the ar-1 box, its twin and the ar-2 box."""
    config = ad.AnchorConfig(scales=(0.1, 0.2416667, 0.5, 0.6, 0.7, 0.8, 0.9),
                             aspect_ratios=((1.0, 2.0, 0.5, 3.0, 0.33),) * 6)
    anchors = config.anchors((300, 300), [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (2, 2)])
    np.testing.assert_allclose(anchors[0] * 300, [-11.052632, -11.052632, 18.947368, 18.947368], atol=1e-4)
    np.testing.assert_allclose(anchors[1] * 300, [-19.371079, -19.371079, 27.265816, 27.265816], atol=1e-3)
    np.testing.assert_allclose(anchors[2] * 300, [-17.265835, -6.659233, 25.160572, 14.553970], atol=1e-3)
    assert anchors.shape == (6 * (38 * 38 + 19 * 19 + 10 * 10 + 25 + 9 + 4), 4)  # 11 658
    assert anchors.dtype == np.float32


def test_steps_and_offsets_place_the_centres() -> None:
    """§1.2: steps 8, offset 0.5 → the first centre at pixel 4; the ar-1 box is [-11, -11, 19, 19]."""
    config = ad.AnchorConfig(scales=(0.1, 0.2416667, 0.5, 0.6, 0.7, 0.8, 0.9), aspect_ratios=((1.0,),) * 6,
                             two_boxes_for_ar1=False, steps=((8.0, 8.0),) * 6, offsets=(0.5,) * 6)
    anchors = config.anchors((300, 300), [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (2, 2)])
    np.testing.assert_allclose(anchors[0] * 300, [-11, -11, 19, 19], atol=1e-4)
    np.testing.assert_allclose(anchors[1] * 300, [-3, -11, 27, 19], atol=1e-4)  # next column, 8 px right


# ------------------------------------------------------------------------------------------------ targets

def encode(boxes_px: list[list[float]], ids: list[int], anchors_px: np.ndarray, size: int = 100,
           variances: tuple[float, ...] = VARIANCES) -> dict[str, np.ndarray]:
    encoder = ad.target_encoder((anchors_px / size).astype(np.float32), variances, (size, size))
    out = encoder(np.asarray(boxes_px, np.float32).reshape(-1, 4), np.asarray(ids, np.int32))
    return {k: np.asarray(v) for k, v in out.items()}


def test_matching_follows_the_documented_example() -> None:
    """§1.3: bipartite (GT1, a2) then (GT0, a0); a1, a3 reach 0.5 → GT0; a4 (0.333) neutral; a5 background."""
    anchors = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10], [0, 0, 20, 10], [14, 0, 24, 10],
                        [30, 0, 40, 10]], np.float32)
    out = encode([[2, 0, 12, 10], [9, 0, 19, 10]], [0, 1], anchors, size=64)  # exact binary fractions: IoU 0.5
    assert out[ad.CONF_OUTPUT][:, 0].tolist() == [1, 1, 2, 1, -1, 0]  # class k is k + 1; -1 neutral
    assert out[ad.LOC_OUTPUT][:, 4].tolist() == [1, 1, 1, 1, 0, 0]
    assert not out[ad.LOC_OUTPUT][4:, :4].any()


def test_offsets_of_the_documented_example() -> None:
    """§1.3: anchor centre (150, 150) size 60, GT [120, 135, 200, 195] → (1.666667, 2.5, 1.438410, 0)."""
    out = encode([[120, 135, 200, 195]], [0], np.array([[120, 120, 180, 180]], np.float32), size=300)
    np.testing.assert_allclose(out[ad.LOC_OUTPUT][0, :4], [1.666667, 2.5, 1.438410, 0.0], atol=1e-5)


def test_padding_rows_and_tiny_boxes_are_not_matched() -> None:
    anchors = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    out = encode([[0, 0, 10, 10], [50, 50, 50.05, 60], [0, 0, 0, 0]], [2, 1, -1], anchors)
    assert out[ad.CONF_OUTPUT][:, 0].tolist() == [3, 0]  # the 0.05-px-wide box is dropped (< 1e-3 of 100 px)


def test_an_image_without_objects_is_all_background() -> None:
    out = encode(np.zeros((0, 4)).tolist(), [], np.array([[0, 0, 10, 10], [5, 5, 9, 9]], np.float32))
    assert out[ad.CONF_OUTPUT][:, 0].tolist() == [0, 0] and not out[ad.LOC_OUTPUT].any()


# ------------------------------------------------------------------------------------------------- losses

def test_focal_class_loss_by_hand() -> None:
    """One image, three anchors: an object with p_t 0.9, background with p_t 0.8, a neutral one (no loss).
    FL = -0.25 * 0.1^2 * ln 0.9 - 0.75 * 0.2^2 * ln 0.8, divided by one positive."""
    losses = ad.make_losses(ad.LossConfig(alpha=0.25, gamma=2.0))
    y_true = np.array([[[1.0], [0.0], [-1.0]]], np.float32)
    y_pred = np.array([[[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]], np.float32)
    expected = -0.25 * 0.01 * math.log(0.9) - 0.75 * 0.04 * math.log(0.8)
    assert float(losses[ad.CONF_OUTPUT](y_true, y_pred)[0]) == pytest.approx(expected, rel=1e-5)


def test_hard_negative_mining_keeps_the_hardest_background() -> None:
    """neg_pos_ratio 1 with one positive: only the background anchor with the largest cross-entropy counts."""
    losses = ad.make_losses(ad.LossConfig(neg_pos_ratio=1.0))
    y_true = np.array([[[1.0], [0.0], [0.0]]], np.float32)
    y_pred = np.array([[[0.5, 0.5], [0.9, 0.1], [0.3, 0.7]]], np.float32)
    assert float(losses[ad.CONF_OUTPUT](y_true, y_pred)[0]) == pytest.approx(-math.log(0.5) - math.log(0.3), rel=1e-5)


def test_box_loss_is_smooth_l1_on_positives_over_batch_positives() -> None:
    losses = ad.make_losses(ad.LossConfig(loc_weight=2.0))
    y_true = np.zeros((2, 2, 5), np.float32)
    y_true[0, 0] = [0, 0, 0, 0, 1]
    y_true[1, 1] = [0, 0, 0, 0, 1]
    y_pred = np.zeros((2, 2, 4), np.float32)
    y_pred[0, 0] = [0.5, 2.0, 0, 0]  # 0.125 + 1.5
    y_pred[0, 1] = [9, 9, 9, 9]  # not a positive: no loss
    per_image = np.asarray(losses[ad.LOC_OUTPUT](y_true, y_pred))
    assert per_image.mean() == pytest.approx(2.0 * 1.625 / 2)  # Keras' mean = batch total / positives


# ----------------------------------------------------------------------------------------------- decoding

def test_decode_inverts_the_encoding() -> None:
    anchors = np.array([[0.1, 0.1, 0.3, 0.4], [0.5, 0.5, 0.9, 0.7]], np.float32)
    boxes = np.array([[0.12, 0.05, 0.35, 0.38], [0.4, 0.52, 0.95, 0.66]], np.float32)
    from libtlt.layers.boxes import encode_centre_size

    offsets = encode_centre_size(boxes, anchors, VARIANCES)[None]
    np.testing.assert_allclose(ad.decode_boxes(offsets, anchors, VARIANCES)[0], boxes, atol=1e-6)


def raw_model(anchors: int, columns: int) -> onnx.ModelProto:
    """A graph whose outputs are its inputs, named like the network's raw outputs."""
    conf_in = helper.make_tensor_value_info("conf_in", TensorProto.FLOAT, ["N", anchors, columns])
    loc_in = helper.make_tensor_value_info("loc_in", TensorProto.FLOAT, ["N", anchors, 4])
    nodes = [helper.make_node("Identity", ["conf_in"], [ad.CONF_OUTPUT]),
             helper.make_node("Identity", ["loc_in"], [ad.LOC_OUTPUT])]
    outputs = [helper.make_tensor_value_info(ad.CONF_OUTPUT, TensorProto.FLOAT, ["N", anchors, columns]),
               helper.make_tensor_value_info(ad.LOC_OUTPUT, TensorProto.FLOAT, ["N", anchors, 4])]
    graph = helper.make_graph(nodes, "raw", [conf_in, loc_in], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_exported_tail_gives_the_detections_of_the_numpy_path() -> None:
    """The .tlt path (NumPy decode + NMS reference) and the .etlt path (the graph's decoder + NMS) agree."""
    from libtlt.runtime.onnx_nms import NmsConfig
    from libtlt.runtime.onnxruntime_backend import OrtModel

    rng = np.random.default_rng(3)
    config = ad.AnchorConfig(scales=(0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95), aspect_ratios=((1.0, 2.0, 0.5),) * 6)
    sizes = [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1), (1, 1)]
    anchors = config.anchors((64, 96), sizes)
    count = len(anchors)
    logits = rng.normal(0, 2, (3, count, 4)).astype(np.float32)
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    loc = rng.normal(0, 1, (3, count, 4)).astype(np.float32)
    nms = NmsConfig(confidence_threshold=0.3, clustering_iou_threshold=0.5, keep_top_k=20, background_class=0)
    model = ad.append_decoder_and_nms(raw_model(count, 4), anchors, config.variances, nms)
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["NMS", "NMS_1"]
    engine = OrtModel(model.SerializeToString()).run({"conf_in": conf, "loc_in": loc})
    from_graph = ad.detect(engine, anchors, config.variances, nms, 96, 64)
    from_numpy = ad.detect({ad.CONF_OUTPUT: conf, ad.LOC_OUTPUT: loc}, anchors, config.variances, nms, 96, 64)
    assert sum(len(d.class_ids) for d in from_numpy) > 10
    for ours, theirs in zip(from_numpy, from_graph, strict=True):
        np.testing.assert_array_equal(ours.class_ids, theirs.class_ids)
        np.testing.assert_allclose(ours.confidences, theirs.confidences, rtol=1e-6)
        np.testing.assert_allclose(ours.boxes, theirs.boxes, atol=1e-4)
        assert (ours.class_ids >= 0).all() and (ours.class_ids < 3).all()


def test_degenerate_boxes_are_not_reported() -> None:
    rows = np.zeros((1, 1, 3, 7), np.float32)
    rows[0, 0, 0] = [0, 1, 0.9, 0.1, 0.1, 0.5, 0.5]
    rows[0, 0, 1] = [0, 2, 0.8, 1.0, 0.2, 1.0, 0.6]  # clipped to zero width at the border
    found = ad.from_nms(rows, np.array([[[[2]]]], np.int32), 100, 50)
    assert found[0].class_ids.tolist() == [0]
    np.testing.assert_allclose(found[0].boxes, [[10, 5, 50, 25]], atol=1e-5)


# ---------------------------------------------------------------------------------------------- the network

@pytest.mark.slow
@pytest.mark.parametrize("arch,nlayers", [("resnet", 10), ("resnet", 18), ("vgg", 16), ("googlenet", None),
                                          ("mobilenet_v1", None), ("mobilenet_v2", None), ("squeezenet", None),
                                          ("darknet", 19)])
def test_every_backbone_gives_six_maps_of_the_expected_sizes(arch: str, nlayers: int | None) -> None:
    """``build_ssd`` checks the real maps against the sizes the anchors are computed for; DSSD's top-down path
    lands on every map (320: 40, 20, 10, 5, 3, 2, so the 2 → 3 and 3 → 5 deconvolutions crop by one)."""
    edits = {'arch: "resnet"': f'arch: "{arch}"', "nlayers: 18": f"nlayers: {nlayers}" if nlayers else "",
             "output_image_width: 1248": "output_image_width: 320",
             "output_image_height: 384": "output_image_height: 320", "pred_num_channels: 512": "pred_num_channels: 256",
             "freeze_blocks: 0": "", "crop_right: 1248": "crop_right: 320", "crop_bottom: 384": "crop_bottom: 320"}
    for name in ("ssd", "dssd") if arch in ("resnet", "mobilenet_v1") else ("ssd",):
        arch_object = get_architecture(name)
        spec = ssd_spec(name, **{k: v for k, v in edits.items() if name == "dssd" or "pred_num" not in k})
        arch_object.validate(spec)
        model = arch_object.build(spec, ["a", "b"])
        anchors = arch_object.anchors(spec)
        assert [tuple(o.shape[1:]) for o in model.outputs] == [(len(anchors), 3), (len(anchors), 4)]


def test_class_heads_start_at_the_prior() -> None:
    """Every object class starts at probability 0.01 at every anchor (background 1 - 0.01 C)."""
    import keras

    from libtlt.layers.ssd_network import SsdNetworkConfig, background_prior_logit, build_ssd

    assert background_prior_logit(200) == pytest.approx(math.log(0.5 / 0.0025))  # never a negative probability
    model = build_ssd(SsdNetworkConfig("resnet10", (3, 128, 128), 3, (4, 6, 6, 6, 4, 4)))
    for layer in model.layers:  # zero kernels: the probabilities come from the biases alone
        if layer.name.startswith("ssd_conf_") and "reshape" not in layer.name:
            layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
    conf = np.asarray(model(np.zeros((1, 3, 128, 128), np.float32))[0])
    np.testing.assert_allclose(conf[0, :, 1:], 0.01, rtol=1e-4)
    assert isinstance(model.get_layer("block_1a_bn_1"), keras.layers.BatchNormalization)
    assert model.get_layer("block_1a_bn_1").momentum == 0.9
