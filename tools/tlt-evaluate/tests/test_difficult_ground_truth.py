"""tlt-evaluate's box-detector path passes a truth's ``difficult`` flags to the architecture's evaluator as
``gt_difficult`` and leaves truths without them on the default rule. A stand-in architecture and predictor (no
model, no records): the same detections score differently only through the flags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from libtlt.metrics.detection import DetectionEvaluator
from libtlt.spec.protos import common_pb2
from tlt_evaluate.box_detector import evaluate_box_detector

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)


@dataclass(frozen=True)
class Found:
    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray


@dataclass(frozen=True)
class FlaggedTruth:
    boxes: np.ndarray
    class_ids: np.ndarray
    difficult: np.ndarray | None


@dataclass(frozen=True)
class PlainTruth:  # an outside architecture's truth type, with no difficult attribute at all
    boxes: np.ndarray
    class_ids: np.ndarray


class StandIn:
    """One class, one image: ground truth GT, one detection on its first box; the second box is flagged."""

    name, task = "standin", "box_detector"

    def __init__(self, truth: Any):
        self.truth = truth

    def spec_message(self) -> type:
        return common_pb2.AugmentationConfig

    def validate(self, spec: Any) -> None:
        return None

    def class_names(self, spec: Any) -> list[str]:
        return ["car"]

    def input_shape(self, spec: Any) -> tuple[int, int, int]:
        return 3, 32, 32

    def output_names(self, spec: Any) -> list[str]:
        return ["out"]

    def check_evaluation_data(self, spec: Any, classes: Any, use_training_set: bool) -> None:
        return None

    def evaluation_batches(self, spec: Any, *, use_training_set: bool = False,
                           batch_size: int | None = None) -> Iterator[tuple[np.ndarray, list[Any]]]:
        yield np.zeros((1, 3, 32, 32), np.float32), [self.truth]

    def decode(self, spec: Any, outputs: Any, image_sizes: Any, classes: Any) -> list[Found]:
        return [Found(GT[:1], np.array([0.9]), np.array([0]))]

    def evaluator(self, spec: Any, classes: Any) -> DetectionEvaluator:
        return DetectionEvaluator(classes, mode="INTEGRATE")


class Predictor:
    def __init__(self) -> None:
        self.framework, self.output_names, self.metadata = "onnxruntime", ["out"], {}

    def __call__(self, images: Any) -> dict[str, Any]:
        return {"out": images}


@pytest.mark.parametrize(("truth", "num_ground_truth", "ap"), [
    (FlaggedTruth(GT, np.array([0, 0]), np.array([False, True])), 1, 1.0),
    (FlaggedTruth(GT, np.array([0, 0]), None), 2, 0.5),
    (PlainTruth(GT, np.array([0, 0])), 2, 0.5),
])
def test_difficult_flags_reach_the_evaluator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, truth: Any,
                                             num_ground_truth: int, ap: float) -> None:
    import libtlt.registry
    import libtlt.runtime.predictor

    monkeypatch.setattr(libtlt.registry, "get_architecture", lambda name: StandIn(truth))
    monkeypatch.setattr(libtlt.runtime.predictor, "make_predictor", lambda *args, **kwargs: Predictor())
    spec = tmp_path / "spec.txt"
    spec.write_text("", encoding="utf-8")
    result = evaluate_box_detector("standin", spec, tmp_path / "model.onnx", None, results_dir=tmp_path / "out")
    car = result.classes["car"]
    assert (car.num_ground_truth, car.average_precision) == (num_ground_truth, ap)
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["classes"]["car"]["num_ground_truth"] == num_ground_truth
