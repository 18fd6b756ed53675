"""tlt-prune's logic: load a .tlt, choose the filters to keep, rebuild a smaller model, verify it, save it.

``prune_model`` works on an in-memory Keras functional model; ``prune_file`` is what the command runs (load,
prune, save the encrypted .tlt with the source metadata plus ``pruned``, write the JSON report).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import TltError
from libtlt.io.atomic import write_text
from libtlt.io.modelfile import DEFAULT_KDF_ITERATIONS
from libtlt.log import get_logger
from libtlt.qat.metadata import METADATA_KEY as QAT_KEY
from tlt_prune import stats
from tlt_prune.graph import DEPTHWISE, PRODUCER, ChannelMap, GraphAnalysis, analyze, layer_family
from tlt_prune.rebuild import LayerChange, rebuild

log = get_logger("tlt_prune.prune")

#: The manual's defaults (000 chapter 11).
DEFAULTS: dict[str, Any] = {
    "normalizer": "max",
    "equalization_criterion": "union",
    "pruning_granularity": 8,
    "pruning_threshold": 0.1,
    "min_num_filters": 16,
    "excluded_layers": (),
}


@dataclass
class LayerReport:
    name: str
    type: str
    filters_before: int
    filters_after: int


@dataclass
class PruneResult:
    model: Any
    layers: list[LayerReport]
    params_before: int
    params_after: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pruning_ratio(self) -> float:
        """Parameters of the pruned model over the original's."""
        return self.params_after / self.params_before if self.params_before else 1.0


def check_options(*, normalizer: str, equalization_criterion: str, pruning_granularity: int,
                  pruning_threshold: float, min_num_filters: int) -> None:
    """Reject option values the algorithm cannot use (``TltError``: exit status 2 in the command)."""
    if normalizer not in stats.NORMALIZERS:
        raise TltError(f"unknown normalizer '{normalizer}'; use one of {', '.join(stats.NORMALIZERS)}",
                       field="normalizer")
    if equalization_criterion not in stats.EQUALIZATIONS:
        raise TltError(f"unknown equalization criterion '{equalization_criterion}'; use one of "
                       f"{', '.join(stats.EQUALIZATIONS)}", field="equalization_criterion")
    if not np.isfinite(pruning_threshold) or pruning_threshold < 0:
        raise TltError(f"pruning threshold {pruning_threshold} must be a number >= 0", field="pruning_threshold")
    if normalizer == "max" and pruning_threshold > 1:
        raise TltError(f"pruning threshold {pruning_threshold} is outside [0, 1]: with the max normalizer every "
                       "normalized norm is at most 1", field="pruning_threshold")
    if pruning_granularity < 1:
        raise TltError(f"pruning granularity {pruning_granularity} must be at least 1", field="pruning_granularity")
    if min_num_filters < 0:
        raise TltError(f"min_num_filters {min_num_filters} must be >= 0", field="min_num_filters")


def _kernel(layer: Any, name: str) -> np.ndarray:
    from keras import ops

    for variable in layer.weights:
        if variable.name == name:
            return ops.convert_to_numpy(variable)
    raise RuntimeError(f"{type(layer).__name__} '{layer.name}' has no weight '{name}'")


def _producer_norms(layer: Any) -> np.ndarray:
    family = layer_family(layer)
    if family == "separable":
        return stats.filter_norms(_kernel(layer, "pointwise_kernel"), -1)
    return stats.filter_norms(_kernel(layer, "kernel"), -2 if family == "transpose" else -1)


def _group_stats(analysis: GraphAnalysis, normalizer: str) -> dict[int, list[np.ndarray]]:
    """Each root group's normalized statistics, one vector per contributing layer (NaN: not covered)."""
    groups = analysis.groups
    contributions: dict[int, list[np.ndarray]] = {}
    for info in analysis.layers.values():
        if info.kind == PRODUCER and info.group is not None:
            values = stats.normalize(_producer_norms(info.layer), normalizer)
            contributions.setdefault(groups.find(info.group), []).append(values)
        elif info.kind == DEPTHWISE and info.in_map is not None:
            values = stats.normalize(stats.filter_norms(_kernel(info.layer, "kernel"), -2), normalizer)
            per_root: dict[int, np.ndarray] = {}
            for gid in info.in_map.groups():
                root = groups.find(gid)
                vector = per_root.setdefault(root, np.full(groups.size[root], np.nan))
                positions = info.in_map.gid == gid
                np.fmax.at(vector, info.in_map.idx[positions], values[positions])
            for root, vector in per_root.items():
                contributions.setdefault(root, []).append(vector)
    return contributions


def _keep_masks(analysis: GraphAnalysis, *, normalizer: str, equalization_criterion: str,
                pruning_granularity: int, pruning_threshold: float, min_num_filters: int) -> dict[int, np.ndarray]:
    groups = analysis.groups
    contributions = _group_stats(analysis, normalizer)
    masks = {}
    for root in groups.roots():
        mask = np.ones(groups.size[root], dtype=bool)
        if not groups.is_fixed(root) and root in contributions:
            merged = stats.equalize(contributions[root], equalization_criterion)
            mask[:] = False
            mask[stats.retained_indices(merged, pruning_threshold, pruning_granularity, min_num_filters)] = True
        masks[root] = mask
    return masks


