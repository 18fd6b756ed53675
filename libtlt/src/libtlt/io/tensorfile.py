"""Calibration tensorfiles (tlt-int8-tensorfile, tlt-export --cal_data_file).

HDF5, the layout of the original toolkit: root attribute ``count`` (number of batches); batch ``i``
is group ``_tensorfile_array_key__<i>`` holding the gzip-compressed dataset ``_tensorfile_array_key_``,
a float32 NCHW array of preprocessed images. Batches share C, H and W; N may differ (a last, smaller
batch). The writer builds the file under a temporary name in the target directory and renames it
into place on a clean close, so an interrupted run never leaves a tensorfile that looks complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from libtlt.errors import DataError
from libtlt.io.atomic import PendingFile

COUNT_ATTR = "count"
GROUP_PREFIX = "_tensorfile_array_key__"
DATASET_NAME = "_tensorfile_array_key_"
DEFAULT_COMPRESSION_LEVEL = 4


def group_name(index: int) -> str:
    return f"{GROUP_PREFIX}{index}"


class TensorFileWriter:
    """Write batches to a new tensorfile; the file appears at ``path`` only when the writer closes cleanly.

    Use as a context manager; an exception inside the block discards everything written.
    """

    def __init__(self, path: str | Path, *, compression_level: int = DEFAULT_COMPRESSION_LEVEL):
        self.path = Path(path)
        self.compression_level = compression_level
        self._pending = PendingFile(self.path)
        try:
            self._file: h5py.File | None = h5py.File(self._pending.tmp, "w")
            self._file.attrs[COUNT_ATTR] = 0
        except BaseException:
            self._pending.discard()
            raise
        self._count = 0
        self._sample_shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return self._count

    def append(self, batch: Any) -> None:
        """Add one NCHW batch (any real floating dtype; stored as float32)."""
        if self._file is None:
            raise ValueError("tensorfile writer is closed")
        array = np.asarray(batch)
        if array.ndim != 4 or array.shape[0] == 0:
            raise ValueError(f"a tensorfile batch is a non-empty NCHW array, got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"a tensorfile batch holds floating-point values, got {array.dtype}")
        if self._sample_shape is not None and array.shape[1:] != self._sample_shape:
            raise ValueError(f"batch {self._count} has samples of shape {array.shape[1:]}, earlier batches "
                             f"{self._sample_shape}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"batch {self._count} holds NaN or infinite values")
        group = self._file.create_group(group_name(self._count))
        group.create_dataset(DATASET_NAME, data=array, compression="gzip",
                             compression_opts=self.compression_level)
        self._sample_shape = array.shape[1:]
        self._count += 1
        self._file.attrs[COUNT_ATTR] = self._count

    def close(self) -> None:
        """Finish the file and rename it into place."""
        if self._file is None:
            return
        handle5, self._file = self._file, None
        try:
            handle5.close()
        except BaseException:
            self._pending.discard()
            raise
        self._pending.commit()

    def discard(self) -> None:
        """Abandon the file: nothing appears at ``path`` (an existing file there is left alone)."""
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        self._pending.discard()

    def __enter__(self) -> TensorFileWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            self.discard()


class TensorFile:
    """Read a tensorfile: ``len``, iteration and indexing give float32 NCHW batches.

    Opening checks the structure (count, groups, datasets, shapes) without reading the data; a file
    that is not a tensorfile or whose batches disagree raises ``DataError`` naming the file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError("calibration tensorfile not found", location=self.path)
        try:
            self._file: h5py.File | None = h5py.File(self.path, "r")
        except OSError:
            raise DataError("not a calibration tensorfile (not a readable HDF5 file)", location=self.path) from None
        try:
            self._datasets = self._check_structure(self._file)
        except BaseException:
            self.close()
            raise
        self.sample_shape: tuple[int, ...] | None = self._datasets[0].shape[1:] if self._datasets else None

    def _check_structure(self, handle: h5py.File) -> list[h5py.Dataset]:
        if COUNT_ATTR not in handle.attrs:
            raise DataError(f"not a calibration tensorfile: no root attribute '{COUNT_ATTR}'", location=self.path)
        count = handle.attrs[COUNT_ATTR]
        if np.ndim(count) != 0 or not np.issubdtype(np.asarray(count).dtype, np.integer) or int(count) < 0:
            raise DataError(f"not a calibration tensorfile: root attribute '{COUNT_ATTR}' is {count!r}, "
                            "expected a non-negative integer", location=self.path)
        count = int(count)
        extra = sorted(name for name in handle if name.startswith(GROUP_PREFIX)
                       and name not in {group_name(i) for i in range(count)})
        if extra:
            raise DataError(f"damaged tensorfile: '{COUNT_ATTR}' is {count} but it also holds {extra[0]}",
                            location=self.path)
        datasets = []
        first_shape: tuple[int, ...] | None = None
        for index in range(count):
            name = f"{group_name(index)}/{DATASET_NAME}"
            node = handle.get(name)
            if not isinstance(node, h5py.Dataset):
                raise DataError(f"damaged tensorfile: '{COUNT_ATTR}' is {count} but batch {index} ({name}) is missing",
                                location=self.path)
            if node.ndim != 4 or node.shape[0] == 0:
                raise DataError(f"batch {index} has shape {node.shape}, expected a non-empty NCHW array",
                                location=self.path)
            if node.dtype != np.float32:
                raise DataError(f"batch {index} holds {node.dtype}, expected float32", location=self.path)
            if first_shape is None:
                first_shape = node.shape[1:]
            elif node.shape[1:] != first_shape:
                raise DataError(f"inconsistent batch shapes: batch 0 has samples of shape {first_shape}, "
                                f"batch {index} {node.shape[1:]}", location=self.path)
            datasets.append(node)
        return datasets

    def __len__(self) -> int:
        return len(self._datasets)

    def __getitem__(self, index: int) -> np.ndarray:
        if self._file is None:
            raise ValueError("tensorfile is closed")
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} out of range ({len(self)} batches)")
        index %= len(self)
        try:
            return np.asarray(self._datasets[index][()], dtype=np.float32)
        except OSError as err:
            raise DataError(f"damaged tensorfile: cannot read batch {index} ({err})", location=self.path) from None

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self[index]

    @property
    def num_samples(self) -> int:
        return sum(int(d.shape[0]) for d in self._datasets)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_tensorfile(path: str | Path, batches: Any, *,
                     compression_level: int = DEFAULT_COMPRESSION_LEVEL) -> int:
    """Write every batch of an iterable to a new tensorfile; returns the number of batches."""
    with TensorFileWriter(path, compression_level=compression_level) as writer:
        for batch in batches:
            writer.append(batch)
        return len(writer)
