"""Shared test fixtures' building blocks, for tlt's own suites and for an architecture package's tests.

Plain functions (no pytest import): a ``conftest.py`` wraps them in fixtures. Everything here is real — a
model trained with the libtlt input pipeline on generated images, saved as an encrypted ``.tlt`` — only tiny.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libtlt.samples import generate_classification_dataset

#: Input size and classes of :func:`train_tiny_classifier`.
CLASSIFIER_SIZE = 32
CLASSIFIER_CLASSES = ("circle", "triangle", "star", "square", "cross")
CLASSIFIER_VAL_PER_CLASS = 6
#: The key the shared tiny-classifier fixture saves its model under.
TINY_CLASSIFIER_KEY = "tiny-classifier-key"


@dataclass(frozen=True)
class TrainedClassifier:
    root: Path  # dataset root: train/, val/
    model_path: Path
    spec_path: Path  # 000 layout, eval_config points at val/ and the model
    classes: tuple[str, ...]
    metadata: dict[str, Any]


def classifier_spec_text(dataset: Path | str, model: Path | str | None, *, top_k: int = 3) -> str:
    """A 000-layout classification spec (resnet10 at the tiny size) with ``eval_config`` on ``dataset``."""
    model_line = f'model_path: "{model}"' if model else ""
    dataset_line = f'eval_dataset_path: "{dataset}"' if dataset else ""
    return textwrap.dedent(f"""\
        model_config {{
          arch: "resnet"
          n_layers: 10
          input_image_size: "3,{CLASSIFIER_SIZE},{CLASSIFIER_SIZE}"
        }}
        eval_config {{
          {dataset_line}
          {model_line}
          top_k: {top_k}
          batch_size: 8
        }}
        """)


def tiny_classifier_model(num_classes: int) -> Any:
    """NCHW ``input_1`` → two strided convolutions → ``predictions`` softmax: seconds to train."""
    import keras

    inputs = keras.Input((3, CLASSIFIER_SIZE, CLASSIFIER_SIZE), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", padding="same")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def train_tiny_classifier(base: Path, key: str) -> TrainedClassifier:
    """Generate shapes under ``base``, train :func:`tiny_classifier_model` for three epochs (caffe preprocessing,
    random crop, flip, label smoothing) and save it as ``base/model/model.tlt`` with its classmap.json and spec."""
    import keras

    from libtlt.data.classification import InputConfig, make_dataset, scan_folder
    from libtlt.runtime.keras_model import save_tlt_model

    sample = generate_classification_dataset(base / "data", classes=CLASSIFIER_CLASSES,
                                             images_per_split={"train": 16, "val": CLASSIFIER_VAL_PER_CLASS})
    index = scan_folder(sample.root / "train")
    config = InputConfig(3, CLASSIFIER_SIZE, CLASSIFIER_SIZE, preprocess_mode="caffe", random_crop=True,
                         horizontal_flip=True, label_smoothing=0.1)
    keras.utils.set_random_seed(0)
    model = tiny_classifier_model(len(index.class_map))
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="categorical_crossentropy")
    model.fit(make_dataset(index, config, batch_size=16, training=True, seed=0), epochs=3, verbose=0,
              shuffle=False)
    model_dir = base / "model"
    model_dir.mkdir()
    model_path = model_dir / "model.tlt"
    spec_path = base / "spec.txt"
    spec_path.write_text(classifier_spec_text(sample.root / "val", model_path))
    metadata = {"architecture": "classification", "classes": list(index.class_map.names),
                "input_shape": [3, CLASSIFIER_SIZE, CLASSIFIER_SIZE], "input_layout": "NCHW",
                "preprocess_mode": "caffe", "image_mean": None, "interpolation": "bilinear",
                "spec": spec_path.read_text()}
    save_tlt_model(model_path, model, key, metadata, kdf_iterations=1000)
    index.class_map.write(model_dir / "classmap.json")
    return TrainedClassifier(sample.root, model_path, spec_path, index.class_map.names, metadata)


# ------------------------------------------------------------------------------------------------ detectors

def convert_kitti(root: Path, records_dir: Path, *, val_split: int = 50, num_shards: int = 1) -> str:
    """Convert the generated KITTI folder ``root`` with the installed ``tlt-dataset-convert`` (two folds, fold 0
    holding ``val_split`` percent) into ``records_dir/kitti-*``; returns the records' glob for a spec."""
    from libtlt.samples.specs import kitti_convert_spec

    records_dir.mkdir(parents=True, exist_ok=True)
    convert_spec = records_dir.parent / f"{records_dir.name}_convert.txt"
    convert_spec.write_text(kitti_convert_spec(root, val_split=val_split, num_shards=num_shards), encoding="utf-8")
    tool = Path(sys.executable).parent / "tlt-dataset-convert"
    done = subprocess.run([str(tool), "-d", str(convert_spec), "-o", str(records_dir / "kitti")],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"tlt-dataset-convert failed ({done.returncode}): {done.stderr.strip()}")
    return str(records_dir / "kitti*")


