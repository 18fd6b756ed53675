"""The training verb, generic over architectures: spec → plan → data → model → fit → checkpoints.

Everything architecture-specific comes from the registry (``libtlt.registry.get_architecture``):
the spec schema and validation, the :class:`~libtlt.registry.TrainPlan` (epochs, batch, optimizer,
schedule, regularizer, checkpoint interval, pretrained file), the datasets and the model metadata
(:class:`~libtlt.registry.TrainingData`), the model, the loss and the metrics. This module wires
them to the shared machinery of tlt-train:

1. the distribution strategy (``--gpus``, ``--gpu_index``, ``TF_CONFIG``) and the AMP policy —
   first, before TensorFlow builds anything;
2. resume: the newest ``RESULTS_DIR/weights/<name>_<NNN>.tlt`` is reloaded with its optimizer state,
   so the epoch numbering and the learning-rate schedule continue where the run stopped;
3. otherwise a fresh model, initialized from ``pretrained_model_path`` by layer name and shape (the
   whole graph of a pruned ``.tlt``), regularized as the spec says;
4. ``model.fit`` with the divergence guard (a NaN or exploding loss stops the run, exit status 2), the
   checkpoint, status.json, CSV, TensorBoard and progress callbacks.

Any failure ends status.json with a ``FAILED`` line (``INTERRUPTED`` for SIGINT/SIGTERM) holding the
one-line message, never at ``STARTED``; TensorFlow's error on an undecodable image becomes a
``DataError`` naming the file. A run that fails before training starts removes a results folder it
created. The spec text stored in the models has the model key taken out.

Outputs (chief only in a multi-worker run): the architecture's extra files (``classmap.json``),
checkpoints every ``checkpoint_interval`` epochs and after the last one (the last is the final
model, named as 000 names it, e.g. ``weights/resnet_080.tlt``), ``status.json``, ``training.csv``,
``events/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libtlt.errors import DataError, ModelFileError, TltError, UnsupportedError
from libtlt.io.atomic import write_text
from libtlt.log import get_logger
from libtlt.registry import TrainPlan, resolve
from libtlt.spec import LoadedSpec, load_spec

logger = get_logger("tlt_train.train")

#: Metadata key with which tlt-prune marks a pruned model: its whole graph is loaded for retraining.
PRUNED_KEY = "pruned"


@dataclass
class TrainResult:
    """What one ``tlt-train`` run did."""

    final_model: Path
    initial_epoch: int
    epochs: int
    classes: list[str]
    #: Wall-clock seconds of ``model.fit`` (callbacks included) and the images it trained on.
    fit_seconds: float = 0.0
    images_trained: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.images_trained / self.fit_seconds if self.fit_seconds > 0 else 0.0


def check_architecture(name: str) -> Any:
    """The registered architecture ``name``; one that does not train yet says so (``libtlt.registry.resolve``)."""
    return resolve("tlt-train", "train", name)


def load_experiment_spec(arch: Any, path: str | Path) -> LoadedSpec[Any]:
    """Load and validate ``path`` with the architecture's schema and rules."""
    spec: LoadedSpec[Any] = load_spec(path, arch.spec_message())
    arch.validate(spec)
    return spec


