"""FasterRCNN's export pieces in standard ONNX ops: RPN proposals, ROI pooling and the final per-class NMS.

Why: TAO's FasterRCNN graph runs the ``ProposalDynamic``, ``CropAndResizeDynamic`` and ``NMSDynamic_TRT`` TensorRT
plugins, which onnxruntime cannot run and users fail to build (DETECTORS-TWO-STAGE.md §1 "Export"). These builders
append default-domain opset-17 subgraphs to a ``GraphBuilder`` instead; every shape is static except the batch N.
Each piece has a NumPy reference (``*_reference``) equal to onnxruntime's output and a standalone model (``*_model``)
for tests. Boxes are (x1, y1, x2, y2) in input-image pixels throughout.

``proposals`` (``ProposalConfig``): RPN scores ``[N, K]`` (sigmoid probabilities) and deltas ``[N, K, 4]``
(tx, ty, tw, th), K = H_f·W_f·A in (H, W, A) row-major order, anchors ``(K, 4)`` a constant.

1. deltas / std_scaling; decode without +1: wa = x2 − x1, cxa = (x1 + x2)/2, cx = tx·wa + cxa, w = exp(tw)·wa (no
   clamp of tw: an overflow gives an infinite box that the clip turns into the whole image); corners = centre ∓ w/2.
2. Clip to [0, W−1] × [0, H−1].
3. A box with (x2 − x1) < min_size or (y2 − y1) < min_size (after the clip) gets the score ``FILL_SCORE``.
4. TopK(min(pre_nms_top_n, K)), ties lower anchor index first.
5. NonMaxSuppression: IoU without +1, suppressed when IoU > iou_threshold (strict, verified), at most post_nms_top_n
   kept; ``score_threshold`` = ``SCORE_FLOOR`` (halfway to ``FILL_SCORE``), so filled boxes are never candidates
   whether a runtime compares with > (onnxruntime, verified) or ≥, and every real score (> ``SCORE_FLOOR``) is.
6. Output ROIs ``[N, post_nms_top_n, 4]`` float32 in descending score order (ties: lower anchor first), rows past the
   count all zero; their scores ``[N, post_nms_top_n]`` (0 on padding) and the count int32 ``[N]``.

``crop_and_resize``: ``tf.image.crop_and_resize`` (bilinear, extrapolation 0) of the stride-16 features
``[N, C, H_f, W_f]`` with ROIs ``[N, R, 4]`` → ``[N·R, C, n, n]``, roi i of image b at row b·R + i. TF samples
a + i·(b − a)/(n − 1), with a = y1·(H_f−1)/(H_img−1), b = y2·(H_f−1)/(H_img−1) (same for x); n = 1 samples the centre
(a + b)/2. ONNX ``RoiAlign`` (avg, sampling_ratio 1) samples bin centres, so the box is widened by half a step on
each side: bin centres then fall on TF's points. Findings (tests/runtime/test_onnx_two_stage.py):

* We use ``coordinate_transformation_mode = half_pixel`` with every coordinate + 0.5, not ``output_half_pixel``:
  in ``output_half_pixel`` mode onnxruntime (and the ONNX reference, and TensorRT's non-aligned ROIAlign) force a
  ROI to at least 1×1 feature pixel, so a ROI narrower than (n−1)/n feature pixel (≈ 14 input pixels at n = 7) and
  every degenerate box (x1 == x2, step 0) would be sampled wrongly. ``half_pixel`` has no such clamp.
* Inside the map ([0, H_f−1] × [0, W_f−1]) the two agree to float rounding (~1e-6), degenerate and n = 1 included.
* Outside the map they differ: crop_and_resize gives 0 for any sample outside [0, H_f−1]; RoiAlign gives the edge
  value for a sample in [−1, 0) or (H_f−1, H_f] and 0 only beyond. ``proposals`` clips ROIs to the image, which maps
  inside the map, so exported graphs never meet this; ``crop_and_resize_reference`` follows TF.

``detections`` (``DetectionConfig``): ROIs ``[N, R, 4]``, class probabilities ``[N·R, C+1]`` (background last) and
deltas ``[N·R, 4·C]`` → DeepStream's ``NMS`` ``[N, 1, keep_top_k, 7]`` float32 and ``NMS_1`` ``[N, 1, 1, 1]`` int32,
written by ``onnx_nms``'s own output code so both exports read alike (``unpack_nms``).

1. Per class c < C: deltas / regr_std (x, y, w, h); w0 = x2 − x1 + 1, cx0 = x1 + w0/2; cx = tx·w0 + cx0,
   w = exp(tw)·w0; corners = centre ∓ w/2; clip to [0, W−1] × [0, H−1].
2. A ROI with x2 ≤ x1 or y2 ≤ y1 (the all-zero padding rows of ``proposals``) gets score ``FILL_SCORE`` in every
   class, so it never produces a detection.
3. NonMaxSuppression per (image, class): candidates need probability > confidence_threshold (strict), suppressed when
   IoU > iou_threshold, at most keep_top_k per class.
4. All kept boxes of an image ranked by probability (ties: lower class, then lower ROI), the first keep_top_k written:
   (image id, label = class column, probability, x1/W, y1/H, x2/W, y2/H). Padding rows (id, −1, 0, 0, 0, 0, 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import TensorProto, helper, numpy_helper

from libtlt.runtime.onnx_nms import (
    DEFAULT_OUTPUT_NAMES,
    FILL_SCORE,
    OPSET,
    PAD_LABEL,
    ROW_WIDTH,
    GraphBuilder,
    NmsConfig,
    class_nms,
    nms_outputs,
    output_infos,
)

#: NonMaxSuppression's score threshold for proposals: halfway between ``FILL_SCORE`` and any real score.
SCORE_FLOOR = FILL_SCORE / 2
#: How RoiAlign maps ROI coordinates (module doc: ``output_half_pixel`` clamps small ROIs to 1×1).
ROI_ALIGN_MODE = "half_pixel"


def _check_image(height: int, width: int) -> None:
    if height < 2 or width < 2:
        raise ValueError(f"image height and width must be at least 2 (TF normalises by size − 1), got {height}×{width}")


@dataclass(frozen=True)
class ProposalConfig:
    """The proposal layer's parameters: the spec's ``rpn_pre_nms_top_N``, ``rpn_nms_max_boxes`` (post_nms_top_n),
    ``rpn_nms_overlap_threshold``, ``std_scaling``, and the input size; min_size is the plugin's roi_min_size."""

    image_height: int
    image_width: int
    pre_nms_top_n: int
    post_nms_top_n: int
    iou_threshold: float
    std_scaling: float = 1.0
    min_size: float = 1.0

    def __post_init__(self) -> None:
        _check_image(self.image_height, self.image_width)
        if self.pre_nms_top_n < 1 or self.post_nms_top_n < 1:
            raise ValueError(f"pre_nms_top_n and post_nms_top_n must be at least 1, got {self.pre_nms_top_n} and "
                             f"{self.post_nms_top_n}")
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {self.iou_threshold}")
        if not (math.isfinite(self.std_scaling) and self.std_scaling > 0):
            raise ValueError(f"std_scaling must be finite and > 0, got {self.std_scaling}")
        if not (math.isfinite(self.min_size) and self.min_size >= 0):
            raise ValueError(f"min_size must be finite and >= 0, got {self.min_size}")

    def candidates(self, num_anchors: int) -> int:
        """How many boxes enter NMS: TopK cannot ask for more than there are anchors."""
        return min(self.pre_nms_top_n, num_anchors)

    def nms_config(self) -> NmsConfig:
        """The single-class NMS that ``onnx_nms``'s reference runs on the candidates."""
        return NmsConfig(SCORE_FLOOR, self.iou_threshold, self.post_nms_top_n)


