"""Import weight (ARCHITECTURE.md rule 3): the light packages never import TensorFlow or Keras, and every
installed tool answers --help and --version.

Each check runs in a fresh interpreter, since this test process may already have imported TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
TOOLS = sorted(p.name for p in (REPO / "tools").iterdir() if p.name.startswith("tlt-") and p.is_dir())
HEAVY = ("tensorflow", "keras")
# Packages walked completely (every submodule), then single modules.
LIGHT_PACKAGES = ("libtlt.spec", "libtlt.io", "tlt_augment", "tlt_dataset_convert", "tlt_converter", "tlt_kmeans")
LIGHT_MODULES = ("tlt_augment.cli", "tlt_dataset_convert.cli", "tlt_converter.cli", "tlt_kmeans.cli")
LIGHT_TOOLS = ("tlt-augment", "tlt-dataset-convert", "tlt-converter", "tlt-kmeans")

_IMPORT_SCRIPT = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    heavy, packages, modules = json.loads(sys.argv[1])

    def loaded():
        return sorted(m for m in heavy if m in sys.modules)

    imported, culprit = [], None
    def load(name):
        global culprit
        importlib.import_module(name)
        imported.append(name)
        if culprit is None and loaded():
            culprit = name

    for package in packages:
        load(package)
        root = sys.modules[package]
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            load(info.name)
    for name in modules:
        load(name)
    print(json.dumps({"imported": imported, "heavy": loaded(), "culprit": culprit}))
""")


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO)


def test_light_packages_do_not_import_tensorflow_or_keras() -> None:
    result = _python("-c", _IMPORT_SCRIPT, json.dumps([HEAVY, LIGHT_PACKAGES, LIGHT_MODULES]))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"libtlt.io.modelfile", "libtlt.io.tensorfile", "libtlt.io.calcache", "libtlt.io.images",
            "libtlt.io.kitti", "libtlt.spec.loader"} <= set(report["imported"])
    assert report["heavy"] == [], f"{report['culprit']} imports {', '.join(report['heavy'])}"


@pytest.mark.parametrize("tool", LIGHT_TOOLS)
def test_light_tool_help_does_not_import_tensorflow(tool: str) -> None:
    module = tool.replace("-", "_") + ".cli"
    script = textwrap.dedent(f"""
        import sys
        from {module} import main
        try:
            main(["--help"])
        except SystemExit as stop:
            assert stop.code in (0, None), stop.code
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    result = _python("-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_tool_is_listed() -> None:
    # The nine tools of the TLT 2.0 manual plus tlt-kmeans (the manual's kmeans.py for YOLOv3 anchors).
    assert len(TOOLS) == 10 and set(LIGHT_TOOLS) <= set(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_console_script_help_and_version(tool: str) -> None:
    script = BIN / tool
    assert script.exists(), f"{script} is not installed (run make install)"
    help_run = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert help_run.returncode == 0, help_run.stderr
    assert f"Usage: {tool}" in help_run.stdout
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=300)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().endswith("0.1.0"), version.stdout
