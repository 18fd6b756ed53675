"""MaskRCNN's training graph as one differentiable TensorFlow function (DETECTORS-TWO-STAGE.md §2): images and
ground truth in, the five loss terms out, usable under ``tf.GradientTape`` in eager mode or a ``tf.function``
training step (a Keras trainer's ``compute_loss`` calls it the same way).

Data layout: ``images`` ``[N, 3, H, W]`` float32 (already normalised), ``gt_boxes`` ``[N, G, 4]`` (y1, x1, y2, x2)
input pixels, ``gt_classes`` ``[N, G]`` int (1..C−1; −1 = padding row), ``gt_mask_crops`` ``[N, G, S, S]`` the GT
masks cropped to their boxes (:func:`~libtlt.archs.mask_rcnn.mask_targets.crop_gt_masks`).

Flow: RPN model → per-level logits and deltas flattened in anchor order → RPN targets and losses; proposals (no
gradient) → box-head sampling → multilevel RoIAlign 7×7 → box head → class and box losses; the first
⌊B·fg_fraction⌋ sampled slots (the foregrounds come first) → RoIAlign R/2 → mask head → the true class's logits
against the mask targets (foreground slots only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from libtlt.archs.mask_rcnn import anchors as anchor_ops
from libtlt.archs.mask_rcnn import losses as loss_ops
from libtlt.archs.mask_rcnn.box_targets import BoxTargetConfig, box_targets
from libtlt.archs.mask_rcnn.mask_targets import mask_targets_tf
from libtlt.archs.mask_rcnn.network import (
    BOX_CROP_SIZE,
    MaskRcnnNetwork,
    feature_key,
    rpn_box_key,
    rpn_class_key,
)
from libtlt.archs.mask_rcnn.proposals import ProposalConfig, multilevel_proposals
from libtlt.archs.mask_rcnn.roi_align import multilevel_roi_align
from libtlt.archs.mask_rcnn.rpn_targets import RpnTargetConfig, batch_rpn_targets
from libtlt.registry import inference_model_saving_view

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class TrainingConfig:
    """The training-only fields of ``maskrcnn_config`` (TAO's defaults)."""

    rpn: RpnTargetConfig = field(default_factory=RpnTargetConfig)
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    boxes: BoxTargetConfig = field(default_factory=BoxTargetConfig)
    loss_weights: loss_ops.LossWeights = field(default_factory=loss_ops.LossWeights)


def _flatten(x: Any, last: int | None = None) -> tf.Tensor:
    """``[N, h, w, A·k]`` → ``[N, h·w·A]`` (k = 1) or ``[N, h·w·A, k]``: the anchors' (H, W, A) order."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    return tf.reshape(x, [n, -1] if last is None else [n, -1, last])


def _rows(x: Any) -> tf.Tensor:
    """``[N, B, ...]`` → ``[N·B, ...]`` for the heads."""
    import tensorflow as tf

    return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))


def _images(x: Any, n: Any, per_image: int) -> tf.Tensor:
    """``[N·B, ...]`` → ``[N, B, ...]``."""
    import tensorflow as tf

    return tf.reshape(x, tf.concat([[n, per_image], tf.shape(x)[1:]], axis=0))


def training_losses(network: MaskRcnnNetwork, images: Any, gt_boxes: Any, gt_classes: Any, gt_mask_crops: Any,
                    config: TrainingConfig, seed: Any = (0, 0), *, training: bool = True) -> dict[str, tf.Tensor]:
    """The five terms of :data:`~libtlt.archs.mask_rcnn.losses.LOSS_NAMES` and their weighted ``total_loss``."""
    import tensorflow as tf

    net = network.config
    levels = net.anchors.levels
    anchors = anchor_ops.multilevel_anchors(net.image_hw, net.anchors)
    seed_pair = tf.cast(tf.reshape(seed, [2]), tf.int32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    gt_classes = tf.cast(gt_classes, tf.int32)
    out = network.rpn(images, training=training)
    scores = {level: _flatten(out[rpn_class_key(level)]) for level in levels}
    deltas = {level: _flatten(out[rpn_box_key(level)], 4) for level in levels}
    labels, target_deltas = batch_rpn_targets(anchor_ops.concatenated(anchors), gt_boxes, gt_classes, config.rpn,
                                              seed_pair)
    all_scores = tf.concat([scores[level] for level in levels], axis=1)
    all_deltas = tf.concat([deltas[level] for level in levels], axis=1)
    terms = {"rpn_score_loss": loss_ops.rpn_score_loss(labels, all_scores, config.rpn.batch_size_per_im),
             "rpn_box_loss": loss_ops.rpn_box_loss(labels, target_deltas, all_deltas,
                                                   [len(anchors[level]) for level in levels])}

    rois, counts = multilevel_proposals(scores, deltas, anchors, net.image_hw, config.proposals)
    sampled = box_targets(rois, counts, gt_boxes, gt_classes, config.boxes, seed_pair + tf.constant([0, 1]))
    features = {level: out[feature_key(level)] for level in levels}
    n = tf.shape(images)[0]
    per_image = config.boxes.batch_size_per_im
    crops = multilevel_roi_align(features, sampled.rois, BOX_CROP_SIZE)
    class_logits, box_deltas = network.box_head(_rows(crops), training=training)
    class_logits, box_deltas = _images(class_logits, n, per_image), _images(box_deltas, n, per_image)
    terms["fast_rcnn_class_loss"] = loss_ops.box_class_loss(sampled.classes, class_logits, sampled.weights)
    terms["fast_rcnn_box_loss"] = loss_ops.box_regression_loss(sampled.classes, sampled.box_targets, box_deltas)

    fg = config.boxes.max_foreground
    mask_rois, mask_classes = sampled.rois[:, :fg], sampled.classes[:, :fg]
    matched = tf.maximum(sampled.matched[:, :fg], 0)
    mask_crops = multilevel_roi_align(features, mask_rois, net.mask_crop_size)
    mask_logits = _images(network.mask_head(_rows(mask_crops), training=training), n, fg)
    chosen = loss_ops.class_slots(mask_logits, mask_classes)  # [N, F, R, R]
    targets = mask_targets_tf(_rows(mask_rois), _rows(tf.gather(gt_boxes, matched, batch_dims=1)),
                              _rows(tf.gather(tf.cast(gt_mask_crops, tf.float32), matched, batch_dims=1)),
                              net.mrcnn_resolution)
    terms["mask_loss"] = loss_ops.mask_loss(_images(targets, n, fg), chosen, tf.cast(mask_classes > 0, tf.float32))
    terms["total_loss"] = loss_ops.total_loss(terms, config.loss_weights)
    return terms


def anchor_count(network: MaskRcnnNetwork) -> int:
    """K, the anchors of all levels (the length of the concatenated RPN outputs)."""
    per_level = anchor_ops.multilevel_anchors(network.config.image_hw, network.config.anchors)
    return int(sum(np.shape(a)[0] for a in per_level.values()))


class MaskRcnnTrainer(keras.Model):
    """What ``fit`` trains: :func:`training_losses` on the network view of the saved inference model (inputs: the
    data pipeline's dict), the five terms tracked as metrics and the layers' regularization added. Never saved."""

    def __init__(self, network: MaskRcnnNetwork, config: TrainingConfig, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(name="mask_rcnn_trainer", **kwargs)
        self.network = network
        self.rpn_model, self.box_model, self.mask_model = network.models  # tracked: their weights are trained
        self.config = config
        self.seed = int(seed)
        self.draws = self.add_weight(name="draws", shape=(), dtype="int64", initializer="zeros", trainable=False)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in loss_ops.LOSS_NAMES}

    def call(self, inputs: Any, training: bool = False) -> Any:
        import tensorflow as tf

        from libtlt.archs.mask_rcnn.data import GT_BOXES, GT_CLASSES, GT_MASKS, IMAGES

        self.draws.assign_add(1)
        seed = tf.stack([tf.constant(self.seed, tf.int32), tf.cast(self.draws, tf.int32)])
        return training_losses(self.network, inputs[IMAGES], inputs[GT_BOXES], inputs[GT_CLASSES], inputs[GT_MASKS],
                               self.config, seed, training=training)

    @property
    def metrics(self) -> list[Any]:
        return [*super().metrics, *self.trackers.values()]

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        import tensorflow as tf

        for name, tracker in self.trackers.items():
            tracker.update_state(y_pred[name])
        total = y_pred["total_loss"]
        if self.losses:
            total += tf.add_n([tf.cast(loss, tf.float32) for loss in self.losses])
        return total


#: Checkpoints save the inference model (the trainer shares its layers).
saving_view = inference_model_saving_view
