"""Logging in TLT's format: ``2020-08-04 12:00:00,000 [INFO] module: message``."""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

LOG_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"

#: TensorFlow's C++ log threshold: 2 hides its INFO start-up banners (cpu_feature_guard, oneDNN) and its
#: internal warnings (e.g. a data pipeline's "Local rendezvous is aborting"); errors stay.
NATIVE_LOG_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
#: Libraries whose INFO lines are noise in a tool's log (kept with --verbose).
NOISY_LOGGERS = ("matplotlib", "PIL", "h5py", "absl", "tensorflow")


#: What TensorFlow's shared libraries print while they load, before any log level applies (absl's
#: pre-initialisation INFO lines such as ``I0000 ... port.cc:153] oneDNN custom operations are on``).
_IMPORT_BANNER = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called|I\d{4} |"
                            r"To enable the following instructions:")


def quiet_native_logs(verbose: bool = False) -> None:
    """Silence TensorFlow's C++ start-up banners unless ``verbose`` or the user set the variable.

    Must run before TensorFlow is imported (its C++ logger reads the environment once); tools import
    TensorFlow lazily, inside the body that ``run_tool`` runs after this. The banners that its
    libraries print while loading ignore ``TF_CPP_MIN_LOG_LEVEL``; they are filtered out of stderr
    during that one import (:class:`_QuietTensorFlowImport`), every other line is kept. With ``verbose`` the
    banners stay, but the import is still held whole against stop signals.
    """
    if not verbose:
        for name, value in NATIVE_LOG_ENV.items():
            os.environ.setdefault(name, value)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport(filter_banners=not verbose))


@contextlib.contextmanager
def filtered_native_stderr(drop: re.Pattern[str] = _IMPORT_BANNER) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block, then replay it without ``drop`` lines.

    Why the file descriptor: C++ libraries write to it directly, past ``sys.stderr``.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not drop.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _AlreadyImported(importlib.abc.Loader):
    """Hands the import system a module that :class:`_QuietTensorFlowImport` has imported already."""

    def __init__(self, module: ModuleType):
        self.module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        return None


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """A one-shot import hook: the first ``import tensorflow`` (direct or through Keras) runs whole, and quietly
    if ``filter_banners``.

    Whole: a stop signal waits until TensorFlow is imported and is raised after it, outside the import; raised
    inside it, it left half-imported submodules behind and the clean-up that followed died on them with an
    AttributeError (exit 1). So the import runs here, in the finder, and the import system gets the finished module.
    """

    def __init__(self, filter_banners: bool = True):
        self.filter_banners = filter_banners

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        from libtlt import interrupts

        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        # deferred() raises a signal that arrived meanwhile, once the module is complete.
        with interrupts.deferred(), filtered_native_stderr() if self.filter_banners else contextlib.nullcontext():
            module = importlib.import_module(fullname)
        return importlib.util.spec_from_loader(fullname, _AlreadyImported(module))


def setup_logging(verbose: bool = False, log_file: str | None = None) -> None:
    """Configure the root logger once per process (tools call this at start-up)."""
    quiet_native_logs(verbose)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, handlers=handlers, force=True
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """A module logger; the name appears in every line as TLT does (``iva.detectnet_v2...``)."""
    return logging.getLogger(name)


def is_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal: progress bars only there."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class PlainProgress:
    """A tqdm stand-in for logs: one ``[INFO]`` line every 10 % instead of a ``\\r`` update per item.

    Why: a redirected stderr (a log file, a job scheduler) would otherwise collect thousands of
    carriage-return updates that no one can read.
    """

    def __init__(self, total: int | None = None, desc: str = "Progress", unit: str = "it", step: float = 0.1,
                 logger: logging.Logger | None = None):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self._step = max(1, int((total or 0) * step)) if total else None
        self._next = self._step
        self._logger = logger or logging.getLogger("tlt.progress")

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._next is not None and self.total and (self.n >= self._next or self.n >= self.total):
            self._logger.info("%s: %d/%d %s (%d%%)", self.desc, self.n, self.total, self.unit,
                              100 * self.n // self.total)
            while self._next <= self.n:
                self._next += self._step or 1
            if self.n >= self.total:
                self._next = None  # the 100 % line is written once

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Ignored: the per-item numbers belong on a terminal bar."""

    def close(self) -> None:
        """Nothing to draw; the caller logs its own summary line."""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(total: int | None = None, desc: str = "Progress", unit: str = "it", leave: bool = False,
             **kwargs: Any) -> Any:
    """A tqdm bar on a terminal, :class:`PlainProgress` (a line every 10 %) when stderr is redirected."""
    if is_terminal():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, **kwargs)
    return PlainProgress(total=total, desc=desc, unit=unit)
