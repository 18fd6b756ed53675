"""The DetectNet_v2 architecture (000 §7.2, §8.4; REFERENCE.md "DetectNet_v2").

Registered as the ``detectnet_v2`` entry point of ``libtlt.architectures`` and trained by the generic
``tlt-train detectnet_v2 -e SPEC -r RESULTS -k KEY``. TensorFlow is imported only by the functions that
build models or datasets.

Public helpers (tlt-evaluate, tlt-infer, tlt-int8-tensorfile and tlt-export use them; ``spec`` is a
``LoadedSpec`` of ``detectnet_v2_pb2.Experiment``):

``class_names(spec) -> list[str]``
    Class names in network output order (``cost_function_config.target_classes``).
``build_model(spec, classes=None)``
    The Keras model: NCHW ``input_1`` → ``[output_cov [N, C, H/16, W/16], output_bbox [N, 4C, H/16, W/16]]``.
``input_shape(spec) -> (C, H, W)``
    The network input (``augmentation_config.preprocessing``).
``eval_dataset(spec, *, use_training_set=False, batch_size=1)``
    Iterator of ``(images [B, C, H, W] float32 RGB/255, [GroundTruth per image])``: the validation fold /
    ``validation_data_source`` (or the training records), preprocessed (crop, scale, pad) without
    augmentation; ``GroundTruth.boxes`` ``[G, 4]`` are in network-input pixels, ``class_ids`` index
    ``class_names(spec)``.
``clustering_configs(spec, classes=None) -> list[ClusteringConfig]``
    One ``libtlt.layers.clustering.ClusteringConfig`` per class from ``postprocessing_config``.
``postprocess(spec_or_configs, cov, bbox, image_sizes=None, *, classes=None, stride=None, scale=35, offset=0.5)``
    ``cov [N, C, h, w]`` and ``bbox [N, 4C, h, w]`` → one :class:`ImageDetections` per image (boxes in
    network-input pixels, clipped to ``image_sizes[i] = (width, height)`` when given; confidences; class ids
    and names). ``spec_or_configs`` is the spec or a list of ``ClusteringConfig``; with a spec, scale and
    offset come from ``model_config.objective_set.bbox`` and the stride from :func:`model_stride`.
``evaluate(model, spec, *, use_training_set=False, batch_size=8) -> DetectionResult``
    mAP of ``model`` with ``postprocess`` and ``libtlt.metrics.detection.DetectionEvaluator.from_spec``.
``metadata(spec, classes)``
    What saved models record: ``{"architecture": "detectnet_v2", "classes", "input_shape": [C, H, W],
    "input_layout": "NCHW", "preprocessing": "rgb/255", "stride": 16, "output_names": ["output_cov",
    "output_bbox"], "bbox_scale", "bbox_offset", "spec": <text>}``.

Training extras: the architecture's ``training_callbacks(spec, data, model)`` (called by tlt-train when
present) validate every ``validation_period_during_training`` epochs from ``first_validation_epoch`` on and
put ``mAP`` and the per-class ``AP_<class>`` in the epoch logs (status.json, training.csv), and run the
loss's auto-weighting when ``enable_autoweighting`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.archs.detectnet_v2 import validation
from libtlt.archs.detectnet_v2.detectnet_v2_data import (
    augmentation,
    frames_dataset,
    output_classes,
    preprocessing,
    split_frames,
    steps,
)
from libtlt.archs.detectnet_v2.detectnet_v2_head import (
    OUTPUT_BBOX,
    OUTPUT_COV,
    DetectNetConfig,
    build_detectnet,
    feature_stride,
    output_grid,
)
from libtlt.archs.detectnet_v2.detectnet_v2_label_encoder import DetectNetLabelEncoder
from libtlt.archs.detectnet_v2.detectnet_v2_loss import ClassCost, DetectNetLoss
from libtlt.errors import DataError, SpecError
from libtlt.layers.bbox_rasterizer import DEFAULT_STRIDE, TargetClassConfig
from libtlt.layers.clustering import ClusteringConfig
from libtlt.layers.clustering import postprocess as cluster_outputs
from libtlt.registry import BOX_DETECTOR, CalibrationData, TrainingData, TrainPlan
from libtlt.spec import LoadedSpec
from libtlt.spec import values as spec_values
from libtlt.spec.backbones import backbone_name
from libtlt.spec.protos import detectnet_v2_pb2 as pb

NAME = "detectnet_v2"
DEFAULT_SCALE = 35.0
DEFAULT_OFFSET = 0.5
#: checkpoint_interval when the spec leaves it unset (proto comment: "the trainer's own interval of 10").
DEFAULT_CHECKPOINT_INTERVAL = 10
REGULARIZER_SCOPE = ("Conv2D", "DepthwiseConv2D", "Dense")
#: Evaluation batch when training_config.batch_size_per_gpu is unset.
DEFAULT_EVAL_BATCH_SIZE = 4


def _f(value: float) -> float:
    """A protobuf float (32-bit) as the decimal the user wrote."""
    return float(f"{value:.7g}")


# ------------------------------------------------------------------------------------------- spec access

def class_names(spec: LoadedSpec[Any]) -> list[str]:
    """Class names in network output order."""
    return output_classes(spec)


def input_shape(spec: LoadedSpec[Any]) -> tuple[int, int, int]:
    pre = preprocessing(spec)
    return (pre.channels, pre.output_height, pre.output_width)


def resolve_backbone(spec: LoadedSpec[Any]) -> str:
    model = spec.message.model_config
    try:
        return backbone_name(model.arch or "resnet", model.num_layers)
    except ValueError as err:
        raise spec.error("model_config.num_layers", str(err)) from None


def model_stride(spec: LoadedSpec[Any]) -> int:
    """The model's output stride in input pixels (16; 32 for a ResNet with ``use_pooling``)."""
    return feature_stride(resolve_backbone(spec), spec.message.model_config.use_pooling)


