"""OrtModel and .etlt loading: decrypted in memory, clear errors for wrong keys and wrong files."""

from __future__ import annotations

import numpy as np
import pytest

from libtlt.errors import DataError, ModelFileError
from libtlt.io.modelfile import save_model_file
from libtlt.runtime.onnxruntime_backend import OrtModel, load_etlt, read_onnx_source
from libtlt.runtime.sample_models import detectnet_like_model, image_batches

KEY = "tlt_encode"


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    return detectnet_like_model(32, 48).SerializeToString()


@pytest.fixture
def etlt(tmp_path, onnx_bytes):
    path = tmp_path / "model.etlt"
    save_model_file(path, KEY, {"model.onnx": onnx_bytes}, {"architecture": "detectnet_v2"}, kdf_iterations=1000)
    return path


def test_names_shapes_and_run(onnx_bytes) -> None:
    model = OrtModel(onnx_bytes)
    assert model.input_names == ["input_1"]
    assert model.output_names == ["output_cov/Sigmoid", "output_bbox/BiasAdd"]
    assert model.input_shapes == {"input_1": ["N", 3, 32, 48]}
    assert model.output_shapes["output_bbox/BiasAdd"] == ["N", 8, 8, 12]
    images = next(image_batches(1, 2, (3, 32, 48)))
    by_array = model.run(images)
    by_name = model.run({"input_1": images.astype(np.float64)}, output_names=["output_cov/Sigmoid"])
    assert by_array["output_bbox/BiasAdd"].shape == (2, 8, 8, 12)
    np.testing.assert_array_equal(by_name["output_cov/Sigmoid"], by_array["output_cov/Sigmoid"])


def test_run_checks_names_and_shapes(onnx_bytes) -> None:
    model = OrtModel(onnx_bytes)
    with pytest.raises(DataError, match=r"missing \['input_1'\], unknown \['image'\]"):
        model.run({"image": np.zeros((1, 3, 32, 48), np.float32)})
    with pytest.raises(DataError, match=r"shape \[1, 3, 48, 32\], the model expects \['N', 3, 32, 48\]"):
        model.run(np.zeros((1, 3, 48, 32), np.float32))


def test_load_etlt_decrypts_in_memory(etlt, onnx_bytes) -> None:
    data, metadata = load_etlt(etlt, KEY)
    assert data == onnx_bytes and metadata["architecture"] == "detectnet_v2"
    assert OrtModel.from_file(etlt, KEY).output_names == ["output_cov/Sigmoid", "output_bbox/BiasAdd"]


def test_wrong_key_is_a_model_file_error(etlt) -> None:
    with pytest.raises(ModelFileError, match="wrong key"):
        load_etlt(etlt, "not-the-key")


def test_a_tlt_where_an_etlt_is_expected(tmp_path) -> None:
    path = tmp_path / "model.tlt"
    save_model_file(path, KEY, {"model.keras": b"PK\x03\x04 keras"}, {}, kdf_iterations=1000)
    with pytest.raises(ModelFileError, match=r"this is a \.tlt \(Keras training model\), not an \.etlt"):
        load_etlt(path, KEY)
    with pytest.raises(ModelFileError, match="export it first with tlt-export"):
        read_onnx_source(path, KEY)


def test_read_onnx_source_plain_onnx_and_foreign_files(tmp_path, onnx_bytes, etlt) -> None:
    plain = tmp_path / "third_party.onnx"
    plain.write_bytes(onnx_bytes)
    assert read_onnx_source(plain) == (onnx_bytes, {})
    with pytest.raises(ModelFileError, match="pass its key with -k"):
        read_onnx_source(etlt, None)
    hdf5 = tmp_path / "model.hdf5"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ModelFileError, match=r"not an \.etlt or ONNX model: this is an HDF5 file"):
        read_onnx_source(hdf5)
    with pytest.raises(ModelFileError, match="not found"):
        read_onnx_source(tmp_path / "missing.etlt", KEY)


def test_unloadable_bytes_are_a_model_file_error() -> None:
    with pytest.raises(ModelFileError, match="onnxruntime cannot load the model"):
        OrtModel(b"\x08\x07garbage")
