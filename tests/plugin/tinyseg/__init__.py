"""``tinyseg``: a small third-party instance segmenter, as an outside package would write one.

Like ``tinydet``, it is not part of tlt: the plug-in test installs it with an entry point in
``libtlt.architectures`` and runs the tools on it through the installed commands. It reads MaskRCNN's spec
schema (``data_config``: ``image_size``, ``training_file_pattern``, ``validation_file_pattern``,
``val_json_file``, ``num_classes`` with the background; ``train_batch_size``, ``init_learning_rate``, and
``total_steps``, which tinyseg reads as a number of epochs) and the COCO records that ``tlt-dataset-convert``
writes for MaskRCNN (embedded JPEG, per-instance PNG masks), read without TensorFlow through ``libtlt.io``.

The network: NCHW ``input_1`` → four convolutions (stride 4, then dilated) → ``tiny_masks``: per-pixel class probabilities
(softmax over background + categories), NCHW. Instances are the connected regions of each category's pixels;
channel c is COCO category id c.
"""

from __future__ import annotations

import ast
import glob
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from libtlt.errors import DataError
from libtlt.registry import (
    INSTANCE_SEGMENTER,
    CalibrationData,
    EvaluationImage,
    InferenceSetup,
    TrainingData,
    TrainPlan,
)

NAME = "tinyseg"
STRIDE = 4
MASKS = "tiny_masks"
MIN_PIXELS = 2  # grid cells an instance needs
COLORS = ((0, 0, 0), (255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 190, 0))


@dataclass(frozen=True)
class Instances:
    boxes: np.ndarray  # [M, 4] x1 y1 x2 y2
    confidences: np.ndarray
    class_ids: np.ndarray  # COCO category ids
    masks: np.ndarray  # [M, H, W]


@dataclass(frozen=True)
class Record:
    image: np.ndarray  # HWC uint8, original size
    image_id: int
    target: np.ndarray  # [H/STRIDE, W/STRIDE] class per grid cell


def _size(spec: Any) -> tuple[int, int]:
    """(height, width) of ``data_config.image_size`` ("(H, W)")."""
    try:
        height, width = ast.literal_eval(spec.message.data_config.image_size)
    except (ValueError, SyntaxError, TypeError):
        raise spec.error("data_config.image_size", "expected '(height, width)'") from None
    return int(height), int(width)


def _shape(spec: Any) -> tuple[int, int, int]:
    height, width = _size(spec)
    return 3, height, width


def _num_classes(spec: Any) -> int:
    return int(spec.message.data_config.num_classes)


def _preprocess(image: np.ndarray, width: int, height: int) -> np.ndarray:
    resized = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(resized.transpose(2, 0, 1), np.float32) / np.float32(255)


def read_records(pattern: str, width: int, height: int) -> list[Record]:
    """The COCO records of ``pattern``: images, COCO ids and per-cell class targets (crowd regions skipped)."""
    from libtlt.io import tfrecord
    from libtlt.io.example import decode_example

    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no records match {pattern}")
    records = []
    grid = (width // STRIDE, height // STRIDE)
    for path in files:
        for data in tfrecord.read_records(path):
            example = decode_example(data, source=path)
            image = np.asarray(Image.open(io.BytesIO(example["image/encoded"][0])).convert("RGB"))
            target = np.zeros(grid[::-1], np.int32)
            labels = example.get("image/object/class/label", [])
            crowd = example.get("image/object/is_crowd", [0] * len(labels))
            for label, is_crowd, png in zip(labels, crowd, example.get("image/object/mask", []), strict=True):
                if is_crowd:
                    continue
                # 8-bit PNG, values 0/1 (docs/formats.md): the cells at least half covered.
                mask = np.asarray(Image.open(io.BytesIO(png)), np.float32)
                cover = np.asarray(Image.fromarray(mask, mode="F").resize(grid, Image.Resampling.BILINEAR))
                target[cover >= 0.5] = int(label)
            records.append(Record(image, int(example["image/source_id"][0]), target))
    return records


def instances_from(probabilities: np.ndarray, out_width: int, out_height: int) -> Instances:
    """``[C+1, h, w]`` probabilities → connected regions per category, masks and boxes at the output size."""
    from scipy import ndimage

    labels = np.argmax(probabilities, axis=0)
    boxes, scores, ids, masks = [], [], [], []
    for category in range(1, probabilities.shape[0]):
        regions, count = ndimage.label(labels == category)
        for region in range(1, count + 1):
            cells = regions == region
            if cells.sum() < MIN_PIXELS:
                continue
            soft = np.where(cells, probabilities[category], 0.0).astype(np.float32)
            mask = np.asarray(Image.fromarray(soft, mode="F").resize((out_width, out_height),
                                                                      Image.Resampling.BILINEAR)) >= 0.5
            if not mask.any():
                continue
            rows, cols = np.nonzero(mask)
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            scores.append(float(probabilities[category][cells].mean()))
            ids.append(category)
            masks.append(mask)
    if not boxes:
        return Instances(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, out_height, out_width)))
    return Instances(np.asarray(boxes, np.float64), np.asarray(scores), np.asarray(ids, np.int64), np.stack(masks))


