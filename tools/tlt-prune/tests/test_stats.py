"""Filter statistics, normalizers, equalization and retained indices — REFERENCE "tlt-prune" check values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlt_prune.stats import equalize, filter_norms, normalize, num_retained, retained_indices


def test_reference_check_retained_indices() -> None:
    stats = normalize([1, 2, 3, 4], "max")
    np.testing.assert_allclose(stats, [0.25, 0.5, 0.75, 1.0])
    assert retained_indices(stats, threshold=0.6, granularity=2, min_num_filters=1).tolist() == [2, 3]


A = [0.2, 0.9, 0.5, 0.1]
B = [0.6, 0.3, 0.4, 0.05]


@pytest.mark.parametrize(("criterion", "kept"), [
    ("union", [0, 1, 2]),
    ("intersection", [1, 2]),
    ("arithmetic_mean", [1, 2]),
    ("geometric_mean", [1, 2]),
])
def test_reference_check_equalization(criterion: str, kept: list[int]) -> None:
    merged = equalize([A, B], criterion)
    assert retained_indices(merged, threshold=0.45, granularity=1, min_num_filters=2).tolist() == kept


def test_equalization_values() -> None:
    np.testing.assert_allclose(equalize([A, B], "union"), [0.6, 0.9, 0.5, 0.1])
    np.testing.assert_allclose(equalize([A, B], "intersection"), [0.2, 0.3, 0.4, 0.05])
    np.testing.assert_allclose(equalize([A, B], "arithmetic_mean"), [0.4, 0.6, 0.45, 0.075])
    np.testing.assert_allclose(equalize([A, B], "geometric_mean"), np.sqrt(np.multiply(A, B)))
    assert equalize([[0.0, 1.0], [0.5, 1.0]], "geometric_mean").tolist() == [0.0, 1.0]


def test_equalization_ignores_uncovered_channels() -> None:
    nan = np.nan
    np.testing.assert_allclose(equalize([[0.2, 0.4], [nan, 0.8]], "arithmetic_mean"), [0.2, 0.6])
    np.testing.assert_allclose(equalize([[0.2, nan], [nan, nan]], "intersection"), [0.2, 0.0])
    with pytest.raises(ValueError, match="unknown equalization"):
        equalize([A], "median")


def test_normalizers() -> None:
    np.testing.assert_allclose(normalize([3.0, 4.0], "L2"), [3 / 5 * 2, 4 / 5 * 2])
    np.testing.assert_allclose(normalize([2.0, 2.0, 2.0, 2.0], "L2"), [2.0] * 4)
    assert normalize([0.0, 0.0], "max").tolist() == [0.0, 0.0]
    assert normalize([0.0, 0.0], "L2").tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="unknown normalizer"):
        normalize([1.0], "L1")


def test_count_rules() -> None:
    stats = np.linspace(0.05, 1.0, 20)
    assert num_retained(stats, 0.5, granularity=1, min_num_filters=0) == 10
    assert num_retained(stats, 0.5, granularity=8, min_num_filters=0) == 16   # rounded up
    assert num_retained(stats, 0.99, granularity=8, min_num_filters=16) == 16  # the minimum
    assert num_retained(stats[:4], 0.99, granularity=8, min_num_filters=16) == 4  # capped at all
    assert num_retained(stats, 0.0, granularity=7, min_num_filters=0) == 20  # rounding capped
    assert num_retained(stats, 1.0, granularity=1, min_num_filters=0) == 1  # never zero
    assert retained_indices([0.5, 0.9, 0.5, 0.5], 0.95, granularity=1, min_num_filters=2).tolist() == [0, 1]


def test_filter_norms_per_output_axis() -> None:
    kernel = np.zeros((3, 3, 2, 4))
    kernel[..., 1] = 1.0
    kernel[0, 0, 0, 3] = -2.0
    np.testing.assert_allclose(filter_norms(kernel), [0, np.sqrt(18), 0, 2])
    depthwise = np.zeros((3, 3, 5, 1))
    depthwise[:, :, 2, 0] = 1.0
    np.testing.assert_allclose(filter_norms(depthwise, -2), [0, 0, 3, 0, 0])
    transpose = np.ones((2, 2, 3, 5))  # (h, w, out, in)
    np.testing.assert_allclose(filter_norms(transpose, -2), [np.sqrt(20)] * 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40), st.floats(0, 1),
       st.integers(1, 9), st.integers(0, 20))
def test_retained_indices_properties(values: list[float], threshold: float, granularity: int, minimum: int) -> None:
    stats = normalize(values, "max")
    kept = retained_indices(stats, threshold, granularity, minimum)
    total = len(values)
    assert kept.tolist() == sorted(set(kept.tolist()))
    assert 1 <= kept.size <= total
    assert kept.size == total or kept.size % granularity == 0
    assert kept.size >= min(minimum, total)
    assert kept.size >= min(total, int(np.count_nonzero(stats > threshold)))
    dropped = np.setdiff1d(np.arange(total), kept)
    if dropped.size:
        assert stats[kept].min() >= stats[dropped].max()
