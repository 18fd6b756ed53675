"""Learning-rate schedules of the manuals, as functions of training progress.

Progress is ``p = min(step / total_steps, 1)``: ``step`` is the optimizer's global iteration count
(the number of updates already applied) and ``total_steps = num_epochs * steps_per_epoch``. The
rate therefore changes every iteration, and a run resumed from a checkpoint (which restores the
iteration count) continues on exactly the same curve.

=================  ========================================================================
schedule           learning rate at progress ``p``
=================  ========================================================================
soft_start_        DetectNet_v2 & co. (000 §7.2.5): ``min·(max/min)^(p/soft_start)`` while
annealing          ``p < soft_start`` (exponential ramp), ``max`` until ``annealing``, then
                   ``max·(min/max)^((p-annealing)/(1-annealing))`` (exponential decay to min).
soft_anneal        classification (000 §7.1, 003): exponential ramp from
                   ``base·start_ratio`` to ``base`` over ``[0, soft_start)``, then
                   ``base / annealing_divider^k`` where ``k`` counts the annealing points
                   ``<= p``.
step               classification (003): ``base · gamma^floor(100·p / step_size)`` — the manual
                   defines ``step_size`` as a percentage of the whole training, "less than 100".
cosine             classification (003): the same ramp as soft_anneal up to ``soft_start``, then
                   ``min + (base-min)·(1+cos(pi·(p-soft_start)/(1-soft_start)))/2`` with
                   ``min = base·min_lr_ratio``.
warmup_step        MaskRCNN (004: warmup_steps, warmup_learning_rate, learning_rate_steps,
                   learning_rate_decay_levels): linear ramp from ``base·start_ratio`` to ``base``
                   over ``[0, warmup)``, then ``base·levels[k]`` from ``boundaries[k]`` on (the last
                   boundary ``<= p``), ``base`` before the first. Fractions of training.
=================  ========================================================================

The manuals do not say where the classification soft start begins; we start it at
``start_ratio = 0.01`` of the base rate (the ratio of the manual's DetectNet_v2 sample,
5e-6 / 5e-4), exponentially like the DetectNet_v2 ramp. It is a keyword argument.

Each schedule computes its formula once, written against a tiny math namespace, so the same code
gives a Python float (:meth:`Schedule.lr`, in float64) and a Keras tensor
(:class:`TltLearningRateSchedule`, what the optimizer calls with its iteration variable).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import keras

from libtlt.errors import SpecError

__all__ = [
    "Schedule",
    "TltLearningRateSchedule",
    "cosine",
    "make_schedule",
    "soft_anneal",
    "soft_start_annealing",
    "step",
    "warmup_step",
]

#: Default start of the classification soft start, as a fraction of the base learning rate.
DEFAULT_START_RATIO = 0.01
_TINY = 1e-12


class _PyMath:
    """Scalar math in float64 for :meth:`Schedule.lr`."""

    exp = staticmethod(math.exp)
    cos = staticmethod(math.cos)
    floor = staticmethod(math.floor)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return a if condition else b


class _KerasMath:
    """The same operations on float64 tensors, for the Keras schedule (both branches are evaluated)."""

    @staticmethod
    def _f64(x: Any) -> Any:
        return keras.ops.cast(x, "float64")

    @staticmethod
    def exp(x: Any) -> Any:
        return keras.ops.exp(_KerasMath._f64(x))

    @staticmethod
    def cos(x: Any) -> Any:
        return keras.ops.cos(_KerasMath._f64(x))

    @staticmethod
    def floor(x: Any) -> Any:
        return keras.ops.floor(_KerasMath._f64(x))

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return keras.ops.where(condition, _KerasMath._f64(a), _KerasMath._f64(b))


class Schedule:
    """A learning rate as a function of progress; subclasses define :meth:`formula`."""

    kind = ""

    def params(self) -> dict[str, Any]:
        """The constructor keywords (JSON-serializable)."""
        raise NotImplementedError

    def formula(self, progress: Any, xp: Any) -> Any:
        """The rate at ``progress`` in [0, 1] (a float or a float64 tensor) using math namespace ``xp``."""
        raise NotImplementedError

    def scaled(self, factor: float) -> Schedule:
        """The same curve with every absolute learning rate multiplied by ``factor``.

        003: "the effective learning rate is learning_rate * n_gpu" — ``schedule.scaled(num_gpus)``.
        """
        raise NotImplementedError

    def lr_at(self, progress: float) -> float:
        """The learning rate at ``progress`` (clipped to [0, 1])."""
        return float(self.formula(min(max(float(progress), 0.0), 1.0), _PyMath))

    def lr(self, step: int, steps_per_epoch: int, total_steps: int) -> float:
        """The learning rate before update number ``step`` (0-based) of a run of ``total_steps`` updates.

        ``steps_per_epoch`` is accepted so every schedule has the same signature; the manuals'
        schedules all depend on progress only.
        """
        _check_steps(steps_per_epoch, total_steps)
        return self.lr_at(step / total_steps)

    def keras_schedule(self, steps_per_epoch: int, total_steps: int) -> TltLearningRateSchedule:
        """A serializable ``keras.optimizers.schedules.LearningRateSchedule`` following this curve."""
        return TltLearningRateSchedule(self.kind, self.params(), steps_per_epoch=steps_per_epoch,
                                       total_steps=total_steps)

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.kind}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(repr(self))


def _check_steps(steps_per_epoch: int, total_steps: int) -> None:
    if int(steps_per_epoch) < 1 or int(total_steps) < 1:
        raise ValueError(f"steps_per_epoch and total_steps must be >= 1, not {steps_per_epoch}, {total_steps}")


def _fraction(value: float, field: str, *, low_open: bool = False, high_open: bool = False) -> float:
    value = float(value)
    too_low = value <= 0.0 if low_open else value < 0.0
    too_high = value >= 1.0 if high_open else value > 1.0
    if math.isnan(value) or too_low or too_high:
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise SpecError(f"must be in {interval}, not {value:g}", field=field)
    return value


def _positive(value: float, field: str) -> float:
    value = float(value)
    if not value > 0.0 or math.isinf(value):
        raise SpecError(f"must be a positive number, not {value:g}", field=field)
    return value


def _ramp(progress: Any, soft_start: float, start_ratio: float, xp: Any) -> Any:
    """Multiplier going exponentially from ``start_ratio`` (p=0) to 1 (p=soft_start), then 1."""
    if soft_start <= 0.0:
        return 1.0
    t = xp.where(progress < soft_start, progress / soft_start, 1.0)  # clamped: no overflow in either branch
    return xp.exp((1.0 - t) * math.log(start_ratio))


class SoftStartAnnealing(Schedule):
    """000 §7.2.5 ``soft_start_annealing_schedule``: ramp min→max, hold, decay max→min."""

    kind = "soft_start_annealing"

    def __init__(self, min_lr: float, max_lr: float, soft_start: float, annealing: float):
        self.min_lr = _positive(min_lr, "min_learning_rate")
        self.max_lr = _positive(max_lr, "max_learning_rate")
        if self.max_lr < self.min_lr:
            raise SpecError(f"must be >= min_learning_rate ({self.min_lr:g}), not {self.max_lr:g}",
                            field="max_learning_rate")
        self.soft_start = _fraction(soft_start, "soft_start")
        self.annealing = _fraction(annealing, "annealing")
        if self.annealing < self.soft_start:
            raise SpecError(f"must be greater than soft_start ({self.soft_start:g}), not {self.annealing:g}",
                            field="annealing")

    def params(self) -> dict[str, Any]:
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "soft_start": self.soft_start,
                "annealing": self.annealing}

    def scaled(self, factor: float) -> SoftStartAnnealing:
        return SoftStartAnnealing(self.min_lr * factor, self.max_lr * factor, self.soft_start, self.annealing)

    def formula(self, progress: Any, xp: Any) -> Any:
        log_ratio = math.log(self.min_lr / self.max_lr)  # <= 0
        ramp = self.max_lr * _ramp(progress, self.soft_start, self.min_lr / self.max_lr, xp)
        decay_span = max(1.0 - self.annealing, _TINY)
        decay_t = (progress - self.annealing) / decay_span
        decay = self.max_lr * xp.exp(log_ratio * xp.where(progress < self.annealing, 0.0, decay_t))
        return xp.where(progress < self.annealing, ramp, decay)


class SoftAnneal(Schedule):
    """Classification ``soft_anneal``: soft start to ``base_lr``, divided at each annealing point."""

    kind = "soft_anneal"

    def __init__(self, base_lr: float, soft_start: float, annealing_points: Iterable[float],
                 annealing_divider: float, start_ratio: float = DEFAULT_START_RATIO):
        self.base_lr = _positive(base_lr, "learning_rate")
        self.soft_start = _fraction(soft_start, "soft_start", high_open=True)
        points = [_fraction(p, "annealing_points", low_open=True, high_open=True) for p in annealing_points]
        if points != sorted(points):
            raise SpecError(f"must be in increasing order, not {points}", field="annealing_points")
        self.annealing_points = points
        self.annealing_divider = _positive(annealing_divider, "annealing_divider")
        self.start_ratio = _fraction(start_ratio, "start_ratio", low_open=True)

    def params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "soft_start": self.soft_start,
                "annealing_points": list(self.annealing_points), "annealing_divider": self.annealing_divider,
                "start_ratio": self.start_ratio}

    def scaled(self, factor: float) -> SoftAnneal:
        return SoftAnneal(self.base_lr * factor, self.soft_start, self.annealing_points, self.annealing_divider,
                          self.start_ratio)

    def formula(self, progress: Any, xp: Any) -> Any:
        passed = sum((xp.where(progress >= point, 1.0, 0.0) for point in self.annealing_points), 0.0)
        divide = xp.exp(-math.log(self.annealing_divider) * passed)
        return self.base_lr * _ramp(progress, self.soft_start, self.start_ratio, xp) * divide


class Step(Schedule):
    """Classification ``step``: multiply by ``gamma`` every ``step_size`` percent of training."""

    kind = "step"

    def __init__(self, base_lr: float, step_size: float, gamma: float):
        self.base_lr = _positive(base_lr, "learning_rate")
        self.step_size = float(step_size)
        if not 0.0 < self.step_size <= 100.0:
            raise SpecError(f"must be a percentage of the training in (0, 100], not {step_size:g}",
                            field="step_size")
        self.gamma = _positive(gamma, "gamma")

    def params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "step_size": self.step_size, "gamma": self.gamma}

    def scaled(self, factor: float) -> Step:
        return Step(self.base_lr * factor, self.step_size, self.gamma)

    def formula(self, progress: Any, xp: Any) -> Any:
        # 1e-9 absorbs rounding in progress*100 (0.3*100 = 30.000000000000004, 0.7*100 = 69.99999999999999).
        count = xp.floor(progress * 100.0 / self.step_size + 1e-9)
        return self.base_lr * xp.exp(math.log(self.gamma) * count)


class Cosine(Schedule):
    """Classification ``cosine``: soft start to ``base_lr``, then half a cosine down to ``base·min_lr_ratio``."""

    kind = "cosine"

    def __init__(self, base_lr: float, soft_start: float, min_lr_ratio: float = 0.0,
                 start_ratio: float = DEFAULT_START_RATIO):
        self.base_lr = _positive(base_lr, "learning_rate")
        self.soft_start = _fraction(soft_start, "soft_start", high_open=True)
        self.min_lr_ratio = _fraction(min_lr_ratio, "min_lr_ratio", high_open=True)
        self.start_ratio = _fraction(start_ratio, "start_ratio", low_open=True)

    def params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "soft_start": self.soft_start, "min_lr_ratio": self.min_lr_ratio,
                "start_ratio": self.start_ratio}

    def scaled(self, factor: float) -> Cosine:
        return Cosine(self.base_lr * factor, self.soft_start, self.min_lr_ratio, self.start_ratio)

    def formula(self, progress: Any, xp: Any) -> Any:
        min_lr = self.base_lr * self.min_lr_ratio
        span = max(1.0 - self.soft_start, _TINY)
        t = xp.where(progress < self.soft_start, 0.0, (progress - self.soft_start) / span)
        cosine = min_lr + (self.base_lr - min_lr) * 0.5 * (1.0 + xp.cos(math.pi * t))
        return xp.where(progress < self.soft_start,
                        self.base_lr * _ramp(progress, self.soft_start, self.start_ratio, xp), cosine)


class WarmupStep(Schedule):
    """MaskRCNN's linear warm-up, then the rate ``base·level`` set at each boundary (piecewise constant)."""

    kind = "warmup_step"

    def __init__(self, base_lr: float, warmup: float = 0.0, start_ratio: float = 1.0,
                 boundaries: Iterable[float] = (), levels: Iterable[float] = ()):
        self.base_lr = _positive(base_lr, "init_learning_rate")
        self.warmup = _fraction(warmup, "warmup_steps")
        self.start_ratio = _fraction(start_ratio, "warmup_learning_rate")
        self.boundaries = [_fraction(b, "learning_rate_steps") for b in boundaries]
        if self.boundaries != sorted(self.boundaries):
            raise SpecError(f"must be in increasing order, not {self.boundaries}", field="learning_rate_steps")
        self.levels = [_positive(v, "learning_rate_decay_levels") for v in levels]
        if len(self.levels) != len(self.boundaries):
            raise SpecError(f"needs one level per boundary ({len(self.boundaries)}), not {len(self.levels)}",
                            field="learning_rate_decay_levels")

    def params(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "warmup": self.warmup, "start_ratio": self.start_ratio,
                "boundaries": list(self.boundaries), "levels": list(self.levels)}

    def scaled(self, factor: float) -> WarmupStep:
        return WarmupStep(self.base_lr * factor, self.warmup, self.start_ratio, self.boundaries, self.levels)

    def formula(self, progress: Any, xp: Any) -> Any:
        level: Any = 1.0
        for boundary, value in zip(self.boundaries, self.levels, strict=True):
            level = xp.where(progress >= boundary, value, level)
        if self.warmup <= 0.0:
            return self.base_lr * level
        t = xp.where(progress < self.warmup, progress / self.warmup, 1.0)
        ramp = self.start_ratio + (1.0 - self.start_ratio) * t
        return self.base_lr * xp.where(progress < self.warmup, ramp, level)


