"""MaskRCNN → one plugin-free ONNX graph: standard ops (TopK, NonMaxSuppression, RoiAlign, NonZero, ScatterND) where
TAO's graph runs its MultilevelProposeROI / MultilevelCropAndResize / GenerateDetection / SpecialSlice TensorRT
plugins, which nothing but TensorRT runs.

Stitched like FasterRCNN's export (:mod:`libtlt.archs.faster_rcnn.export`): the convolutional parts are tf2onnx
conversions of sub-models cut out of the given Keras model by layer name (so they share its weights whatever built
it: fresh, trained, pruned, loaded), the parts between them are written here with the parameters read from the
model's own ROI layers, and each part equals the Keras layer it replaces (tests/archs/test_mask_rcnn_export.py feeds
both the same tensors):

1. ``trunk/``: image → FPN levels ``P<l>`` (NCHW) and the per-level ``rpn-class`` / ``rpn-box`` outputs.
2. ``proposals/`` (:class:`~layers.MultilevelProposals`): per level TopK(pre_nms_top_n) of the logits, decode with
   weights 1 and the log-size clamp, clip to [0, H] × [0, W], ``min_size`` filter, NonMaxSuppression keeping
   post_nms_top_n; then the levels' kept boxes merged by TopK → ROIs ``[N, P, 4]`` (y1, x1, y2, x2), zero rows last.
3. ``box_roi_align/`` (:class:`~layers.MultilevelRoiAlign`): each ROI's level k = ⌊log2(√(h·w)/224)⌋ + 4 clamped to
   the levels; per level NonZero picks its ROIs, RoiAlign (avg, sampling ratio 2) pools them from ``P<k>``, ScatterND
   puts the crops back in ROI order → ``[N·P, C, 7, 7]``. RoiAlign runs in ``half_pixel`` mode on coordinates shifted
   by half a feature pixel, which samples exactly where the non-aligned TF version does without the 1-pixel minimum
   ROI size that ``output_half_pixel`` imposes (the finding of :mod:`libtlt.runtime.onnx_two_stage`).
4. ``box_head/``: tf2onnx of crops → ``class-predict`` logits and ``box-predict`` deltas.
5. ``detections/`` (:class:`~layers.GenerateDetections`): softmax, class-specific decode with ``bbox_reg_weights``,
   clip, per-class NonMaxSuppression, the best D over all classes → ``generate_detections`` ``[N, D, 6]`` rows
   (y1, x1, y2, x2, class, score) in input pixels, zero rows after the last detection.
6. ``mask_roi_align/`` + ``mask_head/``: the detections' boxes pooled as in 3 at R/2, the mask head, a sigmoid →
   ``mask_fcn_logits/BiasAdd`` ``[N, D, C, R, R]``: TAO's output name, holding probabilities in [0, 1] (the value
   range of TAO's deployed output too; the ``.tlt`` calls the same tensor ``mask_fcn_probs``).

Every shape is static except the batch N (and the per-level ROI counts inside step 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper

from libtlt.archs.mask_rcnn import network as net
from libtlt.archs.mask_rcnn.decoding import DETECTION_FIELDS
from libtlt.archs.mask_rcnn.layers import GenerateDetections, MultilevelProposals, MultilevelRoiAlign
from libtlt.archs.mask_rcnn.model import BOX_ROI_ALIGN, DETECTIONS, MASK_ROI_ALIGN, PROPOSALS
from libtlt.archs.mask_rcnn.roi_align import CANONICAL_LEVEL, CANONICAL_SIZE
from libtlt.layers.boxes import BBOX_EXP_CLIP
from libtlt.runtime.onnx_nms import FILL_SCORE, GraphBuilder
from libtlt.runtime.onnx_two_stage import (
    ROI_ALIGN_MODE,
    SCORE_FLOOR,
    gather_rows,
    non_max_suppression,
    rank_kept,
    slice_axis,
)
from libtlt.runtime.tf2onnx_convert import canonical_initializers, check_standard, convert_keras, prefixed

__all__ = ["DEPLOYED_OUTPUTS", "INTERMEDIATE_OUTPUTS", "MASKS_OUTPUT", "OPSETS", "to_onnx"]

#: Opsets the pieces are written for (RoiAlign's coordinate_transformation_mode needs 16).
OPSETS = (16, 17)
#: TAO's name of the mask output (``/`` is allowed in ONNX names, not in Keras layer names).
MASKS_OUTPUT = "mask_fcn_logits/BiasAdd"
DEPLOYED_OUTPUTS = (DETECTIONS, MASKS_OUTPUT)
#: Extra outputs of ``with_intermediate=True`` besides the features ``P<l>`` (NCHW): the stages' results.
INTERMEDIATE_OUTPUTS = ("rois", "class_logits", "box_deltas")
_BOX_CROPS, _MASK_CROPS = "box_crops", "mask_crops"
_LOGITS, _DELTAS, _MASK_PROBS = "class_logits", "box_deltas", "mask_probs"


@dataclass(frozen=True)
class _Parts:
    """The model's ROI layers and sizes."""

    proposals: MultilevelProposals
    box_align: MultilevelRoiAlign
    mask_align: MultilevelRoiAlign
    detections: GenerateDetections
    image_chw: tuple[int, int, int]
    levels: tuple[int, ...]
    channels: int
    num_classes: int  # background included
    mask_size: int

    @property
    def rois_per_image(self) -> int:
        return int(self.proposals._proposal_config.post_nms_top_n)


