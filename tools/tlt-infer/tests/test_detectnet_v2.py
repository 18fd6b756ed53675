"""tlt-infer detectnet_v2: labels and annotated images per input, boxes in the original image's pixels; errors exit 2.

The model is a tiny hand-built network with DetectNet_v2's interface (``input_1`` NCHW, ``output_cov`` sigmoid and
``output_bbox`` at stride 16), saved as a ``.tlt`` with DetectNet_v2 metadata; the expected detections are computed
here with Keras, Pillow and ``libtlt.layers.clustering`` directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.samples import generate_detection_dataset
from libtlt.testing import one_error_line, tiny_detectnet_metadata, tiny_detectnet_model
from tlt_infer.cli import main

BIN = Path(sys.executable).parent
KEY = "infer-test-key"
WIDTH, HEIGHT = 480, 272
CLASSES = ("car", "pedestrian")
COLORS = {"car": (255, 0, 0), "pedestrian": (0, 0, 255)}


def build_tiny_detectnet(num_classes: int, width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> Any:
    return tiny_detectnet_model(num_classes, width, height, seed)


def save_tiny_detectnet(path: Path, classes: tuple[str, ...] = CLASSES) -> Path:
    from libtlt.runtime.keras_model import save_tlt_model

    path.parent.mkdir(parents=True, exist_ok=True)
    save_tlt_model(path, build_tiny_detectnet(len(classes)), KEY, tiny_detectnet_metadata(classes, WIDTH, HEIGHT),
                   kdf_iterations=1000)
    return path


def inference_spec(model: Path, *, classes: tuple[str, ...] = CLASSES, kitti_dump: bool = True,
                   disable_overlay: bool = False, linewidth: int = 3, tensorrt: bool = False,
                   channels: int = 3) -> str:
    handlers = "".join(f"""
          classwise_bbox_handler_config {{
            key: "{name}"
            value {{
              confidence_model: "aggregate_cov"
              output_map: "{name.upper()}"
              confidence_threshold: 0.3
              bbox_color {{ R: {COLORS[name][0]} G: {COLORS[name][1]} B: {COLORS[name][2]} }}
              clustering_config {{
                coverage_threshold: 0.45
                dbscan_eps: 0.6
                dbscan_min_samples: 0.05
                minimum_bounding_box_height: 4
              }}
            }}
          }}""" for name in classes if name in COLORS)
    backend = (f'tensorrt_config {{ etlt_model: "{model}" }}' if tensorrt else f'tlt_config {{ model: "{model}" }}')
    targets = "\n".join(f'  target_classes: "{c}"' for c in classes)
    return textwrap.dedent(f"""\
        inferencer_config {{
        {targets}
          image_width: {WIDTH}
          image_height: {HEIGHT}
          image_channels: {channels}
          batch_size: 2
          {backend}
        }}
        bbox_handler_config {{
          kitti_dump: {str(kitti_dump).lower()}
          disable_overlay: {str(disable_overlay).lower()}
          overlay_linewidth: {linewidth}
          {handlers}
        }}
        """)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("infer_detectnet")
    sample = generate_detection_dataset(base / "data", num_images=3, width=WIDTH, height=HEIGHT, classes=CLASSES)
    images = base / "images"
    images.mkdir()
    for frame in sample.frame_ids[:2]:
        (images / f"{frame}.png").write_bytes((sample.image_dir / f"{frame}.png").read_bytes())
    # One input of another size (and format): its boxes must come back in its own pixels.
    other = Image.open(sample.image_dir / f"{sample.frame_ids[2]}.png").convert("RGB").resize((600, 340))
    other.save(images / "zz_other_size.jpg", quality=95)
    model = save_tiny_detectnet(base / "model" / "model.tlt")
    spec = base / "infer_spec.txt"
    spec.write_text(inference_spec(model))
    return {"base": base, "images": images, "model": model, "spec": spec}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tlt-infer"), "detectnet_v2", *args], capture_output=True, text=True,
                          timeout=300)


def expected_detections(model_path: Path, image_path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Boxes (original pixels), confidences and KITTI class names computed directly."""
    from libtlt.layers.clustering import ClusteringConfig, postprocess
    from libtlt.runtime.keras_model import load_tlt_model

    model, _ = load_tlt_model(model_path, KEY)
    image = Image.open(image_path).convert("RGB")
    resized = np.asarray(image.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    cov, bbox = model.predict_on_batch(resized.transpose(2, 0, 1)[np.newaxis])
    config = ClusteringConfig(coverage_threshold=0.45, dbscan_eps=0.6, dbscan_min_samples=0.05,
                              minimum_bounding_box_height=4, dbscan_confidence_threshold=0.3)
    found = postprocess(np.asarray(cov[0], np.float64), np.asarray(bbox[0], np.float64), config)
    sx, sy = image.width / WIDTH, image.height / HEIGHT
    boxes = found.boxes * np.array([sx, sy, sx, sy])
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.height)
    return boxes, found.confidences, [CLASSES[c].upper() for c in found.class_ids]


