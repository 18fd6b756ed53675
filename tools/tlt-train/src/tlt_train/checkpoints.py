"""Encrypted training checkpoints and resuming from them.

Layout: ``RESULTS_DIR/weights/<arch>_<NNN>.tlt`` where ``NNN`` is the number of completed epochs,
zero-padded to three digits (``resnet_001.tlt`` after the first epoch). Every file is a normal
``.tlt`` written atomically by :func:`libtlt.runtime.keras_model.save_tlt_model`, so any checkpoint
can also be evaluated, pruned or exported directly.

What a checkpoint holds, and how resuming uses it:

* ``model.keras`` — the Keras archive of the model. When the model is compiled, Keras' archive also
  holds the optimizer's variables (group ``optimizer/vars`` of ``model.weights.h5``: the iteration
  count first, then the slots such as momentum or Adam's moments), so they are stored once.
* ``metadata["training_state"]`` — ``epoch`` (completed epochs), ``iterations`` (optimizer updates
  applied), ``steps_per_epoch`` when known, and ``optimizer``: the Keras-serialized optimizer
  config, learning-rate schedule included (:class:`tlt_train.schedules.TltLearningRateSchedule` is
  registered, so it deserializes).

:func:`resume_state` finds the newest checkpoint, loads the model (uncompiled, so an architecture's
custom loss never has to deserialize) and keeps the optimizer variables read from the archive.
:meth:`ResumeState.restore_optimizer` rebuilds the optimizer from the stored config (or takes the
caller's, e.g. with a new loss scaling), builds it on the model's trainable variables and loads
the stored variables. The iteration count comes back with them, so the schedule — a function of
that count — continues at the same point; ``fit(initial_epoch=state.epoch)`` continues the epoch
numbering. Killing the process at any moment loses at most the epochs since the last checkpoint:
files appear only complete, and temporary files (``.<name>.*.tmp``) are never picked up.

Multi-worker training: every worker must call the save (Keras may read distributed variables
collectively), but only the chief writes into ``RESULTS_DIR``; the others write to a scratch
directory that is removed at once.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from libtlt.errors import ModelFileError
from libtlt.io.modelfile import DEFAULT_KDF_ITERATIONS
from libtlt.log import get_logger
from libtlt.runtime.keras_model import MODEL_MEMBER, load_tlt_model, save_tlt_model
from tlt_train import schedules as _schedules  # noqa: F401  (registers the schedule the optimizer config names)

__all__ = [
    "CHECKPOINT_SUBDIR",
    "CheckpointCallback",
    "ResumeState",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "optimizer_variables_from_archive",
    "resume_state",
    "save_checkpoint",
]

logger = get_logger(__name__)

CHECKPOINT_SUBDIR = "weights"
STATE_KEY = "training_state"


def checkpoint_path(results_dir: str | Path, arch: str, epoch: int) -> Path:
    """``RESULTS_DIR/weights/<arch>_<NNN>.tlt`` for ``epoch`` completed epochs."""
    _check_arch(arch)
    if int(epoch) < 0:
        raise ValueError(f"epoch must be >= 0, not {epoch}")
    return Path(results_dir) / CHECKPOINT_SUBDIR / f"{arch}_{int(epoch):03d}.tlt"


def _check_arch(arch: str) -> None:
    if not arch or "/" in arch or "\\" in arch or arch.startswith("."):
        raise ValueError(f"checkpoint name prefix must be a plain file name, not {arch!r}")


def list_checkpoints(results_dir: str | Path, arch: str) -> list[tuple[Path, int]]:
    """All complete checkpoints of ``arch`` in ``RESULTS_DIR/weights``, oldest epoch first."""
    _check_arch(arch)
    directory = Path(results_dir) / CHECKPOINT_SUBDIR
    if not directory.is_dir():
        return []
    pattern = re.compile(rf"{re.escape(arch)}_(\d{{3,}})\.tlt")
    found = []
    for path in directory.iterdir():
        match = pattern.fullmatch(path.name)
        if match and path.is_file():
            found.append((path, int(match.group(1))))
    return sorted(found, key=lambda item: item[1])


def latest_checkpoint(results_dir: str | Path, arch: str) -> tuple[Path, int] | None:
    """``(path, epoch)`` of the newest checkpoint, or ``None`` when there is none."""
    found = list_checkpoints(results_dir, arch)
    return found[-1] if found else None


def _training_state(model: Any, epoch: int, steps_per_epoch: int | None,
                    extra: Mapping[str, Any] | None) -> dict[str, Any]:
    state: dict[str, Any] = {"epoch": int(epoch)}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        state["iterations"] = int(keras.ops.convert_to_numpy(optimizer.iterations))
        config = keras.optimizers.serialize(optimizer)
        state["optimizer"] = json.loads(json.dumps(config, default=_json_default))
    if steps_per_epoch is not None:
        state["steps_per_epoch"] = int(steps_per_epoch)
    if extra:
        state.update(extra)
    return state


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint metadata")


def save_checkpoint(results_dir: str | Path, arch: str, model: Any, key: str, epoch: int, *,
                    metadata: Mapping[str, Any] | None = None, steps_per_epoch: int | None = None,
                    extra_state: Mapping[str, Any] | None = None, is_chief: bool = True,
                    kdf_iterations: int = DEFAULT_KDF_ITERATIONS) -> Path:
    """Write the checkpoint for ``epoch`` completed epochs; returns its path (a scratch path when not chief).

    ``metadata`` is the model metadata (architecture, class names, spec ...) the final model gets too;
    ``extra_state`` adds keys to ``training_state`` (e.g. the best validation metric so far).
    """
    meta = dict(metadata or {})
    meta[STATE_KEY] = _training_state(model, epoch, steps_per_epoch, extra_state)
    path = checkpoint_path(results_dir, arch, epoch)
    if is_chief:
        save_tlt_model(path, model, key, meta, kdf_iterations=kdf_iterations)
        logger.info("Saved checkpoint %s", path)
        return path
    scratch = Path(tempfile.mkdtemp(prefix="tlt-train-worker-"))
    try:
        save_tlt_model(scratch / path.name, model, key, meta, kdf_iterations=kdf_iterations)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return scratch / path.name


def optimizer_variables_from_archive(archive: bytes) -> list[Any] | None:
    """The optimizer variables Keras stored in a ``.keras`` archive (``None`` if it holds none)."""
    import h5py

    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            weights = zipped.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError) as err:
        raise ModelFileError(f"the Keras archive is damaged: {err}") from err
    with h5py.File(io.BytesIO(weights), "r") as h5:
        group = h5.get("optimizer/vars")
        if group is None or len(group) == 0:
            return None
        return [group[str(i)][()] for i in range(len(group))]


@dataclass
class ResumeState:
    """Where a killed run stopped: its newest checkpoint, loaded."""

    path: Path
    #: Completed epochs; pass as ``fit(initial_epoch=...)``.
    epoch: int
    #: Optimizer updates applied (the learning-rate schedule's position).
    iterations: int
    model: Any
    metadata: dict[str, Any]
    optimizer_config: dict[str, Any] | None = None
    optimizer_variables: list[Any] | None = field(default=None, repr=False)

    @property
    def initial_epoch(self) -> int:
        return self.epoch

    def restore_optimizer(self, optimizer: Any = None, *, variables: Sequence[Any] | None = None) -> Any:
        """The optimizer to compile the resumed model with, in the state the checkpoint recorded.

        Without ``optimizer`` it is rebuilt from the stored config (same type, hyperparameters and
        learning-rate schedule). Its variables (iteration count, slots) are loaded when the
        checkpoint has them and they fit; otherwise only the iteration count is set. ``variables`` are the
        trainable variables in the order the optimizer was built on when saved (a model fitted through an
        architecture's ``training_view`` orders them its own way); the loaded model's by default.
        """
        if optimizer is None:
            if self.optimizer_config is None:
                raise ModelFileError("the checkpoint records no optimizer; pass one to restore_optimizer()",
                                     location=self.path)
            optimizer = keras.optimizers.deserialize(self.optimizer_config)
        optimizer.build(list(variables) if variables is not None else self.model.trainable_variables)
        stored = self.optimizer_variables
        if stored is not None and _fits(optimizer.variables, stored):
            optimizer.load_own_variables({str(i): value for i, value in enumerate(stored)})
        else:
            if stored is not None:
                logger.warning("%s: the optimizer's variables do not match this optimizer; only its iteration "
                               "count is restored", self.path)
            optimizer.iterations.assign(self.iterations)
        return optimizer


def _fits(variables: list[Any], values: list[Any]) -> bool:
    return len(variables) == len(values) and all(
        tuple(v.shape) == tuple(getattr(x, "shape", ())) for v, x in zip(variables, values, strict=True))


def resume_state(results_dir: str | Path, arch: str, key: str, *, architecture: str | None = None
                 ) -> ResumeState | None:
    """Load the newest checkpoint of ``arch`` under ``results_dir``; ``None`` for a fresh start.

    A checkpoint that cannot be opened (wrong key, damaged) raises ``ModelFileError`` rather than
    silently restarting from scratch.
    """
    from libtlt.io.modelfile import load_model_file

    latest = latest_checkpoint(results_dir, arch)
    if latest is None:
        return None
    path, epoch = latest
    model, metadata = load_tlt_model(path, key, architecture=architecture)
    archive = load_model_file(path, key).file(MODEL_MEMBER)
    state = dict(metadata.get(STATE_KEY) or {})
    variables = optimizer_variables_from_archive(archive)
    iterations = state.get("iterations")
    if iterations is None:
        iterations = int(variables[0]) if variables else epoch * int(state.get("steps_per_epoch", 0))
    logger.info("Resuming from %s: %d epochs done, %d iterations", path, epoch, iterations)
    return ResumeState(path=path, epoch=int(state.get("epoch", epoch)), iterations=int(iterations), model=model,
                       metadata=metadata, optimizer_config=state.get("optimizer"), optimizer_variables=variables)


class CheckpointCallback(keras.callbacks.Callback):
    """Save ``RESULTS_DIR/weights/<arch>_<NNN>.tlt`` every ``interval`` epochs (and after the last one).

    ``interval`` 0 disables intermediate checkpoints. ``saving_view(model)`` (optional) returns the model
    to write instead of the trained one and metadata to add (QAT saves its float model and learned ranges). ``is_chief`` is False on the non-chief workers of
    a multi-worker run (see :func:`tlt_train.distribution.is_chief`); they still take part in the save.
    """

    def __init__(self, results_dir: str | Path, arch: str, key: str, *, interval: int = 1,
                 metadata: Mapping[str, Any] | None = None, save_last: bool = True, is_chief: bool = True,
                 kdf_iterations: int = DEFAULT_KDF_ITERATIONS,
                 saving_view: Callable[[Any], tuple[Any, Mapping[str, Any]]] | None = None):
        super().__init__()
        if float(interval) != int(interval) or int(interval) < 0:
            raise ValueError(f"checkpoint interval must be a whole number of epochs >= 0, not {interval}")
        _check_arch(arch)
        self.results_dir = Path(results_dir)
        self.arch = arch
        self.key = key
        self.interval = int(interval)
        self.metadata = dict(metadata or {})
        self.save_last = save_last
        self.is_chief = is_chief
        self.kdf_iterations = kdf_iterations
        self.saving_view = saving_view
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        done = epoch + 1
        last = self.params.get("epochs") if self.params else None
        due = self.interval > 0 and done % self.interval == 0
        if due or (self.save_last and last is not None and done == last):
            model, extra = self.saving_view(self.model) if self.saving_view is not None else (self.model, {})
            path = save_checkpoint(self.results_dir, self.arch, model, self.key, done,
                                   metadata={**self.metadata, **extra},
                                   steps_per_epoch=(self.params or {}).get("steps"),
                                   is_chief=self.is_chief, kdf_iterations=self.kdf_iterations)
            if self.is_chief:
                self.saved.append(path)
