"""tlt-train classification accuracy against plain Keras peers on real images (issue 12 §1, §1b).

Data: scikit-learn's handwritten digits (1,797 real 8×8 scans of 10 digits, shipped inside the package,
no download), scaled to 32×32 RGB PNGs in class folders; a stratified split keeps 25 % (450 images)
as the held-out test set that neither side trains on.

For every backbone family, three runs on the same images with the same epochs, batch, optimizer and
learning-rate schedule (tlt's own, built by ``tlt_train.train._optimizer`` for the peer):

* tlt, prototxt form (000 §7.1 layout, caffe preprocessing): ``tlt-train classification`` and
  ``tlt-evaluate classification`` as commands; the augmentation fields are not written (the prototxt
  defaults: off);
* tlt, YAML form (003 layout, torch preprocessing as in the 003 sample): the same settings,
  augmentation switched off explicitly;
* the peer: the ``keras.applications`` model of the family where Keras has one (VGG16, MobileNet,
  MobileNetV2, EfficientNetB0, with its own ``preprocess_input``), otherwise (ResNet18, DarkNet19,
  GoogLeNet, SqueezeNet) the same network tlt builds, once with each form's preprocessing (caffe for the
  prototxt run, torch for the YAML run: the input scale alone moves these networks by up to 0.5);
  trained with a bare ``model.fit`` on the decoded images held in memory, no callbacks, with the
  spec's L2 weight decay on the same layer types (``plan.regularizer_scope``).

Every run is repeated over the random seeds in ``BENCH_SEEDS`` (default ``1,2,3``: the spec's
``random_seed`` for tlt, ``keras.utils.set_random_seed`` for the peer) and the goals compare means: one
run of these small networks from scratch swings by more than the tolerances (the MobileNets by up to 0.3).

Goals: tlt's mean test accuracy ≥ the peer's − 0.01 for ResNet18 in the prototxt form (§1), and in every
family and form tlt's mean final training accuracy ≥ the peer's − 0.02 (§1b). Every number is printed and
kept in the benchmark's extra_info.

Run: .venv/bin/python -m pytest bench/test_classification_accuracy_bench.py --benchmark-only -q -s
(``-k mobilenet`` for some families; about 15-25 minutes per family and seed on 2 cores).

Measured 2026-12-04 (2 cores): one seed is not enough to judge a 0.01-0.02 tolerance. resnet18 prototxt over
random seeds 1/2/3: tlt train 0.967/0.972/0.973, test 0.953/0.971/0.971; same-network peer with L2 train
0.990/0.976/0.985, test 0.976/0.967/0.969 (means: test -0.005, train -0.013). The MobileNets swing by up to
0.3 between single runs. Full per-family numbers are in issue 12's closing note.

Measured 2026-12-04, three seeds each (means, train / held-out test): mobilenet_v1 (ReLU6, LR 0.05) tlt prototxt
0.919 / 0.942, YAML 0.945 / 0.957, keras.applications.MobileNet 0.891 / 0.579 (met). mobilenet_v2 at LR 0.05
does not train reproducibly on either side (single runs from 0.36 to 0.98: tlt 0.593 / 0.487, the same network
with a bare fit 0.688 / 0.737, Keras 0.779), so it uses LR 0.01 on both sides: tlt prototxt 0.968 / 0.974, YAML
0.967 / 0.971 (every seed within 0.005), Keras MobileNetV2 0.993 / 0.10 (its batch-norm momentum 0.999 leaves the
moving statistics unconverged after 420 steps, hence the held-out 0.10): train -0.025 / -0.026, the 0.02 goal
missed by 0.005.

GoogLeNet (2026-12-05): at LR 0.05 a single run swings from 0.50 to 0.99 training accuracy on either side (the same
network, seed and images: tlt's pipeline 0.92 / 0.83 / 0.88 / 0.96 / 0.94 against a bare fit of the pipeline's own
images in Keras's shuffled order 0.96 / 0.90 / 0.96 / 0.99 / 0.80 for data seeds 1-5; YAML form 0.64 / 0.95 against
0.50 / 0.91; fitting the pipeline's batches as arrays in the pipeline's order reproduces tlt's run exactly, so only
the order differs), hence the one-seed misses of earlier runs. Like MobileNetV2 it uses LR 0.01 on both sides: three
seeds, train / test means: tlt prototxt 0.981 / 0.983, YAML 0.981 / 0.981; same network bare fit 0.997 / 0.980
(caffe input), 0.995 / 0.984 (torch input): train -0.016 / -0.014 (goal 0.02, met), test equal.

EfficientNet-B0 in the prototxt form (caffe-scaled input) stays at chance at LR 0.05 (one run of tlt's pipeline with
a bare fit: training accuracy 0.30, the loss rising from 4.8 to 5.8 in the second epoch) and reaches 0.95 at LR 0.01
in the same run; it is compared at LR 0.01 on both sides. Three seeds at LR 0.01 (2026-12-06, 2 cores shared with
other work), train / test means: tlt prototxt 0.940 / 0.962 (per seed 0.951, 0.929, 0.940), YAML 0.938 / 0.967,
keras.applications.EfficientNetB0 0.961 / 0.881: train -0.021 / -0.023 (the 0.02 goal missed by 0.001 and 0.003, within
one seed's spread of 0.02), held-out test +0.08 for tlt.

DarkNet19 (2026-12-06): the YAML form's 0.30 against the same network's 0.49 at LR 0.05 were both runs that did not
train; at LR 0.01 on both sides, three seeds, train / test means: tlt prototxt 0.977 / 0.977, YAML 0.984 / 0.987;
same network bare fit 0.993 / 0.983 (caffe input), 0.993 / 0.982 (torch input): train -0.015 / -0.009 (met).

Why every peer fitted its training set a little closer (2026-12-06): the peers were fitted with ``model.fit(x, y,
shuffle=True)``, and after ``keras.utils.set_random_seed`` Keras 3.15's array adapter draws one permutation and
repeats it every epoch, so a peer trained on the same 42 batches each epoch. tlt's pipeline, or any ``tf.data`` with a
new order per epoch, trains the same network from the same initial weights to a lower training accuracy and the same
held-out accuracy (our MobileNetV2, YAML form, LR 0.01, seeds 1/4/5: fixed order 0.990 / 0.976 / 0.992, tlt's
pipeline 0.967 / 0.962 / 0.972, NumPy permutations per epoch 0.971; the pipeline's batches replayed as arrays
reproduce tlt's run to four digits). The peers now get a new order every epoch (``libtlt.testing.reshuffled_batches``).
Re-measured with it, three seeds, train / test means: keras.applications.MobileNetV2 0.956 / 0.100 against tlt
prototxt 0.968 / 0.974 and YAML 0.967 / 0.971: **train +0.012 / +0.011 (met)**; keras.applications.EfficientNetB0
0.940 / 0.934 (per seed 0.936, 0.945, 0.939) against tlt 0.940 / 0.962 and 0.938 / 0.967: **train 0.000 / -0.002
(met)**, held-out +0.03. The other families' peer numbers above were measured with the fixed order (which favoured
the peers) and all met their goals then; they were not re-run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")
datasets = pytest.importorskip("sklearn.datasets")

from libtlt.archs.classification.classification_inputs import input_config_from_spec  # noqa: E402
from libtlt.data.classification import preprocess  # noqa: E402
from libtlt.registry import get_architecture  # noqa: E402
from libtlt.testing import reshuffled_batches  # noqa: E402
from tlt_train.train import _optimizer, load_experiment_spec  # noqa: E402

SIZE, EPOCHS, BATCH, LR = 32, 10, 32, 0.05
KEY = "bench"
TEST_FRACTION = 0.25
SEED = 0  # the train/test split
SEEDS = tuple(int(s) for s in os.environ.get("BENCH_SEEDS", "1,2,3").split(","))
TEST_GOAL, TRAIN_GOAL = 0.01, 0.02
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Family:
    """A backbone family: tlt's spec names and the Keras peer (``None``: the network tlt builds)."""

    label: str
    arch: str
    layers: int | None
    peer: str | None
    peer_preprocess: str | None = None
    #: ``all_projections`` of tlt's specs: the Keras peer's topology where it has one (MobileNetV2's shortcuts are
    #: identities; with TLT's projected shortcuts it is another network, which trains slower here).
    all_projections: bool = True
    #: The learning rate of both sides (``LR`` unless the family needs a gentler one to train reproducibly).
    lr: float | None = None


