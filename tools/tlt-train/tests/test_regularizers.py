"""apply_regularizer: the penalty equals weight·Σ|w| or weight·Σw² over the kernels in scope."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from libtlt.errors import SpecError
from libtlt.runtime.keras_model import model_from_bytes, model_to_bytes
from tlt_train.regularizers import apply_regularizer, regularization_penalty


def tiny_model(nested: bool = False) -> keras.Model:
    inputs = keras.Input((3, 8, 8))
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv1",
                            kernel_initializer=keras.initializers.RandomNormal(seed=1),
                            bias_initializer="ones")(inputs)
    x = keras.layers.BatchNormalization(axis=1, name="bn1")(x)
    x = keras.layers.DepthwiseConv2D(3, data_format="channels_first", name="dw1",
                                     depthwise_initializer=keras.initializers.RandomNormal(seed=2))(x)
    if nested:
        backbone = keras.Model(inputs, x, name="backbone")
        inputs = keras.Input((3, 8, 8))
        x = backbone(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(2, name="fc", kernel_initializer=keras.initializers.RandomNormal(seed=3))(x)
    return keras.Model(inputs, outputs)


def kernels(model: keras.Model, *names: str) -> list[np.ndarray]:
    found = {}
    for layer in model.layers:
        sub = layer.layers if isinstance(layer, keras.Model) else [layer]
        for inner in sub:
            found[inner.name] = inner
    out = []
    for name in names:
        layer = found[name]
        out.append(np.asarray(layer.kernel))
    return out


@pytest.mark.parametrize("nested", [False, True])
def test_l2_penalty_over_conv_and_dense_kernels(nested):
    model = apply_regularizer(tiny_model(nested), "L2", 0.01, scope=("Conv2D", "Dense"))
    conv, fc = kernels(model, "conv1", "fc")
    expected = 0.01 * (np.sum(conv.astype(np.float64) ** 2) + np.sum(fc.astype(np.float64) ** 2))
    assert regularization_penalty(model) == pytest.approx(expected, rel=1e-5)
    assert len(model.losses) == 2  # kernels only: no bias, no BatchNormalization, no DepthwiseConv2D


def test_l1_penalty_and_comma_separated_case_insensitive_scope():
    model = apply_regularizer(tiny_model(), "L1", 0.5, scope="conv2d, DepthwiseConv2D")
    conv, dw = kernels(model, "conv1", "dw1")
    expected = 0.5 * (np.abs(conv).sum() + np.abs(dw).sum())
    assert regularization_penalty(model) == pytest.approx(expected, rel=1e-5)


def test_no_reg_and_none_clear_previous_regularizers():
    for kind in ("NO_REG", "None", "none"):
        model = apply_regularizer(tiny_model(), "L2", 0.1)
        assert model.losses
        apply_regularizer(model, kind, 0.0)
        assert model.losses == []
        assert regularization_penalty(model) == 0.0


def test_layers_out_of_scope_lose_their_regularizer():
    model = apply_regularizer(tiny_model(), "L2", 0.1, scope=["conv2d", "dense"])
    apply_regularizer(model, "L1", 0.1, scope=["dense"])
    (fc,) = kernels(model, "fc")
    assert regularization_penalty(model) == pytest.approx(0.1 * np.abs(fc).sum(), rel=1e-5)


def test_penalty_is_part_of_the_training_loss():
    model = apply_regularizer(tiny_model(), "L2", 0.05)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype("float32")
    y = np.zeros((2, 2), "float32")
    data_loss = float(np.mean(np.asarray(model(x, training=True)) ** 2))
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(data_loss + regularization_penalty(model), rel=1e-4)


def test_regularizer_survives_save_and_load():
    model = apply_regularizer(tiny_model(), "L1", 0.02)
    reloaded = model_from_bytes(model_to_bytes(model))
    assert regularization_penalty(reloaded) == pytest.approx(regularization_penalty(model), rel=1e-6)
    assert isinstance(reloaded.get_layer("conv1").kernel_regularizer, keras.regularizers.L1)


def test_invalid_settings_are_spec_errors():
    with pytest.raises(SpecError) as err:
        apply_regularizer(tiny_model(), "L3", 0.1)
    assert err.value.field == "type"
    with pytest.raises(SpecError) as err:
        apply_regularizer(tiny_model(), "L2", -1.0)
    assert err.value.field == "weight"
    with pytest.raises(SpecError) as err:
        apply_regularizer(tiny_model(), "L2", 0.1, scope=[])
    assert err.value.field == "scope"
