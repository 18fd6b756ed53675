"""What a training run reports while it runs: status.json, training.csv, TensorBoard events, progress.

All are Keras callbacks, written by the chief only (pass ``is_chief=False`` on other workers), and
all *append* across a resumed run instead of starting over:

``RESULTS_DIR/status.json``
    One JSON object per line (docs/training.md lists the fields): a ``STARTED`` line when training
    starts or resumes, one ``RUNNING`` line per epoch with ``epoch`` (1-based), ``max_epoch``,
    ``loss`` and every other Keras metric (``accuracy``, ``val_loss`` ...), ``lr``,
    ``time_per_epoch`` (s), ``images_per_sec`` and ``eta`` (s), and a ``SUCCESS`` line at the end.
``RESULTS_DIR/training.csv``
    One row per epoch (``epoch``, ``lr``, ``time_per_epoch``, ``images_per_sec`` and the metrics). On
    resume, rows of epochs that are being trained again (after the checkpoint the run resumed from)
    are dropped, so the table keeps one row per epoch.
On a failure, a last ``FAILED`` line (an ``INTERRUPTED`` line for SIGINT/SIGTERM) carries the
one-line message (:func:`append_status`; written by ``tlt_train.train``).
``RESULTS_DIR/events/{train,validation}``
    TensorBoard scalars per epoch, written with TensorFlow's own summary ops (the ``tensorboard``
    package is needed only to view them, not to write them).

Both text files are rewritten atomically (``libtlt.io.atomic``) at every epoch, so a kill -9 leaves
the previous complete file, never a torn line. Each epoch is also logged as a TLT-style
``[INFO]`` line, and :class:`ProgressBar` draws a tqdm bar per epoch with the images/s rate (use it
with ``fit(verbose=0)``) when stderr is a terminal; in a log file the ``[INFO]`` line is the progress.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from libtlt.io.atomic import write_text
from libtlt.log import get_logger, is_terminal

__all__ = [
    "CSV_NAME",
    "EVENTS_SUBDIR",
    "STATUS_NAME",
    "CsvLogger",
    "ProgressBar",
    "StatusLogger",
    "TensorBoardLogger",
    "append_status",
    "current_learning_rate",
    "redact",
    "training_callbacks",
]

logger = get_logger(__name__)

STATUS_NAME = "status.json"
CSV_NAME = "training.csv"
EVENTS_SUBDIR = "events"


def current_learning_rate(model: Any) -> float | None:
    """The rate the optimizer applies at its next update (its schedule at the current iteration)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


def _number(value: Any) -> float | int | None:
    """A JSON-safe number (non-finite values become null)."""
    try:
        number = float(keras.ops.convert_to_numpy(value)) if not isinstance(value, (int, float)) else value
    except (TypeError, ValueError):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


