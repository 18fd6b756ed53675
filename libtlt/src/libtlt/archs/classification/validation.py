"""Semantic checks of a classification spec (000 §7.1 prototxt, 003 YAML) and its typed values.

The schema (``classification.proto``) accepts both manuals' layouts; this module

* checks the "Supported Values" of the manuals (:func:`validate`), raising ``SpecError`` at the
  field's ``file:line:column``;
* parses the settings written as comma-separated strings or lists (:func:`input_image_size`,
  :func:`annealing_points`, :func:`reg_scope`) without ``eval``;
* folds a 003-layout spec into the 000 layout (:func:`canonical_experiment`) so the rest of the code
  reads one set of names.

Freeze-block IDs come from ``libtlt.spec.backbones``, shared with every architecture.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from libtlt.spec import LoadedSpec
from libtlt.spec.backbones import check_freeze_block
from libtlt.spec.protos import classification_pb2 as pb

#: Backbone → valid ``n_layers`` (000 §7.1 comments); ``None``: n_layers is not used.
N_LAYERS: dict[str, tuple[int, ...] | None] = {
    "resnet": (10, 18, 34, 50, 101),
    "vgg": (16, 19),
    "darknet": (19, 53),
    "googlenet": None,
    "alexnet": None,
    "mobilenet_v1": None,
    "mobilenet_v2": None,
    "squeezenet": None,
    # 003: "efficientnet-b0 to efficientnet-b5"; the underscore spelling is accepted as well.
    **{f"efficientnet{sep}b{i}": None for sep in ("-", "_") for i in range(6)},
}


#: Learning rate scheduler → the parameters that must be given with it (000 §7.1 comments, 003).
SCHEDULER_PARAMS: dict[str, tuple[str, ...]] = {
    "step": ("learning_rate", "step_size", "gamma"),
    "soft_anneal": ("learning_rate", "soft_start", "annealing_points", "annealing_divider"),
    "cosine": ("learning_rate", "soft_start"),
}

OPTIMIZERS = ("sgd", "adam", "rmsprop")
REGULARIZERS = ("L1", "L2", "None")
PREPROCESS_MODES = ("caffe", "torch", "tf")
TOP_K = (1, 3, 5)
NORMALIZERS = ("max", "L2")
EQUALIZATION_CRITERIA = ("arithmetic_mean", "geometric_mean", "union", "intersection")
DATA_TYPES = ("fp32", "fp16", "int8")

# The two layouts' names of one section: (000 prototxt, 003 YAML).
_SECTIONS = (("model_config", "model"), ("train_config", "train"), ("eval_config", "evaluate"))


# ------------------------------------------------------------------------------------ typed values


def _parts(values: Sequence[str]) -> list[str]:
    """``["3,224,224"]`` or ``["3", "224", "224"]`` → ``["3", "224", "224"]``."""
    return [part.strip() for value in values for part in value.split(",")]


def input_image_size(model: pb.ModelConfig) -> tuple[int, int, int]:
    """``(C, H, W)`` from ``input_image_size`` ("3,224,224" or [3, 224, 224]); ValueError if malformed."""
    parts = _parts(model.input_image_size)
    if len(parts) != 3:
        raise ValueError(f"expected \"C,H,W\" (three integers), got {','.join(parts)!r}")
    try:
        c, h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected \"C,H,W\" (three integers), got {','.join(parts)!r}") from None
    return c, h, w


def annealing_points(lr: pb.LRConfig) -> list[float]:
    """``annealing_points`` as floats ("0.3, 0.6, 0.8" or a list); ValueError if one is not a number."""
    points = []
    for part in _parts(lr.annealing_points):
        try:
            points.append(float(part))
        except ValueError:
            raise ValueError(f"expected numbers separated by commas, got {part!r}") from None
    return points


def reg_scope(reg: pb.RegConfig) -> list[str]:
    """Layer types the regularizer applies to ("Conv2D,Dense" or a list)."""
    return [part for part in _parts(reg.scope) if part]


def backbone_family(arch: str) -> str:
    """``efficientnet-b3`` → ``efficientnet``; other names are their own family."""
    return "efficientnet" if arch.startswith("efficientnet") else arch


def canonical_experiment(experiment: pb.Experiment) -> pb.Experiment:
    """A copy of ``experiment`` in the 000 layout, whichever layout it was written in.

    ``model``/``train``/``evaluate`` are merged into ``model_config``/``train_config``/``eval_config``;
    ``data``'s dataset paths move to ``train_config``; ``num_epochs`` becomes ``n_epochs``,
    ``evaluate.dataset_path`` becomes ``eval_dataset_path`` and ``optim_config.optimizer`` fills
    ``train_config.optimizer``; comma-separated strings are split into one element per value. When a
    setting is written under both names the 000 one wins (:func:`validate` rejects such specs).
    """
    out = pb.Experiment()
    out.CopyFrom(experiment)
    for old, new in _SECTIONS:
        if out.HasField(new):
            merged = getattr(out, new).__class__()
            merged.CopyFrom(getattr(out, new))
            merged.MergeFrom(getattr(out, old))
            getattr(out, old).CopyFrom(merged)
            out.ClearField(new)
    model, train, evaluate = out.model_config, out.train_config, out.eval_config
    if out.HasField("data"):
        for name in ("train_dataset_path", "val_dataset_path"):
            if out.data.HasField(name) and not train.HasField(name):
                setattr(train, name, getattr(out.data, name))
    if out.HasField("train_config"):
        if train.HasField("num_epochs") and not train.HasField("n_epochs"):
            train.n_epochs = train.num_epochs
        train.ClearField("num_epochs")
        if train.optim_config.HasField("optimizer") and not train.HasField("optimizer"):
            train.optimizer = train.optim_config.optimizer
        if train.lr_config.annealing_points:
            points = _parts(train.lr_config.annealing_points)
            del train.lr_config.annealing_points[:]
            train.lr_config.annealing_points.extend(points)
        if train.reg_config.scope:
            scope = reg_scope(train.reg_config)
            del train.reg_config.scope[:]
            train.reg_config.scope.extend(scope)
    if evaluate.HasField("dataset_path"):
        if not evaluate.HasField("eval_dataset_path"):
            evaluate.eval_dataset_path = evaluate.dataset_path
        evaluate.ClearField("dataset_path")
    if model.input_image_size:
        parts = _parts(model.input_image_size)
        del model.input_image_size[:]
        model.input_image_size.extend(parts)
    return out


# -------------------------------------------------------------------------------------- validation


def validate(spec: LoadedSpec[pb.Experiment]) -> None:
    """Raise ``SpecError`` at the first setting outside the manuals' supported values."""
    exp = spec.message
    _check_layouts(spec, exp)
    model_name = "model" if exp.HasField("model") else "model_config"
    if not exp.HasField(model_name):
        raise spec.error("model_config", "the spec has no model_config (or model) section")
    _validate_model(spec, getattr(exp, model_name), model_name)
    channels = input_image_size(getattr(exp, model_name))[0]
    train_name = "train" if exp.HasField("train") else "train_config"
    if exp.HasField(train_name):
        _validate_train(spec, getattr(exp, train_name), train_name)
    eval_name = "evaluate" if exp.HasField("evaluate") else "eval_config"
    if exp.HasField(eval_name):
        _validate_eval(spec, getattr(exp, eval_name), eval_name)
    if exp.HasField("data"):
        _validate_data(spec, exp.data, channels)
    if exp.HasField("augment"):
        _fraction(spec, exp.augment, "augment", "mixup_alpha")
    if exp.HasField("prune"):
        _validate_prune(spec, exp.prune)
    if exp.export.HasField("data_type"):
        _one_of(spec, "export.data_type", exp.export.data_type, DATA_TYPES)


