"""Which schema and which validator each kind of spec file uses, by name — without importing TensorFlow.

Tools load a spec with :func:`load_experiment` (parse + semantic validation). An architecture's experiment
spec comes from the registry (its ``spec_message``/``validate``); the table here holds the other kinds
(augmentation, dataset export, DetectNet_v2's inference spec), and the ``SpecKind`` that a declared (pending)
architecture carries.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libtlt.errors import SpecError
from libtlt.spec.loader import LoadedSpec, load_spec


@dataclass(frozen=True)
class SpecKind:
    """A kind of spec file: its protobuf message and (optionally) its semantic validator."""

    name: str
    module: str  # the generated *_pb2 module
    message: str  # top-level message name in it
    validator: str | None = None  # "package.module:function"

    def message_class(self) -> type:
        return getattr(importlib.import_module(f"libtlt.spec.protos.{self.module}"), self.message)  # type: ignore[no-any-return]

    def validate(self, spec: LoadedSpec[Any]) -> None:
        if self.validator:
            module, function = self.validator.split(":")
            getattr(importlib.import_module(module), function)(spec)


#: Spec kinds that are not an architecture's experiment spec. An architecture's experiment spec is found
#: through the registry (``libtlt.registry``: its ``spec_message`` and ``validate``), so a plug-in's spec loads
#: in every tool like a built-in one.
SPEC_KINDS: dict[str, SpecKind] = {
    kind.name: kind
    for kind in (
        SpecKind("augment", "augment_pb2", "AugmentationConfig"),
        SpecKind("dataset_export", "dataset_export_pb2", "DatasetExportConfig"),
        SpecKind("detectnet_v2_inference", "detectnet_v2_pb2", "InferenceSpec",
                 "libtlt.archs.detectnet_v2.validation:validate_inference"),
    )
}


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture's experiment spec, through the registry."""

    name: str
    architecture: Any

    def message_class(self) -> type:
        return self.architecture.spec_message()  # type: ignore[no-any-return]

    def validate(self, spec: LoadedSpec[Any]) -> None:
        self.architecture.validate(spec)


def spec_kind(name: str) -> SpecKind | ArchitectureSpec:
    """The spec kind ``name``: one of :data:`SPEC_KINDS`, or a registered architecture's experiment spec."""
    if name in SPEC_KINDS:
        return SPEC_KINDS[name]
    from libtlt.registry import architecture_names, get_architecture

    if name in architecture_names():
        return ArchitectureSpec(name, get_architecture(name))
    known = sorted({*SPEC_KINDS, *architecture_names()})
    raise SpecError(f"unknown spec kind '{name}' (known: {', '.join(known)})")


def load_experiment(kind: str, path: str | Path, *, validate: bool = True) -> LoadedSpec[Any]:
    """Load the spec at ``path`` as ``kind`` (e.g. ``detectnet_v2``) and validate it."""
    entry = spec_kind(kind)
    spec: LoadedSpec[Any] = load_spec(path, entry.message_class())
    if validate:
        entry.validate(spec)
    return spec