def bbox_scale_offset(spec: LoadedSpec[Any]) -> tuple[float, float]:
    bbox = spec.message.model_config.objective_set.bbox
    scale = _f(bbox.scale) if bbox.scale > 0 else DEFAULT_SCALE
    offset = _f(bbox.offset) if bbox.HasField("offset") else DEFAULT_OFFSET
    return scale, offset


def detectnet_config(spec: LoadedSpec[Any], num_classes: int) -> DetectNetConfig:
    model = spec.message.model_config
    return DetectNetConfig(
        backbone=resolve_backbone(spec),
        input_shape=input_shape(spec),
        num_classes=num_classes,
        use_batch_norm=model.use_batch_norm,
        all_projections=model.all_projections,
        use_pooling=model.use_pooling,
        freeze_bn=model.freeze_bn,
        freeze_blocks=tuple(int(b) for b in model.freeze_blocks),
        dropout=_f(model.dropout_rate),
    )


def build_model(spec: LoadedSpec[Any], classes: Sequence[str] | None = None) -> Any:
    """The Keras DetectNet_v2 model of ``spec`` (``classes`` defaults to :func:`class_names`)."""
    names = list(classes) if classes is not None else class_names(spec)
    return build_detectnet(detectnet_config(spec, len(names)))


def rasterizer_configs(spec: LoadedSpec[Any], classes: Sequence[str]) -> list[TargetClassConfig]:
    entries = spec_values.entries_to_dict(spec.message.bbox_rasterizer_config.target_class_config)
    configs = []
    for name in classes:
        value = entries.get(name)
        if value is None:
            configs.append(TargetClassConfig())
        else:
            configs.append(TargetClassConfig(_f(value.cov_center_x), _f(value.cov_center_y), _f(value.cov_radius_x),
                                             _f(value.cov_radius_y), _f(value.bbox_min_radius)))
    return configs


