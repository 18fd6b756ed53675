"""The manuals' form for FasterRCNN, ``tlt-train faster_rcnn -e SPEC -k KEY`` (000 §8.5): no ``-r``, the results go
to the folder of ``training_config.output_model`` and the final model to ``output_model`` itself; a folder that
cannot be made fails at once with exit status 2 naming it, before any training. Through the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
KEY = "output-model-key"


def train(spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "tlt-train"), "faster_rcnn", "-e", str(spec)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "TLT_KEY": KEY})


@pytest.fixture(scope="module")
def sample_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    from libtlt.registry import BOX_DETECTOR, get_architecture
    from libtlt.testing import write_task_sample

    data = write_task_sample(BOX_DETECTOR, tmp_path_factory.mktemp("frcnn_output") / "data")
    return str(get_architecture("faster_rcnn").sample_spec(data))


def test_results_and_final_model_go_where_output_model_says(sample_spec: str, tmp_path: Path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model

    output = tmp_path / "experiment" / "frcnn_kitti.tlt"
    spec = tmp_path / "spec.txt"
    spec.write_text(_with_output_model(sample_spec, output))
    done = train(spec)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((output.parent / "status.json").read_text().splitlines()[-1])["status"] == "SUCCESS"
    assert (output.parent / "weights" / "faster_rcnn_resnet10_001.tlt").is_file()
    _, metadata = load_tlt_model(output, KEY, architecture="faster_rcnn")
    assert metadata["architecture"] == "faster_rcnn"


def test_an_output_model_folder_that_cannot_be_made_fails_before_training(sample_spec: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    spec = tmp_path / "spec.txt"
    spec.write_text(_with_output_model(sample_spec, blocker / "sub" / "model.tlt"))
    done = train(spec)
    assert done.returncode == 2
    assert str(blocker) in done.stderr.strip().splitlines()[-1] and "Starting training" not in done.stderr


def _with_output_model(text: str, path: Path) -> str:
    start = text.index("output_model: ")
    end = text.index("\n", start)
    return text[:start] + f'output_model: "{path}"' + text[end:]
