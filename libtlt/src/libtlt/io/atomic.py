"""Atomic file output: write to a temporary name in the target directory, fsync, rename.

An interrupted tool therefore never leaves a half-written file under the final name: readers see
either the old file, or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, overload


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@overload
def atomic_open(path: str | Path, mode: Literal["wb"] = "wb", *, fsync: bool = True) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_open(path: str | Path, mode: Literal["w"], *, fsync: bool = True) -> contextlib.AbstractContextManager[IO[str]]: ...


def atomic_open(path: str | Path, mode: str = "wb", *, fsync: bool = True) -> contextlib.AbstractContextManager[IO]:  # type: ignore[type-arg]
    """Open ``path`` for writing; the file appears under its name only if the block succeeds."""
    return _atomic_open(Path(path), mode, fsync)


class PendingFile:
    """A temporary file beside ``path`` that becomes ``path`` only on :meth:`commit`.

    For writers that need the file itself rather than a stream (h5py, long-lived record writers):
    write to ``pending.tmp``, then ``commit()`` (fsync, rename into place) or ``discard()``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.directory = self.path.parent if str(self.path.parent) else Path(".")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        self.tmp = Path(tmp_name)

    def commit(self, *, fsync: bool = True) -> None:
        try:
            if fsync:
                with open(self.tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
            os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        if fsync:
            _fsync_dir(self.directory)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


@contextlib.contextmanager
def _atomic_open(path: Path, mode: str, fsync: bool) -> Iterator[IO]:  # type: ignore[type-arg]
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    pending = PendingFile(path)
    try:
        handle: IO  # type: ignore[type-arg]
        handle = open(pending.tmp, "w", encoding="utf-8") if mode == "w" else open(pending.tmp, "wb")  # noqa: SIM115
        with handle:
            yield handle
    except BaseException:
        pending.discard()
        raise
    pending.commit(fsync=fsync)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_open(path, "wb", fsync=fsync) as handle:
        handle.write(data)


def write_text(path: str | Path, text: str, *, fsync: bool = True) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_open(path, "w", fsync=fsync) as handle:
        handle.write(text)
