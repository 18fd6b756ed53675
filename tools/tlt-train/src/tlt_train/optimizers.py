"""Keras optimizers from the spec's optimizer settings.

``make_optimizer("sgd" | "adam" | "rmsprop", learning_rate, **params)`` accepts the parameter names
of both spec generations: Keras' (``beta_1``, ``beta_2``, ``epsilon``, ``momentum``, ``nesterov``,
``rho``, ``centered``; 003 ``optim_config`` and FasterRCNN; SGD's ``global_clipnorm``, MaskRCNN's
``global_gradient_clip_ratio``, 0 meaning none) and the DetectNet_v2 family's
``common.proto`` spelling (``beta1``, ``beta2``). The learning rate always comes from the
scheduler, so the spec's own ``lr`` and ``decay`` fields are accepted and ignored, as the manuals
say ("overridden by the learning rate scheduler and hence not useful").

Under the ``mixed_float16`` policy, ``Model.compile`` wraps the optimizer in Keras'
``LossScaleOptimizer`` itself (dynamic loss scaling); nothing to do here.
"""

from __future__ import annotations

import math
from typing import Any

from libtlt.errors import SpecError
from libtlt.log import get_logger

__all__ = ["OPTIMIZERS", "make_optimizer"]

logger = get_logger(__name__)

#: Accepted parameters per optimizer: spec name → Keras keyword.
_PARAMS: dict[str, dict[str, str]] = {
    "sgd": {"momentum": "momentum", "nesterov": "nesterov", "global_clipnorm": "global_clipnorm"},
    "adam": {"beta_1": "beta_1", "beta1": "beta_1", "beta_2": "beta_2", "beta2": "beta_2",
             "epsilon": "epsilon", "amsgrad": "amsgrad"},
    "rmsprop": {"rho": "rho", "momentum": "momentum", "epsilon": "epsilon", "centered": "centered"},
}
#: Spec fields that the scheduler overrides.
_IGNORED = ("lr", "decay")
OPTIMIZERS = tuple(_PARAMS)


def make_optimizer(name: str, learning_rate: Any, **params: Any) -> Any:
    """A Keras optimizer ``name`` driven by ``learning_rate`` (a float or a Keras ``LearningRateSchedule``,
    e.g. ``schedule.keras_schedule(steps_per_epoch, total_steps)``).

    Unknown parameters raise ``SpecError`` naming the field; ``None`` values mean "not set" (defaults).
    """
    import keras

    key = str(name).strip().lower()
    if key not in _PARAMS:
        raise SpecError(f"unknown optimizer '{name}' (choose from {', '.join(OPTIMIZERS)})", field="optimizer")
    kwargs: dict[str, Any] = {}
    for field, value in params.items():
        if value is None:
            continue
        if field in _IGNORED:
            if field == "decay" and value:
                logger.info("optimizer %s: decay=%g is ignored; the learning rate scheduler sets the rate", key,
                            value)
            continue
        keras_name = _PARAMS[key].get(field)
        if keras_name is None:
            allowed = ", ".join(sorted(_PARAMS[key]))
            raise SpecError(f"optimizer '{key}' has no parameter '{field}' (it takes {allowed})", field=field)
        checked = _check(keras_name, value, field)
        if checked is not None:
            kwargs[keras_name] = checked
    if isinstance(learning_rate, (int, float)):
        learning_rate = float(learning_rate)
    if key == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, **kwargs)
    if key == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, **kwargs)
    return keras.optimizers.RMSprop(learning_rate=learning_rate, **kwargs)


def _check(keras_name: str, value: Any, field: str) -> Any:
    if keras_name in ("nesterov", "centered", "amsgrad"):
        if not isinstance(value, bool):
            raise SpecError(f"must be true or false, not {value!r}", field=field)
        return value
    number = float(value)
    if math.isnan(number) or number < 0.0:
        raise SpecError(f"must be a number >= 0, not {value!r}", field=field)
    if keras_name in ("beta_1", "beta_2", "rho", "momentum") and number >= 1.0:
        raise SpecError(f"must be in [0, 1), not {value!r}", field=field)
    if keras_name == "global_clipnorm" and number == 0.0:
        return None  # 0: no clipping (MaskRCNN's global_gradient_clip_ratio left out)
    if keras_name == "epsilon" and number == 0.0:
        raise SpecError("must be > 0 (it prevents a division by zero)", field=field)
    return number
