"""libtlt.samples and libtlt.demo: determinism, exact labels, layouts, learnability, CLIs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from libtlt.errors import TltError
from libtlt.io.kitti import pair_frames, read_label_file, read_sequence_map
from libtlt.samples import (
    CLASSIFICATION_CLASSES,
    DETECTION_CLASSES,
    FrameConfig,
    generate_classification_dataset,
    generate_detection_dataset,
    render_detection_frame,
)
from libtlt.samples.__main__ import main as samples_cli

W, H = 160, 96  # small frames keep the tests fast


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _small(root: Path, **kwargs: object) -> object:
    args: dict[str, object] = {"num_images": 6, "width": W, "height": H, "seed": 3}
    args.update(kwargs)
    return generate_detection_dataset(root, **args)  # type: ignore[arg-type]


def test_detection_same_seed_same_bytes_any_workers(tmp_path: Path) -> None:
    _small(tmp_path / "a", with_sequence_map=True)
    _small(tmp_path / "b", with_sequence_map=True, workers=2)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(a) == 6 * 2 + 1
    assert a == b
    images = [v for k, v in a.items() if k.startswith("images/")]
    assert len(set(images)) == len(images)  # every frame differs
    _small(tmp_path / "c", seed=4)
    c = _digests(tmp_path / "c")
    assert all(c[k] != a[k] for k in c if k.startswith("images/"))


def test_detection_layout_and_labels_match_drawn_pixels(tmp_path: Path) -> None:
    sample = generate_detection_dataset(tmp_path, num_images=8, width=W, height=H, seed=1)
    assert sample.frame_ids == [f"{i:06d}" for i in range(8)]
    assert sample.sequence_map_path is None
    frames = pair_frames(sample.image_dir, sample.label_dir, "png")
    assert [f.frame_id for f in frames] == sample.frame_ids
    config = FrameConfig(W, H, 1, DETECTION_CLASSES, (2, 8))
    total = 0
    for index, frame in enumerate(frames):
        with Image.open(frame.image_path) as image:
            assert image.size == (W, H) and image.mode == "RGB"
            pixels = np.asarray(image)
        labels = read_label_file(frame.label_path)
        rendered = render_detection_frame(index, config, sequence=_sequence_of(1, index))
        assert np.array_equal(rendered.image, pixels)
        assert [obj.to_kitti().fields for obj in rendered.objects] == [obj.fields for obj in labels]
        for obj, label in zip(rendered.objects, labels, strict=True):
            assert label.class_name in DETECTION_CLASSES
            x1, y1, x2, y2 = label.bbox
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
            mask = rendered.owner == obj.owner_id
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            assert (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) == pytest.approx((x1, y1, x2, y2), abs=1)
            assert mask.any()
            assert obj.visible_fraction >= 0.4
            assert label.occlusion == (0 if obj.visible_fraction >= 0.95 else 1 if obj.visible_fraction >= 0.6 else 2)
            assert 0.0 <= label.truncation <= 0.5
            if label.truncation > 0.05:  # clipped objects touch the border
                assert x1 == 0 or y1 == 0 or x2 == W or y2 == H
            total += 1
        assert set(np.unique(rendered.owner)) - {0} == {obj.owner_id for obj in rendered.objects}
    assert total >= 8 * 2 * 0.8


def _sequence_of(seed: int, index: int) -> int:
    from libtlt.samples import sequence_layout

    return next(s for s, group in enumerate(sequence_layout(seed, index + 1)) if index in group)


def test_frames_depend_on_sequence_only_through_style() -> None:
    config = FrameConfig(W, H, 0, DETECTION_CLASSES, (2, 8))
    a, b = render_detection_frame(0, config, 0), render_detection_frame(0, config, 1)
    assert [o.bbox for o in a.objects] == [o.bbox for o in b.objects]
    assert not np.array_equal(a.image, b.image)


def test_class_balance_and_shape_not_colour() -> None:
    """Classes balance out, and their mean colours overlap while box aspect ratios separate them."""
    config = FrameConfig(320, 184, 7, DETECTION_CLASSES, (2, 8))
    colours, aspects, ys = [], [], []
    for index in range(50):
        frame = render_detection_frame(index, config)
        for obj in frame.objects:
            colours.append(frame.image[frame.owner == obj.owner_id].mean(axis=0))
            x1, y1, x2, y2 = obj.bbox
            aspects.append([np.log((x2 - x1) / (y2 - y1))])
            ys.append(DETECTION_CLASSES.index(obj.class_name))
    labels = np.array(ys)
    counts = np.bincount(labels, minlength=3)
    assert counts.min() >= 0.8 * counts.mean(), counts

    def nearest_centroid_accuracy(features: np.ndarray) -> tuple[float, np.ndarray]:
        half = len(labels) // 2
        centroids = np.stack([features[:half][labels[:half] == k].mean(axis=0) for k in range(3)])
        distances = ((features[half:, None, :] - centroids[None]) ** 2).sum(axis=-1)
        return float((distances.argmin(axis=1) == labels[half:]).mean()), centroids

    colour_accuracy, colour_centroids = nearest_centroid_accuracy(np.array(colours))
    shape_accuracy, _ = nearest_centroid_accuracy(np.array(aspects))
    spread = max(np.linalg.norm(a - b) for a in colour_centroids for b in colour_centroids)
    assert spread < 30, colour_centroids
    assert colour_accuracy < 0.5, colour_accuracy
    assert shape_accuracy > 0.85, shape_accuracy


def test_sequence_map_covers_every_frame_once(tmp_path: Path) -> None:
    sample = generate_detection_dataset(tmp_path, num_images=40, width=64, height=48, seed=2, with_sequence_map=True,
                                        objects_per_image=(0, 1))
    assert sample.sequence_map_path == tmp_path / "kitti_seq_to_map.json"
    sequences = read_sequence_map(sample.sequence_map_path)
    listed = [frame for frames in sequences.values() for frame in frames]
    assert sorted(listed) == sample.frame_ids and len(listed) == len(set(listed))
    for frames in sequences.values():
        ids = [int(f) for f in frames]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert all(5 <= len(frames) <= 15 for frames in list(sequences.values())[:-1])


def test_jpg_and_custom_classes(tmp_path: Path) -> None:
    sample = generate_detection_dataset(tmp_path, num_images=3, width=W, height=H, image_extension="jpg",
                                        classes=("Car", "truck"), objects_per_image=(3, 3))
    assert sorted(p.name for p in sample.image_dir.iterdir()) == ["000000.jpg", "000001.jpg", "000002.jpg"]
    names = {obj.class_name for f in pair_frames(sample.image_dir, sample.label_dir, "jpg")
             for obj in read_label_file(f.label_path)}
    assert names <= {"Car", "truck"} and names
    with pytest.raises(TltError, match="not supported"):
        generate_detection_dataset(tmp_path, image_extension="bmp")
    with pytest.raises(TltError, match="at most"):
        generate_detection_dataset(tmp_path, classes=("a", "b", "c", "d", "e"))


def test_classification_tree(tmp_path: Path) -> None:
    splits = {"train": 4, "val": 2, "test": 1}
    sample = generate_classification_dataset(tmp_path / "a", images_per_split=splits, size=(32, 24), seed=5)
    assert sample.classes == CLASSIFICATION_CLASSES
    for split, count in splits.items():
        assert sorted(p.name for p in (tmp_path / "a" / split).iterdir()) == sorted(CLASSIFICATION_CLASSES)
        for name in CLASSIFICATION_CLASSES:
            files = sorted((tmp_path / "a" / split / name).iterdir())
            assert [p.name for p in files] == [f"{n:06d}.jpg" for n in range(count)]
            with Image.open(files[0]) as image:
                assert image.size == (32, 24) and image.format == "JPEG"
        assert sample.counts[split] == {name: count for name in CLASSIFICATION_CLASSES}
    generate_classification_dataset(tmp_path / "b", images_per_split=splits, size=(32, 24), seed=5)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b and len(set(a.values())) == len(a)


def test_classification_colour_is_not_the_class(tmp_path: Path) -> None:
    sample = generate_classification_dataset(tmp_path, images_per_split={"train": 30}, size=(32, 32), seed=0,
                                             image_extension="png")
    means = {}
    for name in sample.classes:
        pixels = [np.asarray(Image.open(p)).reshape(-1, 3).mean(axis=0) for p in (tmp_path / "train" / name).iterdir()]
        means[name] = np.mean(pixels, axis=0)
    spread = max(np.linalg.norm(a - b) for a in means.values() for b in means.values())
    assert spread < 25, means


def test_samples_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(samples_cli, ["detection", str(tmp_path / "det"), "--num-images", "3", "--width", "96",
                                         "--height", "64", "--sequence-map", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "det" / "labels").glob("*.txt"))) == 3
    assert json.loads((tmp_path / "det" / "kitti_seq_to_map.json").read_text())
    result = runner.invoke(samples_cli, ["classification", str(tmp_path / "cls"), "--train", "2", "--val", "1",
                                         "--test", "0", "--width", "32", "--height", "32"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "cls").iterdir()) == ["train", "val"]
    result = runner.invoke(samples_cli, ["classification", str(tmp_path / "bad"), "--classes", "a,a"])
    assert result.exit_code == 2 and "duplicate" in result.output


@pytest.mark.slow
def test_quick_demo_runs_every_step(tmp_path: Path) -> None:
    """``make demo`` at the --quick size: every tool as a command, every output where the summary says."""
    command = [sys.executable, "-m", "libtlt.demo", str(tmp_path), "--quick"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    from libtlt.demo import STEPS
    from libtlt.io.tfrecord import read_records

    steps = len(STEPS)
    assert f"[INFO] libtlt.demo: step 1/{steps}: generate detection sample data" in done.stderr
    assert f"[INFO] libtlt.demo: step {steps}/{steps}:" in done.stderr
    assert "Demo summary:" in done.stdout and "pedestrian" in done.stdout and "s in all" in done.stdout
    for name in ("preview_detection.png", "preview_classification.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100
    counts = Counter(obj.class_name for p in (tmp_path / "data" / "detection" / "labels").iterdir()
                     for obj in read_label_file(p))
    assert set(counts) == set(DETECTION_CLASSES)
    # The pipeline steps: tlt-augment keeps every frame id, tlt-dataset-convert writes every frame once.
    original = sorted(p.name for p in (tmp_path / "data" / "detection" / "labels").iterdir())
    augmented = sorted(p.name for p in (tmp_path / "data" / "detection_augmented" / "labels").iterdir())
    assert augmented == original
    shards = sorted((tmp_path / "tfrecords" / "kitti").glob("kitti-fold-*"))
    assert len(shards) == 4
    assert sum(1 for shard in shards for _ in read_records(shard)) == 2 * len(original)
    # Classification: tlt-train → tlt-evaluate → tlt-infer on the sample data.
    results = tmp_path / "classification"
    classes = sorted(CLASSIFICATION_CLASSES)  # output order: the sorted class folders
    assert json.loads((results / "classmap.json").read_text()) == {n: i for i, n in enumerate(classes)}
    assert sorted(p.name for p in (results / "weights").glob("*.tlt")) == ["resnet_003.tlt", "resnet_006.tlt"]
    evaluation = json.loads((results / "weights" / "evaluation.json").read_text())
    assert evaluation["num_images"] == 3 * 10 and 0.0 <= evaluation["accuracy"] <= 1.0
    rows = (tmp_path / "data" / "classification" / "test" / CLASSIFICATION_CLASSES[0] / "result.csv").read_text()
    assert len(rows.strip().splitlines()) >= 10
    # DetectNet_v2: train → evaluate → prune → retrain → infer → INT8 export → engine → evaluate, infer.
    detectnet = tmp_path / "detectnet_v2"
    assert (detectnet / "unpruned" / "weights" / "resnet10_detector.tlt").is_file()
    report = json.loads((detectnet / "pruned" / "resnet10_detector_pruned.json").read_text())
    assert 0.1 <= report["pruning_ratio"] <= 0.3
    assert (detectnet / "retrained" / "weights" / "resnet10_detector_pruned.tlt").is_file()
    for evaluation_dir in ("unpruned/evaluation", "retrained/evaluation", "final/evaluation"):
        assert "mean_average_precision" in json.loads((detectnet / evaluation_dir / "evaluation.json").read_text())
    val_frames = sorted(p.stem for p in (tmp_path / "data" / "detection_val" / "images").iterdir())
    for inference in ("inference", "final/inference"):
        assert sorted(p.stem for p in (detectnet / inference / "images_annotated").iterdir()) == val_frames
        assert sorted(p.stem for p in (detectnet / inference / "labels").iterdir()) == val_frames
    final = detectnet / "final"
    for name in ("resnet10_detector.etlt", "calibration.bin", "nvinfer_config.txt", "labels.txt",
                 "resnet10_detector_int8.engine"):
        assert (final / name).is_file(), name
    assert "INT8 engine validation mAP" in done.stdout
    assert not list(tmp_path.rglob(".*.tmp"))


@pytest.mark.slow
def test_quick_arch_demo_runs_one_detector_through_every_tool(tmp_path: Path) -> None:
    """``python -m libtlt.demo --arch ssd --quick``: augment, convert, train, evaluate, prune, retrain (-m), export
    INT8, convert, evaluate and infer on the engine, every tool as a command."""
    command = [sys.executable, "-m", "libtlt.demo", str(tmp_path), "--quick", "--arch", "ssd"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[INFO] libtlt.demo: step 11/11: detect objects with the engine (tlt-infer ssd)" in done.stderr
    final = tmp_path / "ssd" / "final"
    report = json.loads((tmp_path / "ssd" / "pruned" / "ssd_pruned.json").read_text())
    assert report["params_after"] < report["params_before"]
    assert json.loads((final / "evaluation" / "evaluation.json").read_text())["num_images"] == 6
    assert (final / "labels.txt").read_text().splitlines() == ["background", "car", "cyclist", "pedestrian"]
    assert "output-blob-names=NMS;NMS_1" in (final / "nvinfer_config.txt").read_text()
    assert len(list((final / "inference" / "labels").glob("*.txt"))) == 6


def test_arch_demo_needs_an_architecture_with_a_demo() -> None:
    done = subprocess.run([sys.executable, "-m", "libtlt.demo", "/tmp/never", "--arch", "classification"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("Error: the demo has no pipeline for 'classification' (it needs "
                                                    "the architecture's demo_spec and demo_inference_args)")
