"""Architectures of the manuals that have not landed yet (SSD, DSSD, RetinaNet, YOLOv3, FasterRCNN,
MaskRCNN): every architecture tool says so in one line with exit status 2 — never a silent success or a
traceback. (Each tool's own CLI-contract suite tests what is implemented; --help/--version of all nine
installed commands are checked in test_import_weight.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ARCH_TOOLS = ("tlt-train", "tlt-evaluate", "tlt-infer", "tlt-int8-tensorfile")


@pytest.mark.parametrize("tool", ARCH_TOOLS)
def test_a_pending_architecture_exits_2_with_one_line(tool: str) -> None:
    result = subprocess.run([str(BIN / tool), "ssd", "-e", "spec.txt"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{tool} ssd is not implemented yet" in lines[0], result.stderr


@pytest.mark.parametrize("tool", (*ARCH_TOOLS, "tlt-export"))
def test_list_archs_names_the_registered_ones(tool: str) -> None:
    result = subprocess.run([str(BIN / tool), "--list-archs"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {"classification", "detectnet_v2"} <= set(result.stdout.split())
