"""The architecture registry: the one extension contract of tlt.

Every tool (``tlt-train ARCH``, ``tlt-evaluate ARCH`` ...) dispatches through this module. An
architecture is any object satisfying :class:`Architecture`, declared as an entry point in the group
``libtlt.architectures`` — the built-in ones in libtlt's own pyproject.toml, exactly like a third-party
plug-in. Entry points are loaded lazily, one at a time, so listing names never imports TensorFlow, and
each loaded object is checked against the protocol; a broken plug-in is named in the error.

``TLT_ARCHITECTURES`` (comma-separated names) restricts the set, e.g. on a device that should only
ever see ``detectnet_v2``.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

from libtlt.errors import TltError

ENTRY_POINT_GROUP = "libtlt.architectures"

#: Attributes every architecture must provide; checked when it is loaded.
REQUIRED_ATTRIBUTES = (
    "name",
    "spec_message",
    "default_spec",
    "validate",
    "build",
    "label_encoder",
    "loss",
    "post_process",
    "export_outputs",
)


@runtime_checkable
class Architecture(Protocol):
    """What a meta-architecture supplies; the verbs (train, evaluate, prune, export) do the rest."""

    name: str

    def spec_message(self) -> type:
        """The protobuf message class of this architecture's experiment spec."""

    def default_spec(self) -> str:
        """A complete, loadable experiment spec in text format."""

    def validate(self, spec: Any) -> None:
        """Raise ``SpecError`` naming the field for semantically invalid specs."""

    def build(self, spec: Any) -> Any:
        """Build the Keras model for ``spec``."""

    def label_encoder(self, spec: Any) -> Any:
        """Turn ground-truth labels into training targets."""

    def loss(self, spec: Any) -> Any:
        """The training loss."""

    def post_process(self, spec: Any) -> Any:
        """Turn raw network outputs into predictions."""

    def export_outputs(self, spec: Any) -> list[str]:
        """Output node names of the exported graph, in order."""


class RegistryError(TltError):
    """An unknown architecture name or a broken plug-in."""


def _allowed() -> set[str] | None:
    value = os.environ.get("TLT_ARCHITECTURES", "").strip()
    return {n.strip() for n in value.split(",") if n.strip()} if value else None


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    allowed = _allowed()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if ep.name in found and found[ep.name].value != ep.value:
            raise RegistryError(
                f"architecture '{ep.name}' is registered twice: by '{found[ep.name].value}' and '{ep.value}'"
            )
        found[ep.name] = ep
    return found


def architecture_names() -> list[str]:
    """Names of the registered architectures, sorted; imports none of them."""
    return sorted(_entry_points())


def check_architecture(obj: Any, origin: str) -> Any:
    """Check ``obj`` against the protocol; ``origin`` names the package in the error."""
    missing = [attr for attr in REQUIRED_ATTRIBUTES if not hasattr(obj, attr)]
    if missing:
        raise RegistryError(f"architecture from '{origin}' lacks {', '.join(missing)}")
    return obj


@cache
def get_architecture(name: str) -> Any:
    """Load, check and return the architecture registered as ``name``."""
    points = _entry_points()
    if name not in points:
        known = ", ".join(sorted(points)) or "none installed"
        raise RegistryError(f"unknown architecture '{name}' (known: {known})")
    ep = points[name]
    loaded = ep.load()
    obj = loaded() if isinstance(loaded, type) else loaded
    check_architecture(obj, ep.value)
    if getattr(obj, "name", None) != name:
        raise RegistryError(f"entry point '{name}' ({ep.value}) provides architecture named '{obj.name}'")
    return obj
