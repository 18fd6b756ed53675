"""The SSD options of the shared detection loader (libtlt.data.detection): zoom-out and the IoU-constrained
random crop. Each frame is a black image with white rectangles, so where an object went can be read off the
output pixels and compared with the box the loader reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from libtlt.data.detection import Augmentation, Preprocessing, load_example  # noqa: E402

WIDTH, HEIGHT = 96, 64
PRE = Preprocessing(output_width=WIDTH, output_height=HEIGHT)


def frame(tmp_path: Path, boxes: list[list[float]]) -> tuple[str, np.ndarray, np.ndarray]:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for x1, y1, x2, y2 in boxes:
        image[int(y1):int(y2), int(x1):int(x2)] = 255
    path = tmp_path / "frame.png"
    path.write_bytes(tf.io.encode_png(image).numpy())
    return str(path), np.asarray(boxes, np.float32), np.zeros(len(boxes), np.int32)


def run(example: tuple[str, np.ndarray, np.ndarray], aug: Augmentation, seed: int) -> tuple[np.ndarray, ...]:
    path, boxes, classes = example
    image, out_boxes, out_classes = load_example(tf.constant(path), tf.constant(boxes), tf.constant(classes), PRE,
                                                 aug, (seed, 7))
    return image.numpy(), out_boxes.numpy(), out_classes.numpy()


def white_extent(image: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(image[0] > 0.5)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


def test_zoom_out_and_crop_move_boxes_with_the_pixels(tmp_path: Path) -> None:
    example = frame(tmp_path, [[20, 16, 60, 44]])
    aug = Augmentation(hflip_probability=0.5, zoom_out_probability=1.0, zoom_out_min_scale=1.0,
                       zoom_out_max_scale=3.0, iou_crop_probability=0.7, iou_crop_min_ious=(0.0, 0.1, 0.3))
    areas = []
    for seed in range(16):
        image, boxes, classes = run(example, aug, seed)
        assert classes[0] == 0  # a crop always holds the only object's centre
        np.testing.assert_allclose(boxes[0], white_extent(image), atol=1.5)
        areas.append((boxes[0, 2] - boxes[0, 0]) * (boxes[0, 3] - boxes[0, 1]))
    original = 40 * 28
    assert min(areas) < 0.7 * original and max(areas) > 1.3 * original  # some zoomed out, some cropped in


def test_objects_whose_centre_leaves_the_patch_are_dropped(tmp_path: Path) -> None:
    example = frame(tmp_path, [[10, 10, 50, 54], [48, 10, 88, 54]])  # side by side, centres 38 pixels apart
    aug = Augmentation(iou_crop_probability=1.0, iou_crop_min_ious=(0.0,), iou_crop_scale=(0.3, 0.38),
                       iou_crop_aspect_ratio=(1.0, 1.0))
    kept = [run(example, aug, seed)[2] for seed in range(16)]
    # A patch under 37 pixels wide holds one centre, though it often shows part of the other object.
    assert all(int((k >= 0).sum()) == 1 for k in kept)
    assert {int(np.argmax(k >= 0)) for k in kept} == {0, 1}


def test_a_crop_reaches_the_minimum_iou_or_is_not_made(tmp_path: Path) -> None:
    example = frame(tmp_path, [[19, 13, 77, 51]])  # 60 % of each side
    aug = Augmentation(iou_crop_probability=1.0, iou_crop_min_ious=(0.5,))
    cropped = 0
    for seed in range(12):
        _, boxes, classes = run(example, aug, seed)
        assert classes[0] == 0
        covered = (boxes[0, 2] - boxes[0, 0]) * (boxes[0, 3] - boxes[0, 1]) / (WIDTH * HEIGHT)
        if np.allclose(boxes[0], example[1][0]):
            continue
        cropped += 1
        # IoU(box, patch) >= 0.5 means the box covers at least half the patch, which becomes the canvas.
        assert covered >= 0.5 - 1e-4
    assert cropped >= 6


def test_the_options_draw_from_their_own_stream(tmp_path: Path) -> None:
    example = frame(tmp_path, [[20, 16, 60, 44]])
    plain = Augmentation(hflip_probability=0.5, translate_max_x=8.0, color_shift_stddev=0.1)
    # Zoom-out switched on with a probability that never fires: the flips, shifts and colours stay the same.
    idle = Augmentation(hflip_probability=0.5, translate_max_x=8.0, color_shift_stddev=0.1,
                        zoom_out_probability=1e-12, zoom_out_max_scale=2.0)
    assert idle.ssd_geometry and not plain.ssd_geometry
    for seed in range(4):
        for a, b in zip(run(example, plain, seed), run(example, idle, seed), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_same_seed_gives_the_same_frame(tmp_path: Path) -> None:
    example = frame(tmp_path, [[20, 16, 60, 44], [70, 5, 90, 25]])
    aug = Augmentation(zoom_out_probability=0.5, zoom_out_max_scale=4.0, iou_crop_probability=0.9)
    for a, b in zip(run(example, aug, 3), run(example, aug, 3), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("settings, message", [
    ({"zoom_out_min_scale": 0.5}, "zoom-out scales"),
    ({"zoom_out_min_scale": 3.0, "zoom_out_max_scale": 2.0}, "zoom-out scales"),
    ({"iou_crop_scale": (0.0, 1.0)}, "iou_crop_scale"),
    ({"iou_crop_scale": (0.5, 1.5)}, "iou_crop_scale"),
    ({"iou_crop_aspect_ratio": (2.0, 0.5)}, "iou_crop_aspect_ratio"),
    ({"iou_crop_probability": 0.5, "iou_crop_min_ious": ()}, "at least one minimum IoU"),
    ({"iou_crop_min_ious": (0.3, 1.2)}, r"lie in \[0, 1\]"),
])
def test_bad_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Augmentation(**settings)  # type: ignore[arg-type]


def test_the_spec_switches_the_ssd_options_on() -> None:
    """``spatial_augmentation``'s zoom_out_probability / zoom_out_max_scale / iou_crop_probability reach the loader;
    off by default; a zoom-out scale below 1 is a spec error at its line."""
    from libtlt.data.detection import augmentation_from_spec
    from libtlt.errors import SpecError
    from libtlt.registry import get_architecture
    from libtlt.spec import load_spec_text
    from libtlt.spec.edits import edit_spec_text

    arch = get_architecture("ssd")
    default = augmentation_from_spec(load_spec_text(arch.default_spec(), arch.spec_message()))
    assert default.zoom_out_probability == 0 and default.iou_crop_probability == 0 and not default.ssd_geometry
    options = "translate_max_y: 8.0\n    zoom_out_probability: 0.5\n    zoom_out_max_scale: 2.0\n" \
              "    iou_crop_probability: 0.25"
    spec = load_spec_text(edit_spec_text(arch.default_spec(), {"translate_max_y: 8.0": options}, "spec"),
                          arch.spec_message())
    arch.validate(spec)
    found = augmentation_from_spec(spec)
    assert (found.zoom_out_probability, found.zoom_out_max_scale, found.iou_crop_probability) == (0.5, 2.0, 0.25)
    assert found.ssd_geometry
    bad = load_spec_text(edit_spec_text(arch.default_spec(), {"translate_max_y: 8.0": "zoom_out_max_scale: 0.5"},
                                        "spec"), arch.spec_message())
    with pytest.raises(SpecError, match=r"zoom_out_max_scale.*must be >= 1"):
        arch.validate(bad)
