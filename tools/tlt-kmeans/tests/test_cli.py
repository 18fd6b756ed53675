"""CLI contract of the installed tlt-kmeans (000 §7.7): spec-ready anchor lines on stdout, the mean IoU in
the log, and every user mistake as exit status 2 with one ``Error:`` line (after any [INFO] progress lines)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from libtlt.spec.values import parse_pairs

KMEANS = Path(sys.executable).parent / "tlt-kmeans"
SHAPES = ((12, 15), (20, 31), (35, 25), (60, 45), (40, 90), (90, 60), (150, 120), (110, 200), (250, 180))


def kmeans_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KMEANS), *map(str, args)], capture_output=True, text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not [line for line in result.stderr.splitlines() if line and "[INFO]" not in line and line not in lines]
    assert result.stdout == ""
    return lines[0]


def label_line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f"car 0.00 0 0.00 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 1.5 1.6 3.9 1.0 1.5 20.0 0.1\n"


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    """Twenty 416×416 frames with boxes scattered around SHAPES."""
    folder = tmp_path / "labels"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for frame in range(20):
        lines = []
        for _ in range(6):
            w, h = np.array(SHAPES[rng.integers(len(SHAPES))]) * rng.uniform(0.85, 1.15, size=2)
            x, y = rng.uniform(0, 416 - w), rng.uniform(0, 416 - h)
            lines.append(label_line(x, y, x + w, y + h))
        (folder / f"{frame:06d}.txt").write_text("".join(lines))
    return folder


def parse_anchor_lines(text: str) -> dict[str, list[tuple[float, float]]]:
    """``field: "[(w, h), ...]"`` lines → pairs; the spec loader's own parser reads the same values."""
    fields = {}
    for line in text.strip().splitlines():
        name, value = line.split(": ", 1)
        fields[name] = ast.literal_eval(ast.literal_eval(value))
        assert parse_pairs(ast.literal_eval(value)) == fields[name]
    return fields


def test_nine_anchors_in_spec_syntax(labels: Path) -> None:
    result = kmeans_cli("-l", labels, "-n", "9", "-x", "416", "-y", "416")
    assert result.returncode == 0, result.stderr
    fields = parse_anchor_lines(result.stdout)
    assert list(fields) == ["small_anchor_shape", "mid_anchor_shape", "big_anchor_shape"]
    shapes = [shape for group in fields.values() for shape in group]
    assert all(len(group) == 3 for group in fields.values())
    assert all(isinstance(shape, tuple) and len(shape) == 2 for shape in shapes)
    areas = [w * h for w, h in shapes]
    assert areas == sorted(areas)
    # The scattered shapes are recovered to within their jitter.
    for (w, h), (true_w, true_h) in zip(sorted(shapes), sorted(SHAPES), strict=True):
        assert abs(w - true_w) < 0.15 * true_w and abs(h - true_h) < 0.15 * true_h
    assert "Average IoU of the boxes with their anchors: 0." in result.stderr
    # The same seed gives the same output; the lines have 2 decimals.
    assert kmeans_cli("-l", labels, "-x", "416", "-y", "416").stdout == result.stdout
    assert len(re.findall(r"\d+\.\d\d\b", result.stdout)) == 18 == len(re.findall(r"\.", result.stdout))


def test_several_folders_and_output_file(labels: Path, tmp_path: Path) -> None:
    other = tmp_path / "more"
    other.mkdir()
    (other / "x.txt").write_text(label_line(0, 0, 300, 300) + label_line(5, 5, 5, 40))
    output = tmp_path / "out" / "anchors.txt"
    result = kmeans_cli("-l", labels, "-l", other, "-x", "416", "-y", "416", "--output", output)
    assert result.returncode == 0, result.stderr
    assert output.read_text() == result.stdout
    assert "Read 121 box(es) from 21 label file(s)" in result.stderr
    assert "Skipped 1 degenerate box(es)" in result.stderr
    assert not [p for p in output.parent.iterdir() if p != output]  # no temporary file left


