"""Pruning engine on hand-built functional models: exactness, tied channels, outputs, -el, bad input, retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from libtlt.errors import ModelFileError, TltError, UnsupportedError
from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model
from tlt_prune.prune import format_report, prune_file, prune_model, report_path
from tlt_prune.stats import filter_norms, normalize, retained_indices

EXACT = {"pruning_threshold": 0.05, "pruning_granularity": 1, "min_num_filters": 1}
CRITERIA = ("union", "intersection", "arithmetic_mean", "geometric_mean")


def counts(result) -> dict[str, tuple[int, int]]:
    return {r.name: (r.filters_before, r.filters_after) for r in result.layers}


def zero(model, name: str, channels: list[int], *, axis: int = -1) -> None:
    """Zero the filters ``channels`` of layer ``name`` (kernel slices along ``axis`` and bias entries)."""
    layer = model.get_layer(name)
    weights = []
    for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
        value = value.copy()
        if variable.name in ("kernel", "pointwise_kernel"):
            index = [slice(None)] * value.ndim
            index[axis] = channels
            value[tuple(index)] = 0.0
        elif variable.name in ("bias", "beta", "moving_mean"):
            value[channels] = 0.0
        weights.append(value)
    layer.set_weights(weights)


def assert_same_predictions(a, b, x) -> None:
    for pa, pb in zip(_outs(a, x), _outs(b, x), strict=True):
        np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)


def _outs(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("builder", ["residual_model", "gap_model", "detectnet_like_model"])
def test_threshold_zero_prunes_nothing(kit, builder: str) -> None:
    model = getattr(kit, builder)()
    result = prune_model(model, pruning_threshold=0.0)
    assert result.params_after == result.params_before
    assert all(before == after for before, after in counts(result).values())
    assert_same_predictions(model, result.model, kit.batch(model))


@pytest.mark.parametrize("criterion", CRITERIA)
def test_zeroed_filters_are_removed_without_changing_predictions(kit, criterion: str) -> None:
    model = kit.residual_model()
    tied = [1, 5, 9]  # conv1 + the residual branch + the depthwise conv share these channels
    for name in ("conv1", "conv1_bn", "block_1a_conv_2", "block_1a_conv_2_bn", "conv_dw_1_bn"):
        zero(model, name, tied)
    zero(model, "conv_dw_1", tied, axis=-2)
    zero(model, "block_1a_conv_1", [3])
    zero(model, "block_1a_conv_1_bn", [3])
    zero(model, "conv_pw_1", [0, 7])
    zero(model, "branch", [2])
    zero(model, "fc1", [4])
    result = prune_model(model, equalization_criterion=criterion, **EXACT)
    assert counts(result) == {
        "conv1": (16, 13), "block_1a_conv_1": (16, 15), "block_1a_conv_2": (16, 13), "conv_dw_1": (16, 13),
        "conv_pw_1": (16, 14), "branch": (8, 7), "fc1": (10, 9), "predictions": (3, 3)}
    assert result.model.get_layer("fc1").get_weights()[0].shape == (6 * 6 * 21, 9)
    assert_same_predictions(model, result.model, kit.batch(model))
    assert result.params_after < result.params_before


def test_zeroed_filters_in_separable_transpose_prelu_and_squeeze_excitation(kit) -> None:
    model = kit.gap_model()
    tied = [0, 6, 11]
    zero(model, "conv1", tied)
    zero(model, "conv1_bn", tied)
    zero(model, "se_expand", tied)  # sigmoid(0) = 0.5 multiplies a zero channel
    zero(model, "sep", [2])
    zero(model, "up", [5], axis=-2)  # Conv2DTranspose kernels are (h, w, out, in)
    result = prune_model(model, **EXACT)
    assert counts(result) == {"conv1": (16, 13), "se_reduce": (4, 4), "se_expand": (16, 13), "sep": (16, 15),
                              "up": (12, 11), "predictions": (3, 3)}
    assert result.model.get_layer("sep_prelu").get_weights()[0].shape == (1, 1, 15)
    assert_same_predictions(model, result.model, kit.batch(model))


def test_kept_filters_are_the_reference_rule_and_weights_are_sliced(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    x = L.Conv2D(16, 3, padding="same", name="a")(x)
    x = L.BatchNormalization(name="a_bn")(x)
    x = L.Conv2D(8, 3, padding="same", name="b")(x)
    model = kit.randomize(keras.Model(inputs, L.Conv2D(2, 1, name="out")(x)), seed=3)
    kernel = model.get_layer("a").get_weights()[0]
    kernel[..., 4] *= 0.1  # make a few filters clearly weak
    kernel[..., 9] *= 0.2
    model.get_layer("a").set_weights([kernel, model.get_layer("a").get_weights()[1]])
    expected = retained_indices(normalize(filter_norms(kernel), "max"), 0.5, 2, 4)
    result = prune_model(model, pruning_threshold=0.5, pruning_granularity=2, min_num_filters=4)
    pruned = result.model
    np.testing.assert_array_equal(pruned.get_layer("a").get_weights()[0], kernel[..., expected])
    np.testing.assert_array_equal(pruned.get_layer("a_bn").get_weights()[2],
                                  model.get_layer("a_bn").get_weights()[2][expected])
    kept_b = pruned.get_layer("b").get_weights()[0]
    assert kept_b.shape[2] == expected.size and kept_b.shape[3] % 2 == 0
    assert counts(result)["a"] == (16, expected.size) and expected.size % 2 == 0 and 4 not in expected


def test_output_layers_keep_every_filter(kit) -> None:
    model = kit.detectnet_like_model()
    result = prune_model(model, pruning_threshold=1.0, pruning_granularity=1, min_num_filters=1)
    assert counts(result) == {"conv1": (16, 1), "block_1a_conv_1": (16, 1), "output_cov": (2, 2),
                              "output_bbox": (8, 8)}
    assert [tuple(t.shape) for t in result.model.outputs] == [tuple(t.shape) for t in model.outputs]


def test_excluded_layers_keep_every_filter(kit) -> None:
    model = kit.residual_model()
    result = prune_model(model, pruning_threshold=1.0, pruning_granularity=1, min_num_filters=1,
                         excluded_layers=["conv_pw_1", "fc1"])
    found = counts(result)
    assert found["conv_pw_1"] == (16, 16) and found["fc1"] == (10, 10)
    assert found["branch"] == (8, 1) and found["conv1"] == (16, 1)
    # Excluding one member of a tied group keeps the whole group.
    tied = counts(prune_model(model, pruning_threshold=1.0, pruning_granularity=1, min_num_filters=1,
                              excluded_layers=["block_1a_conv_2"]))
    assert tied["conv1"] == tied["conv_dw_1"] == (16, 16)
    assert tied["block_1a_conv_1"] == (16, 1)


def test_granularity_and_minimum(kit) -> None:
    result = prune_model(kit.residual_model(), pruning_threshold=1.0, pruning_granularity=8, min_num_filters=5)
    found = counts(result)
    assert found["conv1"] == (16, 8) and found["branch"] == (8, 8) and found["fc1"] == (10, 8)


def test_bad_options_and_unknown_excluded_layer(kit) -> None:
    model = kit.detectnet_like_model()
    with pytest.raises(TltError, match=r"outside \[0, 1\]"):
        prune_model(model, pruning_threshold=1.5)
    with pytest.raises(TltError, match=">= 0"):
        prune_model(model, pruning_threshold=-0.1, normalizer="L2")
    with pytest.raises(TltError, match="did you mean conv1"):
        prune_model(model, excluded_layers=["conv_1"])
    prune_model(model, pruning_threshold=1.5, normalizer="L2")  # L2-normalized norms exceed 1


def test_unsupported_layer_is_named_and_excluding_its_feeders_works(kit) -> None:
    keras, L = kit.keras, kit.L

    @keras.saving.register_keras_serializable(package="tlt_prune_tests")
    class Doubler(L.Layer):
        def call(self, x):
            return x * 2.0

    inputs, x = kit.stem()
    x = kit.conv_bn(x, 8, "conv1")
    x = Doubler(name="doubler")(x)
    model = keras.Model(inputs, L.Conv2D(2, 1, name="out")(x))
    with pytest.raises(UnsupportedError, match=r"layer 'doubler' \(Doubler\) is not supported"):
        prune_model(model, pruning_threshold=1.0)
    result = prune_model(model, pruning_threshold=1.0, excluded_layers=["conv1"])
    assert counts(result)["conv1"] == (8, 8)


def test_a_layer_declaring_its_input_channels_fixed_keeps_its_feeders_whole(kit) -> None:
    keras, L = kit.keras, kit.L

    @keras.saving.register_keras_serializable(package="tlt_prune_tests")
    class FixedDoubler(L.Layer):
        pruned_channels_fixed = True

        def call(self, x):
            return x * 2.0

    inputs, x = kit.stem()
    x = kit.conv_bn(x, 8, "conv1")
    y = kit.conv_bn(x, 8, "conv2")
    x = FixedDoubler(name="doubler")(y)
    model = keras.Model(inputs, L.Conv2D(2, 1, name="out")(x))
    # No UnsupportedError: conv2 (feeding the layer) is fixed, conv1 (feeding conv2) is pruned.
    result = prune_model(model, pruning_threshold=0.9, pruning_granularity=2, min_num_filters=2)
    assert counts(result)["conv2"] == (8, 8)
    assert counts(result)["conv1"][1] < 8


def test_pruned_model_trains_saves_and_reloads(kit, tmp_path: Path) -> None:
    model = kit.residual_model()
    result = prune_model(model, pruning_threshold=0.9, pruning_granularity=2, min_num_filters=2)
    pruned = result.model
    assert result.params_after < result.params_before
    pruned.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = kit.batch(pruned, n=4)
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    before = [w.copy() for w in pruned.get_weights()]
    loss = pruned.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, pruned.get_weights(), strict=True))
    save_tlt_model(tmp_path / "p.tlt", pruned, kit.KEY, {"architecture": "classification"}, **kit.FAST)
    loaded, _ = load_tlt_model(tmp_path / "p.tlt", kit.KEY)
    assert_same_predictions(pruned, loaded, x)


def test_prune_file_keeps_metadata_and_writes_the_report(kit, tmp_path: Path) -> None:
    model = kit.residual_model()
    meta = {"architecture": "classification", "classes": ["a", "b", "c"], "input_shape": [3, 12, 12]}
    qat = {"qat": {"ranges": {"input_1": 1.0}}}  # ranges of the unpruned activations: dropped
    save_tlt_model(tmp_path / "in.tlt", model, kit.KEY, {**meta, **qat}, **kit.FAST)
    report = prune_file(tmp_path / "in.tlt", tmp_path / "out.tlt", kit.KEY, pruning_threshold=0.9,
                        pruning_granularity=2, min_num_filters=2, **kit.FAST)
    loaded, out_meta = load_tlt_model(tmp_path / "out.tlt", kit.KEY)
    assert {k: out_meta[k] for k in meta} == meta and "qat" not in out_meta
    pruned = out_meta["pruned"]
    assert pruned["from"] == "in.tlt" and pruned["threshold"] == 0.9
    assert pruned["params_before"] == model.count_params() == report["params_before"]
    assert pruned["params_after"] == loaded.count_params() == report["params_after"] < report["params_before"]
    assert pruned["equalization_criterion"] == "union" and pruned["normalizer"] == "max"
    assert report_path(tmp_path / "out.tlt") == tmp_path / "out.json"
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(json.dumps(report))
    table = format_report(report)
    assert "conv_pw_1" in table and "Pruning ratio (pruned model / original model)" in table
    assert "Parameters before pruning" in table and "Model size (weights)" in table
    float32 = 4 * (report["params_before"] - report["params_after"])  # BN statistics included: all float32
    assert report["weights_before_bytes"] - report["weights_after_bytes"] == float32


def test_prune_file_errors_write_nothing(kit, tmp_path: Path) -> None:
    save_tlt_model(tmp_path / "in.tlt", kit.detectnet_like_model(), kit.KEY, {}, **kit.FAST)
    with pytest.raises(ModelFileError, match="wrong key"):
        prune_file(tmp_path / "in.tlt", tmp_path / "out.tlt", "other", **kit.FAST)
    with pytest.raises(TltError, match="not in the model"):
        prune_file(tmp_path / "in.tlt", tmp_path / "out.tlt", kit.KEY, excluded_layers=["nope"], **kit.FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tlt"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet10", "mobilenet_v1", "mobilenet_v2", "squeezenet"])
def test_backbones_prune_and_run(kit, name: str) -> None:
    backbones = pytest.importorskip("libtlt.backbones")
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem(size=32)
    features = backbones.build_backbone(name, x)
    top = features[max(features)]
    outputs = L.Dense(3, activation="softmax", name="predictions")(L.GlobalAveragePooling2D()(top))
    model = kit.randomize(keras.Model(inputs, outputs), seed=1)
    result = prune_model(model, pruning_threshold=0.95, pruning_granularity=1, min_num_filters=1)
    assert result.params_after < result.params_before
    assert any(after < before for before, after in counts(result).values())
    assert result.model(kit.batch(model)).shape == (2, 3)


@pytest.mark.parametrize(("criterion", "kept"), [("union", 8), ("intersection", 7), ("geometric_mean", 7)])
def test_depthwise_stats_join_the_equalization(kit, criterion: str, kept: int) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    x = L.Conv2D(8, 3, padding="same", name="a")(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    model = kit.randomize(keras.Model(inputs, L.Conv2D(2, 1, name="out")(x)))
    zero(model, "dw", [3], axis=-2)  # a strong filter of 'a' whose depthwise channel is dead
    result = prune_model(model, equalization_criterion=criterion, pruning_threshold=0.5, pruning_granularity=1,
                         min_num_filters=1)
    assert counts(result)["a"] == (8, kept) == counts(result)["dw"]


@pytest.mark.slow
def test_classification_model_round_trip(kit) -> None:
    head = pytest.importorskip("libtlt.archs.classification.classification_head")
    model = head.build_classifier(head.ClassifierConfig("resnet10", (3, 32, 32), 3, freeze_blocks=(0,),
                                                        bn_momentum=0.9))
    model = kit.randomize(model, seed=2)
    x = kit.batch(model)
    same = prune_model(model, pruning_threshold=0.0)
    assert_same_predictions(model, same.model, x)
    assert not same.model.get_layer("conv1").trainable and same.model.get_layer("bn_conv1").momentum == 0.9
    smaller = prune_model(model, pruning_threshold=0.95, pruning_granularity=4, min_num_filters=4)
    assert smaller.params_after < smaller.params_before
    assert smaller.model(x).shape == (2, 3)


def test_threshold_for_ratio_hits_the_wanted_size(kit) -> None:
    from tlt_prune.prune import threshold_for_ratio

    model = kit.residual_model()
    threshold = threshold_for_ratio(model, 0.5, steps=10, pruning_granularity=1, min_num_filters=1)
    kept = prune_model(model, pruning_threshold=threshold, pruning_granularity=1, min_num_filters=1)
    slightly_lower = prune_model(model, pruning_threshold=threshold - 2e-3, pruning_granularity=1, min_num_filters=1)
    assert kept.params_after / kept.params_before <= 0.5 < slightly_lower.params_after / slightly_lower.params_before
    with pytest.raises(TltError, match="ratio of parameters to keep"):
        threshold_for_ratio(model, 1.5)