class _EpochClock(keras.callbacks.Callback):
    """Times each epoch and counts its training batches (base of the reporting callbacks)."""

    def __init__(self, batch_size: int | None = None):
        super().__init__()
        self.batch_size = batch_size
        self._epoch_start = 0.0
        self._train_end = 0.0
        self._batches = 0
        self.first_epoch: int | None = None

    @property
    def max_epoch(self) -> int | None:
        return (self.params or {}).get("epochs")

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            self.on_run_begin(epoch)
        self._epoch_start = self._train_end = time.perf_counter()
        self._batches = 0

    def on_run_begin(self, initial_epoch: int) -> None:
        """Called once, at the first epoch this process trains (``initial_epoch`` is 0-based)."""

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._batches += 1
        self._train_end = time.perf_counter()

    def epoch_seconds(self) -> float:
        return time.perf_counter() - self._epoch_start

    def images_per_sec(self) -> float | None:
        seconds = self._train_end - self._epoch_start
        if not self.batch_size or self._batches == 0 or seconds <= 0:
            return None
        return self._batches * self.batch_size / seconds

    def epoch_record(self, epoch: int, logs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Numbers of the epoch just finished (``epoch`` 0-based in, 1-based out)."""
        seconds = self.epoch_seconds()
        record: dict[str, Any] = {"epoch": epoch + 1, "max_epoch": self.max_epoch}
        for name, value in sorted((logs or {}).items()):
            record[name] = _number(value)
        record["lr"] = current_learning_rate(self.model)
        record["time_per_epoch"] = round(seconds, 3)
        rate = self.images_per_sec()
        record["images_per_sec"] = round(rate, 2) if rate is not None else None
        if self.max_epoch is not None:
            record["eta"] = round(seconds * max(self.max_epoch - epoch - 1, 0), 1)
        return record


def _timestamp() -> dict[str, str]:
    now = _dt.datetime.now()
    return {"date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H:%M:%S")}


class StatusLogger(_EpochClock):
    """``RESULTS_DIR/status.json`` (JSON lines) and one ``[INFO]`` log line per epoch."""

    def __init__(self, results_dir: str | Path, *, batch_size: int | None = None, is_chief: bool = True,
                 filename: str = STATUS_NAME):
        super().__init__(batch_size)
        self.path = Path(results_dir) / filename
        self.is_chief = is_chief
        self._lines: list[str] | None = None

    def _append(self, record: Mapping[str, Any]) -> None:
        if not self.is_chief:
            return
        if self._lines is None:
            self._lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        self._lines.append(json.dumps({**_timestamp(), **record}, allow_nan=False))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, "\n".join(self._lines) + "\n", fsync=False)

    def on_run_begin(self, initial_epoch: int) -> None:
        if initial_epoch:
            message = f"Resuming training at epoch {initial_epoch + 1}"
        else:
            message = "Starting training"
        logger.info("%s (%s epochs)", message, self.max_epoch)
        self._append({"status": "STARTED", "verbosity": "INFO", "message": message, "epoch": initial_epoch,
                      "max_epoch": self.max_epoch})

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        record = self.epoch_record(epoch, logs)
        parts = [f"Epoch {record['epoch']}/{record['max_epoch']}"]
        for name, value in record.items():
            if name in ("epoch", "max_epoch", "eta") or value is None:
                continue
            if name == "time_per_epoch":
                parts.append(f"{value:.1f}s")
            elif name == "images_per_sec":
                parts.append(f"{value:.1f} images/s")
            else:
                parts.append(f"{name}: {value:.4g}")
        logger.info(" - ".join(parts))
        self._append({"status": "RUNNING", "verbosity": "INFO", **record})

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.first_epoch is not None:
            self._append({"status": "SUCCESS", "verbosity": "INFO", "message": "Training finished",
                          "max_epoch": self.max_epoch})


class CsvLogger(_EpochClock):
    """``RESULTS_DIR/training.csv``: one row per epoch, kept consistent across resumes."""

    def __init__(self, results_dir: str | Path, *, batch_size: int | None = None, is_chief: bool = True,
                 filename: str = CSV_NAME):
        super().__init__(batch_size)
        self.path = Path(results_dir) / filename
        self.is_chief = is_chief
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = []

    def on_run_begin(self, initial_epoch: int) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            self._columns = list(reader.fieldnames or [])
            for row in reader:
                try:
                    done = int(row.get("epoch") or 0)
                except ValueError:
                    continue
                if done <= initial_epoch:  # epochs after the checkpoint are trained again
                    self._rows.append(row)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        record = self.epoch_record(epoch, logs)
        record.pop("max_epoch", None)
        record.pop("eta", None)
        for name in record:
            if name not in self._columns:
                self._columns.append(name)
        self._rows.append(record)
        if not self.is_chief:
            return
        ordered = ["epoch"] + [c for c in self._columns if c != "epoch"]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=ordered, restval="", lineterminator="\n")
        writer.writeheader()
        for row in self._rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, buffer.getvalue(), fsync=False)


class TensorBoardLogger(_EpochClock):
    """Per-epoch TensorBoard scalars in ``RESULTS_DIR/events/train`` and ``.../validation``.

    Keras' own ``TensorBoard`` callback needs the ``tensorboard`` package to write anything; this one
    uses TensorFlow's summary ops with the scalars plugin's metadata, which TensorBoard displays.
    """

    def __init__(self, results_dir: str | Path, *, batch_size: int | None = None, is_chief: bool = True,
                 subdir: str = EVENTS_SUBDIR):
        super().__init__(batch_size)
        self.log_dir = Path(results_dir) / subdir
        self.is_chief = is_chief
        self._writers: dict[str, Any] = {}

    def _writer(self, name: str) -> Any:
        import tensorflow as tf

        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self.is_chief:
            return
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
        record = self.epoch_record(epoch, logs)
        for name, value in record.items():
            if name in ("epoch", "max_epoch", "eta") or value is None:
                continue
            split, tag = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            with self._writer(split).as_default():
                tf.summary.write(f"epoch_{tag}", tf.constant(float(value), tf.float32), step=epoch + 1,
                                 metadata=metadata)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class ProgressBar(_EpochClock):
    """A tqdm bar per epoch (``Epoch 3/80``) with the loss and images/s; pair with ``fit(verbose=0)``."""

    def __init__(self, *, batch_size: int | None = None, enabled: bool = True, file: Any = None):
        super().__init__(batch_size)
        self.enabled = enabled
        self.file = file
        self._bar: Any = None

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        if not self.enabled:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=(self.params or {}).get("steps"), desc=f"Epoch {epoch + 1}/{self.max_epoch}",
                         unit="batch", file=self.file, leave=True, dynamic_ncols=True)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        if self._bar is None:
            return
        postfix = {}
        loss = _number((logs or {}).get("loss"))
        if loss is not None:
            postfix["loss"] = f"{loss:.4g}"
        rate = self.images_per_sec()
        if rate is not None:
            postfix["images/s"] = f"{rate:.1f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def training_callbacks(results_dir: str | Path, *, batch_size: int | None = None, is_chief: bool = True,
                       progress: bool = True, tensorboard: bool = True) -> list[Any]:
    """The reporting callbacks tlt-train uses: status.json, training.csv, TensorBoard events, progress bar.

    ``batch_size`` is the global batch (per-GPU batch × replicas), for images/s.
    """
    callbacks: list[Any] = [
        StatusLogger(results_dir, batch_size=batch_size, is_chief=is_chief),
        CsvLogger(results_dir, batch_size=batch_size, is_chief=is_chief),
    ]
    if tensorboard:
        callbacks.append(TensorBoardLogger(results_dir, batch_size=batch_size, is_chief=is_chief))
    if progress and is_chief and is_terminal():  # in a log file the [INFO] line per epoch is the progress
        callbacks.append(ProgressBar(batch_size=batch_size))
    return callbacks


def append_status(results_dir: str | Path, record: Mapping[str, Any], filename: str = STATUS_NAME) -> None:
    """Append one line to ``status.json`` (rewritten atomically), outside the callbacks' own writes."""
    path = Path(results_dir) / filename
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines.append(json.dumps({**_timestamp(), **record}, allow_nan=False))
    write_text(path, "\n".join(lines) + "\n", fsync=False)


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """``text`` with every secret (the model key) replaced, for anything written or printed (the same
    rule as the stored spec: secrets shorter than ``MIN_SECRET_LENGTH`` could be ordinary words)."""
    from libtlt.spec.redact import MIN_SECRET_LENGTH, REDACTED

    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return text
