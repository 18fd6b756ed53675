"""TFRecord files without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little-endian)
    uint32 masked CRC32C of the 8 length bytes
    bytes  data[length]
    uint32 masked CRC32C of data

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8`` (mod 2**32), as TensorFlow writes
them. ``TFRecordWriter`` writes to a temporary name in the target directory and renames it into
place when closed without error, so a reader never sees a half-written file under the final name.
``read_records`` verifies both checksums of every record and names the file and byte offset of the
first damaged or truncated one.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import google_crc32c

from libtlt.errors import DataError
from libtlt.io.atomic import atomic_open

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
HEADER_SIZE = _HEADER.size  # 12
FOOTER_SIZE = _FOOTER.size  # 4

_crc32c = google_crc32c.value


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    crc = _crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def frame_record(data: bytes) -> bytes:
    """One record with its framing (length, length CRC, data, data CRC)."""
    length = struct.pack("<Q", len(data))
    return length + _FOOTER.pack(masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


class TFRecordWriter:
    """Write records to ``path`` atomically; use as a context manager.

    ``write`` appends one record. ``close()`` flushes and renames the temporary file to ``path``;
    leaving the ``with`` block by an exception discards the temporary file instead, so the target
    keeps its previous content (or does not exist).
    """

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self._context = atomic_open(self.path, "wb", fsync=fsync)
        self._handle: IO[bytes] | None = self._context.__enter__()
        self.records = 0
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        """Append one record holding ``data``."""
        handle = self._handle
        if handle is None:
            raise ValueError(f"TFRecordWriter for {self.path} is closed")
        length = len(data)
        length_bytes = struct.pack("<Q", length)
        handle.write(_HEADER.pack(length, masked_crc32c(length_bytes)))
        handle.write(data)
        handle.write(_FOOTER.pack(masked_crc32c(data)))
        self.records += 1
        self.bytes_written += length + HEADER_SIZE + FOOTER_SIZE

    def write_all(self, records: Iterable[bytes]) -> None:
        for data in records:
            self.write(data)

    def close(self) -> None:
        """Finish the file and move it into place (idempotent)."""
        if self._handle is not None:
            self._handle = None
            self._context.__exit__(None, None, None)

    def abort(self) -> None:
        """Discard everything written; the target path is left untouched (idempotent)."""
        if self._handle is not None:
            self._handle = None
            error = RuntimeError("TFRecordWriter aborted")
            try:
                self._context.__exit__(RuntimeError, error, None)
            except RuntimeError as raised:
                if raised is not error:
                    raise

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # an unclosed writer never publishes a file
        if getattr(self, "_handle", None) is not None:
            with contextlib.suppress(Exception):  # best effort, e.g. at interpreter shutdown
                self.abort()


def write_tfrecord(path: str | Path, records: Iterable[bytes], *, fsync: bool = True) -> int:
    """Atomically write ``records`` to ``path``; returns how many were written."""
    with TFRecordWriter(path, fsync=fsync) as writer:
        writer.write_all(records)
        return writer.records


def read_records(path: str | Path, *, verify: bool = True) -> Iterator[bytes]:
    """Yield the data of every record of ``path`` in order.

    Raises ``DataError`` naming ``path`` and the byte offset of the record when a length or data
    checksum does not match (with ``verify``) or the file ends inside a record.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below (generator)
    except FileNotFoundError:
        raise DataError("TFRecord file not found", location=path) from None
    except IsADirectoryError:
        raise DataError("expected a TFRecord file, got a directory", location=path) from None
    try:
        yield from _iter_handle(handle, path, verify)
    finally:
        handle.close()


def _iter_handle(handle: Any, path: Path, verify: bool) -> Iterator[bytes]:
    read = handle.read
    unpack_header = _HEADER.unpack
    offset = 0
    index = 0
    while True:
        header = read(HEADER_SIZE)
        if not header:
            return
        if len(header) < HEADER_SIZE:
            raise _damaged(path, offset, index, f"truncated record header ({len(header)} of {HEADER_SIZE} bytes)")
        length, length_crc = unpack_header(header)
        if verify and masked_crc32c(header[:8]) != length_crc:
            raise _damaged(path, offset, index, "length checksum mismatch (corrupt record header)")
        body = read(length + FOOTER_SIZE)
        if len(body) < length + FOOTER_SIZE:
            raise _damaged(path, offset, index,
                           f"truncated record (needs {length + HEADER_SIZE + FOOTER_SIZE} bytes, "
                           f"{len(body) + HEADER_SIZE} left)")
        record = body[:length]
        if verify and masked_crc32c(record) != _FOOTER.unpack_from(body, length)[0]:
            raise _damaged(path, offset, index, "data checksum mismatch (corrupt record)")
        yield record
        offset += length + HEADER_SIZE + FOOTER_SIZE
        index += 1


def _damaged(path: Path, offset: int, index: int, what: str) -> DataError:
    return DataError(f"record {index} at byte offset {offset}: {what}", location=path)


def count_records(path: str | Path) -> int:
    """Number of records in ``path`` (checksums verified)."""
    return sum(1 for _ in read_records(path))
