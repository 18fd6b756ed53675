"""Rebuild a functional model with fewer filters and slice every weight to match.

The model is re-created from its config with smaller ``filters``/``units`` (and Reshape ``target_shape``s;
Keras infers every other shape when it calls the layers), then each layer receives its old weights restricted to the kept channels: conv and
Dense kernels on their output *and* input axes, biases, BatchNormalization's gamma/beta/mean/variance,
depthwise kernels and biases, separable depthwise/pointwise kernels, PReLU slopes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libtlt.errors import UnsupportedError
from tlt_prune.graph import layer_family


@dataclass
class LayerChange:
    """Kept channel indices of one layer (None: all of them)."""

    in_keep: np.ndarray | None = None    # input channels (conv/dense kernels, BN, depthwise, PReLU)
    out_keep: np.ndarray | None = None   # output filters of a conv, separable conv or Dense
    axis: int = -1                       # PReLU: the channel axis of its input (batch included)
    config: dict[str, Any] = field(default_factory=dict)  # config overrides: filters, units, target_shape


#: Which axis of each weight holds input ("in") or output ("out") channels, per layer family.
_AXES: dict[str, dict[str, dict[str, int]]] = {
    "conv": {"kernel": {"in": -2, "out": -1}, "bias": {"out": 0}},
    "dense": {"kernel": {"in": 0, "out": 1}, "bias": {"out": 0}},
    "transpose": {"kernel": {"in": -1, "out": -2}, "bias": {"out": 0}},
    "separable": {"depthwise_kernel": {"in": -2}, "pointwise_kernel": {"in_expanded": -2, "out": -1},
                  "bias": {"out": 0}},
    "depthwise": {"kernel": {"in": -2}, "bias": {"in_expanded": 0}},
    "batchnorm": {name: {"in": 0} for name in ("gamma", "beta", "moving_mean", "moving_variance")},
}


def _expand(keep: np.ndarray, multiplier: int) -> np.ndarray:
    """Channel ``c`` of a depthwise input becomes outputs ``c*m .. c*m+m-1``."""
    return (keep[:, None] * multiplier + np.arange(multiplier)[None, :]).reshape(-1)


def slice_weights(layer: Any, change: LayerChange) -> list[np.ndarray]:
    """``layer``'s weights restricted to the kept channels of ``change``."""
    from keras import ops

    family = layer_family(layer)
    weights = [ops.convert_to_numpy(v) for v in layer.weights]
    names = [v.name for v in layer.weights]
    if family == "prelu":
        return [_slice_prelu(w, change) for w in weights]
    table = _AXES.get(family or "")
    if table is None:
        return weights
    multiplier = int(getattr(layer, "depth_multiplier", 1))
    keeps = {"in": change.in_keep, "out": change.out_keep,
             "in_expanded": None if change.in_keep is None else _expand(change.in_keep, multiplier)}
    result = []
    for name, value in zip(names, weights, strict=True):
        if name not in table:
            raise RuntimeError(f"tlt-prune does not know weight '{name}' of {type(layer).__name__} '{layer.name}'")
        for role, axis in table[name].items():
            keep = keeps[role]
            if keep is not None:
                value = np.take(value, keep, axis=axis)
        result.append(value)
    return result


def _slice_prelu(alpha: np.ndarray, change: LayerChange) -> np.ndarray:
    axis = change.axis - 1  # alpha has no batch axis
    if change.in_keep is None or alpha.ndim <= axis or alpha.shape[axis] == 1:
        return alpha
    return np.take(alpha, change.in_keep, axis=axis)


def rebuild(model: Any, changes: dict[str, LayerChange]) -> Any:
    """A new functional model with the filters of ``changes`` removed and the weights sliced accordingly."""
    import keras

    config = copy.deepcopy(model.get_config())
    for entry in config["layers"]:
        entry.pop("build_config", None)  # the old input shapes would build the old weight shapes
        change = changes.get(entry["config"]["name"])
        if change is not None:
            entry["config"].update(change.config)
    try:
        pruned = keras.Model.from_config(config)
    except Exception as err:  # Keras raises many types for a config it cannot rebuild
        raise UnsupportedError(f"cannot rebuild the pruned model from its config: {err}") from err
    for layer in model.layers:
        if not layer.weights:
            continue
        change = changes.get(layer.name)
        weights = slice_weights(layer, change) if change is not None else [
            keras.ops.convert_to_numpy(v) for v in layer.weights]
        pruned.get_layer(layer.name).set_weights(weights)
    return pruned