@dataclass(frozen=True)
class DetectionConfig:
    """The final decode and NMS: ``num_classes`` foreground classes (background is the extra last column),
    the spec's ``classifier_regr_std`` (x, y, w, h), ``object_confidence_thres``, ``classifier_nms_overlap_threshold``
    and ``classifier_nms_max_boxes`` (keep_top_k, per class and in total, as TAO)."""

    image_height: int
    image_width: int
    num_classes: int
    confidence_threshold: float
    iou_threshold: float
    keep_top_k: int
    regr_std: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    output_names: tuple[str, ...] = DEFAULT_OUTPUT_NAMES

    def __post_init__(self) -> None:
        _check_image(self.image_height, self.image_width)
        if self.num_classes < 1:
            raise ValueError(f"num_classes (foreground) must be at least 1, got {self.num_classes}")
        if len(self.regr_std) != 4 or not all(math.isfinite(s) and s > 0 for s in self.regr_std):
            raise ValueError(f"regr_std must be four finite values > 0 (x, y, w, h), got {self.regr_std}")
        self.nms_config()  # validates the thresholds, keep_top_k and output names

    def nms_config(self) -> NmsConfig:
        """The ``onnx_nms`` configuration whose outputs this piece writes (background = last column)."""
        return NmsConfig(self.confidence_threshold, self.iou_threshold, self.keep_top_k,
                         background_class=self.num_classes, output_names=tuple(self.output_names))


@dataclass(frozen=True)
class ProposalTensors:
    """Names of ``proposals``' results: rois ``[N, P, 4]``, scores ``[N, P]``, count int32 ``[N]``."""

    rois: str
    scores: str
    count: str