def _layer(model: keras.Model, name: str, kind: type) -> Any:
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise ValueError(f"the model has no '{name}' layer: not a MaskRCNN inference model") from None
    if not isinstance(layer, kind):
        raise ValueError(f"the model's '{name}' layer is a {type(layer).__name__}, not a {kind.__name__}")
    return layer


def _parts(model: keras.Model) -> _Parts:
    proposals = _layer(model, PROPOSALS, MultilevelProposals)
    box_align = _layer(model, BOX_ROI_ALIGN, MultilevelRoiAlign)
    mask_align = _layer(model, MASK_ROI_ALIGN, MultilevelRoiAlign)
    detections = _layer(model, DETECTIONS, GenerateDetections)
    chw = tuple(int(d) for d in model.inputs[0].shape[1:])
    levels = proposals._config.levels
    features = box_align.input[1:]
    if len(features) != len(levels) or box_align.min_level != levels[0] or mask_align.min_level != levels[0]:
        raise ValueError(f"the ROI layers pool levels from {box_align.min_level} ({len(features)} of them), the "
                         f"proposals use {list(levels)}")
    if tuple(proposals.image_hw) != chw[1:] or tuple(detections.image_hw) != chw[1:]:
        raise ValueError(f"image size mismatch: input {chw[1:]}, proposals {proposals.image_hw}, detections "
                         f"{detections.image_hw}")
    masks = model.outputs[1].shape  # [N, D, C, R, R]
    return _Parts(proposals, box_align, mask_align, detections, (chw[0], chw[1], chw[2]), tuple(levels),
                  int(features[0].shape[-1]), int(masks[2]), int(masks[3]))


# --------------------------------------------------------------------------------------------- Keras sub-models

def _trunk_model(model: keras.Model, parts: _Parts) -> tuple[keras.Model, list[str]]:
    """Image → (P<l> NCHW for every level, rpn-class and rpn-box per level), with the output names."""
    features = model.get_layer(BOX_ROI_ALIGN).input[1:]
    rpn = model.get_layer(PROPOSALS).input  # [scores per level, boxes per level], NHWC
    nchw = [keras.layers.Permute((3, 1, 2), name=f"export_P{level}_nchw")(f)
            for level, f in zip(parts.levels, features, strict=True)]
    names = [*(net.feature_key(lv) for lv in parts.levels), *(net.rpn_class_key(lv) for lv in parts.levels),
             *(net.rpn_box_key(lv) for lv in parts.levels)]
    return keras.Model(model.inputs[0], [*nchw, *rpn], name="mask_rcnn_export_trunk"), names


