"""DetectNet_v2's cost (000 §7.2.4, REFERENCE.md "DetectNet_v2").

Per class ``c`` (``M`` = batch × grid cells, the mean runs over all of them):

* coverage: ``cov_c = mean(w · BCE(t, p))`` with ``w = coverage_foreground_weight`` where the target
  ``t > 0.5`` and ``1 − coverage_foreground_weight`` elsewhere;
* bbox: ``bbox_c = mean(cov_norm · Σ_k |t_k − p_k|)`` over the class's four channels, weighted by the
  normalized coverage of the rasterizer.

Total = ``Σ_c class_weight_c · (w_c,cov · cov_c + w_c,bbox · bbox_c)``, where the class weights are
normalized to sum 1 over the classes and each class's objective weights (``initial_weight``) to sum 1 over
its objectives. Keras sees two losses, one per output (``output_cov``: the coverage terms, ``output_bbox``:
the bbox terms); their sum is the total.

Auto-weighting (``enable_autoweighting``): the losses accumulate each class's unweighted objective costs
over the epoch, and :class:`AutoWeighting` (a callback) sets at each epoch end
``w_c,o = weight_target_c,o / Σ_epoch cost_c,o``, normalized over the objectives and clamped to
``[min_objective_weight, max_objective_weight]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OBJECTIVES = ("cov", "bbox")
#: Probabilities are clipped to [EPSILON, 1 − EPSILON] inside the cross-entropy.
EPSILON = 1e-7


@dataclass(frozen=True)
class ClassCost:
    """One class's cost parameters as written in the spec (normalized by :func:`normalized_weights`)."""

    name: str
    class_weight: float = 1.0
    coverage_foreground_weight: float = 0.5
    initial_weights: tuple[float, float] = (1.0, 1.0)  # cov, bbox
    weight_targets: tuple[float, float] = (1.0, 1.0)


def normalized_weights(costs: Sequence[ClassCost]) -> tuple[np.ndarray, np.ndarray]:
    """(class weights ``[C]`` summing to 1, objective weights ``[C, 2]`` each row summing to 1)."""
    cw = np.array([c.class_weight for c in costs], dtype=np.float64)
    cw = cw / cw.sum() if cw.sum() > 0 else np.full(len(costs), 1.0 / max(len(costs), 1))
    ow = np.array([c.initial_weights for c in costs], dtype=np.float64).reshape(-1, 2)
    sums = ow.sum(axis=1, keepdims=True)
    ow = np.where(sums > 0, ow / np.where(sums > 0, sums, 1.0), 0.5)
    return cw, ow


