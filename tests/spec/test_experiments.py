"""The table of spec kinds: every schema and validator resolves, and the manuals' complete sample specs
load *and validate* (the validators must accept what the manuals print)."""

from __future__ import annotations

from pathlib import Path

import pytest

from libtlt.errors import SpecError
from libtlt.spec.experiments import SPEC_KINDS, load_experiment, spec_kind

SPECS = Path(__file__).parents[1] / "data" / "specs"

COMPLETE_SAMPLES = {
    "augment": ["sample_spec.txt"],
    "dataset_export": ["kitti_voc_random.txt"],
    "classification": ["000_7.1_classification.txt", "003_classification.yaml"],
    "faster_rcnn": ["000_7.3_faster_rcnn.txt", "002_train_spec.txt"],
    "dssd": ["000_7.5_full.txt"],
    "retinanet": ["000_7.6_full.txt", "000_7.8_full.txt"],
    "yolo_v3": ["000_7.7_full.txt"],
    "mask_rcnn": ["000_7.9_mask_rcnn.txt", "004_mask_rcnn.txt"],
}


@pytest.mark.parametrize("kind", sorted(SPEC_KINDS))
def test_every_kind_resolves(kind: str) -> None:
    entry = spec_kind(kind)
    message = entry.message_class()
    assert message.DESCRIPTOR.name == entry.message
    if entry.validator:
        module, function = entry.validator.split(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function))


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind, names in sorted(COMPLETE_SAMPLES.items()) for name in names]
)
def test_complete_manual_samples_validate(kind: str, name: str) -> None:
    spec = load_experiment(kind, SPECS / kind / name)
    assert spec.message.ByteSize() > 0


def test_unknown_kind() -> None:
    with pytest.raises(SpecError, match="unknown spec kind 'detectnet'"):
        spec_kind("detectnet")


def test_validation_runs_through_the_table(tmp_path: Path) -> None:
    text = (SPECS / "yolo_v3" / "000_7.7_full.txt").read_text()
    broken = tmp_path / "yolo.txt"
    broken.write_text(text.replace("batch_size_per_gpu: 16", "batch_size_per_gpu: 0", 1))
    assert "batch_size_per_gpu: 0" in broken.read_text()
    with pytest.raises(SpecError, match=r"yolo.txt:\d+:\d+: field 'training_config.batch_size_per_gpu'"):
        load_experiment("yolo_v3", broken)
    assert load_experiment("yolo_v3", broken, validate=False).message.training_config.batch_size_per_gpu == 0