def _check_layouts(spec: LoadedSpec[pb.Experiment], exp: pb.Experiment) -> None:
    for old, new in _SECTIONS:
        if exp.HasField(old) and exp.HasField(new):
            raise spec.error(new, f"'{new}' (TAO layout) and '{old}' (TLT 2.0 layout) are the same section; "
                                  "write only one of them")
    for name in ("train_config", "train"):
        train = getattr(exp, name)
        if not exp.HasField(name):
            continue
        if train.HasField("n_epochs") and train.HasField("num_epochs"):
            raise spec.error(f"{name}.num_epochs", "n_epochs and num_epochs are the same setting; write only one")
        if train.HasField("optimizer") and train.HasField("optim_config"):
            raise spec.error(f"{name}.optim_config", "optimizer and optim_config both choose the optimizer; "
                                                    "write only one")
        for path in ("train_dataset_path", "val_dataset_path"):
            if train.HasField(path) and exp.data.HasField(path):
                raise spec.error(f"data.{path}", f"{path} is also set in {name}; write it only once")
    for name in ("eval_config", "evaluate"):
        evaluate = getattr(exp, name)
        if evaluate.HasField("eval_dataset_path") and evaluate.HasField("dataset_path"):
            raise spec.error(f"{name}.dataset_path", "eval_dataset_path and dataset_path are the same setting; "
                                                     "write only one")