def class_costs(cov_true: Any, cov_pred: Any, bbox_true: Any, bbox_pred: Any,
                fg_weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference: unweighted per-class (coverage cost ``[C]``, bbox cost ``[C]``) of a batch (NCHW)."""
    t, p = np.asarray(cov_true, np.float64), np.clip(np.asarray(cov_pred, np.float64), EPSILON, 1 - EPSILON)
    c = t.shape[1]
    fg = np.asarray(fg_weights, np.float64).reshape(1, c, 1, 1)
    w = np.where(t > 0.5, fg, 1.0 - fg)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    cov_cost = (w * bce).mean(axis=(0, 2, 3))
    bt = np.asarray(bbox_true, np.float64)
    bp = np.asarray(bbox_pred, np.float64)
    n, _, h, wd = bp.shape
    l1 = np.abs(bt[:, :4 * c] - bp).reshape(n, c, 4, h, wd).sum(axis=2)
    bbox_cost = (bt[:, 4 * c:] * l1).mean(axis=(0, 2, 3))
    return cov_cost, bbox_cost


class DetectNetLoss:
    """The two Keras losses (``coverage``, ``bbox``) sharing the class and objective weights."""

    def __init__(self, costs: Sequence[ClassCost], *, autoweighting: bool = False,
                 min_objective_weight: float = 0.0, max_objective_weight: float = 1.0):
        import keras

        self.costs = list(costs)
        self.num_classes = len(self.costs)
        cw, ow = normalized_weights(self.costs)
        self.class_weights = cw.astype(np.float32)
        self.fg_weights = np.array([c.coverage_foreground_weight for c in self.costs], np.float32)
        self.weight_targets = np.array([c.weight_targets for c in self.costs], np.float64).reshape(-1, 2)
        self.autoweighting = autoweighting
        self.min_objective_weight = min_objective_weight
        self.max_objective_weight = max_objective_weight
        self.objective_weights = keras.Variable(ow.astype(np.float32), trainable=False, name="objective_weights")
        self.epoch_costs = keras.Variable(np.zeros((self.num_classes, 2), np.float32), trainable=False,
                                          name="epoch_objective_costs")

    # ----------------------------------------------------------------------------- TF costs
    def _per_class_cov(self, y_true: Any, y_pred: Any) -> Any:
        from keras import ops

        fg = ops.reshape(ops.convert_to_tensor(self.fg_weights), (1, -1, 1, 1))
        p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        w = ops.where(y_true > 0.5, fg, 1.0 - fg)
        bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.mean(w * bce, axis=(2, 3))  # [N, C]

    def _per_class_bbox(self, y_true: Any, y_pred: Any) -> Any:
        from keras import ops

        c = self.num_classes
        shape = ops.shape(y_pred)
        l1 = ops.sum(ops.reshape(ops.abs(y_true[:, :4 * c] - y_pred), (shape[0], c, 4, shape[2], shape[3])), axis=2)
        return ops.mean(y_true[:, 4 * c:] * l1, axis=(2, 3))  # [N, C]

    def _weighted(self, per_class: Any, objective: int) -> Any:
        from keras import ops

        if self.autoweighting:
            mean = ops.mean(ops.stop_gradient(per_class), axis=0)
            one_hot = np.zeros((1, 2), np.float32)
            one_hot[0, objective] = 1.0
            self.epoch_costs.assign_add(ops.reshape(mean, (-1, 1)) * one_hot)
        weights = ops.convert_to_tensor(self.class_weights) * self.objective_weights[:, objective]
        return ops.sum(per_class * weights[None, :], axis=1)  # per sample; Keras averages the batch

    def coverage_loss(self, y_true: Any, y_pred: Any) -> Any:
        return self._weighted(self._per_class_cov(y_true, y_pred), 0)

    def bbox_loss(self, y_true: Any, y_pred: Any) -> Any:
        return self._weighted(self._per_class_bbox(y_true, y_pred), 1)

    def keras_losses(self) -> dict[str, Any]:
        """{output name: loss function} for ``model.compile``."""
        from libtlt.archs.detectnet_v2.detectnet_v2_head import OUTPUT_BBOX, OUTPUT_COV

        return {OUTPUT_COV: self.coverage_loss, OUTPUT_BBOX: self.bbox_loss}

    # -------------------------------------------------------------------------- auto-weighting
    def update_weights(self) -> np.ndarray:
        """Auto-weighting step at an epoch end: new objective weights ``[C, 2]`` from the epoch's costs."""
        import keras

        sums = np.asarray(keras.ops.convert_to_numpy(self.epoch_costs), np.float64)
        current = np.asarray(keras.ops.convert_to_numpy(self.objective_weights), np.float64)
        new = np.where(sums > 0, self.weight_targets / np.where(sums > 0, sums, 1.0), current)
        totals = new.sum(axis=1, keepdims=True)
        new = np.where(totals > 0, new / np.where(totals > 0, totals, 1.0), current)
        new = np.clip(new, self.min_objective_weight, self.max_objective_weight)
        self.objective_weights.assign(new.astype(np.float32))
        self.epoch_costs.assign(np.zeros_like(sums, dtype=np.float32))
        return new


def autoweighting_callback(loss: DetectNetLoss) -> Any:
    """A Keras callback applying :meth:`DetectNetLoss.update_weights` at every epoch end."""
    import keras

    class AutoWeighting(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            loss.epoch_costs.assign(np.zeros((loss.num_classes, 2), np.float32))

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss.update_weights()

    return AutoWeighting()
