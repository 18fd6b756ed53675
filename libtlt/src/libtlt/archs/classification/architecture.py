"""The classification architecture (000 §7.1, §8.3; 003): a backbone with a softmax head.

Registered as the ``classification`` entry point of ``libtlt.architectures``. Everything here reads
the spec through :func:`experiment`, which folds either layout (000 prototxt, 003 YAML) into the 000
names; TensorFlow is imported only by the methods that build models or datasets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from libtlt.archs.classification import validation
from libtlt.archs.classification.classification_head import PREDICTIONS, ClassifierConfig, build_classifier
from libtlt.archs.classification.classification_label_encoder import (
    ClassificationDecoder,
    ClassificationLabelEncoder,
)
from libtlt.errors import SpecError, UnsupportedError
from libtlt.log import get_logger
from libtlt.registry import CLASSIFIER, ClassifierEvaluation, TrainingData, TrainPlan
from libtlt.spec import LoadedSpec
from libtlt.spec.backbones import backbone_name
from libtlt.spec.protos import classification_pb2 as pb

logger = get_logger("libtlt.archs.classification")
NAME = "classification"

#: Used when a spec has no lr_config (the 003 sample's scheduler).
DEFAULT_LR = {"scheduler": "cosine", "base_lr": 0.05, "soft_start": 0.05, "min_lr_ratio": 0.0}
#: Backbones of 000 §7.1 that libtlt.backbones does not build.
UNBUILT = ("alexnet",)


def _f(value: float) -> float:
    """A protobuf float (32-bit) as the decimal the user wrote: 0.9 instead of 0.8999999761581421."""
    return float(f"{value:.7g}")


def experiment(spec: LoadedSpec[pb.Experiment]) -> pb.Experiment:
    """The spec's message in the 000 layout, whichever layout the file uses."""
    return validation.canonical_experiment(spec.message)


def resolve_backbone(spec: LoadedSpec[pb.Experiment]) -> str:
    """The ``libtlt.backbones`` name of the spec's ``arch`` / ``n_layers`` (``resnet`` + 18 → ``resnet18``)."""
    model = experiment(spec).model_config
    arch = model.arch
    if arch in UNBUILT:
        raise spec.error("model_config.arch", f"the {arch} backbone is not available in this version of tlt")
    if arch.startswith("efficientnet"):
        return "efficientnet_b" + arch[-1]
    try:
        return backbone_name(arch, model.n_layers if model.HasField("n_layers") else None)
    except ValueError as err:
        raise spec.error("model_config.n_layers", str(err)) from None


def model_name(spec: LoadedSpec[pb.Experiment]) -> str:
    """Checkpoint prefix: the backbone family as the spec writes it (``resnet``, ``efficientnet_b0``)."""
    return experiment(spec).model_config.arch.replace("-", "_")