def generated_kitti_records(root: Path, frames: int, seed: int, *, width: int, height: int) -> Path:
    """``frames`` generated KITTI frames of ``width`` × ``height`` (``seed``) in ``root``, converted by the installed
    tlt-dataset-convert into ``root/tfrecords``; returns ``root`` (e2e tests and benches of the detectors)."""
    from libtlt.samples import generate_detection_dataset

    generate_detection_dataset(root, num_images=frames, width=width, height=height, seed=seed)
    convert_kitti(root, root / "tfrecords")
    return root


def pipeline_vs_in_memory(model: Any, pipeline: Any, *, steps: int, batch_size: int,
                          warmup_steps: int = 2) -> dict[str, Any]:
    """Training throughput of ``model`` (compiled) fed by ``pipeline`` (a repeating ``tf.data`` of batches) against
    the same model fed the pipeline's first ``steps`` batches held in memory (benches' "bare fit" baseline): the
    same images on both sides, since a detector's step cost depends on them (one batch repeated is not a fair
    baseline). Each side is measured twice, alternating; its best run counts. Returns images/s of both, the
    ratio bare / pipeline and whether it meets the issues' 0.9 goal."""
    import math
    import time

    in_memory = pipeline.take(steps).cache()
    for _ in in_memory:  # fill the cache: from here on the bare side reads tensors held in memory
        pass
    seconds = {"bare": math.inf, "pipeline": math.inf}
    for name, dataset in (("bare", in_memory.repeat()), ("pipeline", pipeline)) * 2:
        model.fit(dataset, steps_per_epoch=warmup_steps, epochs=1, verbose=0)  # trace and warm up
        started = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        seconds[name] = min(seconds[name], time.perf_counter() - started)
    ratio = seconds["bare"] / seconds["pipeline"]
    numbers: dict[str, Any] = {f"{k}_images_per_s": round(steps * batch_size / v, 2) for k, v in seconds.items()}
    numbers.update(ratio=round(ratio, 3), goal=0.9, goal_met=bool(ratio >= 0.9))
    return numbers


