"""Typed errors for mistakes a user can fix.

Library code raises these; every CLI maps them to exit status 2 and one line of text (see
``libtlt.cli_options.run_tool``). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class TltError(Exception):
    """A user-facing error: bad input, bad spec, wrong key, missing file.

    ``location`` names where the problem is (``file``, ``file:line`` or ``file:line:column``) and
    ``field`` the spec field or label column involved, so the message is one actionable line.
    """

    def __init__(self, message: str, *, location: str | Path | None = None, field: str | None = None):
        self.message = message
        self.location = str(location) if location is not None else None
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.location:
            parts.append(f"{self.location}:")
        if self.field:
            parts.append(f"field '{self.field}':")
        parts.append(self.message)
        return " ".join(parts).replace("\n", " ")


class SpecError(TltError):
    """A spec file that does not parse or fails validation."""


class DataError(TltError):
    """A dataset problem: malformed label line, missing image, unreadable file."""


class ModelFileError(TltError):
    """A model file that cannot be opened: wrong key, damaged, or not a tlt model."""


class OutputError(TltError):
    """An output that cannot be written: a full disk, a read-only or missing folder, a directory in the way."""


def output_error(path: str | Path, err: OSError, action: str = "cannot write") -> OutputError:
    """``OutputError`` naming the *final* path (not a temporary name) and the OS reason."""
    reason = err.strerror or str(err)
    return OutputError(f"{action}: {reason}", location=path)


class UnsupportedError(TltError):
    """A valid request this build cannot serve (e.g. an unimplemented tool, TensorRT absent)."""


def location(path: str | Path, line: int | None = None, column: int | None = None) -> str:
    """Format ``file[:line[:column]]`` the way compilers do, so editors can jump to it."""
    text = str(path)
    if line is not None:
        text += f":{line}"
        if column is not None:
            text += f":{column}"
    return text