def read_labels(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    assert all(len(fields) == 16 for fields in lines)
    boxes = np.array([[float(v) for v in fields[4:8]] for fields in lines]).reshape(-1, 4)
    return boxes, np.array([float(f[15]) for f in lines]), [f[0] for f in lines]


def test_labels_and_annotated_images_per_input_in_original_pixels(setup: dict[str, Path]) -> None:
    out = setup["base"] / "out"
    result = run("-e", str(setup["spec"]), "-i", str(setup["images"]), "-o", str(out), "-k", KEY)
    assert result.returncode == 0, result.stderr
    inputs = sorted(setup["images"].iterdir())
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(f"{p.stem}.txt" for p in inputs)
    assert sorted(p.name for p in (out / "images_annotated").iterdir()) == sorted(p.name for p in inputs)
    total = 0
    for image_path in inputs:
        boxes, confidences, names = read_labels(out / "labels" / f"{image_path.stem}.txt")
        want_boxes, want_conf, want_names = expected_detections(setup["model"], image_path)
        assert names == want_names
        np.testing.assert_allclose(boxes, want_boxes, atol=0.006)
        np.testing.assert_allclose(confidences, want_conf, rtol=1e-5, atol=1e-6)
        total += len(names)
        original = Image.open(image_path)
        annotated = Image.open(out / "images_annotated" / image_path.name).convert("RGB")
        assert annotated.size == original.size
        if image_path.name.startswith("zz_"):
            assert original.size == (600, 340) and boxes[:, 2].max() > WIDTH * 0.5
        if names and image_path.suffix == ".png":
            pixels = np.asarray(annotated).reshape(-1, 3)
            first = COLORS[names[0].lower()]
            assert (pixels == first).all(axis=1).sum() >= 3 * 10  # a 3-pixel-wide outline in the class colour
    assert total > 0  # the tiny network finds something, so the comparison means something


def test_single_image_and_no_overlay(setup: dict[str, Path]) -> None:
    spec = setup["base"] / "no_overlay.txt"
    spec.write_text(inference_spec(setup["model"], disable_overlay=True))
    image = sorted(setup["images"].glob("*.png"))[0]
    out = setup["base"] / "out_single"
    result = invoke("-e", str(spec), "-i", str(image), "-o", str(out), "-k", KEY)
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in (out / "labels").iterdir()] == [f"{image.stem}.txt"]
    assert not (out / "images_annotated").exists()


def invoke(*args: str) -> Any:
    """In process (TensorFlow is imported once for the session); the subprocess run checks the installed script."""
    return CliRunner().invoke(main, ["detectnet_v2", *args], catch_exceptions=False)


def test_target_classes_disagreeing_with_the_model(setup: dict[str, Path]) -> None:
    spec = setup["base"] / "swapped.txt"
    spec.write_text(inference_spec(setup["model"], classes=("pedestrian", "car")))
    error = one_error_line(invoke("-e", str(spec), "-i", str(setup["images"]), "-o", str(setup["base"] / "x"), "-k", KEY))
    assert "target_classes [pedestrian, car]" in error and "[car, pedestrian]" in error
    assert "swapped.txt:" in error


def test_wrong_key(setup: dict[str, Path]) -> None:
    error = one_error_line(invoke("-e", str(setup["spec"]), "-i", str(setup["images"]), "-o", str(setup["base"] / "x"),
                               "-k", "not-the-key"))
    assert "model.tlt" in error


