"""Pretrained weights by layer name and shape from .tlt, Keras HDF5 (both layouts) and .keras files."""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from libtlt.errors import ModelFileError, UnsupportedError
from libtlt.runtime.keras_model import save_tlt_model
from tlt_train.pretrained import load_pretrained, read_weights

KEY = "nvidia_tlt"


def source_model() -> keras.Model:
    inputs = keras.Input((3, 8, 8), name="input_1")
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv1",
                            kernel_initializer=keras.initializers.RandomNormal(seed=1), bias_initializer="ones")(inputs)
    x = keras.layers.BatchNormalization(axis=1, name="bn1", gamma_initializer=keras.initializers.RandomNormal(seed=2),
                                        moving_mean_initializer="ones")(x)
    x = keras.layers.Activation("relu", name="relu1")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_first", name="pool")(x)
    outputs = keras.layers.Dense(10, name="predictions")(x)
    return keras.Model(inputs, outputs)


def target_model() -> keras.Model:
    """Same backbone, a 5-class head (shape mismatch) and a layer the source lacks."""
    inputs = keras.Input((3, 16, 16), name="input_1")
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(axis=1, name="bn1")(x)
    x = keras.layers.Activation("relu", name="relu1")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_first", name="pool")(x)
    x = keras.layers.Dense(6, name="extra")(x)
    outputs = keras.layers.Dense(5, name="predictions")(x)
    return keras.Model(inputs, outputs)


EXPECTED = {"input_1": "None", "conv1": "Yes", "bn1": "Yes", "relu1": "None", "pool": "None", "extra": "No",
            "predictions": "No"}


