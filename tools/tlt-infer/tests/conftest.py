"""A tiny classification model, really trained on generated shapes with the libtlt pipeline, saved as .tlt."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from libtlt.samples import generate_classification_dataset

KEY = "infer-test-key"
SIZE = 32
CLASSES = ("circle", "triangle", "star", "square", "cross")
VAL_PER_CLASS = 6


@dataclass(frozen=True)
class Trained:
    root: Path  # dataset root: train/, val/
    model_path: Path
    spec_path: Path  # 000 layout, eval_config points at val/ and the model
    classes: tuple[str, ...]
    metadata: dict[str, Any]


def spec_text(dataset: Path | str, model: Path | str | None, *, top_k: int = 3) -> str:
    model_line = f'model_path: "{model}"' if model else ""
    dataset_line = f'eval_dataset_path: "{dataset}"' if dataset else ""
    return textwrap.dedent(f"""\
        model_config {{
          arch: "resnet"
          n_layers: 10
          input_image_size: "3,{SIZE},{SIZE}"
        }}
        eval_config {{
          {dataset_line}
          {model_line}
          top_k: {top_k}
          batch_size: 8
        }}
        """)


@pytest.fixture
def write_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``write_spec(dataset, model, top_k=3)`` → path of a 000-layout spec in tmp_path."""

    def write(dataset: Path | str, model: Path | str | None, *, top_k: int = 3) -> Path:
        path = tmp_path / "written_spec.txt"
        path.write_text(spec_text(dataset, model, top_k=top_k))
        return path

    return write


def build_model(num_classes: int) -> Any:
    import keras

    inputs = keras.Input((3, SIZE, SIZE), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", padding="same")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    import keras

    from libtlt.data.classification import InputConfig, make_dataset, scan_folder
    from libtlt.runtime.keras_model import save_tlt_model

    base = tmp_path_factory.mktemp("infer")
    sample = generate_classification_dataset(base / "data", classes=CLASSES,
                                             images_per_split={"train": 16, "val": VAL_PER_CLASS})
    index = scan_folder(sample.root / "train")
    config = InputConfig(3, SIZE, SIZE, preprocess_mode="caffe", random_crop=True, horizontal_flip=True,
                         label_smoothing=0.1)
    keras.utils.set_random_seed(0)
    model = build_model(len(index.class_map))
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="categorical_crossentropy")
    model.fit(make_dataset(index, config, batch_size=16, training=True, seed=0), epochs=3, verbose=0,
              shuffle=False)
    model_dir = base / "model"
    model_dir.mkdir()
    model_path = model_dir / "model.tlt"
    spec_path = base / "spec.txt"
    spec_path.write_text(spec_text(sample.root / "val", model_path))
    metadata = {"architecture": "classification", "classes": list(index.class_map.names),
                "input_shape": [3, SIZE, SIZE], "input_layout": "NCHW", "preprocess_mode": "caffe",
                "image_mean": None, "interpolation": "bilinear", "spec": spec_path.read_text()}
    save_tlt_model(model_path, model, KEY, metadata, kdf_iterations=1000)
    index.class_map.write(model_dir / "classmap.json")
    return Trained(sample.root, model_path, spec_path, index.class_map.names, metadata)
