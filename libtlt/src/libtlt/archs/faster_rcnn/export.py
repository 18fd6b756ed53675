"""FasterRCNN → one plugin-free ONNX graph (DETECTORS-TWO-STAGE.md §1 "Export": the standard-ONNX version).

Why stitched: tf2onnx cannot turn :class:`~libtlt.archs.faster_rcnn.network.ProposalLayer` (TF NMS with dynamic
counts) or ``tf.image.crop_and_resize`` into ops that TensorRT and onnxruntime both run, and TAO's answer (the
ProposalDynamic / CropAndResizeDynamic / NMSDynamic_TRT plugins) runs nowhere else. So the two convolutional parts
are converted by tf2onnx and the parts between them come from :mod:`libtlt.runtime.onnx_two_stage`, each of which
is tested against its NumPy reference:

1. ``trunk/``: tf2onnx of image → (stride-16 feature map as NCHW, ``rpn_out_class``, ``rpn_out_regress``);
2. ``rpn_flat/`` + ``proposals/``: the RPN outputs reshaped to ``[N, K]`` / ``[N, K, 4]`` in (H, W, A) order, the
   anchors of the model's ``proposals`` layer as a constant, decode + TopK + NonMaxSuppression, zero-padded ROIs;
3. ``roi_pool/``: ``RoiAlign`` reproducing ``crop_and_resize`` → crops ``[N·P, C, p, p]``;
4. ``head/``: tf2onnx of crops → (``dense_class_td`` probabilities, ``dense_regress_td`` deltas), the RCNN body
   and head;
5. ``detections/``: per-class decode and NonMaxSuppression → DeepStream's ``NMS`` ``[N, 1, K, 7]`` and ``NMS_1``.

Both Keras sub-models are cut out of the given model by layer name, so they share its layers and weights whatever
built it (fresh, pretrained, pruned, loaded); the proposal and crop parameters are read from its ``proposals`` and
``crop_and_resize`` layers, so a loaded model exports what it was trained with. Every name of a converted sub-graph
gets its prefix, so nothing collides when they are merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper

from libtlt.archs.faster_rcnn.network import (
    CROP_AND_RESIZE,
    INPUT_NAME,
    PROPOSALS,
    RCNN_CLASS,
    RCNN_REGRESS,
    RPN_CLASS,
    RPN_REGRESS,
    CropAndResize,
    FasterRcnnNetworkConfig,
    ProposalLayer,
)
from libtlt.runtime import onnx_two_stage
from libtlt.runtime.onnx_nms import GraphBuilder
from libtlt.runtime.tf2onnx_convert import canonical_initializers, check_standard, convert_keras, prefixed

__all__ = ["INTERMEDIATE_OUTPUTS", "OPSETS", "to_onnx"]

#: Opsets the pieces are written for: RoiAlign's coordinate_transformation_mode needs 16, and ``ReduceMin`` with an
#: ``axes`` attribute ends at 17.
OPSETS = (16, 17)
#: Extra outputs of ``with_intermediate=True``: the Keras inference model's output names, same layouts.
INTERMEDIATE_OUTPUTS = (RPN_CLASS, RPN_REGRESS, PROPOSALS, RCNN_CLASS, RCNN_REGRESS)
_CROPS = "crops"
_FEATURES, _RPN_SCORES, _RPN_DELTAS = "features", "rpn_scores", "rpn_deltas"
_PROBS, _DELTAS = "class_probs", "class_deltas"


@dataclass(frozen=True)
class _Parts:
    """What the graph needs from the Keras model: the layers by name and the static sizes."""

    proposals: ProposalLayer
    crop: CropAndResize
    image_chw: tuple[int, int, int]
    feature_hw: tuple[int, int]
    channels: int
    num_fg_classes: int


def _layer(model: keras.Model, name: str, kind: type | None = None) -> Any:
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise ValueError(f"the model has no '{name}' layer: not a FasterRCNN inference model") from None
    if kind is not None and not isinstance(layer, kind):
        raise ValueError(f"the model's '{name}' layer is a {type(layer).__name__}, not a {kind.__name__}")
    return layer


def _parts(model: keras.Model, network: FasterRcnnNetworkConfig,
           detection: onnx_two_stage.DetectionConfig) -> _Parts:
    """The model's layers and sizes, checked against the spec's ``network`` and ``detection``."""
    proposals = _layer(model, PROPOSALS, ProposalLayer)
    crop = _layer(model, CROP_AND_RESIZE, CropAndResize)
    chw = tuple(int(d) for d in model.inputs[0].shape[1:])
    features = crop.input[0].shape
    num_fg = int(_layer(model, RCNN_CLASS).output.shape[-1]) - 1
    if chw != tuple(network.input_shape):
        raise ValueError(f"the model's input is {list(chw)}, the spec's {list(network.input_shape)}")
    if num_fg != network.num_fg_classes or num_fg != detection.num_classes:
        raise ValueError(f"the model has {num_fg} object classes, the spec {network.num_fg_classes} and the "
                         f"detection configuration {detection.num_classes}")
    if (detection.image_height, detection.image_width) != chw[1:] or tuple(proposals.image_hw) != chw[1:]:
        raise ValueError(f"image size mismatch: model input {chw[1:]}, proposals layer {tuple(proposals.image_hw)}, "
                         f"detection configuration {(detection.image_height, detection.image_width)}")
    return _Parts(proposals, crop, (chw[0], chw[1], chw[2]), (int(features[1]), int(features[2])),
                  int(features[3]), num_fg)


def _trunk_model(model: keras.Model) -> keras.Model:
    """Image → (NCHW feature map, rpn_out_class, rpn_out_regress) on the model's own layers."""
    features = _layer(model, CROP_AND_RESIZE).input[0]
    nchw = keras.layers.Permute((3, 1, 2), name="export_features_nchw")(features)
    return keras.Model(model.inputs[0], [nchw, _layer(model, RPN_CLASS).output, _layer(model, RPN_REGRESS).output],
                       name="faster_rcnn_export_trunk")


