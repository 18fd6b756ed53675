"""The installed console script: flags of 000 §6.3.2, logs, exit status 2 on bad input, no TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "tlt-dataset-convert"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="tlt-dataset-convert is not installed in this venv")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_manual_flags() -> None:
    result = run("--help")
    assert result.returncode == 0
    for flag in ("-d, --dataset-export-spec", "-o, --output_filename", "-f, --validation-fold", "-h, --help",
                 "-v, --verbose"):
        assert flag in result.stdout
    assert run("-h").stdout == result.stdout


def test_missing_required_flag_is_a_usage_error() -> None:
    result = run("-o", "out")
    assert result.returncode == 2
    assert "-d" in result.stderr


def test_conversion_end_to_end(kitti_root: Path, kitti_spec: Callable[..., Path], tmp_path: Path) -> None:
    output = tmp_path / "tfrecords" / "kitti_trainval"
    result = run("-d", str(kitti_spec(kitti_root, num_shards=2)), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "Writing partition 1, shard 1" in result.stderr
    assert "Tfrecords generation complete." in result.stderr
    names = sorted(p.name for p in output.parent.iterdir())
    assert names == [f"kitti_trainval-fold-00{p}-of-002-shard-0000{s}-of-00002" for p in (0, 1) for s in (0, 1)] + [
        "kitti_trainval_warning.json"]


def test_bad_input_is_one_line_and_status_2(kitti_root: Path, kitti_spec: Callable[..., Path],
                                            tmp_path: Path) -> None:
    label = kitti_root / "labels" / "000002.txt"
    label.write_text("car 0 0 0 1 2 3\n")
    spec = kitti_spec(kitti_root)
    result = run("-d", str(spec), "-o", str(tmp_path / "out" / "x"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {label}:1:") and "expected 15 fields, found 7" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    verbose = run("-d", str(spec), "-o", str(tmp_path / "out" / "x"), "-v")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_missing_spec_file(tmp_path: Path) -> None:
    result = run("-d", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "x"))
    assert result.returncode == 2
    assert f"{tmp_path / 'nope.txt'}: spec file not found" in result.stderr


def test_the_tool_never_imports_tensorflow(kitti_root: Path, kitti_spec: Callable[..., Path],
                                           coco_root: Path, coco_spec: Callable[..., Path], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from tlt_dataset_convert.convert import convert\n"
        f"convert({str(kitti_spec(kitti_root))!r}, {str(tmp_path / 'k' / 'kitti')!r})\n"
        f"convert({str(coco_spec(coco_root))!r}, {str(tmp_path / 'c') + '/'!r})\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
