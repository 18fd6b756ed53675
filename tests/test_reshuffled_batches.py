"""libtlt.testing.reshuffled_batches: the benches' peer input, a new order every epoch (Keras's own shuffle=True
repeats one order after set_random_seed, which made peers look better at fitting their training sets)."""

from __future__ import annotations

import keras
import numpy as np

from libtlt.testing import reshuffled_batches


class _Recorder(keras.Model):
    """Records the inputs of every training step."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.seen: list[list[int]] = []

    def call(self, x):  # type: ignore[no-untyped-def]
        return self.dense(x)

    def train_step(self, data):  # type: ignore[no-untyped-def]
        x, _ = data
        self.seen.append(np.asarray(x).ravel().astype(int).tolist())
        return {"loss": 0.0}


def _epochs(model: _Recorder, per_epoch: int) -> list[list[int]]:
    return [[v for step in model.seen[i:i + per_epoch] for v in step] for i in range(0, len(model.seen), per_epoch)]


def test_a_new_order_every_epoch_each_sample_once_last_partial_batch_dropped() -> None:
    keras.utils.set_random_seed(1)
    x = np.arange(14, dtype=np.float32)[:, None]
    model = _Recorder()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    model.fit(reshuffled_batches(x, {"y": np.zeros(14, np.float32)}, batch_size=4, seed=1), epochs=3, verbose=0)
    epochs = _epochs(model, 3)
    assert len(epochs) == 3 and all(len(e) == 12 and len(set(e)) == 12 for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3


def test_keras_array_shuffle_repeats_its_order_which_is_why() -> None:
    """If this starts failing, Keras reshuffles arrays per epoch again and the helper is no longer needed."""
    keras.utils.set_random_seed(1)
    x = np.arange(12, dtype=np.float32)[:, None]
    model = _Recorder()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    model.fit(x, np.zeros((12, 1), np.float32), batch_size=4, epochs=3, shuffle=True, verbose=0)
    epochs = _epochs(model, 3)
    assert epochs[0] != list(range(12)) and epochs[0] == epochs[1] == epochs[2]
