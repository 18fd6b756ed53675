"""What every demo step shares: the output folder, the sizes, what earlier steps produced, and how a
tool is run (as a command, the way a Makefile runs it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libtlt.errors import TltError
from libtlt.log import get_logger

logger = get_logger("libtlt.demo")

#: The key every demo model is encrypted with.
KEY = "tlt_demo_key"


@dataclass(frozen=True)
class DemoSize:
    """How much data and how many epochs: ``FULL`` for ``make demo``, ``QUICK`` for the test suite."""

    detection_frames: int
    detection_val_frames: int
    detection_epochs: int
    retrain_epochs: int
    classification_epochs: int
    #: Classification images per class in the train split (val and test get a tenth, at least 10 each).
    classification_train_images: int
    #: ResNet depth and square input size of the classifier.
    classification_layers: int
    classification_input_size: int
    #: Fraction of the DetectNet_v2 parameters tlt-prune keeps (NVIDIA's advice: 10–30 %).
    keep_ratio: float = 0.25
    #: An instance segmenter's demo (``--arch mask_rcnn``): COCO frames and training steps.
    instance_train_images: int = 240
    instance_val_images: int = 60
    instance_steps: int = 1200
    instance_retrain_steps: int = 400
    #: Their square frames' side (a multiple of 32, the demo spec's 2^max_level).
    instance_size: int = 128

    @property
    def classification_splits(self) -> dict[str, int]:
        """Images per class in each split; test is held out from training and validation."""
        holdout = max(10, self.classification_train_images // 10)
        return {"train": self.classification_train_images, "val": holdout, "test": holdout}


# The classifier learns from scratch: shapes of random colour, fill, size and angle on cluttered
# backgrounds need about a thousand images per class at 64x64 to generalize (issue 12: with 40 or 200 per
# class at 32x32, tlt and a bare-Keras peer of the same network both stayed below 0.5 on held-out images).
# 10 epochs reached 0.883 on the held-out test split, 15 epochs 0.953 (535 s on 2 cores).
FULL = DemoSize(detection_frames=240, detection_val_frames=60, detection_epochs=10, retrain_epochs=8,
                classification_epochs=15, classification_train_images=1000, classification_layers=18,
                classification_input_size=64)
QUICK = DemoSize(detection_frames=12, detection_val_frames=6, detection_epochs=1, retrain_epochs=1,
                 classification_epochs=6, classification_train_images=40, classification_layers=10,
                 classification_input_size=32, instance_train_images=8, instance_val_images=4, instance_steps=6,
                 instance_retrain_steps=3)


@dataclass
class DemoContext:
    """Where the demo writes, and what each step produced (by name) for the steps after it."""

    outdir: Path
    seed: int = 0
    size: DemoSize = FULL
    results: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DemoStep:
    name: str
    run: Callable[[DemoContext], None]


def run_command(args: list[str], *, capture: bool = False) -> str:
    """Run an installed tlt tool by its command name in a child process; its stdout when ``capture``."""
    tool = Path(sys.executable).parent / args[0]
    executable = str(tool) if tool.exists() else shutil.which(args[0])
    if executable is None:
        raise TltError(f"{args[0]} is not installed (run `make install`)")
    logger.info("$ %s", " ".join(args))
    result = subprocess.run([executable, *args[1:]], check=False, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise TltError(f"{args[0]} failed with exit status {result.returncode}")
    if capture:
        sys.stdout.write(result.stdout)
    return result.stdout or ""