def train(arch_name: str, *, experiment_spec_file: str | Path, results_dir: str | Path, key: str, gpus: int = 1,
          gpu_index: Sequence[int] = (), use_amp: bool = False, strict: bool = False, progress: bool = True,
          extra_callbacks: Sequence[Any] = (), kdf_iterations: int | None = None,
          model_name: str | None = None, pretrained_model: str | Path | None = None) -> TrainResult:
    """Train ``arch_name`` as ``experiment_spec_file`` says, writing everything into ``results_dir``.

    ``model_name`` (``-n``, 001): the final model is also written as ``weights/<model_name>.tlt``, the
    name the later steps of a Makefile refer to (e.g. ``resnet18_detector_pruned``). ``pretrained_model``
    (``-m``, 000 §8.6 for the SSD family) replaces the spec's pretrained model: weights by name, or a pruned
    model's whole graph.

    Re-running after an interruption resumes from the newest checkpoint. ``extra_callbacks`` run
    after tlt-train's own (e.g. a benchmark's timer); ``kdf_iterations`` lowers the model files' key
    derivation cost (tests only).
    """
    arch = check_architecture(arch_name)
    check_model_name(model_name)
    spec = load_experiment_spec(arch, experiment_spec_file)
    plan: TrainPlan = arch.train_plan(spec)
    if pretrained_model is not None:
        if not Path(pretrained_model).is_file():
            raise DataError("-m: model file not found", location=pretrained_model)
        plan = dataclasses.replace(plan, pretrained_model_path=str(pretrained_model))
    if model_name and re.fullmatch(rf"{re.escape(plan.model_name)}_\d{{3,}}(\.tlt)?", model_name):
        raise UnsupportedError(f"-n/--model_name {model_name!r} would look like a checkpoint to resume from; "
                               "choose another name")
    if plan.final_model_path:  # before hours of training: the folder the spec names for the final model
        Path(plan.final_model_path).parent.mkdir(parents=True, exist_ok=True)
    results = Path(results_dir)
    created = not results.exists()
    results.mkdir(parents=True, exist_ok=True)
    try:
        with _sigterm_as_exit():
            return _run(arch, spec, plan, results, key=key, gpus=gpus, gpu_index=gpu_index, use_amp=use_amp,
                        strict=strict, progress=progress, extra_callbacks=extra_callbacks,
                        kdf_iterations=kdf_iterations, model_name=model_name)
    except BaseException as err:
        error = training_error(err)
        _record_failure(results, error, created=created, key=key)
        if error is err:
            raise
        raise error from err


