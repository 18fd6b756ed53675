"""Pretrained weights: copied into a freshly built model by layer name and shape (000 §8.5).

Sources, told apart by content rather than by suffix:

* ``.tlt`` — a model saved by tlt (encrypted; needs the key). With ``load_graph=True`` the stored
  model is returned whole instead (a pruned model's graph differs from a freshly built one).
* Keras HDF5, either layout: the legacy one of TLT's NGC models and of ``model.save("x.h5")``
  (``model_weights`` group or root attribute ``layer_names``, per-layer ``weight_names``) and Keras 3
  ``model.save_weights("x.weights.h5")`` (``layers/.../vars`` groups carrying the layer name).
* A Keras 3 ``.keras`` archive (its ``model.weights.h5``).

For every layer of the target model (nested models are walked), the report says, as TLT's table
does: ``Yes`` — the layer has weights and all of them were loaded from a source layer of the same
name with the same shapes; ``No`` — it has weights but there is no such layer, or the number or
shapes of the weights differ (it keeps its random initialization); ``None`` — it has no weights.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import ModelFileError, UnsupportedError
from libtlt.log import get_logger

__all__ = ["LayerStatus", "LoadReport", "load_pretrained", "read_weights"]

logger = get_logger(__name__)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
_TLT_MAGIC = b"TLTMODEL"


@dataclass(frozen=True)
class LayerStatus:
    name: str
    type: str
    #: "Yes", "No" or "None" (000 §8.5).
    status: str
    reason: str = ""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did, layer by layer."""

    source: str
    layers: list[LayerStatus] = field(default_factory=list)
    #: The model holding the weights: the target (copy) or the stored one (``load_graph=True``).
    model: Any = None
    load_graph: bool = False

    @property
    def loaded(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.status == "Yes"]

    @property
    def not_loaded(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.status == "No"]

    def table(self) -> str:
        """The per-layer table TLT prints (layer name, type, "Pretrained weights loaded")."""
        header = ("Layer name", "Layer type", "Pretrained weights loaded")
        rows = [(layer.name, layer.type, layer.status) for layer in self.layers]
        widths = [max(len(header[i]), *(len(row[i]) for row in rows)) if rows else len(header[i]) for i in range(3)]
        rule = "+-" + "-+-".join("-" * w for w in widths) + "-+"
        lines = [rule, "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |", rule]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
        lines.append(rule)
        return "\n".join(lines)


