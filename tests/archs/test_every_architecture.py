"""What every registered architecture must satisfy, parametrized from the registry: a new architecture is tested
by being registered.

For each architecture that trains: its default spec loads and validates; the model it builds has one output per
exported name and survives a ``.tlt`` round trip with identical predictions; ``tlt-prune -pth 0`` keeps its
predictions; the installed ``tlt-export`` turns it (saved with the architecture's ``metadata``) into an ``.etlt``
that onnxruntime runs like Keras, and into FP16 and INT8 engines (calibrated on a tensorfile) that stay close;
and the verbs it claims have what the tools call (checked by the registry on load). An architecture with a
``sample_spec`` is also trained for one epoch on the generated sample data of its task type
(``libtlt.testing.write_task_sample``), evaluated and run through ``tlt-infer`` — all through the installed
commands (a detector's inference arguments come from its ``sample_inference_args``). Declared
(pending) architectures: they serve no verb, name what brings them, and their spec message loads.
The per-tool behaviour is tested through the installed commands in each tool's suite and, for an architecture
from outside, in tests/test_plugin_architecture.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libtlt.registry import INSTANCE_SEGMENTER, TASKS, VERBS, architecture_names, architectures_for, get_architecture
from libtlt.spec.loader import load_spec_text

#: Each architecture once, under its own name (an alias, TLT 2.0's ``yolo``, is the same object: test_task_and_verbs
#: covers it).
TRAINABLE = [name for name in architectures_for("train") if get_architecture(name).name == name]
EXPORTABLE = [name for name in architectures_for("export") if get_architecture(name).name == name]
DECLARED = [name for name in architecture_names() if not get_architecture(name).verbs]
KEY = "every-arch"


def has_post_processing(arch: Any) -> bool:
    """The exported graph ends in the architecture's decoder and NMS (appended, or built whole)."""
    return hasattr(arch, "export_tail") or hasattr(arch, "export_graph")


def default_spec(arch: Any) -> Any:
    spec = load_spec_text(arch.default_spec(), arch.spec_message(), name=f"<{arch.name} default spec>")
    arch.validate(spec)
    return spec


def test_the_registry_holds_the_manuals_architectures() -> None:
    assert {"classification", "detectnet_v2", "ssd", "dssd", "retinanet", "yolo_v3", "faster_rcnn",
            "mask_rcnn"} <= set(TRAINABLE)
    assert {"yolo", "yolo_v3"} <= set(architectures_for("train"))
    assert set(TRAINABLE) <= set(EXPORTABLE)  # every architecture of the manuals deploys


@pytest.mark.parametrize("name", architecture_names())
def test_task_and_verbs(name: str) -> None:
    arch = get_architecture(name)
    assert arch.task in TASKS and set(arch.verbs) <= set(VERBS)
    assert arch.name == name or name in getattr(arch, "aliases", ())


