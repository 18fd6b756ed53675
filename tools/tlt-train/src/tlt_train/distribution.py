"""Multi-GPU, multi-node and mixed precision for tlt-train.

``make_strategy(gpus, gpu_index)`` returns the ``tf.distribute`` strategy to build and train under:

* ``TF_CONFIG`` set with more than one task → ``MultiWorkerMirroredStrategy``: one process per node
  (or per worker), each using its visible GPUs — or its CPU when it has none; the gradients are
  all-reduced over the network (gRPC/RING on CPU, NCCL on GPUs). Every worker runs the same
  command with its own ``TF_CONFIG`` (``{"cluster": {"worker": ["host1:port", "host2:port"]},
  "task": {"type": "worker", "index": i}}``); worker 0 (or the ``chief`` task) is the chief, the
  only one that writes into the results directory (:func:`is_chief`).
* ``gpus > 1`` → ``MirroredStrategy`` over ``gpus`` local GPUs (those of ``gpu_index`` when given).
  On a machine without GPUs it splits the CPU into ``gpus`` *logical* devices instead, so the same
  data-parallel code path (per-replica batches, all-reduce, synchronized BatchNorm statistics) runs
  and is tested on CPU. Logical devices can only be configured before TensorFlow initializes its
  runtime, so call :func:`make_strategy` first, before building any model or tensor.
* otherwise the default strategy (one device); ``gpu_index`` picks the GPU.

Keras 3.15's ``Model.fit`` has two defects under ``MultiWorkerMirroredStrategy`` (its
``CollectiveAllReduceStrategy``) that :func:`prepare_multi_worker_fit` works around, both in how Keras
*reads* values, not in how it trains: the symbolic build before the first step all-reduces the first
input batch eagerly (which the collective strategy cannot do outside a function — the build needs
shapes only, so the local batch serves), and the per-step logs are reduced with ``axis=0`` although
they are scalars (a mean over workers with ``axis=None`` is what is meant). The gradient all-reduce
itself is TensorFlow's and untouched.

The global batch is ``batch_size_per_gpu × strategy.num_replicas_in_sync`` (:func:`global_batch_size`),
and 003 notes that the learning rate is scaled by the number of GPUs
(``schedule.scaled(num_replicas)``).

Mixed precision: :func:`amp_policy` honours ``--use_amp`` and ``TF_ENABLE_AUTO_MIXED_PRECISION=1``
(000 §8.2) by setting Keras' global ``mixed_float16`` policy — float16 compute, float32 variables,
dynamic loss scaling added by ``Model.compile`` — but only where it helps: the manual says AMP needs
a Volta or newer GPU (compute capability ≥ 7.0). Elsewhere, CPU included, it warns and stays in
float32. Set the policy before building the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from libtlt.errors import UnsupportedError
from libtlt.log import get_logger

__all__ = [
    "AMP_ENV",
    "amp_policy",
    "cluster_spec",
    "global_batch_size",
    "is_chief",
    "make_strategy",
    "prepare_multi_worker_fit",
]

logger = get_logger(__name__)

AMP_ENV = "TF_ENABLE_AUTO_MIXED_PRECISION"
_TRUE = ("1", "true", "yes", "on")


def cluster_spec(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The parsed ``TF_CONFIG`` when it describes a cluster of more than one task, else ``None``."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnsupportedError(f"TF_CONFIG is not valid JSON: {err}") from None
    cluster = config.get("cluster") or {}
    tasks = sum(len(addresses) for addresses in cluster.values())
    return config if tasks > 1 else None


def is_chief(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process writes the outputs: no cluster, the ``chief`` task, or worker 0 without a chief."""
    config = cluster_spec(environ)
    if config is None:
        return True
    task = config.get("task") or {}
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in (config.get("cluster") or {})


def _check_gpus(gpus: int, gpu_index: Sequence[int]) -> None:
    if int(gpus) < 1:
        raise UnsupportedError(f"--gpus must be at least 1, not {gpus}")
    if gpu_index and len(gpu_index) != int(gpus):
        raise UnsupportedError(f"--gpu_index names {len(gpu_index)} GPUs but --gpus is {gpus}")


def _split_cpu(tf: Any, count: int) -> None:
    cpus = tf.config.list_physical_devices("CPU")
    existing = tf.config.get_logical_device_configuration(cpus[0])
    if existing is not None and len(existing) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as err:
        raise UnsupportedError(f"cannot create {count} CPU replicas: TensorFlow is already initialized "
                               "(call make_strategy before building any model)") from err