FAMILIES = [
    Family("resnet18", "resnet", 18, None),
    Family("vgg16", "vgg", 16, "VGG16", "vgg16"),
    Family("mobilenet_v1", "mobilenet_v1", None, "MobileNet", "mobilenet"),
    Family("mobilenet_v2", "mobilenet_v2", None, "MobileNetV2", "mobilenet_v2", all_projections=False, lr=0.01),
    Family("efficientnet_b0", "efficientnet-b0", None, "EfficientNetB0", "efficientnet", lr=0.01),
    Family("darknet19", "darknet", 19, None, lr=0.01),
    Family("googlenet", "googlenet", None, None, lr=0.01),
    Family("squeezenet", "squeezenet", None, None),
]

PROTOTXT = """model_config {{
  arch: "{arch}"
  {layers_line}
  use_batch_norm: true
  all_projections: {projections_proto}
  input_image_size: "3,{size},{size}"
}}
train_config {{
  train_dataset_path: "{root}/train"
  val_dataset_path: "{root}/test"
  optimizer: "sgd"
  batch_size_per_gpu: {batch}
  n_epochs: {epochs}
  checkpoint_interval: {epochs}
  random_seed: {seed}
  reg_config {{ type: "L2" scope: "Conv2D,Dense" weight_decay: 0.00005 }}
  lr_config {{ scheduler: "soft_anneal" learning_rate: {lr} soft_start: 0.056 annealing_points: "0.3,0.6,0.8"
              annealing_divider: 10.0 }}
}}
eval_config {{
  eval_dataset_path: "{root}/test"
  model_path: "{model}"
  top_k: 1
  batch_size: 64
}}
augment {{ disable_horizontal_flip: true }}
"""