def _head_model(model: keras.Model, parts: _Parts) -> keras.Model:
    """NCHW crops ``[N·P, C, p, p]`` → (dense_class_td, dense_regress_td): the RCNN body and head."""
    inner = keras.Model(_layer(model, CROP_AND_RESIZE).output,
                        [_layer(model, RCNN_CLASS).output, _layer(model, RCNN_REGRESS).output],
                        name="faster_rcnn_export_body")
    p = parts.crop.crop_size
    crops = keras.Input((parts.channels, p, p), name=_CROPS)
    probs, deltas = inner(keras.layers.Permute((2, 3, 1), name="export_crops_nhwc")(crops))
    return keras.Model(crops, [probs, deltas], name="faster_rcnn_export_head")


def to_onnx(model: keras.Model, network: FasterRcnnNetworkConfig, detection: onnx_two_stage.DetectionConfig, *,
            opset: int = 17, with_intermediate: bool = False, input_name: str = INPUT_NAME) -> onnx.ModelProto:
    """One checked standard-ONNX graph of the FasterRCNN inference ``model`` (module docstring).

    Input ``input_name`` float32 ``[N, C, H, W]`` (batch ``N`` dynamic); outputs ``detection.output_names``
    (``NMS`` ``[N, 1, keep_top_k, 7]`` float32, ``NMS_1`` ``[N, 1, 1, 1]`` int32), and with ``with_intermediate``
    also :data:`INTERMEDIATE_OUTPUTS`, equal to the Keras model's outputs of those names (tests compare each stage).
    ``network`` (the spec's) must agree with the model on the input shape and the classes; everything else comes
    from the model's layers.
    """
    if opset not in OPSETS:
        raise ValueError(f"the FasterRCNN export is written for opset {' or '.join(map(str, OPSETS))}, not {opset}")
    parts = _parts(model, network, detection)
    proposal_layer = parts.proposals
    rois_per_image = proposal_layer.post_nms_top_n
    channels, height, width = parts.image_chw

    trunk = convert_keras(_trunk_model(model), input_name, [_FEATURES, _RPN_SCORES, _RPN_DELTAS], opset=opset)
    head = convert_keras(_head_model(model, parts), _CROPS, [_PROBS, _DELTAS], opset=opset)
    for sub, what in ((trunk, "trunk and RPN"), (head, "RCNN body and head")):
        check_standard(sub.graph, what)

    flat = GraphBuilder("rpn_flat/")
    scores = flat.one("Reshape", [f"trunk/{_RPN_SCORES}", flat.const("scores_shape", [0, -1], np.int64)], "scores")
    deltas = flat.one("Reshape", [f"trunk/{_RPN_DELTAS}", flat.const("deltas_shape", [0, -1, 4], np.int64)],
                      "deltas")
    proposal_config = onnx_two_stage.ProposalConfig(
        height, width, pre_nms_top_n=proposal_layer.pre_nms_top_n, post_nms_top_n=rois_per_image,
        iou_threshold=proposal_layer.nms_iou, std_scaling=proposal_layer.std_scaling, min_size=proposal_layer.min_size)
    rpn = GraphBuilder("proposals/")
    rois = onnx_two_stage.proposals(rpn, scores, deltas, proposal_layer.anchors(parts.feature_hw), proposal_config)
    pool = GraphBuilder("roi_pool/")
    crops = onnx_two_stage.crop_and_resize(pool, f"trunk/{_FEATURES}", rois.rois, image_size=(height, width),
                                           feature_size=parts.feature_hw, crop_size=parts.crop.crop_size)
    for sub in (trunk, head):
        canonical_initializers(sub.graph)
    prefixed(trunk.graph, "trunk/", {input_name: input_name})
    prefixed(head.graph, "head/", {_CROPS: crops})
    final = GraphBuilder("detections/")
    onnx_two_stage.detections(final, rois.rois, f"head/{_PROBS}", f"head/{_DELTAS}", detection, rois_per_image)

    outputs = onnx_two_stage.detections_output_infos(detection, "N")
    exposed: list[onnx.NodeProto] = []
    if with_intermediate:
        hf, wf = parts.feature_hw
        a, c = proposal_layer.num_anchors, parts.num_fg_classes
        sources = {RPN_CLASS: (f"trunk/{_RPN_SCORES}", [hf, wf, a]),
                   RPN_REGRESS: (f"trunk/{_RPN_DELTAS}", [hf, wf, 4 * a]),
                   PROPOSALS: (rois.rois, [rois_per_image, 4]),
                   RCNN_CLASS: (f"head/{_PROBS}", [rois_per_image, c + 1]),
                   RCNN_REGRESS: (f"head/{_DELTAS}", [rois_per_image, 4 * c])}
        for name in INTERMEDIATE_OUTPUTS:
            tensor, dims = sources[name]
            exposed.append(helper.make_node("Identity", [tensor], [name], name=f"outputs/{name}"))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *dims]))

    nodes = [*trunk.graph.node, *flat.nodes, *rpn.nodes, *pool.nodes, *head.graph.node, *final.nodes, *exposed]
    initializers = [*trunk.graph.initializer, *flat.initializers, *rpn.initializers, *pool.initializers,
                    *head.graph.initializer, *final.initializers]
    image = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", channels, height, width])
    # The sub-graphs' value_info is left out: tf2onnx names unknown dims "unk__<n>" in each conversion, and the
    # same name in both would claim that the image batch N and the crop count N·P are equal.
    graph = helper.make_graph(nodes, "faster_rcnn", [image], outputs, initializers)
    stitched = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tlt-export")
    stitched.ir_version = max(trunk.ir_version, head.ir_version, 8)
    check_standard(stitched.graph, "stitched graph")
    onnx.checker.check_model(stitched, full_check=True)
    return stitched
