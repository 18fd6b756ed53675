"""Kernel regularization from the spec (000 §7.1 ``reg_config``, §7.2.5 ``regularizer``).

Keras 3 reads ``layer.kernel_regularizer`` only when the layer builds its kernel, so setting the
attribute on a built model does nothing by itself. :func:`apply_regularizer` therefore does both:

* it sets the regularizer on the kernel *variable* (``variable.regularizer``), which is what
  ``Layer.losses`` evaluates at every training step — the penalty joins the training loss;
* it sets ``layer.kernel_regularizer`` too, so the saved config carries it and a model reloaded from
  a checkpoint (``load_graph`` retraining, resume) is regularized the same way.

The spec is the single source of truth: layers whose class is in ``scope`` get the penalty, every
other layer with a kernel loses any regularizer it carried (e.g. a pruned model trained with L1 and
retrained with ``NO_REG``, as the manual recommends). Bias and BatchNormalization parameters are
never regularized. Call it before ``model.compile`` (a traced train step keeps the losses it saw).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from libtlt.errors import SpecError

__all__ = ["apply_regularizer", "iter_layers", "regularization_penalty"]

#: Variable attributes that count as a layer's kernel, with the regularizer attribute(s) that go with
#: them (Keras 3's DepthwiseConv2D keeps its kernel in ``kernel`` but calls the regularizer
#: ``depthwise_regularizer``; SeparableConv2D has depthwise and pointwise kernels).
_KERNELS = (
    ("kernel", ("kernel_regularizer", "depthwise_regularizer")),
    ("depthwise_kernel", ("depthwise_regularizer",)),
    ("pointwise_kernel", ("pointwise_regularizer",)),
)
_NONE = ("NO_REG", "NONE", "")


def iter_layers(model: Any) -> Iterator[Any]:
    """Every layer of ``model``, descending into nested models (backbones built as sub-models)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def _scope_names(scope: str | Sequence[str]) -> set[str]:
    items = [scope] if isinstance(scope, str) else list(scope)
    names = set()
    for item in items:
        for part in str(item).split(","):
            part = part.strip().strip("'\"[] ").lower()
            if part:
                names.add(part)
    return names


def _make(kind: str, weight: float) -> Any:
    import keras

    key = str(kind).strip().upper()
    if key in _NONE:
        return None
    weight = float(weight)
    if math.isnan(weight) or weight < 0.0:
        raise SpecError(f"must be a number >= 0, not {weight:g}", field="weight")
    if key == "L1":
        return keras.regularizers.L1(l1=weight)
    if key == "L2":
        return keras.regularizers.L2(l2=weight)
    raise SpecError(f"unknown regularizer type '{kind}' (choose from NO_REG, L1, L2)", field="type")


def apply_regularizer(model: Any, kind: str, weight: float,
                      scope: str | Sequence[str] = ("Conv2D", "Dense")) -> Any:
    """Regularize the kernels of the layers whose class name is in ``scope``; returns ``model``.

    ``kind`` is ``NO_REG``/``L1``/``L2`` (000 §7.2.5) or ``L1``/``L2``/``None`` (classification);
    ``weight`` is the spec's ``weight`` / ``weight_decay``; ``scope`` matches class names without
    regard to case, as a list (``['conv2d', 'dense']``) or one comma-separated string
    (``"Conv2D,Dense"``). The penalty is ``weight·Σ|w|`` (L1) or ``weight·Σw²`` (L2) over those kernels.
    """
    regularizer = _make(kind, weight)
    names = _scope_names(scope)
    if regularizer is not None and not names:
        raise SpecError("is empty; name the layer types to regularize, e.g. Conv2D,Dense", field="scope")
    for layer in iter_layers(model):
        in_scope = type(layer).__name__.lower() in names
        for variable_attr, regularizer_attrs in _KERNELS:
            variable = getattr(layer, variable_attr, None)
            regularizer_attr = next((name for name in regularizer_attrs if hasattr(layer, name)), None)
            if variable is None or regularizer_attr is None:
                continue
            value = regularizer if in_scope else None
            setattr(layer, regularizer_attr, value)
            variable.regularizer = value
    return model


def regularization_penalty(model: Any) -> float:
    """The current total of ``model.losses`` (the regularization added to the training loss)."""
    import keras

    losses = model.losses
    if not losses:
        return 0.0
    return float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.stack([keras.ops.sum(x) for x in losses]))))
