"""The classification architecture behind the registry: protocol, spec → plan, build for several
backbones, one training step, .tlt round trip, datasets and metadata, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from libtlt.errors import SpecError, UnsupportedError
from libtlt.registry import REQUIRED_ATTRIBUTES, Architecture, TrainPlan, check_architecture, get_architecture
from libtlt.spec import LoadedSpec, load_spec, load_spec_text

keras = pytest.importorskip("keras")

from libtlt.backbones import BACKBONE_NAMES  # noqa: E402
from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model  # noqa: E402
from libtlt.samples import generate_classification_dataset  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs" / "classification"
FAST = {"kdf_iterations": 1000}


@pytest.fixture(scope="module")
def arch() -> object:
    return get_architecture("classification")


def spec_text(arch_line: str = 'arch: "resnet"\n  n_layers: 10', size: str = "3,32,32", train: str = "",
              extra: str = "") -> str:
    return f"""
model_config {{
  {arch_line}
  use_batch_norm: true
  all_projections: true
  input_image_size: "{size}"
  {extra}
}}
train_config {{
  {train}
  batch_size_per_gpu: 4
  n_epochs: 2
}}
"""


def loaded(arch: object, text: str, name: str = "spec.txt") -> LoadedSpec:
    spec = load_spec_text(text, arch.spec_message(), name=name)  # type: ignore[attr-defined]
    arch.validate(spec)  # type: ignore[attr-defined]
    return spec


def test_protocol_is_complete(arch: object) -> None:
    assert isinstance(arch, Architecture)
    check_architecture(arch, "libtlt.archs.classification.architecture:ClassificationArchitecture")
    assert all(hasattr(arch, name) for name in REQUIRED_ATTRIBUTES)
    assert arch.name == "classification"  # type: ignore[attr-defined]
    assert arch.export_outputs(None) == ["predictions/Softmax"]  # type: ignore[attr-defined]


def test_default_spec_loads_and_plans(arch: object) -> None:
    spec = loaded(arch, arch.default_spec(), "default_spec.txt")  # type: ignore[attr-defined]
    plan = arch.train_plan(spec)  # type: ignore[attr-defined]
    assert isinstance(plan, TrainPlan)
    assert plan.model_name == "resnet" and plan.optimizer == "adam" and plan.lr_schedule == "cosine"
    assert plan.lr_params == {"base_lr": 0.001, "soft_start": 0.05, "min_lr_ratio": 0.0}
    assert plan.optimizer_params == {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert plan.regularizer == "L2" and plan.regularizer_scope == ("Conv2D", "Dense")
    assert plan.regularizer_weight == 5e-5 and (plan.epochs, plan.batch_size_per_gpu) == (10, 32)


def test_soft_anneal_and_sgd_plan(arch: object) -> None:
    plan = arch.train_plan(loaded(arch, spec_text(train="""optimizer: "sgd"
  lr_config { scheduler: "soft_anneal" learning_rate: 0.05 soft_start: 0.1 annealing_points: "0.5, 0.8"
              annealing_divider: 10 }""")))  # type: ignore[attr-defined]
    assert plan.optimizer_params == {"momentum": 0.9, "nesterov": False}
    assert plan.lr_params == {"base_lr": 0.05, "soft_start": 0.1, "annealing_points": [0.5, 0.8],
                              "annealing_divider": 10.0}
    assert plan.regularizer is None and plan.regularizer_scope == () and plan.pretrained_model_path is None


def test_manual_specs_plan_in_both_layouts(arch: object) -> None:
    prototxt = arch.train_plan(loaded(arch, (SPECS / "000_7.1_classification.txt").read_text()))  # type: ignore[attr-defined]
    assert (prototxt.epochs, prototxt.batch_size_per_gpu, prototxt.lr_params["base_lr"]) == (80, 256, 0.005)
    assert prototxt.lr_params["soft_start"] == 0.056 and prototxt.lr_params["annealing_divider"] == 10
    assert prototxt.pretrained_model_path == "/path/to/your/pretrained/model"
    yaml_spec = load_spec(SPECS / "003_classification.yaml", arch.spec_message())  # type: ignore[attr-defined]
    arch.validate(yaml_spec)  # type: ignore[attr-defined]
    plan = arch.train_plan(yaml_spec)  # type: ignore[attr-defined]
    assert plan.model_name == "efficientnet_b0" and plan.epochs == 80 and plan.batch_size_per_gpu == 64
    assert plan.lr_schedule == "cosine" and plan.lr_params == {"base_lr": 0.05, "soft_start": 0.05,
                                                              "min_lr_ratio": 0.0}
    assert plan.regularizer_scope == ("conv2d", "dense") and plan.checkpoint_interval == 1


def test_evaluation_setup_in_both_layouts(arch: object, tmp_path: Path) -> None:
    prototxt = arch.classifier_evaluation(loaded(arch, (SPECS / "000_7.1_classification.txt").read_text()))  # type: ignore[attr-defined]
    assert (prototxt.section, prototxt.dataset_field) == ("eval_config", "eval_dataset_path")
    assert prototxt.model_path == "/path/to/your/model" and prototxt.top_k == 3
    assert prototxt.input_config.center_crop is False  # 000 form: an unwritten enable_center_crop is false
    # The 003 form's centre crop is on unless written off, at evaluation as in training's recorded metadata.
    text = (SPECS / "003_classification.yaml").read_text().replace("  enable_center_crop: True\n", "")
    (tmp_path / "spec.yaml").write_text(text)
    yaml_spec = load_spec(tmp_path / "spec.yaml", arch.spec_message())  # type: ignore[attr-defined]
    arch.validate(yaml_spec)  # type: ignore[attr-defined]
    setup = arch.classifier_evaluation(yaml_spec)  # type: ignore[attr-defined]
    assert (setup.section, setup.dataset_field, setup.model_path) == ("evaluate", "dataset_path", "EVALMODEL")
    assert (setup.dataset_path, setup.top_k, setup.batch_size) == ("/workspace/tao-experiments/data/split/test", 3,
                                                                   256)
    assert setup.input_config.center_crop is True


def test_unsupported_settings_are_spec_errors(arch: object) -> None:
    with pytest.raises(SpecError, match="alexnet backbone is not available"):
        loaded(arch, spec_text('arch: "alexnet"'))
    with pytest.raises(UnsupportedError, match="quantization-aware"):
        loaded(arch, spec_text(train="qat: true"))
    with pytest.raises(SpecError, match="height and width must be >= 16"):
        loaded(arch, spec_text(size="3,8,8"))


BUILDS = [
    ('arch: "resnet"\n  n_layers: 10', "resnet10"),
    ('arch: "resnet"\n  n_layers: 18', "resnet18"),
    ('arch: "resnet"\n  n_layers: 50', "resnet50"),
    ('arch: "vgg"\n  n_layers: 16', "vgg16"),
    ('arch: "mobilenet_v2"', "mobilenet_v2"),
    ('arch: "squeezenet"', "squeezenet"),
    ('arch: "efficientnet_b0"', "efficientnet_b0"),
]


@pytest.mark.parametrize(("arch_line", "backbone"), BUILDS, ids=[b for _, b in BUILDS])
def test_build_names_and_shapes(arch: object, arch_line: str, backbone: str) -> None:
    if backbone not in BACKBONE_NAMES:
        pytest.skip(f"libtlt.backbones has no {backbone} yet")
    model = arch.build(loaded(arch, spec_text(arch_line)), ["a", "b", "c"])  # type: ignore[attr-defined]
    assert model.inputs[0].shape == (None, 3, 32, 32)
    assert model.layers[0].name == "input_1" and model.layers[-1].name == "predictions"
    assert model.output.shape == (None, 3)
    probs = model(np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype("float32"), training=False)
    np.testing.assert_allclose(np.asarray(probs).sum(axis=1), 1.0, rtol=1e-5)


def test_one_channel_input_and_options(arch: object) -> None:
    spec = loaded(arch, spec_text(size="1,40,48", extra="freeze_blocks: 0\n  freeze_bn: true"))
    model = arch.build(spec, ["x", "y"])  # type: ignore[attr-defined]
    assert model.inputs[0].shape == (None, 1, 40, 48)
    assert not model.get_layer("conv1").trainable
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.trainable for layer in bns)
    assert all(layer.momentum == pytest.approx(0.9) and layer.epsilon == pytest.approx(1e-5) for layer in bns)


def test_too_few_classes(arch: object) -> None:
    with pytest.raises(SpecError, match="at least 2 classes"):
        arch.build(loaded(arch, spec_text()), ["only"])  # type: ignore[attr-defined]


def test_one_train_step_and_tlt_round_trip(arch: object, tmp_path: Path) -> None:
    spec = loaded(arch, spec_text())
    model = arch.build(spec, ["a", "b", "c"])  # type: ignore[attr-defined]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=arch.loss(spec), metrics=arch.metrics(spec))  # type: ignore[attr-defined]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 32, 32)).astype("float32")
    encoder = arch.label_encoder(spec, 3)  # type: ignore[attr-defined]
    y = encoder(np.array([0, 1, 2, 1]))
    before = [w.copy() for w in model.get_layer("predictions").get_weights()]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and "accuracy" in logs
    after = model.get_layer("predictions").get_weights()
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    meta = arch.metadata(spec, ["a", "b", "c"])  # type: ignore[attr-defined]
    save_tlt_model(tmp_path / "m.tlt", model, "key", meta, **FAST)
    reloaded, stored = load_tlt_model(tmp_path / "m.tlt", "key", architecture="classification")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert stored["classes"] == ["a", "b", "c"] and stored["input_shape"] == [3, 32, 32]
    assert stored["input_layout"] == "NCHW" and stored["preprocess_mode"] == "caffe"
    assert stored["image_mean"] is None and stored["interpolation"] == "bilinear"
    assert stored["output_names"] == ["predictions"] and "model_config" in stored["spec"]


def test_training_data_from_folders(arch: object, tmp_path: Path) -> None:
    sample = generate_classification_dataset(tmp_path / "data", classes=("cat", "dog", "emu"),
                                             images_per_split={"train": 6, "val": 3}, size=(24, 24))
    text = spec_text(train=f'train_dataset_path: "{sample.split_dirs["train"]}"\n'
                           f'  val_dataset_path: "{sample.split_dirs["val"]}"')
    spec = loaded(arch, text)
    data = arch.training_data(spec, batch_size=4, seed=3)  # type: ignore[attr-defined]
    assert data.classes == ["cat", "dog", "emu"] and data.num_samples == 18
    assert data.steps_per_epoch == 4 and data.validation_steps == 3
    assert json.loads(data.files["classmap.json"]) == {"cat": 0, "dog": 1, "emu": 2}
    images, targets = next(iter(data.train))
    assert images.shape == (4, 3, 32, 32) and targets.shape == (4, 3)
    np.testing.assert_allclose(np.asarray(targets).sum(axis=1), 1.0, rtol=1e-5)
    val_images, val_targets = next(iter(data.validation))
    assert val_images.shape[1:] == (3, 32, 32) and set(np.unique(np.asarray(val_targets))) <= {0.0, 1.0}
    assert data.metadata["classes"] == ["cat", "dog", "emu"]


def test_training_data_needs_a_train_path(arch: object) -> None:
    spec = loaded(arch, spec_text())
    with pytest.raises(SpecError, match="train_dataset_path is required") as info:
        arch.training_data(spec, batch_size=4)  # type: ignore[attr-defined]
    assert info.value.location is not None and info.value.location.startswith("spec.txt:")


def test_label_encoder_and_decoder(arch: object) -> None:
    spec = loaded(arch, spec_text(train="label_smoothing: 0.3"))
    encoder = arch.label_encoder(spec, 3)  # type: ignore[attr-defined]
    np.testing.assert_allclose(encoder([2]), [[0.1, 0.1, 0.8]], rtol=1e-6)
    decoder = arch.post_process(spec, ["a", "b", "c"])  # type: ignore[attr-defined]
    result = decoder(np.array([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]))
    assert [(r.class_name, round(r.confidence, 3)) for r in result] == [("b", 0.7), ("a", 0.5)]
    order, probs = decoder.top_k(np.array([[0.2, 0.7, 0.1]]), 2)
    assert order.tolist() == [[1, 0]] and np.allclose(probs, [[0.7, 0.2]])