def test_without_a_key_the_model_file_says_it_needs_one(setup: dict[str, Path]) -> None:
    # The key is optional on the command line (an engine needs none); a .tlt without one is one clear line.
    env = {k: v for k, v in os.environ.items() if k != "TLT_KEY"}
    result = subprocess.run([str(BIN / "tlt-infer"), "detectnet_v2", "-e", str(setup["spec"]), "-i",
                             str(setup["images"]), "-o", str(setup["base"] / "x")], capture_output=True, text=True,
                            timeout=300, env=env)
    error = one_error_line(result)
    assert "model.tlt" in error and "encrypted model file" in error and "TLT_KEY" in error


def test_image_with_the_wrong_channel_count(setup: dict[str, Path]) -> None:
    grey = setup["base"] / "grey.png"
    Image.new("L", (64, 48), 128).save(grey)
    out = setup["base"] / "out_grey"
    error = one_error_line(invoke("-e", str(setup["spec"]), "-i", str(grey), "-o", str(out), "-k", KEY))
    assert "grey.png" in error and "1 channel" in error and "expects 3" in error
    assert not list((out / "labels").glob("*"))


def test_tensorrt_config_needs_tensorrt(setup: dict[str, Path]) -> None:
    spec = setup["base"] / "trt.txt"
    spec.write_text(inference_spec(setup["model"], tensorrt=True))
    error = one_error_line(invoke("-e", str(spec), "-i", str(setup["images"]), "-o", str(setup["base"] / "x"), "-k", KEY))
    assert "TensorRT is not installed" in error and "pip install tensorrt" in error


def test_missing_input(setup: dict[str, Path]) -> None:
    error = one_error_line(invoke("-e", str(setup["spec"]), "-i", str(setup["base"] / "nowhere"),
                               "-o", str(setup["base"] / "x"), "-k", KEY))
    assert "nowhere" in error


def test_real_architecture_model(setup: dict[str, Path]) -> None:
    """A model from the architecture's own build_model and metadata (untrained) runs end to end."""
    from libtlt.archs.detectnet_v2 import architecture as arch
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec.experiments import load_experiment

    default = (resources.files("libtlt.archs.detectnet_v2") / "default_spec.txt").read_text()
    train_spec = setup["base"] / "train_spec.txt"
    train_spec.write_text(default.replace("num_layers: 18", "num_layers: 10"))
    spec = load_experiment("detectnet_v2", train_spec)
    classes = tuple(arch.class_names(spec))
    model_path = setup["base"] / "real" / "model.tlt"
    model_path.parent.mkdir()
    save_tlt_model(model_path, arch.build_model(spec), KEY, arch.metadata(spec, classes), kdf_iterations=1000)
    spec_path = setup["base"] / "real_infer.txt"
    default_handler = ('classwise_bbox_handler_config { key: "default" value { confidence_threshold: 0.1 '
                       'clustering_config { coverage_threshold: 0.3 dbscan_eps: 0.3 dbscan_min_samples: 0.05 } } }')
    spec_path.write_text(inference_spec(model_path, classes=classes).replace("kitti_dump:",
                                                                             f"{default_handler}\n  kitti_dump:"))
    out = setup["base"] / "out_real"
    result = invoke("-e", str(spec_path), "-i", str(setup["images"]), "-o", str(out), "-k", KEY)
    assert result.exit_code == 0, result.stderr
    inputs = sorted(setup["images"].iterdir())
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(f"{p.stem}.txt" for p in inputs)
    for image_path in inputs:
        assert Image.open(out / "images_annotated" / image_path.name).size == Image.open(image_path).size
        boxes, _, _ = read_labels(out / "labels" / f"{image_path.stem}.txt")
        width, height = Image.open(image_path).size
        assert (boxes >= 0).all() and (boxes[:, 0::2] <= width).all() and (boxes[:, 1::2] <= height).all()


def test_images_whose_labels_would_collide(setup: dict[str, Path], tmp_path: Path) -> None:
    for name in ("a.png", "a.jpg"):
        Image.new("RGB", (64, 48)).save(tmp_path / name)
    error = one_error_line(invoke("-e", str(setup["spec"]), "-i", str(tmp_path), "-o", str(tmp_path / "out"),
                                  "-k", KEY))
    assert "a.jpg and a.png" in error
