"""tlt-infer's mask outputs for instance segmenters: resizing to the original image, the instance map and its
PNG, and the translucent overlay (the whole path runs through the installed command on the tinyseg plug-in in
tests/test_plugin_architecture.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tlt_infer.box_detector import ImageResult, draw_boxes, instance_map, map_masks_back, png_bytes


def test_masks_are_resized_to_the_image_and_thresholded() -> None:
    grid = np.zeros((1, 4, 6), np.float32)
    grid[0, 1:3, 2:4] = 1.0
    masks = map_masks_back(grid, (60, 40))
    assert masks.shape == (1, 40, 60) and masks.dtype == bool
    rows, cols = np.nonzero(masks[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 29, 20, 39)  # ×10, the middle of the ramp
    assert map_masks_back(np.zeros((0, 4, 6), np.float32), (60, 40)).shape == (0, 40, 60)


def test_instance_map_numbers_objects_and_the_earlier_wins() -> None:
    masks = np.zeros((2, 3, 3), bool)
    masks[0, 0, :2] = True
    masks[1, 0, 1:] = True  # overlaps the first at (0, 1)
    assert instance_map(masks).tolist() == [[1, 1, 2], [0, 0, 0], [0, 0, 0]]


def test_more_than_255_objects_use_a_16_bit_png() -> None:
    masks = np.zeros((300, 1, 300), bool)
    masks[np.arange(300), 0, np.arange(300)] = True
    numbers = instance_map(masks)
    assert numbers.dtype == np.uint16 and numbers.max() == 300
    back = np.asarray(Image.open(io.BytesIO(png_bytes(numbers))))
    np.testing.assert_array_equal(back, numbers)


def test_masks_are_drawn_translucent_under_the_box() -> None:
    image = np.full((10, 10, 3), 100, np.uint8)
    masks = np.zeros((1, 10, 10), bool)
    masks[0, 2:5, 2:5] = True
    result = ImageResult(Path("x.png"), 10, 10, np.array([[1.0, 1.0, 9.0, 9.0]]), np.array([0.9]), np.array([0]),
                         masks)
    drawn = draw_boxes(image, result, [(200, 0, 0)], linewidth=1)
    assert drawn[3, 3].tolist() == [145, 55, 55]  # 0.55·100 + 0.45·(200, 0, 0), rounded
    assert drawn[6, 6].tolist() == [100, 100, 100]  # outside mask and outline
    assert drawn[1, 5].tolist() == [200, 0, 0]  # the box outline
