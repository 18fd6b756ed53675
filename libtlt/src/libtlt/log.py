"""Logging in TLT's format: ``2020-08-04 12:00:00,000 [INFO] module: message``."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


def setup_logging(verbose: bool = False, log_file: str | None = None) -> None:
    """Configure the root logger once per process (tools call this at start-up)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True
    )


def get_logger(name: str) -> logging.Logger:
    """A module logger; the name appears in every line as TLT does (``iva.detectnet_v2...``)."""
    return logging.getLogger(name)