def _validate_model(spec: LoadedSpec[pb.Experiment], model: pb.ModelConfig, name: str) -> None:
    if not model.arch:
        raise spec.error(f"{name}.arch", f"arch is required (one of: {', '.join(N_LAYERS)})")
    arch = model.arch
    if arch not in N_LAYERS:
        raise spec.error(f"{name}.arch", _unknown(arch, list(N_LAYERS)))
    layers = N_LAYERS[arch]
    if layers is not None and model.n_layers not in layers:
        raise spec.error(f"{name}.n_layers", f"{arch} supports n_layers {', '.join(map(str, layers))}, "
                                             f"got {model.n_layers}")
    if not model.input_image_size:
        raise spec.error(f"{name}.input_image_size", 'input_image_size is required ("C,H,W", e.g. "3,224,224")')
    try:
        c, h, w = input_image_size(model)
    except ValueError as err:
        raise spec.error(f"{name}.input_image_size", str(err)) from None
    if c not in (1, 3):
        raise spec.error(f"{name}.input_image_size", f"the channel count C must be 1 or 3, got {c}")
    if h < 16 or w < 16:
        raise spec.error(f"{name}.input_image_size", f"height and width must be >= 16, got {h}x{w}")
    for index, block in enumerate(model.freeze_blocks):
        try:
            check_freeze_block(backbone_family(arch), block)
        except ValueError as err:
            raise spec.error(f"{name}.freeze_blocks[{index}]", str(err)) from None
    if not 0.0 <= model.dropout < 1.0:
        raise spec.error(f"{name}.dropout", f"must be in [0, 1), got {model.dropout:g}")


def _validate_train(spec: LoadedSpec[pb.Experiment], train: pb.TrainConfig, name: str) -> None:
    for field in ("batch_size_per_gpu", "n_epochs", "num_epochs", "n_workers", "checkpoint_interval"):
        if train.HasField(field) and getattr(train, field) <= 0:
            raise spec.error(f"{name}.{field}", f"must be > 0, got {getattr(train, field)}")
    if train.HasField("optimizer"):
        _one_of(spec, f"{name}.optimizer", train.optimizer, OPTIMIZERS)
    if train.HasField("optim_config"):
        if not train.optim_config.HasField("optimizer"):
            raise spec.error(f"{name}.optim_config", f"optimizer is required (one of: {', '.join(OPTIMIZERS)})")
        _one_of(spec, f"{name}.optim_config.optimizer", train.optim_config.optimizer, OPTIMIZERS)
    if not 0.0 <= train.label_smoothing < 1.0:
        raise spec.error(f"{name}.label_smoothing", f"must be in [0, 1), got {train.label_smoothing:g}")
    if train.HasField("lr_config"):
        _validate_lr(spec, train.lr_config, f"{name}.lr_config")
    if train.HasField("reg_config"):
        _validate_reg(spec, train.reg_config, f"{name}.reg_config")
    if train.HasField("bn_config"):
        _fraction(spec, train.bn_config, f"{name}.bn_config", "momentum")
        if train.bn_config.epsilon <= 0:
            raise spec.error(f"{name}.bn_config.epsilon", f"must be > 0, got {train.bn_config.epsilon:g}")


def _validate_lr(spec: LoadedSpec[pb.Experiment], lr: pb.LRConfig, name: str) -> None:
    if not lr.HasField("scheduler"):
        raise spec.error(f"{name}.scheduler", f"scheduler is required (one of: {', '.join(SCHEDULER_PARAMS)})")
    _one_of(spec, f"{name}.scheduler", lr.scheduler, tuple(SCHEDULER_PARAMS))
    for param in SCHEDULER_PARAMS[lr.scheduler]:
        given = bool(lr.annealing_points) if param == "annealing_points" else lr.HasField(param)
        if not given:
            raise spec.error(f"{name}.scheduler", f"the {lr.scheduler} scheduler needs {param}")
    if lr.HasField("learning_rate") and lr.learning_rate <= 0:
        raise spec.error(f"{name}.learning_rate", f"must be > 0, got {lr.learning_rate:g}")
    if lr.HasField("soft_start") and not 0.0 < lr.soft_start < 1.0:
        raise spec.error(f"{name}.soft_start", f"must be in (0, 1), got {lr.soft_start:g}")
    if lr.annealing_points:
        try:
            points = annealing_points(lr)
        except ValueError as err:
            raise spec.error(f"{name}.annealing_points", str(err)) from None
        if any(not 0.0 < p < 1.0 for p in points):
            raise spec.error(f"{name}.annealing_points", f"each point must be in (0, 1), got {points}")
        if points != sorted(points):
            raise spec.error(f"{name}.annealing_points", f"points must be in increasing order, got {points}")
    if lr.HasField("annealing_divider") and lr.annealing_divider <= 1.0:
        raise spec.error(f"{name}.annealing_divider", f"must be > 1.0, got {lr.annealing_divider:g}")
    if lr.HasField("step_size") and not 0 < lr.step_size < 100:
        raise spec.error(f"{name}.step_size", f"must be in (0, 100) (percent of training), got {lr.step_size}")
    if lr.HasField("gamma") and not 0.0 < lr.gamma < 1.0:
        raise spec.error(f"{name}.gamma", f"must be in (0, 1), got {lr.gamma:g}")
    if lr.HasField("min_lr_ratio") and not 0.0 <= lr.min_lr_ratio < 1.0:
        raise spec.error(f"{name}.min_lr_ratio", f"must be in [0, 1), got {lr.min_lr_ratio:g}")


