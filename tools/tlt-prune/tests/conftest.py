"""Tiny hand-built functional models for tlt-prune tests (NCHW ``input_1`` + Permute, like the backbones)."""

from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

FAST = {"kdf_iterations": 1000}
KEY = "tlt_encode"
SIZE = 12


def batch(model, n: int = 2, seed: int = 0) -> np.ndarray:
    shape = (n, *tuple(model.inputs[0].shape)[1:])
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def randomize(model, seed: int = 0):
    """Random, well-spread weights everywhere (BN statistics included), so no filter is accidentally weak."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if variable.name in ("moving_variance", "gamma"):
                values.append(rng.uniform(0.5, 1.5, size=shape))
            else:
                values.append(rng.uniform(0.5, 1.0, size=shape) * rng.choice([-1, 1], size=shape) * 0.3)
        if values:
            layer.set_weights([v.astype("float32") for v in values])
    return model


def stem(channels: int = 3, size: int = SIZE):
    inputs = keras.Input((channels, size, size), name="input_1")
    return inputs, L.Permute((2, 3, 1), name="permute")(inputs)


def conv_bn(x, filters: int, name: str, kernel: int = 3, relu: bool = True):
    x = L.Conv2D(filters, kernel, padding="same", name=name)(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x) if relu else x


def residual_model():
    """conv1 → residual block (Add) → depthwise separable block → Concatenate → Flatten → Dense head."""
    inputs, x = stem()
    x = conv_bn(x, 16, "conv1")
    y = conv_bn(x, 16, "block_1a_conv_1")
    y = conv_bn(y, 16, "block_1a_conv_2", relu=False)
    x = L.ReLU(name="block_1a_relu")(L.Add(name="block_1a_add")([x, y]))
    d = L.DepthwiseConv2D(3, padding="same", name="conv_dw_1")(x)
    d = L.ReLU(name="conv_dw_1_relu")(L.BatchNormalization(name="conv_dw_1_bn")(d))
    p = L.Conv2D(16, 1, name="conv_pw_1")(d)
    b = L.Conv2D(8, 1, name="branch")(x)
    c = L.Concatenate(name="concat")([p, b])
    c = L.MaxPooling2D(name="pool")(c)
    h = L.Dense(10, activation="relu", name="fc1")(L.Flatten(name="flatten")(c))
    outputs = L.Dense(3, activation="softmax", name="predictions")(h)
    return randomize(keras.Model(inputs, outputs, name="residual"))


def gap_model():
    """Separable conv, SE-style Multiply (broadcast), Conv2DTranspose, PReLU and a GlobalAveragePooling head."""
    inputs, x = stem()
    x = conv_bn(x, 16, "conv1")
    s = L.GlobalAveragePooling2D(name="se_pool")(x)
    s = L.Reshape((1, 1, 16), name="se_reshape")(s)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(16, 1, activation="sigmoid", name="se_expand")(s)
    x = L.Multiply(name="se_multiply")([x, s])
    x = L.SeparableConv2D(16, 3, padding="same", name="sep")(x)
    x = L.PReLU(shared_axes=[1, 2], name="sep_prelu")(x)
    x = L.Conv2DTranspose(12, 3, strides=2, padding="same", name="up")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = L.Dense(3, activation="softmax", name="predictions")(x)
    return randomize(keras.Model(inputs, outputs, name="gap"))


def detectnet_like_model():
    """Two conv outputs like DetectNet_v2's output_cov / output_bbox."""
    inputs, x = stem()
    x = conv_bn(x, 16, "conv1")
    y = conv_bn(x, 16, "block_1a_conv_1")
    x = L.Add(name="add")([x, y])
    cov = L.Conv2D(2, 1, activation="sigmoid", name="output_cov")(x)
    bbox = L.Conv2D(8, 1, name="output_bbox")(x)
    return randomize(keras.Model(inputs, [cov, bbox], name="detectnet_like"))


@pytest.fixture
def kit() -> SimpleNamespace:
    """The builders and helpers above, for test modules (conftest is not importable in importlib mode)."""
    return SimpleNamespace(keras=keras, L=L, FAST=FAST, KEY=KEY, batch=batch, randomize=randomize, stem=stem,
                           conv_bn=conv_bn, residual_model=residual_model, gap_model=gap_model,
                           detectnet_like_model=detectnet_like_model)
