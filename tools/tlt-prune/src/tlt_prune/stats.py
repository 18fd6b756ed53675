"""Filter statistics, normalizers, equalization and the choice of retained filters (REFERENCE "tlt-prune").

Pure NumPy, no Keras: every function takes and returns arrays, so the rules are tested on their own.

* A filter's statistic is the L2 norm of its kernel slice over every axis but the output one (biases are
  ignored); for a depthwise kernel, one norm per input channel.
* ``max`` normalizes by the layer's largest norm; ``L2`` by the L2 norm of the vector of norms, times its length.
* Layers whose channels are tied (element-wise ops, depthwise convs) merge their normalized statistics with the
  equalization criterion: ``union`` = max, ``intersection`` = min, ``arithmetic_mean``, ``geometric_mean``.
* ``retained_indices``: count the statistics above the threshold, raise the count to ``min_num_filters`` (at most
  all of them), round it up to a multiple of the granularity (capped at all), keep that many of the largest,
  in their original order; always at least one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NORMALIZERS = ("max", "L2")
EQUALIZATIONS = ("union", "intersection", "arithmetic_mean", "geometric_mean")


def filter_norms(kernel: np.ndarray, output_axis: int = -1) -> np.ndarray:
    """L2 norm of each slice of ``kernel`` along ``output_axis`` (over all the other axes)."""
    moved = np.moveaxis(np.asarray(kernel, dtype=np.float64), output_axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    return np.sqrt(np.sum(flat * flat, axis=0))


def normalize(stats: Sequence[float] | np.ndarray, normalizer: str = "max") -> np.ndarray:
    """Normalize one layer's statistics; an all-zero layer stays all zeros."""
    values = np.asarray(stats, dtype=np.float64)
    if normalizer == "max":
        scale = float(np.max(values)) if values.size else 0.0
        return values / scale if scale > 0 else np.zeros_like(values)
    if normalizer == "L2":
        norm = float(np.sqrt(np.sum(values * values)))
        return values / norm * len(values) if norm > 0 else np.zeros_like(values)
    raise ValueError(f"unknown normalizer {normalizer!r}; expected one of {', '.join(NORMALIZERS)}")


def equalize(stats: Sequence[Sequence[float] | np.ndarray], criterion: str = "union") -> np.ndarray:
    """Merge the statistics of layers whose channels must stay identical.

    Entries may be NaN where a layer does not cover a channel; they are ignored (a channel nobody covers
    merges to 0).
    """
    stacked = np.vstack([np.asarray(s, dtype=np.float64) for s in stats])
    covered = ~np.isnan(stacked)
    count = covered.sum(axis=0)
    if criterion == "union":
        merged = np.max(np.where(covered, stacked, -np.inf), axis=0)
    elif criterion == "intersection":
        merged = np.min(np.where(covered, stacked, np.inf), axis=0)
    elif criterion == "arithmetic_mean":
        merged = np.sum(np.where(covered, stacked, 0.0), axis=0) / np.maximum(count, 1)
    elif criterion == "geometric_mean":
        with np.errstate(divide="ignore"):
            logs = np.where(covered, np.log(np.where(covered, stacked, 1.0)), 0.0)
        merged = np.exp(np.sum(logs, axis=0) / np.maximum(count, 1))
    else:
        raise ValueError(f"unknown equalization criterion {criterion!r}; expected one of {', '.join(EQUALIZATIONS)}")
    return np.where(count > 0, merged, 0.0)


def num_retained(stats: Sequence[float] | np.ndarray, threshold: float, granularity: int = 8,
                 min_num_filters: int = 16) -> int:
    """How many filters to keep (see the module docstring)."""
    values = np.asarray(stats, dtype=np.float64)
    total = int(values.size)
    if total == 0:
        return 0
    count = int(np.count_nonzero(values > threshold))
    count = max(min(min_num_filters, total), count)
    step = max(int(granularity), 1)
    count = -(-count // step) * step
    return max(1, min(count, total))


def retained_indices(stats: Sequence[float] | np.ndarray, threshold: float, granularity: int = 8,
                     min_num_filters: int = 16) -> np.ndarray:
    """Indices of the filters to keep, ascending: the ``num_retained`` largest statistics (ties: lower index)."""
    values = np.asarray(stats, dtype=np.float64)
    count = num_retained(values, threshold, granularity, min_num_filters)
    order = np.argsort(-values, kind="stable")
    return np.sort(order[:count])