def test_not_a_multiple_of_three_prints_one_list(labels: Path) -> None:
    result = kmeans_cli("-l", labels, "-n", "4", "-x", "416", "-y", "416", "--restarts", "2")
    assert result.returncode == 0, result.stderr
    fields = parse_anchor_lines(result.stdout)
    assert list(fields) == ["anchor_shapes"] and len(fields["anchor_shapes"]) == 4
    assert "[WARNING]" in result.stderr and "three groups" in result.stderr


def test_min_x_min_y_skip_small_boxes(labels: Path) -> None:
    result = kmeans_cli("-l", labels, "-n", "3", "-x", "416", "-y", "416", "--min_x", "100", "--min_y", "100")
    assert result.returncode == 0, result.stderr
    shapes = [s for group in parse_anchor_lines(result.stdout).values() for s in group]
    assert min(w for w, _ in shapes) >= 100 and min(h for _, h in shapes) >= 100
    assert "smaller than --min_x 100 / --min_y 100" in result.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (("-n", "0"), "-n/--num_clusters must be at least 1, got 0"),
    (("-n", "-3"), "-n/--num_clusters must be at least 1, got -3"),
    (("-n", "200"), "200 clusters requested but only 120 usable box(es)"),
    (("-x", "0"), "-x/--image_width must be greater than 0, got 0"),
    (("-y", "-5"), "-y/--image_height must be greater than 0, got -5"),
    (("--max_steps", "0"), "--max_steps must be at least 1"),
    (("--restarts", "0"), "--restarts must be at least 1"),
    (("--min_x", "-1"), "--min_x must not be negative"),
    (("--seed", "-1"), "--seed must not be negative"),
])
def test_bad_options_are_one_line(labels: Path, args: tuple[str, ...], expected: str) -> None:
    options = {"-n": "9", "-x": "416", "-y": "416"}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in options:
            options[flag] = value
        else:
            extra += [flag, value]
    line = one_error_line(kmeans_cli("-l", labels, *[t for kv in options.items() for t in kv], *extra))
    assert expected in line


def test_label_mistakes_are_one_line_naming_the_file(tmp_path: Path, labels: Path) -> None:
    missing = tmp_path / "nowhere"
    assert one_error_line(kmeans_cli("-l", missing, "-x", "416", "-y", "416")) == \
        f"Error: {missing}: label directory not found"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no labels here")
    assert "no label files (*.txt)" in one_error_line(kmeans_cli("-l", empty, "-x", "416", "-y", "416"))
    bad = labels / "000003.txt"
    bad.write_text(bad.read_text() + "\ncar 0 0 0\n")
    line = one_error_line(kmeans_cli("-l", labels, "-x", "416", "-y", "416"))
    assert line.startswith(f"Error: {bad}:8: expected 15 fields"), line
    bad.write_text(label_line(0, 0, 500, 20))
    line = one_error_line(kmeans_cli("-l", labels, "-x", "416", "-y", "416"))
    assert line.startswith(f"Error: {bad}:1: box 500x20 is larger than the 416x416 image"), line


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = kmeans_cli("-l", tmp_path / "nowhere", "-x", "416", "-y", "416", "--verbose")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "label directory not found" in result.stderr


def test_unwritable_output_is_one_line(labels: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = kmeans_cli("-l", labels, "-x", "416", "-y", "416", "--output", tmp_path / "taken")
    assert f"{tmp_path / 'taken'}: cannot write" in one_error_line(result)
    assert "Read " not in result.stderr  # refused before any label is read


def test_help_and_version() -> None:
    help_run = kmeans_cli("--help")
    assert help_run.returncode == 0 and "Usage: tlt-kmeans" in help_run.stdout
    assert "-l, --label_folders" in help_run.stdout and "network input" in help_run.stdout
    version = kmeans_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == "tlt-kmeans, version 0.1.0"