YAML = """model:
  arch: '{arch}'
  {layers_line}
  use_batch_norm: True
  all_projections: {projections_yaml}
  input_image_size: [3,{size},{size}]
data:
  train_dataset_path: "{root}/train"
  val_dataset_path: "{root}/test"
  preprocess_mode: 'torch'
augment:
  enable_random_crop: False
  enable_center_crop: False
  enable_color_augmentation: False
  disable_horizontal_flip: True
  mixup_alpha: 0.0
train:
  batch_size_per_gpu: {batch}
  num_epochs: {epochs}
  checkpoint_interval: {epochs}
  random_seed: {seed}
  label_smoothing: 0.0
  optim_config:
    optimizer: 'sgd'
  lr_config:
    scheduler: 'soft_anneal'
    learning_rate: {lr}
    soft_start: 0.056
    annealing_points: [0.3, 0.6, 0.8]
    annealing_divider: 10.0
  reg_config:
    type: 'L2'
    scope: ['conv2d', 'dense']
    weight_decay: 0.00005
evaluate:
  dataset_path: "{root}/test"
  model_path: "{model}"
  top_k: 1
  batch_size: 64
"""


@dataclass(frozen=True)
class Digits:
    root: Path
    train_images: np.ndarray  # [N, 32, 32, 3] uint8
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _digit_image(pixels: np.ndarray) -> np.ndarray:
    from PIL import Image

    gray = Image.fromarray((pixels * (255.0 / 16.0)).round().astype(np.uint8))
    return np.asarray(gray.resize((SIZE, SIZE), Image.Resampling.BILINEAR).convert("RGB"))


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    from PIL import Image

    data = datasets.load_digits()
    rng = np.random.default_rng(SEED)
    test_mask = np.zeros(len(data.target), bool)
    for digit in range(10):  # stratified: the same fraction of every digit is held out
        members = np.flatnonzero(data.target == digit)
        test_mask[rng.choice(members, round(len(members) * TEST_FRACTION), replace=False)] = True
    images = np.stack([_digit_image(p) for p in data.images])
    root = tmp_path_factory.mktemp("digits")
    for i, (image, label) in enumerate(zip(images, data.target, strict=True)):
        folder = root / ("test" if test_mask[i] else "train") / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    return Digits(root, images[~test_mask], data.target[~test_mask], images[test_mask], data.target[test_mask])


