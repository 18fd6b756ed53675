"""Spatial transforms as 3×3 matrices, and the box rule (000 §5.1.1, REFERENCE "tlt-augment").

Row-vector convention, as in the manual: ``[x', y', 1] = [x, y, 1] · M``, so a chain of operators
applied first-to-last is the matrix product ``M1 · M2 · ...`` in that order. Coordinates are
continuous pixel coordinates: the image covers ``[0, W] × [0, H]`` and pixel ``i`` spans
``[i, i + 1)``, which is what makes the manual's flip ``x' = W - x`` and its centre ``W / 2`` exact.
W and H are the *output* size; an input of another size is first scaled to it (``resize_matrix``).
"""

from __future__ import annotations

import math

import numpy as np

from tlt_augment.spec import AugmentSpec

Matrix = np.ndarray  # float64, shape (3, 3)


def identity() -> Matrix:
    return np.eye(3)


def resize_matrix(in_width: int, in_height: int, out_width: int, out_height: int) -> Matrix:
    """Scale an ``in_width × in_height`` image onto ``out_width × out_height``."""
    return np.diag([out_width / in_width, out_height / in_height, 1.0])


def rotation_matrix(angle: float, width: int, height: int) -> Matrix:
    """Rotation by ``angle`` radians about the image centre (000 §5.1.1.1)."""
    c, s = math.cos(angle), math.sin(angle)
    xt = height * s / 2.0 - width * c / 2.0 + width / 2.0
    yt = -height * c / 2.0 + height / 2.0 - width * s / 2.0
    return np.array([[c, s, 0.0], [-s, c, 0.0], [xt, yt, 1.0]])


def shear_matrix(ratio_x: float, ratio_y: float, width: int, height: int) -> Matrix:
    """Shear about the image centre (000 §5.1.1.2)."""
    return np.array([[1.0, ratio_y, 0.0], [ratio_x, 1.0, 0.0],
                     [-height * ratio_x / 2.0, -width * ratio_y / 2.0, 1.0]])


def flip_matrix(horizontal: bool, vertical: bool, width: int, height: int) -> Matrix:
    """Mirror left-right and/or top-bottom (000 §5.1.1.3)."""
    h, v = float(horizontal), float(vertical)
    return np.array([[1.0 - 2.0 * h, 0.0, 0.0], [0.0, 1.0 - 2.0 * v, 0.0], [h * width, v * height, 1.0]])


def translation_matrix(tx: float, ty: float) -> Matrix:
    """Shift by ``(tx, ty)`` pixels (000 §5.1.1.4)."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [float(tx), float(ty), 1.0]])


def compose(*matrices: Matrix) -> Matrix:
    """The single matrix applying ``matrices`` in the given order."""
    out = identity()
    for m in matrices:
        out = out @ m
    return out


def spatial_chain(spec: AugmentSpec) -> list[Matrix]:
    """The active spatial operators in the documented order: rotation, flip, shear, translation."""
    w, h = spec.output_width, spec.output_height
    chain = []
    if spec.rotation is not None:
        chain.append(rotation_matrix(spec.rotation, w, h))
    if spec.flip is not None:
        chain.append(flip_matrix(spec.flip[0], spec.flip[1], w, h))
    if spec.shear is not None:
        chain.append(shear_matrix(spec.shear[0], spec.shear[1], w, h))
    if spec.translation is not None:
        chain.append(translation_matrix(*spec.translation))
    return chain


def frame_matrix(spec: AugmentSpec, in_width: int, in_height: int) -> Matrix:
    """Resize to the output size, then every spatial operator: one matrix, one warp per image."""
    resize = resize_matrix(in_width, in_height, spec.output_width, spec.output_height)
    return compose(resize, *spatial_chain(spec))


def apply_to_points(points: np.ndarray, matrix: Matrix) -> np.ndarray:
    """Map ``(..., 2)`` points through ``matrix``."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:2, :2] + matrix[2, :2]


def transform_boxes(boxes: np.ndarray, matrix: Matrix, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The box rule: all four corners through ``matrix``, min/max, clamped to ``[0, W] × [0, H]``.

    Returns the new ``(N, 4)`` boxes ``x1, y1, x2, y2`` rounded to the 2 decimals KITTI files hold,
    and a mask of the boxes that keep a non-zero area at that precision.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1),
                        np.stack([x1, y2], -1), np.stack([x2, y2], -1)], axis=1)  # (N, 4, 2)
    mapped = apply_to_points(corners, matrix)
    low, high = mapped.min(axis=1), mapped.max(axis=1)
    limits = np.array([width, height], dtype=np.float64)
    low = np.clip(low, 0.0, limits)
    high = np.clip(high, 0.0, limits)
    out = np.round(np.concatenate([low, high], axis=1), 2)
    keep = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return out, keep


def to_pixel_affine(matrix: Matrix) -> np.ndarray:
    """``matrix`` as the 2×3 forward map on pixel *indices* (pixel centres at integers) for OpenCV.

    Index ``p`` is continuous coordinate ``p + 0.5``; so ``p' = (p + 0.5)·M - 0.5``. With this shift a
    flip maps column ``i`` exactly onto ``W - 1 - i`` and a resize matches OpenCV's own resize.
    """
    to_continuous = translation_matrix(0.5, 0.5)
    to_index = translation_matrix(-0.5, -0.5)
    full = to_continuous @ matrix @ to_index
    return np.ascontiguousarray(full[:, :2].T)


def is_identity(matrix: Matrix) -> bool:
    return bool(np.allclose(matrix, np.eye(3), rtol=0.0, atol=1e-12))
