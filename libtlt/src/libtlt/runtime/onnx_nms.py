"""The detectors' export tail in standard ONNX ops: decoded boxes and class scores → DeepStream's ``NMS`` layout
(SSD family, FasterRCNN) or ``BatchedNMS`` layout (YOLOv3).

Why: TLT/TAO graphs end in TensorRT plugins (``NMS_TRT`` / ``NMSDynamic_TRT`` after ``BatchTilePlugin_TRT``) that
onnxruntime cannot run, that users fail to build, and that TensorRT has deprecated. This tail uses only default-domain
ops (NonMaxSuppression, TopK, ScatterElements/ScatterND, GatherND/GatherElements, Pad, Where, Concat, ...), so one
graph runs in onnxruntime, TensorRT ≥ 8.5 and DeepStream without plugins, with the outputs DeepStream's
``NvDsInferParseCustomNMSTLT`` reads (DETECTORS-SINGLE-STAGE.md §7, DETECTORS-TWO-STAGE.md "Export"):

* ``NMS``   float32 ``[N, 1, keep_top_k, 7]``, rows ``(image id, label, confidence, x1, y1, x2, y2)``, coordinates
  normalised, best first. Rows past the kept count are the plugin's padding ``(image id, -1, 0, 0, 0, 0, 0)``:
  confidence 0 so that any reader that filters by threshold skips them, label −1 so that none names a class.
* ``NMS_1`` int32 ``[N, 1, 1, 1]``: the kept count per image. The plugin declares float but writes int32 bits and
  DeepStream reads an int, so int32 is the same bytes with an honest type.

With ``NmsConfig.layout = "batched"`` the same detections come out as TensorRT's ``batchedNMSPlugin`` writes them,
the four outputs, in this order, that DeepStream's ``NvDsInferParseCustomBatchedNMSTLT`` reads
(``BATCHED_OUTPUT_NAMES``):

* ``BatchedNMS``   int32 ``[N, 1]``: the kept count (the plugin declares and writes int32; the parser reads an int).
* ``BatchedNMS_1`` float32 ``[N, keep_top_k, 4]``: normalised x1, y1, x2, y2; zeros on padding rows.
* ``BatchedNMS_2`` float32 ``[N, keep_top_k]``: confidence; 0 on padding rows.
* ``BatchedNMS_3`` float32 ``[N, keep_top_k]``: label (the rule below); −1 on padding rows.

Both layouts hold the same rows (``batched_reference`` converts ``nms_reference``'s); readers take the first
``count`` rows per image whatever their label (``unpack_nms``, ``unpack_batched``).

What the tail computes, per image (``nms_reference`` does the same in NumPy; onnxruntime's output equals it bit for bit):

1. Scores ``[N, A, C_in]``; the column ``background_class`` (if any) is dropped. Per class, only the ``top_k`` best
   anchors are candidates (the plugin's ``topK``; None = all, as TF ``combined_non_max_suppression``).
2. Candidates need ``score > confidence_threshold`` (strict, as onnxruntime's NonMaxSuppression).
3. Greedy NMS per class, best score first (ties: lower anchor first); a box is dropped when its IoU with a kept box
   of its class is ``> clustering_iou_threshold``. IoU has no +1; boxes of zero area never suppress nor are suppressed
   (onnxruntime's rule).
4. All kept boxes of the image ranked by score (ties: lower class column, then lower anchor); the first
   ``keep_top_k`` are written.
5. Boxes are clipped to [0, 1] on output only (NMS sees the decoded boxes, as TF ``combined_non_max_suppression``
   with ``clip_boxes``), and written x1, y1, x2, y2 whatever ``box_order`` the input had.

Labels: a detection's label is the column of its score in the *input* scores plus ``label_offset``. SSD/DSSD
(softmax, background column 0) thus get 1..C as labels.txt "background first" wants; FasterRCNN (background last)
gets 0..C−1; a head without background column that must follow SSD's numbering passes ``label_offset=1``.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import TensorProto, helper, numpy_helper

#: Opset of the standalone tail model (tlt-export's ``DEFAULT_OPSET``); ``append_nms`` needs the model at ≥ 13.
OPSET = 17
MIN_OPSET = 13
DEFAULT_OUTPUT_NAMES = ("NMS", "NMS_1")
#: The ``batched`` layout's outputs: keep count, boxes, scores, classes (TensorRT batchedNMSPlugin's order).
BATCHED_OUTPUT_NAMES = ("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")
#: Fill score for "not a candidate" and "no detection": float16's lowest finite value, so that ``to_fp16`` keeps it
#: exact and no real (probability or logit) score reaches it.
FILL_SCORE = -65504.0
#: Label of a padding row (the plugin's); its confidence and box are 0.
PAD_LABEL = -1.0
ROW_WIDTH = 7

BoxOrder = Literal["xyxy", "yxyx"]
Layout = Literal["nms", "batched"]
#: How many outputs each layout has.
LAYOUT_OUTPUTS: dict[str, int] = {"nms": 2, "batched": 4}


@dataclass(frozen=True)
class NmsConfig:
    """The post-processing parameters, shared by the ONNX tail and the NumPy reference so that they cannot drift.

    ``confidence_threshold`` and ``clustering_iou_threshold`` are the spec's ``nms_config`` fields; ``keep_top_k`` is
    the spec's ``top_k`` (the plugin's keepTopK) and ``top_k`` the per-class candidates before NMS (the plugin's
    topK, TAO uses 2·keep_top_k; None keeps every anchor, which is what the Keras model's combined NMS does).
    ``layout`` picks the outputs (module doc): ``"nms"`` needs two ``output_names``, ``"batched"`` four (pass
    ``BATCHED_OUTPUT_NAMES`` for DeepStream's).
    """

    confidence_threshold: float
    clustering_iou_threshold: float
    keep_top_k: int
    top_k: int | None = None
    background_class: int | None = None
    label_offset: int = 0
    box_order: BoxOrder = "xyxy"
    clip_boxes: bool = True
    output_names: tuple[str, ...] = DEFAULT_OUTPUT_NAMES
    layout: Layout = "nms"

    def __post_init__(self) -> None:
        if not math.isfinite(self.confidence_threshold) or self.confidence_threshold < FILL_SCORE:
            raise ValueError(f"confidence_threshold must be finite and >= {FILL_SCORE}, got {self.confidence_threshold}")
        if not 0.0 <= self.clustering_iou_threshold <= 1.0:
            raise ValueError(f"clustering_iou_threshold must lie in [0, 1], got {self.clustering_iou_threshold}")
        if self.keep_top_k < 1:
            raise ValueError(f"keep_top_k must be at least 1, got {self.keep_top_k}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got {self.top_k}")
        if self.background_class is not None and self.background_class < 0:
            raise ValueError(f"background_class must be a column index >= 0 or None, got {self.background_class}")
        if self.box_order not in ("xyxy", "yxyx"):
            raise ValueError(f"box_order must be 'xyxy' or 'yxyx', got {self.box_order!r}")
        if self.layout not in LAYOUT_OUTPUTS:
            raise ValueError(f"layout must be 'nms' or 'batched', got {self.layout!r}")
        wanted = LAYOUT_OUTPUTS[self.layout]
        names = self.output_names
        if (not isinstance(names, tuple) or len(names) != wanted or len(set(names)) != wanted
                or not all(isinstance(n, str) and n for n in names)):
            raise ValueError(f"output_names of layout {self.layout!r} must be a tuple of {wanted} distinct non-empty "
                             f"names, got {names!r}")

    @property
    def max_per_class(self) -> int:
        """NonMaxSuppression's per-class cap: more than ``keep_top_k`` boxes of one class can never be written, and
        at most ``top_k`` candidates exist, so the cap changes nothing but the work done."""
        return self.keep_top_k if self.top_k is None else min(self.top_k, self.keep_top_k)

    def foreground_columns(self, num_score_columns: int) -> list[int]:
        """Input score columns that are classes (all but ``background_class``)."""
        if num_score_columns < 1:
            raise ValueError(f"scores need at least one column, got {num_score_columns}")
        if self.background_class is not None and self.background_class >= num_score_columns:
            raise ValueError(f"background_class {self.background_class} is not a column of scores with "
                             f"{num_score_columns} columns")
        columns = [c for c in range(num_score_columns) if c != self.background_class]
        if not columns:
            raise ValueError("scores hold only the background column")
        return columns


# --------------------------------------------------------------------------------------------- NumPy reference

def _corners(boxes: NDArray[np.float32], order: BoxOrder) -> NDArray[np.float32]:
    """Boxes as (x_min, y_min, x_max, y_max) whatever corner pair was given (NonMaxSuppression accepts any)."""
    xy = boxes if order == "xyxy" else boxes[..., [1, 0, 3, 2]]
    return np.concatenate([np.minimum(xy[..., :2], xy[..., 2:]), np.maximum(xy[..., :2], xy[..., 2:])], axis=-1)


def _suppressed_block(best: NDArray[np.float32], others: NDArray[np.float32],
                      threshold: np.float32) -> NDArray[np.bool_]:
    """``[B, M]``: which of ``others`` ``[M, 4]`` each kept box of ``best`` ``[B, 4]`` suppresses, with onnxruntime's
    float32 arithmetic and rules (element for element the same operations as one box against the others)."""
    b = best.T[:, :, None]  # [4, B, 1]
    o = others.T[:, None, :]  # [4, 1, M]
    ix0 = np.maximum(b[0], o[0])
    iy0 = np.maximum(b[1], o[1])
    ix1 = np.minimum(b[2], o[2])
    iy1 = np.minimum(b[3], o[3])
    inter = (ix1 - ix0) * (iy1 - iy0)
    area_best = (b[2] - b[0]) * (b[3] - b[1])
    area_others = (o[2] - o[0]) * (o[3] - o[1])
    union = area_best + area_others - inter
    overlapping = (ix1 > ix0) & (iy1 > iy0) & (inter > 0) & (area_best > 0) & (area_others > 0) & (union > 0)
    iou = inter / np.where(overlapping, union, np.float32(1))
    return overlapping & (iou > threshold)


#: Candidates whose suppression of the later ones is computed together (one NumPy pass per block instead of one per
#: kept box: the per-call overhead, not the arithmetic, dominated the greedy loop).
NMS_BLOCK = 32


def class_nms(corners: NDArray[np.float32], scores: NDArray[np.float32], config: NmsConfig) -> NDArray[np.intp]:
    """Kept anchor indices of one image and class, best first.

    Greedy NMS over the candidates (score > threshold, best first, ties by lower anchor, at most ``top_k``). The
    candidates are visited in blocks of :data:`NMS_BLOCK`: each block's IoU with every later live candidate is
    computed at once (with the same float32 arithmetic as one box at a time, so the result is bit-identical), then
    the block's boxes are walked in order, each live one kept and the later ones it overlaps killed."""
    above = np.flatnonzero(scores > np.float32(config.confidence_threshold))
    order = above[np.argsort(-scores[above], kind="stable")]  # ascending indices first among equal scores
    if config.top_k is not None:
        order = order[:config.top_k]
    iou_threshold = np.float32(config.clustering_iou_threshold)
    boxes = corners[order]
    alive = np.ones(order.size, dtype=bool)
    kept: list[int] = []
    for start in range(0, order.size, NMS_BLOCK):
        rows = np.flatnonzero(alive[start:start + NMS_BLOCK]) + start
        if not rows.size:
            continue
        later = np.flatnonzero(alive[start + 1:]) + start + 1
        killed = _suppressed_block(boxes[rows], boxes[later], iou_threshold)  # [rows, later]
        for row_number, row in enumerate(rows.tolist()):
            if not alive[row]:  # killed by a box kept earlier in this block
                continue
            kept.append(int(order[row]))
            if len(kept) == config.max_per_class:
                return np.asarray(kept, dtype=np.intp)
            alive[later[killed[row_number]]] = False
    return np.asarray(kept, dtype=np.intp)


def _check_inputs(boxes: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    b = np.asarray(boxes, dtype=np.float32)
    s = np.asarray(scores, dtype=np.float32)
    if b.ndim != 3 or b.shape[-1] != 4 or s.ndim != 3 or s.shape[:2] != b.shape[:2]:
        raise ValueError(f"expected boxes [N, A, 4] and scores [N, A, C], got {b.shape} and {s.shape}")
    return b, s


def nms_reference(boxes: ArrayLike, scores: ArrayLike, config: NmsConfig) -> tuple[NDArray[np.float32],
                                                                                      NDArray[np.int32]]:
    """The tail in NumPy: ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C_in]`` → (``NMS`` ``[N, 1, K, 7]``,
    ``NMS_1`` ``[N, 1, 1, 1]``), equal to onnxruntime's output of the ONNX tail (same order, same float32 values).

    The specification of the tail in plain code, for tests; tools run the tail itself (:func:`run_tail`).
    """
    b, s = _check_inputs(boxes, scores)
    batch, anchors, _ = s.shape
    columns = config.foreground_columns(s.shape[2])
    corners = _corners(b, config.box_order)
    xyxy = b if config.box_order == "xyxy" else b[..., [1, 0, 3, 2]]
    k = config.keep_top_k
    out = np.zeros((batch, 1, k, ROW_WIDTH), dtype=np.float32)
    out[:, 0, :, 0] = np.arange(batch, dtype=np.float32)[:, None]
    out[:, 0, :, 1] = PAD_LABEL
    counts = np.zeros((batch, 1, 1, 1), dtype=np.int32)
    for n in range(batch):
        found = [(class_nms(corners[n], s[n, :, col], config), c) for c, col in enumerate(columns)]
        anchor = np.concatenate([kept for kept, _ in found]).astype(np.intp)
        cls = np.concatenate([np.full(kept.size, c, dtype=np.intp) for kept, c in found])
        score = s[n, anchor, np.asarray(columns, dtype=np.intp)[cls]]
        # Ties are ranked by the flat index class·A + anchor, as TopK over the dense [C·A] scores does.
        rank = np.lexsort((cls * anchors + anchor, -score))[:k]
        count = rank.size
        counts[n, 0, 0, 0] = count
        chosen = xyxy[n, anchor[rank]]
        if config.clip_boxes:
            chosen = np.clip(chosen, np.float32(0), np.float32(1))
        out[n, 0, :count, 1] = np.asarray(columns, dtype=np.float32)[cls[rank]] + np.float32(config.label_offset)
        out[n, 0, :count, 2] = score[rank]
        out[n, 0, :count, 3:] = chosen
    return out, counts


def batched_reference(boxes: ArrayLike, scores: ArrayLike, config: NmsConfig) -> tuple[
        NDArray[np.int32], NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """The ``batched`` layout in NumPy: (count int32 ``[N, 1]``, boxes ``[N, K, 4]``, scores ``[N, K]``, classes
    ``[N, K]``), ``nms_reference``'s rows rearranged, equal to onnxruntime's output of the tail with that layout."""
    rows, counts = nms_reference(boxes, scores, config)
    image_rows = rows[:, 0]
    return (counts.reshape(-1, 1).copy(), np.ascontiguousarray(image_rows[..., 3:]),
            np.ascontiguousarray(image_rows[..., 2]), np.ascontiguousarray(image_rows[..., 1]))


def run_tail(boxes: ArrayLike, scores: ArrayLike, config: NmsConfig) -> tuple[NDArray[Any], ...]:
    """The tail itself in onnxruntime on ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C_in]``: the outputs of
    ``config.layout`` in ``config.output_names``' order, exactly what the exported graph writes.

    Tools reduce a Keras model's decoded outputs this way, so that a .tlt and its engine give the same detections by
    construction; it is also ~40x faster than :func:`nms_reference` (onnxruntime's C++ NonMaxSuppression against a
    greedy loop in Python: 10 ms against 430 ms for 8 images of 11,529 anchors and 3 classes)."""
    b, s = _check_inputs(boxes, scores)
    session = _tail_session(config, s.shape[2])
    return tuple(session.run(None, {"boxes": np.ascontiguousarray(b), "scores": np.ascontiguousarray(s)}))


@functools.lru_cache(maxsize=8)
def _tail_session(config: NmsConfig, num_score_columns: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(nms_tail_model(config, num_score_columns).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Detections:
    """One image's rows of an ``NMS`` output: ``labels`` ``[K]`` (int), ``scores`` ``[K]``, ``boxes`` ``[K, 4]``
    (normalised x1, y1, x2, y2)."""

    labels: NDArray[np.int64]
    scores: NDArray[np.float32]
    boxes: NDArray[np.float32]


def unpack_nms(nms: ArrayLike, count: ArrayLike) -> list[Detections]:
    """Per image, the kept rows of ``NMS`` ``[N, 1, K, 7]`` given ``NMS_1`` (any shape with N values): what the
    DeepStream parser reads, for tools that read engine or reference output in Python."""
    rows = np.asarray(nms, dtype=np.float32)
    kept = np.asarray(count).reshape(-1).astype(np.int64)
    if rows.ndim != 4 or rows.shape[1] != 1 or rows.shape[3] != ROW_WIDTH or kept.size != rows.shape[0]:
        raise ValueError(f"expected NMS [N, 1, K, 7] and N counts, got {rows.shape} and {kept.size} counts")
    result = []
    for n in range(rows.shape[0]):
        image = rows[n, 0, :min(int(kept[n]), rows.shape[2])]
        result.append(Detections(image[:, 1].astype(np.int64), image[:, 2].copy(), image[:, 3:].copy()))
    return result


def unpack_batched(count: ArrayLike, boxes: ArrayLike, scores: ArrayLike, classes: ArrayLike) -> list[Detections]:
    """Per image, the first ``count[n]`` rows of the ``batched`` layout (``count`` any shape with N values, boxes
    ``[N, K, 4]``, scores and classes ``[N, K]``). Every row below the count is kept whatever its class: a public
    version of DeepStream's ``NvDsInferParseCustomBatchedNMSTLT`` has an inverted class check that drops them."""
    kept = np.asarray(count).reshape(-1).astype(np.int64)
    b = np.asarray(boxes, dtype=np.float32)
    s = np.asarray(scores, dtype=np.float32)
    c = np.asarray(classes, dtype=np.float32)
    if (b.ndim != 3 or b.shape[2] != 4 or s.shape != b.shape[:2] or c.shape != b.shape[:2]
            or kept.size != b.shape[0]):
        raise ValueError(f"expected N counts, boxes [N, K, 4], scores [N, K] and classes [N, K], got {kept.size} "
                         f"counts, {b.shape}, {s.shape} and {c.shape}")
    result = []
    for n in range(b.shape[0]):
        rows = min(max(int(kept[n]), 0), b.shape[1])
        result.append(Detections(c[n, :rows].astype(np.int64), s[n, :rows].copy(), b[n, :rows].copy()))
    return result


# --------------------------------------------------------------------------------------------- ONNX graph

class GraphBuilder:
    """Collects nodes and constants to add to an ONNX graph; every name it makes starts with ``prefix`` (the NMS
    tail, the detectors' box decoders)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: ArrayLike, dtype: type[np.generic]) -> str:
        full = f"{self.prefix}{name}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), full))
        return full

    def op(self, op_type: str, inputs: Sequence[str], name: str, outputs: int = 1, **attrs: Any) -> list[str]:
        full = f"{self.prefix}{name}"
        names = [full] if outputs == 1 else [f"{full}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=full, **attrs))
        return names

    def one(self, op_type: str, inputs: Sequence[str], name: str, **attrs: Any) -> str:
        return self.op(op_type, inputs, name, **attrs)[0]

    def add_to(self, graph: onnx.GraphProto) -> None:
        graph.node.extend(self.nodes)
        graph.initializer.extend(self.initializers)


def _build(tail: GraphBuilder, boxes: str, scores: str, config: NmsConfig, num_score_columns: int,
           num_anchors: int | None) -> None:
    """Nodes from ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C_in]`` to the layout's outputs (see module doc)."""
    columns = config.foreground_columns(num_score_columns)
    k = config.keep_top_k
    fill = tail.const("fill", FILL_SCORE, np.float32)

    picked = scores
    if len(columns) < num_score_columns:
        picked = tail.one("Gather", [scores, tail.const("foreground_columns", columns, np.int64)], "scores_fg", axis=2)
    class_scores = tail.one("Transpose", [picked], "scores_nca", perm=[0, 2, 1])  # [N, C, A]
    shape = tail.one("Shape", [class_scores], "shape_nca")
    filled = tail.one("ConstantOfShape", [shape], "fill_nca",
                      value=numpy_helper.from_array(np.asarray([FILL_SCORE], np.float32)))

    if config.top_k is not None and (num_anchors is None or config.top_k < num_anchors):
        # Per-class candidates: keep the top_k scores of each class and set the others to the fill score.
        if num_anchors is None:
            anchors_1 = tail.one("Gather", [shape, tail.const("axis2", [2], np.int64)], "anchors_1d")
            top_k = tail.one("Min", [anchors_1, tail.const("top_k", [config.top_k], np.int64)], "top_k_or_anchors")
        else:
            top_k = tail.const("top_k", [config.top_k], np.int64)
        best, best_idx = tail.op("TopK", [class_scores, top_k], "pre_nms_top_k", outputs=2, axis=2)
        class_scores = tail.one("ScatterElements", [filled, best_idx, best], "scores_top_k", axis=2)

    selected = tail.one("NonMaxSuppression", [
        boxes, class_scores,
        tail.const("max_per_class", [config.max_per_class], np.int64),
        tail.const("iou_threshold", [config.clustering_iou_threshold], np.float32),
        tail.const("score_threshold", [config.confidence_threshold], np.float32),
    ], "nms", center_point_box=0)  # [M, 3] (image, class, anchor)

    # Dense re-ranking without loops: kept scores at their (image, class, anchor) place, fill elsewhere, then one
    # TopK per image over the flat C·A scores (padded by K fill values so that K never exceeds the axis).
    kept_scores = tail.one("GatherND", [class_scores, selected], "kept_scores")
    dense = tail.one("ScatterND", [filled, selected, kept_scores], "dense_nca")
    flat = tail.one("Reshape", [dense, tail.const("flat_shape", [0, -1], np.int64)], "dense_flat")
    padded = tail.one("Pad", [flat, tail.const("pads", [0, 0, 0, k], np.int64), fill], "dense_padded",
                      mode="constant")
    top_scores, top_idx = tail.op("TopK", [padded, tail.const("keep_top_k", [k], np.int64)], "keep_top_k", outputs=2,
                                  axis=1)  # [N, K]
    valid = tail.one("Greater", [top_scores, fill], "valid")
    zero_i = tail.const("zero_i64", 0, np.int64)
    flat_idx = tail.one("Where", [valid, top_idx, zero_i], "flat_index")
    anchors = tail.one("Gather", [shape, tail.const("axis2_scalar", 2, np.int64)], "anchors")
    cls = tail.one("Div", [flat_idx, anchors], "class_index")
    anchor = tail.one("Sub", [flat_idx, tail.one("Mul", [cls, anchors], "class_offset")], "anchor_index")

    labels_table = [float(col + config.label_offset) for col in columns]
    labels = tail.one("Gather", [tail.const("label_table", labels_table, np.float32), cls], "labels_all")
    labels = tail.one("Where", [valid, labels, tail.const("pad_label", PAD_LABEL, np.float32)], "labels")
    zero_f = tail.const("zero_f32", 0.0, np.float32)
    confidence = tail.one("Where", [valid, top_scores, zero_f], "confidence")

    axis2 = tail.const("axes_2", [2], np.int64)
    anchor_4 = tail.one("Expand", [tail.one("Unsqueeze", [anchor, axis2], "anchor_n_k_1"),
                                   tail.const("expand_4", [1, 1, 4], np.int64)], "anchor_n_k_4")
    chosen = tail.one("GatherElements", [boxes, anchor_4], "boxes_kept", axis=1)  # [N, K, 4]
    if config.box_order == "yxyx":
        chosen = tail.one("Gather", [chosen, tail.const("to_xyxy", [1, 0, 3, 2], np.int64)], "boxes_xyxy", axis=2)
    if config.clip_boxes:
        chosen = tail.one("Clip", [chosen, zero_f, tail.const("one_f32", 1.0, np.float32)], "boxes_clipped")
    valid_3 = tail.one("Unsqueeze", [valid, axis2], "valid_n_k_1")
    chosen = tail.one("Where", [valid_3, chosen, zero_f], "boxes_out")
    # valid, labels, confidence [N, K] and chosen [N, K, 4] hold the detections; only their layout differs.
    if config.layout == "batched":
        _batched_outputs(tail, config, valid, chosen, confidence, labels)
    else:
        nms_outputs(tail, config, shape, valid, chosen, confidence, labels, zero_i, axis2)


def _count_f32(tail: GraphBuilder, valid: str, keepdims: int) -> str:
    """The kept count per image in float32, ``[N]`` or ``[N, 1]``: it sums in float (exact far beyond any K) so that
    no integer reduction is needed in TensorRT."""
    valid_f = tail.one("Cast", [valid], "valid_f32", to=TensorProto.FLOAT)
    return tail.one("ReduceSum", [valid_f, tail.const("axes_1c", [1], np.int64)], "count_f32", keepdims=keepdims)


def _output(tail: GraphBuilder, op_type: str, inputs: Sequence[str], name: str, **attrs: Any) -> None:
    """A node whose output is the graph output ``name``."""
    tail.nodes.append(helper.make_node(op_type, list(inputs), [name], name=f"{tail.prefix}{name}", **attrs))


def nms_outputs(tail: GraphBuilder, config: NmsConfig, shape: str, valid: str, chosen: str, confidence: str, labels: str,
                 zero_i: str, axis2: str) -> None:
    """``NMS`` rows (image id, label, confidence, box) ``[N, 1, K, 7]`` and ``NMS_1`` ``[N, 1, 1, 1]``."""
    k = config.keep_top_k
    batch = tail.one("Gather", [shape, tail.const("axis0_scalar", 0, np.int64)], "batch")
    image_ids = tail.one("Range", [zero_i, batch, tail.const("one_i64", 1, np.int64)], "image_range")
    image_ids = tail.one("Cast", [image_ids], "image_range_f32", to=TensorProto.FLOAT)
    image_ids = tail.one("Unsqueeze", [image_ids, tail.const("axes_1", [1], np.int64)], "image_n_1")
    image_ids = tail.one("Expand", [image_ids, tail.const("expand_k", [1, k], np.int64)], "image_n_k")

    columns_3 = [tail.one("Unsqueeze", [t, axis2], f"{name}_n_k_1")
                 for t, name in ((image_ids, "image_id"), (labels, "label"), (confidence, "confidence"))]
    rows = tail.one("Concat", [*columns_3, chosen], "rows", axis=2)  # [N, K, 7]
    nms_name, count_name = config.output_names
    _output(tail, "Unsqueeze", [rows, tail.const("axes_1b", [1], np.int64)], nms_name)
    count = tail.one("Cast", [_count_f32(tail, valid, keepdims=0)], "count_i32", to=TensorProto.INT32)
    _output(tail, "Reshape", [count, tail.const("count_shape", [-1, 1, 1, 1], np.int64)], count_name)


def _batched_outputs(tail: GraphBuilder, config: NmsConfig, valid: str, chosen: str, confidence: str, labels: str) -> None:
    """batchedNMSPlugin's count int32 ``[N, 1]``, boxes ``[N, K, 4]``, scores ``[N, K]``, classes ``[N, K]``."""
    count_name, boxes_name, scores_name, classes_name = config.output_names
    _output(tail, "Cast", [_count_f32(tail, valid, keepdims=1)], count_name, to=TensorProto.INT32)
    _output(tail, "Identity", [chosen], boxes_name)
    _output(tail, "Identity", [confidence], scores_name)
    _output(tail, "Identity", [labels], classes_name)


def output_infos(config: NmsConfig, batch: int | str) -> list[onnx.ValueInfoProto]:
    k = config.keep_top_k
    if config.layout == "batched":
        count_name, boxes_name, scores_name, classes_name = config.output_names
        return [helper.make_tensor_value_info(count_name, TensorProto.INT32, [batch, 1]),
                helper.make_tensor_value_info(boxes_name, TensorProto.FLOAT, [batch, k, 4]),
                helper.make_tensor_value_info(scores_name, TensorProto.FLOAT, [batch, k]),
                helper.make_tensor_value_info(classes_name, TensorProto.FLOAT, [batch, k])]
    nms_name, count_name = config.output_names
    return [helper.make_tensor_value_info(nms_name, TensorProto.FLOAT, [batch, 1, k, ROW_WIDTH]),
            helper.make_tensor_value_info(count_name, TensorProto.INT32, [batch, 1, 1, 1])]


def nms_tail_model(config: NmsConfig, num_score_columns: int, *, num_anchors: int | None = None,
                   batch: int | str = "N", opset: int = OPSET) -> onnx.ModelProto:
    """A standalone model of the tail: inputs ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C_in]`` float32, outputs
    ``config.output_names`` of its layout. For tests, and for architectures that decode in Keras and export boxes and scores."""
    if opset < MIN_OPSET:
        raise ValueError(f"the NMS tail needs opset {MIN_OPSET} or later, got {opset}")
    anchors: int | str = num_anchors if num_anchors is not None else "A"
    tail = GraphBuilder(f"{config.output_names[0]}/")
    _build(tail, "boxes", "scores", config, num_score_columns, num_anchors)
    inputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch, anchors, 4]),
              helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, anchors, num_score_columns])]
    graph = helper.make_graph(tail.nodes, "nms_tail", inputs, output_infos(config, batch), tail.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tlt-nms-tail")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _static_dims(model: onnx.ModelProto, name: str) -> list[int | str | None]:
    """The dimensions shape inference knows for tensor ``name`` (int, symbolic name, or None)."""
    graph = model.graph
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if info.name == name and info.type.tensor_type.HasField("shape"):
            return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in info.type.tensor_type.shape.dim]
    raise ValueError(f"the model has no tensor {name!r} of known rank")


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def append_nms(model: onnx.ModelProto, boxes: str, scores: str, config: NmsConfig, *,
               keep_outputs: bool = False) -> onnx.ModelProto:
    """A copy of ``model`` whose tensors ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C_in]`` feed the tail.

    The outputs become ``config.output_names``: ``NMS``, ``NMS_1`` or the four ``BatchedNMS*`` of the batched layout
    (DeepStream's parsers want exactly these, in this order); with ``keep_outputs`` the old outputs stay after them. ``C_in`` must be known to shape inference.
    """
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ValueError(f"the NMS tail needs opset {MIN_OPSET} or later; this model uses opset {opset}")
    inferred = onnx.shape_inference.infer_shapes(model)
    box_dims, score_dims = _static_dims(inferred, boxes), _static_dims(inferred, scores)
    if len(box_dims) != 3 or box_dims[2] not in (4, None) or len(score_dims) != 3:
        raise ValueError(f"expected boxes [N, A, 4] and scores [N, A, C], got {box_dims} and {score_dims}")
    if not isinstance(score_dims[2], int) or score_dims[2] < 1:
        raise ValueError(f"the number of score columns of {scores!r} is not known to shape inference")
    anchors = next((d for d in (score_dims[1], box_dims[1]) if isinstance(d, int) and d > 0), None)
    batch = score_dims[0] if score_dims[0] not in (None, 0) else "N"

    result = copy.deepcopy(model)
    graph = result.graph
    prefix = f"{config.output_names[0]}/"
    taken = _all_names(graph)
    clashes = sorted(n for n in taken if n in config.output_names or n.startswith(prefix))
    if clashes:
        raise ValueError(f"the model already has tensors or nodes named {', '.join(clashes[:3])}")
    tail = GraphBuilder(prefix)
    _build(tail, boxes, scores, config, score_dims[2], anchors)
    graph.node.extend(tail.nodes)
    graph.initializer.extend(tail.initializers)
    old_outputs = list(graph.output)
    del graph.output[:]
    graph.output.extend(output_infos(config, batch or "N"))
    if keep_outputs:
        graph.output.extend(old_outputs)
    onnx.checker.check_model(result)
    return result
