"""Spec text with the model key taken out, for what a model file stores.

Why: a 003 YAML spec has a top-level ``key:`` (the model key), and a ``.tlt`` stored the spec text as
written, so anyone holding a copy of the spec text could read the key. Only the top-level field is
dropped (``target_class_mapping { key: ... }`` entries are class names, indented or inside braces);
every occurrence of the secrets given (the key in use) is replaced as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: A top-level ``key`` field: YAML ``key: value`` or text format ``key: "value"`` at column 0.
_TOP_LEVEL_KEY = re.compile(r"^key\s*:.*$", re.MULTILINE)
REDACTED = "<key>"
#: Shorter secrets are not replaced elsewhere in the text: they could be a class name or a path part, and
#: rewriting those would change the stored spec (the top-level ``key:`` value is replaced at any length).
MIN_SECRET_LENGTH = 8


def redact_spec_text(text: str, secrets: Iterable[str | None] = (), *, top_level_key: bool = True) -> str:
    """``text`` with each secret (of :data:`MIN_SECRET_LENGTH` or more) replaced by ``<key>`` and, when the
    schema has a top-level ``key`` field (``top_level_key``), that field's value too; the text stays a
    loadable spec."""
    if top_level_key:
        text = _TOP_LEVEL_KEY.sub(f"key: '{REDACTED}'", text)
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return text
