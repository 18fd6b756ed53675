"""CLI contract of tlt-prune (000 chapter 11, issue 7): flags, defaults, -m alias, report, exit codes, no output
on error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model
from tlt_prune.cli import _expand_lists, main

BIN = Path(sys.executable).parent
MANUAL_DEFAULTS = {"normalizer": "max", "equalization_criterion": "union", "pruning_granularity": 8,
                   "pruning_threshold": 0.1, "min_num_filters": 16, "excluded_layers": []}


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def model_file(kit, tmp_path: Path) -> Path:
    path = tmp_path / "resnet_003.tlt"
    save_tlt_model(path, kit.residual_model(), kit.KEY, {"architecture": "classification", "classes": ["a", "b", "c"]},
                   **kit.FAST)
    return path


def test_help_lists_the_manuals_flags() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for flag in ("-pm, -m, --pretrained_model", "-o, --output_file", "-k, --key", "-n, --normalizer",
                 "-eq, --equalization_criterion", "-pg, --pruning_granularity", "-pth, --pruning_threshold",
                 "-nf, --min_num_filters", "-el, --excluded_layers", "-h, --help", "--version"):
        assert flag in result.output
    assert "union|intersection|arithmetic_mean|geometric_mean" in result.output
    assert invoke("--version").output.strip() == "tlt-prune, version 0.1.0"


def test_excluded_layers_take_the_manuals_list_form() -> None:
    assert _expand_lists(["-el", "a", "b", "-k", "x", "-el", "c"]) == ["-el", "a", "-el", "b", "-k", "x", "-el", "c"]
    assert _expand_lists(["--excluded_layers", "a", "b"]) == ["--excluded_layers", "a", "--excluded_layers", "b"]
    assert _expand_lists(["-k", "a", "b"]) == ["-k", "a", "b"]


def test_defaults_report_and_output(kit, model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "resnet_003_pruned.tlt"
    result = invoke("-pm", model_file, "-o", out, "-k", kit.KEY)
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "resnet_003_pruned.json").read_text())
    assert report["options"] == MANUAL_DEFAULTS
    assert "Pruning ratio (pruned model / original model)" in result.output
    for row in report["layers"]:
        assert row["name"] in result.output
    model, meta = load_tlt_model(out, kit.KEY)
    assert meta["classes"] == ["a", "b", "c"] and meta["pruned"]["from"] == "resnet_003.tlt"
    assert model.count_params() == report["params_after"]
    assert "Saved the pruned model" in result.stderr


def test_manual_example_with_m_alias_and_every_flag(kit, model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned.tlt"
    result = invoke("-m", model_file, "-o", out, "-eq", "intersection", "-pth", "4.2", "-k", kit.KEY, "-n", "l2",
                    "-pg", "2", "-nf", "2", "-el", "conv_pw_1", "fc1")
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["options"] == {"normalizer": "L2", "equalization_criterion": "intersection",
                                 "pruning_granularity": 2, "pruning_threshold": 4.2, "min_num_filters": 2,
                                 "excluded_layers": ["conv_pw_1", "fc1"]}
    layers = {row["name"]: row for row in report["layers"]}
    assert layers["conv_pw_1"]["filters_after"] == 16 and layers["fc1"]["filters_after"] == 10
    assert report["params_after"] < report["params_before"]


@pytest.fixture
def unsupported_file(kit, tmp_path: Path) -> Path:
    keras, L = kit.keras, kit.L

    @keras.saving.register_keras_serializable(package="tlt_prune_cli_tests")
    class Halver(L.Layer):
        def call(self, x):
            return x * 0.5

    inputs, x = kit.stem()
    x = L.Conv2D(8, 3, padding="same", name="conv1")(x)
    model = keras.Model(inputs, L.Conv2D(2, 1, name="out")(Halver(name="halver")(x)))
    path = tmp_path / "custom.tlt"
    save_tlt_model(path, model, kit.KEY, {}, **kit.FAST)
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("wrong_key", "wrong key"),
    ("not_a_model", "not a tlt model file"),
    ("missing", "model file not found"),
    ("unknown_layer", "excluded layer 'conv_99' is not in the model"),
    ("threshold", r"pruning threshold 1.5 is outside [0, 1]"),
    ("negative_threshold", "pruning threshold -0.2 must be a number >= 0"),
    ("unsupported", "layer 'halver' (Halver) is not supported by tlt-prune"),
])
def test_bad_input_exits_2_and_writes_nothing(kit, model_file: Path, unsupported_file: Path, tmp_path: Path,
                                              case: str, message: str) -> None:
    source, key, extra = model_file, kit.KEY, []
    if case == "wrong_key":
        key = "not-the-key"
    elif case == "not_a_model":
        source = tmp_path / "notes.txt"
        source.write_text("hello\n")
    elif case == "missing":
        source = tmp_path / "absent.tlt"
    elif case == "unknown_layer":
        extra = ["-el", "conv_99"]
    elif case == "threshold":
        extra = ["-pth", "1.5"]
    elif case == "negative_threshold":
        extra = ["-pth", "-0.2", "-n", "L2"]
    elif case == "unsupported":
        source = unsupported_file
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("-pm", source, "-o", tmp_path / "out.tlt", "-k", key, *extra)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_keep_ratio_chooses_the_threshold(kit, model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "half.tlt"
    result = invoke("-m", model_file, "-o", out, "-k", kit.KEY, "--keep_ratio", "0.5", "-pg", "1", "-nf", "1")
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    threshold = report["options"]["pruning_threshold"]
    assert 0.0 < threshold < 1.0 and f"-pth {threshold:.4f} keeps about 50% of the parameters" in result.stderr
    assert 0.3 < report["params_after"] / report["params_before"] < 0.7
    same = tmp_path / "same.tlt"  # the chosen threshold, given as -pth, is the same pruning
    assert invoke("-m", model_file, "-o", same, "-k", kit.KEY, "-pth", str(threshold), "-pg", "1", "-nf", "1").exit_code == 0
    assert json.loads(same.with_suffix(".json").read_text())["params_after"] == report["params_after"]
    both = invoke("-m", model_file, "-o", tmp_path / "x.tlt", "-k", kit.KEY, "-pth", "0.2", "--keep_ratio", "0.5")
    assert both.exit_code == 2 and "not both" in both.stderr
    assert invoke("-m", model_file, "-o", tmp_path / "y.tlt", "-k", kit.KEY, "--keep_ratio", "1.5").exit_code == 2


def test_usage_errors_exit_2() -> None:
    assert invoke("-o", "x.tlt", "-k", "k").exit_code == 2  # -pm missing
    assert invoke("-pm", "a.tlt", "-o", "x.tlt", "-k", "k", "-eq", "median").exit_code == 2
    assert invoke("-pm", "a.tlt", "-o", "x.tlt", "-k", "k", "-pg", "0").exit_code == 2


def test_installed_script(kit, model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned.tlt"
    run = subprocess.run([str(BIN / "tlt-prune"), "-m", str(model_file), "-o", str(out), "-k", kit.KEY,
                          "-pth", "0.9", "-pg", "2", "-nf", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Parameters after pruning" in run.stdout
    assert out.exists() and out.with_suffix(".json").exists()
    bad = subprocess.run([str(BIN / "tlt-prune"), "-m", str(model_file), "-o", str(tmp_path / "x.tlt"), "-k", "no"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "wrong key" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.tlt").exists()
