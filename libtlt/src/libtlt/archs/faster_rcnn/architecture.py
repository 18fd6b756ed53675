"""FasterRCNN behind the Architecture protocol: spec → the configurations of its parts, and what each tool needs.

``training_view``: the model ``fit`` trains (:class:`~libtlt.archs.faster_rcnn.training.FasterRcnnTrainer`, ground
truth inside the graph) is not the model checkpoints save (the inference network, same weights). Evaluation and
inference decode the inference model's ``proposals`` / ``dense_class_td`` / ``dense_regress_td`` in NumPy
(``decoding``), or read an exported graph's ``NMS`` / ``NMS_1``; evaluation also reports the RPN recall of the
proposals (a ``.tlt`` only: an exported graph has no proposals output). Matching is PASCAL VOC's with "difficult"
ground truth (``libtlt.metrics.detection``): with ``evaluation_config.gt_occluded_as_difficult`` (default true, as
TAO) a box whose KITTI occlusion is > 0 is difficult — a detection whose best match it is counts neither as a true
nor as a false positive, and it is no miss when unmatched; false counts every box. ``evaluation_frames`` puts the
flags on each ``Truth`` and the evaluator takes them as ``gt_difficult`` (tlt-evaluate and the validation during
training alike).

Both spec layouts are read (DETECTORS-TWO-STAGE.md §1 "Spec fields"): TLT 2.0's ``network_config`` with
``training_config.reg_config`` / ``lr_scheduler`` and an ``lr`` inside the optimizer, and TAO's ``model_config``
with ``training_config.regularizer`` / ``learning_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.archs.faster_rcnn import data as frcnn_data
from libtlt.archs.faster_rcnn import validation
from libtlt.registry import BOX_DETECTOR, CalibrationData, InferenceSetup, TrainingData, TrainPlan

#: TAO's defaults for the proposal counts when a spec leaves them out (training / inference).
TRAIN_PROPOSALS = (12000, 2000, 0.7)
INFERENCE_PROPOSALS = (6000, 300, 0.7)
DEFAULT_REGR_STD = {"x": 10.0, "y": 10.0, "w": 5.0, "h": 5.0}
#: Layer types the spec's regularizer applies to (TAO regularizes the convolution and dense kernels).
REGULARIZER_SCOPE = ("Conv2D", "Dense")
#: The inference model's outputs (network.build_inference_model) and the deployed graph's (DeepStream's NMS layout).
OUTPUTS = ("rpn_out_class", "rpn_out_regress", "proposals", "dense_class_td", "dense_regress_td")
DEPLOYED_OUTPUTS = ("NMS", "NMS_1")
#: evaluation_config / inference_config defaults where the spec leaves a field out (DETECTORS-TWO-STAGE.md §1).
EVAL_DEFAULTS = {"object_confidence_thres": 1e-4, "classifier_nms_max_boxes": 100,
                 "classifier_nms_overlap_threshold": 0.3}
#: tlt-infer's drawing threshold when inference_config has no bbox_visualize_threshold (its proto default).
DEFAULT_VISUALIZE_THRESHOLD = 0.6
#: A proposal covers a ground-truth box for the RPN recall at this IoU.
RPN_RECALL_IOU = 0.5
COLORS = ((255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 190, 0), (200, 0, 200), (0, 200, 200))


@dataclass(frozen=True)
class DetectionSettings:
    """The final decode and NMS of an ``evaluation_config`` or ``inference_config``."""

    confidence_threshold: float
    nms_iou: float
    max_boxes: int
    regr_std: tuple[float, float, float, float]


@dataclass(frozen=True)
class Detections:
    """One image's detections (``libtlt.layers.anchor_detection.Detections``' fields) and, from a ``.tlt``, the
    image's proposals ``[P, 4]`` for the RPN recall (``None`` from an exported graph)."""

    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray
    proposals: np.ndarray | None = None


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
    """FasterRCNN for every tool (module docstring)."""

    name = "faster_rcnn"
    task = BOX_DETECTOR
    verbs = frozenset({"train", "evaluate", "infer", "export", "tensorfile"})

    def spec_message(self) -> type:
        from libtlt.spec.protos import faster_rcnn_pb2

        return faster_rcnn_pb2.Experiment

    def default_spec(self) -> str:
        """000 §7.3's sample spec (TLT 2.0 layout)."""
        return resources.files("libtlt.archs.faster_rcnn").joinpath("default_spec.txt").read_text("utf-8")

    def validate(self, spec: Any) -> None:
        validation.validate(spec)

    # ---------------------------------------------------------------------------------- configurations
    def class_names(self, spec: Any) -> list[str]:
        return frcnn_data.class_names(spec)

    def input_shape(self, spec: Any) -> tuple[int, int, int]:
        return frcnn_data.input_config(spec).shape

    def regr_std(self, spec: Any) -> tuple[float, float, float, float]:
        """``classifier_regr_std`` (x, y, w, h), TAO's 10, 10, 5, 5 where left out."""
        std = {**DEFAULT_REGR_STD,
               **{e.key: _f(e.value) for e in spec.message.training_config.classifier_regr_std}}
        return std["x"], std["y"], std["w"], std["h"]

    def detection_settings(self, spec: Any, kind: str = "evaluation") -> DetectionSettings:
        """The decode and NMS settings of the spec's ``evaluation_config`` or ``inference_config`` (``kind``)."""
        found = validation.section(spec.message, kind)
        config = found[1] if found is not None else None

        def value(field: str) -> float:
            if config is not None and config.HasField(field):
                return _f(getattr(config, field))
            return EVAL_DEFAULTS[field]

        return DetectionSettings(confidence_threshold=value("object_confidence_thres"),
                                 nms_iou=value("classifier_nms_overlap_threshold"),
                                 max_boxes=max(1, int(value("classifier_nms_max_boxes"))),
                                 regr_std=self.regr_std(spec))

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
        pre, post, iou = _proposal_counts(train, TRAIN_PROPOSALS)

        def value(field: str, default: float) -> float:
            return _f(getattr(train, field)) if train.HasField(field) else default

        targets = RcnnTargetConfig(
            min_overlap=value("classifier_min_overlap", 0.0), max_overlap=value("classifier_max_overlap", 0.5),
            roi_mini_batch=int(model.roi_mini_batch) or 256, gt_as_roi=bool(train.gt_as_roi),
            regr_std=self.regr_std(spec))
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

    def label_encoder(self, spec: Any) -> Any:
        """None: the RPN targets are made in the data pipeline and the RCNN targets inside the trained graph."""
        return None

    def post_process(self, spec: Any) -> Any:
        return lambda outputs: self._decode_outputs(spec, outputs, self.detection_settings(spec))

    def metrics(self, spec: Any) -> list[Any]:
        return []

    def export_outputs(self, spec: Any) -> list[str]:
        return list(OUTPUTS)

    def deployed_output_names(self, spec: Any) -> list[str]:
        return list(DEPLOYED_OUTPUTS)

    def export_graph(self, spec: Any, keras_model: Any) -> Any:
        """The whole deployable graph in standard ONNX ops (tlt-export's hook): the trunk and RPN, the proposals
        (TopK + NonMaxSuppression), RoiAlign, the RCNN body and head, and the per-class decode + NMS into DeepStream's
        ``NMS`` / ``NMS_1``, with ``inference_config``'s thresholds. The proposal counts are the model's own."""
        from libtlt.archs.faster_rcnn.export import to_onnx
        from libtlt.runtime.onnx_two_stage import DetectionConfig

        _not_exportable_if_dynamic(spec)
        classes = [str(c) for c in self.class_names(spec)]
        fg = int(keras_model.get_layer("dense_class_td").output.shape[-1]) - 1
        settings = self.detection_settings(spec, "inference")
        _, height, width = self.input_shape(spec)
        detection = DetectionConfig(image_height=height, image_width=width, num_classes=fg,
                                    confidence_threshold=settings.confidence_threshold, iou_threshold=settings.nms_iou,
                                    keep_top_k=settings.max_boxes, regr_std=settings.regr_std)
        names = classes if len(classes) == fg else [f"class_{i}" for i in range(fg)]
        return to_onnx(keras_model, self.network_config(spec, names), detection)

    def metadata(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        """What the saved models record: classes, input and its preprocessing, outputs, and the spec's text."""
        from google.protobuf import text_format

        config = frcnn_data.input_config(spec)
        try:
            text = Path(spec.path).read_text(encoding="utf-8")
        except (OSError, TypeError):
            text = text_format.MessageToString(spec.message)
        return {"architecture": self.name, "classes": list(classes), "input_shape": list(config.shape),
                "input_layout": "NCHW", "image_scale": 1.0 / config.scaling_factor,
                "image_offsets": [m / config.scaling_factor for m in config.means],
                "color_format": {"bgr": "bgr", "rgb": "rgb"}.get(config.channel_order, "gray"),
                "background_first": False, "output_names": list(OUTPUTS), "spec": text}

    def deepstream_settings(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        """nvinfer keys beyond the common ones and labels.txt's lines (§13.3.4: background last)."""
        labels = frcnn_data.labels_txt(spec)
        return {"labels": labels, "num-detected-classes": len(labels),
                "parse-bbox-func-name": "NvDsInferParseCustomNMSTLT",
                "custom-lib-path": "<path to libnvds_infercustomparser_tlt.so>", "maintain-aspect-ratio": 0}

    def training_callbacks(self, spec: Any, data: TrainingData, model: Any) -> list[Any]:
        """Validation mAP (and RPN recall) on the inference ``model`` every
        ``evaluation_config.validation_period_during_training`` epochs (default: after the last one)."""
        return [_validation_callback(self, spec, model)]

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
            enable_qat=bool(train.enable_qat), final_model_path=train.output_model or None)

    def results_dir(self, spec: Any) -> str | None:
        """Where ``tlt-train faster_rcnn -e SPEC -k KEY`` (the manuals' form, no ``-r``) writes: the folder of
        ``training_config.output_model``."""
        output = spec.message.training_config.output_model
        return str(Path(output).parent) if output else None

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
        # The saved models record the preprocessing (tlt-export's calibration images and DeepStream's offsets).
        return TrainingData(train=ds, steps_per_epoch=steps, num_samples=count, classes=classes,
                            files={"labels.txt": labels}, metadata=self.metadata(spec, classes),
                            images=frcnn_data.image_paths(spec))

    # ---------------------------------------------------------------------------------------- evaluate
    def output_names(self, spec: Any) -> list[str]:
        return list(OUTPUTS)

    def evaluation_model(self, spec: Any) -> str | None:
        """The model ``tlt-evaluate faster_rcnn -e SPEC`` evaluates without ``-m``: ``trt_evaluation``'s engine or
        ``.etlt`` when the block is there, else ``evaluation_config.model``."""
        return _spec_model(spec, "evaluation", "trt_evaluation")

    def inference_model(self, spec: Any) -> str | None:
        """The model ``tlt-infer faster_rcnn`` runs without ``-m``: ``trt_inference``'s engine or ``.etlt``, else
        ``inference_config.model``."""
        return _spec_model(spec, "inference", "trt_inference")

    def evaluation_batches(self, spec: Any, *, use_training_set: bool = False,
                           batch_size: int | None = None) -> Iterator[tuple[np.ndarray, list[Any]]]:
        return frcnn_data.evaluation_frames(spec, use_training_set=use_training_set, batch_size=batch_size)

    def check_evaluation_data(self, spec: Any, classes: Sequence[str], use_training_set: bool) -> None:
        from libtlt.data.detection import check_evaluation_data

        check_evaluation_data(frcnn_data._common(spec), classes, use_training_set)

    def decode(self, spec: Any, outputs: Mapping[str, np.ndarray], image_sizes: Sequence[tuple[int, int]],
               classes: Sequence[str]) -> list[Detections]:
        """Detections above ``evaluation_config.object_confidence_thres`` (boxes in network-input pixels).
        ``image_sizes`` are the network inputs' ``(width, height)``: one size per batch (with ``size_min`` the batch
        is one image of its own size)."""
        return self._decode_outputs(spec, outputs, self.detection_settings(spec),
                                    input_size=image_sizes[0] if image_sizes else None)

    def _decode_outputs(self, spec: Any, outputs: Mapping[str, np.ndarray], settings: DetectionSettings,
                        threshold: float = -math.inf, input_size: tuple[int, int] | None = None) -> list[Detections]:
        from libtlt.archs.faster_rcnn.decoding import decode_detections
        from libtlt.layers.anchor_detection import from_nms

        _, height, width = self.input_shape(spec)
        if input_size is not None:
            width, height = int(input_size[0]), int(input_size[1])
        elif height <= 0 or width <= 0:
            raise ValueError("decoding a model of a dynamic input size (size_min) needs the input's size")
        if DEPLOYED_OUTPUTS[0] in outputs and DEPLOYED_OUTPUTS[1] in outputs:
            found = from_nms(outputs[DEPLOYED_OUTPUTS[0]], outputs[DEPLOYED_OUTPUTS[1]], width, height, threshold,
                             first=0)
            return [Detections(d.boxes, d.confidences, d.class_ids) for d in found]
        rois = np.asarray(outputs["proposals"], np.float32)
        decoded = decode_detections(rois, np.asarray(outputs["dense_class_td"]),
                                    np.asarray(outputs["dense_regress_td"]), (height, width),
                                    regr_std=settings.regr_std, nms_iou=settings.nms_iou,
                                    score_threshold=settings.confidence_threshold, max_boxes=settings.max_boxes)
        result = []
        for d, image_rois in zip(decoded, rois, strict=True):
            keep = d.confidences > threshold
            real = (image_rois[:, 2] > image_rois[:, 0]) & (image_rois[:, 3] > image_rois[:, 1])
            result.append(Detections(np.asarray(d.boxes)[keep], np.asarray(d.confidences)[keep],
                                     np.asarray(d.class_ids)[keep], image_rois[real]))
        return result

    def evaluator(self, spec: Any, classes: Sequence[str]) -> Any:
        """VOC AP (11-point with ``use_voc07_11point_metric``, else integrated) at ``gt_matching_iou_threshold``
        (default 0.5), or at every IoU of ``gt_matching_iou_threshold_range`` (start inclusive, end exclusive: 0.5,
        0.05, 1.0 is COCO's ten) with the mean over them, and the RPN recall of the proposals beside it; difficult
        boxes come with the ground truth (``gt_difficult``, see ``evaluation_batches``)."""
        found = validation.section(spec.message, "evaluation")
        config = found[1] if found is not None else None
        mode = "SAMPLE" if config is not None and config.use_voc07_11point_metric else "INTEGRATE"
        ious: float | list[float] = 0.5
        if config is not None and config.HasField("gt_matching_iou_threshold"):
            ious = _f(config.gt_matching_iou_threshold)
        elif config is not None and config.HasField("gt_matching_iou_threshold_range"):
            rng = config.gt_matching_iou_threshold_range
            ious = iou_range(_f(rng.start), _f(rng.step), _f(rng.end))
        return RpnRecallEvaluator(classes, iou_thresholds=ious, mode=mode)

    # ------------------------------------------------------------------------------------------- infer
    def inference_options(self) -> list[Any]:
        import click

        return [click.option("-m", "--model", type=click.Path(dir_okay=False), default=None,
                             help="The model: .tlt, .etlt or engine (default: inference_config.model)."),
                click.option("-t", "--threshold", type=float, default=None,
                             help="Confidence threshold of the boxes drawn and written (default: "
                                  "inference_config.bbox_visualize_threshold, 0.6).")]

    def inference_setup(self, spec_path: str | Path, key: str | None, *, model: str | None,
                        threshold: float | None) -> InferenceSetup:
        from libtlt.errors import SpecError
        from libtlt.runtime.predictor import make_predictor
        from libtlt.spec import load_spec

        spec: Any = load_spec(spec_path, self.spec_message())
        self.validate(spec)
        found = validation.section(spec.message, "inference")
        config = found[1] if found is not None else None
        if model is None:
            model = self.inference_model(spec)
            if model is None:
                raise SpecError("no model: give -m MODEL or inference_config.model",
                                location=spec.locate(found[0] if found else "inference_config"))
        if threshold is None:
            threshold = _f(config.bbox_visualize_threshold) if config is not None else DEFAULT_VISUALIZE_THRESHOLD
        settings = self.detection_settings(spec, "inference")
        predictor = make_predictor(model, key, None, architecture=self.name)
        classes = self.class_names(spec)
        input_settings = frcnn_data.input_config(spec)
        limit = float(threshold)

        def decode(outputs: Any, count: int, input_size: tuple[int, int] | None = None) -> list[Detections]:
            return self._decode_outputs(spec, outputs, settings, limit, input_size)[:count]

        batch = int(config.batch_size) if config is not None and config.batch_size else 1
        return InferenceSetup(predictor=predictor, model_path=str(model), classes=classes,
                              input_shape=input_settings.shape, batch_size=batch,
                              input_size=input_settings.resized_size if input_settings.dynamic else None,
                              preprocess=input_settings.preprocess, decode=decode, label_names=classes,
                              colors=[COLORS[i % len(COLORS)] for i in range(len(classes))],
                              settings_field=found[0] if found else "inference_config",
                              images_dir=(config.images_dir or None) if config is not None else None,
                              annotated_dir=(config.detection_image_output_dir or None) if config is not None else None,
                              labels_dir=(config.labels_dump_dir or None) if config is not None else None)

    # -------------------------------------------------------------------------------------- tensorfile
    def calibration_batches(self, spec: Any, *, use_validation_set: bool = False) -> CalibrationData:
        return frcnn_data.calibration_batches(spec, use_validation_set=use_validation_set)

    # ------------------------------------------------------------------------------------ test hooks
    def sample_spec(self, data: Any) -> str:
        return _sample_spec(self, data)

    def sample_inference_args(self, data: Any, model: str | Path) -> list[str]:
        spec = Path(data.root) / f"{self.name}_sample_spec.txt"
        spec.write_text(self.sample_spec(data), encoding="utf-8")
        return ["-e", str(spec), "-m", str(model), "-i", data.images, "-t", "0.01"]

    def demo_spec(self, *, train_records: str, train_images: str | Path, val_records: str, val_images: str | Path,
                  width: int, height: int, epochs: int) -> str:
        return _demo_spec(self, train_records=train_records, train_images=train_images, val_records=val_records,
                          val_images=val_images, width=width, height=height, epochs=epochs)

    def demo_inference_args(self, spec: str | Path, model: str | Path, images: str | Path) -> list[str]:
        return ["-e", str(spec), "-m", str(model), "-i", str(images)]


def _not_exportable_if_dynamic(spec: Any) -> None:
    """A ``size_min`` model takes images of any size; TensorRT engines (and our plugin-free graph, whose anchors
    and RoiAlign scales are constants) need one fixed size, so such a model is not exportable (as in TAO)."""
    if frcnn_data.input_config(spec).dynamic:
        model_path, _ = _section(spec, "model")
        raise spec.error(f"{model_path}.input_image_config.size_min",
                         "a model with a dynamic input size (size_min) cannot be exported; train with "
                         "size_height_width { height, width } to deploy it")


def _spec_model(spec: Any, kind: str, trt_field: str) -> str | None:
    """The model an ``evaluation_config`` / ``inference_config`` names: its TensorRT block's engine or ``.etlt``
    (run with onnxruntime when TensorRT is missing; an ``.etlt`` runs in float, its ``trt_data_type`` needs an engine
    from tlt-converter), else its ``model``."""
    from libtlt.log import get_logger

    found = validation.section(spec.message, kind)
    if found is None:
        return None
    config = found[1]
    if config.HasField(trt_field):
        if frcnn_data.input_config(spec).dynamic:
            raise spec.error(f"{found[0]}.{trt_field}",
                             "a model with a dynamic input size (size_min) cannot be exported, so there is no .etlt "
                             "or engine of it to run: give -m with the .tlt (or remove this block)")
        trt = getattr(config, trt_field)
        if trt.WhichOneof("trt_infer_model") == "trt_engine":
            return str(trt.trt_engine)
        if trt.etlt_model.model:
            if trt.trt_data_type != "fp32":
                get_logger("libtlt.archs.faster_rcnn").warning(
                    "%s.%s: the .etlt runs in float32 here; build a %s engine with tlt-converter to measure that "
                    "precision", found[0], trt_field, trt.trt_data_type)
            return str(trt.etlt_model.model)
    return str(config.model) if config.model else None


def iou_range(start: float, step: float, end: float) -> list[float]:
    """``gt_matching_iou_threshold_range``'s IoUs: start, start + step, … below end (exclusive), rounded to 1e-6
    so that 0.5 + 9·0.05 is 0.95 and 1.0 is left out."""
    count = max(1, math.ceil((end - start) / step - 1e-6))
    return [round(start + i * step, 6) for i in range(count)]


class RpnRecallEvaluator:
    """VOC AP per class (``libtlt.metrics.detection.DetectionEvaluator``) plus the RPN recall: the fraction of
    ground-truth boxes (per class and overall) that some proposal overlaps at IoU ≥ 0.5 (DETECTORS-TWO-STAGE.md §1
    "Evaluation"; a debug metric TAO prints beside AP, not available from an exported graph).

    With several IoU thresholds (``gt_matching_iou_threshold_range``, as TAO's COCO-style mAP) each class's AP is its
    mean over the thresholds, the mAP the mean of those, and ``mAP_per_iou`` ({IoU: mAP}) goes into the result's
    extra numbers; the counts and the precision-recall curves are those at the first (lowest) threshold."""

    def __init__(self, class_names: Sequence[str], *, iou_thresholds: float | Sequence[float], mode: str):
        from libtlt.metrics.detection import DetectionEvaluator

        self.class_names = list(class_names)
        ious = [float(iou_thresholds)] if isinstance(iou_thresholds, (int, float)) else [float(v) for v in
                                                                                         iou_thresholds]
        if not ious:
            raise ValueError("at least one IoU threshold is needed")
        self.per_iou = [(iou, DetectionEvaluator(class_names, iou_thresholds=iou, mode=mode)) for iou in ious]
        self.boxes = self.per_iou[0][1]
        self.mode = self.boxes.mode
        self.covered = np.zeros(len(class_names), np.int64)
        self.total = np.zeros(len(class_names), np.int64)
        self.seen_proposals = False

    def add_image(self, det_boxes: Any, det_scores: Any, det_classes: Any, gt_boxes: Any, gt_classes: Any,
                  gt_ignore: Any = None, *, gt_difficult: Any = None) -> None:
        for _, evaluator in self.per_iou:
            evaluator.add_image(det_boxes, det_scores, det_classes, gt_boxes, gt_classes, gt_ignore,
                                gt_difficult=gt_difficult)

    def add_proposals(self, proposals: np.ndarray, gt_boxes: Any, gt_classes: Any) -> None:
        """One image's proposals ``[P, 4]`` against its ground truth (network-input pixels)."""
        from libtlt.layers.boxes import iou_matrix

        self.seen_proposals = True
        truth = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        ids = np.asarray(gt_classes, np.int64).reshape(-1)
        if not len(truth):
            return
        hit = np.zeros(len(truth), bool)
        if len(proposals):
            hit = iou_matrix(truth, np.asarray(proposals, np.float64)).max(axis=1) >= RPN_RECALL_IOU
        np.add.at(self.total, ids, 1)
        np.add.at(self.covered, ids, hit.astype(np.int64))

    def rpn_recall(self) -> dict[str, float] | None:
        """Per class and ``"all"``; ``None`` when no proposals were seen (an exported model)."""
        if not self.seen_proposals:
            return None
        per_class = {name: float(self.covered[i] / self.total[i]) if self.total[i] else math.nan
                     for i, name in enumerate(self.class_names)}
        per_class["all"] = float(self.covered.sum() / self.total.sum()) if self.total.sum() else math.nan
        return per_class

    def result(self) -> Any:
        import dataclasses

        result = self.boxes.result()
        extra: dict[str, Any] = {}
        if len(self.per_iou) > 1:
            results = [(iou, evaluator.result()) for iou, evaluator in self.per_iou]
            classes = {name: dataclasses.replace(first, average_precision=float(np.mean(
                [r.classes[name].average_precision for _, r in results]))) for name, first in result.classes.items()}
            aps = [c.average_precision for c in classes.values() if c.num_ground_truth > 0]
            result = dataclasses.replace(result, classes=classes,
                                         mean_average_precision=float(np.mean(aps)) if aps else math.nan)
            extra["mAP_per_iou"] = {f"{iou:g}": r.mean_average_precision for iou, r in results}
        if self.seen_proposals:
            extra["rpn_recall"] = self.rpn_recall()
        return dataclasses.replace(result, extra=extra) if extra else result


def evaluate_model(arch: FasterRcnnArchitecture, model: Any, spec: Any) -> Any:
    """The evaluation result of a Keras inference ``model`` on the spec's validation frames (mAP, RPN recall)."""
    classes = arch.class_names(spec)
    evaluator = arch.evaluator(spec, classes)
    for images, truths in arch.evaluation_batches(spec):
        named = dict(zip(OUTPUTS, model.predict_on_batch(images), strict=True))
        size = (int(images.shape[3]), int(images.shape[2]))  # NCHW: the batch's own size (size_min: per image)
        for found, truth in zip(arch.decode(spec, named, [size] * len(truths), classes), truths, strict=True):
            evaluator.add_image(found.boxes, found.confidences, found.class_ids, truth.boxes, truth.class_ids,
                                gt_difficult=truth.difficult)
            if found.proposals is not None:
                evaluator.add_proposals(found.proposals, truth.boxes, truth.class_ids)
    return evaluator.result()


def _validation_callback(arch: FasterRcnnArchitecture, spec: Any, model: Any) -> Any:
    """``mAP`` (NaN on epochs without validation), ``AP_<class>`` and ``rpn_recall`` in the epoch logs."""
    import keras

    from libtlt.log import get_logger

    logger = get_logger(f"libtlt.archs.{arch.name}")
    found = validation.section(spec.message, "evaluation")
    epochs = int(spec.message.training_config.num_epochs)
    period = (int(found[1].validation_period_during_training) if found is not None else 0) or epochs
    classes = arch.class_names(spec)
    from libtlt.data.detection import split_frames

    has_val = bool(split_frames(frcnn_data._common(spec), classes)[1])

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs is None:
                return
            logs["mAP"] = math.nan
            if not has_val or ((epoch + 1) % period and epoch + 1 != epochs):
                return
            result = evaluate_model(arch, model, spec)  # the inference model: self.model is the trainer
            logs["mAP"] = result.mean_average_precision
            for name in classes:
                logs[f"AP_{name}"] = result.classes[name].average_precision
            recall = (result.extra.get("rpn_recall") or {}).get("all", math.nan)
            logs["rpn_recall"] = recall
            logger.info("Validation at epoch %d: mAP %.4f (%s), RPN recall %.4f", epoch + 1,
                        result.mean_average_precision,
                        ", ".join(f"{n} {result.classes[n].average_precision:.4f}" for n in classes), recall)

    return Validation()


# ---------------------------------------------------------------------------------------------- test and demo hooks

#: Lines of the default spec that the sample and demo specs replace.
_DEFAULT_DATA = ('tfrecords_path: "/workspace/tlt-experiments/tfrecords/kitti_trainval/kitti_trainval*"',
                 'image_directory_path: "/workspace/tlt-experiments/data/training"')
_DEFAULT_SIZE = ("height: 384", "width: 1248", "output_image_width: 1248", "output_image_height: 384")


def _edited_default(arch: FasterRcnnArchitecture, *, train_records: str, train_images: str | Path, width: int,
                    height: int, epochs: int, batch: int, output_model: str | Path, edits: Mapping[str, str]) -> str:
    """The default spec on other records and size, ``epochs`` of ``batch``, resnet10 from scratch (no pretrained
    weights, nothing frozen, batch statistics learned), plus ``edits``."""
    from libtlt.spec.edits import edit_spec_text

    replacements = {
        _DEFAULT_DATA[0]: f'tfrecords_path: "{train_records}"',
        _DEFAULT_DATA[1]: f'image_directory_path: "{train_images}"',
        # The augmentation's output size first: "width: 1248" is also inside "output_image_width: 1248".
        _DEFAULT_SIZE[2]: f"output_image_width: {width}", _DEFAULT_SIZE[3]: f"output_image_height: {height}",
        _DEFAULT_SIZE[0]: f"height: {height}", _DEFAULT_SIZE[1]: f"width: {width}",
        'feature_extractor: "resnet:18"': 'feature_extractor: "resnet:10"',
        "  freeze_bn: True\n  freeze_blocks: 0\n  freeze_blocks: 1\n": "  freeze_bn: False\n",
        "batch_size_per_gpu: 16": f"batch_size_per_gpu: {batch}", "num_epochs: 12": f"num_epochs: {epochs}",
        '  pretrained_weights: "/workspace/tlt-experiments/data/faster_rcnn/resnet18.h5"\n': "",
        'output_model: "/workspace/tlt-experiments/data/faster_rcnn/frcnn_kitti_resnet18.tlt"':
            f'output_model: "{output_model}"',
        **edits,
    }
    return edit_spec_text(arch.default_spec(), replacements, "the default faster_rcnn spec")


#: Small proposal counts and ROI batches for tests (the default's 12000 / 2000 / 256 are for 1248×384 on a GPU).
_SMALL_COUNTS = {"roi_mini_batch: 256": "roi_mini_batch: 32", "rpn_mini_batch: 256": "rpn_mini_batch: 64",
                 "rpn_pre_nms_top_N: 12000": "rpn_pre_nms_top_N: 1000",
                 "rpn_nms_max_boxes: 2000": "rpn_nms_max_boxes: 64"}


def _inference_counts(pre: int, post: int, keep: int) -> dict[str, str]:
    """inference_config's and evaluation_config's proposal and detection counts."""
    return {"    rpn_pre_nms_top_N: 6000\n    rpn_nms_max_boxes: 300\n":
            f"    rpn_pre_nms_top_N: {pre}\n    rpn_nms_max_boxes: {post}\n",
            "    classifier_nms_max_boxes: 300\n": f"    classifier_nms_max_boxes: {keep}\n"}


def _sample_spec(arch: FasterRcnnArchitecture, data: Any) -> str:
    """The default spec on ``libtlt.testing.SampleData`` (KITTI records at 480×272, fold 0 validates): one epoch of
    resnet10, batch 2, small proposal counts (tests/archs)."""
    root = Path(data.root)
    edits = {**_SMALL_COUNTS, **_inference_counts(500, 16, 20),
             "scale: 64.0\n    scale: 128.0\n    scale: 256.0": "scale: 32.0\n    scale: 64.0\n    scale: 128.0"}
    return _edited_default(arch, train_records=data.train, train_images=Path(data.images).parent, width=480,
                           height=272, epochs=1, batch=2, output_model=root / "faster_rcnn_sample.tlt", edits=edits)


def _demo_spec(arch: FasterRcnnArchitecture, *, train_records: str, train_images: str | Path, val_records: str,
               val_images: str | Path, width: int, height: int, epochs: int) -> str:
    """The default spec for a from-scratch resnet10 on a CPU (``python -m libtlt.demo --arch faster_rcnn``, bench/,
    tests/e2e): the data's width and its height cut to a multiple of 16, anchors 16–128 px for the generated objects,
    Adam at 1e-3 with a step down by 10 for the last quarter (``step_size`` is a percentage of the training), ROI
    batches of 32 (the RCNN body on the ROIs is most of a step's work), held-out validation records, small proposal
    counts."""
    cut = height - height % 16
    edits = {
        "    validation_fold: 0\n": f'    validation_data_source: {{\n      tfrecords_path: "{val_records}"\n'
                                    f'      image_directory_path: "{val_images}"\n    }}\n',
        "scale: 64.0\n    scale: 128.0\n    scale: 256.0":
            "scale: 16.0\n    scale: 32.0\n    scale: 64.0\n    scale: 128.0",
        "roi_mini_batch: 256": "roi_mini_batch: 32", "rpn_mini_batch: 256": "rpn_mini_batch: 128",
        "rpn_pre_nms_top_N: 12000": "rpn_pre_nms_top_N: 2000", "rpn_nms_max_boxes: 2000": "rpn_nms_max_boxes: 256",
        "weight_decay: 1e-4": "weight_decay: 1e-5", "lr: 0.00001": "lr: 0.001",
        "      base_lr: 0.00016\n      gamma: 1.0\n      step_size: 30":
            "      base_lr: 0.001\n      gamma: 0.1\n      step_size: 75",  # percent of the training (000 §7.3)
        "    use_voc07_11point_metric: False\n": "    use_voc07_11point_metric: False\n"
                                                 f"    validation_period_during_training: {epochs}\n",
        **_inference_counts(1000, 100, 100),
    }
    return _edited_default(arch, train_records=train_records, train_images=train_images, width=width, height=cut,
                           epochs=epochs, batch=4, output_model=Path(str(train_images)).parent / "faster_rcnn.tlt",
                           edits=edits)

