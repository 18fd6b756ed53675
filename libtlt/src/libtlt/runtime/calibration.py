"""INT8 calibration on CPU with onnxruntime, written as a TensorRT calibration cache (cal.bin).

The model's intermediate tensors become extra graph outputs; every calibration batch runs once and
updates, per tensor, the absolute maximum (``minmax``) or a histogram of absolute values
(``entropy``). The histogram keeps a fixed number of bins over ``[0, range)`` and doubles its range
(merging bin pairs) whenever a batch exceeds it, so one pass over an iterator is enough.

``entropy`` is TensorRT's EntropyCalibration2 idea: among thresholds ``i`` bins wide (from 128 bins
up to all), choose the one whose clipped distribution ``P`` (values above the threshold folded into
the last bin) loses the least information, measured by KL(P‖Q), when quantized into 128 levels
(``Q``: each level's mass spread evenly over the bins of ``P`` that were non-zero).

There is no fallback to random data: a batch source that yields nothing is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from libtlt.errors import DataError
from libtlt.io.calcache import ENTROPY_CALIBRATION_2, MINMAX_CALIBRATION, write_calibration_cache
from libtlt.log import get_logger
from libtlt.runtime.onnx_precision import elem_types

logger = get_logger(__name__)

ENTROPY = "entropy"
MINMAX = "minmax"
ALGORITHMS = {ENTROPY: ENTROPY_CALIBRATION_2, MINMAX: MINMAX_CALIBRATION}
DEFAULT_NUM_BINS = 2048
QUANTIZED_LEVELS = 128  # int8's non-negative half: |x| maps onto 0..127


# ----------------------------------------------------------------------------------------- histograms

class AbsHistogram:
    """A histogram of ``|x|`` over ``[0, range)`` with ``num_bins`` bins; the range doubles as needed."""

    def __init__(self, num_bins: int = DEFAULT_NUM_BINS):
        if num_bins < QUANTIZED_LEVELS or num_bins % 2:
            raise ValueError(f"num_bins must be even and at least {QUANTIZED_LEVELS}, not {num_bins}")
        self.num_bins = num_bins
        self.counts = np.zeros(num_bins, np.int64)
        self.range = 0.0
        self.amax = 0.0

    def update(self, values: np.ndarray) -> None:
        magnitude = np.abs(np.asarray(values, np.float32).ravel())
        if magnitude.size == 0:
            return
        if not np.isfinite(magnitude).all():
            raise DataError("calibration produced NaN or infinite activations (check the calibration data)")
        batch_max = float(magnitude.max())
        self.amax = max(self.amax, batch_max)
        # Exact zeros (ReLU outputs, padding) quantize exactly at any scale: counting them would only pull
        # the threshold down, since a group holding the zero spike is cheapest when it is one bin wide.
        magnitude = magnitude[magnitude > 0]
        if magnitude.size == 0:
            return
        if self.range == 0.0:
            self.range = batch_max * (1 + 1e-6)
        while batch_max >= self.range:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.concatenate([merged, np.zeros(self.num_bins // 2, np.int64)])
            self.range *= 2.0
        width = self.range / self.num_bins
        index = np.minimum((magnitude / width).astype(np.int64), self.num_bins - 1)
        self.counts += np.bincount(index, minlength=self.num_bins)

    @property
    def bin_width(self) -> float:
        return self.range / self.num_bins


def _divergences(counts: np.ndarray, thresholds: np.ndarray, levels: int) -> np.ndarray:
    """KL(P‖Q) for every threshold (in bins) at once, from prefix sums: O(levels) per threshold.

    Within a group of merged bins Q is constant over P's non-zero bins, so KL splits into
    sum(P log P) (prefix sums of c·log c) minus the sum over groups of P's group mass times log Q.
    """
    total = counts.sum()
    nonzero = counts > 0
    c_log_c = np.where(nonzero, counts * np.log(np.where(nonzero, counts, 1.0)), 0.0)
    prefix = np.concatenate([[0.0], np.cumsum(counts)])
    prefix_nonzero = np.concatenate([[0], np.cumsum(nonzero)])
    prefix_clc = np.concatenate([[0.0], np.cumsum(c_log_c)])
    edges = (np.arange(levels + 1)[None, :] * thresholds[:, None] + levels - 1) // levels  # group g: [e_g, e_g+1)
    mass = prefix[edges[:, 1:]] - prefix[edges[:, :-1]]
    support = (prefix_nonzero[edges[:, 1:]] - prefix_nonzero[edges[:, :-1]]).astype(np.float64)
    tail = total - prefix[thresholds]  # folded into the last bin of P (which is in the last group)
    last_count = counts[thresholds - 1]
    support[:, -1] += (tail > 0) & (last_count == 0)
    p_mass = mass.copy()
    p_mass[:, -1] += tail
    q_total = prefix[thresholds]
    used = p_mass > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.log(mass / (np.maximum(support, 1.0) * q_total[:, None]))
        cross = np.where(used, p_mass * log_q, 0.0).sum(axis=1)
        last = last_count + tail
        self_term = prefix_clc[thresholds - 1] + np.where(last > 0, last * np.log(np.where(last > 0, last, 1.0)), 0.0)
    divergence = (self_term - cross) / total - np.log(total)
    # P has mass where Q has none: infinite divergence, never chosen.
    divergence[(used & (mass == 0)).any(axis=1)] = np.inf
    return divergence


def entropy_amax(histogram: AbsHistogram, *, levels: int = QUANTIZED_LEVELS) -> float:
    """The clipping threshold minimizing KL(P‖Q) (TensorRT-style entropy calibration)."""
    counts = histogram.counts.astype(np.float64)
    if histogram.range == 0.0 or counts.sum() == 0:
        return histogram.amax
    occupied = np.flatnonzero(counts)
    first, last = int(occupied[0]), int(occupied[-1]) + 1  # bins beyond the data change nothing
    # The quantized range must hold at least `levels` bins of data: a threshold just above the smallest
    # values would fold everything into one bin, which KL scores as perfect.
    start = max(levels, first + levels)
    if last <= start:
        return histogram.amax
    candidates = np.arange(start, last + 1)
    divergences = _divergences(counts[:last], candidates, levels)
    if not np.isfinite(divergences).any():
        return histogram.amax
    best_i = int(candidates[int(np.argmin(divergences))])
    return min(histogram.amax, best_i * histogram.bin_width)


# ----------------------------------------------------------------------------------------- tensors

def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """Every float32 activation of ``model``: graph inputs and float node outputs, excluding tensors
    computed from constants alone (TensorRT's cache lists the same kind of tensors)."""
    graph = model.graph
    types = elem_types(model)
    constant = {init.name for init in graph.initializer}
    names = [value.name for value in graph.input if value.name not in constant and types.get(value.name) == TensorProto.FLOAT]
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant" or (inputs and all(name in constant for name in inputs)):
            constant.update(node.output)
            continue
        names.extend(out for out in node.output if out and types.get(out) == TensorProto.FLOAT)
    return list(dict.fromkeys(names))


def _with_outputs(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs also include ``tensors`` (graph inputs excepted)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {value.name for value in probe.graph.output} | {value.name for value in probe.graph.input}
    for name in tensors:
        if name not in existing:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            existing.add(name)
    return probe


# ----------------------------------------------------------------------------------------- batches

def tensorfile_batches(path: str | Path, max_batches: int | None = None) -> Iterator[np.ndarray]:
    """The float32 NCHW batches of a calibration tensorfile (tlt-int8-tensorfile), at most ``max_batches``."""
    from libtlt.io.tensorfile import TensorFile

    with TensorFile(path) as tensors:
        if len(tensors) == 0:
            raise DataError("the calibration tensorfile holds no batches", location=path)
        for index, batch in enumerate(tensors):
            if max_batches is not None and index >= max_batches:
                return
            yield batch


def _session(model: onnx.ModelProto) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Intermediate tensors must keep their names and values: no fusion may remove them.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _static_batch(shape: Sequence[Any]) -> int | None:
    return int(shape[0]) if shape and isinstance(shape[0], int) and shape[0] > 0 else None


def calibrate(model: onnx.ModelProto | bytes, batches: Iterable[Any], *, algorithm: str = ENTROPY,
              tensors: Sequence[str] | None = None, input_name: str | None = None,
              max_batches: int | None = None, num_bins: int = DEFAULT_NUM_BINS) -> dict[str, float]:
    """Run ``batches`` (float32 NCHW arrays) through ``model`` on CPU; returns {tensor: amax}.

    ``tensors`` defaults to every float activation (``activation_tensors``). ``algorithm`` is
    ``entropy`` (EntropyCalibration2) or ``minmax``. An empty batch source raises ``DataError``:
    calibrating on invented data would silently ruin the INT8 model.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown calibration algorithm {algorithm!r} (use one of {', '.join(ALGORITHMS)})")
    if isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    names = list(tensors) if tensors is not None else activation_tensors(model)
    graph_tensors = {value.name for value in model.graph.input} | {out for node in model.graph.node for out in node.output}
    unknown = [name for name in names if name not in graph_tensors]
    if unknown:
        raise DataError(f"the model has no tensor named {', '.join(repr(n) for n in unknown[:8])}")
    session = _session(_with_outputs(model, names))
    inputs = session.get_inputs()
    if input_name is None:
        if len(inputs) != 1:
            raise DataError(f"the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                            "name the one the calibration data feeds")
        input_name = inputs[0].name
    feed = {i.name: i for i in inputs}
    if input_name not in feed:
        raise DataError(f"the model has no input '{input_name}' (it has {', '.join(feed)})")
    expected = feed[input_name].shape
    static_batch = _static_batch(expected)
    outputs = [o.name for o in session.get_outputs()]
    stats: dict[str, AbsHistogram] = {name: AbsHistogram(num_bins) for name in names}
    amax: dict[str, float] = dict.fromkeys(names, 0.0)
    wanted = [name for name in names if name in set(outputs)]
    count = 0
    for batch in batches:
        if max_batches is not None and count >= max_batches:
            break
        array = np.ascontiguousarray(batch, dtype=np.float32)
        _check_batch(array, expected, count)
        chunks = [array] if static_batch is None else _split(array, static_batch, count)
        for chunk in chunks:
            values = dict(zip(wanted, session.run(wanted, {input_name: chunk}), strict=True))
            values[input_name] = chunk
            for name in names:
                if algorithm == MINMAX:
                    data = np.abs(values[name])
                    if data.size:
                        if not np.isfinite(data).all():
                            raise DataError("calibration produced NaN or infinite activations "
                                            f"in tensor '{name}' (check the calibration data)")
                        amax[name] = max(amax[name], float(data.max()))
                else:
                    stats[name].update(values[name])
        count += 1
    if count == 0:
        raise DataError("no calibration data: the batch source is empty (calibration never falls back to random "
                        "data; give a tensorfile from tlt-int8-tensorfile or a directory of images)")
    logger.info("Calibrated %d tensors on %d batches (%s).", len(names), count, algorithm)
    if algorithm == ENTROPY:
        amax = {name: entropy_amax(stats[name]) for name in names}
    return amax


def _check_batch(array: np.ndarray, expected: Sequence[Any], index: int) -> None:
    if array.ndim != len(expected):
        raise DataError(f"calibration batch {index} has shape {list(array.shape)}, the model input has "
                        f"{len(expected)} dimensions {list(expected)}")
    for axis, (got, want) in enumerate(zip(array.shape, expected, strict=True)):
        if axis > 0 and isinstance(want, int) and want > 0 and got != want:
            raise DataError(f"calibration batch {index} has shape {list(array.shape)}, the model input is "
                            f"{list(expected)}")
    if array.shape[0] == 0:
        raise DataError(f"calibration batch {index} is empty")


def _split(array: np.ndarray, size: int, index: int) -> list[np.ndarray]:
    if array.shape[0] % size:
        raise DataError(f"calibration batch {index} holds {array.shape[0]} samples; the model's batch size is "
                        f"fixed at {size}")
    return [array[start:start + size] for start in range(0, array.shape[0], size)]


def calibrate_to_cache(model: onnx.ModelProto | bytes, batches: Iterable[Any], cal_cache_file: str | Path, *,
                       algorithm: str = ENTROPY, **options: Any) -> dict[str, float]:
    """``calibrate`` and write the result as a cal.bin (``TRT-<version>-EntropyCalibration2`` or
    ``MinMaxCalibration``), atomically; returns {tensor: amax}."""
    amax = calibrate(model, batches, algorithm=algorithm, **options)
    write_calibration_cache(cal_cache_file, amax, algorithm=ALGORITHMS[algorithm])
    logger.info("Calibration cache written to %s", cal_cache_file)
    return amax
