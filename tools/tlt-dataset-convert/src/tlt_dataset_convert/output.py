"""All-or-nothing output of a conversion, and the object statistics it logs.

Every file of a run (the shards and the warning json) is first written completely, each through
``libtlt.io.atomic``, into a hidden staging directory beside the outputs. Only when every file is
done are they renamed into place; an error or Ctrl-C removes the staging directory, so a failed run
leaves no new file under an output name (and earlier outputs of the same names untouched).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from libtlt.io.atomic import write_text
from libtlt.io.tfrecord import TFRecordWriter


@dataclass
class ConversionResult:
    """What a conversion wrote: the shard files, the ids written per partition (duplicates repeated;
    KITTI frame ids or COCO image ids), the object counts per partition and the warning file."""

    files: list[Path]
    folds: list[list[str]]
    counts: list[Counter[str]]
    warning_file: Path
    num_skipped: int


class StagedOutputs:
    """Stage files for ``final_dir`` and publish them together on a clean exit."""

    def __init__(self, final_dir: str | Path, *, fsync: bool = True):
        self.final_dir = Path(final_dir)
        self.final_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.staging = Path(tempfile.mkdtemp(prefix=".tlt-dataset-convert.", suffix=".staging", dir=self.final_dir))
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
        for staged, final in self._staged:
            os.replace(staged, final)
        shutil.rmtree(self.staging, ignore_errors=True)
        return [final for _, final in self._staged]

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
