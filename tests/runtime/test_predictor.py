"""libtlt.runtime.predictor and ``-f tlt|onnxruntime|tensorrt`` of tlt-evaluate / tlt-infer.

Round trips: a tiny classification model (the registered architecture at 32×32, trained 2 epochs) and an untrained
DetectNet_v2 ``build_model`` are exported with the installed ``tlt-export``; the ``.etlt`` and an FP16 onnxruntime
engine must give the ``.tlt``'s accuracy, labels and mAP.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from libtlt.samples import generate_classification_dataset, generate_detection_dataset
from libtlt.testing import convert_kitti, detectnet_v2_spec_text

BIN = Path(sys.executable).parent
KEY = "predictor-test-key"
SIZE = 32
CLASSES = ("circle", "triangle", "star", "square")
DN_CLASSES = ("car", "pedestrian", "cyclist")
DN_WIDTH, DN_HEIGHT = 480, 272


def _tool(*args: str) -> None:
    done = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def classification_spec(train_dir: Path, val_dir: Path) -> str:
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
          lr_config {{ scheduler: "step" learning_rate: 0.01 step_size: 10 gamma: 0.1 }}
        }}
        eval_config {{
          eval_dataset_path: "{val_dir}"
          top_k: 1
          batch_size: 8
        }}
        """)


@pytest.fixture(scope="module")
def classification(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import keras

    from libtlt.archs.classification.classification_inputs import input_config_from_spec
    from libtlt.data.classification import make_dataset, scan_folder
    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec import load_spec

    base = tmp_path_factory.mktemp("predictor_classification")
    sample = generate_classification_dataset(base / "data", classes=CLASSES, size=(SIZE, SIZE),
                                             images_per_split={"train": 12, "val": 8})
    spec_path = base / "spec.txt"
    spec_path.write_text(classification_spec(sample.root / "train", sample.root / "val"))
    arch = get_architecture("classification")
    spec = load_spec(spec_path, arch.spec_message())
    arch.validate(spec)
    classes = arch.classes_from_folders(spec)
    keras.utils.set_random_seed(0)
    model = arch.build(spec, classes)
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss=arch.loss(spec))
    data = make_dataset(scan_folder(sample.root / "train"), input_config_from_spec(spec, training=True),
                        batch_size=16, training=True, seed=0)
    model.fit(data, epochs=2, verbose=0, shuffle=False)
    model_path = base / "model" / "model.tlt"
    model_path.parent.mkdir()
    save_tlt_model(model_path, model, KEY, arch.metadata(spec, classes), kdf_iterations=1000)
    etlt, engine = base / "model" / "model.etlt", base / "model" / "fp16.engine"
    _tool("tlt-export", "classification", "-m", str(model_path), "-k", KEY, "-o", str(etlt))
    _tool("tlt-export", "classification", "-m", str(model_path), "-k", KEY, "-o", str(base / "model" / "fp16.etlt"),
          "--data_type", "fp16", "--engine_file", str(engine))
    (base / "classmap.json").write_text(json.dumps({name: i for i, name in enumerate(classes)}))
    return {"base": base, "spec": spec_path, "tlt": model_path, "etlt": etlt, "engine": engine,
            "val": sample.root / "val", "classmap": base / "classmap.json"}