def _head_model(model: keras.Model, layer_names: Sequence[str], size: int, channels: int, input_name: str,
                name: str) -> keras.Model:
    """NCHW crops ``[M, C, size, size]`` → the named layers applied in order (they share the model's weights)."""
    crops = keras.Input((channels, size, size), name=input_name)
    x = keras.layers.Permute((2, 3, 1), name=f"{name}_nhwc")(crops)
    return keras.Model(crops, _apply(model, layer_names, x), name=name)


def _apply(model: keras.Model, layer_names: Sequence[str], x: Any) -> Any:
    for layer_name in layer_names:
        x = model.get_layer(layer_name)(x)
    return x


def _box_head_model(model: keras.Model, parts: _Parts) -> keras.Model:
    crops = keras.Input((parts.channels, net.BOX_CROP_SIZE, net.BOX_CROP_SIZE), name=_BOX_CROPS)
    x = _apply(model, net.BOX_HEAD_LAYERS, keras.layers.Permute((2, 3, 1), name="box_crops_nhwc")(crops))
    return keras.Model(crops, [model.get_layer(net.CLASS_PREDICT)(x), model.get_layer(net.BOX_PREDICT)(x)],
                       name="mask_rcnn_export_box_head")


def _mask_head_model(model: keras.Model, parts: _Parts) -> keras.Model:
    layers = (*net.MASK_CONVS, net.MASK_DECONV, net.MASK_LOGITS, net.MASK_LOGITS_NCHW, "mask_sigmoid")
    return _head_model(model, layers, parts.mask_align.output_size, parts.channels, _MASK_CROPS,
                       "mask_rcnn_export_mask_head")


# --------------------------------------------------------------------------------------------- ONNX pieces

def _decode(g: GraphBuilder, deltas: str, refs: str, weights: Sequence[float], image_hw: tuple[int, int],
            name: str) -> str:
    """(ty, tx, th, tw) ÷ weights against (y1, x1, y2, x2) ``refs`` (broadcast) → clipped corners, in the order of
    operations of ``libtlt.layers.boxes.decode_deltas_tf`` (continuous sizes, log-size clamp)."""
    lo, hi = slice_axis(g, refs, 0, 2, -1, f"{name}_ref_lo"), slice_axis(g, refs, 2, 4, -1, f"{name}_ref_hi")
    size = g.one("Sub", [hi, lo], f"{name}_ref_size")
    centre = g.one("Add", [lo, g.one("Div", [size, g.const(f"{name}_two", 2.0, np.float32)], f"{name}_ref_half")],
                   f"{name}_ref_centre")
    scale_xy = g.const(f"{name}_scale_yx", [1.0 / weights[0], 1.0 / weights[1]], np.float32)
    scale_wh = g.const(f"{name}_scale_hw", [1.0 / weights[2], 1.0 / weights[3]], np.float32)
    t_xy = g.one("Mul", [slice_axis(g, deltas, 0, 2, -1, f"{name}_t_yx"), scale_xy], f"{name}_t_yx_scaled")
    t_wh = g.one("Mul", [slice_axis(g, deltas, 2, 4, -1, f"{name}_t_hw"), scale_wh], f"{name}_t_hw_scaled")
    t_wh = g.one("Min", [t_wh, g.const(f"{name}_clamp", BBOX_EXP_CLIP, np.float32)], f"{name}_t_hw_clamped")
    middle = g.one("Add", [g.one("Mul", [t_xy, size], f"{name}_offset"), centre], f"{name}_centre")
    extent = g.one("Mul", [g.one("Exp", [t_wh], f"{name}_factor"), size], f"{name}_size")
    half = g.one("Div", [extent, g.const(f"{name}_two_b", 2.0, np.float32)], f"{name}_half")
    corners = g.one("Concat", [g.one("Sub", [middle, half], f"{name}_lo"), g.one("Add", [middle, half], f"{name}_hi")],
                    f"{name}_corners", axis=-1)
    height, width = image_hw
    low = g.one("Max", [corners, g.const(f"{name}_zero", 0.0, np.float32)], f"{name}_clip_low")
    return g.one("Min", [low, g.const(f"{name}_limits", [height, width, height, width], np.float32)], f"{name}_boxes")


