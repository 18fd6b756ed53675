"""FasterRCNN's training side: spec → network, training configuration and train plan in both spec layouts, and a
fit of the trainer that ``training_view`` returns on generated KITTI records, saved through its view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from libtlt.archs.faster_rcnn.architecture import FasterRcnnArchitecture


def _sibling(name: str):  # type: ignore[no-untyped-def]
    """The data tests' spec builder and records fixture (until FasterRCNN has its sample-spec hook)."""
    import importlib.util

    location = Path(__file__).with_name(f"{name}.py")
    found = importlib.util.spec_from_file_location(f"_frcnn_{name}", location)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


_DATA = _sibling("test_faster_rcnn_data")
load, spec_text, root = _DATA.load, _DATA.spec_text, _DATA.root

ARCH = FasterRcnnArchitecture()


@pytest.mark.parametrize("layout", ["002", "000"])
def test_spec_to_configurations(layout: str) -> None:
    spec = load(spec_text(layout=layout))
    network = ARCH.network_config(spec)
    assert network.backbone == "resnet18" and network.input_shape == (3, 160, 256)
    assert network.num_fg_classes == 3 and network.scales == (32.0, 64.0, 128.0)
    assert (network.pre_nms_top_n, network.post_nms_top_n) == (6000, 300)  # TAO's inference defaults
    training = ARCH.training_config(spec)
    assert training.targets.roi_mini_batch == 16 and training.rpn_mini_batch == 64
    assert training.targets.regr_std == (10.0, 10.0, 5.0, 5.0) and training.seed == 42
    plan = ARCH.train_plan(spec)
    assert plan.model_name == "faster_rcnn_resnet18" and plan.optimizer == "sgd"
    assert plan.lr_schedule == "soft_anneal"
    assert plan.lr_params == {"base_lr": 0.02, "soft_start": 0.1, "annealing_points": [0.8],
                              "annealing_divider": 10.0, "start_ratio": pytest.approx(0.1)}


def test_step_schedule_and_regularizer() -> None:
    text = spec_text(**{"learning_rate { soft_start { base_lr: 0.02 start_lr: 0.002 soft_start: 0.1 annealing_points: "
                        "0.8\n                               annealing_divider: 10.0 } }":
                        "learning_rate { step { base_lr: 0.01 gamma: 0.5 step_size: 30 } }\n"
                        "  regularizer { type: L2 weight: 1e-4 }"})
    plan = ARCH.train_plan(load(text))
    assert plan.lr_schedule == "step" and plan.lr_params == {"base_lr": 0.01, "step_size": 30.0, "gamma": 0.5}
    assert plan.regularizer == "L2" and plan.regularizer_weight == pytest.approx(1e-4)


def test_training_view_fits_and_saves_the_inference_model(root: Path, tmp_path: Path) -> None:
    import keras

    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    spec = load(spec_text(root, **{"arch: \"resnet:18\"": "arch: \"resnet:10\"",
                                   "enable_augmentation: True": "enable_augmentation: False"}))
    keras.utils.set_random_seed(0)
    model = ARCH.build(spec)
    trainer, view = ARCH.training_view(spec, model)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    data = ARCH.training_data(spec, batch_size=2, seed=0)
    assert data.classes == ["bike", "car", "person"] and data.files["labels.txt"].splitlines()[-1] == "background"
    before = model.get_layer("rpn_out_class").get_weights()[0].copy()
    history = trainer.fit(data.train, steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert np.abs(model.get_layer("rpn_out_class").get_weights()[0] - before).max() > 0
    saved, extra = view(trainer)
    assert saved is model and extra == {}
    save_tlt_model(tmp_path / "m.tlt", saved, "key", {"architecture": "faster_rcnn"})
    loaded, _ = load_tlt_model(tmp_path / "m.tlt", "key")
    image = np.zeros((1, 3, 160, 256), np.float32)
    for got, want in zip(loaded.predict_on_batch(image), model.predict_on_batch(image), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
