"""Classification metrics (000 §9.1): loss, top-k accuracy, per-class precision and recall, confusion matrix.

Plain NumPy on ``labels`` (true class indices, shape [N]) and ``scores`` (class probabilities,
shape [N, K]). Undefined ratios (a class never predicted, or absent from the data) count as 0, as
scikit-learn's ``zero_division=0``. Reports are printed as a table in the layout TLT users know and
written as ``evaluation.json`` and ``confusion_matrix.png`` (atomically).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.io.atomic import write_bytes, write_text

#: Keras' probability clipping for the cross-entropy loss.
EPSILON = 1e-7


def _labels(labels: Any) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim == 2:  # one-hot (or smoothed) targets
        array = array.argmax(axis=1)
    if array.ndim != 1:
        raise ValueError(f"labels must be class indices [N] or one-hot [N, K], got shape {array.shape}")
    return array.astype(np.int64)


def _scores(scores: Any, count: int) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != count:
        raise ValueError(f"scores must have shape [{count}, K], got {array.shape}")
    return array


def confusion_matrix(labels: Any, predictions: Any, num_classes: int) -> np.ndarray:
    """``matrix[true, predicted]`` counts (int64, ``num_classes`` × ``num_classes``)."""
    true = _labels(labels)
    pred = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} labels but {pred.size} predictions")
    if true.size and (min(true.min(), pred.min()) < 0 or max(true.max(), pred.max()) >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes})")
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def top_k_accuracy(labels: Any, scores: Any, k: int = 1) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores (ties count against)."""
    true = _labels(labels)
    array = _scores(scores, true.size)
    if true.size == 0:
        return 0.0
    k = max(1, min(int(k), array.shape[1]))
    true_score = array[np.arange(true.size), true]
    # Samples with fewer than k other classes scoring strictly higher are hits; a class tied with the
    # true one and appearing before it in index order is ranked first (as a stable sort would).
    higher = (array > true_score[:, None]).sum(axis=1)
    ties_before = ((array == true_score[:, None]) & (np.arange(array.shape[1]) < true[:, None])).sum(axis=1)
    return float(np.mean(higher + ties_before < k))


