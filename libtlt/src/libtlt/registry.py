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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    "train_plan",
    "training_data",
    "metrics",
)


@dataclass(frozen=True)
class TrainPlan:
    """What ``tlt-train`` needs from a spec to run the generic training loop (no TensorFlow objects).

    ``optimizer`` is ``sgd``, ``adam`` or ``rmsprop`` with its parameters; ``lr_schedule`` names a
    scheduler (``soft_anneal``, ``step``, ``cosine``, ``soft_start_annealing``) and ``lr_params`` its
    parameters by the scheduler's keyword names (``base_lr``, ``soft_start``, ``annealing_points``,
    ``annealing_divider``, ``step_size``, ``gamma``, ``min_lr_ratio``; ``min_lr``, ``max_lr``,
    ``annealing``); rates are per GPU, the tool scales them by the number of replicas. ``regularizer`` is
    ``L1``, ``L2`` or ``None`` (no regularization), applied to the layer types in ``regularizer_scope``.
    ``model_name`` prefixes the checkpoint files, ``weights/<model_name>_<NNN>.tlt`` (000 names
    classification checkpoints after the backbone, e.g. ``resnet_003.tlt``). ``load_graph`` (DetectNet_v2's
    ``model_config.load_graph``) takes the pretrained ``.tlt``'s whole graph instead of its weights by name;
    tlt-train also does so for any ``.tlt`` that tlt-prune marked as pruned. ``enable_qat`` trains with
    quantization-aware training (``libtlt.qat``, 000 §8.1).
    """

    model_name: str
    epochs: int
    batch_size_per_gpu: int
    optimizer: str = "sgd"
    optimizer_params: Mapping[str, Any] = field(default_factory=dict)
    lr_schedule: str = "soft_anneal"
    lr_params: Mapping[str, Any] = field(default_factory=dict)
    regularizer: str | None = None
    regularizer_weight: float = 0.0
    regularizer_scope: tuple[str, ...] = ()
    checkpoint_interval: int = 1
    pretrained_model_path: str | None = None
    load_graph: bool = False
    random_seed: int | None = None
    enable_qat: bool = False


@dataclass
class TrainingData:
    """The datasets of one training run, built by the architecture for ``tlt-train``.

    ``train`` yields ``(inputs, targets)`` batches forever (it is repeated); one epoch is
    ``steps_per_epoch`` batches. ``validation`` (or ``None``) is finite, ``validation_steps`` batches.
    ``classes`` are the class names in network output order. ``files`` are extra result files
    (name relative to the results directory → text, e.g. ``classmap.json``); ``metadata`` is what the
    saved ``.tlt`` models record (docs/formats.md). ``images`` (optional) lists the image files the
    pipelines read, so that when TensorFlow fails to decode one without naming it, tlt-train can find it.
    """

    train: Any
    steps_per_epoch: int
    num_samples: int
    classes: Sequence[str]
    validation: Any = None
    validation_steps: int | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    images: Sequence[str] = ()


@runtime_checkable
class Architecture(Protocol):
    """What a meta-architecture supplies; the verbs (train, evaluate, prune, export) do the rest.

    ``spec`` arguments are the ``libtlt.spec.LoadedSpec`` of a file loaded as ``spec_message()``
    (and checked by ``validate``), so an architecture can point its errors at ``file:line:column``.
    """

    name: str

    def spec_message(self) -> type:
        """The protobuf message class of this architecture's experiment spec."""

    def default_spec(self) -> str:
        """A complete, loadable experiment spec in text format."""

    def validate(self, spec: Any) -> None:
        """Raise ``SpecError`` naming the field for semantically invalid specs."""

    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        """Build the Keras model for ``spec``; ``classes`` (output order) when the data decides them."""

    def label_encoder(self, spec: Any) -> Any:
        """Turn ground-truth labels into training targets."""

    def loss(self, spec: Any) -> Any:
        """The training loss."""

    def post_process(self, spec: Any) -> Any:
        """Turn raw network outputs into predictions."""

    def export_outputs(self, spec: Any) -> list[str]:
        """Output node names of the exported graph, in order."""

    def train_plan(self, spec: Any) -> TrainPlan:
        """Epochs, batch size, optimizer, learning rate schedule, regularizer and checkpoints of ``spec``."""

    def training_data(self, spec: Any, *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        """The training and validation datasets of ``spec`` (``batch_size`` over all replicas)."""

    def metrics(self, spec: Any) -> list[Any]:
        """Keras metrics reported during training (their names appear in status.json and the CSV log)."""


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
