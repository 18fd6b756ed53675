"""Logs a person can read when stderr is a file (issue 12 §6): no ``\\r`` progress updates (a plain
line every 10 % instead), no TensorFlow C++ banners; tlt-train's own checks are in test_training_faults."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType


def test_augment_logs_plain_progress_lines(faults: ModuleType, frames_dataset: tuple[Path, Path],
                                           tmp_path: Path) -> None:
    dataset, spec = frames_dataset
    log = tmp_path / "augment.log"
    with open(log, "w") as handle:
        done = subprocess.run([faults.tool("tlt-augment"), "-d", str(dataset), "-a", str(spec), "-o",
                               str(tmp_path / "out"), "-j", "1"], stdout=subprocess.PIPE, stderr=handle,
                              text=True, timeout=300)
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "\r" not in text
    steps = [line for line in text.splitlines() if "Augmenting: " in line]
    assert 5 <= len(steps) <= 10 and steps[0].endswith("frame (10%)"), steps