def soft_start_annealing(min_lr: float, max_lr: float, soft_start: float, annealing: float) -> SoftStartAnnealing:
    """000 §7.2.5 ``soft_start_annealing_schedule`` (``soft_start``/``annealing`` are fractions of training)."""
    return SoftStartAnnealing(min_lr, max_lr, soft_start, annealing)


def soft_anneal(base_lr: float, soft_start: float, annealing_points: Iterable[float], annealing_divider: float,
                *, start_ratio: float = DEFAULT_START_RATIO) -> SoftAnneal:
    """Classification ``soft_anneal`` (``annealing_points`` are fractions of training, increasing)."""
    return SoftAnneal(base_lr, soft_start, annealing_points, annealing_divider, start_ratio)


def step(base_lr: float, step_size: float, gamma: float) -> Step:
    """Classification ``step`` (``step_size`` is a percentage of the whole training)."""
    return Step(base_lr, step_size, gamma)


def warmup_step(base_lr: float, warmup: float = 0.0, start_ratio: float = 1.0, boundaries: Iterable[float] = (),
                levels: Iterable[float] = ()) -> WarmupStep:
    """MaskRCNN's linear warm-up then piecewise-constant levels (fractions of training)."""
    return WarmupStep(base_lr, warmup, start_ratio, boundaries, levels)


