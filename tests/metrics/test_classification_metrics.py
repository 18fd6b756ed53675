"""libtlt.metrics.classification: hand-checked values, properties, Keras agreement, report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from libtlt.metrics.classification import (
    categorical_crossentropy,
    confusion_matrix,
    evaluate_predictions,
    format_report,
    precision_recall_f1,
    top_k_accuracy,
    write_confusion_png,
    write_report_json,
)

LABELS = np.array([0, 0, 0, 1, 1, 2])
SCORES = np.array([
    [0.7, 0.2, 0.1],  # 0 → 0
    [0.2, 0.5, 0.3],  # 0 → 1 (true class third)
    [0.6, 0.3, 0.1],  # 0 → 0
    [0.1, 0.8, 0.1],  # 1 → 1
    [0.5, 0.4, 0.1],  # 1 → 0 (true class second)
    [0.3, 0.3, 0.4],  # 2 → 2
])


def test_confusion_matrix_precision_recall_by_hand() -> None:
    matrix = confusion_matrix(LABELS, SCORES.argmax(axis=1), 3)
    np.testing.assert_array_equal(matrix, [[2, 1, 0], [1, 1, 0], [0, 0, 1]])
    precision, recall, f1, support = precision_recall_f1(matrix)
    np.testing.assert_allclose(precision, [2 / 3, 1 / 2, 1.0])
    np.testing.assert_allclose(recall, [2 / 3, 1 / 2, 1.0])
    np.testing.assert_allclose(f1, [2 / 3, 1 / 2, 1.0])
    np.testing.assert_array_equal(support, [3, 2, 1])


def test_undefined_ratios_are_zero() -> None:
    matrix = confusion_matrix([0, 0], [0, 0], 3)  # classes 1 and 2 never occur nor get predicted
    precision, recall, f1, support = precision_recall_f1(matrix)
    np.testing.assert_array_equal(precision, [1, 0, 0])
    np.testing.assert_array_equal(recall, [1, 0, 0])
    np.testing.assert_array_equal(f1, [1, 0, 0])
    np.testing.assert_array_equal(support, [2, 0, 0])


def test_top_k_accuracy_by_hand() -> None:
    assert top_k_accuracy(LABELS, SCORES, 1) == pytest.approx(4 / 6)
    assert top_k_accuracy(LABELS, SCORES, 2) == pytest.approx(5 / 6)
    assert top_k_accuracy(LABELS, SCORES, 3) == 1.0
    assert top_k_accuracy(LABELS, SCORES, 5) == 1.0  # k larger than the class count
    assert top_k_accuracy(np.eye(3)[LABELS], SCORES, 1) == pytest.approx(4 / 6)  # one-hot labels
    assert top_k_accuracy([], np.zeros((0, 3)), 1) == 0.0


def test_cross_entropy_by_hand() -> None:
    expected = -np.mean(np.log(SCORES[np.arange(6), LABELS]))
    assert categorical_crossentropy(LABELS, SCORES) == pytest.approx(expected)
    assert categorical_crossentropy(np.eye(3)[LABELS], SCORES) == pytest.approx(expected)
    # Keras clips probabilities, so a confident mistake costs -log(1e-7), not infinity.
    assert categorical_crossentropy([1], [[1.0, 0.0]]) == pytest.approx(-np.log(1e-7), rel=1e-6)


def test_agreement_with_keras() -> None:
    import keras

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 7))
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, 7, 50)
    onehot32 = np.eye(7, dtype=np.float32)[labels]
    onehot = np.eye(7)[labels]
    assert categorical_crossentropy(labels, probs) == pytest.approx(
        float(np.mean(keras.losses.categorical_crossentropy(onehot, probs))), rel=1e-5)
    for k in (1, 3, 5):
        metric = keras.metrics.TopKCategoricalAccuracy(k=k)
        metric.update_state(onehot32, probs)
        assert top_k_accuracy(labels, probs, k) == pytest.approx(float(metric.result()), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=40))))
def test_confusion_matrix_properties(case: tuple[int, list[tuple[int, int]]]) -> None:
    k, pairs = case
    true, pred = (np.array(v) for v in zip(*pairs, strict=True))
    matrix = confusion_matrix(true, pred, k)
    assert matrix.sum() == len(pairs)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(true, minlength=k))
    np.testing.assert_array_equal(matrix.sum(axis=0), np.bincount(pred, minlength=k))
    assert np.trace(matrix) == int((true == pred).sum())
    precision, recall, f1, _ = precision_recall_f1(matrix)
    assert np.all((precision >= 0) & (precision <= 1) & (recall >= 0) & (recall <= 1) & (f1 <= 1))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k), min_size=1, max_size=20))))
def test_top_k_is_monotonic_in_k(case: tuple[int, list[list[float]]]) -> None:
    k, rows = case
    scores = np.array(rows)
    labels = np.arange(len(rows)) % k
    values = [top_k_accuracy(labels, scores, j) for j in range(1, k + 1)]
    assert values == sorted(values) and values[-1] == 1.0
    assert values[0] == pytest.approx(float(np.mean(scores.argmax(axis=1) == labels)))


def test_report_text_json_and_png(tmp_path: Path) -> None:
    report = evaluate_predictions(LABELS, SCORES, ["cat", "dog", "eel"], top_k=2)
    assert report.accuracy == pytest.approx(4 / 6) and report.top_k_accuracy == pytest.approx(5 / 6)
    assert report.num_images == 6
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].startswith("Evaluation Loss: ") and lines[1] == "Evaluation Top 2 accuracy: 0.8333"
    assert any(line.split() == ["cat", "0.6667", "0.6667", "0.6667", "3"] for line in lines)
    assert any(line.split()[:2] == ["accuracy", "0.6667"] for line in lines)
    assert "Confusion Matrix" in text
    assert any(line.split() == ["dog", "1", "1", "0"] for line in lines)

    write_report_json(tmp_path / "evaluation.json", report)
    data = json.loads((tmp_path / "evaluation.json").read_text())
    assert data["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert data["per_class"]["eel"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert data["top_k"] == 2 and data["loss"] == pytest.approx(report.loss)

    write_confusion_png(tmp_path / "confusion_matrix.png", report.confusion_matrix(), report.class_names)
    with Image.open(tmp_path / "confusion_matrix.png") as png:
        assert png.format == "PNG" and min(png.size) >= 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.png", "evaluation.json"]


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="class names"):
        evaluate_predictions(LABELS, SCORES, ["a", "b"])
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="must be 3x3"):
        write_confusion_png("unused.png", np.zeros((2, 2)), ["a", "b", "c"])
