"""The shared tiny classifier (root conftest.py, ``libtlt.testing``) under this suite's fixture names."""

import pytest


@pytest.fixture
def write_spec(classifier_spec_writer):  # type: ignore[no-untyped-def]
    return classifier_spec_writer


@pytest.fixture(scope="session")
def trained(tiny_classifier):  # type: ignore[no-untyped-def]
    return tiny_classifier