def cosine(base_lr: float, soft_start: float, min_lr_ratio: float = 0.0, *,
           start_ratio: float = DEFAULT_START_RATIO) -> Cosine:
    """Classification ``cosine`` with soft start."""
    return Cosine(base_lr, soft_start, min_lr_ratio, start_ratio)


_KINDS: dict[str, type[Schedule]] = {
    cls.kind: cls for cls in (SoftStartAnnealing, SoftAnneal, Step, Cosine, WarmupStep)
}


def make_schedule(kind: str, **params: Any) -> Schedule:
    """Build a schedule by its spec name (``soft_start_annealing``, ``soft_anneal``, ``step``, ``cosine``,
    ``warmup_step``)."""
    cls = _KINDS.get(str(kind).strip().lower())
    if cls is None:
        raise SpecError(f"unknown learning rate scheduler '{kind}' (choose from {', '.join(sorted(_KINDS))})",
                        field="scheduler")
    try:
        return cls(**params)
    except TypeError as err:
        raise SpecError(f"bad parameters for the '{cls.kind}' scheduler: {err}", field="scheduler") from None


def schedule_from_config(config: Mapping[str, Any]) -> Schedule:
    """Inverse of :meth:`Schedule.get_config`."""
    params = dict(config)
    return make_schedule(params.pop("kind"), **params)


@keras.saving.register_keras_serializable(package="tlt")
class TltLearningRateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Keras wrapper: the optimizer calls it with its iteration count and gets the rate (float32).

    Serializable (registered as ``tlt>TltLearningRateSchedule``): the optimizer's config carries the
    schedule kind, its parameters and the run length, so an optimizer rebuilt from a checkpoint and
    given back its iteration count continues the same curve.
    """

    def __init__(self, kind: str, params: Mapping[str, Any], *, steps_per_epoch: int, total_steps: int,
                 name: str | None = None):
        super().__init__()
        _check_steps(steps_per_epoch, total_steps)
        self.schedule = make_schedule(kind, **dict(params))
        self.steps_per_epoch = int(steps_per_epoch)
        self.total_steps = int(total_steps)
        self.name = name

    def __call__(self, step: Any) -> Any:
        progress = keras.ops.cast(step, "float64") / float(self.total_steps)
        progress = keras.ops.clip(progress, 0.0, 1.0)
        return keras.ops.cast(self.schedule.formula(progress, _KerasMath), "float32")

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.schedule.kind, "params": self.schedule.params(),
                "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TltLearningRateSchedule:
        config = dict(config)
        return cls(config.pop("kind"), config.pop("params"), **config)
