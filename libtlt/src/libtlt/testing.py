"""Shared test fixtures' building blocks, for tlt's own suites and for an architecture package's tests.

Plain functions (no pytest import): a ``conftest.py`` wraps them in fixtures. Everything here is real — a
model trained with the libtlt input pipeline on generated images, saved as an encrypted ``.tlt`` — only tiny.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libtlt.samples import generate_classification_dataset

#: Input size and classes of :func:`train_tiny_classifier`.
CLASSIFIER_SIZE = 32
CLASSIFIER_CLASSES = ("circle", "triangle", "star", "square", "cross")
CLASSIFIER_VAL_PER_CLASS = 6


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