def evaluate_accuracy(data: dict[str, Path], model: Path, *framework: str) -> float:
    from tlt_evaluate.cli import main

    out = data["base"] / f"eval_{model.name}_{'_'.join(framework) or 'auto'}"
    result = CliRunner().invoke(main, ["classification", "-e", str(data["spec"]), "-k", KEY, "-m", str(model),
                                       "-r", str(out), *framework], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return float(json.loads((out / "evaluation.json").read_text())["accuracy"])


def test_predictor_outputs_match_across_runtimes(classification: dict[str, Path]) -> None:
    from libtlt.runtime.predictor import make_predictor

    keras_predictor = make_predictor(classification["tlt"], KEY, "tlt")
    etlt = make_predictor(classification["etlt"], KEY, None)
    engine = make_predictor(classification["engine"], KEY, "onnxruntime")
    assert (keras_predictor.framework, etlt.framework, engine.framework) == ("tlt", "onnxruntime", "onnxruntime")
    assert etlt.output_names == keras_predictor.output_names  # ONNX names mapped back to the Keras layer names
    assert engine.output_names == keras_predictor.output_names
    assert etlt.metadata["classes"] == list(CLASSES) or etlt.metadata["classes"] == sorted(CLASSES)
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 3, SIZE, SIZE)).astype(np.float32)
    want = keras_predictor.first(batch)
    assert want.shape == (3, len(CLASSES))
    np.testing.assert_allclose(etlt.first(batch), want, atol=1e-4)
    np.testing.assert_allclose(engine.first(batch), want, atol=1e-2)


def test_evaluate_classification_frameworks(classification: dict[str, Path]) -> None:
    keras_accuracy = evaluate_accuracy(classification, classification["tlt"], "-f", "tlt")
    etlt_accuracy = evaluate_accuracy(classification, classification["etlt"], "-f", "onnxruntime")
    engine_accuracy = evaluate_accuracy(classification, classification["engine"])
    print(f"classification accuracy: tlt {keras_accuracy:.4f}, onnxruntime .etlt {etlt_accuracy:.4f}, "
          f"fp16 engine {engine_accuracy:.4f}")
    assert etlt_accuracy == pytest.approx(keras_accuracy, abs=0.005)
    assert engine_accuracy == pytest.approx(keras_accuracy, abs=0.01)


