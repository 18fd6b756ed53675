"""FasterRCNN network pieces (libtlt.archs.faster_rcnn.network): backbone split, RPN, proposal and crop layers,
RCNN head, the inference model. Shapes are checked symbolically; forward passes use tiny inputs."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from libtlt.archs.faster_rcnn import proposals
from libtlt.archs.faster_rcnn.anchors import grid_anchors
from libtlt.archs.faster_rcnn.network import (
    CropAndResize,
    FasterRcnnNetworkConfig,
    ProposalLayer,
    build_inference_model,
    rcnn_head,
    rpn_head,
    split_backbone,
)

OUTPUTS = ["rpn_out_class", "rpn_out_regress", "proposals", "dense_class_td", "dense_regress_td"]


def _tiny_config(**changes: Any) -> FasterRcnnNetworkConfig:
    options: dict[str, Any] = {"backbone": "resnet10", "input_shape": (3, 160, 160), "num_fg_classes": 2,
                               "scales": (32.0, 64.0, 128.0), "ratios": (1.0,), "pre_nms_top_n": 60,
                               "post_nms_top_n": 4}
    options.update(changes)
    return FasterRcnnNetworkConfig(**options)


def _layer_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


# ------------------------------------------------------------------------------------------------- backbone split


@pytest.mark.parametrize(("name", "channels", "dim", "last_block"),
                         [("resnet10", 256, 512, "block_4a"), ("resnet18", 256, 512, "block_4b"),
                          ("resnet50", 1024, 2048, "block_4c")])
def test_resnet_split_shapes_and_names(name: str, channels: int, dim: int, last_block: str) -> None:
    image = keras.Input((160, 160, 3))
    feature, body = split_backbone(name, image)
    assert tuple(feature.shape) == (None, 10, 10, channels)  # stride 16
    vectors = body(keras.Input((7, 7, channels)))
    assert tuple(vectors.shape) == (None, dim) and body.output_dim == dim
    names = [layer.name for layer in body.layers]
    assert names[0] == "block_4a_conv_1" and f"{last_block}_relu" in names
    assert names[-2:] == ["avg_pool", "time_distributed_flatten"]
    assert all(n.startswith("block_4") for n in names[:-2])
    trunk = keras.Model(image, feature)
    trunk_names = _layer_names(trunk)
    assert "block_3a_conv_1" in trunk_names and not any(n.startswith("block_4") for n in trunk_names)
    assert trunk_names[-1].startswith("block_3") and trunk_names[-1].endswith("_relu")


def test_resnet_pool_size_2x_and_use_pooling() -> None:
    image = keras.Input((160, 160, 3))
    feature, body = split_backbone("resnet10", image, pool_size_2x=True, use_pooling=True)
    assert tuple(feature.shape) == (None, 10, 10, 256)
    crops = keras.Input((14, 14, 256))
    vectors = body(crops)
    assert tuple(vectors.shape) == (None, 512)
    stage = keras.Model(crops, body.layers[-3].output)  # block_4a_relu: stride 2 halves 14 → 7
    assert body.layers[-3].name == "block_4a_relu" and tuple(stage.output.shape) == (None, 7, 7, 512)


def test_vgg16_split_shapes_and_names() -> None:
    image = keras.Input((160, 160, 3))
    feature, body = split_backbone("vgg16", image, dropout=0.5)
    assert tuple(feature.shape) == (None, 10, 10, 512)
    trunk_names = _layer_names(keras.Model(image, feature))
    assert trunk_names[-1] == "block_5c_relu" and "block_5_pool" not in trunk_names
    vectors = body(keras.Input((2, 2, 512)))  # a small pool keeps fc1 small in the test
    assert tuple(vectors.shape) == (None, 4096)
    assert [layer.name for layer in body.layers] == ["flatten", "fc1", "fc1_dropout", "fc2", "fc2_dropout"]
    assert body.layers[1].kernel.shape == (2 * 2 * 512, 4096)
    feature_pooled, body_2x = split_backbone("vgg16", image, pool_size_2x=True, use_pooling=True)
    assert tuple(feature_pooled.shape) == (None, 10, 10, 512)  # blocks 1-4 end with a pool, no pool5
    assert "block_5_pool" not in _layer_names(keras.Model(image, feature_pooled))
    body_2x(keras.Input((4, 4, 512)))
    assert [layer.name for layer in body_2x.layers] == ["rcnn_pool_2x", "flatten", "fc1", "fc2"]
    assert body_2x.layers[2].kernel.shape == (2 * 2 * 512, 4096)


@pytest.mark.parametrize(("name", "first"), [("googlenet", "pool4"), ("mobilenet_v1", "conv_dw_12"),
                                             ("mobilenet_v2", "block_13_expand"), ("darknet53", "b5_conv1"),
                                             ("efficientnet_b0", "block6a_expand_conv")])
def test_other_families_split(name: str, first: str) -> None:
    image = keras.Input((160, 160, 3))
    feature, body = split_backbone(name, image, pool_size_2x=True)
    assert tuple(feature.shape[1:3]) == (10, 10)
    vectors = body(keras.Input((14, 14, int(feature.shape[-1]))))
    assert len(vectors.shape) == 2 and body.layers[0].name == first
    assert body.layers[-2].name == "avg_pool" and tuple(body.layers[-2].output.shape[1:3]) == (1, 1)


def test_squeezenet_is_rejected() -> None:
    with pytest.raises(ValueError, match="'squeezenet' is not yet supported for FasterRCNN"):
        split_backbone("squeezenet", keras.Input((160, 160, 3)))


def test_body_weights_are_shared() -> None:
    _, body = split_backbone("resnet10", keras.Input((160, 160, 3)))
    a, b = keras.Input((7, 7, 256)), keras.Input((7, 7, 256))
    out_a = body(a)
    layers_after_first = list(body.layers)
    out_b = body(b)
    assert body.layers == layers_after_first  # no new layers on the second call
    twice = keras.Model([a, b], [out_a, out_b])
    once = keras.Model(a, out_a)
    assert twice.count_params() == once.count_params()
    assert _layer_names(twice).count("block_4a_conv_1") == 1
    assert len([w for w in twice.weights if "block_4a_conv_1" in w.path]) == 1
    with pytest.raises(ValueError, match="built for crops"):
        body(keras.Input((5, 5, 256)))


def test_freeze_flags_reach_body_layers() -> None:
    image = keras.Input((160, 160, 3))
    feature, body = split_backbone("resnet10", image, freeze_blocks=(0, 4))
    body(keras.Input((7, 7, 256)))
    by_name = {layer.name: layer for layer in body.layers}
    assert not by_name["block_4a_conv_1"].trainable and not by_name["block_4a_conv_shortcut"].trainable
    assert not by_name["block_4a_bn_1"].trainable and by_name["avg_pool"].trainable
    trunk = {layer.name: layer for layer in keras.Model(image, feature).layers}
    assert not trunk["conv1"].trainable and trunk["block_3a_conv_1"].trainable and trunk["block_3a_bn_1"].trainable
    model = build_inference_model(_tiny_config(freeze_blocks=(1,), freeze_bn=True))
    layers = {layer.name: layer for layer in model.layers}
    assert not layers["block_1a_conv_1"].trainable and layers["block_2a_conv_1"].trainable
    assert layers["block_4a_conv_1"].trainable and not layers["block_4a_bn_1"].trainable
    assert not layers["bn_conv1"].trainable and layers["rpn_conv1"].trainable


# ---------------------------------------------------------------------------------------------- whole network


def test_resnet18_kitti_shapes_and_parameter_count() -> None:
    config = FasterRcnnNetworkConfig("resnet18", (3, 384, 1248), num_fg_classes=3, all_projections=False)
    model = build_inference_model(config)
    assert model.output_names == OUTPUTS
    shapes = [tuple(t.shape) for t in model.outputs]
    assert shapes == [(None, 24, 78, 9), (None, 24, 78, 36), (None, 300, 4), (None, 300, 4), (None, 300, 12)]
    layer = model.get_layer("proposals")
    assert isinstance(layer, ProposalLayer) and layer.anchors((24, 78)).shape == (16848, 4)
    assert tuple(model.get_layer("crop_and_resize").output.shape) == (None, 7, 7, 256)
    heads = {"rpn_conv1", "rpn_out_class", "rpn_out_regress", "dense_class_td", "dense_regress_td"}
    head_params = sum(model.get_layer(name).count_params() for name in heads)
    backbone_params = model.count_params() - head_params
    rpn = (3 * 3 * 256 * 512 + 512) + (512 * 9 + 9) + (512 * 36 + 36)
    rcnn = 513 * 4 + 513 * 12
    print(f"resnet18 FasterRCNN: backbone {backbone_params:,}, RPN {rpn:,}, RCNN head {rcnn:,}, "
          f"total {model.count_params():,}")
    # torchvision's resnet18 without fc has 11,176,512 trainable parameters; Keras also counts the 4,800 BN
    # channels' moving mean and variance, and without use_pooling block_1a downsamples, so it has a projection
    # shortcut (64x64 conv + BN) that the paper layout lacks.
    assert backbone_params == 11_176_512 + 2 * 4_800 + (64 * 64 + 4 * 64)
    assert head_params == rpn + rcnn
    projections = build_inference_model(_tiny_config(backbone="resnet18", all_projections=True))
    tiny_heads = sum(projections.get_layer(name).count_params() for name in heads)
    print(f"resnet18 with all_projections: backbone {projections.count_params() - tiny_heads:,}")
    assert 11_400_000 < projections.count_params() - tiny_heads < 11_700_000


def test_vgg16_inference_model_names() -> None:
    model = build_inference_model(_tiny_config(backbone="vgg16", pool_size=2))
    assert model.output_names == OUTPUTS
    names = _layer_names(model)
    assert {"block_5c_conv_1", "fc1", "fc2", "dense_class_td", "dense_regress_td"} <= set(names)
    assert len(names) == len(set(names))
    assert tuple(model.outputs[3].shape) == (None, 4, 3)


def test_forward_pass_tiny_image() -> None:
    model = build_inference_model(_tiny_config())
    image = np.random.default_rng(0).uniform(-1, 1, (2, 3, 160, 160)).astype(np.float32)
    outputs = model(image, training=False)
    shapes = [tuple(o.shape) for o in outputs]
    assert shapes == [(2, 10, 10, 3), (2, 10, 10, 12), (2, 4, 4), (2, 4, 3), (2, 4, 8)]
    for out in outputs:
        assert np.all(np.isfinite(out.numpy()))
    probs, rois = outputs[3].numpy(), outputs[2].numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert rois.min() >= 0 and rois[..., 2].max() <= 159 and rois[..., 3].max() <= 159
    names = _layer_names(model)
    assert names.count("block_4a_conv_1") == 1 and len(names) == len(set(names))


def test_save_load_round_trip(tmp_path: Any) -> None:
    model = build_inference_model(_tiny_config(input_shape=(3, 96, 96), pool_size=3, pool_size_2x=True))
    image = np.random.default_rng(1).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)
    expected = [o.numpy() for o in model(image)]
    path = tmp_path / "frcnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.output_names == OUTPUTS
    for got, want in zip(loaded(image), expected, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    proposal = loaded.get_layer("proposals")
    assert isinstance(proposal, ProposalLayer) and proposal.post_nms_top_n == 4 and proposal.ratios == [1.0]
    crop = loaded.get_layer("crop_and_resize")
    assert isinstance(crop, CropAndResize) and crop.crop_size == 6


# -------------------------------------------------------------------------------------------------- the layers


def _rpn_outputs(rng: np.random.Generator, n: int, hf: int, wf: int, a: int) -> tuple[np.ndarray, np.ndarray]:
    scores = rng.uniform(0, 1, (n, hf, wf, a)).astype(np.float32)
    deltas = rng.normal(0, 0.3, (n, hf, wf, 4 * a)).astype(np.float32)
    return scores, deltas


def test_proposal_layer_equals_proposals_function() -> None:
    rng = np.random.default_rng(2)
    scores, deltas = _rpn_outputs(rng, 2, 5, 6, 6)
    scales, ratios = [24.0, 48.0], [1.0, 0.5, 2.0]
    layer = ProposalLayer((80, 96), scales, ratios, std_scaling=2.0, pre_nms_top_n=50, post_nms_top_n=12,
                          nms_iou=0.6, with_count=True)
    rois, count = layer([scores, deltas])
    anchors = grid_anchors((5, 6), 16, scales, ratios)
    want_rois, want_count = proposals.proposals(scores.reshape(2, -1), deltas.reshape(2, -1, 4), anchors, (80, 96),
                                                std_scaling=2.0, pre_nms_top_n=50, post_nms_top_n=12, nms_iou=0.6)
    np.testing.assert_array_equal(rois.numpy(), want_rois.numpy())
    np.testing.assert_array_equal(count.numpy(), want_count.numpy())
    ref_rois, ref_count = proposals.proposals_reference(scores.reshape(2, -1), deltas.reshape(2, -1, 4), anchors,
                                                        (80, 96), std_scaling=2.0, pre_nms_top_n=50,
                                                        post_nms_top_n=12, nms_iou=0.6)
    np.testing.assert_allclose(rois.numpy(), ref_rois, atol=1e-4)
    np.testing.assert_array_equal(count.numpy(), ref_count)
    with pytest.raises(ValueError, match="anchors per cell"):
        layer([scores[..., :3], deltas])


def test_proposal_layer_stops_gradients_and_serializes() -> None:
    rng = np.random.default_rng(3)
    scores, deltas = (tf.Variable(t) for t in _rpn_outputs(rng, 1, 3, 3, 1))
    layer = ProposalLayer((48, 48), [20.0], [1.0], pre_nms_top_n=9, post_nms_top_n=3)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer([scores, deltas]))
    assert all(g is None for g in tape.gradient(total, [scores, deltas]))
    clone = ProposalLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_crop_and_resize_equals_tf_op() -> None:
    rng = np.random.default_rng(4)
    feature = rng.normal(size=(2, 5, 6, 4)).astype(np.float32)
    rois = np.sort(rng.uniform(0, 79, (2, 3, 2, 2)), axis=2).transpose(0, 1, 3, 2).reshape(2, 3, 4)
    rois = rois[..., [0, 2, 1, 3]].astype(np.float32)  # (x1, y1, x2, y2), x1 <= x2, y1 <= y2
    rois[1, 2] = 0.0  # a padding row
    layer = CropAndResize((64, 80), 3)
    crops = layer([feature, rois]).numpy()
    boxes = np.stack([rois[..., 1] / 63, rois[..., 0] / 79, rois[..., 3] / 63, rois[..., 2] / 79], -1).reshape(-1, 4)
    want = tf.image.crop_and_resize(feature, boxes, [0, 0, 0, 1, 1, 1], [3, 3]).numpy()
    assert crops.shape == (6, 3, 3, 4)
    np.testing.assert_allclose(crops, want, rtol=1e-6, atol=1e-6)


def test_crop_and_resize_hand_check_and_box_gradient() -> None:
    ramp = np.tile(np.arange(4, dtype=np.float32), (4, 1))[None, :, :, None]  # f[y, x] = x on a 4x4 map
    rois = tf.Variable([[[0.0, 0.0, 63.0, 63.0]]])  # the whole 64x64 image
    feature = tf.Variable(ramp)
    with tf.GradientTape() as tape:
        crops = CropAndResize((64, 64), 2)([feature, rois])
        total = tf.reduce_sum(crops)
    np.testing.assert_allclose(crops.numpy()[0, :, :, 0], [[0, 3], [0, 3]])
    grad_feature, grad_rois = tape.gradient(total, [feature, rois])
    assert grad_rois is None and grad_feature is not None


def test_rpn_and_rcnn_heads() -> None:
    feature = keras.Input((6, 7, 32))
    scores, deltas = rpn_head(feature, 9)
    assert tuple(scores.shape) == (None, 6, 7, 9) and tuple(deltas.shape) == (None, 6, 7, 36)
    vectors = keras.Input((64,))
    probs, box_deltas = rcnn_head(vectors, 3, 5)
    assert tuple(probs.shape) == (None, 5, 4) and tuple(box_deltas.shape) == (None, 5, 12)
    head = keras.Model(vectors, [probs, box_deltas])
    assert head.output_names == ["dense_class_td", "dense_regress_td"]
    rows = np.random.default_rng(5).normal(size=(10, 64)).astype(np.float32)
    p, d = head(rows)
    assert p.shape == (2, 5, 4) and d.shape == (2, 5, 12)
    np.testing.assert_allclose(p.numpy().sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="at least one anchor"):
        rpn_head(feature, 0)