def make_label_encoder(spec: LoadedSpec[Any], classes: Sequence[str] | None = None) -> DetectNetLabelEncoder:
    names = list(classes) if classes is not None else class_names(spec)
    stride = model_stride(spec)
    grid_h, grid_w = output_grid(input_shape(spec), stride)
    scale, offset = bbox_scale_offset(spec)
    config = spec.message.bbox_rasterizer_config
    return DetectNetLabelEncoder(rasterizer_configs(spec, names), grid_h, grid_w, stride=stride, scale=scale,
                                 offset=offset, deadzone_radius=_f(config.deadzone_radius))


def class_cost_config(spec: LoadedSpec[Any], classes: Sequence[str]) -> list[ClassCost]:
    by_name = {t.name: t for t in spec.message.cost_function_config.target_classes}
    costs = []
    for name in classes:
        target = by_name.get(name)
        if target is None:
            costs.append(ClassCost(name))
            continue
        objectives = {o.name: o for o in target.objectives}
        initial = tuple(_f(objectives[o].initial_weight) if o in objectives else 1.0 for o in ("cov", "bbox"))
        goal = tuple(_f(objectives[o].weight_target) if o in objectives else 1.0 for o in ("cov", "bbox"))
        costs.append(ClassCost(name, _f(target.class_weight), _f(target.coverage_foreground_weight),
                               (initial[0], initial[1]), (goal[0], goal[1])))
    return costs


def make_loss(spec: LoadedSpec[Any], classes: Sequence[str] | None = None) -> DetectNetLoss:
    names = list(classes) if classes is not None else class_names(spec)
    config = spec.message.cost_function_config
    return DetectNetLoss(
        class_cost_config(spec, names),
        autoweighting=config.enable_autoweighting,
        min_objective_weight=_f(config.min_objective_weight) if config.HasField("min_objective_weight") else 0.0,
        max_objective_weight=_f(config.max_objective_weight) if config.HasField("max_objective_weight") else 1.0,
    )


def clustering_configs(spec: LoadedSpec[Any], classes: Sequence[str] | None = None) -> list[ClusteringConfig]:
    names = list(classes) if classes is not None else class_names(spec)
    entries = spec_values.entries_to_dict(spec.message.postprocessing_config.target_class_config)
    return [ClusteringConfig.from_spec(entries[n].clustering_config) if n in entries else ClusteringConfig()
            for n in names]


# ------------------------------------------------------------------------------------------ post-process

@dataclass(frozen=True)
class ImageDetections:
    """One image's detections: boxes ``[M, 4]`` (network-input pixels), confidences ``[M]``, class ids ``[M]``."""

    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]


@dataclass(frozen=True)
class GroundTruth:
    """One image's ground truth in network-input pixels."""

    frame_id: str
    boxes: np.ndarray  # [G, 4]
    class_ids: np.ndarray  # [G]


def postprocess(spec_or_configs: Any, cov: Any, bbox: Any, image_sizes: Sequence[tuple[int, int]] | None = None, *,
                classes: Sequence[str] | None = None, stride: float | None = None, scale: float | None = None,
                offset: float | None = None) -> list[ImageDetections]:
    """Per-image detections from batched outputs ``cov [N, C, h, w]`` and ``bbox [N, 4C, h, w]``."""
    cov_a = np.asarray(cov)
    bbox_a = np.asarray(bbox)
    if cov_a.ndim == 3:
        cov_a, bbox_a = cov_a[None], bbox_a[None]
    if isinstance(spec_or_configs, LoadedSpec):
        names = list(classes) if classes is not None else class_names(spec_or_configs)
        configs = clustering_configs(spec_or_configs, names)
        spec_scale, spec_offset = bbox_scale_offset(spec_or_configs)
        scale = spec_scale if scale is None else scale
        offset = spec_offset if offset is None else offset
        stride = model_stride(spec_or_configs) if stride is None else stride
    else:
        configs = list(spec_or_configs)
        names = list(classes) if classes is not None else [str(i) for i in range(len(configs))]
    scale = DEFAULT_SCALE if scale is None else scale
    offset = DEFAULT_OFFSET if offset is None else offset
    stride = DEFAULT_STRIDE if stride is None else stride
    results = []
    for i in range(cov_a.shape[0]):
        found = cluster_outputs(cov_a[i], bbox_a[i], configs, stride=stride, scale=scale, offset=offset)
        boxes = found.boxes.astype(np.float64)
        if image_sizes is not None:
            width, height = image_sizes[i]
            boxes = np.clip(boxes, 0.0, [width, height, width, height])
        results.append(ImageDetections(boxes, found.confidences, found.class_ids,
                                       [names[int(c)] for c in found.class_ids]))
    return results


