"""Golden checks: outputs of whole runs against values computed here, independently, with numpy.

The expected boxes come from the manual's formulas (000 §5.1.1) written out below, not from
tlt_augment.transforms; expected pixels come from plain array slicing and Python's colorsys.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlt_augment.augment import run

WIDTH, HEIGHT = 96, 64  # the size of the conftest datasets

def read_labels(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int64)


def manual_matrix(width: int, height: int) -> np.ndarray:
    """Rotate 5°, shear x 0.3, translate x 8 — the manual's example — as [x y 1]·M (000 §5.1.1)."""
    a = math.radians(5.0)
    c, s = math.cos(a), math.sin(a)
    rotation = np.array([
        [c, s, 0.0],
        [-s, c, 0.0],
        [height * s / 2.0 - width * c / 2.0 + width / 2.0, -height * c / 2.0 + height / 2.0 - width * s / 2.0, 1.0],
    ])
    shear = np.array([[1.0, 0.0, 0.0], [0.3, 1.0, 0.0], [-height * 0.3 / 2.0, -width * 0.0 / 2.0, 1.0]])
    translation = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [8.0, 0.0, 1.0]])
    return rotation @ shear @ translation  # documented order: rotation, (flip), shear, translation


def expected_box(tokens: list[str], matrix: np.ndarray, width: int, height: int) -> np.ndarray | None:
    x1, y1, x2, y2 = (float(t) for t in tokens[4:8])
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]]) @ matrix
    lo = np.clip(corners[:, :2].min(axis=0), 0, [width, height])
    hi = np.clip(corners[:, :2].max(axis=0), 0, [width, height])
    box = np.round(np.concatenate([lo, hi]), 2)
    return box if box[2] > box[0] and box[3] > box[1] else None


def test_manual_example_spec_boxes(dataset: Path, tmp_path: Path, write_spec, manual_spec) -> None:
    spec = write_spec(raw=manual_spec())
    out = tmp_path / "out"
    summary = run(dataset_folder=dataset, augmentation_proto=spec, output_dataset=out, workers=1)
    matrix = manual_matrix(WIDTH, HEIGHT)
    kept = dropped = 0
    for label in sorted((dataset / "labels").glob("*.txt")):
        expected = []
        for tokens in read_labels(label):
            box = expected_box(tokens, matrix, WIDTH, HEIGHT)
            if box is None:
                dropped += 1
                continue
            expected.append(tokens[:4] + [f"{v:.2f}" for v in box] + tokens[8:])
        got = read_labels(out / "labels" / label.name)
        assert len(got) == len(expected), label.name
        for g, e in zip(got, expected, strict=True):
            assert g[:4] == e[:4] and g[8:] == e[8:]  # every non-box field verbatim
            np.testing.assert_allclose([float(v) for v in g[4:8]], [float(v) for v in e[4:8]], atol=0.0101)
        kept += len(expected)
    assert (summary.images, summary.boxes_kept, summary.boxes_dropped) == (6, kept, dropped)
    assert sorted(p.name for p in (out / "images").glob("*.png")) == sorted(
        p.name for p in (dataset / "images").glob("*.png"))


def test_manual_example_spec_moves_image_content(tmp_path: Path, write_spec, manual_spec) -> None:
    """A bright square ends up where the manual's matrix sends its centre."""
    w, h = 160, 96
    root = tmp_path / "sq"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    image = np.zeros((h, w, 3), np.uint8)
    image[40:50, 60:70] = 255  # white: hue rotation leaves it white
    Image.fromarray(image).save(root / "images" / "a.png")
    (root / "labels" / "a.txt").write_text("car 0.00 0 0.00 60.00 40.00 70.00 50.00 1 2 3 4 5 6 7\n")
    run(dataset_folder=root, augmentation_proto=write_spec(raw=manual_spec(width=w, height=h)),
        output_dataset=tmp_path / "out", workers=1)
    out = read_rgb(tmp_path / "out" / "images" / "a.png")
    cx, cy = np.array([65.0, 45.0, 1.0]) @ manual_matrix(w, h)[:, :2]
    assert out[int(cy), int(cx)].min() >= 250  # the square's centre pixel is still white
    ys, xs = np.nonzero(out.min(axis=2) > 128)
    assert abs(xs.mean() + 0.5 - cx) < 0.5 and abs(ys.mean() + 0.5 - cy) < 0.5


