"""MaskRCNN as one flat Keras inference model (what checkpoints and ``.tlt`` files hold), and the view of its layers
that the training graph (:func:`~libtlt.archs.mask_rcnn.training.training_losses`) runs.

Inference graph (DETECTORS-TWO-STAGE.md §2 "Inference outputs"): ``Input`` ``[N, 3, H, W]`` → ResNet + FPN + RPN
head → :class:`~layers.MultilevelProposals` (``multilevel_proposals``, the test counts) →
:class:`~layers.MultilevelRoiAlign` 7×7 (``box_roi_align``) → box head → :class:`~layers.GenerateDetections`
(``generate_detections`` ``[N, D, 6]``: y1, x1, y2, x2, class, score in input pixels) → its boxes →
RoIAlign R/2 (``mask_roi_align``) → mask head → sigmoid → ``mask_fcn_probs`` ``[N, D, C, R, R]``, the equivalent of
TLT's ``mask_fcn_logits/BiasAdd`` (Keras forbids ``/`` in names; values are probabilities, as TAO's deployed graph).

:func:`network_view` pulls the trunk (image → features and RPN outputs, the inputs of the proposal and RoIAlign
layers), the box head and the mask head (up to the logits) out of that model as three functional models that share
its layer objects, hence its weights: training them trains the model that is saved.
"""

from __future__ import annotations

from typing import Any

import keras

from libtlt.archs.mask_rcnn import layers as mlayers
from libtlt.archs.mask_rcnn import network as net
from libtlt.archs.mask_rcnn.inference import InferenceConfig

PROPOSALS, BOX_ROI_ALIGN, MASK_ROI_ALIGN = "multilevel_proposals", "box_roi_align", "mask_roi_align"
DETECTIONS, MASKS = "generate_detections", "mask_fcn_probs"
OUTPUTS = (DETECTIONS, MASKS)


def _anchor_settings(config: net.MaskRcnnNetworkConfig) -> dict[str, Any]:
    a = config.anchors
    return {"min_level": a.min_level, "max_level": a.max_level, "num_scales": a.num_scales,
            "aspect_ratios": [list(p) for p in a.aspect_ratios], "anchor_scale": a.anchor_scale}


def build_inference_model(config: net.MaskRcnnNetworkConfig, inference: InferenceConfig) -> keras.Model:
    """The flat inference model (module docstring), fresh weights."""
    inputs, features, scores, boxes = net.rpn_graph(config)
    levels = config.anchors.levels
    p = inference.proposals
    rois = mlayers.MultilevelProposals(
        config.image_hw, _anchor_settings(config),
        {"pre_nms_top_n": p.pre_nms_top_n, "post_nms_top_n": p.post_nms_top_n, "nms_iou": p.nms_iou,
         "min_size": p.min_size}, name=PROPOSALS)([*(scores[lv] for lv in levels), *(boxes[lv] for lv in levels)])
    level_features = [features[lv] for lv in levels]
    crops = mlayers.MultilevelRoiAlign(net.BOX_CROP_SIZE, levels[0], name=BOX_ROI_ALIGN)([rois, *level_features])
    logits, deltas = net.box_head(mlayers.RoisToBatch(name="box_rois_to_batch")(crops), config)
    per_image = p.post_nms_top_n
    logits = mlayers.BatchToRois(per_image, name="class_logits_per_image")(logits)
    deltas = mlayers.BatchToRois(per_image, name="box_deltas_per_image")(deltas)
    detections = mlayers.GenerateDetections(config.image_hw, inference.bbox_reg_weights, inference.nms_iou,
                                            inference.detections_per_image, name=DETECTIONS)([rois, logits, deltas])
    det_boxes = mlayers.DetectionBoxes(name="detection_boxes")(detections)
    mask_crops = mlayers.MultilevelRoiAlign(config.mask_crop_size, levels[0], name=MASK_ROI_ALIGN)(
        [det_boxes, *level_features])
    mask_logits = net.mask_head(mlayers.RoisToBatch(name="mask_rois_to_batch")(mask_crops), config)
    probs = keras.layers.Activation("sigmoid", name="mask_sigmoid")(mask_logits)
    masks = mlayers.BatchToRois(inference.detections_per_image, name=MASKS)(probs)
    return keras.Model(inputs, [detections, masks], name="mask_rcnn")


def network_view(model: keras.Model, config: net.MaskRcnnNetworkConfig) -> net.MaskRcnnNetwork:
    """The trunk, box head and mask head of the flat ``model`` as functional models sharing its layers."""
    levels = config.anchors.levels
    proposal_inputs = model.get_layer(PROPOSALS).input
    scores, boxes = proposal_inputs[:len(levels)], proposal_inputs[len(levels):]
    features = model.get_layer(BOX_ROI_ALIGN).input[1:]
    outputs: dict[str, Any] = {}
    for i, level in enumerate(levels):
        outputs[net.feature_key(level)] = features[i]
        outputs[net.rpn_class_key(level)] = scores[i]
        outputs[net.rpn_box_key(level)] = boxes[i]
    rpn = keras.Model(model.inputs[0], outputs, name="mask_rcnn_rpn")

    channels = int(features[0].shape[-1])
    crops = keras.Input((net.BOX_CROP_SIZE, net.BOX_CROP_SIZE, channels), name="box_crops")
    x = crops
    for name in net.BOX_HEAD_LAYERS:
        x = model.get_layer(name)(x)
    box_head = keras.Model(crops, [model.get_layer(net.CLASS_PREDICT)(x), model.get_layer(net.BOX_PREDICT)(x)],
                           name="mask_rcnn_box_head")

    size = config.mask_crop_size
    mask_crops = keras.Input((size, size, channels), name="mask_crops")
    y = mask_crops
    for name in (*net.MASK_CONVS, net.MASK_DECONV, net.MASK_LOGITS, net.MASK_LOGITS_NCHW):
        y = model.get_layer(name)(y)
    mask_head = keras.Model(mask_crops, y, name="mask_rcnn_mask_head")
    return net.MaskRcnnNetwork(config, rpn, box_head, mask_head)
