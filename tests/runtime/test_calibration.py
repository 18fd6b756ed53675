"""INT8 calibration: histograms, the entropy threshold search, minmax, cal.bin output, batch sources."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.errors import DataError
from libtlt.io.calcache import read_calibration_cache
from libtlt.io.tensorfile import write_tensorfile
from libtlt.runtime.calibration import (
    AbsHistogram,
    _divergences,
    activation_tensors,
    calibrate,
    calibrate_to_cache,
    entropy_amax,
    tensorfile_batches,
)
from libtlt.runtime.onnxruntime_backend import OrtModel
from libtlt.runtime.sample_models import detectnet_like_model, image_batches

SHAPE = (3, 32, 48)


def histogram_of(values: np.ndarray) -> AbsHistogram:
    histogram = AbsHistogram()
    histogram.update(values)
    return histogram


def reference_divergence(counts: np.ndarray, i: int, levels: int = 128) -> float:
    """KL(P‖Q) for one threshold, written out directly (the slow, obvious way)."""
    p = counts[:i].astype(np.float64)
    p[i - 1] += counts[i:].sum()
    nonzero = p > 0
    q = np.zeros(i)
    bounds = [(g * i + levels - 1) // levels for g in range(levels + 1)]
    for g in range(levels):
        lo, hi = bounds[g], bounds[g + 1]
        support = nonzero[lo:hi].sum()
        if support:
            q[lo:hi] = np.where(nonzero[lo:hi], counts[lo:hi].sum() / support, 0.0)
    p, q = p / p.sum(), q / q.sum()
    if (q[nonzero] == 0).any():
        return np.inf
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero])))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.9))
def test_fast_divergences_equal_the_direct_formula(seed: int, sparsity: float) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, 600).astype(np.float64)
    counts[rng.random(600) < sparsity] = 0
    counts[-1] = max(counts[-1], 1)
    thresholds = np.arange(128, 601, 37)
    fast = _divergences(counts, thresholds, 128)
    slow = np.array([reference_divergence(counts, int(i)) for i in thresholds])
    assert np.array_equal(np.isinf(fast), np.isinf(slow))
    finite = np.isfinite(slow)
    np.testing.assert_allclose(fast[finite], slow[finite], rtol=1e-7, atol=1e-10)


def test_histogram_doubles_its_range_without_moving_values() -> None:
    grid = AbsHistogram(256)
    grid.update(np.array([1.0]))
    width = grid.bin_width
    centres = (np.arange(256) + 0.5) * width
    grid.update(-centres)  # sign is ignored
    before = grid.counts.copy()
    grid.update(np.array([3.5]))  # beyond the range: doubles twice
    assert grid.range == pytest.approx(4 * 256 * width)
    assert grid.counts.sum() == before.sum() + 1
    np.testing.assert_array_equal(grid.counts[:64], before.reshape(64, 4).sum(axis=1))
    assert grid.amax == 3.5


def test_exact_zeros_are_not_counted() -> None:
    histogram = histogram_of(np.array([0.0, 0.0, 0.0, 0.5, 1.0]))
    assert histogram.counts.sum() == 2 and histogram.amax == 1.0


def test_entropy_clips_outliers_that_minmax_keeps() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 200_000), np.full(20, 50.0)])
    threshold = entropy_amax(histogram_of(values))
    assert 3.0 < threshold < 6.0  # the Gaussian's range, not the outliers'
    assert histogram_of(values).amax == 50.0  # what minmax would use


def test_entropy_keeps_the_range_of_a_uniform_distribution() -> None:
    values = np.random.default_rng(1).uniform(-2, 2, 100_000)
    assert entropy_amax(histogram_of(values)) == pytest.approx(np.abs(values).max(), rel=0.02)


def test_entropy_clips_a_heavy_tail() -> None:
    values = np.random.default_rng(2).laplace(0, 1, 500_000)
    threshold = entropy_amax(histogram_of(values))
    assert 4.0 < threshold < 0.8 * np.abs(values).max()


def test_entropy_of_data_away_from_zero_is_not_degenerate() -> None:
    """Values in [0.6, 1]: a threshold just above 0.6 would fold all data into one bin (KL 0)."""
    values = np.random.default_rng(3).uniform(0.6, 1.0, 50_000)
    assert entropy_amax(histogram_of(values)) > 0.95


@pytest.fixture(scope="module")
def model():
    return detectnet_like_model(*SHAPE[1:])


def test_activation_tensors_list_every_float_activation(model) -> None:
    assert activation_tensors(model) == [
        "input_1", "conv1/BiasAdd", "conv1/Relu", "conv2/BiasAdd", "conv2/Relu", "conv3/BiasAdd", "block/add",
        "block/Relu", "output_cov/BiasAdd", "output_cov/Sigmoid", "output_bbox/BiasAdd"]


def test_minmax_is_the_absolute_maximum_over_all_batches(model) -> None:
    batches = list(image_batches(3, 4, SHAPE, seed=4))
    amax = calibrate(model, batches, algorithm="minmax")
    assert list(amax) == activation_tensors(model)
    assert amax["input_1"] == pytest.approx(max(float(np.abs(b).max()) for b in batches))
    runner = OrtModel(model.SerializeToString())
    outputs = [runner.run(b) for b in batches]
    for name in ("output_cov/Sigmoid", "output_bbox/BiasAdd"):
        assert amax[name] == pytest.approx(max(float(np.abs(o[name]).max()) for o in outputs), rel=1e-6)


def test_entropy_thresholds_never_exceed_minmax(model) -> None:
    batches = list(image_batches(4, 8, SHAPE, seed=5))
    entropy = calibrate(model, batches)
    minmax = calibrate(model, batches, algorithm="minmax")
    assert all(0 < entropy[name] <= minmax[name] * (1 + 1e-6) for name in minmax)


@pytest.mark.parametrize(("algorithm", "header"),
                         [("entropy", "TRT-101300-EntropyCalibration2"), ("minmax", "TRT-101300-MinMaxCalibration")])
def test_cal_bin_is_written_with_the_right_header(model, tmp_path, algorithm, header) -> None:
    path = tmp_path / "cal.bin"
    amax = calibrate_to_cache(model, image_batches(2, 4, SHAPE, seed=6), path, algorithm=algorithm)
    text = path.read_text()
    assert text.splitlines()[0] == header
    cache = read_calibration_cache(path)
    assert list(cache.scales) == list(amax)
    for name, value in amax.items():
        assert cache.scales[name] == pytest.approx(value / 127, rel=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["cal.bin"]  # atomic: no temporary left


def test_tensorfile_batches_feed_calibration(model, tmp_path) -> None:
    path = tmp_path / "calibration.tensor"
    batches = list(image_batches(3, 2, SHAPE, seed=8))
    write_tensorfile(path, batches)
    from_file = calibrate(model, tensorfile_batches(path), algorithm="minmax")
    assert from_file == calibrate(model, batches, algorithm="minmax")
    two = calibrate(model, tensorfile_batches(path, max_batches=2), algorithm="minmax")
    assert two == calibrate(model, batches[:2], algorithm="minmax")


def test_empty_sources_are_errors_never_random_data(model, tmp_path) -> None:
    with pytest.raises(DataError, match="no calibration data"):
        calibrate(model, [])
    path = tmp_path / "empty.tensor"
    write_tensorfile(path, [])
    with pytest.raises(DataError, match="holds no batches"):
        calibrate(model, tensorfile_batches(path))
    with pytest.raises(DataError, match="not found"):
        calibrate(model, tensorfile_batches(tmp_path / "missing.tensor"))


def test_batches_of_the_wrong_shape_are_errors(model) -> None:
    with pytest.raises(DataError, match=r"batch 0 has shape \[2, 3, 16, 16\]"):
        calibrate(model, [np.zeros((2, 3, 16, 16), np.float32)])
    with pytest.raises(DataError, match="dimensions"):
        calibrate(model, [np.zeros((3, 32, 48), np.float32)])


def test_a_fixed_batch_model_calibrates_on_larger_batches() -> None:
    fixed = detectnet_like_model(*SHAPE[1:], batch=2)
    batches = list(image_batches(2, 4, SHAPE, seed=9))
    dynamic = detectnet_like_model(*SHAPE[1:])
    assert calibrate(fixed, batches, algorithm="minmax") == calibrate(dynamic, batches, algorithm="minmax")
    with pytest.raises(DataError, match="fixed at 2"):
        calibrate(fixed, [np.zeros((3, *SHAPE), np.float32)])


def test_unknown_tensor_names_are_errors(model) -> None:
    with pytest.raises(DataError, match="no tensor named 'nope'"):
        calibrate(model, image_batches(1, 1, SHAPE), tensors=["conv1/Relu", "nope"])
