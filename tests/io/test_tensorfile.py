"""Calibration tensorfiles: the exact HDF5 layout, round trips, atomic writes and clear errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from libtlt.errors import DataError
from libtlt.io.tensorfile import TensorFile, TensorFileWriter, write_tensorfile


def _batches(count: int = 3, n: int = 2, shape: tuple[int, int, int] = (3, 4, 5)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, *shape)).astype(np.float32) for _ in range(count)]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "calibration.tensor"
    batches = _batches() + [np.ones((1, 3, 4, 5), np.float32)]  # a smaller last batch is fine
    with TensorFileWriter(path) as writer:
        for batch in batches:
            writer.append(batch)
        assert len(writer) == 4
    with TensorFile(path) as tensors:
        assert len(tensors) == 4
        assert tensors.sample_shape == (3, 4, 5)
        assert tensors.num_samples == 7
        for got, expected in zip(tensors, batches, strict=True):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(tensors[-1], batches[-1])
        with pytest.raises(IndexError):
            tensors[4]


def test_exact_layout_with_plain_h5py(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensor"
    batches = _batches(count=2)
    assert write_tensorfile(path, batches) == 2
    with h5py.File(path, "r") as handle:
        assert set(handle.attrs) == {"count"}
        assert int(handle.attrs["count"]) == 2
        assert sorted(handle) == ["_tensorfile_array_key__0", "_tensorfile_array_key__1"]
        for index, batch in enumerate(batches):
            group = handle[f"_tensorfile_array_key__{index}"]
            assert isinstance(group, h5py.Group) and list(group) == ["_tensorfile_array_key_"]
            dataset = group["_tensorfile_array_key_"]
            assert dataset.dtype == np.float32 and dataset.shape == (2, 3, 4, 5)
            assert dataset.compression == "gzip"
            np.testing.assert_array_equal(dataset[()], batch)


def test_reads_a_file_written_with_plain_h5py(tmp_path: Path) -> None:
    """Files written by other programs in the same layout read back."""
    path = tmp_path / "other.tensor"
    batches = _batches(count=2)
    with h5py.File(path, "w") as handle:
        for index, batch in enumerate(batches):
            handle.create_group(f"_tensorfile_array_key__{index}").create_dataset(
                "_tensorfile_array_key_", data=batch, compression="gzip")
        handle.attrs["count"] = 2
    with TensorFile(path) as tensors:
        np.testing.assert_array_equal(np.concatenate(list(tensors)), np.concatenate(batches))


def test_float64_is_stored_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "t.tensor"
    write_tensorfile(path, [np.full((1, 1, 2, 2), 0.5, np.float64)])
    with TensorFile(path) as tensors:
        assert tensors[0].dtype == np.float32


def test_exception_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensor"
    with pytest.raises(RuntimeError), TensorFileWriter(path) as writer:
        writer.append(_batches(1)[0])
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    write_tensorfile(path, _batches(count=1))
    before = path.read_bytes()
    with pytest.raises(RuntimeError), TensorFileWriter(path) as writer:
        writer.append(_batches(2)[1])
        raise RuntimeError("interrupted")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cal.tensor"]


def test_file_appears_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "cal.tensor"
    writer = TensorFileWriter(path)
    writer.append(_batches(1)[0])
    assert not path.exists()
    writer.close()
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cal.tensor"]


@pytest.mark.parametrize(("batch", "message"), [
    (np.zeros((2, 3, 4), np.float32), "NCHW"),
    (np.zeros((0, 3, 4, 5), np.float32), "NCHW"),
    (np.zeros((1, 3, 4, 5), np.uint8), "floating-point"),
    (np.full((1, 3, 4, 5), np.nan, np.float32), "NaN"),
    (np.zeros((2, 3, 4, 6), np.float32), "earlier batches"),
])
def test_writer_rejects_bad_batches(tmp_path: Path, batch: np.ndarray, message: str) -> None:
    with TensorFileWriter(tmp_path / "t.tensor") as writer:
        writer.append(np.zeros((2, 3, 4, 5), np.float32))
        with pytest.raises(ValueError, match=message):
            writer.append(batch)
        assert len(writer) == 1


def test_not_a_tensorfile(tmp_path: Path) -> None:
    text = tmp_path / "cal.tensor"
    text.write_text("hello\n")
    with pytest.raises(DataError, match=r"cal\.tensor: not a calibration tensorfile \(not a readable HDF5"):
        TensorFile(text)
    model = tmp_path / "model.hdf5"
    with h5py.File(model, "w") as handle:
        handle["weights"] = np.zeros(3)
    with pytest.raises(DataError, match="no root attribute 'count'"):
        TensorFile(model)
    with pytest.raises(DataError, match="not found"):
        TensorFile(tmp_path / "absent.tensor")


def _write_raw(path: Path, shapes: list[tuple[int, ...]], count: int | None = None,
               dtype: type = np.float32) -> None:
    with h5py.File(path, "w") as handle:
        for index, shape in enumerate(shapes):
            handle.create_group(f"_tensorfile_array_key__{index}").create_dataset(
                "_tensorfile_array_key_", data=np.zeros(shape, dtype))
        handle.attrs["count"] = len(shapes) if count is None else count


@pytest.mark.parametrize(("shapes", "count", "dtype", "message"), [
    ([(2, 3, 4, 5), (2, 3, 4, 6)], None, np.float32, r"inconsistent batch shapes: .* batch 1 \(3, 4, 6\)"),
    ([(2, 3, 4, 5), (2, 4, 5)], None, np.float32, "batch 1 has shape"),
    ([(2, 3, 4, 5)], 2, np.float32, "batch 1 .* is missing"),
    ([(2, 3, 4, 5), (2, 3, 4, 5)], 1, np.float32, "also holds _tensorfile_array_key__1"),
    ([(2, 3, 4, 5)], -1, np.float32, "non-negative integer"),
    ([(2, 3, 4, 5)], None, np.float64, "float64, expected float32"),
])
def test_damaged_tensorfiles(tmp_path: Path, shapes: list[tuple[int, ...]], count: int | None, dtype: type,
                             message: str) -> None:
    path = tmp_path / "bad.tensor"
    _write_raw(path, shapes, count, dtype)
    with pytest.raises(DataError, match=message):
        TensorFile(path)


def test_empty_tensorfile(tmp_path: Path) -> None:
    path = tmp_path / "empty.tensor"
    write_tensorfile(path, [])
    with TensorFile(path) as tensors:
        assert len(tensors) == 0 and list(tensors) == [] and tensors.sample_shape is None
