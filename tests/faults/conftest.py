"""Shared pieces of the fault suite: installed commands, small datasets, a tiny full disk.

Every test here runs the installed console scripts as a user would (subprocess), then looks at
what is left on disk and in the process table. The helpers reach the test modules through the
``faults`` fixture (this module), as ``--import-mode=importlib`` gives conftests no import name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from libtlt.io.images import check_complete
from libtlt.samples import generate_detection_dataset

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
AUGMENT_SPEC = REPO / "tests" / "data" / "specs" / "augment" / "sample_spec.txt"


def tool(name: str) -> str:
    return str(BIN / name)


def run(name: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(name), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error:`` line of a run that exited 2 without a traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def augment_spec(folder: Path, width: int, height: int) -> Path:
    """The manual's sample spec (000 §5.1) for a dataset with images/ and labels/ of this size."""
    text = AUGMENT_SPEC.read_text(encoding="utf-8")
    text = text.replace('"image_2"', '"images"').replace('"label_2"', '"labels"')
    text = text.replace("output_image_width: 1248", f"output_image_width: {width}")
    text = text.replace("output_image_height: 384", f"output_image_height: {height}")
    path = folder / "augment_spec.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def faults() -> types.ModuleType:
    """This module: ``faults.run(...)``, ``faults.check_pairs(...)`` and the other helpers."""
    return sys.modules[__name__]


@pytest.fixture(scope="session")
def frames_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """200 frames of 160×120 (a 2-worker tlt-augment run of a few seconds) and its spec: read-only."""
    root = tmp_path_factory.mktemp("faults_frames")
    generate_detection_dataset(root / "ds", num_images=20, width=160, height=120, seed=3, objects_per_image=(1, 3))
    for image in sorted((root / "ds" / "images").glob("*.png")):  # 10 copies of each: generating is slow
        label = root / "ds" / "labels" / f"{image.stem}.txt"
        for copy in range(1, 10):
            shutil.copyfile(image, image.with_name(f"{image.stem}_{copy}.png"))
            shutil.copyfile(label, label.with_name(f"{image.stem}_{copy}.txt"))
    return root / "ds", augment_spec(root, 160, 120)


def check_pairs(output: Path) -> int:
    """Every image has its label file and the reverse, every image is whole, no temporary file is
    left; returns the number of pairs."""
    images, labels = output / "images", output / "labels"
    if not images.exists() and not labels.exists():
        return 0
    image_ids = {p.stem for p in images.iterdir() if p.is_file()}
    label_ids = {p.stem for p in labels.iterdir() if p.is_file()}
    leftovers = [p.name for folder in (images, labels) for p in folder.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left: {leftovers[:5]}"
    assert image_ids == label_ids, f"unpaired: {sorted(image_ids ^ label_ids)[:5]}"
    for path in images.iterdir():
        if path.is_file():
            check_complete(path, "PNG")
            with Image.open(path) as image:
                image.load()
    return len(image_ids)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A ``size`` tmpfs mounted on ``folder`` (a disk that fills up); skips where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(folder / "filler", "wb") as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * max(0, free - leave))
