"""The fake-quantization op and layers: values, straight-through gradients, range tracking, shared weights."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from libtlt.qat.fake_quant import (  # noqa: E402
    ActivationQuantizer,
    QuantizedWeights,
    fake_quant,
    fake_quant_weights,
    weight_reduce_axes,
)


def test_values_are_int8_steps_of_amax_over_127_and_clipped() -> None:
    x = np.array([-3.0, -1.0, -0.004, 0.0, 0.004, 0.5, 0.9999, 1.0, 2.5], np.float32)
    got = np.asarray(fake_quant(tf.constant(x), 1.0))
    want = np.clip(np.round(np.clip(x, -1, 1) * 127), -127, 127) / 127
    np.testing.assert_allclose(got, want, atol=1e-7)
    # Every value lies on the int8 grid, inside [-amax, amax].
    steps = got * 127
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert got.min() == pytest.approx(-1.0) and got.max() == pytest.approx(1.0)


def test_gradient_passes_straight_through_inside_the_range_only() -> None:
    x = tf.constant([-2.0, -0.3, 0.01, 0.7, 1.5])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fake_quant(x, 1.0) * tf.constant([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0.0, 2.0, 3.0, 4.0, 0.0])


def test_weights_get_one_scale_per_output_channel() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    kernel[..., 2] *= 100.0  # one large channel must not coarsen the others
    conv = keras.layers.Conv2D(5, 3)
    axes = weight_reduce_axes(conv, 4)
    assert axes == (0, 1, 2)
    got = np.asarray(fake_quant_weights(tf.constant(kernel), axes))
    amax = np.abs(kernel).max(axis=(0, 1, 2), keepdims=True)
    np.testing.assert_allclose(got, np.round(kernel / amax * 127) * amax / 127, rtol=1e-5, atol=1e-6)
    assert weight_reduce_axes(keras.layers.DepthwiseConv2D(3), 4) == (0, 1)
    assert weight_reduce_axes(keras.layers.Conv2DTranspose(2, 3), 4) == (0, 1, 3)
    assert weight_reduce_axes(keras.layers.Dense(2), 2) == (0,)


def test_activation_range_is_a_moving_average_of_max_abs_frozen_at_inference() -> None:
    layer = ActivationQuantizer("relu", momentum=0.5)
    first = tf.constant([[0.5, -2.0]])
    out = layer(first, training=False)  # before any training batch: unchanged, no range yet
    np.testing.assert_array_equal(out.numpy(), first.numpy())
    assert float(layer.amax.numpy()) == 0.0
    layer(first, training=True)  # the first batch sets the range
    assert float(layer.amax.numpy()) == pytest.approx(2.0)
    layer(tf.constant([[4.0]]), training=True)
    assert float(layer.amax.numpy()) == pytest.approx(0.5 * 2.0 + 0.5 * 4.0)
    out = layer(tf.constant([[10.0, 1.0]]), training=False)
    assert float(layer.amax.numpy()) == pytest.approx(3.0)
    np.testing.assert_allclose(out.numpy(), [[3.0, np.round(127 / 3) * 3 / 127]], rtol=1e-6)


def test_quantized_weights_train_the_wrapped_layer_in_place() -> None:
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(4, 3, name="conv")
    inputs = keras.Input((8, 8, 3))
    quantizer = ActivationQuantizer("input", name="q")
    outputs = keras.layers.GlobalAveragePooling2D()(QuantizedWeights(conv, name="qw")(quantizer(inputs)))
    model = keras.Model(inputs, outputs)
    assert [id(v) for v in model.trainable_variables] == [id(conv.kernel), id(conv.bias)]
    assert [v.name for v in model.non_trainable_variables] == ["amax"]
    images = np.random.default_rng(1).random((16, 8, 8, 3), np.float32)
    before = conv.kernel.numpy().copy()
    # The wrapper's output is the layer's output with quantized kernel (and input).
    np.testing.assert_allclose(model.get_layer("qw")(images).numpy(), conv(images).numpy(), atol=0.05)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(images, np.ones((16, 4), np.float32), batch_size=8, epochs=1, verbose=0)
    assert np.abs(conv.kernel.numpy() - before).max() > 0  # gradients reached the shared kernel
    assert 0.9 < float(quantizer.amax.numpy()) <= 1.0  # images in [0, 1)