class TinySeg:
    name = NAME
    task = INSTANCE_SEGMENTER
    verbs = frozenset({"train", "evaluate", "infer", "export", "tensorfile"})

    # ------------------------------------------------------------------------------------------ spec
    def spec_message(self) -> type:
        from libtlt.spec.protos import mask_rcnn_pb2

        return mask_rcnn_pb2.Experiment

    def default_spec(self) -> str:
        return ""

    def validate(self, spec: Any) -> None:
        height, width = _size(spec)
        if height % STRIDE or width % STRIDE:
            raise spec.error("data_config.image_size", f"height and width must be multiples of {STRIDE}")
        if _num_classes(spec) < 2:
            raise spec.error("data_config.num_classes", "at least 2 (the background and one category)")

    def train_plan(self, spec: Any) -> TrainPlan:
        message = spec.message
        return TrainPlan(model_name=NAME, epochs=int(message.total_steps), batch_size_per_gpu=message.train_batch_size,
                         optimizer="adam", lr_schedule="step",
                         lr_params={"base_lr": message.init_learning_rate, "step_size": 100, "gamma": 1.0},
                         checkpoint_interval=max(int(message.total_steps), 1), random_seed=int(message.seed))

    # ----------------------------------------------------------------------------------------- model
    def build(self, spec: Any, classes: Sequence[str] | None = None) -> Any:
        import keras

        inputs = keras.Input(_shape(spec), name="input_1")
        x = keras.layers.Permute((2, 3, 1), name="to_nhwc")(inputs)
        for index, (filters, stride, dilation) in enumerate(((16, 2, 1), (32, 2, 1), (32, 1, 2), (32, 1, 4))):
            x = keras.layers.Conv2D(filters, 3, strides=stride, dilation_rate=dilation, padding="same",
                                    activation="relu", name=f"conv{index}")(x)
        x = keras.layers.Conv2D(_num_classes(spec), 1, activation="softmax", name="classes")(x)
        outputs = keras.layers.Permute((3, 1, 2), name=MASKS)(x)
        return keras.Model(inputs, outputs, name=NAME)

    def label_encoder(self, spec: Any) -> Any:
        return lambda target: target

    def loss(self, spec: Any) -> Any:
        from keras import ops

        def pixel_loss(y_true: Any, y_pred: Any) -> Any:
            onehot = ops.one_hot(ops.cast(y_true, "int32"), _num_classes(spec), axis=1)
            return -ops.mean(ops.sum(onehot * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=1))

        return pixel_loss

    def metrics(self, spec: Any) -> list[Any]:
        return []

    def post_process(self, spec: Any) -> Any:
        _, height, width = _shape(spec)
        return lambda probabilities: instances_from(probabilities, width, height)

    def export_outputs(self, spec: Any) -> list[str]:
        return [MASKS]

    def metadata(self, spec: Any, classes: Sequence[str]) -> dict[str, Any]:
        channels, height, width = _shape(spec)
        return {"architecture": NAME, "classes": list(classes), "input_shape": [channels, height, width],
                "input_layout": "NCHW", "preprocessing": "rgb/255", "output_names": [MASKS]}

    # ------------------------------------------------------------------------------------------- data
    def _records(self, spec: Any, field: str) -> list[Record]:
        _, height, width = _shape(spec)
        pattern = getattr(spec.message.data_config, field)
        if not pattern:
            raise spec.error(f"data_config.{field}", "required")
        return read_records(pattern, width, height)

    def _images(self, spec: Any, records: Sequence[Record]) -> np.ndarray:
        _, height, width = _shape(spec)
        return np.stack([_preprocess(r.image, width, height) for r in records])

    def training_data(self, spec: Any, *, batch_size: int, seed: int | None = None,
                      strict: bool = False) -> TrainingData:
        import tensorflow as tf

        records = self._records(spec, "training_file_pattern")
        images = self._images(spec, records)
        targets = np.stack([r.target for r in records])
        ds = tf.data.Dataset.from_tensor_slices((images, targets)).shuffle(len(records), seed=seed or 0).repeat()
        classes = [str(c) for c in range(1, _num_classes(spec))]
        return TrainingData(train=ds.batch(batch_size, drop_remainder=True),
                            steps_per_epoch=max(len(records) // batch_size, 1), num_samples=len(records),
                            classes=classes, metadata=self.metadata(spec, classes))

    # --------------------------------------------------------------------------------------- evaluate
    def input_shape(self, spec: Any) -> tuple[int, int, int]:
        return _shape(spec)

    def output_names(self, spec: Any) -> list[str]:
        return [MASKS]

    def coco_ground_truth(self, spec: Any) -> dict[str, Any]:
        path = spec.message.data_config.val_json_file
        try:
            return dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise spec.error("data_config.val_json_file", f"cannot read {path}: {err}") from None

    def evaluation_images(self, spec: Any, *, batch_size: int | None = None
                          ) -> Iterator[tuple[np.ndarray, list[EvaluationImage]]]:
        records = self._records(spec, "validation_file_pattern")
        size = batch_size or int(spec.message.eval_batch_size) or 4
        for start in range(0, len(records), size):
            chunk = records[start:start + size]
            yield self._images(spec, chunk), [EvaluationImage(r.image_id, r.image.shape[1], r.image.shape[0])
                                              for r in chunk]

    def decode_instances(self, spec: Any, outputs: Any,
                         image_sizes: Sequence[tuple[int, int]]) -> list[Instances]:
        return [instances_from(np.asarray(outputs[MASKS][i]), width, height)
                for i, (width, height) in enumerate(image_sizes)]

    # ------------------------------------------------------------------------------------------ infer
    def inference_options(self) -> list[Any]:
        import click

        return [click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
                             help="The model: .tlt, .etlt or engine.")]

    def inference_setup(self, spec_path: str | Path, key: str | None, *, model: str) -> Any:
        from libtlt.runtime.predictor import make_predictor
        from libtlt.spec import load_spec

        spec = load_spec(spec_path, self.spec_message())
        self.validate(spec)
        names = ["background", *(c["name"] for c in sorted(self.coco_ground_truth(spec)["categories"],
                                                          key=lambda c: int(c["id"])))]
        channels, height, width = _shape(spec)

        def decode_batch(outputs: Any, count: int) -> list[Instances]:
            return [instances_from(np.asarray(outputs[MASKS][i]), width, height) for i in range(count)]

        return InferenceSetup(
            predictor=make_predictor(model, key, None, architecture=NAME), model_path=str(model), classes=names,
            input_shape=(channels, height, width), batch_size=4,
            preprocess=lambda image: np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / np.float32(255),
            decode=decode_batch, label_names=names, colors=[COLORS[i % len(COLORS)] for i in range(len(names))])

    # ------------------------------------------------------------------------------------- tensorfile
    def calibration_batches(self, spec: Any, *, use_validation_set: bool = False) -> CalibrationData:
        field = "validation_file_pattern" if use_validation_set else "training_file_pattern"
        records = self._records(spec, field)
        batch = int(spec.message.train_batch_size)
        batches = (self._images(spec, records[i:i + batch]) for i in range(0, len(records), batch))
        return CalibrationData(batches, batch, "train_batch_size", spec.locate("train_batch_size"))
