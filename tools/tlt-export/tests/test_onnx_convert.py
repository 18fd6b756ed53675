"""Keras → ONNX conversion details that do not need a trained model: output naming and ordering for a
DetectNet_v2-like two-output head, canonical tensor names, and the export-time numerical check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from libtlt.errors import ModelFileError, TltError
from libtlt.runtime.onnxruntime_backend import OrtModel
from tlt_export.onnx_convert import (
    check_conversion,
    keras_outputs,
    keras_to_onnx,
    match_outputs,
)

DETECTNET_OUTPUTS = ["output_cov/Sigmoid", "output_bbox/BiasAdd"]


def detector(bbox_first: bool = True):  # type: ignore[no-untyped-def]
    """Input input_1 [N,3,32,48]; conv trunk; 1x1 heads output_bbox (linear) and output_cov (sigmoid)."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((3, 32, 48), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    cov = keras.layers.Conv2D(2, 1, activation="sigmoid", name="output_cov_nhwc")(x)
    bbox = keras.layers.Conv2D(8, 1, name="output_bbox_nhwc")(x)
    cov = keras.layers.Permute((3, 1, 2), name="output_cov")(cov)
    bbox = keras.layers.Permute((3, 1, 2), name="output_bbox")(bbox)
    return keras.Model(inputs, [bbox, cov] if bbox_first else [cov, bbox])


def image_batch(count: int = 3) -> np.ndarray:
    rng = np.random.default_rng(2)
    return (rng.uniform(0, 255, (count, 3, 32, 48)) / 255.0).astype(np.float32)


def test_two_output_head_is_named_and_ordered_by_export_outputs() -> None:
    model = detector(bbox_first=True)
    converted = keras_to_onnx(model, DETECTNET_OUTPUTS)
    assert [o.name for o in converted.graph.output] == DETECTNET_OUTPUTS
    assert converted.graph.input[0].name == "input_1"
    batch = image_batch()
    got = OrtModel(converted.SerializeToString()).run({"input_1": batch})
    want = keras_outputs(model, batch, DETECTNET_OUTPUTS)
    assert got["output_cov/Sigmoid"].shape == (3, 2, 8, 12) and got["output_bbox/BiasAdd"].shape == (3, 8, 8, 12)
    for name in DETECTNET_OUTPUTS:
        assert np.max(np.abs(got[name] - want[name])) <= 1e-4
    assert check_conversion(model, converted, batch, DETECTNET_OUTPUTS) <= 1e-4


def test_converting_twice_gives_the_same_graph() -> None:
    model = detector()
    first = keras_to_onnx(model, DETECTNET_OUTPUTS)
    keras_to_onnx(detector(bbox_first=False), DETECTNET_OUTPUTS)  # moves tf2onnx's name counters on
    second = keras_to_onnx(model, DETECTNET_OUTPUTS)

    def nodes(m: onnx.ModelProto) -> list[tuple[str, list[str], list[str]]]:
        return [(n.op_type, [i for i in n.input if i not in {w.name for w in m.graph.initializer}], list(n.output))
                for n in m.graph.node]

    assert nodes(first) == nodes(second)
    assert all(n.output[0].startswith(f"{n.op_type}_") or n.output[0] in DETECTNET_OUTPUTS for n in first.graph.node)


def test_output_matching() -> None:
    assert match_outputs(["output_bbox", "output_cov"], DETECTNET_OUTPUTS) == [1, 0]
    assert match_outputs(["dense_3"], ["predictions/Softmax"]) == [0]
    with pytest.raises(ModelFileError, match="exports 2 output"):
        match_outputs(["predictions"], DETECTNET_OUTPUTS)


def test_a_wrong_conversion_fails_the_check() -> None:
    model = detector()
    converted = keras_to_onnx(model, DETECTNET_OUTPUTS)
    kernel = max(converted.graph.initializer, key=lambda init: int(np.prod(init.dims)))
    changed = onnx.numpy_helper.to_array(kernel) * 1.01
    kernel.CopyFrom(onnx.numpy_helper.from_array(changed.astype(np.float32), kernel.name))
    with pytest.raises(TltError, match="differs from the Keras model"):
        check_conversion(model, converted, image_batch(), DETECTNET_OUTPUTS)


def test_optimizers_run_in_place_and_the_environment_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """tf2onnx's graph copies per optimizer exhausted memory on DarkNet53 YOLOv3: they must be off while converting,
    and a user's own TF2ONNX_CATCH_ERRORS setting must survive the export."""
    import tf2onnx.optimizer

    real = tf2onnx.optimizer.optimize_graph
    seen: list[bool] = []

    def recording(graph, catch_errors=True, optimizers=None):  # type: ignore[no-untyped-def]
        seen.append(catch_errors)
        return real(graph, catch_errors, optimizers=optimizers)

    monkeypatch.setattr(tf2onnx.optimizer, "optimize_graph", recording)
    monkeypatch.setenv("TF2ONNX_CATCH_ERRORS", "TRUE")
    keras_to_onnx(detector(), DETECTNET_OUTPUTS)
    assert seen == [False]
    import os

    assert os.environ["TF2ONNX_CATCH_ERRORS"] == "TRUE"
