"""Checkpoints: naming, discovery, and kill -9 / resume continuing the same run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from libtlt.errors import ModelFileError
from libtlt.runtime.keras_model import load_tlt_model
from tlt_train.checkpoints import (
    CheckpointCallback,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    resume_state,
    save_checkpoint,
)

KEY = "nvidia_tlt"
KDF = 10  # PBKDF2 iterations: tests do not need the production cost

# The training job, shared by the killed subprocess and the in-process runs: a tiny model with
# seeded initializers, fixed data, no shuffling, SGD with momentum and the soft_anneal schedule.
JOB = textwrap.dedent('''
    import os, signal
    import numpy as np
    import keras
    from tlt_train.checkpoints import CheckpointCallback
    from tlt_train.optimizers import make_optimizer
    from tlt_train.schedules import soft_anneal

    STEPS, EPOCHS, BATCH = 4, 4, 4
    SCHEDULE = soft_anneal(0.05, 0.1, [0.4, 0.7], 10)

    def data():
        rng = np.random.default_rng(7)
        x = rng.normal(size=(STEPS * BATCH, 6)).astype("float32")
        y = (x[:, :2] * 0.5).astype("float32")
        return x, y

    def build():
        inputs = keras.Input((6,))
        x = keras.layers.Dense(8, activation="relu", name="fc1",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=1))(inputs)
        outputs = keras.layers.Dense(2, name="fc2", kernel_initializer=keras.initializers.GlorotUniform(seed=2))(x)
        return keras.Model(inputs, outputs)

    def optimizer():
        return make_optimizer("sgd", SCHEDULE.keras_schedule(STEPS, STEPS * EPOCHS), momentum=0.9)

    class KillAt(keras.callbacks.Callback):
        """kill -9 this process in the middle of epoch ``epoch`` (1-based)."""
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch
        def on_train_batch_begin(self, batch, logs=None):
            if self._current == self.epoch and batch == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        def on_epoch_begin(self, epoch, logs=None):
            self._current = epoch + 1

    def fresh():
        model = build()
        model.compile(optimizer(), "mse")
        return model

    def fit(model, results_dir, initial_epoch=0, kill_at=None, key="nvidia_tlt"):
        x, y = data()
        callbacks = [CheckpointCallback(results_dir, "net", key, interval=1, kdf_iterations=10,
                                        metadata={"note": "test"})]
        if kill_at:
            callbacks.append(KillAt(kill_at))
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, initial_epoch=initial_epoch, shuffle=False, verbose=0,
                  callbacks=callbacks)
        return model
''')


def job() -> dict:
    namespace: dict = {}
    exec(compile(JOB, "<job>", "exec"), namespace)
    return namespace


def tiny_compiled_model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def test_checkpoint_path_and_discovery(tmp_path: Path):
    assert checkpoint_path(tmp_path, "resnet", 3) == tmp_path / "weights" / "resnet_003.tlt"
    assert checkpoint_path(tmp_path, "resnet", 1234).name == "resnet_1234.tlt"
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("resnet_001.tlt", "resnet_009.tlt", "resnet_010.tlt", ".resnet_011.tlt.x1y2.tmp", "resnet_01.tlt",
                 "resnet_012.tlt.tmp", "vgg_020.tlt", "resnet_abc.tlt"):
        (weights / name).write_bytes(b"x")
    assert [epoch for _, epoch in list_checkpoints(tmp_path, "resnet")] == [1, 9, 10]
    assert latest_checkpoint(tmp_path, "resnet") == (weights / "resnet_010.tlt", 10)
    assert latest_checkpoint(tmp_path, "vgg") == (weights / "vgg_020.tlt", 20)
    assert latest_checkpoint(tmp_path, "googlenet") is None
    assert latest_checkpoint(tmp_path / "nowhere", "resnet") is None
    assert resume_state(tmp_path / "nowhere", "resnet", KEY) is None
    with pytest.raises(ValueError):
        checkpoint_path(tmp_path, "../escape", 1)


def test_callback_saves_every_interval_and_the_last_epoch(tmp_path: Path):
    model = tiny_compiled_model()
    callback = CheckpointCallback(tmp_path, "fc", KEY, interval=2, kdf_iterations=KDF, metadata={"architecture": "x"})
    model.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), epochs=5, verbose=0, callbacks=[callback])
    assert [epoch for _, epoch in list_checkpoints(tmp_path, "fc")] == [2, 4, 5]
    assert callback.saved == [path for path, _ in list_checkpoints(tmp_path, "fc")]
    loaded, metadata = load_tlt_model(tmp_path / "weights" / "fc_004.tlt", KEY)
    assert metadata["architecture"] == "x"
    assert metadata["training_state"]["epoch"] == 4
    assert metadata["training_state"]["iterations"] == 4
    assert metadata["training_state"]["steps_per_epoch"] == 1
    assert loaded.get_layer("fc").get_weights()[0].shape == (3, 2)


def test_interval_zero_keeps_only_the_last_and_non_chief_writes_nothing(tmp_path: Path):
    model = tiny_compiled_model()
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model.fit(x, y, epochs=3, verbose=0, callbacks=[CheckpointCallback(tmp_path / "a", "fc", KEY, interval=0,
                                                                      kdf_iterations=KDF)])
    assert [epoch for _, epoch in list_checkpoints(tmp_path / "a", "fc")] == [3]
    worker = CheckpointCallback(tmp_path / "b", "fc", KEY, interval=1, is_chief=False, kdf_iterations=KDF)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[worker])
    assert not (tmp_path / "b").exists()
    assert worker.saved == []
    with pytest.raises(ValueError):
        CheckpointCallback(tmp_path, "fc", KEY, interval=1.5)


def test_kill_and_resume_continues_the_same_run(tmp_path: Path):
    results = tmp_path / "results"
    script = tmp_path / "job.py"
    script.write_text(JOB + "\nfit(fresh(), os.environ['RESULTS'], kill_at=3)\nraise SystemExit('not killed')\n")
    env = {**os.environ, "RESULTS": str(results), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == -9, done.stderr[-3000:]  # SIGKILL in the middle of epoch 3

    # The kill left epochs 1 and 2 and nothing that looks like epoch 3.
    assert [epoch for _, epoch in list_checkpoints(results, "net")] == [1, 2]

    ns = job()
    state = resume_state(results, "net", KEY)
    assert state is not None
    assert (state.epoch, state.initial_epoch, state.iterations) == (2, 2, 2 * ns["STEPS"])
    assert state.metadata["note"] == "test"
    optimizer = state.restore_optimizer()
    assert int(optimizer.iterations.numpy()) == 2 * ns["STEPS"]
    expected_lr = ns["SCHEDULE"].lr(2 * ns["STEPS"], ns["STEPS"], ns["STEPS"] * ns["EPOCHS"])
    assert float(optimizer.learning_rate) == pytest.approx(expected_lr, rel=1e-6)
    momentum = [v for v in optimizer.variables if "momentum" in v.path]
    assert momentum and any(np.abs(v.numpy()).sum() > 0 for v in momentum)  # slots came back, not zeros

    model = state.model
    model.compile(optimizer, "mse")
    ns["fit"](model, results, initial_epoch=state.initial_epoch)
    assert [epoch for _, epoch in list_checkpoints(results, "net")] == [1, 2, 3, 4]
    assert int(model.optimizer.iterations.numpy()) == ns["STEPS"] * ns["EPOCHS"]

    # An uninterrupted run of the same job ends with the same weights.
    reference = ns["fresh"]()
    ns["fit"](reference, tmp_path / "reference")
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_restore_optimizer_with_a_different_optimizer_keeps_the_iteration_count(tmp_path: Path, caplog):
    model = tiny_compiled_model()
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    save_checkpoint(tmp_path, "fc", model, KEY, 1, kdf_iterations=KDF)
    state = resume_state(tmp_path, "fc", KEY)
    adam = state.restore_optimizer(keras.optimizers.Adam(0.1))
    assert int(adam.iterations.numpy()) == 2
    assert "only its iteration count" in caplog.text
    sgd = state.restore_optimizer(keras.optimizers.SGD(0.5))
    assert int(sgd.iterations.numpy()) == 2


def test_uncompiled_checkpoint_has_no_optimizer(tmp_path: Path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    save_checkpoint(tmp_path, "fc", model, KEY, 1, steps_per_epoch=5, kdf_iterations=KDF)
    state = resume_state(tmp_path, "fc", KEY)
    assert state.optimizer_variables is None and state.optimizer_config is None
    assert state.iterations == 5
    with pytest.raises(ModelFileError, match="records no optimizer"):
        state.restore_optimizer()
    assert int(state.restore_optimizer(keras.optimizers.SGD(0.1)).iterations.numpy()) == 5


def test_wrong_key_is_a_model_file_error(tmp_path: Path):
    save_checkpoint(tmp_path, "fc", tiny_compiled_model(), KEY, 1, kdf_iterations=KDF)
    with pytest.raises(ModelFileError):
        resume_state(tmp_path, "fc", "not the key")