def _run(arch: Any, spec: LoadedSpec[Any], plan: TrainPlan, results: Path, *, key: str, gpus: int,
         gpu_index: Sequence[int], use_amp: bool, strict: bool, progress: bool, extra_callbacks: Sequence[Any],
         kdf_iterations: int | None, model_name: str | None) -> TrainResult:
    """The run itself, once the results folder exists (``train`` reports its failures)."""
    from tlt_train.distribution import amp_policy, global_batch_size, is_chief, make_strategy, prepare_multi_worker_fit

    strategy = make_strategy(gpus, tuple(gpu_index))  # before TensorFlow builds anything
    policy = amp_policy(use_amp)
    chief = is_chief()
    import keras

    from tlt_train.checkpoints import CheckpointCallback, resume_state
    from tlt_train.divergence import DivergenceGuard
    from tlt_train.status import training_callbacks

    saving: dict[str, Any] = {} if kdf_iterations is None else {"kdf_iterations": kdf_iterations}
    batch_size = global_batch_size(plan.batch_size_per_gpu, strategy)
    with strategy.scope():
        state = resume_state(results, plan.model_name, key, architecture=arch.name)
    initial_epoch = state.epoch if state is not None else 0
    if plan.random_seed is not None and state is None:
        keras.utils.set_random_seed(plan.random_seed)
    # A resumed run draws a new data order instead of replaying the first epochs'.
    seed = (plan.random_seed or 0) + initial_epoch
    data = arch.training_data(spec, batch_size=batch_size, seed=seed, strict=strict)
    metadata = _private_metadata(data.metadata, spec, key)
    if chief:
        for name, text in data.files.items():
            write_text(results / name, text)
    logger.info("Training %s on %d images of %d classes: %d epochs of %d steps, batch %d (%d per replica x %d), "
                "%s", arch.name, data.num_samples, len(data.classes), plan.epochs, data.steps_per_epoch, batch_size,
                plan.batch_size_per_gpu, strategy.num_replicas_in_sync, policy)

    if state is not None:
        stored = state.metadata.get("classes")
        if stored is not None and list(stored) != list(data.classes):
            raise DataError(f"the checkpoint was trained on classes {stored}, the dataset now has {list(data.classes)}; "
                            "use a new results directory", location=state.path)
        if state.epoch >= plan.epochs:
            logger.info("Training already complete: %s holds epoch %d of %d", state.path, state.epoch, plan.epochs)
            final = _name_final_model(state.path, model_name, plan.final_model_path) if chief else state.path
            return TrainResult(final, state.epoch, plan.epochs, list(data.classes))

    with strategy.scope():
        model = state.model if state is not None else _fresh_model(arch, spec, plan, data.classes, key)
        _regularize(model, plan)
        # QAT first: the fake-quantized twin is what a training view (FasterRCNN's ROI sampling) is built around.
        qat = _quantization_aware(model, plan, state.metadata if state is not None else None)
        if qat is not None:
            model = qat.model
        fit_model, saving_view = _training_view(arch, spec, model)
        if qat is not None:
            saving_view = _qat_saving_view(qat, saving_view)
        if state is not None:  # slots in the order the fitted model's variables had when it was saved
            optimizer = state.restore_optimizer(variables=fit_model.trainable_variables)
        else:
            optimizer = _optimizer(plan, data.steps_per_epoch, strategy.num_replicas_in_sync)
        # A model with its own compute_loss (a training_view's) has no loss or metrics to compile: Keras would try
        # to pair its outputs with the targets by name.
        loss, metrics = arch.loss(spec), arch.metrics(spec)
        fit_model.compile(optimizer=optimizer, **({"loss": loss} if loss is not None else {}),
                          **({"metrics": metrics} if metrics else {}))
    prepare_multi_worker_fit(fit_model, strategy)
    if logger.isEnabledFor(10):
        model.summary(print_fn=lambda line, **_: logger.debug(line))

    checkpoint = CheckpointCallback(results, plan.model_name, key, interval=plan.checkpoint_interval,
                                    metadata=metadata, is_chief=chief, saving_view=saving_view, **saving)
    # Optional architecture hook: its callbacks run first, so what they add to the epoch logs (e.g. a
    # detector's validation mAP) reaches status.json and the CSV log.
    hook = getattr(arch, "training_callbacks", None)
    arch_callbacks = list(hook(spec, data, model)) if hook is not None else []
    callbacks = [DivergenceGuard(), *arch_callbacks,
                 *training_callbacks(results, batch_size=batch_size, is_chief=chief, progress=progress), checkpoint,
                 *extra_callbacks]
    started = time.perf_counter()
    try:
        history = fit_model.fit(data.train, epochs=plan.epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=data.steps_per_epoch, validation_data=data.validation,
                            validation_steps=data.validation_steps, callbacks=callbacks, shuffle=False, verbose=0)
    except Exception as err:
        error = training_error(err, data.images)
        if error is err:
            raise
        raise error from err
    seconds = time.perf_counter() - started
    final = checkpoint.saved[-1] if checkpoint.saved else results / "weights" / f"{plan.model_name}_{plan.epochs:03d}.tlt"
    if chief:
        final = _name_final_model(final, model_name, plan.final_model_path)
    logger.info("Training finished; final model: %s", final)
    epochs_run = plan.epochs - initial_epoch
    return TrainResult(final, initial_epoch, plan.epochs, list(data.classes), fit_seconds=seconds,
                       images_trained=epochs_run * data.steps_per_epoch * batch_size,
                       history={k: [float(v) for v in values] for k, values in history.history.items()})


