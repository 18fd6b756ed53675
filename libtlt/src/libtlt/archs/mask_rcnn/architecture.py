"""MaskRCNN behind the Architecture protocol: the spec → its parts' configurations, and what tlt-train, tlt-evaluate
tlt-infer, tlt-export and tlt-int8-tensorfile need (instance segmenter). The export is one plugin-free ONNX graph
(:mod:`~libtlt.archs.mask_rcnn.export`) with TAO's outputs ``generate_detections`` and ``mask_fcn_logits/BiasAdd``;
decoding reads either those or the ``.tlt``'s ``generate_detections`` and ``mask_fcn_probs`` (the same values).

Training (``training_view``): ``fit`` trains :class:`~libtlt.archs.mask_rcnn.training.MaskRcnnTrainer` (ground truth
in the graph, the five losses) on the layers of the flat inference model (:mod:`~libtlt.archs.mask_rcnn.model`),
which is what checkpoints save. TAO counts MaskRCNN's training in steps: one tlt-train "epoch" here is
``num_steps_per_eval`` steps (all of ``total_steps`` when unset), so checkpoints, status.json and the validation
(COCO bbox and segm AP on ``validation_file_pattern`` against ``val_json_file``) come every ``num_steps_per_eval``
steps; the run is rounded up to whole intervals. The learning rate is TAO's linear warm-up then
``init_learning_rate × learning_rate_decay_levels[k]`` from ``learning_rate_steps[k]`` (tlt-train's ``warmup_step``),
SGD with ``momentum`` and ``global_gradient_clip_ratio`` (global-norm clipping; 0 = none), L2 (or L1)
on convolution and dense kernels, never on batch normalization.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.archs.mask_rcnn import data as mdata
from libtlt.archs.mask_rcnn import validation
from libtlt.errors import DataError
from libtlt.registry import (
    INSTANCE_SEGMENTER,
    CalibrationData,
    EvaluationImage,
    InferenceSetup,
    TrainingData,
    TrainPlan,
)

#: Layer types the spec's weight decay applies to (not BatchNormalization: §2 "L2/L1 weight decay (not on BN)").
REGULARIZER_SCOPE = ("Conv2D", "Conv2DTranspose", "Dense")
DEFAULT_THRESHOLD = 0.5
COLORS = ((255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 190, 0), (200, 0, 200), (0, 200, 200))


@dataclass(frozen=True)
class Instances:
    """One image's detections: ``boxes`` ``[M, 4]`` x1 y1 x2 y2, ``confidences``, ``class_ids`` (COCO category
    ids) and boolean ``masks`` ``[M, H, W]``."""

    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray
    masks: np.ndarray


def _f(value: float) -> float:
    """A proto float32 as the decimal the spec wrote."""
    return float(f"{value:.7g}")


def _parsed(spec: Any, path: str, parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except ValueError as err:
        raise spec.error(path, str(err)) from None


def image_hw(spec: Any) -> tuple[int, int]:
    """``data_config.image_size`` as (height, width), a bad literal reported at the field."""
    height, width = _parsed(spec, "data_config.image_size", validation.image_size, spec.message.data_config)
    return int(height), int(width)


def _required(spec: Any, path: str) -> Any:
    message = spec.message
    *parents, leaf = path.split(".")
    for part in parents:
        message = getattr(message, part)
    if not message.HasField(leaf) or (isinstance(getattr(message, leaf), str) and not getattr(message, leaf)):
        raise spec.error(path, "required")
    return getattr(message, leaf)


def _coco_names(spec: Any) -> dict[int, str]:
    """Category id → name of ``val_json_file`` (empty when the file is not there)."""
    path = spec.message.data_config.val_json_file
    try:
        truth = json.loads(Path(path).read_text(encoding="utf-8"))
        return {int(c["id"]): str(c["name"]) for c in truth.get("categories", [])}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _check_json_categories(spec: Any) -> None:
    """``val_json_file``'s category ids must be class ids of the network: 1..num_classes−1 (0 is the background).
    A file that is not there or not json is left to the tools that read it."""
    data = spec.message.data_config
    names = _coco_names(spec)
    if names and min(names) < 1:
        bad = min(names)
        raise spec.error("data_config.val_json_file", f"{data.val_json_file} has category id {bad} ({names[bad]!r}), "
                                                      "but class 0 is the background: category ids start at 1")
    if names and max(names) >= data.num_classes:
        bad = max(names)
        raise spec.error("data_config.num_classes",
                         f"is {data.num_classes} but {data.val_json_file} has category id {bad} ({names[bad]!r}); "
                         f"category ids are class ids 1..num_classes-1 (0 is the background), so num_classes must "
                         f"be at least {bad + 1}")


class MaskRcnnArchitecture:
    """MaskRCNN for every tool (module docstring)."""

    name = "mask_rcnn"
    task = INSTANCE_SEGMENTER
    verbs = frozenset({"train", "evaluate", "infer", "export", "tensorfile"})

    def spec_message(self) -> type:
        from libtlt.spec.protos import mask_rcnn_pb2

        return mask_rcnn_pb2.Experiment

    def default_spec(self) -> str:
        """TAO's MaskRCNN sample spec (004): ResNet50 at 832×1344 on COCO."""
        return resources.files("libtlt.archs.mask_rcnn").joinpath("default_spec.txt").read_text("utf-8")

    def validate(self, spec: Any) -> None:
        validation.validate(spec)
        if spec.message.HasField("data_config"):
            _check_json_categories(spec)

    # ---------------------------------------------------------------------------------------- configurations
    def num_classes(self, spec: Any) -> int:
        return int(_required(spec, "data_config.num_classes"))

    def class_names(self, spec: Any) -> list[str]:
        """Names of class ids 0..num_classes−1 (0 = background), from ``val_json_file``'s categories."""
        names = _coco_names(spec)
        return ["background", *(names.get(i, f"class_{i}") for i in range(1, self.num_classes(spec)))]

    def network_config(self, spec: Any) -> Any:
        from libtlt.archs.mask_rcnn.anchors import AnchorConfig
        from libtlt.archs.mask_rcnn.network import MaskRcnnNetworkConfig

        c = spec.message.maskrcnn_config
        anchors = AnchorConfig(min_level=int(c.min_level), max_level=int(c.max_level), num_scales=int(c.num_scales),
                               aspect_ratios=tuple(_parsed(spec, "maskrcnn_config.aspect_ratios",
                                                           validation.aspect_ratios, c)),
                               anchor_scale=float(c.anchor_scale))
        return MaskRcnnNetworkConfig(
            num_classes=self.num_classes(spec), image_hw=image_hw(spec), nlayers=int(c.nlayers), anchors=anchors,
            mlp_head_dim=int(c.fast_rcnn_mlp_head_dim), mrcnn_resolution=int(c.mrcnn_resolution),
            freeze_bn=bool(c.freeze_bn),
            freeze_blocks=tuple(_parsed(spec, "maskrcnn_config.freeze_blocks", validation.freeze_blocks, c)))

    def _weights(self, spec: Any) -> tuple[float, float, float, float]:
        return _parsed(spec, "maskrcnn_config.bbox_reg_weights", validation.bbox_reg_weights,
                       spec.message.maskrcnn_config)

    def inference_config(self, spec: Any) -> Any:
        from libtlt.archs.mask_rcnn.inference import InferenceConfig
        from libtlt.archs.mask_rcnn.proposals import ProposalConfig

        c = spec.message.maskrcnn_config
        return InferenceConfig(
            proposals=ProposalConfig(int(c.test_rpn_pre_nms_topn), int(c.test_rpn_post_nms_topn),
                                     _f(c.test_rpn_nms_thresh), _f(c.rpn_min_size)),
            nms_iou=_f(c.test_nms), detections_per_image=int(c.test_detections_per_image),
            bbox_reg_weights=self._weights(spec))

    def training_config(self, spec: Any) -> Any:
        from libtlt.archs.mask_rcnn.box_targets import BoxTargetConfig
        from libtlt.archs.mask_rcnn.losses import LossWeights
        from libtlt.archs.mask_rcnn.proposals import ProposalConfig
        from libtlt.archs.mask_rcnn.rpn_targets import RpnTargetConfig
        from libtlt.archs.mask_rcnn.training import TrainingConfig

        c = spec.message.maskrcnn_config
        return TrainingConfig(
            rpn=RpnTargetConfig(_f(c.rpn_positive_overlap), _f(c.rpn_negative_overlap), int(c.rpn_batch_size_per_im),
                                _f(c.rpn_fg_fraction)),
            proposals=ProposalConfig(int(c.train_rpn_pre_nms_topn), int(c.train_rpn_post_nms_topn),
                                     _f(c.train_rpn_nms_threshold), _f(c.rpn_min_size)),
            boxes=BoxTargetConfig(int(c.batch_size_per_im), _f(c.fg_fraction), _f(c.fg_thresh), _f(c.bg_thresh_hi),
                                  _f(c.bg_thresh_lo), self._weights(spec)),
            loss_weights=LossWeights(_f(c.rpn_box_loss_weight), _f(c.fast_rcnn_box_loss_weight),
                                     _f(c.mrcnn_weight_loss_mask)))

    def pipeline_config(self, spec: Any) -> mdata.PipelineConfig:
        d = spec.message.data_config
        return mdata.PipelineConfig(image_hw=image_hw(spec), gt_mask_size=int(spec.message.maskrcnn_config.gt_mask_size),
                                    max_num_instances=int(d.max_num_instances), augment=bool(d.augment_input_data),
                                    skip_crowd=bool(d.skip_crowd_during_training))

    # ------------------------------------------------------------------------------------------------ train
    def interval(self, spec: Any) -> tuple[int, int]:
        """``(steps per tlt-train epoch, epochs)``: ``num_steps_per_eval`` steps (module docstring)."""
        total = int(_required(spec, "total_steps"))
        every = min(int(spec.message.num_steps_per_eval) or total, total)
        return every, math.ceil(total / every)

    def train_plan(self, spec: Any) -> TrainPlan:
        exp = spec.message
        every, epochs = self.interval(spec)
        run = every * epochs
        base = _f(exp.init_learning_rate) if exp.HasField("init_learning_rate") else 0.01
        steps = _parsed(spec, "learning_rate_steps", validation.learning_rate_steps, exp)
        levels = _parsed(spec, "learning_rate_decay_levels", validation.learning_rate_decay_levels, exp)
        warmup_lr = _f(exp.warmup_learning_rate)
        lr_params = {"base_lr": base, "warmup": min(int(exp.warmup_steps) / run, 1.0),
                     "start_ratio": min(warmup_lr / base, 1.0) if exp.warmup_steps else 1.0,
                     "boundaries": [min(s / run, 1.0) for s in steps], "levels": list(levels)}
        regularizer, weight = None, 0.0
        if exp.l2_weight_decay > 0:
            regularizer, weight = "L2", _f(exp.l2_weight_decay)
        elif exp.l1_weight_decay > 0:
            regularizer, weight = "L1", _f(exp.l1_weight_decay)
        pretrained = exp.pruned_model_path or exp.checkpoint or None
        return TrainPlan(model_name=f"{self.name}_resnet{exp.maskrcnn_config.nlayers}", epochs=epochs,
                         batch_size_per_gpu=int(exp.train_batch_size) or 2, optimizer="sgd",
                         optimizer_params={"momentum": _f(exp.momentum),
                                           "global_clipnorm": _f(exp.global_gradient_clip_ratio)},
                         lr_schedule="warmup_step",
                         lr_params=lr_params, regularizer=regularizer, regularizer_weight=weight,
                         regularizer_scope=REGULARIZER_SCOPE if regularizer else (), checkpoint_interval=1,
                         pretrained_model_path=pretrained, load_graph=bool(exp.pruned_model_path),
                         random_seed=int(exp.seed) if exp.HasField("seed") else None)

    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        from libtlt.archs.mask_rcnn.model import build_inference_model

        return build_inference_model(self.network_config(spec), self.inference_config(spec))

    def training_view(self, spec: Any, model: Any) -> tuple[Any, Any]:
        """``(trainer, saving_view)``: the five-loss trainer on ``model``'s layers; checkpoints save ``model``."""
        from libtlt.archs.mask_rcnn import training
        from libtlt.archs.mask_rcnn.model import network_view
        from libtlt.log import get_logger

        if spec.message.use_amp:
            get_logger("libtlt.archs.mask_rcnn").warning(
                "use_amp: MaskRCNN trains in float32 here (mixed precision is for GPUs; tlt-train --use_amp sets it)")
        network = network_view(model, self.network_config(spec))
        trainer = training.MaskRcnnTrainer(network, self.training_config(spec), seed=int(spec.message.seed))
        return trainer, training.saving_view(model)

    def label_encoder(self, spec: Any) -> Any:
        """None: every target is made inside the trained graph from the padded ground truth."""
        return None

    def loss(self, spec: Any) -> Any:
        """None: the trainer computes the five weighted losses itself (``training_view``)."""
        return None

    def metrics(self, spec: Any) -> list[Any]:
        return []

    def post_process(self, spec: Any) -> Any:
        hw = image_hw(spec)
        return lambda outputs: self._instances(outputs, 0, hw, 1.0, 0.0)

    def export_outputs(self, spec: Any) -> list[str]:
        from libtlt.archs.mask_rcnn.model import OUTPUTS

        return list(OUTPUTS)

    def deployed_output_names(self, spec: Any) -> list[str]:
        """The exported graph's outputs: TAO's names (tlt-evaluate accepts them instead of ``output_names``)."""
        from libtlt.archs.mask_rcnn.export import DEPLOYED_OUTPUTS

        return list(DEPLOYED_OUTPUTS)

    def export_graph(self, spec: Any, keras_model: Any) -> Any:
        """The whole deployable graph in standard ONNX ops (tlt-export's hook); every count and threshold is the
        model's own (its ROI layers were built from the spec's test settings)."""
        from libtlt.archs.mask_rcnn.export import to_onnx

        return to_onnx(keras_model)

    def deepstream_settings(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        """nvinfer keys of §13.3.9 beyond the common ones; labels.txt starts with ``BG`` (the class-0 row)."""
        labels = ["BG", *classes]
        return {"labels": labels, "num-detected-classes": len(labels), "output-instance-mask": 1,
                "cluster-mode": 4, "maintain-aspect-ratio": 1,
                "parse-bbox-instance-mask-func-name": "NvDsInferParseCustomMrcnnTLT",
                "custom-lib-path": "<path to libnvds_infercustomparser_tlt.so>"}

    def calibration_batches(self, spec: Any, *, use_validation_set: bool = False) -> CalibrationData:
        """INT8 calibration input: training (or validation) images resized and padded as for evaluation, without
        augmentation, ``train_batch_size`` per batch."""
        field = "data_config.validation_file_pattern" if use_validation_set else "data_config.training_file_pattern"
        try:
            files = mdata.record_files(_required(spec, field))
        except DataError as err:
            raise spec.error(field, str(err)) from None
        batch = int(spec.message.train_batch_size) or 1
        images = (b.images for b in mdata.evaluation_batches(files, image_hw(spec), batch_size=batch))
        return CalibrationData(images, batch, "train_batch_size", spec.locate("train_batch_size"))

    def metadata(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        from google.protobuf import text_format

        try:
            text = Path(spec.path).read_text(encoding="utf-8")
        except (OSError, TypeError):
            text = text_format.MessageToString(spec.message)
        height, width = image_hw(spec)
        return {"architecture": self.name, "classes": list(classes), "input_shape": [3, height, width],
                "input_layout": "NCHW", "image_scale": 1.0 / (255.0 * mdata.STD),
                "image_offsets": [m * 255.0 for m in mdata.MEAN], "color_format": "rgb",
                "output_names": self.export_outputs(spec), "spec": text}

    def training_data(self, spec: Any, *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        pattern = _required(spec, "data_config.training_file_pattern")
        try:
            files = mdata.record_files(pattern)
        except DataError as err:
            raise spec.error("data_config.training_file_pattern", str(err)) from None
        every, _ = self.interval(spec)
        scan = mdata.scan_records(files, self.num_classes(spec))
        if scan.bad_id is not None:
            raise spec.error("data_config.num_classes",
                             f"is {self.num_classes(spec)} but record #{scan.bad_index} of {scan.bad_file} has "
                             f"category id {scan.bad_id}; category ids are class ids 1..num_classes-1 (0 is the "
                             f"background)")
        ds = mdata.training_dataset(files, self.pipeline_config(spec), batch_size=batch_size, seed=seed or 0,
                                    shuffle_buffer=int(spec.message.data_config.shuffle_buffer_size))
        classes = self.class_names(spec)[1:]
        return TrainingData(train=ds, steps_per_epoch=every, num_samples=scan.count, classes=classes,
                            metadata=self.metadata(spec, classes))

    def training_callbacks(self, spec: Any, data: TrainingData, model: Any) -> list[Any]:
        """COCO bbox and segm AP of the inference ``model`` on the validation records after each interval."""
        from libtlt.archs.mask_rcnn.evaluation import validation_callback

        if not spec.message.data_config.validation_file_pattern or not spec.message.data_config.val_json_file:
            return []
        return [validation_callback(self, spec, model)]

    # --------------------------------------------------------------------------------------------- evaluate
    def input_shape(self, spec: Any) -> tuple[int, int, int]:
        height, width = image_hw(spec)
        return 3, height, width

    def output_names(self, spec: Any) -> list[str]:
        return self.export_outputs(spec)

    def coco_ground_truth(self, spec: Any) -> dict[str, Any]:
        path = _required(spec, "data_config.val_json_file")
        try:
            return dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise spec.error("data_config.val_json_file", f"cannot read {path}: {err}") from None

    def evaluation_images(self, spec: Any, *, batch_size: int | None = None
                          ) -> Iterator[tuple[np.ndarray, list[EvaluationImage]]]:
        pattern = _required(spec, "data_config.validation_file_pattern")
        try:
            files = mdata.record_files(pattern)
        except DataError as err:
            raise spec.error("data_config.validation_file_pattern", str(err)) from None
        size = batch_size or int(spec.message.eval_batch_size) or 4
        limit = int(spec.message.data_config.eval_samples) or None
        for batch in mdata.evaluation_batches(files, image_hw(spec), batch_size=size, limit=limit):
            yield batch.images, [EvaluationImage(i, w, h) for i, (w, h) in zip(batch.image_ids, batch.sizes,
                                                                                 strict=True)]

    def decode_instances(self, spec: Any, outputs: Mapping[str, Any],
                         image_sizes: Sequence[tuple[int, int]]) -> list[Instances]:
        """Per image: detections in its original pixels (the network input is the image scaled by
        ``min(H/h, W/w)`` and padded), categories that the ground truth lists."""
        hw = image_hw(spec)
        known = set(_coco_names(spec))
        found = []
        for i, (width, height) in enumerate(image_sizes):
            scale = mdata.resize_scale(height, width, hw)
            found.append(self._instances(outputs, i, (height, width), scale, 0.0, known or None))
        return found

    @staticmethod
    def _instances(outputs: Mapping[str, Any], index: int, out_hw: tuple[int, int], scale: float, threshold: float,
                   known: set[int] | None = None) -> Instances:
        """Image ``index``'s rows above ``threshold``, boxes divided by ``scale`` and masks pasted at ``out_hw``."""
        from libtlt.archs.mask_rcnn.decoding import paste_masks
        from libtlt.archs.mask_rcnn.export import MASKS_OUTPUT
        from libtlt.archs.mask_rcnn.model import DETECTIONS, MASKS

        rows = np.asarray(outputs[DETECTIONS][index], np.float64)
        probs = np.asarray(outputs[MASKS if MASKS in outputs else MASKS_OUTPUT][index])
        keep = (rows[:, 5] > threshold) & (rows[:, 5] > 0)
        if known is not None:
            keep &= np.isin(rows[:, 4].astype(np.int64), sorted(known))
        rows, probs = rows[keep], probs[keep]
        rows[:, :4] /= scale
        masks = paste_masks(rows, probs, out_hw)
        boxes = rows[:, [1, 0, 3, 2]]
        return Instances(boxes, rows[:, 5], rows[:, 4].astype(np.int64), masks)

    # ------------------------------------------------------------------------------------------------ infer
    def inference_options(self) -> list[Any]:
        import click

        return [click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
                             help="The MaskRCNN model (.tlt)."),
                click.option("-t", "--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True,
                             help="Confidence a detection needs to be drawn and written.")]

    def inference_setup(self, spec_path: str | Path, key: str | None, *, model: str,
                        threshold: float = DEFAULT_THRESHOLD) -> InferenceSetup:
        from libtlt.runtime.predictor import make_predictor
        from libtlt.spec import load_spec

        spec: Any = load_spec(spec_path, self.spec_message())
        self.validate(spec)
        names = self.class_names(spec)
        hw = image_hw(spec)

        def decode(outputs: Any, count: int) -> list[Instances]:
            return [self._instances(outputs, i, hw, 1.0, threshold) for i in range(count)]

        def preprocess(image: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(mdata.normalize(image.astype(np.float32)).transpose(2, 0, 1), np.float32)

        return InferenceSetup(
            predictor=make_predictor(model, key, None, architecture=self.name), model_path=str(model), classes=names,
            input_shape=(3, *hw), batch_size=int(spec.message.eval_batch_size) or 1, preprocess=preprocess,
            decode=decode, label_names=names, colors=[COLORS[i % len(COLORS)] for i in range(len(names))],
            keep_aspect=True)  # scaled and zero-padded after normalisation, as data.py feeds training

    # ------------------------------------------------------------------------------------------- test hooks
    def sample_spec(self, data: Any) -> str:
        from libtlt.archs.mask_rcnn.samples import sample_spec

        return sample_spec(self, data)

    def demo_spec(self, *, train_records: str, val_records: str, annotations: str | Path, width: int, height: int,
                  steps: int, pruned_model: str | Path | None = None) -> str:
        """``python -m libtlt.demo --arch mask_rcnn``'s spec (an instance segmenter's form of the hook)."""
        from libtlt.archs.mask_rcnn.samples import demo_spec

        return demo_spec(self, train_records=train_records, val_records=val_records, annotations=annotations,
                         width=width, height=height, steps=steps, pruned_model=pruned_model)

    def sample_inference_args(self, data: Any, model: str | Path) -> list[str]:
        spec = Path(data.root) / f"{self.name}_sample_spec.txt"
        spec.write_text(self.sample_spec(data), encoding="utf-8")
        return ["-e", str(spec), "-m", str(model), "-i", data.images, "-t", "0.0"]
