"""The QAT rewrite of a DetectNet_v2 model: ReLU6, quantizers on the weighted layers' inputs, float outputs,
and a float model that saves and loads without custom layers."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from libtlt.archs.detectnet_v2.detectnet_v2_head import DetectNetConfig, build_detectnet  # noqa: E402
from libtlt.qat.fake_quant import ActivationQuantizer, QuantizedWeights  # noqa: E402
from libtlt.qat.metadata import METADATA_KEY, stored_ranges  # noqa: E402
from libtlt.qat.rewrite import build_qat_model, output_layers  # noqa: E402

SHAPE = (3, 32, 48)


@pytest.fixture(scope="module")
def qat():
    keras.utils.set_random_seed(0)
    model = build_detectnet(DetectNetConfig("resnet10", SHAPE, num_classes=2, use_batch_norm=True))
    return model, build_qat_model(model)


def test_backbone_activations_become_relu6_and_outputs_stay(qat) -> None:
    original, result = qat
    relus = [layer for layer in result.float_model.layers if isinstance(layer, keras.layers.ReLU)]
    assert relus and all(layer.max_value == 6.0 for layer in relus)
    assert not [layer for layer in result.float_model.layers if isinstance(layer, keras.layers.Activation)]
    assert {layer.name for layer in relus} == {layer.name for layer in original.layers
                                               if isinstance(layer, keras.layers.Activation)}
    assert result.float_model.get_layer("output_cov").get_config()["activation"] == "sigmoid"
    assert output_layers(result.float_model) == {"output_cov", "output_bbox"}
    # The float model shares the weighted layers (no weight is copied).
    assert result.float_model.get_layer("conv1") is original.get_layer("conv1")


def test_every_backbone_convolution_is_quantized_and_the_outputs_are_not(qat) -> None:
    _, result = qat
    wrapped = {layer.layer.name for layer in result.model.layers if isinstance(layer, QuantizedWeights)}
    convs = {layer.name for layer in result.float_model.layers if isinstance(layer, keras.layers.Conv2D)}
    assert wrapped == convs - {"output_cov", "output_bbox"}
    sources = {layer.source for layer in result.model.layers if isinstance(layer, ActivationQuantizer)}
    assert "input_nhwc" in sources  # the graph input, as conv1 sees it
    assert "features_nchw" not in sources and not any(s.startswith("output") for s in sources)
    assert all(s == "input_nhwc" or isinstance(result.float_model.get_layer(s), keras.layers.ReLU)
               for s in sources)
    twin_outputs = [t._keras_history.operation.name for t in result.model.outputs]
    assert twin_outputs == ["output_cov", "output_bbox"]
    assert len(result.model.trainable_variables) == len(result.float_model.trainable_variables)


def test_ranges_are_learned_saved_in_metadata_and_resumed(qat, tmp_path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    _, result = qat
    images = np.random.default_rng(0).random((2, *SHAPE), np.float32)
    result.model(images, training=True)
    ranges = result.ranges()
    assert ranges["input_nhwc"] == pytest.approx(float(images.max()), rel=1e-6)
    assert all(value > 0 for value in ranges.values()) and len(ranges) == len(result.quantizers())
    saved, extra = result.saving_view(result.model)
    assert saved is result.float_model
    path = tmp_path / "qat.tlt"
    save_tlt_model(path, saved, "k", {"architecture": "detectnet_v2", **extra}, kdf_iterations=1000)
    loaded, meta = load_tlt_model(path, "k")
    assert not [layer for layer in loaded.layers if isinstance(layer, (ActivationQuantizer, QuantizedWeights))]
    assert stored_ranges(meta) == pytest.approx(ranges)
    assert meta[METADATA_KEY]["float_layers"] == ["output_bbox", "output_cov"]
    np.testing.assert_allclose(loaded.predict_on_batch(images)[0], result.float_model.predict_on_batch(images)[0],
                               atol=1e-6)
    resumed = build_qat_model(loaded, stored_ranges(meta))
    assert resumed.ranges() == pytest.approx(ranges)