def _sides(g: GraphBuilder, boxes: str, name: str) -> tuple[str, str]:
    """(height, width) of (y1, x1, y2, x2) boxes, last axis dropped."""
    extent = g.one("Sub", [slice_axis(g, boxes, 2, 4, -1, f"{name}_hi"), slice_axis(g, boxes, 0, 2, -1, f"{name}_lo")],
                   f"{name}_extent")
    axes = g.const(f"{name}_last", [-1], np.int64)
    height = g.one("Squeeze", [slice_axis(g, extent, 0, 1, -1, f"{name}_h1"), axes], f"{name}_height")
    width = g.one("Squeeze", [slice_axis(g, extent, 1, 2, -1, f"{name}_w1"), axes], f"{name}_width")
    return height, width


def _level_proposals(g: GraphBuilder, scores: str, deltas: str, anchors: np.ndarray, parts: _Parts, level: int
                     ) -> tuple[str, str]:
    """One level's kept boxes ``[N, P, 4]`` (zeros past the count) and scores ``[N, P]`` (``FILL_SCORE`` there)."""
    config = parts.proposals._proposal_config
    p, name = config.post_nms_top_n, f"P{level}"
    k = min(config.pre_nms_top_n, int(anchors.shape[0]))
    flat_scores = g.one("Reshape", [scores, g.const(f"{name}_scores_shape", [0, -1], np.int64)], f"{name}_scores")
    flat_deltas = g.one("Reshape", [deltas, g.const(f"{name}_deltas_shape", [0, -1, 4], np.int64)], f"{name}_deltas")
    top, order = g.op("TopK", [flat_scores, g.const(f"{name}_k", [k], np.int64)], f"{name}_top", outputs=2, axis=1)
    picked = gather_rows(g, flat_deltas, order, f"{name}_top_deltas")
    refs = g.one("Gather", [g.const(f"{name}_anchors", anchors, np.float32), order], f"{name}_top_anchors", axis=0)
    boxes = _decode(g, picked, refs, (1.0, 1.0, 1.0, 1.0), parts.image_chw[1:], f"{name}_decode")
    if config.min_size > 0:
        height, width = _sides(g, boxes, f"{name}_side")
        limit = g.const(f"{name}_min_size", config.min_size, np.float32)
        small = g.one("Or", [g.one("Less", [height, limit], f"{name}_short"),
                             g.one("Less", [width, limit], f"{name}_narrow")], f"{name}_small")
        top = g.one("Where", [small, g.const(f"{name}_fill", FILL_SCORE, np.float32), top], f"{name}_scores_kept")
    candidate_scores = g.one("Unsqueeze", [top, g.const(f"{name}_axis1", [1], np.int64)], f"{name}_nms_scores")
    selected = non_max_suppression(g, boxes, candidate_scores, p, config.nms_iou, SCORE_FLOOR, f"{name}_nms")
    kept, index, valid = rank_kept(g, candidate_scores, selected, k, p, [-1, k], f"{name}_kept")
    valid_3 = g.one("Unsqueeze", [valid, g.const(f"{name}_axis2", [2], np.int64)], f"{name}_valid_3")
    kept_boxes = g.one("Where", [valid_3, gather_rows(g, boxes, index, f"{name}_kept_rows"),
                                 g.const(f"{name}_zero", 0.0, np.float32)], f"{name}_kept_boxes")
    kept_scores = g.one("Where", [valid, kept, g.const(f"{name}_fill_kept", FILL_SCORE, np.float32)],
                        f"{name}_kept_scores")
    return kept_boxes, kept_scores


def _proposals(g: GraphBuilder, parts: _Parts) -> str:
    """Step 2 of the module docstring: ROIs ``[N, P, 4]``."""
    anchors = parts.proposals._anchors
    boxes, scores = [], []
    for level in parts.levels:
        b, s = _level_proposals(g, f"trunk/{net.rpn_class_key(level)}", f"trunk/{net.rpn_box_key(level)}",
                                np.asarray(anchors[level], np.float32), parts, level)
        boxes.append(b)
        scores.append(s)
    all_boxes = g.one("Concat", boxes, "all_boxes", axis=1)
    all_scores = g.one("Concat", scores, "all_scores", axis=1)
    top, order = g.op("TopK", [all_scores, g.const("p", [parts.rois_per_image], np.int64)], "merged", outputs=2,
                      axis=1)
    valid = g.one("Unsqueeze", [g.one("Greater", [top, g.const("floor", SCORE_FLOOR, np.float32)], "valid"),
                                g.const("axis2", [2], np.int64)], "valid_3")
    return g.one("Where", [valid, gather_rows(g, all_boxes, order, "merged_rows"), g.const("zero", 0.0, np.float32)],
                 "rois")