def test_infer_classification_etlt_gives_the_tlt_labels(classification: dict[str, Path]) -> None:
    from tlt_infer.cli import main

    rows = {}
    for name in ("tlt", "etlt"):
        result = CliRunner().invoke(main, ["classification", "-m", str(classification[name]), "-k", KEY,
                                           "-d", str(classification["val"] / "circle"), "-b", "4",
                                           "-cm", str(classification["classmap"])], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        rows[name] = (classification["val"] / "circle" / "result.csv").read_text().splitlines()
    labels = {name: [line.split(",")[1] for line in lines] for name, lines in rows.items()}
    assert labels["etlt"] == labels["tlt"] and len(labels["tlt"]) == 8


def test_framework_errors(classification: dict[str, Path]) -> None:
    from tlt_evaluate.cli import main

    def error(model: Path, framework: str) -> str:
        result = CliRunner().invoke(main, ["classification", "-e", str(classification["spec"]), "-k", KEY,
                                           "-m", str(model), "-f", framework], catch_exceptions=False)
        assert result.exit_code == 2, result.stderr
        return result.stderr

    assert "TensorRT is not installed" in error(classification["etlt"], "tensorrt")
    assert "-f onnxruntime" in error(classification["etlt"], "tlt")
    assert "-f tlt" in error(classification["tlt"], "onnxruntime")


def detection_spec(tfrecords: str, image_dir: Path) -> str:
    return detectnet_v2_spec_text(tfrecords, image_dir, {"coverage_threshold: 0.005": "coverage_threshold: 0.45",
                                                         "num_layers: 18": "num_layers: 10"})


@pytest.fixture(scope="module")
def detection(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from libtlt.archs.detectnet_v2 import architecture as arch
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec.experiments import load_experiment

    base = tmp_path_factory.mktemp("predictor_detectnet")
    root = base / "kitti"
    generate_detection_dataset(root, num_images=4, width=DN_WIDTH, height=DN_HEIGHT, classes=DN_CLASSES, seed=5,
                               objects_per_image=(2, 4))
    spec_path = base / "spec.txt"
    spec_path.write_text(detection_spec(convert_kitti(root, base / "tfrecords"), root))
    spec = load_experiment("detectnet_v2", spec_path)
    model_path = base / "model" / "model.tlt"
    model_path.parent.mkdir()
    import keras

    keras.utils.set_random_seed(0)
    save_tlt_model(model_path, arch.build_model(spec), KEY, arch.metadata(spec, arch.class_names(spec)),
                   kdf_iterations=1000)
    etlt = base / "model" / "model.etlt"
    _tool("tlt-export", "detectnet_v2", "-m", str(model_path), "-k", KEY, "-o", str(etlt), "-e", str(spec_path))
    return {"base": base, "spec": spec_path, "tlt": model_path, "etlt": etlt, "images": root / "images"}


def test_detectnet_outputs_and_map_match(detection: dict[str, Any]) -> None:
    from libtlt.runtime.predictor import make_predictor
    from tlt_evaluate.cli import main

    keras_predictor = make_predictor(detection["tlt"], KEY, "tlt", architecture="detectnet_v2")
    etlt = make_predictor(detection["etlt"], KEY, "onnxruntime", architecture="detectnet_v2")
    batch = np.random.default_rng(1).uniform(0, 1, (2, 3, DN_HEIGHT, DN_WIDTH)).astype(np.float32)
    want, got = keras_predictor(batch), etlt(batch)
    assert set(got) == {"output_cov", "output_bbox"} == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-3)
    maps = {}
    for framework, model in (("tlt", detection["tlt"]), ("onnxruntime", detection["etlt"])):
        out = detection["base"] / f"eval_{framework}"
        result = CliRunner().invoke(main, ["detectnet_v2", "-e", str(detection["spec"]), "-m", str(model), "-k", KEY,
                                           "-f", framework, "-r", str(out), "--use_training_set"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        report = json.loads((out / "evaluation.json").read_text())
        assert report["num_images"] == 4
        maps[framework] = report["mean_average_precision"] or 0.0
    print(f"detectnet_v2 mAP: tlt {maps['tlt']:.4f}, onnxruntime .etlt {maps['onnxruntime']:.4f}")
    assert maps["onnxruntime"] == pytest.approx(maps["tlt"], abs=0.005)


def test_infer_detectnet_etlt_in_tlt_config_and_tensorrt_config(detection: dict[str, Any]) -> None:
    from tlt_infer.cli import main

    labels = {}
    for name in ("tlt", "etlt"):
        spec = detection["base"] / f"infer_{name}.txt"
        targets = "\n".join(f'  target_classes: "{c}"' for c in DN_CLASSES)
        handler = ('classwise_bbox_handler_config { key: "default" value { confidence_model: "aggregate_cov" '
                   'confidence_threshold: 0.3 clustering_config { coverage_threshold: 0.45 dbscan_eps: 0.6 '
                   'dbscan_min_samples: 0.05 minimum_bounding_box_height: 4 } } }')
        spec.write_text(f"inferencer_config {{\n{targets}\n  image_width: {DN_WIDTH}\n  image_height: {DN_HEIGHT}\n"
                        f'  batch_size: 2\n  tlt_config {{ model: "{detection[name]}" }}\n}}\n'
                        f"bbox_handler_config {{\n  kitti_dump: true\n  disable_overlay: true\n  {handler}\n}}\n")
        out = detection["base"] / f"infer_{name}"
        result = CliRunner().invoke(main, ["detectnet_v2", "-e", str(spec), "-i", str(detection["images"]),
                                           "-o", str(out), "-k", KEY], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        labels[name] = {p.name: p.read_text() for p in sorted((out / "labels").glob("*.txt"))}
        if name == "etlt":
            trt = spec.read_text().replace(f'tlt_config {{ model: "{detection[name]}" }}',
                                           f'tensorrt_config {{ etlt_model: "{detection[name]}" '
                                           'backend_data_type: FP32 }')
            spec.write_text(trt)
            result = CliRunner().invoke(main, ["detectnet_v2", "-e", str(spec), "-i", str(detection["images"]),
                                               "-o", str(out), "-k", KEY], catch_exceptions=False)
            assert result.exit_code == 2 and "TensorRT is not installed" in result.stderr
    assert len(labels["tlt"]) == 4
    assert [len(t.splitlines()) for t in labels["etlt"].values()] == [len(t.splitlines())
                                                                     for t in labels["tlt"].values()]
