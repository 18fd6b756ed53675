"""Atomic writes: a failure inside the block keeps the old file and leaves no temporary file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from libtlt.errors import OutputError
from libtlt.io.atomic import atomic_open, write_bytes, write_text


def test_write_text_and_bytes(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "héllo\n")
    assert (tmp_path / "a.txt").read_bytes() == "héllo\n".encode()
    write_bytes(tmp_path / "sub" / "b.bin", b"\0\1", fsync=False)
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\0\1"


def test_exception_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(path, "w") as handle:
        handle.write("partial new content")
        raise RuntimeError("boom")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_exception_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_open(tmp_path / "new.bin") as handle:
        handle.write(b"x" * 1000)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_file_is_invisible_until_the_block_ends(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_open(path) as handle:
        handle.write(b"new")
        handle.flush()
        assert path.read_bytes() == b"old"
        temps = [p for p in tmp_path.iterdir() if p.name != "out.bin"]
        assert len(temps) == 1 and temps[0].name.startswith(".out.bin.") and temps[0].suffix == ".tmp"
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_permissions_follow_umask_without_ever_changing_it(tmp_path: Path) -> None:
    """The mode comes from the umask the process started with, read once; ``os.umask`` (process-wide,
    racy with threads that create files) is never called by a write."""
    script = textwrap.dedent(f"""
        import os
        os.umask(0o027)
        from libtlt.io import atomic
        calls = []
        real = os.umask
        os.umask = lambda mask: calls.append(mask) or real(mask)
        atomic.write_text({str(tmp_path / "f.txt")!r}, "x")
        atomic.write_bytes({str(tmp_path / "g.bin")!r}, b"x", fsync=False)
        print(calls)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for name in ("f.txt", "g.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640


def test_output_errors_name_the_final_path_and_leave_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "engine"
    folder.mkdir()
    with pytest.raises(OutputError, match=r"engine: cannot write: Is a directory"):
        write_bytes(folder, b"x")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"file.*cannot create folder: File exists|file/sub: cannot"):
        write_bytes(blocker / "sub" / "out.bin", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine", "file"]


def test_rejects_other_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="supports 'w' and 'wb'"), atomic_open(tmp_path / "x", "a"):  # type: ignore[call-overload]
        pass
    assert list(tmp_path.iterdir()) == []
