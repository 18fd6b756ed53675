"""The progress bar of long loops: tqdm on stderr, shown only on a terminal (quiet in logs and tests)."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


def progress_bar(total: int, description: str) -> Any:
    """A tqdm bar over ``total`` frames; a context manager with ``update(n)``."""
    return tqdm(total=total, desc=description, unit="frame", disable=None, leave=False, dynamic_ncols=True)