# ---------------------------------------------------------------------------------------------- datasets

def eval_dataset(spec: LoadedSpec[Any], *, use_training_set: bool = False,
                 batch_size: int = 1) -> Iterator[tuple[np.ndarray, list[GroundTruth]]]:
    """Batches of (images ``[B, C, H, W]``, ground truth per image), no augmentation."""
    classes = class_names(spec)
    train, val = split_frames(spec, classes)
    frames = train if use_training_set else val
    if not frames:
        raise DataError("no validation frames: set dataset_config.validation_fold or validation_data_source",
                        location=spec.locate("dataset_config"))
    ds = frames_dataset(frames, preprocessing(spec), None).batch(batch_size).prefetch(2)
    for images, boxes, ids, index in ds.as_numpy_iterator():
        truths = []
        for b in range(len(index)):
            keep = ids[b] >= 0
            truths.append(GroundTruth(frames[int(index[b])].frame_id, boxes[b][keep].astype(np.float64),
                                      ids[b][keep].astype(np.int64)))
        yield images, truths


def evaluate(model: Any, spec: LoadedSpec[Any], *, use_training_set: bool = False, batch_size: int = 8) -> Any:
    """The ``DetectionResult`` (per-class AP, mAP) of ``model`` on the validation frames of ``spec``."""
    from libtlt.metrics.detection import DetectionEvaluator

    classes = class_names(spec)
    evaluator = DetectionEvaluator.from_spec(spec.message.evaluation_config, classes)
    _, height, width = input_shape(spec)
    for images, truths in eval_dataset(spec, use_training_set=use_training_set, batch_size=batch_size):
        outputs = model.predict_on_batch(images)
        cov, bbox = (outputs[OUTPUT_COV], outputs[OUTPUT_BBOX]) if isinstance(outputs, dict) else outputs
        detections = postprocess(spec, np.asarray(cov), np.asarray(bbox), [(width, height)] * len(truths),
                                 classes=classes)
        for det, truth in zip(detections, truths, strict=True):
            evaluator.add_image(det.boxes, det.confidences, det.class_ids, truth.boxes, truth.class_ids)
    return evaluator.result()


def metadata(spec: LoadedSpec[Any], classes: Sequence[str]) -> dict[str, Any]:
    try:
        text = Path(spec.path).read_text(encoding="utf-8")
    except OSError:
        from google.protobuf import text_format

        text = text_format.MessageToString(spec.message)
    scale, offset = bbox_scale_offset(spec)
    return {
        "architecture": NAME,
        "classes": list(classes),
        "input_shape": list(input_shape(spec)),
        "input_layout": "NCHW",
        "preprocessing": "rgb/255",
        "stride": model_stride(spec),
        "output_names": [OUTPUT_COV, OUTPUT_BBOX],
        "bbox_scale": scale,
        "bbox_offset": offset,
        "spec": text,
    }


# ------------------------------------------------------------------------------------------ architecture