class Terminated(SystemExit):
    """SIGTERM during training (a job scheduler's stop): exit status 143 after status.json says so."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while training, unless someone else already handles it.

    Why: the default action kills the process without running any Python, leaving status.json at
    STARTED/RUNNING; an exception lets ``train`` record INTERRUPTED and the atomic writers clean up.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def training_error(err: BaseException, images: Sequence[str] = ()) -> BaseException:
    """The error to report for ``err``: TensorFlow's failure on an undecodable image becomes a
    ``DataError`` naming the file (exit status 2); anything else is returned unchanged.

    The file comes from the error (``libtlt.data.image_check.checked_decode``) or, for a decoder error
    that names none, from decoding ``images`` (the training data's files) until one fails."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(err, tf.errors.OpError):
        return err
    from libtlt.data.image_check import image_error

    return image_error(str(err.message or err), images) or err


def _record_failure(results: Path, error: BaseException, *, created: bool, key: str) -> None:
    """Leave ``status.json`` with a FAILED (or INTERRUPTED) line naming the error, never STARTED; a
    results folder this run created and never started training in is removed instead."""
    from tlt_train.distribution import is_chief
    from tlt_train.status import STATUS_NAME, append_status, redact

    try:
        if not is_chief():
            return
    except TltError:
        return
    interrupted = isinstance(error, (KeyboardInterrupt, Terminated))
    if isinstance(error, TltError):
        message = error.one_line()
    elif isinstance(error, Terminated):
        message = "Terminated (SIGTERM)"
    elif isinstance(error, KeyboardInterrupt):  # run_tool's handler raises one that says which signal
        one_line = getattr(error, "one_line", None)
        message = str(one_line()) if callable(one_line) else "Interrupted (SIGINT)"
    elif isinstance(error, SystemExit):
        message = f"Exited with status {error.code}"
    else:
        lines = str(error).strip().splitlines()
        message = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    message = redact(message, [key])
    if interrupted:
        logger.error("%s; status.json records it", message)
    try:
        if created and not (results / STATUS_NAME).exists():
            shutil.rmtree(results, ignore_errors=True)  # nothing useful in it: leave no empty results folder
            return
        append_status(results, {"status": "INTERRUPTED" if interrupted else "FAILED", "verbosity": "ERROR",
                                "message": message})
    except OSError as err:  # e.g. the disk that failed the run: the original error is what matters
        logger.warning("Could not record the failure in %s: %s", results / STATUS_NAME, err.strerror or err)


def _private_metadata(metadata: Mapping[str, Any], spec: LoadedSpec[Any], key: str) -> dict[str, Any]:
    """The architecture's model metadata with the model key taken out of the stored spec text."""
    from libtlt.spec.redact import redact_spec_text

    result = dict(metadata)
    text = result.get("spec")
    if isinstance(text, str):
        fields = spec.message.DESCRIPTOR.fields_by_name
        spec_key = getattr(spec.message, "key", None) if "key" in fields else None
        result["spec"] = redact_spec_text(text, [key, spec_key], top_level_key="key" in fields)
    return result


def check_model_name(model_name: str | None) -> None:
    """``-n`` names a file inside ``weights/``: no folders, no extension games."""
    if model_name is None:
        return
    if not model_name or model_name in (".", "..") or any(c in model_name for c in "/\\\0"):
        raise UnsupportedError(f"-n/--model_name must be a plain file name (no folders), not {model_name!r}")


def _name_final_model(final: Path, model_name: str | None, spec_path: str | None = None) -> Path:
    """Copy the final checkpoint to ``weights/<model_name>.tlt`` and to the spec's ``spec_path`` (FasterRCNN's
    ``output_model``), atomically; return the ``-n`` copy's path, else the checkpoint's."""
    from libtlt.io.atomic import write_bytes

    if spec_path and Path(spec_path).resolve() != final.resolve():
        write_bytes(Path(spec_path), final.read_bytes())
        logger.info("Final model also saved as %s (the spec's output model)", spec_path)
    if not model_name:
        return final
    named = final.parent / f"{model_name.removesuffix('.tlt')}.tlt"
    if named != final:
        write_bytes(named, final.read_bytes())
    logger.info("Final model saved as %s", named)
    return named


def _fresh_model(arch: Any, spec: LoadedSpec[Any], plan: TrainPlan, classes: Sequence[str], key: str) -> Any:
    """A new model: built from the spec, or a pruned model's whole graph; pretrained weights loaded."""
    from tlt_train.pretrained import load_pretrained

    path = plan.pretrained_model_path
    if path and (plan.load_graph or _is_pruned_tlt(path, key)):
        if not plan.load_graph:
            logger.info("%s is a pruned model: its whole graph is loaded (as load_graph: true would)", path)
        report = load_pretrained(None, path, key, load_graph=True)
        model = report.model
        # Pruning never changes outputs: they must be those the spec's model has for these classes.
        found = [tuple(o.shape[1:]) for o in model.outputs]
        wanted = [tuple(o.shape[1:]) for o in arch.build(spec, classes).outputs]
        if found != wanted:
            raise DataError(f"the pretrained model's outputs {found} are not those of this spec's model for "
                            f"{len(classes)} classes {wanted}: was it trained for other classes or input?",
                            location=path)
        return model
    model = arch.build(spec, classes)
    if path:
        report = load_pretrained(model, path, key)
        if not report.loaded:
            logger.warning("No layer of %s matched the model by name and shape: training from scratch", path)
    return model


def _is_pruned_tlt(path: str | Path, key: str) -> bool:
    """Whether ``path`` is a .tlt that tlt-prune marked as pruned (a wrong key raises ``ModelFileError``)."""
    from libtlt.io.modelfile import load_model_file

    path = Path(path)
    if not path.is_file():
        raise ModelFileError("pretrained model file not found", location=path)
    with open(path, "rb") as handle:
        if handle.read(8) != b"TLTMODEL":
            return False
    return bool(load_model_file(path, key).metadata.get(PRUNED_KEY))


def _training_view(arch: Any, spec: LoadedSpec[Any], model: Any) -> tuple[Any, Any]:
    """``(model to fit, checkpoint saving view)``: the architecture's optional ``training_view`` hook for models
    trained through another graph than the one saved (FasterRCNN samples its ROIs against the ground truth inside
    the fitted graph); otherwise the model itself, saved as is."""
    view = getattr(arch, "training_view", None)
    if view is None:
        return model, None
    fit_model, saving_view = view(spec, model)
    return fit_model, saving_view


def _qat_saving_view(qat: Any, arch_view: Any) -> Any:
    """What a QAT run saves: the float model and the learned ranges (``QatModel.saving_view``), from the fitted
    model itself or, under a training view, from the view's inference model (the QAT twin)."""
    if arch_view is None:
        return qat.saving_view

    def view(trained: Any) -> tuple[Any, dict[str, Any]]:
        twin, metadata = arch_view(trained)
        float_model, qat_metadata = qat.saving_view(twin)
        return float_model, {**metadata, **qat_metadata}
    return view


def _quantization_aware(model: Any, plan: TrainPlan, resumed: dict[str, Any] | None) -> Any:
    """The QAT twin of ``model`` (``libtlt.qat.QatModel``) when the spec enables QAT or the checkpoint
    being resumed was trained with it (its learned ranges carry on); ``None`` otherwise."""
    from libtlt.qat.metadata import stored_ranges
    from libtlt.qat.rewrite import build_qat_model

    ranges = stored_ranges(resumed) if resumed is not None else None
    if not plan.enable_qat and ranges is None:
        return None
    if ranges is not None and not plan.enable_qat:
        logger.info("The checkpoint was trained with QAT: QAT stays on although the spec does not enable it")
    qat = build_qat_model(model, ranges)
    logger.info("Quantization-aware training: ReLU6 activations, %d fake-quantized layer inputs%s",
                len(qat.quantizers()), f" (ranges resumed for {len(ranges)})" if ranges else "")
    return qat


def _regularize(model: Any, plan: TrainPlan) -> None:
    from tlt_train.regularizers import apply_regularizer

    apply_regularizer(model, plan.regularizer or "NO_REG", plan.regularizer_weight, plan.regularizer_scope)


def _optimizer(plan: TrainPlan, steps_per_epoch: int, replicas: int) -> Any:
    from tlt_train.optimizers import make_optimizer
    from tlt_train.schedules import make_schedule

    schedule = make_schedule(plan.lr_schedule, **dict(plan.lr_params))
    if replicas > 1:  # 003: "the effective learning rate is learning_rate * n_gpu"
        schedule = schedule.scaled(replicas)
    keras_schedule = schedule.keras_schedule(steps_per_epoch, max(1, plan.epochs * steps_per_epoch))
    return make_optimizer(plan.optimizer, keras_schedule, **dict(plan.optimizer_params))
