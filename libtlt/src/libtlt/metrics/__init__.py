"""Evaluation metrics: classification (top-k accuracy, precision/recall, confusion matrix); detection AP later."""

from __future__ import annotations

from libtlt.metrics.classification import (
    ClassificationReport,
    categorical_crossentropy,
    confusion_matrix,
    evaluate_predictions,
    format_report,
    precision_recall_f1,
    top_k_accuracy,
    write_confusion_png,
    write_report_json,
)

__all__ = [
    "ClassificationReport",
    "categorical_crossentropy",
    "confusion_matrix",
    "evaluate_predictions",
    "format_report",
    "precision_recall_f1",
    "top_k_accuracy",
    "write_confusion_png",
    "write_report_json",
]