# --------------------------------------------------------------------------------------------- NumPy references

def _anchor_geometry(anchors: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Anchor sizes (wa, ha) and centres (cxa, cya), ``(K, 2)`` each, computed once in float32 for both versions."""
    a = np.asarray(anchors, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] != 4 or a.shape[0] < 1:
        raise ValueError(f"anchors must be (K, 4) [x1, y1, x2, y2], got shape {a.shape}")
    size = a[:, 2:] - a[:, :2]
    centre = (a[:, :2] + a[:, 2:]) * np.float32(0.5)
    return size, centre


def _pixel_limits(height: int, width: int) -> NDArray[np.float32]:
    """Upper clip bounds for (x1, y1, x2, y2)."""
    return np.asarray([width - 1, height - 1, width - 1, height - 1], dtype=np.float32)


def _decoded_corners(d: NDArray[np.float32], size: NDArray[np.float32], centre: NDArray[np.float32], height: int,
                     width: int) -> NDArray[np.float32]:
    """(tx, ty, tw, th) against boxes of ``size`` and ``centre`` → corners clipped to the image (both decoders)."""
    middle = d[..., :2] * size + centre
    with np.errstate(over="ignore"):
        half = np.exp(d[..., 2:]) * size * np.float32(0.5)
    boxes = np.concatenate([middle - half, middle + half], axis=-1)
    return np.minimum(np.maximum(boxes, np.float32(0)), _pixel_limits(height, width))


def _decode_rpn(deltas: NDArray[np.float32], anchors: ArrayLike, config: ProposalConfig) -> NDArray[np.float32]:
    size_a, centre_a = _anchor_geometry(anchors)
    d = deltas / np.float32(config.std_scaling)
    return _decoded_corners(d, size_a, centre_a, config.image_height, config.image_width)


def proposals_reference(scores: ArrayLike, deltas: ArrayLike, anchors: ArrayLike, config: ProposalConfig
                        ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int32]]:
    """``proposals`` in NumPy: (rois ``[N, P, 4]``, scores ``[N, P]``, count int32 ``[N]``), P = post_nms_top_n."""
    s = np.asarray(scores, dtype=np.float32)
    d = np.asarray(deltas, dtype=np.float32)
    if s.ndim != 2 or d.shape != (*s.shape, 4):
        raise ValueError(f"expected scores [N, K] and deltas [N, K, 4], got {s.shape} and {d.shape}")
    boxes = _decode_rpn(d, anchors, config)
    wide = np.min(boxes[..., 2:] - boxes[..., :2], axis=-1) >= np.float32(config.min_size)
    s = np.where(wide, s, np.float32(FILL_SCORE))
    batch, anchors_k = s.shape
    k, p = config.candidates(anchors_k), config.post_nms_top_n
    rois = np.zeros((batch, p, 4), np.float32)
    roi_scores = np.zeros((batch, p), np.float32)
    counts = np.zeros(batch, np.int32)
    for n in range(batch):
        order = np.argsort(-s[n], kind="stable")[:k]
        kept = class_nms(boxes[n, order], s[n, order], config.nms_config())
        counts[n] = kept.size
        rois[n, :kept.size] = boxes[n, order[kept]]
        roi_scores[n, :kept.size] = s[n, order[kept]]
    return rois, roi_scores, counts


def _feature_samples(lo: NDArray[np.float32], hi: NDArray[np.float32], image: int, feature: int, n: int
                     ) -> NDArray[np.float32]:
    """TF crop_and_resize's sample coordinates ``[M, n]`` on one axis, in feature pixels."""
    a = lo / np.float32(image - 1)
    b = hi / np.float32(image - 1)
    if n == 1:
        return (np.float32(0.5) * (a + b) * np.float32(feature - 1))[:, None]
    scale = (b - a) * np.float32(feature - 1) / np.float32(n - 1)
    return a[:, None] * np.float32(feature - 1) + np.arange(n, dtype=np.float32)[None, :] * scale[:, None]


def _axis_weights(coords: NDArray[np.float32], size: int) -> tuple[NDArray[np.intp], NDArray[np.intp],
                                                                    NDArray[np.float32], NDArray[np.bool_]]:
    inside = (coords >= 0) & (coords <= size - 1)
    safe = np.where(inside, coords, np.float32(0))
    low = np.floor(safe).astype(np.intp)
    high = np.ceil(safe).astype(np.intp)
    return low, high, (safe - low).astype(np.float32), inside


def crop_and_resize_reference(features: ArrayLike, rois: ArrayLike, image_size: tuple[int, int], crop_size: int
                              ) -> NDArray[np.float32]:
    """``tf.image.crop_and_resize`` semantics in NumPy (bilinear, 0 outside the map): features ``[N, C, H_f, W_f]``,
    rois ``[N, R, 4]`` pixels → ``[N·R, C, n, n]``. It follows TF, also where RoiAlign differs (module doc)."""
    f = np.asarray(features, dtype=np.float32)
    r = np.asarray(rois, dtype=np.float32)
    if f.ndim != 4 or r.ndim != 3 or r.shape[2] != 4 or r.shape[0] != f.shape[0]:
        raise ValueError(f"expected features [N, C, H, W] and rois [N, R, 4], got {f.shape} and {r.shape}")
    _check_crop(image_size, crop_size)
    height, width = f.shape[2:]
    flat = r.reshape(-1, 4)
    image = np.repeat(np.arange(r.shape[0]), r.shape[1])
    y0, y1, wy, in_y = _axis_weights(_feature_samples(flat[:, 1], flat[:, 3], image_size[0], height, crop_size), height)
    x0, x1, wx, in_x = _axis_weights(_feature_samples(flat[:, 0], flat[:, 2], image_size[1], width, crop_size), width)

    def at(ys: NDArray[np.intp], xs: NDArray[np.intp]) -> NDArray[np.float32]:
        return f[image[:, None, None], :, ys[:, :, None], xs[:, None, :]]  # [M, n, n, C]

    top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * wx[:, None, :, None]
    bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * wx[:, None, :, None]
    value = top + (bottom - top) * wy[:, :, None, None]
    value = np.where((in_y[:, :, None] & in_x[:, None, :])[..., None], value, np.float32(0))
    return np.ascontiguousarray(value.transpose(0, 3, 1, 2))


def _decode_rcnn(rois: NDArray[np.float32], deltas: NDArray[np.float32], config: DetectionConfig
                 ) -> NDArray[np.float32]:
    """Per-class boxes ``[N, R, C, 4]`` from ROIs ``[N, R, 4]`` and deltas ``[N, R, C, 4]`` (+1 convention)."""
    d = (deltas / np.asarray(config.regr_std, dtype=np.float32)).astype(np.float32)
    size0 = rois[..., 2:] - rois[..., :2] + np.float32(1)
    centre0 = (rois[..., :2] + size0 * np.float32(0.5))[:, :, None, :]
    size0 = size0[:, :, None, :]
    return _decoded_corners(d, size0, centre0, config.image_height, config.image_width)


def detections_reference(rois: ArrayLike, probs: ArrayLike, deltas: ArrayLike, config: DetectionConfig
                         ) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """``detections`` in NumPy: (``NMS`` ``[N, 1, K, 7]``, ``NMS_1`` int32 ``[N, 1, 1, 1]``), equal to onnxruntime's."""
    r = np.asarray(rois, dtype=np.float32)
    c = config.num_classes
    if r.ndim != 3 or r.shape[2] != 4:
        raise ValueError(f"expected rois [N, R, 4], got {r.shape}")
    batch, count = r.shape[:2]
    p = np.asarray(probs, dtype=np.float32).reshape(batch, count, c + 1)
    boxes = _decode_rcnn(r, np.asarray(deltas, dtype=np.float32).reshape(batch, count, c, 4), config)
    real = np.min(r[..., 2:] - r[..., :2], axis=-1) > 0
    scores = np.where(real[..., None], p[..., :c], np.float32(FILL_SCORE))
    nms = config.nms_config()
    k = config.keep_top_k
    out = np.zeros((batch, 1, k, ROW_WIDTH), np.float32)
    out[:, 0, :, 0] = np.arange(batch, dtype=np.float32)[:, None]
    out[:, 0, :, 1] = PAD_LABEL
    counts = np.zeros((batch, 1, 1, 1), np.int32)
    scale = np.asarray([config.image_width, config.image_height] * 2, dtype=np.float32)
    for n in range(batch):
        kept = [class_nms(_ordered(boxes[n, :, cls]), scores[n, :, cls], nms) for cls in range(c)]
        roi = np.concatenate(kept).astype(np.intp)
        cls_of = np.concatenate([np.full(kk.size, cls, np.intp) for cls, kk in enumerate(kept)])
        score = scores[n, roi, cls_of]
        rank = np.lexsort((cls_of * count + roi, -score))[:k]
        counts[n, 0, 0, 0] = rank.size
        out[n, 0, :rank.size, 1] = cls_of[rank]
        out[n, 0, :rank.size, 2] = score[rank]
        out[n, 0, :rank.size, 3:] = boxes[n, roi[rank], cls_of[rank]] / scale
    return out, counts


def _ordered(boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """(min, min, max, max) corners, as NonMaxSuppression reads any diagonal pair."""
    return np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=-1)


# --------------------------------------------------------------------------------------------- ONNX builders

def slice_axis(g: GraphBuilder, x: str, start: int, end: int, axis: int, name: str) -> str:
    return g.one("Slice", [x, g.const(f"{name}_start", [start], np.int64), g.const(f"{name}_end", [end], np.int64),
                           g.const(f"{name}_axis", [axis], np.int64)], name)


def _corners(g: GraphBuilder, centre: str, size: str, name: str) -> str:
    """Concat(centre − size/2, centre + size/2) on the last axis."""
    half = g.one("Mul", [size, g.const(f"{name}_half", 0.5, np.float32)], f"{name}_half_size")
    lo = g.one("Sub", [centre, half], f"{name}_lo")
    hi = g.one("Add", [centre, half], f"{name}_hi")
    return g.one("Concat", [lo, hi], f"{name}_corners", axis=-1)


def _clip(g: GraphBuilder, boxes: str, height: int, width: int, name: str) -> str:
    low = g.one("Max", [boxes, g.const(f"{name}_zero", 0.0, np.float32)], f"{name}_clip_low")
    return g.one("Min", [low, g.const(f"{name}_limits", _pixel_limits(height, width), np.float32)], f"{name}_clipped")


def _min_side(g: GraphBuilder, boxes: str, axis: int, name: str) -> str:
    """min(x2 − x1, y2 − y1) of boxes whose last axis (index ``axis``) holds x1, y1, x2, y2."""
    size = g.one("Sub", [slice_axis(g, boxes, 2, 4, axis, f"{name}_side_hi"),
                         slice_axis(g, boxes, 0, 2, axis, f"{name}_side_lo")], f"{name}_sides")
    return g.one("ReduceMin", [size], f"{name}_min_side", axes=[axis], keepdims=0)


def gather_rows(g: GraphBuilder, boxes: str, index: str, name: str) -> str:
    """boxes ``[N, A, 4]`` at index ``[N, K]`` → ``[N, K, 4]``."""
    index_4 = g.one("Expand", [g.one("Unsqueeze", [index, g.const(f"{name}_axis2", [2], np.int64)], f"{name}_idx3"),
                               g.const(f"{name}_expand4", [1, 1, 4], np.int64)], f"{name}_idx4")
    return g.one("GatherElements", [boxes, index_4], name, axis=1)


def rank_kept(g: GraphBuilder, scores: str, selected: str, columns: int, keep: int, flat_shape: Sequence[int],
               name: str) -> tuple[str, str, str]:
    """Compact NonMaxSuppression's ``[M, 3]`` selection into a static ``[N, keep]``: the kept scores are scattered
    into a ``FILL_SCORE`` tensor shaped like ``scores``, reshaped to ``flat_shape`` (``[N, columns]``), then TopK.
    Returns (scores, index into the flat axis, valid); invalid slots hold index 0."""
    filled = g.one("ConstantOfShape", [g.one("Shape", [scores], f"{name}_shape")], f"{name}_fill",
                   value=numpy_helper.from_array(np.asarray([FILL_SCORE], np.float32)))
    kept = g.one("GatherND", [scores, selected], f"{name}_kept")
    dense = g.one("ScatterND", [filled, selected, kept], f"{name}_dense")
    flat = g.one("Reshape", [dense, g.const(f"{name}_flat_shape", flat_shape, np.int64)], f"{name}_flat")
    fill = g.const(f"{name}_fill_value", FILL_SCORE, np.float32)
    if columns < keep:
        flat = g.one("Pad", [flat, g.const(f"{name}_pads", [0, 0, 0, keep - columns], np.int64), fill],
                     f"{name}_padded", mode="constant")
    top, index = g.op("TopK", [flat, g.const(f"{name}_k", [keep], np.int64)], f"{name}_top", outputs=2, axis=1)
    valid = g.one("Greater", [top, fill], f"{name}_valid")
    index = g.one("Where", [valid, index, g.const(f"{name}_zero_i64", 0, np.int64)], f"{name}_index")
    return top, index, valid


def non_max_suppression(g: GraphBuilder, boxes: str, scores: str, max_out: int, iou: float, threshold: float, name: str) -> str:
    return g.one("NonMaxSuppression", [
        boxes, scores,
        g.const(f"{name}_max_out", [max_out], np.int64),
        g.const(f"{name}_iou", [iou], np.float32),
        g.const(f"{name}_score_threshold", [threshold], np.float32),
    ], name, center_point_box=0)


def proposals(g: GraphBuilder, scores: str, deltas: str, anchors: ArrayLike, config: ProposalConfig
              ) -> ProposalTensors:
    """Append the proposal layer (module doc): ``scores`` ``[N, K]`` and ``deltas`` ``[N, K, 4]`` → ROIs."""
    size_a, centre_a = _anchor_geometry(anchors)
    num_anchors = size_a.shape[0]
    d = g.one("Div", [deltas, g.const("std_scaling", config.std_scaling, np.float32)], "deltas_scaled")
    anchor_size = g.const("anchor_size", size_a, np.float32)
    centre = g.one("Add", [g.one("Mul", [slice_axis(g, d, 0, 2, 2, "txy"), anchor_size], "centre_offset"),
                           g.const("anchor_centre", centre_a, np.float32)], "centre")
    size = g.one("Mul", [g.one("Exp", [slice_axis(g, d, 2, 4, 2, "twh")], "size_factor"), anchor_size], "size")
    boxes = _clip(g, _corners(g, centre, size, "decoded"), config.image_height, config.image_width, "decoded")
    wide = g.one("GreaterOrEqual", [_min_side(g, boxes, 2, "decoded"), g.const("min_size", config.min_size,
                                                                               np.float32)], "wide")
    masked = g.one("Where", [wide, scores, g.const("fill", FILL_SCORE, np.float32)], "scores_masked")

    k = config.candidates(num_anchors)
    top, top_index = g.op("TopK", [masked, g.const("pre_nms_top_n", [k], np.int64)], "pre_nms", outputs=2, axis=1)
    candidates = gather_rows(g, boxes, top_index, "candidates")
    candidate_scores = g.one("Unsqueeze", [top, g.const("axes_1", [1], np.int64)], "candidate_scores")  # [N, 1, k]
    selected = non_max_suppression(g, candidates, candidate_scores, config.post_nms_top_n, config.iou_threshold, SCORE_FLOOR, "nms")

    p = config.post_nms_top_n
    kept, index, valid = rank_kept(g, candidate_scores, selected, k, p, [-1, k], "kept")
    zero = g.const("zero", 0.0, np.float32)
    rois = g.one("Where", [g.one("Unsqueeze", [valid, g.const("axes_2", [2], np.int64)], "valid_3"),
                           gather_rows(g, candidates, index, "rois_all"), zero], "rois")
    roi_scores = g.one("Where", [valid, kept, zero], "roi_scores")
    count = g.one("ReduceSum", [g.one("Cast", [valid], "valid_f32", to=TensorProto.FLOAT),
                                g.const("axes_1b", [1], np.int64)], "count_f32", keepdims=0)
    return ProposalTensors(rois, roi_scores, g.one("Cast", [count], "count", to=TensorProto.INT32))


def _check_crop(image_size: tuple[int, int], crop_size: int) -> None:
    _check_image(*image_size)
    if crop_size < 1:
        raise ValueError(f"crop_size must be at least 1, got {crop_size}")


def crop_and_resize(g: GraphBuilder, features: str, rois: str, *, image_size: tuple[int, int],
                    feature_size: tuple[int, int], crop_size: int) -> str:
    """Append ROI pooling equal to ``tf.image.crop_and_resize`` inside the map (module doc): features
    ``[N, C, H_f, W_f]`` and rois ``[N, R, 4]`` (pixels of an image of ``image_size`` (H, W)) → ``[N·R, C, n, n]``."""
    _check_crop(image_size, crop_size)
    (height, width), (f_height, f_width) = image_size, feature_size
    flat = g.one("Reshape", [rois, g.const("rois_flat_shape", [-1, 4], np.int64)], "rois_flat")
    normalised = g.one("Div", [flat, g.const("image_scale", [width - 1, height - 1] * 2, np.float32)], "rois_norm")
    mapped = g.one("Mul", [normalised, g.const("feature_scale", [f_width - 1, f_height - 1] * 2, np.float32)],
                   "rois_feature")
    lo, hi = slice_axis(g, mapped, 0, 2, 1, "lo"), slice_axis(g, mapped, 2, 4, 1, "hi")
    if crop_size == 1:
        lo = hi = g.one("Mul", [g.one("Add", [lo, hi], "centre_sum"), g.const("half", 0.5, np.float32)], "centre")
    else:
        half_step = g.one("Mul", [g.one("Sub", [hi, lo], "extent"), g.const("half_step", 0.5 / (crop_size - 1),
                                                                            np.float32)], "half_step_size")
        lo, hi = g.one("Sub", [lo, half_step], "lo_wide"), g.one("Add", [hi, half_step], "hi_wide")
    # half_pixel mode subtracts 0.5 from every coordinate; adding it first leaves the points where TF samples.
    offset = g.const("half_pixel", 0.5, np.float32)
    boxes = g.one("Concat", [g.one("Add", [lo, offset], "lo_shifted"), g.one("Add", [hi, offset], "hi_shifted")],
                  "roi_align_boxes", axis=1)
    shape = g.one("Shape", [rois], "rois_shape")
    batch_rois = slice_axis(g, shape, 0, 2, 0, "batch_rois")
    images = g.one("Range", [g.const("zero_i64", 0, np.int64), g.one("Gather", [shape, g.const("axis0", 0, np.int64)],
                                                                    "batch"), g.const("one_i64", 1, np.int64)], "images")
    images = g.one("Expand", [g.one("Unsqueeze", [images, g.const("axes_1", [1], np.int64)], "images_n_1"), batch_rois],
                   "images_n_r")
    batch_index = g.one("Reshape", [images, g.const("index_shape", [-1], np.int64)], "batch_index")
    return g.one("RoiAlign", [features, boxes, batch_index], "crops", mode="avg", output_height=crop_size,
                 output_width=crop_size, sampling_ratio=1, spatial_scale=1.0,
                 coordinate_transformation_mode=ROI_ALIGN_MODE)


def detections(g: GraphBuilder, rois: str, probs: str, deltas: str, config: DetectionConfig, rois_per_image: int
               ) -> tuple[str, ...]:
    """Append the final decode + NMS (module doc): rois ``[N, R, 4]``, probs ``[N·R, C+1]``, deltas ``[N·R, 4C]`` →
    graph tensors named ``config.output_names`` (``NMS``, ``NMS_1``); declare them with ``detections_output_infos``."""
    c, r, k = config.num_classes, rois_per_image, config.keep_top_k
    if r < 1:
        raise ValueError(f"rois_per_image must be at least 1, got {r}")
    scores = slice_axis(g, g.one("Reshape", [probs, g.const("probs_shape", [-1, r, c + 1], np.int64)], "probs_nrc"),
                    0, c, 2, "scores_fg")
    zero, axes_2 = g.const("zero", 0.0, np.float32), g.const("axes_2", [2], np.int64)
    real = g.one("Unsqueeze", [g.one("Greater", [_min_side(g, rois, 2, "roi"), zero], "roi_real"), axes_2],
                 "roi_real_3")
    scores = g.one("Where", [real, scores, g.const("fill", FILL_SCORE, np.float32)], "scores_masked")  # [N, R, C]

    d = g.one("Reshape", [deltas, g.const("deltas_shape", [-1, r, c, 4], np.int64)], "deltas_nrc4")
    d = g.one("Div", [d, g.const("regr_std", config.regr_std, np.float32)], "deltas_scaled")
    lo = slice_axis(g, rois, 0, 2, 2, "roi_lo")
    size0 = g.one("Add", [g.one("Sub", [slice_axis(g, rois, 2, 4, 2, "roi_hi"), lo], "roi_extent"),
                          g.const("one", 1.0, np.float32)], "roi_size")
    centre0 = g.one("Add", [lo, g.one("Mul", [size0, g.const("half", 0.5, np.float32)], "roi_half")], "roi_centre")
    size0 = g.one("Unsqueeze", [size0, axes_2], "roi_size_4")
    centre0 = g.one("Unsqueeze", [centre0, axes_2], "roi_centre_4")
    centre = g.one("Add", [g.one("Mul", [slice_axis(g, d, 0, 2, 3, "txy"), size0], "centre_offset"), centre0], "centre")
    size = g.one("Mul", [g.one("Exp", [slice_axis(g, d, 2, 4, 3, "twh")], "size_factor"), size0], "size")
    boxes = _clip(g, _corners(g, centre, size, "decoded"), config.image_height, config.image_width, "decoded")

    boxes_ncr = g.one("Transpose", [boxes], "boxes_ncr", perm=[0, 2, 1, 3])  # [N, C, R, 4]
    boxes_b = g.one("Reshape", [boxes_ncr, g.const("boxes_b_shape", [-1, r, 4], np.int64)], "boxes_b")  # [N·C, R, 4]
    scores_b = g.one("Reshape", [g.one("Transpose", [scores], "scores_ncr", perm=[0, 2, 1]),
                                 g.const("scores_b_shape", [-1, 1, r], np.int64)], "scores_b")  # [N·C, 1, R]
    selected = non_max_suppression(g, boxes_b, scores_b, k, config.iou_threshold, config.confidence_threshold, "nms")
    top, index, valid = rank_kept(g, scores_b, selected, c * r, k, [-1, c * r], "kept")

    boxes_flat = g.one("Reshape", [boxes_ncr, g.const("boxes_flat_shape", [0, -1, 4], np.int64)], "boxes_flat")
    chosen = g.one("Div", [gather_rows(g, boxes_flat, index, "chosen_px"),
                           g.const("image_size", [config.image_width, config.image_height] * 2, np.float32)],
                   "chosen_norm")
    chosen = g.one("Where", [g.one("Unsqueeze", [valid, axes_2], "valid_3"), chosen, zero], "chosen")
    label = g.one("Cast", [g.one("Div", [index, g.const("rois_i64", r, np.int64)], "class_index")], "class_f32",
                  to=TensorProto.FLOAT)
    label = g.one("Where", [valid, label, g.const("pad_label", PAD_LABEL, np.float32)], "labels")
    confidence = g.one("Where", [valid, top, zero], "confidence")

    out = GraphBuilder(f"{g.prefix}outputs/")
    nms_outputs(out, config.nms_config(), g.one("Shape", [rois], "rois_shape"), valid, chosen, confidence, label,
                 out.const("zero_i64", 0, np.int64), out.const("axes_2", [2], np.int64))
    g.nodes.extend(out.nodes)
    g.initializers.extend(out.initializers)
    return tuple(config.output_names)


def detections_output_infos(config: DetectionConfig, batch: int | str = "N") -> list[onnx.ValueInfoProto]:
    """Graph outputs ``NMS`` float32 ``[N, 1, K, 7]`` and ``NMS_1`` int32 ``[N, 1, 1, 1]``."""
    return output_infos(config.nms_config(), batch)


# --------------------------------------------------------------------------------------------- standalone models

def _model(name: str, build: Callable[[GraphBuilder], Sequence[tuple[str, str]]], prefix: str,
           inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    """A checked opset-17 model of one piece; ``build`` returns (tensor, output name) pairs to expose by Identity."""
    g = GraphBuilder(prefix)
    for tensor, output in build(g):
        g.nodes.append(helper.make_node("Identity", [tensor], [output], name=f"{prefix}outputs/{output}"))
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tlt-two-stage")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def proposals_model(anchors: ArrayLike, config: ProposalConfig, *, batch: int | str = "N") -> onnx.ModelProto:
    """Inputs ``rpn_scores`` ``[N, K]``, ``rpn_deltas`` ``[N, K, 4]``; outputs ``rois``, ``roi_scores``,
    ``roi_count``."""
    k, p = _anchor_geometry(anchors)[0].shape[0], config.post_nms_top_n

    def build(g: GraphBuilder) -> list[tuple[str, str]]:
        t = proposals(g, "rpn_scores", "rpn_deltas", anchors, config)
        return [(t.rois, "rois"), (t.scores, "roi_scores"), (t.count, "roi_count")]

    info = helper.make_tensor_value_info
    return _model("proposals", build, "proposals/",
                  [info("rpn_scores", TensorProto.FLOAT, [batch, k]), info("rpn_deltas", TensorProto.FLOAT, [batch, k, 4])],
                  [info("rois", TensorProto.FLOAT, [batch, p, 4]), info("roi_scores", TensorProto.FLOAT, [batch, p]),
                   info("roi_count", TensorProto.INT32, [batch])])


def crop_and_resize_model(image_size: tuple[int, int], feature_size: tuple[int, int], channels: int, crop_size: int,
                          rois_per_image: int, *, batch: int | str = "N") -> onnx.ModelProto:
    """Inputs ``features`` ``[N, C, H_f, W_f]``, ``rois`` ``[N, R, 4]``; output ``crops`` ``[N·R, C, n, n]``."""
    def build(g: GraphBuilder) -> list[tuple[str, str]]:
        crops = crop_and_resize(g, "features", "rois", image_size=image_size, feature_size=feature_size,
                                crop_size=crop_size)
        return [(crops, "crops")]

    info = helper.make_tensor_value_info
    rows = batch * rois_per_image if isinstance(batch, int) else f"{batch}*{rois_per_image}"
    return _model("crop_and_resize", build, "roi_pool/",
                  [info("features", TensorProto.FLOAT, [batch, channels, *feature_size]),
                   info("rois", TensorProto.FLOAT, [batch, rois_per_image, 4])],
                  [info("crops", TensorProto.FLOAT, [rows, channels, crop_size, crop_size])])


def detections_model(config: DetectionConfig, rois_per_image: int, *, batch: int | str = "N") -> onnx.ModelProto:
    """Inputs ``rois`` ``[N, R, 4]``, ``class_probs`` ``[N·R, C+1]``, ``class_deltas`` ``[N·R, 4C]``; outputs
    ``config.output_names``."""
    c, r = config.num_classes, rois_per_image
    rows = batch * r if isinstance(batch, int) else f"{batch}*{r}"
    info = helper.make_tensor_value_info

    def build(g: GraphBuilder) -> list[tuple[str, str]]:
        detections(g, "rois", "class_probs", "class_deltas", config, r)  # writes the graph outputs itself
        return []

    return _model("detections", build, "detections/",
                  [info("rois", TensorProto.FLOAT, [batch, r, 4]), info("class_probs", TensorProto.FLOAT, [rows, c + 1]),
                   info("class_deltas", TensorProto.FLOAT, [rows, 4 * c])],
                  detections_output_infos(config, batch))
