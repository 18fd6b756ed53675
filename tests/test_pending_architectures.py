"""Verbs an architecture does not serve say so in one line with exit status 2 — never a silent success or a
traceback — and ``--list-archs`` lists only what the tool serves. All of it comes from the registry (no tool holds
a list of names; a served architecture's ``pending`` text for the verbs it lacks is tested with a plug-in in
test_registry.py). (Each tool's own CLI-contract suite tests what is implemented; --help/--version of all nine installed commands are checked in test_import_weight.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

SERVING = {"classification", "detectnet_v2", "ssd", "dssd", "retinanet", "yolo_v3", "yolo", "faster_rcnn",
           "mask_rcnn"}


@pytest.mark.parametrize(("tool", "expected"), [("tlt-train", SERVING), ("tlt-evaluate", SERVING),
                                                ("tlt-infer", SERVING),
                                                ("tlt-int8-tensorfile", SERVING - {"classification"}),
                                                ("tlt-export", SERVING)])
def test_list_archs_names_what_the_tool_serves(tool: str, expected: set[str]) -> None:
    result = subprocess.run([str(BIN / tool), "--list-archs"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == expected


def test_an_architecture_that_does_not_serve_a_tool_says_so() -> None:
    result = subprocess.run([str(BIN / "tlt-int8-tensorfile"), "classification", "-e", "spec.txt"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "not implemented yet (the classification architecture does not serve tlt-int8-tensorfile)" in result.stderr


def test_an_unknown_name_lists_the_served_ones() -> None:
    result = subprocess.run([str(BIN / "tlt-evaluate"), "yolo_v9"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unknown architecture 'yolo_v9' (known: classification, detectnet_v2, dssd, faster_rcnn, mask_rcnn, retinanet, ssd, yolo, yolo_v3)" in result.stderr
