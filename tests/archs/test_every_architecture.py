"""What every registered architecture must satisfy, parametrized from the registry: a new architecture is tested
by being registered.

For each architecture that trains: its default spec loads and validates; the model it builds has one output per
exported name and survives a ``.tlt`` round trip with identical predictions; ``tlt-prune -pth 0`` keeps its
predictions; and the verbs it claims have what the tools call (checked by the registry on load). Declared
(pending) architectures: they serve no verb, name what brings them, and their spec message loads.
The per-tool behaviour is tested through the installed commands in each tool's suite and, for an architecture
from outside, in tests/test_plugin_architecture.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libtlt.registry import TASKS, VERBS, architecture_names, architectures_for, get_architecture
from libtlt.spec.loader import load_spec_text

TRAINABLE = architectures_for("train")
DECLARED = [name for name in architecture_names() if not get_architecture(name).verbs]
KEY = "every-arch"


def default_spec(arch: Any) -> Any:
    spec = load_spec_text(arch.default_spec(), arch.spec_message(), name=f"<{arch.name} default spec>")
    arch.validate(spec)
    return spec


def test_the_registry_holds_the_manuals_architectures() -> None:
    assert {"classification", "detectnet_v2"} <= set(TRAINABLE)
    assert {"ssd", "dssd", "retinanet", "yolo_v3", "yolo", "faster_rcnn", "mask_rcnn"} <= set(DECLARED)


@pytest.mark.parametrize("name", architecture_names())
def test_task_and_verbs(name: str) -> None:
    arch = get_architecture(name)
    assert arch.task in TASKS and set(arch.verbs) <= set(VERBS)
    assert arch.name == name or name in getattr(arch, "aliases", ())


@pytest.mark.parametrize("name", DECLARED)
def test_declared_architectures_name_what_brings_them(name: str) -> None:
    arch = get_architecture(name)
    assert arch.pending.startswith("issue ")
    assert arch.spec_message().DESCRIPTOR.name  # the spec schema loads


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINABLE)
def test_model_round_trip_and_identity_prune(name: str, tmp_path: Path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model
    from tlt_prune.prune import prune_model

    arch = get_architecture(name)
    spec = default_spec(arch)
    classes = ["a", "b"]
    model = arch.build(spec, classes)
    assert len(model.outputs) == len(arch.export_outputs(spec))
    batch = np.random.default_rng(0).uniform(0.0, 1.0, (1, *model.inputs[0].shape[1:])).astype(np.float32)
    expected = [np.asarray(o) for o in _as_list(model.predict_on_batch(batch))]

    save_tlt_model(tmp_path / "m.tlt", model, KEY, {"architecture": name, "classes": classes}, kdf_iterations=1000)
    loaded, meta = load_tlt_model(tmp_path / "m.tlt", KEY, architecture=name)
    assert meta["architecture"] == name
    for ours, theirs in zip(expected, _as_list(loaded.predict_on_batch(batch)), strict=True):
        np.testing.assert_allclose(np.asarray(theirs), ours, rtol=1e-5, atol=1e-6)

    same = prune_model(loaded, pruning_threshold=0.0)
    for ours, theirs in zip(expected, _as_list(same.model.predict_on_batch(batch)), strict=True):
        np.testing.assert_allclose(np.asarray(theirs), ours, rtol=1e-4, atol=1e-5)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]