class ClassificationArchitecture:
    """Classification behind the ``libtlt.registry.Architecture`` protocol."""

    name = NAME
    task = CLASSIFIER
    verbs = frozenset({"train", "evaluate", "infer", "export"})

    # ------------------------------------------------------------------------------ spec
    def spec_message(self) -> type:
        return pb.Experiment

    def default_spec(self) -> str:
        return resources.files("libtlt.archs.classification").joinpath("default_spec.txt").read_text("utf-8")

    def validate(self, spec: LoadedSpec[pb.Experiment]) -> None:
        validation.validate(spec)
        resolve_backbone(spec)
        check_supported(spec)

    def train_plan(self, spec: LoadedSpec[pb.Experiment]) -> TrainPlan:
        train = experiment(spec).train_config
        optimizer = train.optimizer or "sgd"
        optim = train.optim_config
        params: dict[str, Any]
        if optimizer == "sgd":
            params = {"momentum": _f(optim.momentum), "nesterov": optim.nesterov}
        elif optimizer == "adam":
            params = {"beta_1": _f(optim.beta_1), "beta_2": _f(optim.beta_2), "epsilon": _f(optim.epsilon)}
        else:
            params = {}
        lr = train.lr_config
        if lr.HasField("scheduler"):
            lr_params: dict[str, Any] = {"base_lr": _f(lr.learning_rate)}
            if lr.scheduler == "step":
                lr_params.update(step_size=lr.step_size, gamma=_f(lr.gamma))
            elif lr.scheduler == "soft_anneal":
                lr_params.update(soft_start=_f(lr.soft_start), annealing_divider=_f(lr.annealing_divider),
                                 annealing_points=validation.annealing_points(lr))
            else:
                lr_params.update(soft_start=_f(lr.soft_start), min_lr_ratio=_f(lr.min_lr_ratio))
            scheduler = lr.scheduler
        else:
            scheduler = str(DEFAULT_LR["scheduler"])
            lr_params = {k: v for k, v in DEFAULT_LR.items() if k != "scheduler"}
        reg = train.reg_config
        regularizer = reg.type if reg.type in ("L1", "L2") else None
        return TrainPlan(
            model_name=model_name(spec),
            epochs=train.n_epochs if train.HasField("n_epochs") else train.num_epochs,
            batch_size_per_gpu=train.batch_size_per_gpu,
            optimizer=optimizer,
            optimizer_params=params,
            lr_schedule=scheduler,
            lr_params=lr_params,
            regularizer=regularizer,
            regularizer_weight=_f(reg.weight_decay) if regularizer else 0.0,
            regularizer_scope=tuple(validation.reg_scope(reg)) if regularizer else (),
            checkpoint_interval=train.checkpoint_interval,
            pretrained_model_path=train.pretrained_model_path or None,
            random_seed=train.random_seed if train.HasField("random_seed") else None,
        )

    # ----------------------------------------------------------------------------- model
    def classifier_config(self, spec: LoadedSpec[pb.Experiment], num_classes: int) -> ClassifierConfig:
        exp = experiment(spec)
        model = exp.model_config
        bn = exp.train_config.bn_config
        return ClassifierConfig(
            backbone=resolve_backbone(spec),
            input_shape=validation.input_image_size(model),
            num_classes=num_classes,
            use_bias=model.use_bias,
            use_batch_norm=model.use_batch_norm,
            all_projections=model.all_projections,
            use_pooling=model.use_pooling,
            freeze_bn=model.freeze_bn,
            freeze_blocks=tuple(int(b) for b in model.freeze_blocks),
            dropout=model.dropout,
            retain_head=model.retain_head,
            bn_momentum=_f(bn.momentum),
            bn_epsilon=_f(bn.epsilon),
        )

    def build(self, spec: LoadedSpec[pb.Experiment], classes: Sequence[str] | None = None) -> Any:
        if classes is None:
            classes = self.classes_from_folders(spec)
        if len(classes) < 2:
            raise SpecError(f"a classifier needs at least 2 classes, got {len(classes)}", location=spec.path)
        return build_classifier(self.classifier_config(spec, len(classes)))

    def classes_from_folders(self, spec: LoadedSpec[pb.Experiment]) -> list[str]:
        """Class names in output order: the sorted class folders of the training dataset (000 §6.1)."""
        root = self._train_path(spec)
        return sorted(p.name for p in Path(root).iterdir() if p.is_dir())

    def label_encoder(self, spec: LoadedSpec[pb.Experiment], num_classes: int | None = None) -> ClassificationLabelEncoder:
        classes = num_classes if num_classes is not None else len(self.classes_from_folders(spec))
        from libtlt.archs.classification.classification_inputs import augment_settings

        return ClassificationLabelEncoder(classes, augment_settings(spec).label_smoothing)

    def loss(self, spec: LoadedSpec[pb.Experiment]) -> Any:
        import keras

        # Targets arrive smoothed (and mixed) from the input pipeline; the loss adds nothing.
        return keras.losses.CategoricalCrossentropy(name="categorical_crossentropy")

    def metrics(self, spec: LoadedSpec[pb.Experiment]) -> list[Any]:
        import keras

        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def post_process(self, spec: LoadedSpec[pb.Experiment], classes: Sequence[str] | None = None) -> ClassificationDecoder:
        return ClassificationDecoder(tuple(classes) if classes is not None else None)

    def export_outputs(self, spec: LoadedSpec[pb.Experiment]) -> list[str]:
        return [f"{PREDICTIONS}/Softmax"]

    # ------------------------------------------------------------------------------ data
    def training_data(self, spec: LoadedSpec[pb.Experiment], *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        from libtlt.archs.classification.classification_inputs import augment_settings, input_config_from_spec
        from libtlt.data.classification import dataset_steps, make_dataset, scan_folder

        exp = experiment(spec)
        train_root = self._train_path(spec)
        val_root = exp.train_config.val_dataset_path or None
        train_index = scan_folder(train_root, strict=strict)
        class_map = train_index.class_map
        if len(class_map) < 2:
            raise SpecError(f"a classifier needs at least 2 classes; {train_root} has {len(class_map)} class folder",
                            location=spec.locate("train_config.train_dataset_path"))
        if len(train_index) < batch_size:
            raise SpecError(f"the training set has {len(train_index)} images, fewer than one batch ({batch_size})",
                            location=spec.locate("train_config.batch_size_per_gpu"))
        logger.info("Training augmentation: %s", augment_settings(spec).describe())
        _warn_without_batch_norm(spec, exp)
        train = make_dataset(train_index, input_config_from_spec(spec, training=True), batch_size=batch_size,
                             training=True, seed=seed or 0, drop_remainder=True, repeat=True)
        validation_ds, validation_steps = None, None
        if val_root is not None:
            val_index = scan_folder(val_root, class_map=class_map, strict=strict)
            validation_ds = make_dataset(val_index, input_config_from_spec(spec, training=False),
                                         batch_size=batch_size, training=False)
            validation_steps = dataset_steps(len(val_index), batch_size)
        return TrainingData(
            train=train,
            steps_per_epoch=dataset_steps(len(train_index), batch_size, drop_remainder=True),
            num_samples=len(train_index),
            classes=list(class_map.names),
            validation=validation_ds,
            validation_steps=validation_steps,
            files={"classmap.json": json.dumps(class_map.to_json(), indent=2) + "\n"},
            metadata=self.metadata(spec, class_map.names),
        )

    def sample_spec(self, data: Any) -> str:
        """The default spec on ``libtlt.testing.SampleData`` (32x32 shapes), one short epoch (tests/archs)."""
        replacements = {'train_dataset_path: "data/classification/train"': f'train_dataset_path: "{data.train}"',
                        'val_dataset_path: "data/classification/val"': f'val_dataset_path: "{data.val}"',
                        'eval_dataset_path: "data/classification/test"': f'eval_dataset_path: "{data.val}"',
                        'input_image_size: "3,64,64"': 'input_image_size: "3,32,32"',
                        "n_layers: 18": "n_layers: 10", "batch_size_per_gpu: 32": "batch_size_per_gpu: 8",
                        "n_epochs: 10": "n_epochs: 1", "checkpoint_interval: 5": "checkpoint_interval: 1"}
        from libtlt.spec.edits import edit_spec_text

        return edit_spec_text(self.default_spec(), replacements, "the default classification spec")

    def classifier_evaluation(self, spec: LoadedSpec[pb.Experiment]) -> ClassifierEvaluation:
        """``eval_config`` (000) or ``evaluate`` (003) for tlt-evaluate; the centre crop follows the spec's form."""
        from libtlt.archs.classification.classification_inputs import input_config_from_spec

        evaluate = experiment(spec).eval_config
        yaml_form = spec.message.HasField("evaluate")
        return ClassifierEvaluation(
            dataset_path=evaluate.eval_dataset_path or None,
            model_path=evaluate.model_path or None,
            top_k=evaluate.top_k or None,
            batch_size=evaluate.batch_size or None,
            input_config=input_config_from_spec(spec, training=False),
            section="evaluate" if yaml_form else "eval_config",
            dataset_field="dataset_path" if yaml_form else "eval_dataset_path",
        )

    def metadata(self, spec: LoadedSpec[pb.Experiment], classes: Sequence[str]) -> dict[str, Any]:
        """What a saved classification model records (read by tlt-evaluate, tlt-infer, tlt-export)."""
        from libtlt.archs.classification.classification_inputs import augment_settings

        exp = experiment(spec)
        model = exp.model_config
        interpolation = pb.InterpolationMethod.Name(model.resize_interpolation_method).lower()
        try:
            text = Path(spec.path).read_text(encoding="utf-8")
        except OSError:  # a spec parsed from text: store its canonical text form
            from google.protobuf import text_format

            text = text_format.MessageToString(spec.message)
        return {
            "architecture": NAME,
            "classes": list(classes),
            "input_shape": list(validation.input_image_size(model)),
            "input_layout": "NCHW",
            "preprocess_mode": exp.data.preprocess_mode,
            "image_mean": list(exp.data.image_mean) or None,
            "interpolation": interpolation,
            "center_crop": augment_settings(spec).center_crop,
            "spec": text,
        }

    def _train_path(self, spec: LoadedSpec[pb.Experiment]) -> str:
        train = experiment(spec).train_config
        if not train.train_dataset_path:
            where = "data" if spec.message.HasField("data") else "train_config"
            raise SpecError("train_dataset_path is required for training (a folder of class sub-folders)",
                            location=spec.locate(where), field=f"{where}.train_dataset_path")
        return train.train_dataset_path


def _warn_without_batch_norm(spec: LoadedSpec[pb.Experiment], exp: pb.Experiment) -> None:
    """Say so when the network has no batch normalization: a spec that does not write use_batch_norm gets none."""
    if exp.model_config.use_batch_norm or resolve_backbone(spec).startswith("efficientnet"):
        return
    hint = (" With preprocess_mode 'caffe' (inputs of about ±128) such a network usually diverges."
            if exp.data.preprocess_mode == "caffe" else "")
    logger.warning("%s: use_batch_norm is off, so the %s has no batch normalization layers.%s Set "
                   "use_batch_norm: true unless that is what you want.", spec.locate("model_config.use_batch_norm"),
                   resolve_backbone(spec), hint)


def check_supported(spec: LoadedSpec[pb.Experiment]) -> None:
    """Settings the schema accepts but this version cannot honour."""
    exp = experiment(spec)
    if exp.model_config.byom_model:
        raise UnsupportedError("BYOM models (.tltb) are not supported",
                               location=spec.locate("model.byom_model"), field="model.byom_model")
    if exp.train_config.qat:
        raise UnsupportedError("quantization-aware training is not supported for classification",
                               location=spec.locate("train.qat"), field="train.qat")