def _map_keep(channel_map: ChannelMap | None, analysis: GraphAnalysis, masks: dict[int, np.ndarray]
              ) -> np.ndarray | None:
    """Indices of the kept positions of ``channel_map`` (None: the tensor keeps every channel)."""
    if channel_map is None:
        return None
    keep = np.ones(len(channel_map), dtype=bool)
    for gid in channel_map.groups():
        positions = channel_map.gid == gid
        keep[positions] = masks[analysis.groups.find(gid)][channel_map.idx[positions]]
    return np.flatnonzero(keep)


def _reshaped(layer: Any, out_map: ChannelMap, analysis: GraphAnalysis, masks: dict[int, np.ndarray]
              ) -> list[int]:
    """A Reshape's target shape with its channel axis shrunk to the kept channels."""
    target = list(layer.target_shape)
    kept = _map_keep(out_map, analysis, masks)
    if target[out_map.axis - 1] != -1 and kept is not None:
        target[out_map.axis - 1] = int(kept.size)
    return target


def _check_excluded(model: Any, excluded: Sequence[str]) -> None:
    names = [layer.name for layer in model.layers]
    for name in excluded:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TltError(f"excluded layer '{name}' is not in the model{hint}", field="excluded_layers")


def _random_inputs(model: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    batch = []
    for tensor in model.inputs:
        shape = [1] + [d if d is not None else 32 for d in tuple(tensor.shape)[1:]]
        batch.append(rng.normal(size=shape).astype(tensor.dtype if isinstance(tensor.dtype, str) else "float32"))
    return batch


def _verify(original: Any, pruned: Any) -> None:
    """The rebuilt model must run and give outputs of the original shapes (outputs are never pruned)."""
    import keras

    inputs = _random_inputs(original)
    feed = inputs if len(inputs) > 1 else inputs[0]
    before = keras.tree.flatten(original(feed, training=False))
    after = keras.tree.flatten(pruned(feed, training=False))
    shapes_before = [tuple(t.shape) for t in before]
    shapes_after = [tuple(t.shape) for t in after]
    if shapes_before != shapes_after:
        raise RuntimeError(f"pruned model outputs {shapes_after}, expected {shapes_before}")


def prune_model(model: Any, *, normalizer: str = "max", equalization_criterion: str = "union",
                pruning_granularity: int = 8, pruning_threshold: float = 0.1, min_num_filters: int = 16,
                excluded_layers: Sequence[str] = ()) -> PruneResult:
    """Remove the low-norm filters of ``model`` (a Keras functional model); the original is left untouched."""
    options: dict[str, Any] = {"normalizer": normalizer, "equalization_criterion": equalization_criterion,
               "pruning_granularity": int(pruning_granularity), "pruning_threshold": float(pruning_threshold),
               "min_num_filters": int(min_num_filters)}
    check_options(**options)
    analysis = analyze(model)
    _check_excluded(model, excluded_layers)
    for name in excluded_layers:
        analysis.fix_layer_outputs(name, f"excluded layer '{name}'")
    analysis.check_supported()
    masks = _keep_masks(analysis, **options)

    changes: dict[str, LayerChange] = {}
    reports: list[LayerReport] = []
    for layer in model.layers:
        info = analysis.layers.get(layer.name)
        if info is None:
            continue
        if type(layer).__name__ == "Reshape" and info.out_map is not None:
            changes[layer.name] = LayerChange(config={"target_shape": _reshaped(layer, info.out_map, analysis,
                                                                                masks)})
        if not layer.weights:
            continue
        in_keep = _map_keep(info.in_map, analysis, masks)
        change = LayerChange(in_keep=in_keep, axis=info.in_map.axis if info.in_map is not None else -1)
        if info.kind == PRODUCER and info.group is not None:
            mask = masks[analysis.groups.find(info.group)]
            change.out_keep = np.flatnonzero(mask)
            change.config = {"units" if layer_family(layer) == "dense" else "filters": int(mask.sum())}
            reports.append(LayerReport(layer.name, info.class_name, int(mask.size), int(mask.sum())))
        elif info.kind == DEPTHWISE:
            multiplier = int(layer.depth_multiplier)
            channels = int(_kernel(layer, "kernel").shape[-2])
            kept = channels if in_keep is None else int(in_keep.size)
            reports.append(LayerReport(layer.name, info.class_name, channels * multiplier, kept * multiplier))
        changes[layer.name] = change

    pruned = rebuild(model, changes)
    _verify(model, pruned)
    options["excluded_layers"] = list(excluded_layers)
    return PruneResult(pruned, reports, int(model.count_params()), int(pruned.count_params()), options)


def report_path(output_file: str | Path) -> Path:
    """Where the JSON report goes: beside the output, ``<name>.json`` (``<name>.prune.json`` for a .json output)."""
    output = Path(output_file)
    if output.suffix.lower() == ".json":
        return output.with_name(output.name[: -len(output.suffix)] + ".prune.json")
    return output.with_suffix(".json")


def threshold_for_ratio(model: Any, keep_ratio: float, *, steps: int = 8, **options: Any) -> float:
    """The ``-pth`` whose pruned model keeps about ``keep_ratio`` of the parameters (bisection, ``steps``
    trial prunes in memory; the other ``options`` as for :func:`prune_model`). For choosing the threshold
    by the size one wants, as NVIDIA's advice (keep 10–30 %) is phrased, rather than by trial runs."""
    if not 0.0 < keep_ratio < 1.0:
        raise TltError(f"the ratio of parameters to keep must be in (0, 1), not {keep_ratio}")
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        result = prune_model(model, pruning_threshold=middle, **options)
        ratio = result.params_after / result.params_before
        log.debug("-pth %.4f keeps %.4f of the parameters", middle, ratio)
        if ratio > keep_ratio:
            low = middle
        else:
            high = middle
    return round(high, 4)


def prune_file(pretrained_model: str | Path, output_file: str | Path, key: str, *,
               kdf_iterations: int = DEFAULT_KDF_ITERATIONS, keep_ratio: float | None = None,
               **options: Any) -> dict[str, Any]:
    """Prune the .tlt ``pretrained_model`` into ``output_file``; returns the report (also written as JSON).
    With ``keep_ratio`` the threshold is the one that keeps about that fraction of the parameters."""
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    settings = {**DEFAULTS, **options}
    check_options(**{k: v for k, v in settings.items() if k != "excluded_layers"})
    log.info("Loading model %s", pretrained_model)
    model, metadata = load_tlt_model(pretrained_model, key)
    if keep_ratio is not None:
        search = {k: v for k, v in settings.items() if k != "pruning_threshold"}
        settings["pruning_threshold"] = threshold_for_ratio(model, keep_ratio, **search)
        log.info("-pth %.4f keeps about %.0f%% of the parameters", settings["pruning_threshold"], 100 * keep_ratio)
    result = prune_model(model, **settings)
    log.info("Pruned %d layers: %d -> %d parameters", sum(r.filters_after < r.filters_before for r in result.layers),
             result.params_before, result.params_after)

    meta = {k: v for k, v in metadata.items() if k not in ("framework", "libtlt_version", QAT_KEY)}
    if QAT_KEY in metadata:
        # Removing filters changes the activations the learned ranges describe: retrain (with QAT) to
        # learn new ones, or export with calibration.
        log.warning("%s was trained with QAT: its activation ranges are dropped from the pruned model",
                    pretrained_model)
    meta["pruned"] = {"from": Path(pretrained_model).name, "params_before": result.params_before,
                      "params_after": result.params_after, "threshold": result.options["pruning_threshold"],
                      **{k: v for k, v in result.options.items() if k != "pruning_threshold"}}
    save_tlt_model(output_file, result.model, key, meta, kdf_iterations=kdf_iterations)
    log.info("Saved the pruned model to %s", output_file)

    report = {
        "pretrained_model": str(pretrained_model),
        "output_file": str(output_file),
        "options": result.options,
        "layers": [vars(r) for r in result.layers],
        "params_before": result.params_before,
        "params_after": result.params_after,
        "pruning_ratio": result.pruning_ratio,
        # The weights (BatchNorm statistics included) are what shrinks; a training checkpoint's file also
        # holds the optimizer's state, so the file sizes are reported too but are not comparable.
        "weights_before_bytes": _weight_bytes(model),
        "weights_after_bytes": _weight_bytes(result.model),
        "size_before_bytes": Path(pretrained_model).stat().st_size,
        "size_after_bytes": Path(output_file).stat().st_size,
    }
    write_text(report_path(output_file), json.dumps(report, indent=2) + "\n")
    return report


def _weight_bytes(model: Any) -> int:
    return int(sum(np.asarray(weight).nbytes for weight in model.get_weights()))


def format_report(report: dict[str, Any]) -> str:
    """The per-layer table and the totals, as printed by the command."""
    rows = [(r["name"], r["type"], str(r["filters_before"]), str(r["filters_after"])) for r in report["layers"]]
    header = ("layer", "type", "filters before", "filters after")
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths,
                                                                                           strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        marker = "" if row[2] == row[3] else "  *"
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))) + marker)
    mib = 1024 * 1024
    lines += [
        "",
        f"Parameters before pruning: {report['params_before']:,}",
        f"Parameters after pruning:  {report['params_after']:,}",
        f"Pruning ratio (pruned model / original model): {report['pruning_ratio']:.4f}",
        f"Model size (weights): {report['weights_before_bytes'] / mib:.2f} MiB -> "
        f"{report['weights_after_bytes'] / mib:.2f} MiB",
        f"Model file: {report['size_before_bytes'] / mib:.2f} MiB -> {report['size_after_bytes'] / mib:.2f} MiB",
    ]
    return "\n".join(lines)
