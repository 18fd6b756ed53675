"""Which schema and which validator each kind of spec file uses, by name — without importing TensorFlow.

Tools load a spec with :func:`load_experiment` (parse + semantic validation); the architecture
registry's ``spec_message``/``validate`` delegate here, so there is one table of schemas.
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


def _arch(name: str, message: str = "Experiment") -> SpecKind:
    return SpecKind(name, f"{name}_pb2", message, f"libtlt.archs.{name}.validation:validate")


SPEC_KINDS: dict[str, SpecKind] = {
    kind.name: kind
    for kind in (
        SpecKind("augment", "augment_pb2", "AugmentationConfig"),
        SpecKind("dataset_export", "dataset_export_pb2", "DatasetExportConfig"),
        _arch("classification"),
        _arch("detectnet_v2"),
        SpecKind("detectnet_v2_inference", "detectnet_v2_pb2", "InferenceSpec",
                 "libtlt.archs.detectnet_v2.validation:validate_inference"),
        _arch("faster_rcnn"),
        _arch("ssd"),
        _arch("dssd"),
        _arch("retinanet"),
        _arch("yolo_v3"),
        _arch("mask_rcnn"),
    )
}


def spec_kind(name: str) -> SpecKind:
    try:
        return SPEC_KINDS[name]
    except KeyError:
        raise SpecError(f"unknown spec kind '{name}' (known: {', '.join(sorted(SPEC_KINDS))})") from None


def load_experiment(kind: str, path: str | Path, *, validate: bool = True) -> LoadedSpec[Any]:
    """Load the spec at ``path`` as ``kind`` (e.g. ``detectnet_v2``) and validate it."""
    entry = spec_kind(kind)
    spec: LoadedSpec[Any] = load_spec(path, entry.message_class())
    if validate:
        entry.validate(spec)
    return spec
