"""MaskRCNN's per-level FPN anchors (DETECTORS-TWO-STAGE.md §2 "Anchors per level").

Level l has stride 2^l and a feature map of ceil(H/2^l) × ceil(W/2^l) cells with centres at stride/2 + k·stride.
Each cell has A = num_scales·len(aspect_ratios) anchors, octave outer and aspect pair inner: base size
anchor_scale·2^l·2^(octave/num_scales), half-size (base·ax/2, base·ay/2) for the (x-factor, y-factor) pair. Rows
come in (H, W, A) row-major order per level and levels in order min_level..max_level, which is the order the RPN
head's per-level outputs flatten to. Boxes are MaskRCNN's ``(y1, x1, y2, x2)`` in input pixels, continuous
coordinates (height = y2 − y1), not clipped: every anchor takes part in the RPN targets, inside the image or not.

The grid itself is :func:`libtlt.layers.boxes.fpn_level_anchors` (shared with RetinaNet-style detectors); this
module fixes MaskRCNN's coordinate order and the per-level bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from libtlt.layers import boxes as box_ops

#: TAO's default ``aspect_ratios`` "[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]" as (x-factor, y-factor) pairs.
DEFAULT_ASPECT_RATIOS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))


@dataclass(frozen=True)
class AnchorConfig:
    """The anchor fields of ``maskrcnn_config`` (already parsed from their string literals)."""

    min_level: int = 2
    max_level: int = 6
    num_scales: int = 1
    aspect_ratios: tuple[tuple[float, float], ...] = DEFAULT_ASPECT_RATIOS
    anchor_scale: float = 8.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_level <= self.max_level:
            raise ValueError(f"need 1 <= min_level <= max_level, got {self.min_level}, {self.max_level}")
        if self.num_scales < 1 or self.anchor_scale <= 0 or not self.aspect_ratios:
            raise ValueError("num_scales must be >= 1, anchor_scale > 0 and aspect_ratios non-empty")
        if any(len(pair) != 2 or min(pair) <= 0 for pair in self.aspect_ratios):
            raise ValueError(f"aspect_ratios must be (x, y) pairs > 0, got {self.aspect_ratios}")

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(range(self.min_level, self.max_level + 1))

    @property
    def num_anchors(self) -> int:
        """A, the anchors per cell (the RPN head's ``rpn-class`` channels)."""
        return self.num_scales * len(self.aspect_ratios)


def feature_hw(image_hw: Sequence[int], level: int) -> tuple[int, int]:
    """(fh, fw) of level ``level`` for an H×W input ('same' padding: ceil division by 2^level)."""
    [(fh, fw)] = box_ops.feature_sizes(image_hw, [2 ** level])
    return fh, fw


def level_anchors(image_hw: Sequence[int], level: int, config: AnchorConfig) -> np.ndarray:
    """``(fh·fw·A, 4)`` float32 ``(y1, x1, y2, x2)`` anchors of one level, (H, W, A) row-major."""
    xyxy = box_ops.fpn_level_anchors(image_hw, level, anchor_scale=config.anchor_scale,
                                     num_scales=config.num_scales, aspect_ratios=config.aspect_ratios)
    return box_ops.swap_xy(xyxy).astype(np.float32)


def multilevel_anchors(image_hw: Sequence[int], config: AnchorConfig) -> dict[int, np.ndarray]:
    """``{level: anchors}`` for every level min_level..max_level (see :func:`level_anchors`)."""
    return {level: level_anchors(image_hw, level, config) for level in config.levels}


def concatenated(per_level: dict[int, np.ndarray]) -> np.ndarray:
    """All levels' rows in level order: the layout of the concatenated RPN outputs and targets."""
    return np.concatenate([per_level[level] for level in sorted(per_level)], axis=0)
