"""Stop a diverging run at once: a NaN, infinite or exploding loss ends training with exit status 2.

Why: a run whose loss became NaN (or 2e5 from 5) kept training for all its epochs at chance accuracy,
then saved the model and exited 0. The original toolkit stops on NaN; this stops on the first batch
whose loss is not finite or exceeds :data:`EXPLODING_FACTOR` times the loss of this run's first
batch (at least 1), with one line saying what to lower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras

from libtlt.errors import TltError

#: The loss is "exploding" above this multiple of the reference (the run's first batch loss, at least 1).
EXPLODING_FACTOR = 1000.0

ADVICE = ("lower the learning rate (train_config learning_rate / lr_config), or check the preprocessing "
          "(preprocess_mode, image_mean) and the regularizer weight")


class TrainingDiverged(TltError):
    """The loss became NaN, infinite or exploded: a setting to change, not a bug (exit status 2)."""


class DivergenceGuard(keras.callbacks.Callback):
    """Raises :class:`TrainingDiverged` from the batch whose loss is not finite or explodes.

    Keras reports, per batch, the mean loss of the epoch so far; a NaN stays NaN in that mean, and a
    blow-up from ~5 to 2e5 moves it by far more than the factor.
    """

    def __init__(self, factor: float = EXPLODING_FACTOR):
        super().__init__()
        self.factor = factor
        #: The loss the run started at (its first batch's), once known.
        self.reference: float | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        value = (logs or {}).get("loss")
        if value is None:
            return
        loss = float(keras.ops.convert_to_numpy(value))
        where = f"epoch {self._epoch + 1}, batch {batch + 1}"
        if not math.isfinite(loss):
            self.model.stop_training = True
            raise TrainingDiverged(f"training diverged at {where}: the loss is {loss}; {ADVICE}")
        if self.reference is None:
            self.reference = loss
            return
        if loss > self.factor * max(self.reference, 1.0):
            self.model.stop_training = True
            raise TrainingDiverged(f"training diverged at {where}: the loss is {loss:.4g}, over {self.factor:g} "
                                   f"times the first batch's {self.reference:.4g}; {ADVICE}")
