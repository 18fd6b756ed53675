"""A tiny classification model built by the registered architecture, trained briefly on generated
shapes with the libtlt pipeline, and saved as .tlt with the metadata the architecture writes."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from libtlt.samples import generate_classification_dataset

KEY = "export-test-key"
SIZE = 32
CLASSES = ("circle", "triangle", "star", "square")
TRAIN_PER_CLASS = 12
VAL_PER_CLASS = 6


@dataclass(frozen=True)
class Trained:
    root: Path  # dataset root: train/, val/
    model_path: Path
    spec_path: Path
    classes: tuple[str, ...]
    metadata: dict[str, Any]
    keras_model: Any
    val_images: list[Path]


def spec_text(train_dir: Path) -> str:
    return textwrap.dedent(f"""\
        model_config {{
          arch: "resnet"
          n_layers: 10
          use_batch_norm: True
          all_projections: True
          input_image_size: "3,{SIZE},{SIZE}"
        }}
        train_config {{
          train_dataset_path: "{train_dir}"
          batch_size_per_gpu: 16
          n_epochs: 2
          optimizer: "sgd"
          lr_config {{
            scheduler: "step"
            learning_rate: 0.01
            step_size: 10
            gamma: 0.1
          }}
        }}
        """)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    import keras

    from libtlt.data.classification import make_dataset, scan_folder
    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec import load_spec

    base = tmp_path_factory.mktemp("export")
    sample = generate_classification_dataset(base / "data", classes=CLASSES, size=(SIZE, SIZE),
                                             images_per_split={"train": TRAIN_PER_CLASS, "val": VAL_PER_CLASS})
    spec_path = base / "spec.txt"
    spec_path.write_text(spec_text(sample.root / "train"))
    arch = get_architecture("classification")
    spec = load_spec(spec_path, arch.spec_message())
    arch.validate(spec)
    classes = arch.classes_from_folders(spec)
    keras.utils.set_random_seed(0)
    model = arch.build(spec, classes)
    from libtlt.archs.classification.classification_inputs import input_config_from_spec

    index = scan_folder(sample.root / "train")
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss=arch.loss(spec))
    data = make_dataset(index, input_config_from_spec(spec, training=True), batch_size=16, training=True, seed=0)
    model.fit(data, epochs=2, verbose=0, shuffle=False)
    model_path = base / "model" / "resnet_002.tlt"
    model_path.parent.mkdir()
    metadata = arch.metadata(spec, classes)
    save_tlt_model(model_path, model, KEY, metadata, kdf_iterations=1000)
    val = sorted((sample.root / "val").rglob("*.jpg"))
    return Trained(sample.root, model_path, spec_path, tuple(classes), metadata, model, val)