def reshuffled_batches(inputs: Any, targets: Any, *, batch_size: int, seed: int) -> Any:
    """In-memory ``(inputs, targets)`` as a ``tf.data`` of batches in a new random order every epoch, for a peer's
    bare ``model.fit`` (benches).

    Why not ``model.fit(x, y, shuffle=True)``: after ``keras.utils.set_random_seed`` (Keras 3.15, TensorFlow
    backend) its array adapter draws the *same* permutation every epoch, so the peer trains on the same fixed
    batches each epoch, fits its training set closer (MobileNetV2 on the digits: 0.99 training accuracy against
    0.97 with a new order per epoch; the held-out accuracy is the same) and is no fair yardstick for tlt-train's
    input pipeline, which reshuffles every epoch. ``inputs`` and ``targets`` are arrays or dicts of arrays with the
    same first dimension; the last partial batch is dropped, as tlt-train drops it."""
    import tensorflow as tf

    count = len(next(iter(targets.values())) if isinstance(targets, dict) else targets)
    return (tf.data.Dataset.from_tensor_slices((inputs, targets))
            .shuffle(count, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def convert_coco(root: Path, records_dir: Path) -> None:
    """Convert the COCO sample under ``root`` (train and val splits) with the installed ``tlt-dataset-convert``
    into ``records_dir/train-*`` and ``records_dir/val-*``."""
    from libtlt.samples.specs import coco_convert_spec

    records_dir.mkdir(parents=True, exist_ok=True)
    spec = records_dir.parent / f"{records_dir.name}_convert.txt"
    spec.write_text(coco_convert_spec(root), encoding="utf-8")
    tool = Path(sys.executable).parent / "tlt-dataset-convert"
    done = subprocess.run([str(tool), "-d", str(spec), "-o", f"{records_dir}/"], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"tlt-dataset-convert failed ({done.returncode}): {done.stderr.strip()}")


def detectnet_v2_spec_text(tfrecords: str, image_dir: Path | str, replace: dict[str, str] | None = None) -> str:
    """DetectNet_v2's default spec pointed at ``tfrecords`` (a glob) and ``image_dir``, with each ``replace`` key
    (a piece of the default spec's text, e.g. ``"num_layers: 18"``) swapped for its value."""
    from importlib import resources

    from libtlt.spec.edits import edit_spec_text

    text = (resources.files("libtlt.archs.detectnet_v2") / "default_spec.txt").read_text()
    edits = {"/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": tfrecords,
             "/workspace/tlt-experiments/data/training": str(image_dir), **(replace or {})}
    return edit_spec_text(text, edits, "DetectNet_v2's default spec")


def tiny_detectnet_model(num_classes: int, width: int, height: int, seed: int = 0) -> Any:
    """A hand-built network with DetectNet_v2's interface: ``input_1`` (3, H, W) → stride 16 → ``output_cov``
    (C, H/16, W/16, sigmoid) and ``output_bbox`` (4C, H/16, W/16); random weights that fire somewhere."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3, height, width), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(8, 4, strides=4, activation="relu", padding="same")(x)
    x = keras.layers.Conv2D(8, 4, strides=4, activation="relu", padding="same")(x)
    cov = keras.layers.Conv2D(num_classes, 1, activation="sigmoid", bias_initializer=keras.initializers.Constant(-1.0),
                              kernel_initializer=keras.initializers.RandomNormal(stddev=2.0))(x)
    bbox = keras.layers.Conv2D(4 * num_classes, 1, bias_initializer=keras.initializers.Constant(0.6),
                               kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))(x)
    cov = keras.layers.Permute((3, 1, 2), name="output_cov")(cov)
    bbox = keras.layers.Permute((3, 1, 2), name="output_bbox")(bbox)
    return keras.Model(inputs, [cov, bbox])


def tiny_detectnet_metadata(classes: Sequence[str], width: int, height: int) -> dict[str, Any]:
    """The metadata DetectNet_v2 training records, for :func:`tiny_detectnet_model`."""
    return {"architecture": "detectnet_v2", "classes": list(classes), "input_shape": [3, height, width],
            "input_layout": "NCHW", "preprocessing": "rgb/255", "stride": 16,
            "output_names": ["output_cov", "output_bbox"], "spec": ""}


# ------------------------------------------------------------------------------------------------ assertions

def save_untrained_model(arch: Any, spec: Any, path: Path, key: str, *, seed: int = 0,
                         prepare: Callable[[Any], None] | None = None) -> Any:
    """``arch.build(spec)`` with fresh weights (``prepare`` may set some), saved as an encrypted ``.tlt`` with
    ``arch.metadata``: a real model for tests of what surrounds a network (input geometry, output formats), where
    what it would learn does not matter and training would only cost time. Returns the Keras model."""
    import keras

    from libtlt.runtime.keras_model import save_tlt_model

    keras.utils.set_random_seed(seed)
    model = arch.build(spec)
    if prepare is not None:
        prepare(model)
    classes = arch.class_names(spec)[1:] if hasattr(arch, "class_names") else []
    save_tlt_model(path, model, key, arch.metadata(spec, classes), kdf_iterations=1000)
    return model


def one_error_line(result: Any) -> str:
    """The one ``Error:`` line of a tool run that failed as a user mistake should: exit status 2, exactly one
    ``Error:`` line on stderr, no traceback. ``result`` is a ``subprocess.CompletedProcess`` (the installed
    command) or a click ``Result`` (in process)."""
    code = result.returncode if hasattr(result, "returncode") else result.exit_code
    stderr = result.stderr or ""
    if code != 2:
        raise AssertionError(f"exit status {code}, not 2; stderr:\n{stderr}")
    lines = [line for line in stderr.splitlines() if line.startswith("Error:")]
    if len(lines) != 1 or "Traceback" in stderr:
        raise AssertionError(f"expected one Error: line and no traceback; stderr:\n{stderr}")
    return lines[0]


# ------------------------------------------------------------------------------ sample data per task type

#: Classes and sizes of :func:`write_task_sample`.
SAMPLE_CLASSIFIER_CLASSES = ("circle", "triangle", "star")
SAMPLE_DETECTOR_CLASSES = ("car", "pedestrian", "cyclist")
SAMPLE_DETECTOR_SIZE = (480, 272)


@dataclass(frozen=True)
class SampleData:
    """Tiny generated data for one task type, in the formats the tools read; what an architecture's
    ``sample_spec`` points its spec at (tests/archs trains, evaluates and infers on it through the commands).

    classifier: ``train`` / ``val`` folders of class folders, ``images`` a folder of images to classify;
    box detector: ``train`` the KITTI records' glob (fold 0 = validation) and ``images`` their image folder;
    instance segmenter: ``train`` / ``val`` COCO record globs, ``annotations`` the validation json, ``images``
    the validation images."""

    task: str
    root: Path
    classes: tuple[str, ...]
    train: str
    val: str
    images: str
    annotations: str = ""


def write_task_sample(task: str, root: Path) -> SampleData:
    """Generate and convert (through the installed ``tlt-dataset-convert``) the sample data of ``task``."""
    from libtlt.registry import BOX_DETECTOR, CLASSIFIER, INSTANCE_SEGMENTER
    from libtlt.samples import generate_coco_dataset, generate_detection_dataset

    root.mkdir(parents=True, exist_ok=True)
    if task == CLASSIFIER:
        sample = generate_classification_dataset(root / "classification", classes=SAMPLE_CLASSIFIER_CLASSES,
                                                 images_per_split={"train": 8, "val": 4}, size=(32, 32))
        return SampleData(task, root, SAMPLE_CLASSIFIER_CLASSES, str(sample.root / "train"), str(sample.root / "val"),
                          str(sample.root / "val" / SAMPLE_CLASSIFIER_CLASSES[0]))
    if task == BOX_DETECTOR:
        width, height = SAMPLE_DETECTOR_SIZE
        generate_detection_dataset(root / "kitti", num_images=8, width=width, height=height,
                                   classes=SAMPLE_DETECTOR_CLASSES, seed=5, objects_per_image=(1, 3))
        records = convert_kitti(root / "kitti", root / "records")
        return SampleData(task, root, SAMPLE_DETECTOR_CLASSES, records, "", str(root / "kitti" / "images"))
    if task == INSTANCE_SEGMENTER:
        train = generate_coco_dataset(root / "coco", split="train", num_images=8, seed=1)
        generate_coco_dataset(root / "coco", split="val", num_images=4, seed=2, first_image_id=1001)
        convert_coco(root / "coco", root / "records")
        return SampleData(task, root, train.categories, str(root / "records" / "train-*"),
                          str(root / "records" / "val-*"), str(root / "coco" / "val"),
                          str(root / "coco" / "annotations" / "instances_val.json"))
    raise ValueError(f"no sample data for task {task!r}")


def spread_weights(model: Any, name: str, kernel_std: float, bias: tuple[float, float], seed: int) -> None:
    """Random kernel N(0, ``kernel_std``) and bias U(``bias``) for the layer ``name``: fresh detector heads score every
    anchor and class nearly alike, so export tests that compare stages would test tie-breaking instead."""
    import numpy as np

    rng = np.random.default_rng(seed)
    layer = model.get_layer(name)
    kernel, old_bias = layer.get_weights()
    layer.set_weights([rng.normal(0.0, kernel_std, kernel.shape).astype(np.float32),
                       rng.uniform(*bias, old_bias.shape).astype(np.float32)])
