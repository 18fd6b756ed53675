"""RetinaNet's own pieces (DETECTORS-SINGLE-STAGE.md §1.1, §1.2, §4): octave anchors and their check values, the
sigmoid focal loss's check values, the network's shared subnets and maps, the neutral band, and the deployed
layout without a background column (NumPy path and ONNX tail agree, labels 0..C−1)."""

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

ARCH = get_architecture("retinanet")


def spec(**edits: str) -> object:
    loaded = load_spec_text(edit_spec_text(ARCH.default_spec(), edits, "the default spec") if edits
                            else ARCH.default_spec(), ARCH.spec_message())
    ARCH.validate(loaded)
    return loaded


SQUARE = {"output_image_width: 1248": "output_image_width: 256", "crop_right: 1248": "crop_right: 256",
          "output_image_height: 384": "output_image_height: 256", "crop_bottom: 384": "crop_bottom: 256"}


def test_documented_anchor_count_for_1248x384() -> None:
    """P3–P7 of 1248×384 (156×48 … 10×3): 9978 cells × 9 anchors = 89 802."""
    loaded = spec()
    assert ARCH.feature_sizes(loaded) == [(48, 156), (24, 78), (12, 39), (6, 20), (3, 10)]
    assert ARCH.anchor_config(loaded).boxes_per_cell() == [9] * 5
    assert len(ARCH.anchors(loaded)) == 89_802


def test_first_anchors_match_the_documented_values() -> None:
    """256×256, P3 (centre 4), scale 0.045, ratios [1, 2, 0.5], then the octave 2^(1/3)."""
    anchors = ARCH.anchors(spec(**SQUARE)) * 256
    np.testing.assert_allclose(anchors[:4], [[-1.76, -1.76, 9.76, 9.76], [-4.14587, -0.072935, 12.14587, 8.072935],
                                             [-0.072935, -4.14587, 8.072935, 12.14587],
                                             [-3.257145, -3.257145, 11.257145, 11.257145]], atol=1e-4)


def test_n_anchor_levels_sets_the_octaves() -> None:
    config = ARCH.anchor_config(spec(**{"n_kernels: 1": "n_kernels: 1\n  n_anchor_levels: 2"}))
    assert config.octaves == pytest.approx((1.0, math.sqrt(2.0))) and config.boxes_per_cell() == [6] * 5


@pytest.mark.parametrize(("p", "y", "expected"), [(0.9, 1, 0.000263401), (0.1, 0, 0.000790204),
                                                  (0.5, 1, 0.0433217), (0.5, 0, 0.129965)])
def test_sigmoid_focal_loss_check_values(p: float, y: int, expected: float) -> None:
    """One anchor, one class: α 0.25, γ 2 (§4.3); a background anchor counts as a negative for every class,
    normalised by max(1, positives)."""
    losses = ad.make_losses(ARCH.loss_config(spec()), conf_name=ARCH.conf_output)
    value = losses[ARCH.conf_output](np.array([[[float(y)]]], np.float32), np.array([[[p]]], np.float32))
    assert float(value[0]) == pytest.approx(expected, rel=1e-4)


def test_neutral_anchors_carry_no_class_loss_and_the_band_starts_at_0_4() -> None:
    """RetinaNet's neutral band is [0.4, 0.5), SSD's [0.3, 0.5): IoU 0.41 is neutral for both, 0.33 only for SSD."""
    anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.35, 1.0], [0.5, 0.5, 1.0, 1.0]], np.float32)
    box = np.array([[0.0, 0.0, 50.0, 50.0]], np.float32)  # 100×100 image: the first anchor exactly
    # anchor 1 vs box: intersection 0.35·0.5 = 0.175, union 0.25 + 0.35 − 0.175 = 0.425 → IoU 0.4118
    retina = ad.target_encoder(anchors, (0.1, 0.1, 0.2, 0.2), (100, 100), negative_threshold=ARCH.negative_threshold,
                               conf_name=ARCH.conf_output)(box, np.array([0], np.int32))
    ssd = ad.target_encoder(anchors, (0.1, 0.1, 0.2, 0.2), (100, 100))(box, np.array([0], np.int32))
    assert np.asarray(retina[ARCH.conf_output])[:, 0].tolist() == [1.0, -1.0, 0.0]
    assert np.asarray(ssd[ad.CONF_OUTPUT])[:, 0].tolist() == [1.0, -1.0, 0.0]
    far = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.25, 1.0], [0.5, 0.5, 1.0, 1.0]], np.float32)
    # anchor 1 now: 0.125 / (0.25 + 0.25 − 0.125) = 0.333: neutral for SSD, background for RetinaNet
    retina = ad.target_encoder(far, (0.1, 0.1, 0.2, 0.2), (100, 100), negative_threshold=ARCH.negative_threshold,
                               conf_name=ARCH.conf_output)(box, np.array([0], np.int32))
    ssd = ad.target_encoder(far, (0.1, 0.1, 0.2, 0.2), (100, 100))(box, np.array([0], np.int32))
    assert np.asarray(retina[ARCH.conf_output])[:, 0].tolist() == [1.0, 0.0, 0.0]
    assert np.asarray(ssd[ad.CONF_OUTPUT])[:, 0].tolist() == [1.0, -1.0, 0.0]


