"""MaskRCNN inference on a Keras network: images → ``generate_detections`` ``[N, D, 6]`` and the mask head's
probabilities ``[N, D, C, R, R]`` on those detections (DETECTORS-TWO-STAGE.md §2 "Inference outputs").

The RPN and proposals run with the test counts, the box head on the proposals, :func:`decoding.generate_detections`
picks the detections, then the mask head runs on the detected boxes (TAO's second pass, the SpecialSlice branch)
and a sigmoid turns its logits into probabilities; :func:`decoding.paste_masks` places them in the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libtlt.archs.mask_rcnn import anchors as anchor_ops
from libtlt.archs.mask_rcnn.decoding import generate_detections
from libtlt.archs.mask_rcnn.network import BOX_CROP_SIZE, MaskRcnnNetwork, feature_key, rpn_box_key, rpn_class_key
from libtlt.archs.mask_rcnn.proposals import ProposalConfig, multilevel_proposals
from libtlt.archs.mask_rcnn.roi_align import multilevel_roi_align


@dataclass(frozen=True)
class InferenceConfig:
    """``test_rpn_pre_nms_topn`` / ``test_rpn_post_nms_topn`` / ``test_rpn_nms_thresh``, ``test_nms``,
    ``test_detections_per_image`` and ``bbox_reg_weights``."""

    proposals: ProposalConfig = field(default_factory=lambda: ProposalConfig(1000, 1000, 0.7, 0.0))
    nms_iou: float = 0.5
    detections_per_image: int = 100
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)


def detect(network: MaskRcnnNetwork, images: Any, config: InferenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(detections [N, D, 6] float32, mask probabilities [N, D, C, R, R] float32)`` of NCHW ``images``."""
    import tensorflow as tf

    net = network.config
    levels = net.anchors.levels
    anchors = anchor_ops.multilevel_anchors(net.image_hw, net.anchors)
    out = network.rpn(images, training=False)
    n = int(out[feature_key(levels[0])].shape[0])
    scores = {level: tf.reshape(out[rpn_class_key(level)], [n, -1]) for level in levels}
    deltas = {level: tf.reshape(out[rpn_box_key(level)], [n, -1, 4]) for level in levels}
    rois, _ = multilevel_proposals(scores, deltas, anchors, net.image_hw, config.proposals)
    features = {level: out[feature_key(level)] for level in levels}
    per_image = config.proposals.post_nms_top_n
    crops = multilevel_roi_align(features, rois, BOX_CROP_SIZE)
    logits, box_deltas = network.box_head(tf.reshape(crops, [n * per_image, *crops.shape[2:]]), training=False)
    detections = generate_detections(rois.numpy(), np.reshape(logits, (n, per_image, -1)),
                                     np.reshape(box_deltas, (n, per_image, -1)), net.image_hw,
                                     bbox_reg_weights=config.bbox_reg_weights, nms_iou=config.nms_iou,
                                     max_detections=config.detections_per_image)
    d = config.detections_per_image
    mask_crops = multilevel_roi_align(features, detections[..., :4], net.mask_crop_size)
    mask_logits = network.mask_head(tf.reshape(mask_crops, [n * d, *mask_crops.shape[2:]]), training=False)
    probs = tf.sigmoid(tf.reshape(mask_logits, [n, d, *mask_logits.shape[1:]]))
    return detections, probs.numpy().astype(np.float32)