def _validate_reg(spec: LoadedSpec[pb.Experiment], reg: pb.RegConfig, name: str) -> None:
    if reg.HasField("type"):
        match = [r for r in REGULARIZERS if r.lower() == reg.type.lower()]
        if not match:
            raise spec.error(f"{name}.type", _unknown(reg.type, REGULARIZERS))
        if match[0] != "None" and reg.weight_decay <= 0:
            raise spec.error(f"{name}.weight_decay", f"an {match[0]} regularizer needs weight_decay > 0, "
                                                     f"got {reg.weight_decay:g}")
    if reg.weight_decay < 0:
        raise spec.error(f"{name}.weight_decay", f"must be >= 0, got {reg.weight_decay:g}")
    if reg.scope and not reg_scope(reg):
        raise spec.error(f"{name}.scope", "scope lists no layer type")


def _validate_eval(spec: LoadedSpec[pb.Experiment], evaluate: pb.EvalConfig, name: str) -> None:
    if evaluate.HasField("top_k") and evaluate.top_k not in TOP_K:
        raise spec.error(f"{name}.top_k", f"must be one of {', '.join(map(str, TOP_K))}, got {evaluate.top_k}")
    for field in ("batch_size", "n_workers"):
        if evaluate.HasField(field) and getattr(evaluate, field) <= 0:
            raise spec.error(f"{name}.{field}", f"must be > 0, got {getattr(evaluate, field)}")
    if evaluate.HasField("conf_threshold") and not 0.0 <= evaluate.conf_threshold <= 1.0:
        raise spec.error(f"{name}.conf_threshold", f"must be in [0, 1], got {evaluate.conf_threshold:g}")


def _validate_data(spec: LoadedSpec[pb.Experiment], data: pb.DataConfig, channels: int) -> None:
    _one_of(spec, "data.preprocess_mode", data.preprocess_mode, PREPROCESS_MODES)
    if data.image_mean and len(data.image_mean) != channels:
        raise spec.error("data.image_mean", f"needs one value per input channel ({channels}), "
                                            f"got {len(data.image_mean)}")


def _validate_prune(spec: LoadedSpec[pb.Experiment], prune: pb.PruneConfig) -> None:
    _one_of(spec, "prune.normalizer", prune.normalizer, NORMALIZERS)
    _one_of(spec, "prune.equalization_criterion", prune.equalization_criterion, EQUALIZATION_CRITERIA)
    for field in ("granularity", "min_num_filters"):
        if getattr(prune, field) <= 0:
            raise spec.error(f"prune.{field}", f"must be > 0, got {getattr(prune, field)}")
    if prune.threshold < 0:
        raise spec.error("prune.threshold", f"must be >= 0, got {prune.threshold:g}")


def _fraction(spec: LoadedSpec[pb.Experiment], message: object, name: str, field: str) -> None:
    value = getattr(message, field)
    if not 0.0 <= value < 1.0:
        raise spec.error(f"{name}.{field}", f"must be in [0, 1), got {value:g}")


def _one_of(spec: LoadedSpec[pb.Experiment], path: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise spec.error(path, _unknown(value, valid))


def _unknown(value: str, valid: Sequence[str]) -> str:
    text = f"unknown value {value!r} (valid: {', '.join(valid)})"
    close = difflib.get_close_matches(value, list(valid), n=1, cutoff=0.6)
    if close:
        text += f"; did you mean {close[0]!r}?"
    return text
