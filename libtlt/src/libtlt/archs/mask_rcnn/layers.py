"""Serializable Keras layers around MaskRCNN's TensorFlow ROI operations, so that the whole inference network is one
flat Keras model that a ``.tlt`` saves and reloads (the layers register themselves under the ``tlt`` package).

* :class:`MultilevelProposals` — per-level RPN outputs → ROIs ``[N, P, 4]`` (:mod:`proposals`; anchors rebuilt from
  the config, so nothing but numbers is serialized); ``with_count`` also returns the valid count ``[N]``.
* :class:`MultilevelRoiAlign` — ``[boxes [N, R, 4], P_min .. P_max]`` → crops ``[N, R, n, n, C]`` (:mod:`roi_align`).
* :class:`GenerateDetections` — ``[rois, class logits, box deltas]`` → ``generate_detections`` ``[N, D, 6]`` rows
  (y1, x1, y2, x2, class, score): softmax, class-specific decode with ``bbox_reg_weights``, clip, per-class NMS,
  top D (TF's combined NMS; the NumPy twin is :func:`decoding.generate_detections`).
* :class:`RoisToBatch` / :class:`BatchToRois` — ``[N, R, ...]`` ↔ ``[N·R, ...]`` for the per-ROI heads.
* :class:`DetectionBoxes` — the boxes of ``generate_detections`` for the mask branch (TAO's SpecialSlice).
"""

from __future__ import annotations

from typing import Any

import keras

from libtlt.archs.mask_rcnn.anchors import AnchorConfig, multilevel_anchors
from libtlt.archs.mask_rcnn.decoding import DETECTION_FIELDS
from libtlt.archs.mask_rcnn.proposals import ProposalConfig, multilevel_proposals
from libtlt.archs.mask_rcnn.roi_align import SAMPLING_RATIO, multilevel_roi_align