def _multilevel_roi_align(g: GraphBuilder, features: dict[int, str], boxes: str, align: MultilevelRoiAlign,
                          channels: int) -> str:
    """Step 3 of the module docstring: ``boxes`` ``[N, R, 4]`` (y1, x1, y2, x2 pixels) → ``[N·R, C, n, n]``."""
    n, levels = align.output_size, sorted(features)
    flat = g.one("Reshape", [boxes, g.const("flat_shape", [-1, 4], np.int64)], "flat")
    height, width = _sides(g, flat, "side")
    area = g.one("Max", [g.one("Mul", [height, width], "area_raw"), g.const("tiny", 1e-12, np.float32)], "area")
    ratio = g.one("Div", [g.one("Sqrt", [area], "root"), g.const("canonical", CANONICAL_SIZE, np.float32)], "ratio")
    octave = g.one("Div", [g.one("Log", [ratio], "log_ratio"), g.const("log2", math.log(2.0), np.float32)], "octave")
    level = g.one("Add", [g.one("Floor", [octave], "octave_floor"),
                          g.const("canonical_level", float(CANONICAL_LEVEL), np.float32)], "level_raw")
    level = g.one("Clip", [level, g.const("min_level", float(levels[0]), np.float32),
                           g.const("max_level", float(levels[-1]), np.float32)], "level")
    shape = g.one("Shape", [boxes], "boxes_shape")
    images = g.one("Range", [g.const("zero_i64", 0, np.int64), g.one("Gather", [shape, g.const("axis0", 0, np.int64)],
                                                                    "batch"), g.const("one_i64", 1, np.int64)], "images")
    images = g.one("Expand", [g.one("Unsqueeze", [images, g.const("axes1", [1], np.int64)], "images_n_1"),
                              slice_axis(g, shape, 0, 2, 0, "batch_rois")], "images_n_r")
    batch_index = g.one("Reshape", [images, g.const("index_shape", [-1], np.int64)], "batch_index")
    xyxy = g.one("Gather", [flat, g.const("to_xyxy", [1, 0, 3, 2], np.int64)], "xyxy", axis=1)
    crops_shape = g.one("Concat", [slice_axis(g, g.one("Shape", [flat], "flat_shape_of"), 0, 1, 0, "count"),
                                   g.const("crop_dims", [channels, n, n], np.int64)], "crops_shape", axis=0)
    crops = g.one("ConstantOfShape", [crops_shape], "crops_empty",
                  value=onnx.numpy_helper.from_array(np.zeros(1, np.float32)))
    for lv in levels:
        stride = float(2 ** lv)
        chosen = g.one("Reshape", [g.one("NonZero", [g.one("Equal", [level, g.const(f"L{lv}", float(lv), np.float32)],
                                                           f"L{lv}_is")], f"L{lv}_where"),
                                   g.const(f"L{lv}_flat", [-1], np.int64)], f"L{lv}_index")
        shifted = g.one("Add", [g.one("Gather", [xyxy, chosen], f"L{lv}_boxes", axis=0),
                                g.const(f"L{lv}_half_pixel", 0.5 * stride, np.float32)], f"L{lv}_shifted")
        pooled = g.one("RoiAlign", [features[lv], shifted, g.one("Gather", [batch_index, chosen], f"L{lv}_images",
                                                                 axis=0)],
                       f"L{lv}_crops", mode="avg", output_height=n, output_width=n, sampling_ratio=align.sampling_ratio,
                       spatial_scale=1.0 / stride, coordinate_transformation_mode=ROI_ALIGN_MODE)
        crops = g.one("ScatterND", [crops, g.one("Unsqueeze", [chosen, g.const(f"L{lv}_axis1", [1], np.int64)],
                                                 f"L{lv}_slots"), pooled], f"L{lv}_placed")
    return crops


