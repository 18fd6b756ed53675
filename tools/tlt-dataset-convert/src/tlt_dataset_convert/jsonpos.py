"""Where a value sits in a JSON text, for errors that name ``file:line:column``.

``json.loads`` keeps no positions. Errors are rare, so instead of a slower position-keeping parse
of every file, ``locate`` re-scans the text only when an error is reported, descending along the
path (object keys and list indices) and skipping sibling values with the standard decoder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _find_offset(text: str, path: Sequence[str | int]) -> int:
    """Offset of the deepest value of ``path`` that exists (the whole document at worst)."""
    index = _skip(text, 0)
    for key in path:
        if index >= len(text):
            return index
        opener = text[index]
        if opener == "{" and isinstance(key, str):
            cursor = _skip(text, index + 1)
            found = None
            while cursor < len(text) and text[cursor] == '"':
                name, cursor = _DECODER.raw_decode(text, cursor)
                cursor = _skip(text, cursor)
                if cursor >= len(text) or text[cursor] != ":":
                    return index
                cursor = _skip(text, cursor + 1)
                if name == key:
                    found = cursor
                    break
                _, cursor = _DECODER.raw_decode(text, cursor)
                cursor = _skip(text, cursor)
                if cursor < len(text) and text[cursor] == ",":
                    cursor = _skip(text, cursor + 1)
            if found is None:
                return index
            index = found
        elif opener == "[" and isinstance(key, int):
            cursor = _skip(text, index + 1)
            for _ in range(key):
                if cursor >= len(text) or text[cursor] == "]":
                    return index
                _, cursor = _DECODER.raw_decode(text, cursor)
                cursor = _skip(text, cursor)
                if cursor < len(text) and text[cursor] == ",":
                    cursor = _skip(text, cursor + 1)
            if cursor >= len(text) or text[cursor] == "]":
                return index
            index = cursor
        else:
            return index
    return index


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def locate(text: str, path: Sequence[str | int]) -> tuple[int, int]:
    """1-based ``(line, column)`` of the value at ``path`` (or of its deepest existing ancestor)."""
    try:
        offset = _find_offset(text, path)
    except (ValueError, IndexError):  # text that is not JSON after all: point at its start
        offset = 0
    return line_column(text, offset)


def path_name(path: Sequence[str | int]) -> str:
    """``annotations[17].bbox`` for ``["annotations", 17, "bbox"]``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + key
    return out
