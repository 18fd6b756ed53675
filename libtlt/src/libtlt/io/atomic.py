"""Atomic file output: write to a temporary name in the target directory, fsync, rename.

An interrupted tool therefore never leaves a half-written file under the final name: readers see
either the old file, or the complete new one. Any OS failure (full disk, read-only or missing folder,
a directory where the file should go) becomes ``OutputError`` naming the final path and the OS
reason, with the temporary file removed; ``run_tool`` prints it as one line, exit status 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Literal, overload

from libtlt import interrupts
from libtlt.errors import OutputError, output_error


def _read_umask() -> int:
    """The process umask, read once at import: ``os.umask`` can only read it by changing it, which
    is process-wide and races with other threads creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - systems without /proc (done once, at import)
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


#: Permission bits of every file written here: what ``open()`` would give (0o666 less the umask).
FILE_MODE = 0o666 & ~_read_umask()


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
        if self.path.is_dir():
            raise OutputError(f"cannot write: {os.strerror(errno.EISDIR)}", location=self.path)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise output_error(err.filename or self.directory, err, "cannot create folder") from None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.directory)
        except OSError as err:
            raise output_error(self.path, err) from None
        os.close(fd)
        self.tmp = Path(tmp_name)

    def commit(self, *, fsync: bool = True) -> None:
        try:
            if fsync:
                with open(self.tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
            os.chmod(self.tmp, FILE_MODE)
            os.replace(self.tmp, self.path)
        except OSError as err:
            self.discard()
            raise output_error(self.path, err) from None
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
    except OSError as err:
        pending.discard()
        raise output_error(path, err) from None
    except BaseException:
        pending.discard()
        raise
    pending.commit(fsync=fsync)


def check_writable(path: str | Path) -> None:
    """``OutputError`` now, rather than after a long computation, if ``path`` cannot be written
    (a directory in the way, a missing or read-only folder). Creates the parent folders."""
    PendingFile(path).discard()


def write_files(contents: Mapping[Path, bytes], *, fsync: bool = True) -> None:
    """Write several files that only make sense together (an image and its label file).

    Every file is first written completely under a temporary name; only then are they renamed into
    place, one after the other with signals held, so a failure (a full disk) or a signal leaves
    either the whole group or none of it under the final names.
    """
    pending: list[PendingFile] = []
    try:
        for path, data in contents.items():
            staged = PendingFile(path)
            pending.append(staged)
            try:
                with open(staged.tmp, "wb") as handle:
                    handle.write(data)
                    if fsync:
                        handle.flush()
                        os.fsync(handle.fileno())
            except OSError as err:
                raise output_error(path, err) from None
        with interrupts.deferred():
            for staged in pending:
                staged.commit(fsync=False)
    except BaseException:
        for staged in pending:
            staged.discard()
        raise


def write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_open(path, "wb", fsync=fsync) as handle:
        handle.write(data)


def write_text(path: str | Path, text: str, *, fsync: bool = True) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    with atomic_open(path, "w", fsync=fsync) as handle:
        handle.write(text)