def _write_spec(family: Family, form: str, digits: Digits, outdir: Path, seed: int) -> Path:
    model = outdir / "results" / "weights" / "model.tlt"  # tlt-train -n model
    layers_line = f"n_layers: {family.layers}" if family.layers is not None else ""
    template = PROTOTXT if form == "prototxt" else YAML
    spec = outdir / ("spec.txt" if form == "prototxt" else "spec.yaml")
    projections = {"projections_proto": str(family.all_projections).lower(),
                   "projections_yaml": str(family.all_projections)}
    spec.write_text(template.format(arch=family.arch, layers_line=layers_line, size=SIZE, root=digits.root, **projections,
                                    batch=BATCH, epochs=EPOCHS, lr=family.lr or LR, model=model, seed=seed), encoding="utf-8")
    return spec


def _run(*args: str | Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=3600)
    if result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def run_tlt(family: Family, form: str, digits: Digits, outdir: Path, seed: int) -> dict[str, float]:
    """tlt-train then tlt-evaluate as commands; final training accuracy and held-out accuracy."""
    outdir.mkdir(parents=True, exist_ok=True)
    spec = _write_spec(family, form, digits, outdir, seed)
    results = outdir / "results"
    start = time.perf_counter()
    _run(BIN / "tlt-train", "classification", "-e", spec, "-r", results, "-k", KEY, "-n", "model")
    seconds = time.perf_counter() - start
    with open(results / "training.csv", newline="", encoding="utf-8") as handle:
        last = list(csv.DictReader(handle))[-1]
    _run(BIN / "tlt-evaluate", "classification", "-e", spec, "-k", KEY)
    report = json.loads(next(results.rglob("evaluation.json")).read_text(encoding="utf-8"))
    return {"train_accuracy": float(last["accuracy"]), "test_accuracy": float(report["accuracy"]),
            "seconds": seconds}


def _layers(model: Any) -> list[Any]:
    """Every layer of ``model``, nested models (a keras.applications backbone) opened."""
    return [inner for layer in model.layers
            for inner in (_layers(layer) if isinstance(layer, keras.Model) else [layer])]


def _regularize(model: Any, weight: float, scope: set[str]) -> None:
    """The spec's L2 weight decay on the peer's kernels (layer types in ``scope``), in plain Keras.

    Keras 3 collects ``variable.regularizer`` into the training loss; setting it on a built model is
    how a regularizer is added after construction. Without it the peer would train a different recipe
    (measured: the unregularized peer fits the training set about 0.02 closer than tlt with 5e-5 L2).
    """
    if weight <= 0.0:
        return
    for layer in _layers(model):
        if type(layer).__name__.lower() in scope and getattr(layer, "kernel", None) is not None:
            layer.kernel.regularizer = keras.regularizers.L2(weight)


