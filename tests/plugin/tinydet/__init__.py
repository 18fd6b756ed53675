"""``tinydet``: a small third-party box detector, as an outside package would write one.

It is not part of tlt: the plug-in test installs it into a temporary site directory with an entry point in
``libtlt.architectures`` and runs every tool on it through the installed commands. Nothing in tlt knows its
name. It reuses what the kernel shares: DetectNet_v2's spec schema (``dataset_config``,
``augmentation_config.preprocessing``, ``training_config``, ``evaluation_config``), the KITTI-TFRecord loader
(``libtlt.data.detection``), the box NMS (``libtlt.layers.boxes``) and the AP evaluator.

The network: NCHW ``input_1`` → four stride-2 convolutions (stride 16) → ``tiny_scores`` (sigmoid, one map per
class) and ``tiny_boxes`` (the box of the object centred in the cell, x1 y1 x2 y2 as fractions of the image).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.registry import BOX_DETECTOR, CalibrationData, InferenceSetup, TrainingData, TrainPlan

NAME = "tinydet"
STRIDE = 16
SCORES, BOXES = "tiny_scores", "tiny_boxes"
THRESHOLD = 0.3
IOU = 0.5
COLORS = ((255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 190, 0))


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray


@dataclass(frozen=True)
class Truth:
    boxes: np.ndarray
    class_ids: np.ndarray


def _classes(spec: Any) -> list[str]:
    from libtlt.spec import values

    return values.target_classes(spec.message.dataset_config)


def _shape(spec: Any) -> tuple[int, int, int]:
    pre = spec.message.augmentation_config.preprocessing
    return 3, int(pre.output_image_height), int(pre.output_image_width)


def _pre(spec: Any) -> Any:
    from libtlt.data.detection import Preprocessing

    _, height, width = _shape(spec)
    return Preprocessing(output_width=width, output_height=height)


def decode(scores: np.ndarray, boxes: np.ndarray, width: int, height: int, threshold: float) -> Detections:
    """One image's outputs (``scores [C, h, w]``, ``boxes [4, h, w]``) → boxes in network-input pixels, NMS per
    class."""
    from libtlt.layers.boxes import nms

    found_boxes, found_scores, found_ids = [], [], []
    scale = np.array([width, height, width, height], np.float64)
    cells = boxes.reshape(4, -1).T.astype(np.float64) * scale
    for class_id, class_scores in enumerate(scores.reshape(scores.shape[0], -1)):
        keep = np.flatnonzero(class_scores > threshold)
        if not keep.size:
            continue
        kept = keep[nms(cells[keep], class_scores[keep], IOU)]
        found_boxes.append(np.clip(cells[kept], 0.0, scale))
        found_scores.append(class_scores[kept].astype(np.float64))
        found_ids.append(np.full(len(kept), class_id, np.int64))
    if not found_boxes:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    return Detections(np.concatenate(found_boxes), np.concatenate(found_scores), np.concatenate(found_ids))


class TinyDet:
    name = NAME
    task = BOX_DETECTOR
    verbs = frozenset({"train", "evaluate", "infer", "export", "tensorfile"})

    # ------------------------------------------------------------------------------------------ spec
    def spec_message(self) -> type:
        from libtlt.spec.protos import detectnet_v2_pb2

        return detectnet_v2_pb2.Experiment

    def default_spec(self) -> str:
        return ""

    def validate(self, spec: Any) -> None:
        _, height, width = _shape(spec)
        if height % STRIDE or width % STRIDE or not height:
            raise spec.error("augmentation_config.preprocessing", f"the output size must be a multiple of {STRIDE}")

    def train_plan(self, spec: Any) -> TrainPlan:
        train = spec.message.training_config
        schedule = train.learning_rate.soft_start_annealing_schedule
        return TrainPlan(model_name=NAME, epochs=train.num_epochs, batch_size_per_gpu=train.batch_size_per_gpu,
                         optimizer="adam", lr_schedule="soft_start_annealing",
                         lr_params={"min_lr": schedule.min_learning_rate, "max_lr": schedule.max_learning_rate,
                                    "soft_start": schedule.soft_start, "annealing": schedule.annealing},
                         checkpoint_interval=max(train.num_epochs, 1), random_seed=0)

    # ----------------------------------------------------------------------------------------- model
    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        import keras

        names = list(classes) if classes is not None else _classes(spec)
        inputs = keras.Input(_shape(spec), name="input_1")
        x = keras.layers.Permute((2, 3, 1), name="to_nhwc")(inputs)
        for index, filters in enumerate((16, 24, 32, 32)):
            x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"conv{index}")(x)
        x = keras.layers.Permute((3, 1, 2), name="to_nchw")(x)
        scores = keras.layers.Conv2D(len(names), 1, activation="sigmoid", data_format="channels_first", name=SCORES,
                                     bias_initializer=keras.initializers.Constant(-2.0))(x)
        boxes = keras.layers.Conv2D(4, 1, data_format="channels_first", name=BOXES)(x)
        return keras.Model(inputs, [scores, boxes], name=NAME)

    def label_encoder(self, spec: Any) -> Any:
        return _encoder(spec)

    def loss(self, spec: Any) -> Any:
        import keras
        from keras import ops

        def box_loss(y_true: Any, y_pred: Any) -> Any:
            mask = ops.cast(y_true[:, :1] >= 0.0, "float32")
            return ops.sum(ops.abs(y_true - y_pred) * mask) / (ops.sum(mask) * 4.0 + 1.0)

        return {SCORES: keras.losses.BinaryCrossentropy(), BOXES: box_loss}

    def metrics(self, spec: Any) -> list[Any]:
        return []

    def post_process(self, spec: Any) -> Any:
        _, height, width = _shape(spec)
        return lambda scores, boxes: decode(scores, boxes, width, height, THRESHOLD)

    def export_outputs(self, spec: Any) -> list[str]:
        return [f"{SCORES}/Sigmoid", f"{BOXES}/BiasAdd"]

    def metadata(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        channels, height, width = _shape(spec)
        return {"architecture": NAME, "classes": list(classes), "input_shape": [channels, height, width],
                "input_layout": "NCHW", "preprocessing": "rgb/255", "output_names": [SCORES, BOXES]}

    # ------------------------------------------------------------------------------------------- data
    def training_data(self, spec: Any, *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        from libtlt.data.detection import frames_dataset, split_frames, steps

        classes = _classes(spec)
        train, val = split_frames(spec, classes)
        encode = _encoder(spec)
        ds = frames_dataset(train, _pre(spec), None, shuffle=True, seed=seed or 0, repeat=True)
        ds = ds.map(lambda image, boxes, ids, index: (image, encode(boxes, ids)))
        ds = ds.batch(batch_size, drop_remainder=True)
        return TrainingData(train=ds, steps_per_epoch=steps(len(train), batch_size, drop_remainder=True),
                            num_samples=len(train), classes=classes, metadata=self.metadata(spec, classes),
                            images=[f.image_path for f in (*train, *val)])

    # --------------------------------------------------------------------------------------- evaluate
    def class_names(self, spec: Any) -> list[str]:
        return _classes(spec)

    def input_shape(self, spec: Any) -> tuple[int, int, int]:
        return _shape(spec)

    def output_names(self, spec: Any) -> list[str]:
        return [SCORES, BOXES]

    def evaluation_batches(self, spec: Any, *, use_training_set: bool = False,
                           batch_size: int | None = None) -> Iterator[tuple[np.ndarray, list[Truth]]]:
        from libtlt.data.detection import frames_dataset, split_frames

        train, val = split_frames(spec, _classes(spec))
        frames = train if use_training_set else val
        ds = frames_dataset(frames, _pre(spec), None).batch(batch_size or 4)
        for images, boxes, ids, _ in ds.as_numpy_iterator():
            yield images, [Truth(b[i >= 0].astype(np.float64), i[i >= 0].astype(np.int64))
                           for b, i in zip(boxes, ids, strict=True)]

    def check_evaluation_data(self, spec: Any, classes: Sequence[str], use_training_set: bool) -> None:
        return None

    def decode(self, spec: Any, outputs: Any, image_sizes: Sequence[tuple[int, int]],
               classes: Sequence[str]) -> list[Detections]:
        _, height, width = _shape(spec)
        return [decode(outputs[SCORES][i], outputs[BOXES][i], width, height, THRESHOLD)
                for i in range(len(image_sizes))]

    def evaluator(self, spec: Any, classes: Sequence[str]) -> Any:
        from libtlt.metrics.detection import DetectionEvaluator

        return DetectionEvaluator(classes, iou_thresholds=0.5)

    # ------------------------------------------------------------------------------------------ infer
    def inference_options(self) -> list[Any]:
        import click

        return [click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
                             help="The model: .tlt, .etlt or engine."),
                click.option("-t", "--threshold", type=float, default=THRESHOLD, show_default=True,
                             help="Confidence threshold.")]

    def inference_setup(self, spec_path: str | Path, key: str | None, *, model: str, threshold: float) -> Any:
        from libtlt.runtime.predictor import make_predictor
        from libtlt.spec import load_spec

        spec = load_spec(spec_path, self.spec_message())
        self.validate(spec)
        predictor = make_predictor(model, key, None, architecture=NAME)
        classes = _classes(spec)
        channels, height, width = _shape(spec)

        def decode_batch(outputs: Any, count: int) -> list[Detections]:
            return [decode(outputs[SCORES][i], outputs[BOXES][i], width, height, threshold) for i in range(count)]

        return InferenceSetup(
            predictor=predictor, model_path=str(model), classes=classes, input_shape=(channels, height, width),
            batch_size=4,
            preprocess=lambda image: np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / np.float32(255),
            decode=decode_batch, label_names=classes, colors=[COLORS[i % len(COLORS)] for i in range(len(classes))])

    # ------------------------------------------------------------------------------------- tensorfile
    def calibration_batches(self, spec: Any, *, use_validation_set: bool = False) -> CalibrationData:
        from libtlt.data.detection import frames_dataset, split_frames

        train, val = split_frames(spec, _classes(spec))
        batch = int(spec.message.training_config.batch_size_per_gpu)
        ds = frames_dataset(val if use_validation_set else train, _pre(spec), None).batch(batch)
        field = "training_config.batch_size_per_gpu"
        return CalibrationData((images for images, *_ in ds.as_numpy_iterator()), batch, field, spec.locate(field))


def _encoder(spec: Any) -> Any:
    """(boxes [M, 4] network pixels, ids [M], −1 = none) → {scores [C, h, w], boxes [4, h, w] (−1: no object)}."""
    import tensorflow as tf

    num_classes = len(_classes(spec))
    _, height, width = _shape(spec)
    grid_h, grid_w = height // STRIDE, width // STRIDE

    def encode(boxes: Any, ids: Any) -> Any:
        valid = ids >= 0
        boxes, ids = tf.boolean_mask(boxes, valid), tf.boolean_mask(ids, valid)
        cx = tf.cast(tf.clip_by_value((boxes[:, 0] + boxes[:, 2]) / 2 // STRIDE, 0, grid_w - 1), tf.int32)
        cy = tf.cast(tf.clip_by_value((boxes[:, 1] + boxes[:, 3]) / 2 // STRIDE, 0, grid_h - 1), tf.int32)
        scores = tf.scatter_nd(tf.stack([ids, cy, cx], 1), tf.ones_like(cx, tf.float32), [num_classes, grid_h, grid_w])
        scores = tf.minimum(scores, 1.0)
        normalized = boxes / tf.constant([width, height, width, height], tf.float32)
        cells = tf.tensor_scatter_nd_update(-tf.ones([grid_h, grid_w, 4]), tf.stack([cy, cx], 1), normalized)
        return {SCORES: scores, BOXES: tf.transpose(cells, [2, 0, 1])}

    return encode
