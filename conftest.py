"""Test-session setup shared by tests/ and tools/*/tests.

Some test modules import Keras before libtlt; libtlt asks TensorFlow for its oneDNN kernels (see
libtlt/__init__.py) and that only works before TensorFlow is imported, so ask here too.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


# ------------------------------------------------------------------------- fixtures shared by several suites


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The tiny classifier of ``libtlt.testing``, really trained, saved under ``TINY_CLASSIFIER_KEY``."""
    from libtlt.testing import TINY_CLASSIFIER_KEY, train_tiny_classifier

    return train_tiny_classifier(tmp_path_factory.mktemp("tiny_classifier"), TINY_CLASSIFIER_KEY)


@pytest.fixture
def classifier_spec_writer(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``write(dataset, model, top_k=3)`` → path of a 000-layout classification spec in tmp_path."""
    from libtlt.testing import classifier_spec_text

    def write(dataset: Path | str, model: Path | str | None, *, top_k: int = 3) -> Path:
        path = tmp_path / "written_spec.txt"
        path.write_text(classifier_spec_text(dataset, model, top_k=top_k))
        return path

    return write
