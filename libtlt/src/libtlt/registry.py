"""The architecture registry: the one extension contract of tlt.

Every tool (``tlt-train ARCH``, ``tlt-evaluate ARCH`` ...) dispatches through this module. An
architecture is any object satisfying :class:`Architecture`, declared as an entry point in the group
``libtlt.architectures`` — the built-in ones in libtlt's own pyproject.toml, exactly like a third-party
plug-in. Entry points are loaded lazily, one at a time, so listing names never imports TensorFlow, and
each loaded object is checked against the protocol; a broken plug-in is named in the error.

Tools know task types (:data:`TASKS`), never architecture names: an architecture says which task it
solves (``task``) and which tool verbs it serves (``verbs``); each verb needs the attributes in
:data:`VERB_ATTRIBUTES`, checked when the architecture is loaded. An architecture of the manuals that
has not landed is registered too, serving no verb and naming what brings it (``pending``): every tool
then says "not implemented yet" from here, with no list of names of its own.

``TLT_ARCHITECTURES`` (comma-separated names) restricts the set, e.g. on a device that should only
ever see ``detectnet_v2``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

from libtlt.errors import TltError, UnsupportedError

ENTRY_POINT_GROUP = "libtlt.architectures"

#: Task types: what a tool needs to know about a model to serve it (outputs, reports, files).
CLASSIFIER = "classifier"
BOX_DETECTOR = "box_detector"
INSTANCE_SEGMENTER = "instance_segmenter"
TASKS = (CLASSIFIER, BOX_DETECTOR, INSTANCE_SEGMENTER)

#: Attributes every architecture must provide; checked when it is loaded.
REQUIRED_ATTRIBUTES = ("name", "task", "verbs", "spec_message", "validate")

#: The tool verbs, and the attributes an architecture serving each needs (``"*"``: any task; a task's own
#: entry adds to it). ``tensorfile`` is tlt-int8-tensorfile (and tlt-export's calibration from ``-e SPEC``).
#: A classifier's tlt-infer needs only the model's metadata and the class map, so it lists nothing.
#: docs/writing-an-architecture.md describes each attribute.
VERB_ATTRIBUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"*": ("default_spec", "build", "label_encoder", "loss", "post_process", "export_outputs",
                    "train_plan", "training_data", "metrics")},
    "evaluate": {CLASSIFIER: ("classifier_evaluation",),
                 INSTANCE_SEGMENTER: ("input_shape", "output_names", "coco_ground_truth", "evaluation_images",
                                      "decode_instances"),
                 BOX_DETECTOR: ("class_names", "input_shape", "output_names", "evaluation_batches",
                                "check_evaluation_data", "decode", "evaluator")},
    "infer": {BOX_DETECTOR: ("inference_options", "inference_setup"),
              INSTANCE_SEGMENTER: ("inference_options", "inference_setup")},
    "export": {"*": ("export_outputs", "metadata")},
    "tensorfile": {"*": ("calibration_batches",)},
}
VERBS = tuple(VERB_ATTRIBUTES)


def verb_attributes(verb: str, task: str) -> tuple[str, ...]:
    """What an architecture of ``task`` needs to serve ``verb``."""
    table = VERB_ATTRIBUTES[verb]
    return (*table.get("*", ()), *table.get(task, ()))


def inference_model_saving_view(model: Any) -> Callable[[Any], tuple[Any, dict[str, Any]]]:
    """The saving view of a ``training_view`` whose fitted graph shares its layers with the inference ``model``
    (FasterRCNN's and MaskRCNN's trainers): checkpoints save ``model`` itself, compiled with the trainer's optimizer
    so that a checkpoint holds the optimizer state a resumed run needs."""

    def view(trainer: Any) -> tuple[Any, dict[str, Any]]:
        optimizer = getattr(trainer, "optimizer", None)
        if optimizer is not None and getattr(model, "optimizer", None) is not optimizer:
            model.compile(optimizer=optimizer)
        return model, {}

    return view


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
    quantization-aware training (``libtlt.qat``, 000 §8.1). ``final_model_path`` (FasterRCNN's ``output_model``):
    tlt-train also writes the final model there.
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
    final_model_path: str | None = None


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


@dataclass
class CalibrationData:
    """INT8 calibration input of one spec: ``batches`` yields preprocessed ``[B, C, H, W]`` float32 images,
    ``batch_size`` each (a last, smaller batch may follow); ``batch_size_field`` names the spec field that sets
    the batch size and ``batch_size_location`` is where (``file:line:column``), for the error when the data
    holds less than one batch."""

    batches: Iterator[Any]
    batch_size: int
    batch_size_field: str
    batch_size_location: str | None = None


@dataclass(frozen=True)
class ClassifierEvaluation:
    """What ``tlt-evaluate`` takes from a classifier's spec: the dataset (a folder of class sub-folders), the model
    when ``-m`` is not given, ``top_k`` and ``batch_size`` (``None``: the tool's defaults), and ``input_config``
    (``libtlt.data.classification.InputConfig``): its centre-crop setting applies to every model, its
    preprocessing to a model that records none (an engine). ``section``, ``dataset_field`` and ``model_field``
    name the spec fields, for the errors when one is missing."""

    dataset_path: str | None
    model_path: str | None
    top_k: int | None
    batch_size: int | None
    input_config: Any
    section: str
    dataset_field: str
    model_field: str = "model_path"


@dataclass(frozen=True)
class EvaluationImage:
    """One image an instance segmenter's ``evaluation_images`` yields: its id in the COCO ground truth and its
    original size, in which ``decode_instances`` returns boxes and masks."""

    image_id: int
    width: int
    height: int


@dataclass
class InferenceSetup:
    """A box detector's model ready for ``tlt-infer``, built by the architecture from its spec.

    ``preprocess`` turns one HWC uint8 image already resized to ``input_shape`` (C, H, W) into the network's
    CHW float32 input; ``decode(outputs, count)`` turns a batch's outputs (by name) into ``count`` per-image
    detections with ``boxes`` ``[M, 4]`` in network-input pixels, ``confidences`` and ``class_ids``; an instance
    segmenter's also carry ``masks`` ``[M, H, W]`` (values in [0, 1], on the network-input grid).
    ``label_names`` are the class names written to KITTI labels and ``colors`` the boxes' RGB colours, per class;
    ``annotate`` / ``write_labels`` say which outputs are wanted (``settings_field`` names the spec section that
    says so, for the warning when neither is) and ``linewidth`` how wide boxes are drawn; ``images_dir``,
    ``annotated_dir`` and ``labels_dir`` are what the spec names, if it does.

    ``input_size``, where set, says the network takes images of any size (``input_shape`` is then ``(C, -1, -1)``):
    it maps an image's ``(width, height)`` to the network input's, each image runs in a batch of its own, and
    ``decode`` gets that size as a third argument, ``decode(outputs, 1, (width, height))``.

    ``keep_aspect`` letterboxes instead of stretching (MaskRCNN's training and evaluation input): each image is
    scaled by ``s = min(H/h, W/w)`` to ``(round(w·s), round(h·s))``, ``preprocess`` gets it at that size, and its
    CHW output is padded with zeros at the bottom and right to ``input_shape`` — zero in the network's input
    space, after preprocessing, as a pipeline that normalises and then pads has it. Boxes are divided by ``s``;
    masks are cropped to the unpadded region before they are resized to the original image.
    """

    predictor: Any
    model_path: str
    classes: Sequence[str]
    input_shape: tuple[int, int, int]
    batch_size: int
    preprocess: Any
    decode: Any
    label_names: Sequence[str]
    colors: Sequence[tuple[int, int, int]]
    annotate: bool = True
    write_labels: bool = True
    linewidth: int = 2
    settings_field: str = ""
    #: Where the spec says the images are and the outputs go (FasterRCNN's ``inference_config``): tlt-infer's
    #: defaults for ``-i`` and ``-o``.
    images_dir: str | None = None
    annotated_dir: str | None = None
    labels_dir: str | None = None
    input_size: Callable[[int, int], tuple[int, int]] | None = None
    keep_aspect: bool = False


@runtime_checkable
class Architecture(Protocol):
    """What a meta-architecture supplies; the verbs (train, evaluate, prune, export) do the rest.

    ``spec`` arguments are the ``libtlt.spec.LoadedSpec`` of a file loaded as ``spec_message()``
    (and checked by ``validate``), so an architecture can point its errors at ``file:line:column``.
    """

    name: str
    #: One of :data:`TASKS`.
    task: str
    #: The tool verbs (:data:`VERBS`) this architecture serves.
    verbs: frozenset[str]

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
    if obj.task not in TASKS:
        raise RegistryError(f"architecture from '{origin}' has task '{obj.task}' (one of: {', '.join(TASKS)})")
    unknown = sorted(set(obj.verbs) - set(VERBS))
    if unknown:
        raise RegistryError(f"architecture from '{origin}' serves unknown verb(s) {', '.join(unknown)} "
                            f"(one of: {', '.join(VERBS)})")
    for verb in sorted(obj.verbs):
        lacking = [attr for attr in verb_attributes(verb, obj.task) if not hasattr(obj, attr)]
        if lacking:
            raise RegistryError(f"architecture from '{origin}' serves '{verb}' but lacks {', '.join(lacking)}")
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
    if getattr(obj, "name", None) != name and name not in getattr(obj, "aliases", ()):
        raise RegistryError(f"entry point '{name}' ({ep.value}) provides architecture named '{obj.name}'")
    return obj


def supports(arch: Any, verb: str) -> bool:
    """Whether ``arch`` serves ``verb``."""
    return verb in arch.verbs


def architectures_for(verb: str) -> list[str]:
    """Names of the registered architectures that serve ``verb``, sorted (aliases too); loads each. A broken
    plug-in is left out with a warning naming it, so that it cannot hide the others."""
    from libtlt.log import get_logger

    served = []
    for name in architecture_names():
        try:
            arch = get_architecture(name)
        except (RegistryError, ImportError) as err:
            get_logger("libtlt.registry").warning("Skipping architecture '%s': %s", name, err)
            continue
        if supports(arch, verb):
            served.append(name)
    return served


def resolve(tool: str, verb: str, name: str) -> Any:
    """The architecture ``name`` for ``tool``'s ``verb``: unknown names list the ones that serve it, and a
    registered architecture that does not serve it says "not implemented yet" (and what brings it)."""
    points = _entry_points()
    if name not in points:
        known = ", ".join(architectures_for(verb)) or "none installed"
        raise RegistryError(f"unknown architecture '{name}' (known: {known})")
    arch = get_architecture(name)
    if not supports(arch, verb):
        pending = getattr(arch, "pending", None) or f"the {name} architecture does not serve {tool}"
        raise UnsupportedError(f"{tool} {name} is not implemented yet ({pending}).")
    return arch


@dataclass(frozen=True)
class DeclaredArchitecture:
    """An architecture of the manuals whose implementation has not landed: its spec (``spec``, a
    ``libtlt.spec.experiments.SpecKind``) loads and validates, so users get spec errors already, but it serves no
    verb; ``pending`` names what brings it."""

    name: str
    task: str
    pending: str
    spec: Any
    aliases: tuple[str, ...] = ()
    verbs: frozenset[str] = frozenset()

    def spec_message(self) -> type:
        return self.spec.message_class()  # type: ignore[no-any-return]

    def validate(self, spec: Any) -> None:
        self.spec.validate(spec)