def make_strategy(gpus: int = 1, gpu_index: Sequence[int] = ()) -> Any:
    """The ``tf.distribute.Strategy`` for ``--gpus``/``--gpu_index`` and ``TF_CONFIG`` (see module doc)."""
    import tensorflow as tf

    _check_gpus(gpus, gpu_index)
    physical = tf.config.list_physical_devices("GPU")
    if gpu_index:
        bad = [i for i in gpu_index if not 0 <= i < len(physical)]
        if bad:
            raise UnsupportedError(f"--gpu_index {bad} does not exist: this machine has {len(physical)} GPU(s)")
        try:
            tf.config.set_visible_devices([physical[i] for i in gpu_index], "GPU")
        except RuntimeError as err:
            raise UnsupportedError("cannot select GPUs: TensorFlow is already initialized") from err
        physical = [physical[i] for i in gpu_index]

    if cluster_spec() is not None:
        if physical and len(physical) < gpus:
            raise UnsupportedError(f"--gpus {gpus} but this worker sees {len(physical)} GPU(s)")
        if not physical and gpus > 1:
            _split_cpu(tf, gpus)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        logger.info("Multi-worker training: %d replicas in sync (chief: %s)", strategy.num_replicas_in_sync,
                    is_chief())
        return strategy

    if gpus == 1:
        return tf.distribute.get_strategy()
    if physical:
        if len(physical) < gpus:
            raise UnsupportedError(f"--gpus {gpus} but only {len(physical)} GPU(s) are visible")
        devices = [f"/gpu:{i}" for i in range(gpus)]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        logger.warning("No GPU found: running %d replicas on logical CPU devices", gpus)
        _split_cpu(tf, gpus)
        devices = [f"/cpu:{i}" for i in range(gpus)]
        strategy = tf.distribute.MirroredStrategy(
            devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device="/cpu:0"))
    logger.info("Training on %d replicas: %s", strategy.num_replicas_in_sync, ", ".join(devices))
    return strategy


def is_multi_worker(strategy: Any) -> bool:
    """Whether ``strategy`` spans several processes (``MultiWorkerMirroredStrategy`` with a cluster)."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def prepare_multi_worker_fit(model: Any, strategy: Any) -> None:
    """Let ``model.fit``/``evaluate`` run under a multi-worker strategy (see module doc); else a no-op."""
    if not is_multi_worker(strategy):
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as keras_trainer

    def local_batch(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local_batch, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build
    if not getattr(keras_trainer.reduce_per_replica, "_tlt_multi_worker", False):
        keras_reduce = keras_trainer.reduce_per_replica

        def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
            if reduction in ("auto", "mean") and is_multi_worker(strategy):
                return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return keras_reduce(values, strategy, reduction)

        reduce_per_replica._tlt_multi_worker = True  # type: ignore[attr-defined]
        keras_trainer.reduce_per_replica = reduce_per_replica


def global_batch_size(batch_size_per_gpu: int, strategy: Any) -> int:
    """``batch_size_per_gpu × replicas`` — what to batch the dataset by under ``strategy``."""
    return int(batch_size_per_gpu) * int(strategy.num_replicas_in_sync)


def _amp_capable_gpus(tf: Any) -> int:
    capable = 0
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        major = (details.get("compute_capability") or (0, 0))[0]
        if major >= 7:
            capable += 1
    return capable


def amp_policy(use_amp: bool = False, environ: Mapping[str, str] | None = None) -> str:
    """Set and return Keras' global dtype policy: ``"mixed_float16"`` when AMP is asked for
    (``use_amp`` or ``TF_ENABLE_AUTO_MIXED_PRECISION=1``) and a Volta+ GPU is present, else ``"float32"``.
    """
    import keras
    import tensorflow as tf

    env = (os.environ if environ is None else environ).get(AMP_ENV, "").strip().lower()
    wanted = bool(use_amp) or env in _TRUE
    policy = "float32"
    if wanted:
        if _amp_capable_gpus(tf):
            policy = "mixed_float16"
            logger.info("Automatic mixed precision enabled (mixed_float16)")
        else:
            logger.warning("Automatic mixed precision needs a GPU of the Volta architecture or newer; none "
                           "found, training in float32")
    keras.mixed_precision.set_global_policy(policy)
    return policy
