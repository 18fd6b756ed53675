"""DetectNet_v2 training targets from boxes: the NumPy bbox rasterizer (``libtlt.layers.bbox_rasterizer``).

:class:`DetectNetLabelEncoder` turns one image's boxes (output-canvas pixels) and class indices into

* the ``output_cov`` target ``[C, H, W]`` (coverage), and
* the ``output_bbox`` target ``[5C, H, W]``: the ``4C`` box distance channels (class-major ``L, T, R, B``,
  divided by ``scale``) followed by the ``C`` normalized-coverage channels that weight the bbox L1 cost
  (:mod:`detectnet_v2_loss` splits them again).

Inside ``tf.data`` it runs through ``tf.numpy_function`` (:meth:`DetectNetLabelEncoder.tf_encode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libtlt.layers.bbox_rasterizer import DEFAULT_DEADZONE_RADIUS, TargetClassConfig, rasterize


@dataclass(frozen=True)
class DetectNetLabelEncoder:
    """Rasterizes boxes for a ``grid_h × grid_w`` output grid of ``len(class_configs)`` classes."""

    class_configs: Sequence[TargetClassConfig]
    grid_h: int
    grid_w: int
    stride: int = 16
    scale: float = 35.0
    offset: float = 0.5
    deadzone_radius: float = DEFAULT_DEADZONE_RADIUS

    @property
    def num_classes(self) -> int:
        return len(self.class_configs)

    def encode(self, boxes: Any, class_ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """(cov ``[C, H, W]``, bbox + cov_norm ``[5C, H, W]``), float32; class ids < 0 are ignored."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = np.asarray(class_ids).reshape(-1)
        keep = ids >= 0
        targets = rasterize(b[keep], ids[keep], num_classes=self.num_classes, grid_h=self.grid_h,
                            grid_w=self.grid_w, class_configs=self.class_configs, stride=self.stride,
                            deadzone_radius=self.deadzone_radius, scale=self.scale, offset=self.offset,
                            dtype=np.float32)
        bbox = np.concatenate([targets.bbox, targets.cov_norm], axis=0).astype(np.float32)
        return targets.cov.astype(np.float32), bbox

    def tf_encode(self, boxes: Any, class_ids: Any) -> tuple[Any, Any]:
        """:meth:`encode` as a TensorFlow op (static output shapes)."""
        import tensorflow as tf

        cov, bbox = tf.numpy_function(self.encode, [boxes, class_ids], [tf.float32, tf.float32], stateful=False)
        c = self.num_classes
        cov = tf.ensure_shape(cov, [c, self.grid_h, self.grid_w])
        bbox = tf.ensure_shape(bbox, [5 * c, self.grid_h, self.grid_w])
        return cov, bbox