def _detections(g: GraphBuilder, rois: str, logits: str, deltas: str, parts: _Parts) -> str:
    """Step 5 of the module docstring: ``[N, D, 6]``."""
    layer, c_all, r = parts.detections, parts.num_classes, parts.rois_per_image
    c, d = c_all - 1, layer.max_detections
    probs = g.one("Softmax", [g.one("Reshape", [logits, g.const("logits_shape", [-1, r, c_all], np.int64)],
                                    "logits_nrc")], "probs_all", axis=-1)
    scores = slice_axis(g, probs, 1, c_all, 2, "probs_fg")  # [N, R, C]
    class_deltas = slice_axis(g, g.one("Reshape", [deltas, g.const("deltas_shape", [-1, r, c_all, 4], np.int64)],
                                       "deltas_nrc4"), 1, c_all, 2, "deltas_fg")
    refs = g.one("Unsqueeze", [rois, g.const("axis2", [2], np.int64)], "refs")
    boxes = _decode(g, class_deltas, refs, layer.bbox_reg_weights, parts.image_chw[1:], "decode")  # [N, R, C, 4]
    height, width = _sides(g, rois, "roi")
    zero = g.const("zero", 0.0, np.float32)
    empty = g.one("Or", [g.one("LessOrEqual", [height, zero], "roi_flat"), g.one("LessOrEqual", [width, zero],
                                                                                   "roi_thin")], "roi_empty")
    scores = g.one("Where", [g.one("Unsqueeze", [empty, g.const("axis2b", [2], np.int64)], "roi_empty_3"),
                             g.const("fill", FILL_SCORE, np.float32), scores], "scores")
    boxes_ncr = g.one("Transpose", [boxes], "boxes_ncr", perm=[0, 2, 1, 3])  # [N, C, R, 4]
    boxes_b = g.one("Reshape", [boxes_ncr, g.const("boxes_b_shape", [-1, r, 4], np.int64)], "boxes_b")
    scores_b = g.one("Reshape", [g.one("Transpose", [scores], "scores_ncr", perm=[0, 2, 1]),
                                 g.const("scores_b_shape", [-1, 1, r], np.int64)], "scores_b")
    selected = non_max_suppression(g, boxes_b, scores_b, d, layer.nms_iou, 0.0, "nms")
    top, index, valid = rank_kept(g, scores_b, selected, c * r, d, [-1, c * r], "kept")
    chosen = gather_rows(g, g.one("Reshape", [boxes_ncr, g.const("boxes_flat_shape", [0, -1, 4], np.int64)],
                                  "boxes_flat"), index, "chosen")
    label = g.one("Add", [g.one("Cast", [g.one("Div", [index, g.const("r_i64", r, np.int64)], "class_index")],
                                "class_f32", to=TensorProto.FLOAT), g.const("one", 1.0, np.float32)], "label")
    axis2 = g.const("axis2c", [2], np.int64)
    rows = g.one("Concat", [chosen, g.one("Unsqueeze", [label, axis2], "label_3"),
                            g.one("Unsqueeze", [top, axis2], "score_3")], "rows_all", axis=-1)
    return g.one("Where", [g.one("Unsqueeze", [valid, axis2], "valid_3"), rows, zero], DETECTIONS)