@pytest.mark.parametrize("name", DECLARED)
def test_declared_architectures_name_what_brings_them(name: str) -> None:
    arch = get_architecture(name)
    assert arch.pending.startswith("issue ")
    assert arch.spec_message().DESCRIPTOR.name  # the spec schema loads


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINABLE)
def test_model_round_trip_and_identity_prune(name: str, tmp_path: Path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model
    from tlt_prune.prune import prune_model

    arch = get_architecture(name)
    spec = default_spec(arch)
    classes = ["a", "b"]
    model = arch.build(spec, classes)
    assert len(model.outputs) == len(arch.export_outputs(spec))
    batch = np.random.default_rng(0).uniform(0.0, 1.0, (1, *model.inputs[0].shape[1:])).astype(np.float32)
    expected = [np.asarray(o) for o in _as_list(model.predict_on_batch(batch))]

    save_tlt_model(tmp_path / "m.tlt", model, KEY, {"architecture": name, "classes": classes}, kdf_iterations=1000)
    loaded, meta = load_tlt_model(tmp_path / "m.tlt", KEY, architecture=name)
    assert meta["architecture"] == name
    for ours, theirs in zip(expected, _as_list(loaded.predict_on_batch(batch)), strict=True):
        np.testing.assert_allclose(np.asarray(theirs), ours, rtol=1e-5, atol=1e-6)

    same = prune_model(loaded, pruning_threshold=0.0)
    for ours, theirs in zip(expected, _as_list(same.model.predict_on_batch(batch)), strict=True):
        np.testing.assert_allclose(np.asarray(theirs), ours, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTABLE)
def test_export_and_engines_agree_with_keras(name: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from libtlt.io.tensorfile import write_tensorfile
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.runtime.predictor import make_predictor

    arch = get_architecture(name)
    text = arch.default_spec()
    if has_post_processing(arch):
        # The same checks on the sample spec's ResNet10 at 480×256 (no data is read): the default's 1248×384 is four
        # times the work, and YOLOv3's default DarkNet53 needs 13 GiB to export (docs/yolo_v3.md).
        from types import SimpleNamespace

        text = arch.sample_spec(SimpleNamespace(train="/no/records/*", images="/no/images", root=str(tmp_path)))
    spec = load_spec_text(text, arch.spec_message(), name=f"<{name} spec>")
    arch.validate(spec)
    classes = ["a", "b"]
    model = arch.build(spec, classes)
    (tmp_path / "spec.txt").write_text(text)
    rng = np.random.default_rng(0)
    shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    batch = rng.uniform(0.0, 1.0, (2, *shape)).astype(np.float32)
    if arch.task == INSTANCE_SEGMENTER:  # normalised pixels, as its metadata records
        meta = arch.metadata(spec, classes)
        batch = (batch * 255.0 - np.asarray(meta["image_offsets"], np.float32)[:, None, None]) * meta["image_scale"]
    elif has_post_processing(arch):  # these take BGR pixels minus their means, not [0, 1]
        batch = batch * 255.0 - 120.0
    if has_post_processing(arch):
        # Untrained batch statistics (mean 0, variance 1) let activations grow with depth (DSSD multiplies two
        # branches): a few training-mode passes bring them to a trained network's scale before the model is saved.
        for _ in range(10):
            model(batch, training=True)
    save_tlt_model(tmp_path / "m.tlt", model, KEY, arch.metadata(spec, classes), kdf_iterations=1000)
    expected = [np.asarray(o) for o in _as_list(model.predict_on_batch(batch))]
    write_tensorfile(tmp_path / "cal.tensor", (rng.uniform(0.0, 1.0, (2, *shape)).astype(np.float32)
                                               for _ in range(2)))

    def export(*args: str) -> None:
        done = subprocess.run([str(Path(sys.executable).parent / "tlt-export"), name, "-m", str(tmp_path / "m.tlt"),
                               "-k", KEY, "-e", str(tmp_path / "spec.txt"), *args],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    export("-o", str(tmp_path / "m.etlt"), "--data_type", "fp16", "--engine_file", str(tmp_path / "fp16.engine"))
    export("-o", str(tmp_path / "int8.etlt"), "--data_type", "int8", "--cal_data_file", str(tmp_path / "cal.tensor"),
           "--batches", "2", "--batch_size", "2", "--cal_cache_file", str(tmp_path / "cal.bin"),
           "--engine_file", str(tmp_path / "int8.engine"))
    if has_post_processing(arch):  # the deployed graph ends in the architecture's decoder and NMS
        _check_deployed_detections(arch, spec, classes, model, batch, tmp_path)
        return
    # Measured mean errors: etlt 3e-8, FP16 2e-5, INT8 8e-4 (random weights; tolerances leave room for other CPUs).
    for path, tolerance in (("m.etlt", 1e-5), ("fp16.engine", 1e-3), ("int8.engine", 2e-2)):
        predictor = make_predictor(tmp_path / path, KEY, architecture=name)
        found = predictor(batch)
        outputs = [found[n] for n in predictor.output_names] if isinstance(found, dict) else _as_list(found)
        for ours, theirs in zip(expected, outputs, strict=True):
            theirs = np.asarray(theirs, np.float64)
            assert theirs.shape == ours.shape and np.isfinite(theirs).all(), path
            scale = max(float(np.abs(ours).max()), 1.0)  # outputs are probabilities or box offsets
            assert float(np.abs(theirs - ours).mean()) <= tolerance * scale, path


def _check_deployed_detections(arch: Any, spec: Any, classes: list[str], model: Any, batch: np.ndarray,
                               tmp_path: Path) -> None:
    """The .etlt's post-processed outputs give the .tlt's detections; the engines give well-formed ones (a random
    network's scores are too close to one another for FP16/INT8 to keep the same ranking)."""
    from libtlt.runtime.predictor import make_predictor

    _, height, width = arch.input_shape(spec)
    sizes = [(width, height)] * len(batch)
    raw = dict(zip(arch.export_outputs(spec), _as_list(model.predict_on_batch(batch)), strict=True))
    if arch.task == INSTANCE_SEGMENTER:
        _check_deployed_instances(arch, spec, raw, batch, sizes, tmp_path)
        return
    expected = arch.decode(spec, raw, sizes, classes)
    for path in ("m.etlt", "fp16.engine", "int8.engine"):
        predictor = make_predictor(tmp_path / path, KEY, architecture=arch.name)
        assert set(arch.deployed_output_names(spec)) <= set(predictor.output_names), path
        found = arch.decode(spec, predictor(batch), sizes, classes)
        for ours, theirs in zip(expected, found, strict=True):
            assert np.isfinite(theirs.boxes).all() and ((theirs.class_ids >= 0) & (theirs.class_ids < 2)).all()
            if path == "m.etlt":
                _assert_same_detections(ours, theirs)


def _check_deployed_instances(arch: Any, spec: Any, raw: dict[str, Any], batch: np.ndarray,
                              sizes: list[tuple[int, int]], tmp_path: Path) -> None:
    """An instance segmenter's exported graph (its own output names) gives the .tlt's detections and masks; the
    engines give well-formed ones."""
    from libtlt.runtime.predictor import make_predictor

    expected = arch.decode_instances(spec, raw, sizes)
    for path in ("m.etlt", "fp16.engine", "int8.engine"):
        predictor = make_predictor(tmp_path / path, KEY, architecture=arch.name)
        assert set(arch.deployed_output_names(spec)) <= set(predictor.output_names), path
        found = arch.decode_instances(spec, predictor(batch), sizes)
        for ours, theirs in zip(expected, found, strict=True):
            assert np.isfinite(theirs.boxes).all() and theirs.masks.shape[1:] == ours.masks.shape[1:], path
            if path == "m.etlt":
                _assert_same_detections(ours, theirs)
                assert len(theirs.masks) == len(ours.masks)
                assert np.mean(theirs.masks != ours.masks) < 0.01


def _assert_same_detections(ours: Any, theirs: Any) -> None:
    """The same confidences and, detection by detection, the same class and box. A random network's scores lie
    within float noise of one another (RetinaNet's all start near its 0.01 prior), so two nearly tied detections
    may swap places, or trade the last kept slot: order and the odd boundary detection are not compared."""
    np.testing.assert_allclose(np.sort(theirs.confidences), np.sort(ours.confidences), rtol=1e-4, atol=1e-5)
    matched = 0
    for cls, box in zip(ours.class_ids, ours.boxes, strict=True):
        same = (theirs.class_ids == cls) & (np.abs(theirs.boxes - box).max(axis=1) <= 0.5)
        matched += bool(same.any())
    assert matched >= 0.95 * len(ours.class_ids), (matched, len(ours.class_ids))


WITH_SAMPLES = [name for name in TRAINABLE if hasattr(get_architecture(name), "sample_spec")]


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_SAMPLES)
def test_train_evaluate_infer_on_sample_data(name: str, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from libtlt.registry import CLASSIFIER
    from libtlt.testing import write_task_sample

    arch = get_architecture(name)
    data = write_task_sample(arch.task, tmp_path / "data")
    spec = tmp_path / "spec.txt"
    spec.write_text(arch.sample_spec(data))
    env = {**os.environ, "TLT_KEY": KEY}

    def run(tool: str, *args: object) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(Path(sys.executable).parent / tool), name, *(str(a) for a in args)],
                              capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, f"{tool}: {done.stderr[-3000:]}"
        return done

    run("tlt-train", "-e", spec, "-r", tmp_path / "results", "-n", "tiny")
    model = tmp_path / "results" / "weights" / "tiny.tlt"
    status = (tmp_path / "results" / "status.json").read_text().splitlines()
    assert json.loads(status[-1])["status"] == "SUCCESS"
    run("tlt-evaluate", "-e", spec, "-m", model, "-r", tmp_path / "evaluation")
    assert (tmp_path / "evaluation" / "evaluation.json").is_file()
    if arch.task == CLASSIFIER:
        run("tlt-infer", "-m", model, "-d", data.images, "-cm", tmp_path / "results" / "classmap.json")
        assert (Path(data.images) / "result.csv").is_file()
    else:
        run("tlt-infer", *arch.sample_inference_args(data, model), "-o", tmp_path / "inference")
        images = sorted(Path(data.images).iterdir())
        assert len(list((tmp_path / "inference" / "labels").glob("*.txt"))) == len(images)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]
