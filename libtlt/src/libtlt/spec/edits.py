"""Edit a spec's text by exact pieces: how the demo, the samples and the tests point a default spec at their data.

Every piece must be present, so that a change to the default spec is caught where it is edited instead of
silently leaving the old value in place.
"""

from __future__ import annotations

from collections.abc import Mapping


def edit_spec_text(text: str, edits: Mapping[str, str], what: str) -> str:
    """``text`` with each key of ``edits`` replaced by its value; ``what`` names the spec in the error when a key
    is not in it."""
    for old, new in edits.items():
        if old not in text:
            raise ValueError(f"{what} changed: {old!r} not found")
        text = text.replace(old, new)
    return text
