"""Keras models in .tlt containers: exact round trip in memory, metadata, architecture checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from libtlt.errors import ModelFileError
from libtlt.io.modelfile import load_model_file, save_model_file
from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

keras = pytest.importorskip("keras")
FAST = {"kdf_iterations": 1000}


def small_model() -> keras.Model:
    inputs = keras.Input((3, 16, 16), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn_conv1")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def test_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = small_model()
    batch = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype("float32")
    save_tlt_model(tmp_path / "m.tlt", model, "key", {"architecture": "classification", "classes": ["a", "b"]},
                   **FAST)
    loaded, meta = load_tlt_model(tmp_path / "m.tlt", "key", architecture="classification")
    np.testing.assert_array_equal(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0))
    assert meta["classes"] == ["a", "b"]
    assert meta["input_names"] == ["input_1"] and meta["output_names"] == ["predictions"]
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert not list(tmp_path.glob("*.keras"))  # never written in clear


def test_wrong_key_and_wrong_architecture(tmp_path: Path) -> None:
    save_tlt_model(tmp_path / "m.tlt", small_model(), "key", {"architecture": "classification"}, **FAST)
    with pytest.raises(ModelFileError, match="wrong key"):
        load_tlt_model(tmp_path / "m.tlt", "other")
    with pytest.raises(ModelFileError, match="this is a classification model, not detectnet_v2"):
        load_tlt_model(tmp_path / "m.tlt", "key", architecture="detectnet_v2")


def test_an_etlt_is_not_a_keras_model(tmp_path: Path) -> None:
    save_model_file(tmp_path / "m.etlt", "key", {"model.onnx": b"onnx"}, {"architecture": "x"}, **FAST)
    assert "model.onnx" in load_model_file(tmp_path / "m.etlt", "key").files
    with pytest.raises(ModelFileError, match=r"not a \.tlt Keras model"):
        load_tlt_model(tmp_path / "m.etlt", "key")