def precision_recall_f1(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision TP/(TP+FP), recall TP/(TP+FN), F1 and support (true count) from a confusion matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return precision, recall, f1, support.astype(np.int64)


def categorical_crossentropy(labels: Any, scores: Any) -> float:
    """Mean cross-entropy of probability ``scores`` against ``labels`` (indices or one-hot), as Keras computes it."""
    array = np.asarray(labels)
    count = array.shape[0] if array.ndim else 0
    probs = _scores(scores, count)
    if count == 0:
        return 0.0
    target = np.eye(probs.shape[1])[array.astype(np.int64)] if array.ndim == 1 else array.astype(np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    probs = np.clip(probs, EPSILON, 1.0 - EPSILON)
    return float(np.mean(-(target * np.log(probs)).sum(axis=1)))


@dataclass(frozen=True)
class ClassificationReport:
    """Everything ``tlt-evaluate classification`` reports."""

    class_names: tuple[str, ...]
    loss: float
    top_k: int
    top_k_accuracy: float
    accuracy: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def num_images(self) -> int:
        return int(sum(self.support))

    def confusion_matrix(self) -> np.ndarray:
        return np.asarray(self.confusion, dtype=np.int64).reshape(len(self.class_names), len(self.class_names))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``evaluation.json``)."""
        per_class = {
            name: {"precision": self.precision[i], "recall": self.recall[i], "f1": self.f1[i],
                   "support": self.support[i]}
            for i, name in enumerate(self.class_names)
        }
        return {
            "num_images": self.num_images,
            "loss": self.loss,
            "top_k": self.top_k,
            "top_k_accuracy": self.top_k_accuracy,
            "accuracy": self.accuracy,
            "macro_avg": {"precision": _mean(self.precision), "recall": _mean(self.recall), "f1": _mean(self.f1)},
            "classes": list(self.class_names),
            "per_class": per_class,
            "confusion_matrix": [list(row) for row in self.confusion],
        }


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def evaluate_predictions(labels: Any, scores: Any, class_names: Sequence[str], *, top_k: int = 1,
                         loss: float | None = None) -> ClassificationReport:
    """All metrics for true ``labels`` and probability ``scores`` [N, K]; ``loss`` defaults to the cross-entropy."""
    names = tuple(class_names)
    true = _labels(labels)
    array = _scores(scores, true.size)
    if array.shape[1] != len(names):
        raise ValueError(f"scores have {array.shape[1]} classes, but {len(names)} class names were given")
    matrix = confusion_matrix(true, array.argmax(axis=1) if true.size else np.zeros(0, np.int64), len(names))
    precision, recall, f1, support = precision_recall_f1(matrix)
    k = max(1, min(int(top_k), len(names)))
    return ClassificationReport(
        class_names=names,
        loss=float(loss) if loss is not None else categorical_crossentropy(labels, array),
        top_k=k,
        top_k_accuracy=top_k_accuracy(true, array, k),
        accuracy=top_k_accuracy(true, array, 1),
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        f1=tuple(float(v) for v in f1),
        support=tuple(int(v) for v in support),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )


def format_report(report: ClassificationReport, digits: int = 4) -> str:
    """The evaluation printout: loss, top-k accuracy, the per-class table and the confusion matrix."""
    names = report.class_names
    width = max([len(n) for n in names] + [len("weighted avg")])
    column = max(digits + 3, 9)
    lines = [
        f"Evaluation Loss: {report.loss:.{digits}f}",
        f"Evaluation Top {report.top_k} accuracy: {report.top_k_accuracy:.{digits}f}",
        "",
        " " * width + "".join(h.rjust(column + 1) for h in ("precision", "recall", "f1-score", "support")),
        "",
    ]

    def row(label: str, values: Sequence[float], support: int) -> str:
        cells = "".join(f"{v:.{digits}f}".rjust(column + 1) for v in values)
        return label.rjust(width) + cells + str(support).rjust(column + 1)

    for i, name in enumerate(names):
        lines.append(row(name, (report.precision[i], report.recall[i], report.f1[i]), report.support[i]))
    lines.append("")
    total = report.num_images
    lines.append("accuracy".rjust(width) + " " * (2 * (column + 1)) + f"{report.accuracy:.{digits}f}".rjust(column + 1)
                 + str(total).rjust(column + 1))
    lines.append(row("macro avg", (_mean(report.precision), _mean(report.recall), _mean(report.f1)), total))
    weights = np.asarray(report.support, dtype=np.float64)
    weighted = [float(np.average(v, weights=weights)) if total else 0.0
                for v in (report.precision, report.recall, report.f1)]
    lines.append(row("weighted avg", weighted, total))
    lines += ["", "Confusion Matrix (rows: true class, columns: predicted class)"]
    matrix = report.confusion_matrix()
    cell = max([len(str(int(matrix.max()))) if matrix.size else 1] + [len(n) for n in names]) + 2
    lines.append(" " * width + "".join(n.rjust(cell) for n in names))
    for i, name in enumerate(names):
        lines.append(name.rjust(width) + "".join(str(int(v)).rjust(cell) for v in matrix[i]))
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_report_json(path: str | Path, report: ClassificationReport | dict[str, Any]) -> None:
    """Write ``report`` (or its dict) as JSON, atomically."""
    data = report.to_dict() if isinstance(report, ClassificationReport) else dict(report)
    write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def write_confusion_png(path: str | Path, matrix: Any, class_names: Sequence[str]) -> None:
    """Render the confusion matrix (counts, rows true / columns predicted) as a PNG, atomically."""
    import matplotlib

    matrix = np.asarray(matrix, dtype=np.int64)
    names = list(class_names)
    if matrix.shape != (len(names), len(names)):
        raise ValueError(f"a {len(names)}-class confusion matrix must be {len(names)}x{len(names)}, got {matrix.shape}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    del matplotlib  # the Agg canvas is used directly: no pyplot, no global backend switch
    size = min(4.0 + 0.45 * len(names), 30.0)
    figure = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, labels=names, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=names)
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    axes.set_title("Confusion matrix")
    if len(names) <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            axes.text(j, i, str(value), ha="center", va="center", fontsize=8,
                      color="white" if value > threshold else "black")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes(path, buffer.getvalue())
