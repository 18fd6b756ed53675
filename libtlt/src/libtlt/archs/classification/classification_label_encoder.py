"""Classification targets and decoding: class index → (smoothed) one-hot; softmax → class + confidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassificationLabelEncoder:
    """Class indices → one-hot targets, with label smoothing ``s``: ``(1 - s) · onehot + s / N``.

    Works on NumPy arrays and TensorFlow tensors alike (the input pipeline calls it inside
    ``tf.data``).
    """

    num_classes: int
    label_smoothing: float = 0.0

    def __call__(self, labels: Any) -> Any:
        if isinstance(labels, np.ndarray | Sequence | int):
            onehot = np.eye(self.num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
        else:
            import tensorflow as tf

            onehot = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes, dtype=tf.float32)
        return self.smooth(onehot)

    def smooth(self, onehot: Any) -> Any:
        """Apply label smoothing to targets that are already one-hot (or mixed by mixup)."""
        if self.label_smoothing <= 0:
            return onehot
        return onehot * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes


@dataclass(frozen=True)
class Classification:
    """One image's decoded prediction."""

    class_index: int
    class_name: str
    confidence: float


@dataclass(frozen=True)
class ClassificationDecoder:
    """Softmax outputs ``[N, num_classes]`` → the best class and its confidence per image."""

    classes: Sequence[str] | None = None

    def __call__(self, probabilities: Any) -> list[Classification]:
        probs = np.asarray(probabilities, dtype=np.float32)
        if probs.ndim != 2:
            raise ValueError(f"expected softmax outputs of shape [N, classes], got {probs.shape}")
        best = probs.argmax(axis=1)
        return [
            Classification(int(k), self.classes[k] if self.classes else str(int(k)), float(probs[i, k]))
            for i, k in enumerate(best)
        ]

    def top_k(self, probabilities: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best class indices per image (best first) and their probabilities."""
        probs = np.asarray(probabilities, dtype=np.float32)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(probs, order, axis=1)
