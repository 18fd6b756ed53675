"""tlt-dataset-convert benchmark (issue 4): KITTI → TFRecords, frames/s end to end.

Dataset: 7,481 frames (the size of KITTI's training set), PNG 1248×384, ~7 objects per frame (4-10, KITTI's
class names in KITTI's mixed case), random partitioning 80/20 into 2 folds × 10 shards — the manual's
sample spec. It is generated once per session into a temporary directory, in 2 processes. Each PNG is a
real, distinct image (flat background with its boxes drawn, compress level 1): the converter reads only
image headers, never pixels, so noise-filled images would only make the setup slower, not the conversion.

Measured: (a) ``convert()`` in-process, from loading the spec to the published files (3 rounds, fresh
output directory each); (b) the installed ``tlt-dataset-convert`` command as a user runs it, interpreter
start-up and imports included (1 round). Goal ≥ 1,500 frames/s — more than 10× the ~122 frames/s of the
original tool's log in the manual (13,482 frames in about 110 s).

Run: .venv/bin/python -m pytest bench/test_dataset_convert_bench.py --benchmark-only -q
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tlt_dataset_convert.convert import convert

FRAMES, WIDTH, HEIGHT = 7481, 1248, 384
GOAL_FRAMES_PER_SECOND = 1500.0
CLASSES = ("Car", "Car", "Car", "Pedestrian", "Cyclist", "Van", "Truck", "DontCare")
COLOURS = {"Car": (200, 40, 40), "Pedestrian": (40, 200, 40), "Cyclist": (40, 40, 200), "Van": (200, 200, 40),
           "Truck": (200, 40, 200), "DontCare": (90, 90, 90)}

SPEC = """kitti_config {{
  root_directory_path: "{root}"
  image_dir_name: "image_2"
  label_dir_name: "label_2"
  image_extension: ".png"
  partition_mode: "random"
  num_partitions: 2
  val_split: 20
  num_shards: 10
}}
image_directory_path: "{root}"
"""


def _write_frame(args: tuple[Path, int]) -> int:
    root, index = args
    rng = np.random.default_rng([2024, index])
    image = Image.new("RGB", (WIDTH, HEIGHT), tuple(int(v) for v in rng.integers(60, 200, 3)))
    draw = ImageDraw.Draw(image)
    lines = []
    for _ in range(int(rng.integers(4, 11))):
        name = CLASSES[int(rng.integers(len(CLASSES)))]
        w, h = float(rng.uniform(12, 240)), float(rng.uniform(16, 200))
        x1, y1 = float(rng.uniform(0, WIDTH - w)), float(rng.uniform(0, HEIGHT - h))
        x2, y2 = x1 + w, y1 + h
        draw.rectangle((x1, y1, x2, y2), fill=COLOURS[name])
        dims = rng.uniform(0.5, 4.0, 3)
        loc = rng.uniform(-20, 60, 3)
        lines.append(f"{name} {rng.uniform(0, 0.9):.2f} {int(rng.integers(0, 4))} {rng.uniform(-3.14, 3.14):.2f} "
                     f"{x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} {dims[0]:.2f} {dims[1]:.2f} {dims[2]:.2f} "
                     f"{loc[0]:.2f} {loc[1]:.2f} {loc[2]:.2f} {rng.uniform(-3.14, 3.14):.2f}")
    image.save(root / "image_2" / f"{index:06d}.png", compress_level=1)
    (root / "label_2" / f"{index:06d}.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.fixture(scope="session")
def kitti_7481(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The generated dataset (root, number of objects), once per session."""
    root = tmp_path_factory.mktemp("kitti_7481")
    (root / "image_2").mkdir()
    (root / "label_2").mkdir()
    with Pool(2) as pool:
        objects = sum(pool.imap_unordered(_write_frame, zip(itertools.repeat(root), range(FRAMES)), chunksize=64))
    (root / "spec.txt").write_text(SPEC.format(root=root), encoding="utf-8")
    return root, objects


def _report(benchmark: Any, seconds: float, objects: int, label: str) -> float:
    fps = FRAMES / seconds
    benchmark.extra_info.update({"frames": FRAMES, "objects": objects, "frames_per_second": round(fps, 1)})
    print(f"\n{label}: {FRAMES} frames ({objects} objects) in {seconds:.2f} s = {fps:,.0f} frames/s "
          f"(goal {GOAL_FRAMES_PER_SECOND:,.0f}; original tool ~122)")
    return fps


def test_convert_frames_per_second(benchmark: Any, kitti_7481: tuple[Path, int], tmp_path: Path) -> None:
    root, objects = kitti_7481
    rounds = iter(range(100))

    def setup() -> tuple[tuple[str, str], dict[str, object]]:
        return (str(root / "spec.txt"), str(tmp_path / f"round{next(rounds)}" / "kitti_trainval")), {}

    result = benchmark.pedantic(convert, setup=setup, rounds=3, iterations=1, warmup_rounds=0)
    assert sum(len(fold) for fold in result.folds) == FRAMES
    assert [len(fold) for fold in result.folds] == [1496, 5985]  # int(0.2 * 7481) validation frames
    fps = _report(benchmark, benchmark.stats.stats.mean, objects, "convert() in-process, mean of 3")
    assert fps >= GOAL_FRAMES_PER_SECOND


def test_cli_frames_per_second(benchmark: Any, kitti_7481: tuple[Path, int], tmp_path: Path) -> None:
    root, objects = kitti_7481
    script = Path(sys.executable).parent / "tlt-dataset-convert"

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), "-d", str(root / "spec.txt"), "-o", str(tmp_path / "cli" / "kitti")],
                              capture_output=True, text=True, timeout=600)

    completed = benchmark.pedantic(run, rounds=1, iterations=1)
    assert completed.returncode == 0, completed.stderr
    assert "Tfrecords generation complete." in completed.stderr
    fps = _report(benchmark, benchmark.stats.stats.mean, objects, "tlt-dataset-convert command, start-up included")
    assert fps >= GOAL_FRAMES_PER_SECOND