def test_translation_and_hue_pixels(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("""
        spatial_config { translation_config { translate_x: 8 translate_y: 3 } }
        color_config { hue_saturation_config { hue_rotation_angle: 25.0 saturation_shift: 1.0 } }
    """)
    run(dataset_folder=dataset, augmentation_proto=spec, output_dataset=tmp_path / "out", workers=1)
    for path in sorted((dataset / "images").glob("*.png"))[:2]:
        src = read_rgb(path)
        out = read_rgb(tmp_path / "out" / "images" / path.name)
        assert (out[:3] == 0).all() and (out[:, :8] == 0).all()
        shifted = src[: HEIGHT - 3, : WIDTH - 8]
        ref = np.array([colorsys.hsv_to_rgb((h + 25 / 360) % 1.0, s, v)
                        for h, s, v in (colorsys.rgb_to_hsv(*(c / 255 for c in px)) for px in shifted.reshape(-1, 3))])
        np.testing.assert_allclose(out[3:, 8:].reshape(-1, 3), ref * 255, atol=1.0)
    for label in sorted((dataset / "labels").glob("*.txt")):
        expected = []
        for src in read_labels(label):
            x1, y1, x2, y2 = (float(v) for v in src[4:8])
            box = [min(x1 + 8, WIDTH), min(y1 + 3, HEIGHT), min(x2 + 8, WIDTH), min(y2 + 3, HEIGHT)]
            if box[2] > box[0] and box[3] > box[1]:  # boxes pushed off the image are dropped
                expected.append(box)
        got = [[float(v) for v in tokens[4:8]] for tokens in read_labels(tmp_path / "out" / "labels" / label.name)]
        assert len(got) == len(expected)
        np.testing.assert_allclose(np.reshape(got, (-1, 4)), np.reshape(expected, (-1, 4)), atol=1e-9)


def test_horizontal_flip_is_exact(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("spatial_config { flip_config { flip_horizontal: true } }")
    run(dataset_folder=dataset, augmentation_proto=spec, output_dataset=tmp_path / "out", workers=1)
    for path in sorted((dataset / "images").glob("*.png")):
        np.testing.assert_array_equal(read_rgb(tmp_path / "out" / "images" / path.name), read_rgb(path)[:, ::-1])
    for label in sorted((dataset / "labels").glob("*.txt")):
        for src, got in zip(read_labels(label), read_labels(tmp_path / "out" / "labels" / label.name), strict=True):
            x1, y1, x2, y2 = (float(v) for v in src[4:8])
            assert [float(v) for v in got[4:8]] == pytest.approx([WIDTH - x2, y1, WIDTH - x1, y2])


def test_resize_scales_images_and_boxes(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("", width=2 * WIDTH, height=HEIGHT // 2)
    run(dataset_folder=dataset, augmentation_proto=spec, output_dataset=tmp_path / "out", workers=1)
    for path in sorted((dataset / "images").glob("*.png")):
        assert read_rgb(tmp_path / "out" / "images" / path.name).shape == (HEIGHT // 2, 2 * WIDTH, 3)
    for label in sorted((dataset / "labels").glob("*.txt")):
        for src, got in zip(read_labels(label), read_labels(tmp_path / "out" / "labels" / label.name), strict=True):
            x1, y1, x2, y2 = (float(v) for v in src[4:8])
            assert [float(v) for v in got[4:8]] == pytest.approx([2 * x1, y1 / 2, 2 * x2, y2 / 2], abs=0.0051)


def test_no_operator_copies_pixels(dataset: Path, tmp_path: Path, write_spec) -> None:
    run(dataset_folder=dataset, augmentation_proto=write_spec(""), output_dataset=tmp_path / "out", workers=1)
    for path in sorted((dataset / "images").glob("*.png")):
        np.testing.assert_array_equal(read_rgb(tmp_path / "out" / "images" / path.name), read_rgb(path))
