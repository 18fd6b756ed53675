"""Generation speed of the sample detection data at KITTI size (1248x384 PNG).

Encoding the PNG (zlib level 1) should dominate: compare ``render`` with ``encode``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libtlt.samples import DETECTION_CLASSES, FrameConfig, generate_detection_dataset, render_detection_frame
from libtlt.samples.detection import encode_image

CONFIG = FrameConfig(1248, 384, 0, DETECTION_CLASSES, (2, 8))
FRAMES = 16


def test_render_frame(benchmark: Any) -> None:
    counter = iter(range(10**9))
    benchmark(lambda: render_detection_frame(next(counter), CONFIG))


def test_encode_png(benchmark: Any) -> None:
    image = render_detection_frame(0, CONFIG).image
    benchmark(encode_image, image, "png")


@pytest.mark.parametrize("workers", [1, 2])
def test_generate_kitti_size_png(benchmark: Any, tmp_path: Path, workers: int) -> None:
    benchmark.pedantic(
        generate_detection_dataset, args=(tmp_path,),
        kwargs={"num_images": FRAMES, "width": 1248, "height": 384, "workers": workers}, rounds=3, iterations=1,
    )
    benchmark.extra_info["frames_per_round"] = FRAMES
