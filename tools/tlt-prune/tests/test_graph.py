"""Channel-dependency analysis: tied groups, concatenation offsets, Flatten→Dense masks, fixed and unsupported."""

from __future__ import annotations

import numpy as np
import pytest

from libtlt.errors import UnsupportedError
from tlt_prune.graph import BARRIER, DEPTHWISE, PRODUCER, analyze


def root_of(analysis, name: str) -> int:
    return analysis.groups.find(analysis.layers[name].group)


def test_residual_add_and_depthwise_tie_groups(kit) -> None:
    analysis = analyze(kit.residual_model())
    tied = {root_of(analysis, n) for n in ("conv1", "block_1a_conv_2")}
    assert len(tied) == 1
    assert root_of(analysis, "block_1a_conv_1") not in tied
    dw = analysis.layers["conv_dw_1"]
    assert dw.kind == DEPTHWISE
    assert {analysis.groups.find(g) for g in dw.in_map.groups()} == tied
    assert analysis.layers["conv_pw_1"].kind == PRODUCER
    assert not analysis.groups.is_fixed(root_of(analysis, "conv1"))
    assert analysis.groups.is_fixed(root_of(analysis, "predictions"))


def test_concatenate_offsets_and_flatten_tiles_channels_last(kit) -> None:
    analysis = analyze(kit.residual_model())
    fc = analysis.layers["fc1"].in_map  # Flatten of (6, 6, 16 + 8), channels_last: H·W·C order
    assert len(fc) == 6 * 6 * 24
    pw, branch = analysis.layers["conv_pw_1"].group, analysis.layers["branch"].group
    np.testing.assert_array_equal(fc.gid[:24], [pw] * 16 + [branch] * 8)
    np.testing.assert_array_equal(fc.idx[:24], list(range(16)) + list(range(8)))
    np.testing.assert_array_equal(fc.gid, np.tile(fc.gid[:24], 36))
    np.testing.assert_array_equal(fc.idx, np.tile(fc.idx[:24], 36))


def test_flatten_of_channels_first_repeats_each_channel(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs = keras.Input((3, 4, 4), name="input_1")
    x = L.Conv2D(5, 3, padding="same", data_format="channels_first", name="conv")(inputs)
    x = L.BatchNormalization(axis=1, name="bn")(x)
    h = L.Dense(4, name="fc")(L.Flatten(name="flatten")(x))
    analysis = analyze(keras.Model(inputs, L.Dense(2, name="predictions")(h)))
    fc = analysis.layers["fc"].in_map
    np.testing.assert_array_equal(fc.idx, np.repeat(np.arange(5), 16))
    assert analysis.layers["bn"].in_map.axis == 1


def test_broadcast_multiply_ties_squeeze_excitation(kit) -> None:
    analysis = analyze(kit.gap_model())
    assert root_of(analysis, "conv1") == root_of(analysis, "se_expand")
    assert root_of(analysis, "se_reduce") != root_of(analysis, "conv1")
    assert analysis.layers["sep_prelu"].in_map.axis == 3


def test_outputs_are_fixed_through_pass_through_layers(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    x = kit.conv_bn(x, 8, "conv1")
    out = L.BatchNormalization(name="out_bn")(L.Conv2D(4, 1, name="head")(x))
    analysis = analyze(keras.Model(inputs, out))
    assert analysis.groups.is_fixed(root_of(analysis, "head"))
    assert not analysis.groups.is_fixed(root_of(analysis, "conv1"))
    assert any("model output 'out_bn'" in r for r in analysis.groups.fixed[root_of(analysis, "head")])


def test_detectnet_outputs_fixed(kit) -> None:
    analysis = analyze(kit.detectnet_like_model())
    for name in ("output_cov", "output_bbox"):
        assert analysis.groups.is_fixed(root_of(analysis, name))
    assert not analysis.groups.is_fixed(root_of(analysis, "conv1"))


def test_adding_the_input_fixes_the_group(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    y = L.Conv2D(3, 3, padding="same", name="conv")(x)
    z = L.Conv2D(4, 1, name="next")(L.Add(name="add")([x, y]))
    analysis = analyze(keras.Model(inputs, L.GlobalAveragePooling2D()(z)))
    assert analysis.groups.is_fixed(root_of(analysis, "conv"))


def test_grouped_conv_and_layer_norm_are_barriers(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    a = L.Conv2D(8, 3, padding="same", name="a")(x)
    g = L.Conv2D(8, 3, padding="same", groups=2, name="grouped")(a)
    b = L.Conv2D(8, 3, padding="same", name="b")(g)
    n = L.LayerNormalization(name="ln")(b)
    out = L.GlobalAveragePooling2D()(L.Conv2D(4, 1, name="c")(n))
    analysis = analyze(keras.Model(inputs, out))
    assert analysis.layers["grouped"].group is None
    assert analysis.groups.is_fixed(root_of(analysis, "a"))
    assert analysis.groups.is_fixed(root_of(analysis, "b"))
    assert analysis.layers["ln"].kind == BARRIER
    assert analysis.groups.is_fixed(root_of(analysis, "c"))  # reaches the model output through the pooling


def test_unknown_layer_on_prunable_channels_is_named(kit) -> None:
    keras, L = kit.keras, kit.L

    class Custom(L.Layer):
        def call(self, x):
            return x * 2.0

    inputs, x = kit.stem()
    x = L.Conv2D(8, 3, padding="same", name="conv1")(x)
    x = Custom(name="my_custom")(x)
    x = L.Lambda(lambda t: t + 1.0, name="my_lambda")(x)
    model = keras.Model(inputs, L.Dense(2, name="predictions")(L.GlobalAveragePooling2D()(x)))
    analysis = analyze(model)
    with pytest.raises(UnsupportedError, match=r"layer 'my_custom' \(Custom\) is not supported.*-el conv1"):
        analysis.check_supported()
    analysis.fix_layer_outputs("conv1", "excluded")
    analysis.check_supported()


def test_unknown_layer_on_fixed_channels_is_fine(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    x = L.Lambda(lambda t: t * 2.0, name="scale")(x)
    x = L.Conv2D(8, 3, padding="same", name="conv1")(x)
    analysis = analyze(keras.Model(inputs, L.Conv2D(2, 1, name="out")(x)))
    analysis.check_supported()
    assert not analysis.groups.is_fixed(root_of(analysis, "conv1"))


def test_nested_model_is_unsupported(kit) -> None:
    keras, L = kit.keras, kit.L
    inner_in = keras.Input((4, 4, 3))
    inner = keras.Model(inner_in, L.Conv2D(4, 1)(inner_in), name="backbone")
    inputs = keras.Input((4, 4, 3))
    with pytest.raises(UnsupportedError, match="'backbone' is a nested model"):
        analyze(keras.Model(inputs, L.Conv2D(2, 1)(inner(inputs))))


def test_shared_layer_ties_its_inputs(kit) -> None:
    keras, L = kit.keras, kit.L
    inputs, x = kit.stem()
    a = L.Conv2D(8, 3, padding="same", name="a")(x)
    b = L.Conv2D(8, 3, padding="same", name="b")(x)
    shared = L.Conv2D(4, 1, name="shared")
    out = L.Concatenate(name="cat")([shared(a), shared(b)])
    analysis = analyze(keras.Model(inputs, out))
    assert root_of(analysis, "a") == root_of(analysis, "b")
