"""A tiny classification model, really trained on generated shapes with the libtlt pipeline, saved as .tlt
(``libtlt.testing``, shared with the other tools' suites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from libtlt.testing import TrainedClassifier, classifier_spec_text, train_tiny_classifier

KEY = "evaluate-test-key"


@pytest.fixture
def write_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``write_spec(dataset, model, top_k=3)`` → path of a 000-layout spec in tmp_path."""

    def write(dataset: Path | str, model: Path | str | None, *, top_k: int = 3) -> Path:
        path = tmp_path / "written_spec.txt"
        path.write_text(classifier_spec_text(dataset, model, top_k=top_k))
        return path

    return write


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedClassifier:
    return train_tiny_classifier(tmp_path_factory.mktemp("evaluate"), KEY)