@pytest.mark.slow
def test_network_shares_its_subnets_and_starts_at_the_prior() -> None:
    """One set of subnet weights for the five maps; every class starts at probability 0.01."""
    loaded = spec(**SQUARE, **{"feature_size: 256": "feature_size: 16", "n_layers: 18": "n_layers: 10"})
    model = ARCH.build(loaded, ["a", "b"])
    assert [tuple(o.shape[1:]) for o in model.outputs] == [(len(ARCH.anchors(loaded)), 2),
                                                           (len(ARCH.anchors(loaded)), 4)]
    assert model.output_names == ["mbox_conf_sigmoid", "mbox_loc"]
    names = [layer.name for layer in model.layers]
    assert names.count("retinanet_conf_regressor") == 1 and names.count("retinanet_class_subn_0") == 1
    for name in ("retinanet_conf_regressor", "retinanet_class_subn_0"):
        layer = model.get_layer(name)
        layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
    conf = np.asarray(model(np.zeros((1, 3, 256, 256), np.float32))[0])
    np.testing.assert_allclose(conf, 0.01, rtol=1e-4)


def raw_model(anchors: int, classes: int) -> onnx.ModelProto:
    conf = helper.make_tensor_value_info("conf_in", TensorProto.FLOAT, ["N", anchors, classes])
    loc = helper.make_tensor_value_info("loc_in", TensorProto.FLOAT, ["N", anchors, 4])
    outputs = [helper.make_tensor_value_info(ARCH.conf_output, TensorProto.FLOAT, ["N", anchors, classes]),
               helper.make_tensor_value_info(ad.LOC_OUTPUT, TensorProto.FLOAT, ["N", anchors, 4])]
    graph = helper.make_graph([helper.make_node("Identity", ["conf_in"], [ARCH.conf_output]),
                               helper.make_node("Identity", ["loc_in"], [ad.LOC_OUTPUT])], "raw", [conf, loc], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_deployed_layout_has_no_background_and_matches_numpy() -> None:
    """Sigmoid scores without a background column: the ONNX tail and the NumPy path give the same detections,
    NMS labels are 0..C−1 (TLT 2.0's backgroundLabelId −1) and labels.txt has no background line."""
    from libtlt.runtime.onnxruntime_backend import OrtModel

    loaded = spec(**SQUARE)
    anchors, nms = ARCH.anchors(loaded), ARCH.nms(loaded)
    assert nms.background_class is None and ad.first_label(nms) == 0
    rng = np.random.default_rng(5)
    count = len(anchors)
    conf = (1.0 / (1.0 + np.exp(-rng.normal(-4, 2, (2, count, 3))))).astype(np.float32)
    loc = rng.normal(0, 1, (2, count, 4)).astype(np.float32)
    model = ARCH.export_tail(loaded, raw_model(count, 3))
    onnx.checker.check_model(model, full_check=True)
    engine = OrtModel(model.SerializeToString()).run({"conf_in": conf, "loc_in": loc})
    labels = engine["NMS"][..., 1][engine["NMS"][..., 1] >= 0]
    assert labels.min() == 0 and labels.max() == 2
    from_graph = ARCH.decode(loaded, engine, [(256, 256)] * 2, ["a", "b", "c"])
    from_numpy = ARCH.decode(loaded, {ARCH.conf_output: conf, ad.LOC_OUTPUT: loc}, [(256, 256)] * 2, ["a", "b", "c"])
    assert sum(len(d.class_ids) for d in from_numpy) > 10
    for ours, theirs in zip(from_numpy, from_graph, strict=True):
        np.testing.assert_array_equal(ours.class_ids, theirs.class_ids)
        np.testing.assert_allclose(ours.confidences, theirs.confidences, rtol=1e-6)
        np.testing.assert_allclose(ours.boxes, theirs.boxes, atol=1e-3)
    assert set(np.concatenate([d.class_ids for d in from_numpy]).tolist()) == {0, 1, 2}
    assert ARCH.labels(["a", "b"]) == ["a", "b"]
    settings = ARCH.deepstream_settings(loaded, ["a", "b"])
    assert settings["labels"] == ["a", "b"] and settings["num-detected-classes"] == 2
    assert math.isclose(ARCH.loss_config(loaded).alpha, 0.25)
