"""FasterRCNN's spec → the configurations of its parts, and the training side of the Architecture protocol.

Not registered yet (docs/faster_rcnn.md): the registry still declares FasterRCNN pending until evaluation,
inference and export are served too. What is here is what ``tlt-train`` needs, plus ``training_view``: the model
``fit`` trains (:class:`~libtlt.archs.faster_rcnn.training.FasterRcnnTrainer`, ground truth inside the graph) is not
the model checkpoints save (the inference network, same weights).

Both spec layouts are read (DETECTORS-TWO-STAGE.md §1 "Spec fields"): TLT 2.0's ``network_config`` with
``training_config.reg_config`` / ``lr_scheduler`` and an ``lr`` inside the optimizer, and TAO's ``model_config``
with ``training_config.regularizer`` / ``learning_rate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libtlt.archs.faster_rcnn import data as frcnn_data
from libtlt.archs.faster_rcnn import validation
from libtlt.registry import BOX_DETECTOR, TrainingData, TrainPlan

#: TAO's defaults for the proposal counts when a spec leaves them out (training / inference).
TRAIN_PROPOSALS = (12000, 2000, 0.7)
INFERENCE_PROPOSALS = (6000, 300, 0.7)
DEFAULT_REGR_STD = {"x": 10.0, "y": 10.0, "w": 5.0, "h": 5.0}
#: Layer types the spec's regularizer applies to (TAO regularizes the convolution and dense kernels).
REGULARIZER_SCOPE = ("Conv2D", "Dense")


def _f(value: float) -> float:
    """A proto float32 as the decimal the spec wrote (0.1f → 0.1, not 0.10000000149)."""
    return float(f"{value:.7g}")


def backbone_name(spec: Any) -> str:
    """``resnet:18`` / ``resnet18`` / ``vgg:16`` → the ``libtlt.backbones`` name (``resnet18``, ``vgg16``)."""
    _, model = _section(spec, "model")
    return validation.backbone(model).replace(":", "").replace("_", "")


def _section(spec: Any, kind: str) -> tuple[str, Any]:
    found = validation.section(spec.message, kind)
    if found is None:
        from libtlt.errors import SpecError

        raise SpecError(f"the spec has no {' or '.join(validation.SECTIONS[kind])} section",
                        location=spec.locate(validation.SECTIONS[kind][-1]))
    return found


def _proposal_counts(config: Any, defaults: tuple[int, int, float]) -> tuple[int, int, float]:
    pre = config.rpn_pre_nms_top_N if config.HasField("rpn_pre_nms_top_N") else defaults[0]
    post = config.rpn_nms_max_boxes if config.HasField("rpn_nms_max_boxes") else defaults[1]
    iou = _f(config.rpn_nms_overlap_threshold) if config.HasField("rpn_nms_overlap_threshold") else defaults[2]
    return int(pre), int(post), float(iou)


class FasterRcnnArchitecture:
    """The training side of FasterRCNN (module docstring)."""

    name = "faster_rcnn"
    task = BOX_DETECTOR
    verbs = frozenset({"train"})

    def spec_message(self) -> type:
        from libtlt.spec.protos import faster_rcnn_pb2

        return faster_rcnn_pb2.Experiment

    def validate(self, spec: Any) -> None:
        validation.validate(spec)

    # ---------------------------------------------------------------------------------- configurations
    def class_names(self, spec: Any) -> list[str]:
        return frcnn_data.class_names(spec)

    def network_config(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        """The inference network of ``spec`` (proposal counts of its inference_config)."""
        from libtlt.archs.faster_rcnn.network import FasterRcnnNetworkConfig

        _, model = _section(spec, "model")
        names = list(classes) if classes is not None else self.class_names(spec)
        found = validation.section(spec.message, "inference")
        pre, post, iou = _proposal_counts(found[1], INFERENCE_PROPOSALS) if found else INFERENCE_PROPOSALS
        anchors = model.anchor_box_config
        pooling = model.roi_pooling_config
        training = spec.message.training_config
        return FasterRcnnNetworkConfig(
            backbone=backbone_name(spec), input_shape=frcnn_data.input_config(spec).shape,
            num_fg_classes=len(names), scales=tuple(_f(s) for s in anchors.scale) or (64.0, 128.0, 256.0),
            ratios=tuple(_f(r) for r in anchors.ratio) or (1.0, 0.5, 2.0),
            pool_size=int(pooling.pool_size) or 7, pool_size_2x=bool(pooling.pool_size_2x),
            std_scaling=_f(training.std_scaling) if training.HasField("std_scaling") else 1.0,
            pre_nms_top_n=pre, post_nms_top_n=post, nms_iou=iou, dropout=_f(model.dropout_rate),
            use_bias=bool(model.use_bias), all_projections=bool(model.all_projections),
            use_pooling=bool(model.use_pooling), freeze_bn=bool(model.freeze_bn),
            freeze_blocks=tuple(int(b) for b in model.freeze_blocks),
            activation=model.activation.activation_type or None)

    def training_config(self, spec: Any) -> Any:
        from libtlt.archs.faster_rcnn.rcnn_targets import RcnnTargetConfig
        from libtlt.archs.faster_rcnn.training import TrainingConfig

        train = spec.message.training_config
        _, model = _section(spec, "model")
        std = {**DEFAULT_REGR_STD, **{entry.key: _f(entry.value) for entry in train.classifier_regr_std}}
        pre, post, iou = _proposal_counts(train, TRAIN_PROPOSALS)

        def value(field: str, default: float) -> float:
            return _f(getattr(train, field)) if train.HasField(field) else default

        targets = RcnnTargetConfig(
            min_overlap=value("classifier_min_overlap", 0.0), max_overlap=value("classifier_max_overlap", 0.5),
            roi_mini_batch=int(model.roi_mini_batch) or 256, gt_as_roi=bool(train.gt_as_roi),
            regr_std=(std["x"], std["y"], std["w"], std["h"]))
        return TrainingConfig(
            targets=targets, pre_nms_top_n=pre, post_nms_top_n=post, nms_iou=iou,
            rpn_mini_batch=int(train.rpn_mini_batch) or 256,
            lambda_rpn_class=value("lambda_rpn_class", 1.0), lambda_rpn_regr=value("lambda_rpn_regr", 1.0),
            lambda_cls_class=value("lambda_cls_class", 1.0), lambda_cls_regr=value("lambda_cls_regr", 1.0),
            seed=int(spec.message.random_seed))

    # ---------------------------------------------------------------------------------- train
    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        from libtlt.archs.faster_rcnn.network import build_inference_model

        return build_inference_model(self.network_config(spec, classes))

    def training_view(self, spec: Any, model: Any) -> tuple[Any, Any]:
        """``(model to fit, saving_view)``: the trainer around ``model``'s training graph, and the checkpoint view
        that saves ``model`` itself."""
        from libtlt.archs.faster_rcnn import training

        config = self.training_config(spec)
        return training.FasterRcnnTrainer(training.training_graph(model, config), config), training.saving_view(model)

    def loss(self, spec: Any) -> Any:
        """None: the trainer computes the four weighted losses itself (``training_view``)."""
        return None

    def metrics(self, spec: Any) -> list[Any]:
        return []

    def train_plan(self, spec: Any) -> TrainPlan:
        train = spec.message.training_config
        optimizer, params, lr_in_optimizer = self._optimizer(train)
        schedule, lr_params = self._schedule(spec, train, lr_in_optimizer)
        regularizer, weight = self._regularizer(train)
        pretrained = train.retrain_pruned_model or train.pretrained_weights or None
        return TrainPlan(
            model_name=f"{self.name}_{backbone_name(spec)}", epochs=int(train.num_epochs),
            batch_size_per_gpu=int(train.batch_size_per_gpu), optimizer=optimizer, optimizer_params=params,
            lr_schedule=schedule, lr_params=lr_params, regularizer=regularizer, regularizer_weight=weight,
            regularizer_scope=REGULARIZER_SCOPE if regularizer else (),
            checkpoint_interval=max(1, int(train.checkpoint_interval) or 1), pretrained_model_path=pretrained,
            load_graph=bool(train.retrain_pruned_model),
            random_seed=int(spec.message.random_seed) if spec.message.HasField("random_seed") else None,
            enable_qat=bool(train.enable_qat))

    @staticmethod
    def _optimizer(train: Any) -> tuple[str, dict[str, Any], float | None]:
        which = train.optimizer.WhichOneof("optim")
        if which == "adam":
            adam = train.optimizer.adam
            params: dict[str, Any] = {"beta_1": _f(adam.beta_1) if adam.HasField("beta_1") else 0.9,
                                      "beta_2": _f(adam.beta_2) if adam.HasField("beta_2") else 0.999,
                                      "epsilon": _f(adam.epsilon) if adam.HasField("epsilon") else 1e-7}
            return "adam", params, _f(adam.lr) if adam.HasField("lr") else None
        if which == "rmsprop":
            rms = train.optimizer.rmsprop
            return "rmsprop", {}, _f(rms.lr) if rms.HasField("lr") else None
        sgd = train.optimizer.sgd
        return ("sgd", {"momentum": _f(sgd.momentum), "nesterov": bool(sgd.nesterov)},
                _f(sgd.lr) if sgd.HasField("lr") else None)

    @staticmethod
    def _schedule(spec: Any, train: Any, lr_in_optimizer: float | None) -> tuple[str, dict[str, Any]]:
        """TAO's ``soft_start`` (ramp from start_lr, divided at each annealing point) or ``step``; the learning
        rate of the schedule wins over the optimizer's own ``lr`` (as in TAO)."""
        field = "learning_rate" if train.HasField("learning_rate") else "lr_scheduler"
        config = getattr(train, field)
        which = config.WhichOneof("lr_config")
        if which == "step":
            step = config.step
            return "step", {"base_lr": _f(step.base_lr), "step_size": _f(step.step_size), "gamma": _f(step.gamma)}
        if which == "soft_start":
            soft = config.soft_start
            base = _f(soft.base_lr)
            return "soft_anneal", {"base_lr": base, "soft_start": _f(soft.soft_start),
                                   "annealing_points": [_f(p) for p in soft.annealing_points],
                                   "annealing_divider": _f(soft.annealing_divider),
                                   "start_ratio": _f(soft.start_lr) / base if soft.start_lr > 0 else 1.0}
        if lr_in_optimizer is None:
            raise spec.error(f"training_config.{field}", "needs a soft_start or step schedule")
        return "step", {"base_lr": lr_in_optimizer, "step_size": 100.0, "gamma": 1.0}

    @staticmethod
    def _regularizer(train: Any) -> tuple[str | None, float]:
        if train.HasField("regularizer"):
            reg = train.regularizer
            kind = {reg.L1: "L1", reg.L2: "L2"}.get(reg.type)
            return kind, _f(reg.weight) if kind else 0.0
        if train.HasField("reg_config"):
            kind = train.reg_config.reg_type.upper()
            if kind in ("L1", "L2"):
                return kind, _f(train.reg_config.weight_decay)
        return None, 0.0

    def training_data(self, spec: Any, *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        ds, steps, count = frcnn_data.training_dataset(spec, batch_size=batch_size, seed=seed or 0, strict=strict)
        classes = self.class_names(spec)
        labels = "".join(f"{name}\n" for name in frcnn_data.labels_txt(spec))
        return TrainingData(train=ds, steps_per_epoch=steps, num_samples=count, classes=classes,
                            files={"labels.txt": labels}, metadata={"classes": classes,
                                                                    "input_shape": list(frcnn_data.input_config(
                                                                        spec).shape)},
                            images=frcnn_data.image_paths(spec))