def _target_layers(model: Any) -> Iterator[Any]:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _target_layers(layer)
        else:
            yield layer


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise ModelFileError("pretrained model file not found", location=path) from None
    except OSError as err:
        raise ModelFileError(f"cannot read the pretrained model file: {err.strerror}", location=path) from None
    if head.startswith(_TLT_MAGIC):
        return "tlt"
    if head.startswith(_HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(_ZIP_SIGNATURE):
        return "keras"
    raise ModelFileError("not a pretrained model: expected a .tlt model, a Keras .h5/.hdf5 file or a .keras "
                         "archive", location=path)


def _weights_of_model(model: Any) -> dict[str, list[np.ndarray]]:
    weights: dict[str, list[np.ndarray]] = {}
    for layer in _target_layers(model):
        if layer.weights:
            weights.setdefault(layer.name, [np.asarray(w) for w in layer.get_weights()])
    return weights


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _weights_of_legacy_h5(group: Any) -> dict[str, list[np.ndarray]]:
    """Keras 2 / legacy layout: ``layer_names`` attribute, one group per layer with ``weight_names``."""
    weights: dict[str, list[np.ndarray]] = {}
    for layer_name in (_decode(n) for n in group.attrs["layer_names"]):
        layer_group = group[layer_name]
        for weight_name in (_decode(n) for n in layer_group.attrs.get("weight_names", [])):
            # "conv1/kernel:0"; inside a nested model's group the first part names the inner layer.
            parts = weight_name.split("/")
            owner = parts[0] if len(parts) > 1 else layer_name
            weights.setdefault(owner, []).append(np.asarray(layer_group[weight_name]))
    return weights


def _weights_of_keras3_h5(h5: Any) -> dict[str, list[np.ndarray]]:
    """Keras 3 layout: groups ``.../vars`` with datasets ``0..n-1`` and the layer's ``name`` attribute."""
    import h5py

    weights: dict[str, list[np.ndarray]] = {}

    def visit(path: str, item: Any) -> None:
        if not (isinstance(item, h5py.Group) and path.split("/")[-1] == "vars" and len(item)):
            return
        if path.startswith("optimizer") or "name" not in item.attrs:
            return
        name = _decode(item.attrs["name"])
        arrays = [np.asarray(item[str(i)]) for i in range(len(item)) if str(i) in item]
        weights.setdefault(name, arrays)

    h5.visititems(visit)
    return weights


def _weights_of_h5_bytes_or_path(source: Any, path: Path) -> dict[str, list[np.ndarray]]:
    import h5py

    try:
        with h5py.File(source, "r") as h5:
            if "model_weights" in h5:
                return _weights_of_legacy_h5(h5["model_weights"])
            if "layer_names" in h5.attrs:
                return _weights_of_legacy_h5(h5)
            if "layers" in h5 or "vars" in h5:
                return _weights_of_keras3_h5(h5)
    except OSError as err:
        raise ModelFileError(f"cannot read the HDF5 file: {err}", location=path) from None
    raise ModelFileError("this HDF5 file holds no Keras weights", location=path)


def read_weights(path: str | Path, key: str | None = None) -> dict[str, list[np.ndarray]]:
    """Layer name → weight arrays (in Keras' ``get_weights`` order) of a pretrained file."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "tlt":
        return _weights_of_model(_load_tlt(path, key))
    if kind == "hdf5":
        return _weights_of_h5_bytes_or_path(str(path), path)
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError):
        raise ModelFileError("not a Keras .keras archive (no model.weights.h5)", location=path) from None
    return _weights_of_h5_bytes_or_path(io.BytesIO(data), path)


def _load_tlt(path: Path, key: str | None) -> Any:
    from libtlt.runtime.keras_model import load_tlt_model

    if not key:
        raise ModelFileError("a .tlt model needs its key to load (-k/--key)", location=path)
    model, _ = load_tlt_model(path, key)
    return model


def load_pretrained(model: Any, path: str | Path, key: str | None = None, *, load_graph: bool = False,
                    log_table: bool = True) -> LoadReport:
    """Initialize ``model`` from the pretrained file ``path``; returns the per-layer :class:`LoadReport`.

    ``load_graph=True`` (a pruned model being retrained) returns the stored ``.tlt`` model itself as
    ``report.model`` and leaves ``model`` (which may be ``None``) alone. A wrong key raises
    ``ModelFileError``.
    """
    path = Path(path)
    if load_graph:
        if _sniff(path) != "tlt":
            raise UnsupportedError("load_graph needs a .tlt model; Keras HDF5 files give weights only",
                                   location=path)
        loaded = _load_tlt(path, key)
        report = LoadReport(source=str(path), model=loaded, load_graph=True)
        report.layers = [LayerStatus(layer.name, type(layer).__name__, "Yes" if layer.weights else "None")
                         for layer in _target_layers(loaded)]
        logger.info("Loaded the model graph and weights of %s", path)
        return report
    if model is None:
        raise ValueError("load_pretrained needs the model to initialize unless load_graph=True")
    source = read_weights(path, key)
    report = LoadReport(source=str(path), model=model)
    for layer in _target_layers(model):
        report.layers.append(_copy_layer(layer, source))
    if log_table:
        logger.info("Pretrained weights from %s: %d of %d layers with weights loaded\n%s", path,
                    len(report.loaded), len(report.loaded) + len(report.not_loaded), report.table())
    return report


def _copy_layer(layer: Any, source: dict[str, list[np.ndarray]]) -> LayerStatus:
    kind = type(layer).__name__
    if not layer.weights:
        return LayerStatus(layer.name, kind, "None")
    arrays = source.get(layer.name)
    if arrays is None:
        return LayerStatus(layer.name, kind, "No", "no layer of this name in the pretrained file")
    wanted = [tuple(w.shape) for w in layer.weights]
    found = [tuple(a.shape) for a in arrays]
    if wanted != found:
        return LayerStatus(layer.name, kind, "No", f"shapes {found} in the file, {wanted} in the model")
    layer.set_weights(arrays)
    return LayerStatus(layer.name, kind, "Yes")
