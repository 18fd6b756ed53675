"""Tools whose issue has not landed yet: installed, --help and --version work, and running one says
"not implemented yet" with exit status 2 (never a silent success). Each tool's own CLI-contract suite
replaces its entry here when it is implemented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PENDING = {
    "tlt-train": "issue 5",
    "tlt-evaluate": "issue 5",
    "tlt-infer": "issue 5",
    "tlt-int8-tensorfile": "issue 6",
    "tlt-prune": "issue 7",
    "tlt-export": "issue 8",
    "tlt-converter": "issue 8",
}
ARCH_TOOLS = {"tlt-train", "tlt-evaluate", "tlt-infer", "tlt-int8-tensorfile", "tlt-export"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("tool", sorted(PENDING))
def test_help_and_version(tool: str) -> None:
    help_run = run(tool, "--help")
    assert help_run.returncode == 0, help_run.stderr
    assert f"Usage: {tool}" in help_run.stdout
    version = run(tool, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"{tool}, version 0.1.0"


@pytest.mark.parametrize("tool", sorted(PENDING))
def test_running_says_not_implemented_and_exits_2(tool: str) -> None:
    args = [tool, "detectnet_v2"] if tool in ARCH_TOOLS else [tool]
    result = run(*args, "-e", "spec.txt")
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {tool} is not implemented yet ({PENDING[tool]})."
