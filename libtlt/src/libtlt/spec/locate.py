"""Where each field of a protobuf text-format spec is written, so errors can name ``file:line:column``.

protobuf's parser reports positions only for syntax errors. This small scanner walks the same text
and records the position of every field path (``training_config.regularizer.type``; repeated
messages also as ``target_class_config[1].cov_radius_x``) so semantic validation can point at lines too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""(?P<comment>\#[^\n]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<word>[A-Za-z0-9_.+\-]+)
      | (?P<punct>[{}<>:\[\],;/])
      | (?P<newline>\n)
      | (?P<space>[ \t\r\f\v]+)
      | (?P<other>.)""",
    re.VERBOSE,
)


@dataclass
class _Token:
    kind: str
    text: str
    line: int  # 1-based
    column: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    line, line_start = 1, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "newline":
            line += 1
            line_start = match.end()
            continue
        if kind in ("space", "comment"):
            continue
        out.append(_Token(kind, match.group(), line, match.start() - line_start + 1))
    return out


@dataclass
class TextPositions:
    """Field path → (line, column) of its first occurrence, plus the nesting at any position."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    _opens: list[tuple[int, int, list[str]]] = field(default_factory=list)

    def enclosing(self, line: int, column: int) -> list[str]:
        """The message path (field names) enclosing a position, e.g. ``['training_config']``."""
        stack: list[str] = []
        for open_line, open_col, path in self._opens:
            if (open_line, open_col) > (line, column):
                break
            stack = path
        return stack


def scan_text_positions(text: str) -> TextPositions:
    """Scan protobuf text format (tolerantly; errors are left to the real parser)."""
    result = TextPositions()
    toks = _tokens(text)
    stack: list[str] = []  # path elements like "a", "b[1]"
    counts: dict[str, int] = {}
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind == "punct" and tok.text in "}>":
            if stack:
                stack.pop()
            result._opens.append((tok.line, tok.column + 1, [_plain(p) for p in stack]))
            i += 1
            continue
        if tok.kind != "word":
            i += 1
            continue
        j = i + 1
        if j < len(toks) and toks[j].text == ":":
            j += 1
        nxt = toks[j] if j < len(toks) else None
        parent = ".".join(stack)
        key = f"{parent}.{tok.text}" if parent else tok.text
        index = counts.get(key, 0)
        counts[key] = index + 1
        indexed = f"{key}[{index}]"
        for path in (key, indexed, _plain(key)):
            result.positions.setdefault(path, (tok.line, tok.column))
        if nxt is not None and nxt.text in "{<":
            stack.append(f"{tok.text}[{index}]")
            result._opens.append((nxt.line, nxt.column, [_plain(p) for p in stack]))
            i = j + 1
            continue
        # Skip the value (a scalar or a [list]).
        if nxt is not None and nxt.text == "[":
            depth = 0
            while j < len(toks):
                if toks[j].text == "[":
                    depth += 1
                elif toks[j].text == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
        else:
            i = j + 1
    return result


def _plain(path: str) -> str:
    """``a[0].b[2].c`` → ``a.b.c``."""
    return re.sub(r"\[\d+\]", "", path)


def canonical(path: str) -> str:
    """``a.b[1].c`` → ``a[0].b[1].c``: every enclosing message gets an index, the leaf none."""
    parts = path.split(".")
    fixed = [p if "[" in p else f"{p}[0]" for p in parts[:-1]]
    return ".".join(fixed + parts[-1:])
