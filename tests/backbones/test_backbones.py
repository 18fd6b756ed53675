"""libtlt.backbones: every backbone builds with TLT layer names, levels, freezing, options and safe-mode I/O."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from libtlt.backbones import BACKBONE_NAMES, block_of, build_backbone, freeze_block_ids, set_freeze  # noqa: E402
from libtlt.runtime.keras_model import model_from_bytes, model_to_bytes  # noqa: E402

SIZE = 48


@cache
def backbone_model(name: str, channels: int = 3, size: int = SIZE) -> keras.Model:
    """One model per backbone (default options), built once; outputs are its levels in order."""
    inputs = keras.Input((size, size, channels), name="input_1")
    features = build_backbone(name, inputs)
    return keras.Model(inputs, features, name=name)


def build(name: str, size: int = SIZE, channels: int = 3, **options: object) -> keras.Model:
    inputs = keras.Input((size, size, channels), name="input_1")
    return keras.Model(inputs, build_backbone(name, inputs, **options))


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def layer_types(model: keras.Model, cls: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, cls)]


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_builds_and_runs_with_strided_levels(name: str) -> None:
    model = backbone_model(name)
    levels = list(model.output)
    assert levels and levels == sorted(levels, key=lambda key: int(key[1:]))
    assert {"P3", "P4"} <= set(levels)
    assert ("P5" in levels) == (name != "squeezenet")
    batch = np.random.default_rng(0).normal(size=(1, SIZE, SIZE, 3)).astype("float32")
    outputs = model(batch, training=False)
    for key, value in outputs.items():
        side = math.ceil(SIZE / 2 ** int(key[1:]))
        assert tuple(value.shape[:3]) == (1, side, side), key
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(value)))


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_blocks_cover_the_documented_ids(name: str) -> None:
    model = backbone_model(name)
    found = {block_of(name, layer.name) for layer in model.layers if layer.weights}
    assert None not in found, [layer.name for layer in model.layers if layer.weights and block_of(name, layer.name) is None]
    assert found == set(freeze_block_ids(name))
    assert block_of(name, "input_1") is None and block_of(name, "predictions") is None


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_set_freeze_freezes_exactly_the_requested_blocks(name: str) -> None:
    model = backbone_model(name)
    ids = freeze_block_ids(name)
    frozen = {ids[0], ids[len(ids) // 2]}
    try:
        set_freeze(model, name, sorted(frozen), freeze_bn=False)
        for layer in model.layers:
            block = block_of(name, layer.name)
            if block is not None:
                assert layer.trainable == (block not in frozen), layer.name
        set_freeze(model, name, [], freeze_bn=True)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                assert not layer.trainable and not layer.trainable_weights, layer.name
            elif layer.weights:
                assert layer.trainable, layer.name
    finally:
        set_freeze(model, name, [], freeze_bn=False)
    assert all(layer.trainable for layer in model.layers)


def test_build_freezes_blocks_and_batch_norm() -> None:
    model = build("resnet18", 32, freeze_blocks=[0, 2], freeze_bn=True)
    by_name = {layer.name: layer for layer in model.layers}
    assert not by_name["conv1"].trainable and not by_name["block_2a_conv_1"].trainable
    assert by_name["block_1a_conv_1"].trainable and by_name["block_4b_conv_2"].trainable
    assert not any(layer.trainable for layer in layer_types(model, keras.layers.BatchNormalization))
    assert trainable_count(model) == sum(
        int(np.prod(w.shape)) for layer in model.layers if block_of("resnet18", layer.name) in (1, 3, 4)
        and not isinstance(layer, keras.layers.BatchNormalization) for w in layer.weights)


@pytest.mark.parametrize("bad", [5, -1, 1.5])
def test_invalid_freeze_blocks_name_the_valid_range(bad: float) -> None:
    inputs = keras.Input((32, 32, 3))
    with pytest.raises(ValueError, match="0-4"):
        build_backbone("resnet18", inputs, freeze_blocks=[bad])
    with pytest.raises(ValueError, match="0-4"):
        set_freeze(backbone_model("resnet18"), "resnet18", [bad], freeze_bn=False)


def test_unknown_backbone_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="resnet18"):
        build_backbone("resnet19", keras.Input((32, 32, 3)))
    with pytest.raises(ValueError, match="known"):
        block_of("alexnet", "conv1")


def test_resnet18_layer_names() -> None:
    names = {layer.name for layer in backbone_model("resnet18").layers}
    expected = {"conv1", "bn_conv1", "block_1a_conv_1", "block_1a_bn_1", "block_1a_conv_2", "block_1a_bn_2",
                "block_1a_conv_shortcut", "block_1a_bn_shortcut", "block_1b_conv_1", "block_4b_bn_2",
                "block_4b_conv_shortcut"}
    assert expected <= names
    assert [block_of("resnet18", n) for n in ("conv1", "bn_conv1", "block_1a_conv_1", "block_3b_bn_2",
                                                 "block_4a_bn_shortcut")] == [0, 0, 1, 3, 4]


@pytest.mark.parametrize(("name", "expected"), [
    ("vgg16", {"block_1a_conv_1": 1, "block_1b_bn_1": 1, "block_3c_conv_1": 3, "block_5c_conv_1": 5}),
    ("vgg19", {"block_3d_conv_1": 3, "block_5d_conv_1": 5}),
    ("googlenet", {"conv1": 0, "conv2_reduce": 0, "conv2": 0, "inception_3a_conv_1x1": 1,
                   "inception_3b_conv_3x3_reduce": 2, "inception_4a_conv_5x5": 3, "inception_4e_conv_pool_proj": 7,
                   "inception_4e_output": 7, "inception_5b_conv_1x1": 7}),
    ("mobilenet_v1", {"conv1": 0, "conv_dw_1": 1, "conv_pw_1_bn": 1, "conv_dw_11": 11, "conv_pw_13": 11}),
    ("mobilenet_v2", {"conv1": 0, "block_0_depthwise": 0, "block_0_project": 0, "block_1_expand": 1,
                      "block_1_depthwise": 1, "block_13_project": 13, "block_16_project_bn": 13, "conv_1": 13}),
    ("squeezenet", {"conv1": 0, "fire2_squeeze_conv": 1, "fire2_expand_conv1x1": 1, "fire9_expand_conv3x3": 8}),
    ("darknet19", {"b0_conv1": 0, "b1_conv1": 1, "b2_conv3": 2, "b5_conv5": 5}),
    ("darknet53", {"b0_conv1": 0, "b1_conv3": 1, "b3_conv17": 3, "b5_conv9": 5}),
    ("efficientnet_b0", {"stem_conv": 0, "block1a_dwconv": 1, "block2b_expand_conv": 2, "block6d_se_reduce": 6,
                         "block7a_project_conv": 7, "top_conv": 7}),
    ("efficientnet_b5", {"block3e_project_conv": 3, "block6i_dwconv": 6, "block7c_add": 7}),
])
def test_documented_layer_names_and_their_blocks(name: str, expected: dict[str, int]) -> None:
    names = {layer.name for layer in backbone_model(name).layers}
    assert set(expected) <= names
    assert {layer: block_of(name, layer) for layer in expected} == expected


def test_resnet101_block_letters_continue_past_z() -> None:
    names = {layer.name for layer in backbone_model("resnet101").layers}
    assert {"block_3w_conv_3", "block_4c_bn_3"} <= names and block_of("resnet101", "block_3w_conv_3") == 3


def test_all_projections_changes_the_shortcut_count() -> None:
    def shortcuts(**options: object) -> int:
        return sum(layer.name.endswith("_conv_shortcut") for layer in build("resnet18", 32, **options).layers)

    assert shortcuts(all_projections=True) == 8
    assert shortcuts(all_projections=False, use_pooling=True) == 3  # stages 2-4 change shape
    assert shortcuts(all_projections=False, use_pooling=False) == 4  # stage 1 strides too


def test_use_pooling_adds_a_max_pool_after_the_stem() -> None:
    pooled = build("resnet18", 32, use_pooling=True)
    strided = build("resnet18", 32, use_pooling=False)
    assert "pool1" in {layer.name for layer in pooled.layers}
    assert not layer_types(strided, keras.layers.MaxPooling2D)
    assert [tuple(t.shape) for t in pooled.outputs] == [tuple(t.shape) for t in strided.outputs]


def test_use_bias_and_use_batch_norm_toggles() -> None:
    plain = build("resnet18", 32, use_bias=True, use_batch_norm=False)
    assert not layer_types(plain, keras.layers.BatchNormalization)
    assert all(layer.use_bias for layer in layer_types(plain, keras.layers.Conv2D))
    default = backbone_model("resnet18")
    assert layer_types(default, keras.layers.BatchNormalization)
    assert not any(layer.use_bias for layer in layer_types(default, keras.layers.Conv2D))


def test_efficientnet_keeps_batch_norm_when_use_batch_norm_is_off() -> None:
    # A 003 YAML spec leaves use_batch_norm false; EfficientNet without BN does not train (issue 12 §1b).
    model = build("efficientnet_b0", 32, use_batch_norm=False)
    assert len(layer_types(model, keras.layers.BatchNormalization)) == len(
        layer_types(backbone_model("efficientnet_b0"), keras.layers.BatchNormalization)) > 40


def test_regularizers_attach_to_kernels_and_biases() -> None:
    reg = keras.regularizers.L2(1e-4)
    model = build("resnet10", 32, use_bias=True, kernel_regularizer=reg, bias_regularizer=reg)
    convs = layer_types(model, keras.layers.Conv2D)
    assert convs and all(c.kernel_regularizer is not None and c.bias_regularizer is not None for c in convs)
    assert len(model.losses) == 2 * len(convs)


def test_single_channel_input() -> None:
    model = build("resnet10", 32, channels=1)
    out = model(np.zeros((2, 32, 32, 1), "float32"))
    assert tuple(out["P5"].shape) == (2, 1, 1, 512)


@pytest.mark.parametrize(("name", "expected"), [("resnet18", 11_176_512), ("resnet50", 23_508_032),
                                                  ("mobilenet_v2", 2_223_872)])
def test_parameter_counts_match_the_published_figures(name: str, expected: int) -> None:
    # The well-known ImageNet counts less the 1000-class classifier (paper layout: pooled stem, identity shortcuts).
    assert trainable_count(build(name, 32, all_projections=False, use_pooling=True)) == expected


@pytest.mark.parametrize(("name", "expected"), [("vgg16", 14_714_688 - 4224 + 4 * 4224), ("mobilenet_v1", 3_228_864),
                                                  ("efficientnet_b0", 4_049_564), ("darknet53", 40_620_640)])
def test_parameter_counts_of_other_families(name: str, expected: int) -> None:
    # Keras' own ImageNet models without the top (all weights, batch-norm statistics included); VGG has batch
    # normalization here (4 weights x 4224 channels) but no conv biases (-4224) by default.
    assert backbone_model(name).count_params() == expected


def test_mobilenet_v2_all_projections_replaces_identity_shortcuts() -> None:
    projected = backbone_model("mobilenet_v2")
    identity = build("mobilenet_v2", 32, all_projections=False)
    shortcuts = [layer for layer in projected.layers if layer.name.endswith("_projected_inputs")]
    adds = [layer.name for layer in identity.layers if layer.name.endswith("_add")]
    assert len(shortcuts) == len(adds) == 10
    assert not any(layer.name.endswith("_projected_inputs") for layer in identity.layers)
    # TLT's template: a linear 1x1 map without bias, added as it is (no batch normalization on the shortcut).
    assert all(isinstance(layer, keras.layers.Conv2D) and not layer.use_bias for layer in shortcuts)
    assert not any("shortcut" in layer.name for layer in projected.layers)
    for layer in shortcuts:
        consumers = {node.operation.name for node in layer._outbound_nodes}
        assert consumers == {layer.name.replace("_projected_inputs", "_add")}


def test_dropout_only_where_documented() -> None:
    for name, layer_name in (("vgg16", "block_5_dropout"), ("squeezenet", "fire9_dropout")):
        model = build(name, 32, dropout=0.5)
        assert model.get_layer(layer_name).rate == 0.5
    assert not layer_types(backbone_model("squeezenet"), keras.layers.Dropout)
    assert not layer_types(build("resnet10", 32, dropout=0.5), keras.layers.Dropout)
    with pytest.raises(ValueError, match="dropout"):
        build("vgg16", 32, dropout=1.0)


def test_vgg_use_pooling_keeps_the_levels() -> None:
    pooled, strided = build("vgg16", 32, use_pooling=True), backbone_model("vgg16", size=32)
    assert len(layer_types(pooled, keras.layers.MaxPooling2D)) == 5 and not layer_types(strided, keras.layers.MaxPooling2D)
    assert [tuple(t.shape) for t in pooled.outputs] == [tuple(t.shape) for t in strided.outputs]


@pytest.mark.parametrize("use_pooling", [False, True])
def test_vgg_tlt_template_is_a_stride_16_trunk(use_pooling: bool) -> None:
    """TLT's VGG template (the detectors'): block 1 at full resolution, block 4 at stride 8 (SSD's
    ``block_4c_relu``), block 5 at stride 16 (DetectNet_v2's and FasterRCNN's map); no pool after block 5."""
    model = build("vgg16", 64, tlt_template=True, use_pooling=use_pooling)
    assert {key: tuple(t.shape[1:3]) for key, t in model.output.items()} == {
        "P1": (32, 32), "P2": (16, 16), "P3": (8, 8), "P4": (4, 4)}
    assert tuple(model.get_layer("block_1b_relu").output.shape[1:3]) == (64, 64)
    assert tuple(model.get_layer("block_4c_relu").output.shape[1:3]) == (8, 8)
    pools = [layer.name for layer in layer_types(model, keras.layers.MaxPooling2D)]
    assert pools == ([f"block_{i}_pool" for i in range(1, 5)] if use_pooling else [])
    assert trainable_count(model) == trainable_count(build("vgg16", 64))  # the same layers, other strides


def test_activation_option_and_fixed_activations() -> None:
    relu6 = build("mobilenet_v1", 32, activation="relu6")
    assert relu6.get_layer("conv_pw_13_relu").max_value == 6.0
    for name, layer in (("mobilenet_v1", "conv_pw_13_relu"), ("mobilenet_v2", "block_5_expand_relu")):
        assert backbone_model(name, size=32).get_layer(layer).max_value == 6.0  # MobileNet's default: ReLU6
    assert isinstance(build("mobilenet_v2", 32, activation="relu").get_layer("conv_1_relu"), keras.layers.Activation)
    assert isinstance(backbone_model("resnet18", size=32).get_layer("conv1_relu"), keras.layers.Activation)
    assert backbone_model("darknet19").get_layer("b5_leaky5").negative_slope == pytest.approx(0.1)
    assert backbone_model("efficientnet_b0").get_layer("top_activation").activation.__name__ in {"swish", "silu"}


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "squeezenet", "darknet19", "efficientnet_b0"])
def test_safe_mode_round_trip_gives_identical_outputs(name: str) -> None:
    inputs = keras.Input((32, 32, 3), name="input_1")
    features = build_backbone(name, inputs, use_bias=True, kernel_regularizer=keras.regularizers.L2(1e-5),
                              dropout=0.2 if name == "squeezenet" else 0.0, freeze_blocks=[0])
    top = max(features, key=lambda key: int(key[1:]))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features[top])
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    loaded = model_from_bytes(model_to_bytes(model))
    batch = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(batch)), keras.ops.convert_to_numpy(model(batch)))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert [layer.trainable for layer in loaded.layers] == [layer.trainable for layer in model.layers]


def test_efficientnet_convolutions_start_at_fan_out_scale() -> None:
    model = backbone_model("efficientnet_b0", size=32)
    for name in ("stem_conv", "block2a_expand_conv", "block2a_se_reduce", "top_conv"):
        initializer = model.get_layer(name).kernel_initializer
        assert isinstance(initializer, keras.initializers.VarianceScaling), name
        assert (initializer.scale, initializer.mode) == (2.0, "fan_out"), name
    assert isinstance(model.get_layer("block2a_dwconv").depthwise_initializer, keras.initializers.VarianceScaling)
    kernel = model.get_layer("top_conv").kernel.numpy()  # 1x1, 320 -> 1280: std sqrt(2 / 1280), truncated
    assert 0.6 * np.sqrt(2 / 1280) < kernel.std() < 1.1 * np.sqrt(2 / 1280)
    assert isinstance(backbone_model("resnet18", size=32).get_layer("conv1").kernel_initializer,
                      keras.initializers.GlorotUniform)