@keras.saving.register_keras_serializable(package="tlt")
class MultilevelProposals(keras.layers.Layer):
    """``[scores_min..max (NHWC, A), deltas_min..max (NHWC, 4A)]`` → ``rois [N, P, 4]`` (and ``count [N]``)."""

    #: For tlt-prune: the RPN outputs' channels are anchors, never pruned.
    pruned_channels_fixed = True

    def __init__(self, image_hw: Any, anchors: dict[str, Any], proposals: dict[str, Any], with_count: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.anchors = dict(anchors)
        self.proposals = dict(proposals)
        self.with_count = bool(with_count)
        config = AnchorConfig(**{**self.anchors,
                                 "aspect_ratios": tuple(tuple(p) for p in self.anchors["aspect_ratios"])})
        self._config = config
        self._proposal_config = ProposalConfig(**self.proposals)
        self._anchors = multilevel_anchors(self.image_hw, config)

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        levels = self._config.levels
        scores, deltas = inputs[:len(levels)], inputs[len(levels):]
        n = tf.shape(scores[0])[0]
        per_level_scores = {lv: tf.reshape(s, [n, -1]) for lv, s in zip(levels, scores, strict=True)}
        per_level_deltas = {lv: tf.reshape(d, [n, -1, 4]) for lv, d in zip(levels, deltas, strict=True)}
        rois, count = multilevel_proposals(per_level_scores, per_level_deltas, self._anchors, self.image_hw,
                                           self._proposal_config)
        return [rois, count] if self.with_count else rois

    def compute_output_spec(self, inputs: Any) -> Any:
        batch, p = inputs[0].shape[0], self._proposal_config.post_nms_top_n
        rois = keras.KerasTensor((batch, p, 4))
        return [rois, keras.KerasTensor((batch,), dtype="int32")] if self.with_count else rois

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(image_hw=list(self.image_hw), anchors=self.anchors, proposals=self.proposals,
                      with_count=self.with_count)
        return config


@keras.saving.register_keras_serializable(package="tlt")
class MultilevelRoiAlign(keras.layers.Layer):
    """``[boxes [N, R, 4], features of consecutive levels (NHWC)]`` → ``[N, R, n, n, C]`` (level per box)."""

    #: For tlt-prune: the crops' channels are the first feature level's (the other levels' are kept).
    pruned_channels_follow_input = 1

    def __init__(self, output_size: int, min_level: int, sampling_ratio: int = SAMPLING_RATIO, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_size = int(output_size)
        self.min_level = int(min_level)
        self.sampling_ratio = int(sampling_ratio)

    def call(self, inputs: Any) -> Any:
        boxes, *features = inputs
        by_level = {self.min_level + i: f for i, f in enumerate(features)}
        return multilevel_roi_align(by_level, boxes, self.output_size, self.sampling_ratio)

    def compute_output_spec(self, inputs: Any) -> Any:
        boxes, first = inputs[0], inputs[1]
        n = self.output_size
        return keras.KerasTensor((boxes.shape[0], boxes.shape[1], n, n, first.shape[-1]))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(output_size=self.output_size, min_level=self.min_level, sampling_ratio=self.sampling_ratio)
        return config


@keras.saving.register_keras_serializable(package="tlt")
class GenerateDetections(keras.layers.Layer):
    """``[rois [N, R, 4], class logits [N, R, C], box deltas [N, R, 4C]]`` → ``[N, D, 6]`` (module docstring);
    empty rows are zeros."""

    #: For tlt-prune: the heads' outputs are classes and their deltas, never pruned.
    pruned_channels_fixed = True

    def __init__(self, image_hw: Any, bbox_reg_weights: Any = (10.0, 10.0, 5.0, 5.0), nms_iou: float = 0.5,
                 max_detections: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.bbox_reg_weights = tuple(float(w) for w in bbox_reg_weights)
        self.nms_iou = float(nms_iou)
        self.max_detections = int(max_detections)

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        from libtlt.layers.boxes import decode_deltas_tf

        rois, logits, deltas = (tf.cast(x, tf.float32) for x in inputs)
        n, r = tf.shape(rois)[0], tf.shape(rois)[1]
        c = int(logits.shape[-1])
        probs = tf.nn.softmax(logits, axis=-1)[..., 1:]  # [N, R, C-1]
        d = tf.reshape(deltas, [n, r, c, 4])[:, :, 1:]
        refs = tf.broadcast_to(rois[:, :, None, :], tf.shape(d))
        boxes = decode_deltas_tf(d, refs, self.bbox_reg_weights)
        height, width = float(self.image_hw[0]), float(self.image_hw[1])
        boxes = tf.clip_by_value(boxes, 0.0, tf.constant([height, width, height, width]))
        empty = (rois[..., 2] <= rois[..., 0]) | (rois[..., 3] <= rois[..., 1])
        probs = tf.where(empty[..., None], 0.0, probs)
        k = self.max_detections
        nmsed = tf.image.combined_non_max_suppression(
            boxes, probs, max_output_size_per_class=k, max_total_size=k, iou_threshold=self.nms_iou,
            score_threshold=0.0, pad_per_class=False, clip_boxes=False)
        valid = tf.sequence_mask(nmsed.valid_detections, k, dtype=tf.float32)[..., None]
        rows = tf.concat([nmsed.nmsed_boxes, nmsed.nmsed_classes[..., None] + 1.0, nmsed.nmsed_scores[..., None]],
                         axis=-1)
        return rows * valid

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor((inputs[0].shape[0], self.max_detections, DETECTION_FIELDS))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(image_hw=list(self.image_hw), bbox_reg_weights=list(self.bbox_reg_weights),
                      nms_iou=self.nms_iou, max_detections=self.max_detections)
        return config


@keras.saving.register_keras_serializable(package="tlt")
class DetectionBoxes(keras.layers.Layer):
    """``generate_detections`` ``[N, D, 6]`` → its boxes ``[N, D, 4]`` (no gradient: inference only)."""

    def call(self, detections: Any) -> Any:
        return detections[..., :4]

    def compute_output_spec(self, detections: Any) -> Any:
        return keras.KerasTensor((*detections.shape[:2], 4))


@keras.saving.register_keras_serializable(package="tlt")
class RoisToBatch(keras.layers.Layer):
    """``[N, R, ...]`` → ``[N·R, ...]``."""

    pruned_channels_follow_input = 0  # for tlt-prune: the last axis passes through

    def call(self, x: Any) -> Any:
        import tensorflow as tf

        return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))

    def compute_output_spec(self, x: Any) -> Any:
        first = None if x.shape[0] is None or x.shape[1] is None else x.shape[0] * x.shape[1]
        return keras.KerasTensor((first, *x.shape[2:]))


@keras.saving.register_keras_serializable(package="tlt")
class BatchToRois(keras.layers.Layer):
    """``[N·R, ...]`` → ``[N, R, ...]`` for a fixed ``rois_per_image`` R."""

    pruned_channels_follow_input = 0  # for tlt-prune: the last axis passes through

    def __init__(self, rois_per_image: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rois_per_image = int(rois_per_image)

    def call(self, x: Any) -> Any:
        import tensorflow as tf

        return tf.reshape(x, tf.concat([[-1, self.rois_per_image], tf.shape(x)[1:]], axis=0))

    def compute_output_spec(self, x: Any) -> Any:
        return keras.KerasTensor((None, self.rois_per_image, *x.shape[1:]))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rois_per_image=self.rois_per_image)
        return config
