"""CLI contract of tlt-augment (000 §5.2 and issue 3): flags, outputs, logs, errors, atomicity."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tlt_augment.cli import main

BIN = Path(sys.executable).parent


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_help_lists_the_manuals_flags() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for flag in ("-d, --dataset-folder", "-a, --augmentation-proto", "-o, --output-dataset", "-v, --verbose",
                 "-j, --workers", "-h, --help"):
        assert flag in result.output


def test_manual_spec_run_logs_and_outputs(dataset: Path, tmp_path: Path, write_spec, manual_spec) -> None:
    spec = write_spec(raw=manual_spec())
    out = tmp_path / "out"
    result = invoke("-d", dataset, "-a", spec, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    log = result.stderr
    assert f"[INFO] tlt_augment.spec: Merging specification from {spec}" in log
    assert f"[INFO] tlt_augment.augment: Input dataset: {dataset}" in log
    assert f"[INFO] tlt_augment.augment: Output dataset: {out}" in log
    assert "6/6" in log  # the progress bar
    assert "Wrote 6 images" in log and "Boxes kept:" in log and "images/s" in log
    ids = sorted(p.name for p in (dataset / "images").iterdir())
    assert sorted(p.name for p in (out / "images").iterdir()) == ids
    assert sorted(p.stem for p in (out / "labels").iterdir()) == [Path(i).stem for i in ids]
    assert not (out / "images" / "annotated").exists()
    with Image.open(out / "images" / ids[0]) as image:
        assert (image.size, image.mode) == ((96, 64), "RGB")


def test_long_flags_and_verbose_writes_annotated_images(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("spatial_config { rotation_config { angle: 10 } }")
    out = tmp_path / "out"
    result = invoke("--dataset-folder", dataset, "--augmentation-proto", spec, "--output-dataset", out,
                    "--verbose", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    annotated = sorted(p.name for p in (out / "images" / "annotated").iterdir())
    assert annotated == sorted(p.name for p in (out / "images").glob("*.png"))
    first = out / "images" / "annotated" / annotated[0]
    assert not np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(out / "images" / annotated[0])))


def test_results_identical_for_any_number_of_workers(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("""
        spatial_config { rotation_config { angle: -7 } flip_config { flip_vertical: true } shear_config { shear_ratio_y: 0.1 } }
        color_config { hue_saturation_config { hue_rotation_angle: 200 saturation_shift: 0.7 } brightness_config { offset: 5 } }
        blur_config { size: 3 std: 0.8 }
    """)
    outputs = []
    for workers in ("1", "2", "3"):
        out = tmp_path / f"out{workers}"
        result = invoke("-d", dataset, "-a", spec, "-o", out, "-j", workers)
        assert result.exit_code == 0, result.stderr
        outputs.append(tree(out))
    assert outputs[0] == outputs[1] == outputs[2]


def test_rerun_overwrites_same_names_and_keeps_other_files(dataset: Path, tmp_path: Path, write_spec) -> None:
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "images" / "mine.txt").write_text("keep me")
    assert invoke("-d", dataset, "-a", write_spec(""), "-o", out, "-j", "1").exit_code == 0
    first = tree(out)
    spec = write_spec("spatial_config { flip_config { flip_horizontal: true } }")
    assert invoke("-d", dataset, "-a", spec, "-o", out, "-j", "1").exit_code == 0
    second = tree(out)
    assert second["images/mine.txt"] == b"keep me"
    assert second.keys() == first.keys()
    assert second["labels/000000.txt"] != first["labels/000000.txt"]
    assert not [p for p in out.rglob("*.tmp")]


def test_jpeg_and_one_channel(make_dataset, tmp_path: Path, write_spec) -> None:
    root = make_dataset("jpg", num_images=3, image_extension="jpg")
    spec = write_spec("color_config { contrast_config { contrast: 0.5 } }", channels=1, extension=".jpg")
    out = tmp_path / "out"
    result = invoke("-d", root, "-a", spec, "-o", out, "-j", "1")
    assert result.exit_code == 0, result.stderr
    files = sorted((out / "images").iterdir())
    assert [p.name for p in files] == ["000000.jpg", "000001.jpg", "000002.jpg"]
    with Image.open(files[0]) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (96, 64))


def test_png_grayscale_output(dataset: Path, tmp_path: Path, write_spec) -> None:
    out = tmp_path / "out"
    assert invoke("-d", dataset, "-a", write_spec("", channels=1), "-o", out, "-j", "1").exit_code == 0
    with Image.open(out / "images" / "000000.png") as image:
        assert (image.format, image.mode) == ("PNG", "L")


# ------------------------------------------------------------------------------------------ bad input


def break_missing_folder(root: Path) -> str:
    shutil.rmtree(root / "labels")
    return str(root / "labels")


def break_image_without_label(root: Path) -> str:
    (root / "labels" / "000002.txt").unlink()
    return str(root / "images" / "000002.png")


def break_label_without_image(root: Path) -> str:
    (root / "images" / "000003.png").unlink()
    return str(root / "labels" / "000003.txt")


def break_label_line(root: Path) -> str:
    path = root / "labels" / "000004.txt"
    path.write_text(path.read_text() + "car 0 0 0 1 2 3\n")
    line = len(path.read_text().splitlines())
    return f"{path}:{line}"


def break_label_number(root: Path) -> str:
    path = root / "labels" / "000001.txt"
    lines = path.read_text().splitlines()
    tokens = lines[0].split()
    tokens[5] = "abc"
    lines[0] = " ".join(tokens)
    path.write_text("\n".join(lines) + "\n")
    return f"{path}:1: field 'ymin'"


def break_unreadable_image(root: Path) -> str:
    path = root / "images" / "000005.png"
    path.write_bytes(b"this is not a png")
    return str(path)


def break_truncated_image(root: Path) -> str:
    path = root / "images" / "000000.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return f"{path}: truncated image"


BREAKS = [break_missing_folder, break_image_without_label, break_label_without_image, break_label_line,
          break_label_number, break_unreadable_image, break_truncated_image]


@pytest.mark.parametrize("damage", BREAKS, ids=[b.__name__[6:] for b in BREAKS])
def test_bad_dataset_exits_2_naming_the_file_before_writing(dataset: Path, tmp_path: Path, write_spec, damage) -> None:
    named = damage(dataset)
    out = tmp_path / "out"
    result = invoke("-d", dataset, "-a", write_spec(""), "-o", out)
    assert result.exit_code == 2
    errors = error_lines(result)
    assert len(errors) == 1 and named in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_dataset_folder(tmp_path: Path, write_spec) -> None:
    result = invoke("-d", tmp_path / "nowhere", "-a", write_spec(""), "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert error_lines(result) == [f"Error: {tmp_path / 'nowhere'}: dataset folder not found"]


def test_spec_typo_exits_2_with_file_and_line(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("spatial_config {\n  flip_config { flip_horizontol: true }\n}")
    result = invoke("-d", dataset, "-a", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    (error,) = error_lines(result)
    assert f"{spec}:2:" in error and "did you mean 'flip_horizontal'" in error
    assert not (tmp_path / "out").exists()


def test_spec_rule_exits_2(dataset: Path, tmp_path: Path, write_spec) -> None:
    spec = write_spec("spatial_config {\n  flip_config { }\n}")
    result = invoke("-d", dataset, "-a", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    (error,) = error_lines(result)
    assert f"{spec}:2:" in error and "flip_config" in error


def test_output_over_the_input_is_refused(dataset: Path, write_spec) -> None:
    result = invoke("-d", dataset, "-a", write_spec(""), "-o", dataset)
    assert result.exit_code == 2
    assert "is the input folder" in error_lines(result)[0]


def test_failure_midway_leaves_complete_outputs(dataset: Path, tmp_path: Path, write_spec) -> None:
    """A frame that passes the header checks but cannot be decoded stops the run; earlier frames are whole."""
    path = dataset / "images" / "000004.png"
    data = bytearray(path.read_bytes())
    data[60:-20] = bytes(len(data) - 80)  # zero the compressed data, keep header and IEND
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = invoke("-d", dataset, "-a", write_spec("spatial_config { rotation_config { angle: 3 } }"),
                    "-o", out, "-j", "1")
    assert result.exit_code == 2
    (error,) = error_lines(result)
    assert f"{path}: cannot decode image" in error
    written = sorted(p.name for p in (out / "images").iterdir())
    assert written == ["000000.png", "000001.png", "000002.png", "000003.png"]
    for name in written:
        with Image.open(out / "images" / name) as image:
            image.load()  # decodes completely
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"00000{i}.txt" for i in range(4)]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_failure_in_a_worker_process_is_one_line(dataset: Path, tmp_path: Path, write_spec) -> None:
    path = dataset / "images" / "000001.png"
    data = bytearray(path.read_bytes())
    data[60:-20] = bytes(len(data) - 80)
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = invoke("-d", dataset, "-a", write_spec(""), "-o", out, "-j", "2")
    assert result.exit_code == 2
    (error,) = error_lines(result)
    assert f"{path}: cannot decode image" in error
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------ installed command


def test_installed_command(dataset: Path, tmp_path: Path, write_spec, manual_spec) -> None:
    exe = BIN / "tlt-augment"
    assert exe.exists()
    spec = write_spec(raw=manual_spec())
    done = subprocess.run([exe, "-d", dataset, "-a", spec, "-o", tmp_path / "out"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Merging specification from" in done.stderr
    assert len(list((tmp_path / "out" / "labels").iterdir())) == 6
    bad = subprocess.run([exe, "-d", tmp_path / "nope", "-a", spec, "-o", tmp_path / "o2"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == f"Error: {tmp_path / 'nope'}: dataset folder not found"


def test_never_imports_tensorflow() -> None:
    code = ("import sys, tlt_augment.cli, tlt_augment.augment, tlt_augment.pipeline;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stdout + done.stderr


def test_workers_start_after_opencv_threads_ran_in_the_parent(dataset: Path, tmp_path: Path, write_spec) -> None:
    """Forked workers must not inherit a busy OpenCV thread pool (a classic fork deadlock)."""
    spec = write_spec("blur_config { size: 5 std: 1 }")
    code = (
        "import cv2, numpy as np, sys\n"
        "from tlt_augment.augment import run\n"
        "cv2.setNumThreads(4)\n"
        "cv2.GaussianBlur(np.zeros((2000, 2000, 3), np.uint8), (9, 9), 2)  # starts the pool\n"
        f"s = run(dataset_folder={str(dataset)!r}, augmentation_proto={str(spec)!r},\n"
        f"        output_dataset={str(tmp_path / 'out')!r}, workers=2)\n"
        "sys.exit(0 if s.images == 6 else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
