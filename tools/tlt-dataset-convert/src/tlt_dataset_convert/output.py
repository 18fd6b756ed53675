"""All-or-nothing output of a conversion, and the object statistics it logs.

Every file of a run (the shards and the warning json) is first written completely, each through
``libtlt.io.atomic``, into a hidden staging directory beside the outputs. Only when every file is
done are they renamed into place; an error or Ctrl-C removes the staging directory, so a failed run
leaves no new file under an output name (and earlier outputs of the same names untouched).

A run replaces the earlier run's set as a whole: shards of the same output prefix that this run did
not write (another ``num_shards`` or ``num_partitions``) are removed right after the new set is in
place, with signals held, so a ``prefix-*`` glob never reads a mix of two runs. A staging directory
records its owner (host, PID, process start time); one left by a SIGKILLed run is removed by the
next run in the same folder, one of a live run is left alone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from libtlt import interrupts
from libtlt.errors import TltError, output_error
from libtlt.io.atomic import write_text
from libtlt.io.tfrecord import TFRecordWriter
from libtlt.log import get_logger

LOGGER = get_logger("tlt_dataset_convert.output")
STAGING_PREFIX = ".tlt-dataset-convert."
STAGING_SUFFIX = ".staging"
OWNER_FILE = "owner.json"
#: Age after which a staging folder without owner record (made by an earlier version) is stale.
STALE_SECONDS = 3600


@dataclass
class ConversionResult:
    """What a conversion wrote: the shard files, the ids written per partition (duplicates repeated;
    KITTI frame ids or COCO image ids), the object counts per partition and the warning file."""

    files: list[Path]
    folds: list[list[str]]
    counts: list[Counter[str]]
    warning_file: Path
    num_skipped: int


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if there is no such process.

    With the PID it identifies a process even after the PID is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start_time": _start_time(os.getpid())}


def _is_dead(owner: Mapping[str, object]) -> bool:
    """True only when ``owner`` ran on this host and that process is gone (or its PID was reused)."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == -1:  # an earlier version's folder, old enough
        return True
    if pid <= 0:
        return False
    if not Path("/proc/self/stat").exists():  # pragma: no cover - not Linux: PID alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    now = _start_time(pid)
    recorded = owner.get("start_time")
    return now is None or (recorded is not None and now != recorded)


def _owner_from_name(staging: Path) -> dict[str, object] | None:
    """Without ``owner.json``: a run just starting (the PID in the name is alive, or the folder is
    new) is left alone; a folder of an earlier version (no PID in its name) counts as dead after
    ``STALE_SECONDS``."""
    middle = staging.name[len(STAGING_PREFIX):-len(STAGING_SUFFIX)].split(".")
    if len(middle) == 2 and middle[0].isdigit():
        pid = int(middle[0])
        return {"host": socket.gethostname(), "pid": pid, "start_time": None}
    try:
        age = time.time() - staging.stat().st_mtime
    except OSError:
        return None
    return {"host": socket.gethostname(), "pid": -1} if age > STALE_SECONDS else None


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove staging directories in ``folder`` whose owner run is dead; returns them."""
    removed = []
    for staging in folder.glob(f"{STAGING_PREFIX}*{STAGING_SUFFIX}"):
        try:
            owner = json.loads((staging / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            owner = _owner_from_name(staging)
        if isinstance(owner, dict) and _is_dead(owner):
            shutil.rmtree(staging, ignore_errors=True)
            LOGGER.info("Removed %s, left by an interrupted run (PID %s)", staging, owner.get("pid"))
            removed.append(staging)
    return removed


class StagedOutputs:
    """Stage files for ``final_dir`` and publish them together on a clean exit.

    ``replaces`` matches the names (in ``final_dir``) of the set this run supersedes: any of them this
    run does not write is removed when the new set is published.
    """

    def __init__(self, final_dir: str | Path, *, fsync: bool = True, replaces: re.Pattern[str] | None = None):
        self.final_dir = Path(final_dir)
        self.fsync = fsync
        self.replaces = replaces
        try:
            self.final_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(self.final_dir)
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}.", suffix=STAGING_SUFFIX,
                                                 dir=self.final_dir))
        except OSError as err:
            raise output_error(self.final_dir, err, "cannot create the output folder") from None
        write_text(self.staging / OWNER_FILE, json.dumps(_owner()) + "\n", fsync=False)
        self._staged: list[tuple[Path, Path]] = []

    def _stage(self, final_path: str | Path) -> Path:
        final_path = Path(final_path)
        if final_path.parent.resolve() != self.final_dir.resolve():
            raise ValueError(f"{final_path} is not in {self.final_dir}")
        staged = self.staging / final_path.name
        self._staged.append((staged, final_path))
        return staged

    def tfrecord_writer(self, final_path: str | Path) -> TFRecordWriter:
        return TFRecordWriter(self._stage(final_path), fsync=self.fsync)

    def write_text(self, final_path: str | Path, text: str) -> None:
        write_text(self._stage(final_path), text, fsync=self.fsync)

    def publish(self) -> list[Path]:
        finals = [final for _, final in self._staged]
        with interrupts.deferred():  # the swap is never cut in half by a signal
            for staged, final in self._staged:
                try:
                    os.replace(staged, final)
                except OSError as err:
                    raise output_error(final, err) from None
            stale = self._superseded(finals)
            for path in stale:
                path.unlink(missing_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        if stale:
            LOGGER.info("Removed %d file(s) of an earlier run with the same output name: %s", len(stale),
                        ", ".join(p.name for p in stale[:3]) + (", ..." if len(stale) > 3 else ""))
        return finals

    def _superseded(self, finals: list[Path]) -> list[Path]:
        if self.replaces is None:
            return []
        written = {p.name for p in finals}
        return sorted(p for p in self.final_dir.iterdir()
                      if self.replaces.fullmatch(p.name) and p.name not in written and p.is_file())

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()
            if isinstance(exc, TltError) and exc.location:  # name the output, not its staging copy
                finals = {str(staged): str(final) for staged, final in self._staged}
                exc.location = finals.get(exc.location, exc.location)
            if isinstance(exc, interrupts.Interrupted):
                exc.detail = exc.detail or "nothing written (earlier outputs are unchanged)"


def format_counts(counts: Mapping[str, int]) -> str:
    """``Wrote the following numbers of objects:`` and one ``class: count`` line per class, by name."""
    lines = ["Wrote the following numbers of objects:"]
    lines += [f"{name}: {counts[name]}" for name in sorted(counts)]
    return "\n".join(lines) + "\n"


def log_counts(logger: logging.Logger, counts: Mapping[str, int]) -> None:
    logger.info("\n%s", format_counts(counts))


def log_class_map(logger: logging.Logger, class_map: Mapping[str, str]) -> None:
    lines = ["Class map. ", "Label in GT: Label in tfrecords file "]
    lines += [f"{gt}: {class_map[gt]}" for gt in sorted(class_map)]
    lines.append("For the dataset_config in the experiment_spec, please use labels in the tfrecords file, "
                 "while writing the classmap.")
    logger.info("%s\n", "\n".join(lines))


def count_classes(class_lists: Iterable[Iterable[str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for classes in class_lists:
        counts.update(classes)
    return counts