class DetectNetV2Architecture:
    """DetectNet_v2 behind the ``libtlt.registry.Architecture`` protocol."""

    name = NAME
    task = BOX_DETECTOR
    verbs = frozenset({"train", "evaluate", "infer", "export", "tensorfile"})

    def __init__(self) -> None:
        self._losses: dict[int, DetectNetLoss] = {}

    # --------------------------------------------------------------------------- evaluate, tensorfile
    def class_names(self, spec: LoadedSpec[Any]) -> list[str]:
        return class_names(spec)

    def input_shape(self, spec: LoadedSpec[Any]) -> tuple[int, int, int]:
        return input_shape(spec)

    def output_names(self, spec: LoadedSpec[Any]) -> list[str]:
        """The network's outputs as the runtimes name them (``decode`` reads them by these names)."""
        return [OUTPUT_COV, OUTPUT_BBOX]

    def evaluation_batches(self, spec: LoadedSpec[Any], *, use_training_set: bool = False,
                           batch_size: int | None = None) -> Iterator[tuple[np.ndarray, list[GroundTruth]]]:
        """Preprocessed images ``[B, C, H, W]`` and ground truth in network-input pixels; the batch size defaults
        to ``training_config.batch_size_per_gpu``."""
        from libtlt.archs.detectnet_v2.detectnet_v2_evaluation import evaluation_batches

        batch = batch_size or spec.message.training_config.batch_size_per_gpu or DEFAULT_EVAL_BATCH_SIZE
        return evaluation_batches(spec, use_training_set=use_training_set, batch_size=batch)

    def check_evaluation_data(self, spec: LoadedSpec[Any], classes: Sequence[str], use_training_set: bool) -> None:
        from libtlt.data.detection import check_evaluation_data

        check_evaluation_data(spec, classes, use_training_set)

    def decode(self, spec: LoadedSpec[Any], outputs: Mapping[str, np.ndarray], image_sizes: Sequence[tuple[int, int]],
               classes: Sequence[str]) -> list[ImageDetections]:
        """Clustered detections per image (boxes in network-input pixels, clipped to ``image_sizes``)."""
        return postprocess(spec, outputs[OUTPUT_COV], outputs[OUTPUT_BBOX], image_sizes, classes=classes)

    def evaluator(self, spec: LoadedSpec[Any], classes: Sequence[str]) -> Any:
        from libtlt.metrics.detection import DetectionEvaluator

        return DetectionEvaluator.from_spec(spec.message.evaluation_config, classes)

    def inference_options(self) -> list[Any]:
        """tlt-infer options beyond ``-e/-i/-o/-k``: none (the inference spec holds everything)."""
        return []

    def inference_setup(self, spec_path: str | Path, key: str | None) -> Any:
        """The inference spec's model, classes, decoding and outputs (``detectnet_v2_inference``)."""
        from libtlt.archs.detectnet_v2.detectnet_v2_inference import inference_setup

        return inference_setup(spec_path, key)

    def sample_spec(self, data: Any) -> str:
        """The default spec on ``libtlt.testing.SampleData`` (KITTI records at 480x272), one epoch (tests/archs)."""
        replacements = {"/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": data.train,
                        "/workspace/tlt-experiments/data/training": str(Path(data.images).parent),
                        "num_layers: 18": "num_layers: 10", "batch_size_per_gpu: 8": "batch_size_per_gpu: 2",
                        "num_epochs: 80": "num_epochs: 1", "checkpoint_interval: 10": "checkpoint_interval: 1",
                        "validation_period_during_training: 10": "validation_period_during_training: 1",
                        "first_validation_epoch: 10": "first_validation_epoch: 1"}
        from libtlt.spec.edits import edit_spec_text

        return edit_spec_text(self.default_spec(), replacements, "the default DetectNet_v2 spec")

    def sample_inference_args(self, data: Any, model: str | Path) -> list[str]:
        """tlt-infer's arguments for ``model`` on the sample images: an inference spec written beside the data."""
        from libtlt.archs.detectnet_v2.detectnet_v2_inference import inference_spec_text
        from libtlt.spec import load_spec_text

        _, height, width = input_shape(load_spec_text(self.sample_spec(data), self.spec_message()))
        spec = Path(data.root) / "detectnet_v2_inference.txt"
        spec.write_text(inference_spec_text(model, data.classes, width, height, confidence_threshold=0.1,
                                            dbscan_eps=0.3), encoding="utf-8")
        return ["-e", str(spec), "-i", data.images]

    def calibration_batches(self, spec: LoadedSpec[Any], *, use_validation_set: bool = False) -> CalibrationData:
        """Training (or validation) images preprocessed as for evaluation, ``batch_size_per_gpu`` at a time."""
        batch_size = int(spec.message.training_config.batch_size_per_gpu)
        images = (images for images, _ in eval_dataset(spec, use_training_set=not use_validation_set,
                                                       batch_size=batch_size))
        field = "training_config.batch_size_per_gpu"
        return CalibrationData(images, batch_size, field, spec.locate(field))

    def spec_message(self) -> type:
        return pb.Experiment

    def default_spec(self) -> str:
        return resources.files("libtlt.archs.detectnet_v2").joinpath("default_spec.txt").read_text("utf-8")

    def validate(self, spec: LoadedSpec[Any]) -> None:
        validation.validate(spec)
        if isinstance(spec.message, pb.Experiment):
            resolve_backbone(spec)
            pre = spec.message.augmentation_config.preprocessing
            if pre.HasField("output_image_channel") and pre.output_image_channel not in (1, 3):
                raise spec.error("augmentation_config.preprocessing.output_image_channel", "must be 1 or 3")

    def train_plan(self, spec: LoadedSpec[Any]) -> TrainPlan:
        train = spec.message.training_config
        optimizer, params = "adam", {}
        which = train.optimizer.WhichOneof("optimizer")
        if which == "adam" or which is None:
            adam = train.optimizer.adam
            params = {"beta_1": _f(adam.beta1), "beta_2": _f(adam.beta2), "epsilon": _f(adam.epsilon)}
        elif which == "sgd":
            optimizer, params = "sgd", {"momentum": _f(train.optimizer.sgd.momentum),
                                        "nesterov": train.optimizer.sgd.nesterov}
        else:
            rms = train.optimizer.rmsprop
            optimizer, params = "rmsprop", {"rho": _f(rms.rho), "momentum": _f(rms.momentum),
                                            "epsilon": _f(rms.epsilon), "centered": rms.centered}
        schedule = train.learning_rate.soft_start_annealing_schedule
        if not train.learning_rate.HasField("soft_start_annealing_schedule"):
            raise spec.error("training_config.learning_rate", "needs a soft_start_annealing_schedule")
        lr_params = {"min_lr": _f(schedule.min_learning_rate), "max_lr": _f(schedule.max_learning_rate),
                     "soft_start": _f(schedule.soft_start), "annealing": _f(schedule.annealing)}
        reg = train.regularizer
        regularizer = {reg.L1: "L1", reg.L2: "L2"}.get(reg.type)
        interval = round(train.checkpoint_interval) or DEFAULT_CHECKPOINT_INTERVAL
        model = spec.message.model_config
        return TrainPlan(
            model_name=f"{resolve_backbone(spec)}_detector",
            epochs=train.num_epochs,
            batch_size_per_gpu=train.batch_size_per_gpu,
            optimizer=optimizer,
            optimizer_params=params,
            lr_schedule="soft_start_annealing",
            lr_params=lr_params,
            regularizer=regularizer,
            regularizer_weight=_f(reg.weight) if regularizer else 0.0,
            regularizer_scope=REGULARIZER_SCOPE if regularizer else (),
            checkpoint_interval=max(1, min(interval, max(train.num_epochs, 1))),
            pretrained_model_path=model.pretrained_model_file or None,
            load_graph=bool(model.load_graph),
            random_seed=spec.message.random_seed if spec.message.HasField("random_seed") else None,
            enable_qat=bool(train.enable_qat),
        )

    # ---------------------------------------------------------------------------------------- model
    def build(self, spec: LoadedSpec[Any], classes: Sequence[str] | None = None) -> Any:
        return build_model(spec, classes)

    def label_encoder(self, spec: LoadedSpec[Any]) -> DetectNetLabelEncoder:
        return make_label_encoder(spec)

    def loss(self, spec: LoadedSpec[Any]) -> Any:
        loss = self._losses.get(id(spec))
        if loss is None:
            loss = self._losses[id(spec)] = make_loss(spec)
        return loss.keras_losses()

    def metrics(self, spec: LoadedSpec[Any]) -> list[Any]:
        return []  # mAP comes from the validation callback (training_callbacks)

    def post_process(self, spec: LoadedSpec[Any]) -> Any:
        classes = class_names(spec)

        def decode(cov: Any, bbox: Any, image_sizes: Sequence[tuple[int, int]] | None = None) -> Any:
            return postprocess(spec, cov, bbox, image_sizes, classes=classes)

        return decode

    def metadata(self, spec: LoadedSpec[Any], classes: Sequence[str]) -> dict[str, Any]:
        return metadata(spec, classes)

    def export_outputs(self, spec: LoadedSpec[Any]) -> list[str]:
        return [f"{OUTPUT_COV}/Sigmoid", f"{OUTPUT_BBOX}/BiasAdd"]

    # ----------------------------------------------------------------------------------------- data
    def training_data(self, spec: LoadedSpec[Any], *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        import tensorflow as tf

        classes = class_names(spec)
        train, val = split_frames(spec, classes)
        if len(train) < batch_size:
            raise SpecError(f"the training set has {len(train)} images, fewer than one batch ({batch_size})",
                            location=spec.locate("training_config.batch_size_per_gpu"))
        encoder = make_label_encoder(spec, classes)
        ds = frames_dataset(train, preprocessing(spec), augmentation(spec), shuffle=True, seed=seed or 0, repeat=True)

        def targets(image: Any, boxes: Any, ids: Any, index: Any) -> Any:
            cov, bbox = encoder.tf_encode(boxes, ids)
            return image, {OUTPUT_COV: cov, OUTPUT_BBOX: bbox}

        ds = ds.map(targets, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        labels = "\n".join(classes) + "\n"
        return TrainingData(
            train=ds,
            steps_per_epoch=steps(len(train), batch_size, drop_remainder=True),
            num_samples=len(train),
            classes=classes,
            files={"labels.txt": labels},
            metadata=metadata(spec, classes),
            images=[frame.image_path for frame in (*train, *val)],
        )

    def training_callbacks(self, spec: LoadedSpec[Any], data: TrainingData, model: Any) -> list[Any]:
        """Callbacks tlt-train runs before its own: validation mAP and auto-weighting."""
        from libtlt.archs.detectnet_v2.detectnet_v2_loss import autoweighting_callback

        callbacks = [validation_callback(spec)]
        loss = self._losses.get(id(spec))
        if loss is not None and loss.autoweighting:
            callbacks.append(autoweighting_callback(loss))
        return callbacks


def validation_callback(spec: LoadedSpec[Any]) -> Any:
    """Puts ``mAP`` (NaN on epochs without validation) and ``AP_<class>`` into the epoch logs."""
    import keras

    from libtlt.log import get_logger

    logger = get_logger("libtlt.archs.detectnet_v2")
    config = spec.message.evaluation_config
    period, first = config.validation_period_during_training, config.first_validation_epoch
    classes = class_names(spec)
    has_val = bool(split_frames(spec, classes)[1])

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs is None:
                return
            done = epoch + 1
            due = has_val and done >= first and (done - first) % period == 0
            logs["mAP"] = math.nan
            if not due:
                return
            result = evaluate(self.model, spec)
            logs["mAP"] = result.mean_average_precision
            for name in classes:
                logs[f"AP_{name}"] = result.classes[name].average_precision
            logger.info("Validation at epoch %d: mAP %.4f (%s)", done, result.mean_average_precision,
                        ", ".join(f"{n} {result.classes[n].average_precision:.4f}" for n in classes))

    return Validation()