def check(report, source: keras.Model, target: keras.Model) -> None:
    assert {layer.name: layer.status for layer in report.layers} == EXPECTED
    for name in ("conv1", "bn1"):
        for got, want in zip(target.get_layer(name).get_weights(), source.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert report.model is target
    assert report.loaded == ["conv1", "bn1"]
    assert report.not_loaded == ["extra", "predictions"]


def test_from_tlt(tmp_path: Path):
    source = source_model()
    path = tmp_path / "pretrained.tlt"
    save_tlt_model(path, source, KEY, {"architecture": "classification"}, kdf_iterations=10)
    target = target_model()
    check(load_pretrained(target, path, KEY), source, target)


@pytest.mark.parametrize("name", ["model.h5", "model.hdf5", "weights.weights.h5", "model.keras"])
def test_from_keras_files(tmp_path: Path, name: str):
    source = source_model()
    path = tmp_path / name
    if name.endswith(".weights.h5"):
        source.save_weights(path)
    else:
        source.save(path)
    target = target_model()
    check(load_pretrained(target, path), source, target)


def test_from_keras2_style_hdf5_with_nested_model(tmp_path: Path):
    """NGC's Keras 2 files: ``weight_names`` such as ``conv1/kernel:0``; a nested model's group names inner layers."""
    rng = np.random.default_rng(0)
    conv = [rng.normal(size=(3, 3, 3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    bn = [rng.normal(size=(4,)).astype("float32") for _ in range(4)]
    path = tmp_path / "resnet18.hdf5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("model_weights")
        group.attrs["layer_names"] = [b"input_1", b"backbone"]
        group.create_group("input_1").attrs["weight_names"] = []
        backbone = group.create_group("backbone")
        names = ["conv1/kernel:0", "conv1/bias:0", "bn1/gamma:0", "bn1/beta:0", "bn1/moving_mean:0",
                 "bn1/moving_variance:0"]
        backbone.attrs["weight_names"] = [n.encode() for n in names]
        for weight_name, value in zip(names, conv + bn, strict=True):
            backbone.create_dataset(weight_name, data=value)
    weights = read_weights(path)
    assert sorted(weights) == ["bn1", "conv1"]
    target = target_model()
    report = load_pretrained(target, path)
    assert {layer.name: layer.status for layer in report.layers} == EXPECTED
    np.testing.assert_array_equal(target.get_layer("conv1").get_weights()[0], conv[0])
    np.testing.assert_array_equal(target.get_layer("bn1").get_weights()[3], bn[3])


def test_nested_target_model_is_walked(tmp_path: Path):
    source = source_model()
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    inner = target_model()
    inputs = keras.Input((3, 16, 16))
    outer = keras.Model(inputs, keras.layers.Dense(3, name="head")(inner(inputs)))
    report = load_pretrained(outer, path)
    statuses = {layer.name: layer.status for layer in report.layers}
    assert statuses["conv1"] == "Yes" and statuses["head"] == "No"


def test_table_lists_every_layer(tmp_path: Path, caplog):
    source = source_model()
    path = tmp_path / "w.h5"
    source.save(path)
    caplog.set_level("INFO")
    report = load_pretrained(target_model(), path)
    table = report.table()
    assert "| Layer name" in table and "Pretrained weights loaded |" in table
    assert "| conv1 " in table and "| Conv2D " in table
    assert len(table.splitlines()) == 3 + len(EXPECTED) + 1
    assert "2 of 4 layers with weights loaded" in caplog.text
    assert "shapes" in next(layer.reason for layer in report.layers if layer.name == "predictions")


def test_load_graph_returns_the_stored_model(tmp_path: Path):
    pruned = source_model()
    path = tmp_path / "pruned.tlt"
    save_tlt_model(path, pruned, KEY, {"architecture": "classification"}, kdf_iterations=10)
    report = load_pretrained(None, path, KEY, load_graph=True)
    assert report.load_graph
    assert report.model.get_layer("predictions").get_weights()[0].shape == (4, 10)
    np.testing.assert_array_equal(report.model.get_layer("conv1").get_weights()[0],
                                  pruned.get_layer("conv1").get_weights()[0])
    with pytest.raises(UnsupportedError):
        h5 = tmp_path / "m.h5"
        pruned.save(h5)
        load_pretrained(None, h5, load_graph=True)


def test_key_and_file_errors(tmp_path: Path):
    path = tmp_path / "pretrained.tlt"
    save_tlt_model(path, source_model(), KEY, {}, kdf_iterations=10)
    with pytest.raises(ModelFileError):
        load_pretrained(target_model(), path, "wrong key")
    with pytest.raises(ModelFileError, match="needs its key"):
        load_pretrained(target_model(), path)
    with pytest.raises(ModelFileError, match="not found"):
        load_pretrained(target_model(), tmp_path / "missing.hdf5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="not a pretrained model"):
        load_pretrained(target_model(), junk)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as h5:
        h5.create_group("something")
    with pytest.raises(ModelFileError, match="no Keras weights"):
        load_pretrained(target_model(), empty)


def test_load_graph_in_the_plan_takes_the_whole_stored_graph(tmp_path: Path) -> None:
    """DetectNet_v2's ``model_config.load_graph: true`` is honoured for any .tlt, pruned or not."""
    from libtlt.archs.detectnet_v2 import architecture as dn
    from libtlt.spec import load_spec_text
    from libtlt.spec.protos import detectnet_v2_pb2 as pb
    from tlt_train.train import _fresh_model

    arch = dn.DetectNetV2Architecture()
    classes = ["car", "pedestrian", "cyclist"]
    small = load_spec_text(arch.default_spec().replace("num_layers: 18", "num_layers: 10"), pb.Experiment)
    stored = arch.build(small, classes)
    path = tmp_path / "resnet10.tlt"
    save_tlt_model(path, stored, KEY, {"architecture": "detectnet_v2", "classes": classes}, kdf_iterations=1000)
    for load_graph, expected in ((True, stored.count_params()), (False, None)):
        text = arch.default_spec().replace(
            'arch: "resnet"', f'arch: "resnet"\n  pretrained_model_file: "{path}"\n  load_graph: {str(load_graph).lower()}')
        spec = load_spec_text(text, pb.Experiment)
        arch.validate(spec)
        plan = arch.train_plan(spec)
        assert plan.load_graph is load_graph
        model = _fresh_model(arch, spec, plan, classes, KEY)
        if expected is not None:  # resnet10's graph, although the spec says resnet18
            assert model.count_params() == expected
        else:  # resnet18 built from the spec, resnet10's weights loaded by name where shapes match
            assert model.count_params() > stored.count_params()