def to_onnx(model: keras.Model, *, opset: int = 17, with_intermediate: bool = False) -> onnx.ModelProto:
    """One checked standard-ONNX graph of the MaskRCNN inference ``model`` (module docstring): input ``Input``
    float32 ``[N, 3, H, W]``; outputs :data:`DEPLOYED_OUTPUTS`, and with ``with_intermediate`` also the features
    ``P<l>`` (NCHW) and :data:`INTERMEDIATE_OUTPUTS` (ROIs ``[N, P, 4]``, the box head's logits and deltas
    ``[N·P, ...]``) for tests that compare each stage with the Keras layers."""
    if opset not in OPSETS:
        raise ValueError(f"the MaskRCNN export is written for opset {' or '.join(map(str, OPSETS))}, not {opset}")
    parts = _parts(model)
    input_name = model.inputs[0].name
    trunk_model, trunk_names = _trunk_model(model, parts)
    trunk = convert_keras(trunk_model, input_name, trunk_names, opset=opset)
    box_head = convert_keras(_box_head_model(model, parts), _BOX_CROPS, [_LOGITS, _DELTAS], opset=opset)
    mask_head = convert_keras(_mask_head_model(model, parts), _MASK_CROPS, [_MASK_PROBS], opset=opset)
    for sub, what in ((trunk, "trunk, FPN and RPN"), (box_head, "box head"), (mask_head, "mask head")):
        check_standard(sub.graph, what)
        canonical_initializers(sub.graph)
    features = {lv: f"trunk/{net.feature_key(lv)}" for lv in parts.levels}

    rpn = GraphBuilder("proposals/")
    rois = _proposals(rpn, parts)
    box_pool = GraphBuilder("box_roi_align/")
    box_crops = _multilevel_roi_align(box_pool, features, rois, parts.box_align, parts.channels)
    final = GraphBuilder("detections/")
    detections = _detections(final, rois, f"box_head/{_LOGITS}", f"box_head/{_DELTAS}", parts)
    mask_pool = GraphBuilder("mask_roi_align/")
    boxes = slice_axis(mask_pool, detections, 0, 4, 2, "boxes")
    mask_crops = _multilevel_roi_align(mask_pool, features, boxes, parts.mask_align, parts.channels)
    prefixed(trunk.graph, "trunk/", {input_name: input_name})
    prefixed(box_head.graph, "box_head/", {_BOX_CROPS: box_crops})
    prefixed(mask_head.graph, "mask_head/", {_MASK_CROPS: mask_crops})
    d, c, size = parts.detections.max_detections, parts.num_classes, parts.mask_size
    outputs_g = GraphBuilder("outputs/")
    outputs_g.nodes.append(helper.make_node("Identity", [detections], [DETECTIONS], name=f"outputs/{DETECTIONS}"))
    outputs_g.one("Reshape", [f"mask_head/{_MASK_PROBS}", outputs_g.const("masks_shape", [-1, d, c, size, size],
                                                                         np.int64)], "masks")
    outputs_g.nodes.append(helper.make_node("Identity", ["outputs/masks"], [MASKS_OUTPUT], name="outputs/mask_fcn"))
    outputs = [helper.make_tensor_value_info(DETECTIONS, TensorProto.FLOAT, ["N", d, DETECTION_FIELDS]),
               helper.make_tensor_value_info(MASKS_OUTPUT, TensorProto.FLOAT, ["N", d, c, size, size])]
    if with_intermediate:
        p = parts.rois_per_image
        exposed: dict[str, tuple[str, list[str | int | None]]] = {
            **{net.feature_key(lv): (features[lv], ["N", parts.channels, None, None]) for lv in parts.levels},
            "rois": (rois, ["N", p, 4]), "class_logits": (f"box_head/{_LOGITS}", [None, c]),
            "box_deltas": (f"box_head/{_DELTAS}", [None, 4 * c])}
        for name, (tensor, dims) in exposed.items():
            outputs_g.nodes.append(helper.make_node("Identity", [tensor], [name], name=f"outputs/{name}"))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))

    pieces = (trunk.graph, rpn, box_pool, box_head.graph, final, mask_pool, mask_head.graph, outputs_g)
    nodes = [node for piece in pieces for node in (piece.node if isinstance(piece, onnx.GraphProto) else piece.nodes)]
    initializers = [i for piece in pieces
                    for i in (piece.initializer if isinstance(piece, onnx.GraphProto) else piece.initializers)]
    image = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *parts.image_chw])
    # The sub-graphs' value_info is left out: tf2onnx's "unk__<n>" dims of separate conversions would collide.
    graph = helper.make_graph(nodes, "mask_rcnn", [image], outputs, initializers)
    stitched = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tlt-export")
    stitched.ir_version = max(trunk.ir_version, box_head.ir_version, mask_head.ir_version, 8)
    check_standard(stitched.graph, "stitched graph")
    onnx.checker.check_model(stitched, full_check=True)
    return stitched
