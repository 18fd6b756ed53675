"""Full disks and unwritable outputs (issue 12 §4): exit status 2, one line naming the path and the
OS reason, and no partial file under a final name, for every tool, through ``libtlt.io.atomic`` and
``run_tool``."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from libtlt.runtime.sample_models import detectnet_like_model
from libtlt.samples import generate_detection_dataset
from libtlt.samples.specs import kitti_convert_spec

CONVERTER_ARGS = ("-d", "3,32,48", "-o", "output_cov/Sigmoid,output_bbox/BiasAdd", "--backend", "onnxruntime")


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults_model") / "model.onnx"
    path.write_bytes(detectnet_like_model(32, 48).SerializeToString())
    return path


def test_augment_into_proc_names_the_path(faults: ModuleType, frames_dataset: tuple[Path, Path]) -> None:
    dataset, spec = frames_dataset
    line = faults.one_error_line(faults.run("tlt-augment", "-d", dataset, "-a", spec, "-o", "/proc/tlt-x"))
    assert "/proc/tlt-x" in line and "No such file or directory" in line


def test_augment_under_a_file_names_the_path(faults: ModuleType, frames_dataset: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    dataset, spec = frames_dataset
    (tmp_path / "a_file").write_text("x")
    line = faults.one_error_line(faults.run("tlt-augment", "-d", dataset, "-a", spec, "-o", tmp_path / "a_file" / "out"))
    assert str(tmp_path / "a_file") in line and "Not a directory" in line


def test_converter_engine_path_that_is_a_folder(faults: ModuleType, onnx_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "engines"
    folder.mkdir()
    line = faults.one_error_line(faults.run("tlt-converter", onnx_model, *CONVERTER_ARGS, "-e", folder))
    assert line == f"Error: {folder}: cannot write: Is a directory"
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["engines"]


def test_converter_engine_under_proc(faults: ModuleType, onnx_model: Path) -> None:
    line = faults.one_error_line(faults.run("tlt-converter", onnx_model, *CONVERTER_ARGS, "-e", "/proc/tlt-x.engine"))
    assert line == "Error: /proc/tlt-x.engine: cannot write: No such file or directory"


def test_converter_onto_a_full_disk(faults: ModuleType, onnx_model: Path, tmp_path: Path) -> None:
    with faults.small_tmpfs(tmp_path / "disk") as disk:
        faults.fill(disk, leave=8192)
        result = faults.run("tlt-converter", onnx_model, *CONVERTER_ARGS, "-e", disk / "model.engine")
        line = faults.one_error_line(result)
        assert str(disk / "model.engine") in line and "No space left on device" in line
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_augment_onto_a_full_disk_leaves_whole_pairs(faults: ModuleType, frames_dataset: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """200 frames do not fit in 2 MiB: the run stops with one line, and what it wrote are whole pairs."""
    dataset, spec = frames_dataset
    with faults.small_tmpfs(tmp_path / "disk") as disk:
        for workers in ("1", "2"):
            out = disk / f"out{workers}"
            result = faults.run("tlt-augment", "-d", dataset, "-a", spec, "-o", out, "-j", workers)
            line = faults.one_error_line(result)
            assert str(out) in line and "No space left on device" in line
            faults.check_pairs(out)
            for leftover in disk.iterdir():  # free the disk for the next run
                if leftover.is_dir():
                    for path in sorted(leftover.rglob("*"), reverse=True):
                        path.unlink() if path.is_file() else path.rmdir()
                    leftover.rmdir()


def test_dataset_convert_onto_a_full_disk_writes_nothing(faults: ModuleType, tmp_path: Path) -> None:
    generate_detection_dataset(tmp_path / "ds", num_images=40, width=64, height=48, seed=2)
    spec = tmp_path / "convert.txt"
    spec.write_text(kitti_convert_spec(tmp_path / "ds"), encoding="utf-8")
    with faults.small_tmpfs(tmp_path / "disk") as disk:
        faults.fill(disk, leave=4096)
        line = faults.one_error_line(faults.run("tlt-dataset-convert", "-d", spec, "-o", disk / "kitti"))
        assert str(disk / "kitti") in line and "No space left on device" in line
        assert sorted(p.name for p in disk.iterdir()) == ["filler"], "no shard, no staging folder"


def test_outputs_follow_the_umask(faults: ModuleType, onnx_model: Path, tmp_path: Path) -> None:
    """The mode of written files is 0o666 less the umask the tool started with."""
    old = os.umask(0o027)
    try:
        result = faults.run("tlt-converter", onnx_model, *CONVERTER_ARGS, "-e", tmp_path / "m.engine")
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m.engine").stat().st_mode & 0o777 == 0o640
