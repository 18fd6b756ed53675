"""Strategies (default, MirroredStrategy on logical CPUs, MultiWorkerMirroredStrategy) and AMP."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from libtlt.errors import UnsupportedError
from tlt_train.distribution import amp_policy, cluster_spec, global_batch_size, is_chief, make_strategy

X = (np.arange(32, dtype="float32").reshape(8, 4) / 32.0).tolist()


def expected_kernel(lr: float = 0.1) -> np.ndarray:
    """One full-batch SGD step on Dense(2, kernel ones, bias zeros) with MSE towards zero targets."""
    x = np.asarray(X, dtype=np.float64)
    prediction = x @ np.ones((4, 2))
    gradient = x.T @ prediction / len(x)  # d/dW of mean over the batch of mean over 2 outputs of p²
    return np.ones((4, 2)) - lr * gradient


def run_python(code: str, env: dict | None = None, timeout: int = 120) -> subprocess.Popen:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen, timeout: int = 120) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


MIRRORED = textwrap.dedent(f'''
    import json
    import numpy as np
    from tlt_train.distribution import make_strategy, global_batch_size
    strategy = make_strategy(2)  # before TensorFlow initializes: splits the CPU into 2 logical devices
    import keras, tensorflow as tf
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_initializer="ones")])
        model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.asarray({X!r}, dtype="float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros((8, 2), "float32"))).batch(global_batch_size(4, strategy))
    model.fit(data, epochs=1, verbose=0)
    print("RESULT", json.dumps({{"replicas": strategy.num_replicas_in_sync, "type": type(strategy).__name__,
          "iterations": int(model.optimizer.iterations.numpy()), "kernel": model.get_weights()[0].tolist()}}))
''')


def test_two_replica_mirrored_strategy_trains_on_cpu():
    result = result_of(run_python(MIRRORED))
    assert result["replicas"] == 2
    assert result["type"] == "MirroredStrategy"
    assert result["iterations"] == 1  # one global batch of 8, split over the two replicas
    np.testing.assert_allclose(result["kernel"], expected_kernel(), rtol=1e-5)


# The strategy alone, without Keras' fit (tlt-train's fit under two workers is tested in
# test_train_cli.py): each worker feeds its own half of the batch through strategy.run and both end
# with the weights of one full-batch step.
WORKER = textwrap.dedent(f'''
    import json, os
    import numpy as np
    from tlt_train.distribution import make_strategy, is_chief
    strategy = make_strategy(1)
    import keras, tensorflow as tf
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, kernel_initializer="ones")])
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)
    x = np.asarray({X!r}, dtype="float32")[index * 4:(index + 1) * 4]

    @tf.function
    def train_step(x):
        def replica_step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(keras.losses.mean_squared_error(tf.zeros((4, 2)), model(x))) / 8.0
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss
        return strategy.reduce("SUM", strategy.run(replica_step, args=(x,)), axis=None)

    loss = train_step(tf.constant(x))
    print("RESULT", json.dumps({{"replicas": strategy.num_replicas_in_sync, "type": type(strategy).__name__,
          "chief": is_chief(), "loss": float(loss), "kernel": model.get_weights()[0].tolist()}}))
''')


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_train_in_sync():
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = [run_python(WORKER, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                          "index": i}})})
               for i in range(2)]
    try:
        results = [result_of(worker, timeout=150) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [r["replicas"] for r in results] == [2, 2]
    assert [r["chief"] for r in results] == [True, False]
    assert {r["type"] for r in results} == {"CollectiveAllReduceStrategy"}  # MultiWorkerMirroredStrategy
    assert results[0]["loss"] == pytest.approx(results[1]["loss"])
    for r in results:
        np.testing.assert_allclose(r["kernel"], expected_kernel(), rtol=1e-5)


def test_cluster_spec_and_chief():
    def env(cluster: dict, task: dict | None = None) -> dict:
        return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task or {}})}

    two = {"worker": ["a:1", "b:2"]}
    assert cluster_spec({}) is None
    assert cluster_spec(env({"worker": ["a:1"]}, {"type": "worker", "index": 0})) is None  # one task: no cluster
    assert cluster_spec(env(two, {"type": "worker", "index": 1}))["task"]["index"] == 1
    assert is_chief({})
    assert is_chief(env(two, {"type": "worker", "index": 0}))
    assert not is_chief(env(two, {"type": "worker", "index": 1}))
    with_chief = {"chief": ["c:0"], "worker": ["a:1"]}
    assert is_chief(env(with_chief, {"type": "chief", "index": 0}))
    assert not is_chief(env(with_chief, {"type": "worker", "index": 0}))
    with pytest.raises(UnsupportedError, match="TF_CONFIG"):
        cluster_spec({"TF_CONFIG": "{not json"})


def test_single_device_and_argument_errors(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    import tensorflow as tf

    strategy = make_strategy(1)
    assert strategy is tf.distribute.get_strategy()
    assert global_batch_size(32, strategy) == 32
    with pytest.raises(UnsupportedError, match="at least 1"):
        make_strategy(0)
    with pytest.raises(UnsupportedError, match="names 1 GPUs but --gpus is 2"):
        make_strategy(2, gpu_index=(0,))
    with pytest.raises(UnsupportedError, match="does not exist"):
        make_strategy(1, gpu_index=(3,))  # this machine has no GPU


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_amp_on_cpu_warns_and_stays_float32(restore_policy, caplog):
    caplog.set_level(logging.INFO)
    assert amp_policy(False, environ={}) == "float32"
    assert "mixed precision" not in caplog.text
    assert amp_policy(True, environ={}) == "float32"
    assert "Volta" in caplog.text
    caplog.clear()
    assert amp_policy(False, environ={"TF_ENABLE_AUTO_MIXED_PRECISION": "1"}) == "float32"
    assert "Volta" in caplog.text
    assert keras.mixed_precision.global_policy().name == "float32"


def test_amp_environment_variable_is_read(restore_policy, monkeypatch, caplog):
    monkeypatch.setenv("TF_ENABLE_AUTO_MIXED_PRECISION", "1")
    assert amp_policy() == "float32"
    assert "Volta" in caplog.text