def run_peer(family: Family, digits: Digits, spec_path: Path, seed: int) -> dict[str, float]:
    """The peer with a bare ``model.fit``: same images, epochs, batch, optimizer and schedule."""
    arch = get_architecture("classification")
    spec = load_experiment_spec(arch, spec_path)
    plan = arch.train_plan(spec)
    steps = len(digits.train_labels) // BATCH
    onehot = np.eye(10, dtype=np.float32)
    y_train, y_test = onehot[digits.train_labels], onehot[digits.test_labels]
    keras.utils.set_random_seed(seed)
    if family.peer is None:  # the same network tlt builds, NCHW input, the spec's preprocessing
        model = arch.build(spec, [f"digit_{d}" for d in range(10)])
        mode = input_config_from_spec(spec, training=False).preprocess_mode
        x_train, x_test = preprocess(digits.train_images, mode), preprocess(digits.test_images, mode)
    else:
        applications = keras.applications
        module = getattr(applications, family.peer_preprocess or "")
        backbone = getattr(applications, family.peer)(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
        inputs = keras.Input((SIZE, SIZE, 3))
        features = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(features))
        x_train = module.preprocess_input(digits.train_images.astype(np.float32))
        x_test = module.preprocess_input(digits.test_images.astype(np.float32))
    _regularize(model, plan.regularizer_weight, {name.lower() for name in plan.regularizer_scope})
    model.compile(optimizer=_optimizer(plan, steps, 1), loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(reshuffled_batches(x_train, y_train, batch_size=BATCH, seed=seed), epochs=EPOCHS, verbose=0)
    seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=64, verbose=0)
    return {"train_accuracy": float(history.history["accuracy"][-1]), "test_accuracy": float(test_accuracy),
            "seconds": seconds}


def _mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}


@pytest.mark.parametrize("family", FAMILIES, ids=[f.label for f in FAMILIES])
def test_tlt_train_matches_a_plain_keras_peer(benchmark: Any, family: Family, digits: Digits,
                                             tmp_path: Path) -> None:
    per_seed: dict[str, list[dict[str, float]]] = {}

    def record(name: str, result: dict[str, float]) -> None:
        per_seed.setdefault(name, []).append(result)

    def prototxt() -> None:
        for seed in SEEDS:
            record("prototxt", run_tlt(family, "prototxt", digits, tmp_path / f"prototxt-{seed}", seed))

    benchmark.pedantic(prototxt, rounds=1, iterations=1)
    for seed in SEEDS:
        record("yaml", run_tlt(family, "yaml", digits, tmp_path / f"yaml-{seed}", seed))
        record("peer", run_peer(family, digits, tmp_path / f"prototxt-{seed}" / "spec.txt", seed))
        if family.peer is None:  # the same network with the YAML form's preprocessing (torch), for that form
            record("peer_yaml", run_peer(family, digits, tmp_path / f"yaml-{seed}" / "spec.yaml", seed))
    runs = {name: _mean(results) for name, results in per_seed.items()}
    benchmark.extra_info.update({name: {k: round(v, 4) for k, v in r.items()} for name, r in runs.items()})
    benchmark.extra_info["per_seed"] = {name: [{k: round(v, 4) for k, v in r.items()} for r in results]
                                        for name, results in per_seed.items()}
    peer_name = f"keras.applications.{family.peer}" if family.peer else "same network, bare model.fit"
    print(f"\n{family.label} ({len(digits.train_labels)} train / {len(digits.test_labels)} test digits, {SIZE}x{SIZE}, "
          f"{EPOCHS} epochs, seeds {SEEDS}, means): " + "; ".join(
              f"{name}: train {r['train_accuracy']:.4f} test {r['test_accuracy']:.4f} ({r['seconds']:.0f} s)"
              for name, r in runs.items()) + f" [peer: {peer_name}]")
    for name, results in per_seed.items():
        print(f"  {name} per seed: " + ", ".join(f"{r['train_accuracy']:.3f}/{r['test_accuracy']:.3f}" for r in results))
    for form, peer_run in (("prototxt", "peer"), ("yaml", "peer_yaml" if "peer_yaml" in runs else "peer")):
        assert runs[form]["train_accuracy"] >= runs[peer_run]["train_accuracy"] - TRAIN_GOAL, (form, runs)
    peer = runs["peer"]
    if family.label == "resnet18":
        assert runs["prototxt"]["test_accuracy"] >= peer["test_accuracy"] - TEST_GOAL, runs
