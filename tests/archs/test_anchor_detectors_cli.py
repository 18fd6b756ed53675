"""SSD, DSSD, RetinaNet and YOLOv3 as a user meets them through the installed commands: spec mistakes the manuals warn about are one
line naming file:line and field, exit status 2, before any training starts (nothing written); a model that is not
an SSD, an engine's outputs, and tlt-infer's own options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from libtlt.registry import get_architecture
from libtlt.spec.edits import edit_spec_text
from libtlt.testing import one_error_line

BIN = Path(sys.executable).parent
KEY = "ssd_cli_key"

#: (architecture, edit of the default spec, field named in the error, words of the message)
MISTAKES = [
    ("ssd", {'scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"': 'scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7]"'},
     "ssd_config.scales", "needs 7 values"),
    ("ssd", {'aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"': 'aspect_ratios: "[[1.0, 2.0], [1.0]]"'},
     "ssd_config.aspect_ratios", "one list per prediction layer (6), got 2"),
    ("ssd", {'aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"': 'aspect_ratios_global: "[1.0, __import__]"'},
     "ssd_config.aspect_ratios_global", "cannot read"),
    ("ssd", {'variances: "[0.1, 0.1, 0.2, 0.2]"': 'variances: "[0.1, 0.1, 0.2, 0.2]"\n  steps: "[8, 16, 32]"'},
     "ssd_config.steps", "one step per prediction layer (6), got 3"),
    ("ssd", {'variances: "[0.1, 0.1, 0.2, 0.2]"': 'variances: "[0.1, 0.1, 0.2, 0.2]"\n  offsets: "[0.5, 0.5, 0.5, 0.5, 0.5, 1.5]"'},
     "ssd_config.offsets", "1.5"),
    ("ssd", {'arch: "resnet"': 'arch: "efficientnet_b0"', "nlayers: 18": ""}, "ssd_config.arch", "unsupported arch"),
    ("dssd", {"nlayers: 18": "nlayers: 20"}, "dssd_config.nlayers", "20"),
    ("dssd", {"pred_num_channels: 512": "pred_num_channels: 128"}, "dssd_config.pred_num_channels",
     "must be one of 0, 256, 512, 1024"),
    ("ssd", {"output_image_width: 1248": "output_image_width: 1250"}, "output_image_width", "32"),
    ("ssd", {"variances: \"[0.1, 0.1, 0.2, 0.2]\"": "variances: \"[0.1, 0.1, 0.2, 0.2]\"\n  neg_pos_ratio: -3"},
     "ssd_config.neg_pos_ratio", "must be positive"),
    ("retinanet", {'aspect_ratios_global: "[1.0, 2.0, 0.5]"':
                   'aspect_ratios: "[[1.0, 2.0, 0.5], [1.0, 2.0], [1.0], [1.0], [1.0]]"'},
     "retinanet_config.aspect_ratios", "same number of anchors"),
    ("retinanet", {"n_layers: 18": "n_layers: 18\n  nlayers: 34"}, "retinanet_config.n_layers", "conflicts"),
    ("retinanet", {'scales: "[0.045, 0.09, 0.2, 0.4, 0.55, 0.7]"': 'scales: "[0.045, 0.09, 0.2, 0.4, 0.55, 0.7, 1]"'},
     "retinanet_config.scales", "needs 6 values"),
    ("retinanet", {"n_kernels: 1": "n_kernels: 1\n  n_anchor_levels: 0"}, "retinanet_config.n_anchor_levels",
     "must be > 0"),
    ("yolo", {'big_anchor_shape: "[ (116,90), (156,198), (373,326) ]"': 'big_anchor_shape: "[ (116,90), (156 198) ]"'},
     "yolo_config.big_anchor_shape", "cannot read"),
    ("yolo", {'small_anchor_shape: "[ (10,13), (16,30), (33,23) ]"': 'small_anchor_shape: "[]"'},
     "yolo_config.small_anchor_shape", "at least one"),
    ("yolo_v3", {"arch_conv_blocks: 2": "arch_conv_blocks: 3"}, "yolo_config.arch_conv_blocks", "0, 1 or 2"),
    ("yolo_v3", {"output_image_height: 384": "output_image_height: 400", "crop_bottom: 384": "crop_bottom: 400"},
     "output_image_height", "32"),
]


@pytest.mark.parametrize(("name", "edits", "field", "words"), MISTAKES,
                         ids=[f"{m[0]}-{m[2].split('.')[-1]}" for m in MISTAKES])
def test_spec_mistakes_stop_before_training(tmp_path: Path, name: str, edits: dict[str, str], field: str,
                                            words: str) -> None:
    spec = tmp_path / "spec.txt"
    text = edit_spec_text(get_architecture(name).default_spec(), edits, "the default spec")
    spec.write_text(text)
    done = subprocess.run([str(BIN / "tlt-train"), name, "-e", str(spec), "-r", str(tmp_path / "results"), "-k", KEY],
                          capture_output=True, text=True, timeout=300)
    line = one_error_line(done)
    assert f"{spec}:" in line and field.split(".")[-1] in line and words in line, line
    assert not (tmp_path / "results").exists()


def test_evaluate_refuses_a_model_of_another_architecture(tmp_path: Path) -> None:
    """A DetectNet_v2 .tlt handed to tlt-evaluate ssd: one line naming the model, exit 2."""
    from libtlt.registry import BOX_DETECTOR
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.testing import tiny_detectnet_metadata, tiny_detectnet_model, write_task_sample

    data = write_task_sample(BOX_DETECTOR, tmp_path / "data")
    classes = ["car", "cyclist", "pedestrian"]
    save_tlt_model(tmp_path / "dn.tlt", tiny_detectnet_model(3, 480, 256), KEY,
                   tiny_detectnet_metadata(classes, 480, 256), kdf_iterations=1000)
    spec = tmp_path / "spec.txt"
    spec.write_text(get_architecture("ssd").sample_spec(data))
    done = subprocess.run([str(BIN / "tlt-evaluate"), "ssd", "-e", str(spec), "-m", str(tmp_path / "dn.tlt"), "-k",
                           KEY], capture_output=True, text=True, timeout=300)
    line = one_error_line(done)
    assert "dn.tlt" in line and ("detectnet_v2" in line or "classes" in line), line


def test_infer_help_lists_the_manuals_options() -> None:
    done = subprocess.run([str(BIN / "tlt-infer"), "ssd", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for flag in ("-e", "-i", "-o", "-k", "-m, --model", "-t, --threshold"):
        assert flag in done.stdout, flag
