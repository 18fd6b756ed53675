"""SSD and DSSD behind the ``libtlt.registry.Architecture`` protocol: one class, two entry points
(``libtlt.archs.ssd``, ``libtlt.archs.dssd``), which differ only in their spec section and DSSD's modules.

Spec (000 §7.4, §7.5): ``<arch>_config`` (anchors, backbone, loss), common.proto's ``training_config``,
``eval_config``, ``nms_config``, ``augmentation_config`` and ``dataset_config`` (KITTI TFRecords from
tlt-dataset-convert, read by ``libtlt.data.detection``).

* Classes: background, then the sorted distinct ``target_class_mapping`` values (TAO's order); labels.txt of an
  export lists them so. Detections report class ids 0..C−1 of the sorted classes.
* Input: NCHW ``Input`` of ``augmentation_config.preprocessing``'s size, BGR minus the per-channel means
  103.939, 116.779, 123.68, no scaling (REFERENCE.md; the model metadata records it for the tools).
* Loss (docs/ssd.md): TLT 2.0's ``loss_loc_weight``, ``focal_loss_alpha``, ``focal_loss_gamma`` as a softmax focal
  loss; with the TAO field ``neg_pos_ratio`` set, cross-entropy with hard negative mining instead (TAO's ``alpha``
  then replaces ``loss_loc_weight`` when set).
* Optimizer: ``training_config.optimizer`` when given, else TAO's SGD with momentum 0.9; learning rate
  ``soft_start_annealing_schedule`` (the only one the manual supports).
* Export: the raw outputs, then the box decoder and the standard-ONNX NMS (``NMS`` ``[N, 1, top_k, 7]``,
  ``NMS_1`` count) after them, so engines need no plugin (``export_tail``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from libtlt.layers import anchor_detection as ad
from libtlt.registry import BOX_DETECTOR, CalibrationData, InferenceSetup, TrainingData, TrainPlan

NUM_LAYERS = 6
#: BGR means (caffe), subtracted from 0-255 pixels.
BGR_MEANS = (103.939, 116.779, 123.68)
REGULARIZER_SCOPE = ("Conv2D", "Conv2DTranspose", "Dense")
#: tlt-infer's drawing threshold (000 §10.4: ``-t``, default 0.3).
DEFAULT_DRAW_THRESHOLD = 0.3
DEFAULT_EVAL_BATCH_SIZE = 8
COLORS = ((255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 190, 0), (200, 0, 200), (0, 200, 200))


def _f(value: float) -> float:
    """A protobuf float (32-bit) as the decimal the user wrote."""
    return float(f"{value:.7g}")


@dataclass(frozen=True)
class Truth:
    """One image's ground truth in network-input pixels; ``difficult`` ``[G]`` bool, where the architecture's
    evaluation flags boxes as VOC "difficult" (tlt-evaluate passes it as the evaluator's ``gt_difficult``)."""

    frame_id: str
    boxes: np.ndarray
    class_ids: np.ndarray
    difficult: np.ndarray | None = None


class SsdFamilyArchitecture:
    """SSD (``dssd=False``) or DSSD; ``package`` holds the default spec and the validation module."""

    task = BOX_DETECTOR
    verbs = frozenset({"train", "evaluate", "infer", "export", "tensorfile"})
    #: What a subclass with another network changes (RetinaNet): prediction layers, the class output's name,
    #: whether its column 0 is background (softmax) or every column an object class (sigmoids), and where the
    #: neutral IoU band of the matching starts.
    num_layers = NUM_LAYERS
    conf_output = ad.CONF_OUTPUT
    background_first = True
    negative_threshold = 0.3

    def __init__(self, name: str, *, dssd: bool, package: str, proto: Any, validate: Any):
        self.name = name
        self.dssd = dssd
        self.config_field = f"{name}_config"
        self._package = package
        self._proto = proto
        self._validate = validate

    # ------------------------------------------------------------------------------------------ spec
    def spec_message(self) -> type:
        return self._proto.Experiment  # type: ignore[no-any-return]

    def default_spec(self) -> str:
        return resources.files(self._package).joinpath("default_spec.txt").read_text("utf-8")

    def validate(self, spec: Any) -> None:
        self._validate(spec)
        if isinstance(spec.message, self._proto.Experiment):
            self.backbone(spec)
            config = self._config(spec)
            boxes = self.anchor_config(spec).boxes_per_cell()
            if any(n < 1 for n in boxes):
                raise spec.error(f"{self.config_field}.aspect_ratios", "every prediction layer needs an aspect ratio")
            if "neg_pos_ratio" in config.DESCRIPTOR.fields_by_name and config.HasField("neg_pos_ratio") \
                    and config.neg_pos_ratio <= 0:
                raise spec.error(f"{self.config_field}.neg_pos_ratio", "must be positive")

    def _config(self, spec: Any) -> Any:
        return getattr(spec.message, self.config_field)

    def backbone(self, spec: Any) -> str:
        from libtlt.spec.backbones import backbone_name

        config = self._config(spec)
        try:
            return backbone_name(config.arch or "resnet", config.nlayers if config.HasField("nlayers") else None)
        except ValueError as err:
            raise spec.error(f"{self.config_field}.nlayers", str(err)) from None

    def anchor_config(self, spec: Any) -> ad.AnchorConfig:
        return ad.anchor_config(spec, self.config_field, self._config(spec), self.num_layers)

    def feature_sizes(self, spec: Any) -> list[tuple[int, int]]:
        """(h, w) of each prediction layer's map."""
        from libtlt.layers.ssd_network import feature_sizes

        return feature_sizes(self.backbone(spec), self.input_shape(spec)[1:])

    def anchors(self, spec: Any) -> np.ndarray:
        return self.anchor_config(spec).anchors(self.input_shape(spec)[1:], self.feature_sizes(spec))

    def labels(self, classes: Sequence[str]) -> list[str]:
        """labels.txt's lines: the NMS output's label k names line k."""
        return ["background", *classes] if self.background_first else list(classes)

    def class_names(self, spec: Any) -> list[str]:
        """The object classes in output order (after the background column): sorted, as TAO."""
        from libtlt.spec import values

        return sorted(values.target_classes(spec.message.dataset_config))

    def input_shape(self, spec: Any) -> tuple[int, int, int]:
        from libtlt.data.detection import preprocessing_from_spec

        pre = preprocessing_from_spec(spec)
        return pre.channels, pre.output_height, pre.output_width

    def nms(self, spec: Any) -> Any:
        return ad.nms_config(spec.message.nms_config, background_class=0 if self.background_first else None)

    def loss_config(self, spec: Any) -> ad.LossConfig:
        config = self._config(spec)
        if config.HasField("neg_pos_ratio"):
            weight = _f(config.alpha) if config.HasField("alpha") else _f(config.loss_loc_weight)
            return ad.LossConfig(loc_weight=weight, neg_pos_ratio=_f(config.neg_pos_ratio))
        return ad.LossConfig(loc_weight=_f(config.loss_loc_weight), alpha=_f(config.focal_loss_alpha),
                             gamma=_f(config.focal_loss_gamma))

    def _offsets(self, channels: int) -> tuple[float, ...]:
        return BGR_MEANS if channels == 3 else (float(np.dot((0.114, 0.587, 0.299), BGR_MEANS)),)

    # ---------------------------------------------------------------------------------------- train
    def train_plan(self, spec: Any) -> TrainPlan:
        train = spec.message.training_config
        which = train.optimizer.WhichOneof("optimizer")
        optimizer, params = "sgd", {"momentum": 0.9, "nesterov": False}
        if which == "adam":
            adam = train.optimizer.adam
            optimizer, params = "adam", {"beta_1": _f(adam.beta1), "beta_2": _f(adam.beta2),
                                         "epsilon": _f(adam.epsilon)}
        elif which == "sgd":
            params = {"momentum": _f(train.optimizer.sgd.momentum), "nesterov": train.optimizer.sgd.nesterov}
        elif which == "rmsprop":
            rms = train.optimizer.rmsprop
            optimizer, params = "rmsprop", {"rho": _f(rms.rho), "momentum": _f(rms.momentum),
                                            "epsilon": _f(rms.epsilon), "centered": rms.centered}
        if not train.learning_rate.HasField("soft_start_annealing_schedule"):
            raise spec.error("training_config.learning_rate", "needs a soft_start_annealing_schedule")
        schedule = train.learning_rate.soft_start_annealing_schedule
        reg = train.regularizer
        regularizer = {reg.L1: "L1", reg.L2: "L2"}.get(reg.type)
        interval = max(1, min(round(train.checkpoint_interval) or 1, max(train.num_epochs, 1)))
        return TrainPlan(
            model_name=f"{self.name}_{self.backbone(spec)}", epochs=train.num_epochs,
            batch_size_per_gpu=train.batch_size_per_gpu, optimizer=optimizer, optimizer_params=params,
            lr_schedule="soft_start_annealing",
            lr_params={"min_lr": _f(schedule.min_learning_rate), "max_lr": _f(schedule.max_learning_rate),
                       "soft_start": _f(schedule.soft_start), "annealing": _f(schedule.annealing)},
            regularizer=regularizer, regularizer_weight=_f(reg.weight) if regularizer else 0.0,
            regularizer_scope=REGULARIZER_SCOPE if regularizer else (), checkpoint_interval=interval,
            random_seed=spec.message.random_seed if spec.message.HasField("random_seed") else None,
            enable_qat=bool(train.enable_qat))

    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        from libtlt.layers.ssd_network import SsdNetworkConfig, build_ssd

        names = list(classes) if classes is not None else self.class_names(spec)
        config = self._config(spec)
        return build_ssd(SsdNetworkConfig(
            backbone=self.backbone(spec), input_shape=self.input_shape(spec), num_classes=len(names),
            boxes_per_cell=tuple(self.anchor_config(spec).boxes_per_cell()), freeze_bn=bool(config.freeze_bn),
            freeze_blocks=tuple(int(b) for b in config.freeze_blocks), dssd=self.dssd,
            pred_num_channels=int(config.pred_num_channels) if self.dssd else 0))

    def label_encoder(self, spec: Any) -> Any:
        _, height, width = self.input_shape(spec)
        return ad.target_encoder(self.anchors(spec), self.anchor_config(spec).variances, (width, height),
                                 negative_threshold=self.negative_threshold, conf_name=self.conf_output)

    def loss(self, spec: Any) -> Any:
        return ad.make_losses(self.loss_config(spec), conf_name=self.conf_output)

    def metrics(self, spec: Any) -> list[Any]:
        return []  # mAP comes from the validation callback

    def post_process(self, spec: Any) -> Any:
        return self.detector(spec)

    def detector(self, spec: Any, threshold: float = -math.inf) -> Callable[[Mapping[str, np.ndarray]],
                                                                            list[ad.Detections]]:
        """Detections above ``threshold`` (boxes in network-input pixels) of a batch's outputs by name: the
        deployed graph's NMS outputs when present, else the raw outputs decoded and reduced in NumPy. Every path
        that reads detections (validation, evaluation, inference) goes through this."""
        anchors, variances, nms = self.anchors(spec), self.anchor_config(spec).variances, self.nms(spec)
        _, height, width = self.input_shape(spec)
        return lambda outputs: ad.detect(outputs, anchors, variances, nms, width, height, threshold,
                                         conf_name=self.conf_output)

    def export_outputs(self, spec: Any) -> list[str]:
        return [self.conf_output, ad.LOC_OUTPUT]

    def export_tail(self, spec: Any, onnx_model: Any) -> Any:
        """The exported graph with the box decoder and the standard-ONNX NMS after the raw outputs."""
        return ad.append_decoder_and_nms(onnx_model, self.anchors(spec), self.anchor_config(spec).variances,
                                         self.nms(spec), conf=self.conf_output)

    def deployed_output_names(self, spec: Any) -> list[str]:
        return list(self.nms(spec).output_names)

    def metadata(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        from google.protobuf import text_format

        try:
            text = Path(spec.path).read_text(encoding="utf-8")
        except OSError:
            text = text_format.MessageToString(spec.message)
        channels = self.input_shape(spec)[0]
        return {"architecture": self.name, "classes": list(classes), "input_shape": list(self.input_shape(spec)),
                "input_layout": "NCHW", "image_scale": 1.0, "image_offsets": list(self._offsets(channels)),
                "color_format": "bgr" if channels == 3 else "gray", "background_first": self.background_first,
                "output_names": self.export_outputs(spec), "num_anchors": len(self.anchors(spec)),
                "spec": text}

    def deepstream_settings(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        """nvinfer keys beyond the common ones, and labels.txt's lines (§13.3.3, §13.3.5-7)."""
        return {"labels": self.labels(classes), "num-detected-classes": len(self.labels(classes)),
                "parse-bbox-func-name": "NvDsInferParseCustomNMSTLT",
                "custom-lib-path": "<path to libnvds_infercustomparser_tlt.so>", "maintain-aspect-ratio": 0}

    # ----------------------------------------------------------------------------------------- data
    def _bgr(self, image: Any) -> Any:
        """The loader's RGB / 255 CHW image → the network's BGR − means, 0-255 scale."""
        import tensorflow as tf

        offsets = tf.constant(self._offsets(int(image.shape[0])), tf.float32)[:, None, None]
        channels = image[::-1] if int(image.shape[0]) == 3 else image
        return channels * 255.0 - offsets

    def _frames(self, spec: Any) -> tuple[list[Any], list[Any]]:
        from libtlt.data.detection import split_frames

        return split_frames(spec, self.class_names(spec))

    def training_data(self, spec: Any, *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        import tensorflow as tf

        from libtlt.data.detection import (
            augmentation_from_spec,
            frames_dataset,
            preprocessing_from_spec,
            share_cpu_with_training,
            steps,
        )
        from libtlt.errors import SpecError

        classes = self.class_names(spec)
        train, val = self._frames(spec)
        if len(train) < batch_size:
            raise SpecError(f"the training set has {len(train)} images, fewer than one batch ({batch_size})",
                            location=spec.locate("training_config.batch_size_per_gpu"))
        encode = self.label_encoder(spec)
        ds = frames_dataset(train, preprocessing_from_spec(spec), augmentation_from_spec(spec), shuffle=True,
                            seed=seed or 0, repeat=True)
        ds = ds.map(lambda image, boxes, ids, index: (self._bgr(image), encode(boxes, ids)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = share_cpu_with_training(ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
        labels = "".join(f"{name}\n" for name in self.labels(classes))
        return TrainingData(train=ds, steps_per_epoch=steps(len(train), batch_size, drop_remainder=True),
                            num_samples=len(train), classes=classes, files={"labels.txt": labels},
                            metadata=self.metadata(spec, classes),
                            images=[frame.image_path for frame in (*train, *val)])

    def training_callbacks(self, spec: Any, data: TrainingData, model: Any) -> list[Any]:
        return [_validation_callback(self, spec)]

    # ------------------------------------------------------------------------------------- evaluate
    def output_names(self, spec: Any) -> list[str]:
        return self.export_outputs(spec)

    def _batches(self, frames: Sequence[Any], spec: Any, batch_size: int) -> Iterator[tuple[np.ndarray, list[Truth]]]:
        from libtlt.data.detection import frames_dataset, preprocessing_from_spec

        ds = frames_dataset(frames, preprocessing_from_spec(spec), None)
        ds = ds.map(lambda image, boxes, ids, index: (self._bgr(image), boxes, ids, index)).batch(batch_size)
        for images, boxes, ids, index in ds.prefetch(2).as_numpy_iterator():
            truths = [Truth(frames[int(index[b])].frame_id, boxes[b][ids[b] >= 0].astype(np.float64),
                            ids[b][ids[b] >= 0].astype(np.int64)) for b in range(len(index))]
            yield images, truths

    def evaluation_batches(self, spec: Any, *, use_training_set: bool = False,
                           batch_size: int | None = None) -> Iterator[tuple[np.ndarray, list[Truth]]]:
        """Validation images (BGR − means) and their ground truth in network-input pixels; with
        ``use_training_set`` the training frames, then the validation ones."""
        from libtlt.errors import DataError

        train, val = self._frames(spec)
        size = batch_size or spec.message.eval_config.batch_size or DEFAULT_EVAL_BATCH_SIZE
        frames = [*train, *val] if use_training_set else val
        if not frames:
            raise DataError("no validation frames: set dataset_config.validation_fold or validation_data_source",
                            location=spec.locate("dataset_config"))
        yield from self._batches(frames, spec, size)

    def check_evaluation_data(self, spec: Any, classes: Sequence[str], use_training_set: bool) -> None:
        from libtlt.data.detection import check_evaluation_data

        check_evaluation_data(spec, classes, use_training_set)

    def decode(self, spec: Any, outputs: Mapping[str, np.ndarray], image_sizes: Sequence[tuple[int, int]],
               classes: Sequence[str]) -> list[ad.Detections]:
        """Detections above ``nms_config.confidence_threshold`` (boxes in network-input pixels)."""
        found = self.detector(spec)(outputs)
        return [ad.Detections(np.clip(d.boxes, 0.0, [w, h, w, h]), d.confidences, d.class_ids)
                for d, (w, h) in zip(found, image_sizes, strict=True)]

    def evaluator(self, spec: Any, classes: Sequence[str]) -> Any:
        from libtlt.metrics.detection import DetectionEvaluator

        config = spec.message.eval_config
        return DetectionEvaluator(classes, iou_thresholds=_f(config.matching_iou_threshold) or 0.5,
                                  mode=config.average_precision_mode)

    # ---------------------------------------------------------------------------------------- infer
    def inference_options(self) -> list[Any]:
        import click

        return [click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
                             help="The model: .tlt, .etlt or engine."),
                click.option("-t", "--threshold", type=float, default=DEFAULT_DRAW_THRESHOLD, show_default=True,
                             help="Confidence threshold of the boxes drawn and written.")]

    def inference_setup(self, spec_path: str | Path, key: str | None, *, model: str, threshold: float) -> Any:
        from libtlt.runtime.predictor import make_predictor
        from libtlt.spec import load_spec

        spec: Any = load_spec(spec_path, self.spec_message())
        self.validate(spec)
        predictor = make_predictor(model, key, None, architecture=self.name)
        classes = self.class_names(spec)
        channels, height, width = self.input_shape(spec)
        detect = self.detector(spec, threshold)
        offsets = np.asarray(self._offsets(channels), np.float32)[:, None, None]

        def preprocess(image: np.ndarray) -> np.ndarray:
            chw = np.asarray(image, np.float32).transpose(2, 0, 1)
            return np.ascontiguousarray((chw[::-1] if channels == 3 else chw) - offsets, np.float32)

        def decode(outputs: Any, count: int) -> list[ad.Detections]:
            return detect(outputs)[:count]

        return InferenceSetup(predictor=predictor, model_path=str(model), classes=classes,
                              input_shape=(channels, height, width), batch_size=4, preprocess=preprocess,
                              decode=decode, label_names=classes,
                              colors=[COLORS[i % len(COLORS)] for i in range(len(classes))])

    # ------------------------------------------------------------------------------------- tensorfile
    def calibration_batches(self, spec: Any, *, use_validation_set: bool = False) -> CalibrationData:
        train, val = self._frames(spec)
        batch = int(spec.message.training_config.batch_size_per_gpu)
        images = (images for images, _ in self._batches(val if use_validation_set else train, spec, batch))
        field = "training_config.batch_size_per_gpu"
        return CalibrationData(images, batch, field, spec.locate(field))

    # ------------------------------------------------------------------------------------ test hooks
    #: Literals of the default spec that the sample and demo specs replace (depth, batch, epochs, top rate).
    default_literals: ClassVar[Mapping[str, str]] = {"depth": "nlayers: 18", "batch": "batch_size_per_gpu: 16",
                                                     "epochs": "num_epochs: 80", "max_lr": "max_learning_rate: 2e-2"}

    def _edited_default(self, replacements: dict[str, str], values: Mapping[str, str]) -> str:
        """The default spec with ``replacements`` and each of ``default_literals``' fields set to ``values``."""
        from libtlt.spec.edits import edit_spec_text

        for key, value in values.items():
            literal = self.default_literals[key]
            replacements[literal] = f"{literal.split(':')[0]}: {value}"
        return edit_spec_text(self.default_spec(), replacements, f"the default {self.name} spec")

    def _sample_edits(self) -> dict[str, str]:
        """Architecture-specific edits of :meth:`sample_spec` (RetinaNet: smaller subnets)."""
        return {}

    def _demo_edits(self) -> dict[str, str]:
        """Architecture-specific edits of :meth:`demo_spec`: the SSD paper's scales (0.1 … 1.05: objects of the
        sample data get about 28 positive anchors per image, the manual's 0.05 … 0.85 about 9); DSSD without the
        prediction modules, as the manual's §7.5.6 sample, so that a CPU run stays near ten minutes."""
        edits = {'scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"': 'scales: "[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]"'}
        if self.dssd:
            edits["pred_num_channels: 512"] = "pred_num_channels: 0"
        return edits

    def sample_spec(self, data: Any) -> str:
        """The default spec on ``libtlt.testing.SampleData`` (KITTI records at 480x272, cropped to 480x256),
        one epoch of resnet10 (tests/archs)."""
        replacements = {"/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": data.train,
                        "/workspace/tlt-experiments/data/training": str(Path(data.images).parent),
                        "validation_period_during_training: 10": "validation_period_during_training: 1",
                        "output_image_width: 1248": "output_image_width: 480",
                        "output_image_height: 384": "output_image_height: 256", "crop_right: 1248": "crop_right: 480",
                        "crop_bottom: 384": "crop_bottom: 256", **self._sample_edits()}
        return self._edited_default(replacements, {"depth": "10", "batch": "2", "epochs": "1"})

    def demo_spec(self, *, train_records: str, train_images: str | Path, val_records: str, val_images: str | Path,
                  width: int, height: int, epochs: int) -> str:
        """The default spec for a from-scratch model on a CPU (``python -m libtlt.demo --arch``, bench/): resnet10,
        the data's width and its height cut to a multiple of 32, Adam at 1e-3 (batch 8), no regularizer, no zoom,
        validation on held-out records at the end, plus :meth:`_demo_edits`."""
        cut = height - height % 32
        adam = "  optimizer {\n    adam {\n      epsilon: 1e-7\n      beta1: 0.9\n      beta2: 0.999\n    }\n  }\n"
        replacements = {
            "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": train_records,
            "/workspace/tlt-experiments/data/training": str(train_images),
            "  validation_fold: 0\n": f'  validation_data_source: {{\n    tfrecords_path: "{val_records}"\n'
                                      f'    image_directory_path: "{val_images}"\n  }}\n',
            "  regularizer {\n    type: L1": adam + "  regularizer {\n    type: NO_REG",
            "validation_period_during_training: 10": f"validation_period_during_training: {epochs}",
            "output_image_width: 1248": f"output_image_width: {width}",
            "output_image_height: 384": f"output_image_height: {cut}", "crop_right: 1248": f"crop_right: {width}",
            "crop_bottom: 384": f"crop_bottom: {cut}", "zoom_min: 0.7": "zoom_min: 1.0", "zoom_max: 1.8": "zoom_max: 1.0",
            **self._demo_edits(),
        }
        return self._edited_default(replacements, {"depth": "10", "batch": "8", "epochs": str(epochs),
                                                   "max_lr": "1e-3"})

    def demo_inference_args(self, spec: str | Path, model: str | Path, images: str | Path) -> list[str]:
        return ["-e", str(spec), "-m", str(model), "-i", str(images)]

    def sample_inference_args(self, data: Any, model: str | Path) -> list[str]:
        spec = Path(data.root) / f"{self.name}_sample_spec.txt"
        spec.write_text(self.sample_spec(data), encoding="utf-8")
        return ["-e", str(spec), "-m", str(model), "-i", data.images, "-t", "0.01"]


def evaluate_model(arch: SsdFamilyArchitecture, model: Any, spec: Any) -> Any:
    """The ``DetectionResult`` of a Keras model on the spec's validation frames."""
    classes = arch.class_names(spec)
    evaluator = arch.evaluator(spec, classes)
    _, height, width = arch.input_shape(spec)
    for images, truths in arch.evaluation_batches(spec):
        outputs = model.predict_on_batch(images)
        if not isinstance(outputs, (list, tuple, dict)):  # a single-output model (YOLOv3)
            outputs = [outputs]
        named = outputs if isinstance(outputs, dict) else dict(zip(arch.export_outputs(spec), outputs, strict=True))
        for found, truth in zip(arch.decode(spec, named, [(width, height)] * len(truths), classes), truths,
                                strict=True):
            evaluator.add_image(found.boxes, found.confidences, found.class_ids, truth.boxes, truth.class_ids)
    return evaluator.result()


def _validation_callback(arch: SsdFamilyArchitecture, spec: Any) -> Any:
    """Puts ``mAP`` (NaN on epochs without validation) and ``AP_<class>`` into the epoch logs every
    ``eval_config.validation_period_during_training`` epochs."""
    import keras

    from libtlt.log import get_logger

    logger = get_logger(f"libtlt.archs.{arch.name}")
    period = max(1, int(spec.message.eval_config.validation_period_during_training))
    classes = arch.class_names(spec)
    has_val = bool(arch._frames(spec)[1])

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs is None:
                return
            logs["mAP"] = math.nan
            if not has_val or (epoch + 1) % period:
                return
            result = evaluate_model(arch, self.model, spec)
            logs["mAP"] = result.mean_average_precision
            for name in classes:
                logs[f"AP_{name}"] = result.classes[name].average_precision
            logger.info("Validation at epoch %d: mAP %.4f (%s)", epoch + 1, result.mean_average_precision,
                        ", ".join(f"{n} {result.classes[n].average_precision:.4f}" for n in classes))

    return Validation()
