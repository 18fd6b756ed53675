"""Box kernel of the anchor-based detectors: IoU, formats, coders, anchors, matchers, samplers and NMS.

Written once for SSD, DSSD, RetinaNet, YOLOv3, FasterRCNN and MaskRCNN (DETECTORS-SINGLE-STAGE.md §1 and §10,
DETECTORS-TWO-STAGE.md §1–§3 and §7). Boxes are corners ``(x1, y1, x2, y2)`` with continuous coordinates
(width = x2 − x1) unless a name or a ``plus_one`` flag says otherwise: ``plus_one`` is TAO FasterRCNN's pixel
convention (width = x2 − x1 + 1). MaskRCNN's ``(y1, x1, y2, x2)`` order is one :func:`swap_xy` away.

Each algorithm that runs inside a model or a ``tf.data`` map has a NumPy version (float64, the test oracle; used by
label encoders and exporters) and a TensorFlow twin ``<name>_tf`` that computes in its input's floating dtype, runs
inside ``tf.function`` with static or dynamic box counts and gives the same result (tests/layers/test_boxes.py).
TensorFlow is imported only when a twin runs, so importing this module stays cheap. Anchor generators are NumPy only:
anchors are constants built once from the spec (a TF model embeds them).

Labels of matchers and samplers: :data:`POSITIVE` 1, :data:`NEGATIVE` 0 (background), :data:`IGNORE` −1 (neutral;
no loss). Matched GT indices are :data:`UNMATCHED` (−1) wherever the label is not positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import tensorflow as tf

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1
UNMATCHED = -1
#: Upper bound of a decoded log size ratio, ln(1000/16) (Detectron's and torchvision's): untrained heads cannot
#: overflow exp. TAO has no clamp; a decoded box is at most 62.5 times its anchor.
BBOX_EXP_CLIP = math.log(1000.0 / 16.0)
#: SSD's usual variances (cx, cy, w, h); the spec's ``variances`` replace them.
DEFAULT_VARIANCES = (0.1, 0.1, 0.2, 0.2)

Pair = float | Sequence[float]


def _boxes(boxes: ArrayLike) -> FloatArray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _float_tensor(x: Any) -> tf.Tensor:
    """A floating tensor; lists of Python numbers become float32, NumPy float64 stays float64."""
    import tensorflow as tf

    t = tf.convert_to_tensor(x)
    return t if t.dtype.is_floating else tf.cast(t, tf.float32)


def _like(x: Any, reference: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.cast(tf.convert_to_tensor(x), reference.dtype)


# ------------------------------------------------------------------------------------------------------ IoU

def _areas(boxes: FloatArray) -> FloatArray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def _pair_iou(a: FloatArray, b: FloatArray, area_a: FloatArray, area_b: FloatArray) -> FloatArray:
    """IoU of row-aligned boxes (broadcasting); 0 where the union is empty."""
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros(np.broadcast(inter, union).shape), where=union > 0)


def iou_matrix(boxes_a: ArrayLike, boxes_b: ArrayLike, *, plus_one: bool = False) -> FloatArray:
    """Pairwise IoU ``[N, M]`` of x1, y1, x2, y2 boxes (continuous coordinates: width = x2 − x1).

    ``plus_one`` uses TAO FasterRCNN's pixel convention instead (width = x2 − x1 + 1, inclusive corners).
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    if plus_one:  # inclusive pixel corners are continuous corners one pixel further right and down
        a, b = a + (0.0, 0.0, 1.0, 1.0), b + (0.0, 0.0, 1.0, 1.0)
    return _pair_iou(a[:, None, :], b[None, :, :], _areas(a)[:, None], _areas(b)[None, :])


def iou_matrix_tf(boxes_a: Any, boxes_b: Any, *, plus_one: bool = False) -> tf.Tensor:
    """TF twin of :func:`iou_matrix`."""
    import tensorflow as tf

    a = tf.reshape(_float_tensor(boxes_a), [-1, 4])
    b = tf.reshape(_like(boxes_b, a), [-1, 4])
    if plus_one:
        shift = tf.constant([0.0, 0.0, 1.0, 1.0], a.dtype)
        a, b = a + shift, b + shift
    a, b = a[:, None, :], b[None, :, :]
    iw = tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0])
    ih = tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1])
    inter = tf.nn.relu(iw) * tf.nn.relu(ih)
    area_a = tf.nn.relu(a[..., 2] - a[..., 0]) * tf.nn.relu(a[..., 3] - a[..., 1])
    area_b = tf.nn.relu(b[..., 2] - b[..., 0]) * tf.nn.relu(b[..., 3] - b[..., 1])
    return tf.math.divide_no_nan(inter, area_a + area_b - inter)  # the union is never negative


# ---------------------------------------------------------------------------------------------- box formats

def corners_to_centres(boxes: ArrayLike, *, plus_one: bool = False) -> FloatArray:
    """``[..., 4]`` corners → ``(cx, cy, w, h)``; with ``plus_one`` w = x2 − x1 + 1 and cx = x1 + w/2 (TAO FRCNN)."""
    b = np.asarray(boxes, dtype=np.float64)
    extra = 1.0 if plus_one else 0.0
    size = b[..., 2:] - b[..., :2] + extra
    return np.concatenate([b[..., :2] + size / 2.0, size], axis=-1)


def corners_to_centres_tf(boxes: Any, *, plus_one: bool = False) -> tf.Tensor:
    """TF twin of :func:`corners_to_centres`."""
    import tensorflow as tf

    b = _float_tensor(boxes)
    size = b[..., 2:] - b[..., :2] + (1.0 if plus_one else 0.0)
    return tf.concat([b[..., :2] + size / 2.0, size], axis=-1)


def centres_to_corners(boxes: ArrayLike) -> FloatArray:
    """``[..., 4]`` ``(cx, cy, w, h)`` → corners centre ± size/2 (also under TAO's +1 convention, which decodes so)."""
    b = np.asarray(boxes, dtype=np.float64)
    half = b[..., 2:] / 2.0
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def centres_to_corners_tf(boxes: Any) -> tf.Tensor:
    """TF twin of :func:`centres_to_corners`."""
    import tensorflow as tf

    b = _float_tensor(boxes)
    half = b[..., 2:] / 2.0
    return tf.concat([b[..., :2] - half, b[..., :2] + half], axis=-1)


def swap_xy(boxes: ArrayLike) -> FloatArray:
    """``(x1, y1, x2, y2)`` ↔ ``(y1, x1, y2, x2)`` (MaskRCNN's order); its own inverse."""
    return np.asarray(boxes, dtype=np.float64)[..., [1, 0, 3, 2]]


def swap_xy_tf(boxes: Any) -> tf.Tensor:
    """TF twin of :func:`swap_xy`."""
    import tensorflow as tf

    return tf.gather(_float_tensor(boxes), [1, 0, 3, 2], axis=-1)


def clip_boxes(boxes: ArrayLike, x_max: float, y_max: float) -> FloatArray:
    """Corners clipped to ``[0, x_max] × [0, y_max]``: ``W − 1, H − 1`` for FRCNN proposals, ``1, 1`` normalised."""
    b = np.asarray(boxes, dtype=np.float64)
    upper = np.array([x_max, y_max, x_max, y_max])
    return np.clip(b, 0.0, upper)


def clip_boxes_tf(boxes: Any, x_max: float, y_max: float) -> tf.Tensor:
    """TF twin of :func:`clip_boxes`."""
    import tensorflow as tf

    b = _float_tensor(boxes)
    upper = tf.constant([x_max, y_max, x_max, y_max], b.dtype)
    return tf.clip_by_value(b, tf.zeros_like(upper), upper)


# ----------------------------------------------------------------------------------------------- box coders
#
# Both coders are one formula: with centres/sizes g (box) and a (anchor or ROI) and per-coordinate factors f,
# t_xy = (g_xy − a_xy)/a_wh · f_xy and t_wh = ln(g_wh/a_wh) · f_wh. SSD divides by variances (f = 1/v), FRCNN
# and MaskRCNN multiply by weights (classifier_regr_std, bbox_reg_weights; (1, 1, 1, 1) for the RPN).

def _encode(g: FloatArray, a: FloatArray, scale_xy: FloatArray, scale_wh: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):  # a zero-size box encodes to −inf and decodes back to zero size
        log_ratio = np.log(g[..., 2:] / a[..., 2:])
    return np.concatenate([(g[..., :2] - a[..., :2]) / a[..., 2:] * scale_xy, log_ratio * scale_wh], axis=-1)


def _decode(t: FloatArray, a: FloatArray, scale_xy: FloatArray, scale_wh: FloatArray, clip: float) -> FloatArray:
    centre = t[..., :2] * scale_xy * a[..., 2:] + a[..., :2]
    size = np.exp(np.minimum(t[..., 2:] * scale_wh, clip)) * a[..., 2:]
    return centres_to_corners(np.concatenate([centre, size], axis=-1))


def _encode_tf(g: tf.Tensor, a: tf.Tensor, scale_xy: tf.Tensor, scale_wh: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.concat([(g[..., :2] - a[..., :2]) / a[..., 2:] * scale_xy,
                      tf.math.log(g[..., 2:] / a[..., 2:]) * scale_wh], axis=-1)


def _decode_tf(t: tf.Tensor, a: tf.Tensor, scale_xy: tf.Tensor, scale_wh: tf.Tensor, clip: float) -> tf.Tensor:
    import tensorflow as tf

    centre = t[..., :2] * scale_xy * a[..., 2:] + a[..., :2]
    size = tf.exp(tf.minimum(t[..., 2:] * scale_wh, tf.cast(clip, t.dtype))) * a[..., 2:]
    return centres_to_corners_tf(tf.concat([centre, size], axis=-1))


def _factors(values: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    """Variances or weights as (xy, wh) halves; all four must be > 0."""
    v = np.asarray(values, dtype=np.float64).reshape(4)
    if not np.all(v > 0):
        raise ValueError(f"variances / weights must be 4 values > 0, got {v.tolist()}")
    return v[:2], v[2:]


def encode_centre_size(boxes: ArrayLike, anchors: ArrayLike,
                       variances: Sequence[float] = DEFAULT_VARIANCES) -> FloatArray:
    """SSD/DSSD/RetinaNet targets ``[..., 4]`` of corner boxes against their anchors (single-stage §1.3).

    t_cx = (gcx − acx)/(aw·v0), t_cy = (gcy − acy)/(ah·v1), t_w = ln(gw/aw)/v2, t_h = ln(gh/ah)/v3 (continuous
    sizes). Boxes and anchors broadcast; both normalised or both in pixels. Zero-size boxes give −inf sizes (TAO
    rejects degenerate ground truth; the data loader drops it first).
    """
    v_xy, v_wh = _factors(variances)
    return _encode(corners_to_centres(boxes), corners_to_centres(anchors), 1.0 / v_xy, 1.0 / v_wh)


def decode_centre_size(offsets: ArrayLike, anchors: ArrayLike, variances: Sequence[float] = DEFAULT_VARIANCES, *,
                       log_scale_clip: float = BBOX_EXP_CLIP) -> FloatArray:
    """Corners ``[..., 4]`` from :func:`encode_centre_size` offsets (single-stage §1.4).

    The log size ratio t·v is clamped at ``log_scale_clip`` (TAO has no clamp; pass ``math.inf`` for none).
    """
    v_xy, v_wh = _factors(variances)
    return _decode(np.asarray(offsets, dtype=np.float64), corners_to_centres(anchors), v_xy, v_wh, log_scale_clip)


def encode_centre_size_tf(boxes: Any, anchors: Any, variances: Sequence[float] = DEFAULT_VARIANCES) -> tf.Tensor:
    """TF twin of :func:`encode_centre_size`."""
    v_xy, v_wh = _factors(variances)
    g = corners_to_centres_tf(boxes)
    return _encode_tf(g, corners_to_centres_tf(_like(anchors, g)), _like(1.0 / v_xy, g), _like(1.0 / v_wh, g))


def decode_centre_size_tf(offsets: Any, anchors: Any, variances: Sequence[float] = DEFAULT_VARIANCES, *,
                          log_scale_clip: float = BBOX_EXP_CLIP) -> tf.Tensor:
    """TF twin of :func:`decode_centre_size`."""
    v_xy, v_wh = _factors(variances)
    t = _float_tensor(offsets)
    a = corners_to_centres_tf(_like(anchors, t))
    return _decode_tf(t, a, _like(v_xy, t), _like(v_wh, t), log_scale_clip)


def encode_deltas(boxes: ArrayLike, references: ArrayLike, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), *,
                  plus_one: bool = False) -> FloatArray:
    """FasterRCNN/MaskRCNN deltas ``(tx·wx, ty·wy, tw·ww, th·wh)`` of boxes against anchors or ROIs (two-stage §1).

    tx = (cx − cxa)/wa, ty = (cy − cya)/ha, tw = ln(w/wa), th = ln(h/ha), multiplied by ``weights``: (1, 1, 1, 1)
    for the RPN, ``classifier_regr_std`` (10, 10, 5, 5) for the FRCNN classifier, ``bbox_reg_weights`` for MaskRCNN.
    ``plus_one`` measures boxes and references with TAO's +1 widths (centre x1 + w/2).
    """
    xy, wh = _factors(weights)
    return _encode(corners_to_centres(boxes, plus_one=plus_one), corners_to_centres(references, plus_one=plus_one),
                   xy, wh)


def decode_deltas(deltas: ArrayLike, references: ArrayLike, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), *,
                  plus_one: bool = False, log_scale_clip: float = BBOX_EXP_CLIP) -> FloatArray:
    """Corners ``[..., 4]`` from :func:`encode_deltas` deltas: divide by ``weights``, clamp tw, th at
    ``log_scale_clip``, then centre ± size/2. Clip to the image with :func:`clip_boxes`.

    With ``plus_one`` the reference is measured with +1 widths but the box is not (two-stage §1 and the §7 decoding
    check, as TAO): so decode(encode(b)) = b + (0, 0, 1, 1) there, and exactly b without ``plus_one`` (verify that
    TAO's decode really omits the −1).
    """
    xy, wh = _factors(weights)
    return _decode(np.asarray(deltas, dtype=np.float64), corners_to_centres(references, plus_one=plus_one),
                   1.0 / xy, 1.0 / wh, log_scale_clip)


def encode_deltas_tf(boxes: Any, references: Any, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), *,
                     plus_one: bool = False) -> tf.Tensor:
    """TF twin of :func:`encode_deltas`."""
    xy, wh = _factors(weights)
    g = corners_to_centres_tf(boxes, plus_one=plus_one)
    a = corners_to_centres_tf(_like(references, g), plus_one=plus_one)
    return _encode_tf(g, a, _like(xy, g), _like(wh, g))


def decode_deltas_tf(deltas: Any, references: Any, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), *,
                     plus_one: bool = False, log_scale_clip: float = BBOX_EXP_CLIP) -> tf.Tensor:
    """TF twin of :func:`decode_deltas`."""
    xy, wh = _factors(weights)
    t = _float_tensor(deltas)
    a = corners_to_centres_tf(_like(references, t), plus_one=plus_one)
    return _decode_tf(t, a, _like(1.0 / xy, t), _like(1.0 / wh, t), log_scale_clip)


# -------------------------------------------------------------------------------------------------- anchors
#
# Every generator returns ``[fh·fw·A, 4]`` corners in HWA order: row i, then column j, then the cell's boxes in the
# documented order (single-stage §1.1: "layer outer, then row, column, box"). Multi-layer generators concatenate
# layers (or levels) in order.

def _pair(value: Pair, what: str) -> tuple[float, float]:
    """A float, or a (vertical, horizontal) pair, as ``(y, x)``."""
    if isinstance(value, int | float | np.number):
        return float(value), float(value)
    pair = [float(v) for v in value]
    if len(pair) != 2:
        raise ValueError(f"{what} must be a number or a (vertical, horizontal) pair, got {value!r}")
    return pair[0], pair[1]


def feature_sizes(image_hw: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int]]:
    """``(fh, fw)`` per stride with 'same' padding (ceil division): 300 → 38, 19, 10, 5, 3, 2 for strides 8…256."""
    h, w = image_hw
    return [(-(-int(h) // s), -(-int(w) // s)) for s in strides]


def ssd_scales(num_layers: int, scales: Sequence[float] | None = None, min_scale: float | None = None,
               max_scale: float | None = None) -> list[float]:
    """The L + 1 scales of L predictor layers: ``scales`` as given, else linspace(min_scale, max_scale, L + 1).

    Only the first L are layer scales; the last serves ``two_boxes_for_ar1`` of layer L − 1.
    """
    if scales:
        values = [float(s) for s in scales]
        if len(values) != num_layers + 1 or min(values) <= 0:
            raise ValueError(f"scales must be {num_layers + 1} values > 0, got {values}")
        return values
    if min_scale is None or max_scale is None or not 0 < min_scale <= max_scale:
        raise ValueError(f"need scales or 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
    return [float(s) for s in np.linspace(min_scale, max_scale, num_layers + 1)]


def octave_factors(n_anchor_levels: int = 3) -> tuple[float, ...]:
    """RetinaNet's size factors 2^(j/n), j = 0..n − 1 (TAO ``n_anchor_levels``; 3 → 1, 1.259921, 1.587401)."""
    return tuple(2.0 ** (j / n_anchor_levels) for j in range(n_anchor_levels))


def prior_sizes(scale: float, next_scale: float, aspect_ratios: Sequence[float], size: float, *,
                two_boxes_for_ar1: bool, octaves: Sequence[float] = (1.0,)) -> FloatArray:
    """``(w, h)`` ``[A, 2]`` of one cell's boxes, octave outer, ratio inner in spec order (single-stage §1.1).

    Ratio r = w/h: r = 1 gives s·size square, followed by √(s·s_next)·size when ``two_boxes_for_ar1``; other r give
    w = s·size·√r, h = s·size/√r. ``size`` = min(image h, w) in pixels; every size is multiplied by the octave.
    """
    sizes: list[tuple[float, float]] = []
    for octave in octaves:
        base = scale * size * octave
        for ratio in aspect_ratios:
            if ratio <= 0:
                raise ValueError(f"aspect ratios must be > 0, got {ratio}")
            if ratio == 1.0:
                sizes.append((base, base))
                if two_boxes_for_ar1:
                    twin = math.sqrt(scale * next_scale) * size * octave
                    sizes.append((twin, twin))
            else:
                root = math.sqrt(ratio)
                sizes.append((base * root, base / root))
    return np.array(sizes, dtype=np.float64).reshape(-1, 2)


def grid_centres(feature_hw: Sequence[int], steps: Pair, offsets: Pair = 0.5) -> FloatArray:
    """Cell centres ``(cx, cy)`` ``[fh·fw, 2]``, row-major: cy_i = (offset_y + i)·step_y, cx_j = (offset_x + j)·step_x.

    ``steps`` and ``offsets`` are numbers or (vertical, horizontal) pairs.
    """
    fh, fw = (int(v) for v in feature_hw)
    step_y, step_x = _pair(steps, "steps")
    off_y, off_x = _pair(offsets, "offsets")
    cy, cx = np.meshgrid((off_y + np.arange(fh)) * step_y, (off_x + np.arange(fw)) * step_x, indexing="ij")
    return np.stack([cx.reshape(-1), cy.reshape(-1)], axis=1)


def anchors_at(centres: ArrayLike, sizes: ArrayLike) -> FloatArray:
    """Corners ``[K·A, 4]`` of every size ``(w, h)`` ``[A, 2]`` at every centre ``[K, 2]``: centre outer, size inner."""
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 1, 2)
    half = np.asarray(sizes, dtype=np.float64).reshape(1, -1, 2) / 2.0
    half = np.broadcast_to(half, (c.shape[0], half.shape[1], 2))
    return np.concatenate([c - half, c + half], axis=-1).reshape(-1, 4)


def ssd_layer_anchors(image_hw: Sequence[int], feature_hw: Sequence[int], scale: float, next_scale: float,
                      aspect_ratios: Sequence[float], *, two_boxes_for_ar1: bool, steps: Pair | None = None,
                      offsets: Pair = 0.5, clip: bool = False, octaves: Sequence[float] = (1.0,),
                      normalize: bool = True) -> FloatArray:
    """One SSD/DSSD/RetinaNet predictor layer's anchors ``[fh·fw·A, 4]`` (single-stage §1.1).

    Steps default to image size / feature size per axis. ``clip`` applies ssd_keras' rule in pixels (x ≥ W → W − 1,
    x < 0 → 0; y likewise) before ``normalize`` divides x by W and y by H.
    """
    img_h, img_w = (float(v) for v in image_hw)
    fh, fw = (int(v) for v in feature_hw)
    step = (img_h / fh, img_w / fw) if steps is None else steps
    sizes = prior_sizes(scale, next_scale, aspect_ratios, min(img_h, img_w), two_boxes_for_ar1=two_boxes_for_ar1,
                        octaves=octaves)
    boxes = anchors_at(grid_centres((fh, fw), step, offsets), sizes)
    if clip:
        limit = np.array([img_w, img_h, img_w, img_h])
        boxes = np.where(boxes >= limit, limit - 1.0, boxes)
        boxes = np.where(boxes < 0.0, 0.0, boxes)
    if normalize:
        boxes = boxes / np.array([img_w, img_h, img_w, img_h])
    return boxes


def _per_layer(value: Any, num_layers: int, what: str) -> list[Any]:
    """One value for every layer, or a list of L values (steps, offsets)."""
    if value is None or isinstance(value, int | float | np.number):
        return [value] * num_layers
    values = list(value)
    if len(values) != num_layers:
        raise ValueError(f"{what} needs one entry per layer ({num_layers}), got {len(values)}")
    return values


def ssd_anchors(image_hw: Sequence[int], feature_hws: Sequence[Sequence[int]], scales: Sequence[float],
                aspect_ratios: Sequence[Sequence[float]], *, two_boxes_for_ar1: bool,
                steps: Sequence[Pair | None] | float | None = None, offsets: Sequence[Pair] | float = 0.5,
                clip: bool = False, octaves: Sequence[float] = (1.0,), normalize: bool = True) -> FloatArray:
    """Anchors of all L layers, concatenated ``[Σ fh·fw·A_k, 4]`` in the heads' order (single-stage §1.1).

    ``scales`` holds L + 1 values (:func:`ssd_scales`), ``aspect_ratios`` L lists (the spec's ``aspect_ratios``, or
    ``aspect_ratios_global`` repeated); ``steps`` and ``offsets`` one number for all or one entry (number or
    (vertical, horizontal) pair) per layer; ``octaves`` is (1,) for SSD/DSSD and :func:`octave_factors` for RetinaNet.
    """
    num_layers = len(feature_hws)
    if len(scales) != num_layers + 1 or len(aspect_ratios) != num_layers:
        raise ValueError(f"{num_layers} layers need {num_layers + 1} scales and {num_layers} ratio lists, "
                         f"got {len(scales)} and {len(aspect_ratios)}")
    layer_steps = _per_layer(steps, num_layers, "steps")
    layer_offsets = _per_layer(offsets, num_layers, "offsets")
    layers = [ssd_layer_anchors(image_hw, feature_hws[k], scales[k], scales[k + 1], aspect_ratios[k],
                                two_boxes_for_ar1=two_boxes_for_ar1, steps=layer_steps[k], offsets=layer_offsets[k],
                                clip=clip, octaves=octaves, normalize=normalize)
              for k in range(num_layers)]
    return np.concatenate(layers, axis=0)


def retinanet_anchors(image_hw: Sequence[int], feature_hws: Sequence[Sequence[int]], scales: Sequence[float],
                      aspect_ratios: Sequence[Sequence[float]], *, two_boxes_for_ar1: bool, n_anchor_levels: int = 3,
                      steps: Sequence[Pair | None] | float | None = None, offsets: Sequence[Pair] | float = 0.5,
                      clip: bool = False, normalize: bool = True) -> FloatArray:
    """RetinaNet's P3–P7 anchors: :func:`ssd_anchors` with the octave factors 2^(j/n_anchor_levels).

    The class/box subnets are shared across levels, so every level must have the same box count.
    """
    counts = {len(r) for r in aspect_ratios}
    if len(counts) > 1:
        raise ValueError(f"RetinaNet levels share one head: every aspect_ratios list needs the same length, "
                         f"got {sorted(counts)}")
    return ssd_anchors(image_hw, feature_hws, scales, aspect_ratios, two_boxes_for_ar1=two_boxes_for_ar1,
                       steps=steps, offsets=offsets, clip=clip, octaves=octave_factors(n_anchor_levels),
                       normalize=normalize)


def frcnn_anchors(feature_hw: Sequence[int], sizes: Sequence[float], ratios: Sequence[float], *,
                  stride: float = 16.0) -> FloatArray:
    """FasterRCNN ``anchor_box_config`` anchors ``[fh·fw·A, 4]`` in input pixels (two-stage §1, "Anchors").

    Anchor a = i·len(ratios) + j for size i and ratio j (sizes outer); w = size·√ratio, h = size/√ratio; centres
    stride·(c + 0.5), stride·(r + 0.5); not rounded, not clipped. TAO orders its score channels (A, H, W); ours are
    HWA like every other generator here.
    """
    wh = [(s * math.sqrt(r), s / math.sqrt(r)) for s in sizes for r in ratios]
    return anchors_at(grid_centres(feature_hw, stride, 0.5), np.array(wh, dtype=np.float64).reshape(-1, 2))


def fpn_level_anchors(image_hw: Sequence[int], level: int, *, anchor_scale: float, num_scales: int,
                      aspect_ratios: Sequence[Sequence[float]]) -> FloatArray:
    """MaskRCNN anchors of FPN level l ``[fh·fw·A, 4]`` (x1, y1, x2, y2 pixels; :func:`swap_xy` for its order).

    Stride 2^l, centres stride/2 + k·stride, fh = ceil(H/stride); base = anchor_scale·2^l·2^(octave/num_scales),
    half-size (base·ax/2, base·ay/2) for the (x-factor, y-factor) pairs. Config order octave outer, aspect inner
    (verify against the TF reference), A = num_scales·len(aspect_ratios); anchors outside the image are kept.
    """
    stride = 2.0 ** level
    [(fh, fw)] = feature_sizes(image_hw, [int(stride)])
    wh = [(anchor_scale * stride * 2.0 ** (octave / num_scales) * ax,
           anchor_scale * stride * 2.0 ** (octave / num_scales) * ay)
          for octave in range(num_scales) for ax, ay in aspect_ratios]
    return anchors_at(grid_centres((fh, fw), stride, 0.5), np.array(wh, dtype=np.float64).reshape(-1, 2))


def fpn_anchors(image_hw: Sequence[int], *, min_level: int, max_level: int, anchor_scale: float, num_scales: int,
                aspect_ratios: Sequence[Sequence[float]]) -> FloatArray:
    """:func:`fpn_level_anchors` of levels min_level..max_level, concatenated in level order."""
    return np.concatenate([fpn_level_anchors(image_hw, level, anchor_scale=anchor_scale, num_scales=num_scales,
                                             aspect_ratios=aspect_ratios)
                           for level in range(min_level, max_level + 1)], axis=0)


# ------------------------------------------------------------------------------------------------- matchers

def _iou_2d(iou: ArrayLike) -> FloatArray:
    m = np.asarray(iou, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected an IoU matrix [G, A], got shape {m.shape}")
    return m


def _best_gt(iou: FloatArray) -> tuple[FloatArray, IndexArray]:
    """Per anchor the best IoU over GTs (0 without GT) and its GT (the lower index on ties; −1 without GT)."""
    if iou.shape[0] == 0:
        return np.zeros(iou.shape[1]), np.full(iou.shape[1], UNMATCHED, dtype=np.intp)
    best_gt = np.argmax(iou, axis=0)
    return iou[best_gt, np.arange(iou.shape[1])], best_gt.astype(np.intp)


def _best_gt_tf(iou: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """TF twin of :func:`_best_gt`, with the first maximum on ties (``tf.argmax`` does not promise that)."""
    import tensorflow as tf

    g = tf.shape(iou)[0]
    padded = tf.concat([iou, tf.zeros([1, tf.shape(iou)[1]], iou.dtype)], axis=0)  # a zero row for "no GT"
    best = tf.reduce_max(padded, axis=0)
    rows = tf.range(g + 1)[:, None]
    first = tf.reduce_min(tf.where(tf.equal(padded, best[None, :]), rows, g + 1), axis=0)
    return best, tf.where(first < g, first, UNMATCHED)


def _check_thresholds(positive: float, negative: float) -> None:
    if negative > positive:
        raise ValueError(f"negative threshold {negative} is above the positive threshold {positive}")


def match_bipartite(iou: ArrayLike, *, positive_threshold: float = 0.5,
                    negative_threshold: float = 0.3) -> tuple[IndexArray, IndexArray]:
    """SSD/DSSD/RetinaNet matching (single-stage §1.3) of an IoU matrix ``[G, A]``: ``(matches [A], labels [A])``.

    1. Greedy bipartite: repeatedly the globally largest remaining IoU pair (ties: lower GT, then lower anchor) is
       matched and its GT row and anchor column removed, so every GT gets one anchor. A pair needs IoU > 0: a GT
       overlapping no free anchor stays unmatched (our reading; TAO would hand it an arbitrary anchor).
    2. Every other anchor with best IoU ≥ ``positive_threshold`` takes that GT (ties: lower GT).
    3. Unmatched anchors with best IoU ≥ ``negative_threshold`` are neutral (:data:`IGNORE`), the rest background.
    SSD uses 0.5 / 0.3, RetinaNet 0.5 / 0.4.
    """
    _check_thresholds(positive_threshold, negative_threshold)
    m = _iou_2d(iou)
    g, a = m.shape
    matches = np.full(a, UNMATCHED, dtype=np.intp)
    remaining = m.copy()
    for _ in range(min(g, a)):
        flat = int(np.argmax(remaining))
        gt, anchor = divmod(flat, a)
        if not remaining[gt, anchor] > 0:
            break
        matches[anchor] = gt
        remaining[gt, :] = -1.0
        remaining[:, anchor] = -1.0
    best, best_gt = _best_gt(m)
    multi = (matches == UNMATCHED) & (best >= positive_threshold) & (best_gt >= 0)
    matches[multi] = best_gt[multi]
    labels = np.where(matches >= 0, POSITIVE, np.where(best >= negative_threshold, IGNORE, NEGATIVE))
    return matches, labels.astype(np.intp)


def match_bipartite_tf(iou: Any, *, positive_threshold: float = 0.5,
                       negative_threshold: float = 0.3) -> tuple[tf.Tensor, tf.Tensor]:
    """TF twin of :func:`match_bipartite` (int32 outputs); a ``tf.while_loop`` of at most min(G, A) steps."""
    import tensorflow as tf

    _check_thresholds(positive_threshold, negative_threshold)
    m = _float_tensor(iou)
    g, a = tf.shape(m)[0], tf.shape(m)[1]
    rows, cols = tf.range(g)[:, None], tf.range(a)[None, :]
    flat_ids = tf.range(g * a)
    removed = tf.constant(-1.0, m.dtype)

    def step(i: tf.Tensor, remaining: tf.Tensor, matches: tf.Tensor,
             done: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        flat = tf.reshape(remaining, [-1])
        top = tf.reduce_max(flat)
        index = tf.reduce_min(tf.where(tf.equal(flat, top), flat_ids, g * a))
        gt, anchor = index // a, index % a
        take = top > 0
        matches = tf.where(take & tf.equal(cols[0], anchor), gt, matches)
        remaining = tf.where(take & (tf.equal(rows, gt) | tf.equal(cols, anchor)), removed, remaining)
        return i + 1, remaining, matches, tf.logical_not(take)

    _, _, matches, _ = tf.while_loop(
        lambda i, _r, _m, done: (i < tf.minimum(g, a)) & tf.logical_not(done), step,
        (tf.constant(0), m, tf.fill([a], UNMATCHED), tf.constant(False)))
    best, best_gt = _best_gt_tf(m)
    multi = tf.equal(matches, UNMATCHED) & (best >= positive_threshold) & (best_gt >= 0)
    matches = tf.where(multi, best_gt, matches)
    labels = tf.where(matches >= 0, POSITIVE, tf.where(best >= negative_threshold, IGNORE, NEGATIVE))
    return matches, labels


def match_rpn(iou: ArrayLike, *, positive_threshold: float = 0.7, negative_threshold: float = 0.3,
              valid: ArrayLike | None = None, force_best: bool = True,
              negative_inclusive: bool = True) -> tuple[IndexArray, IndexArray]:
    """RPN target assignment (two-stage §1) of an IoU matrix ``[G, A]``: ``(matches [A], labels [A])``.

    Anchors outside ``valid`` (FRCNN: not fully inside the image) count with IoU 0 and are ignored. Positive: best
    IoU ≥ ``positive_threshold`` (its best GT, lower index on ties); negative: valid and best IoU ≤
    ``negative_threshold`` (< when not ``negative_inclusive``: MaskRCNN); the rest neutral. With ``force_best``
    every GT without an anchor at IoU ≥ ``positive_threshold`` forces its best anchor (the first on ties) positive,
    if that IoU is > 0, with this GT as the target; on an anchor shared by such GTs the last GT wins (as TAO).
    MaskRCNN's tie-inclusive forcing of every GT is not modelled (verify whether it matters).
    """
    _check_thresholds(positive_threshold, negative_threshold)
    m = _iou_2d(iou)
    g, a = m.shape
    ok = np.ones(a, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(a)
    m = np.where(ok[None, :], m, 0.0)
    best, best_gt = _best_gt(m)
    matches = np.where((best >= positive_threshold) & (best_gt >= 0), best_gt, UNMATCHED)
    if force_best and g and a:
        gt_best = m.max(axis=1)
        forced = (gt_best > 0) & (gt_best < positive_threshold)
        winner = np.full(a, UNMATCHED, dtype=np.intp)
        np.maximum.at(winner, np.argmax(m, axis=1)[forced], np.nonzero(forced)[0])
        matches = np.where(winner >= 0, winner, matches)
    negative = ok & ((best <= negative_threshold) if negative_inclusive else (best < negative_threshold))
    labels = np.where(matches >= 0, POSITIVE, np.where(negative, NEGATIVE, IGNORE))
    return matches.astype(np.intp), labels.astype(np.intp)


def match_rpn_tf(iou: Any, *, positive_threshold: float = 0.7, negative_threshold: float = 0.3,
                 valid: Any | None = None, force_best: bool = True,
                 negative_inclusive: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
    """TF twin of :func:`match_rpn` (int32 outputs)."""
    import tensorflow as tf

    _check_thresholds(positive_threshold, negative_threshold)
    m = _float_tensor(iou)
    g, a = tf.shape(m)[0], tf.shape(m)[1]
    ok = tf.ones([a], tf.bool) if valid is None else tf.reshape(tf.cast(valid, tf.bool), [a])
    m = tf.where(ok[None, :], m, tf.zeros_like(m))
    best, best_gt = _best_gt_tf(m)
    matches = tf.where((best >= positive_threshold) & (best_gt >= 0), best_gt, UNMATCHED)
    if force_best:
        gt_best = tf.reduce_max(tf.concat([m, tf.zeros([g, 1], m.dtype)], axis=1), axis=1)
        first = tf.reduce_min(tf.where(tf.equal(m, gt_best[:, None]), tf.range(a)[None, :], a), axis=1)
        forced = (gt_best > 0) & (gt_best < positive_threshold)
        # Negative segment ids are dropped; empty segments get the dtype's minimum.
        winner = tf.math.unsorted_segment_max(tf.range(g), tf.where(forced, first, -1), a)
        matches = tf.where(winner >= 0, winner, matches)
    low = best <= negative_threshold if negative_inclusive else best < negative_threshold
    labels = tf.where(matches >= 0, POSITIVE, tf.where(ok & low, NEGATIVE, IGNORE))
    return matches, labels


def match_rois(iou: ArrayLike, *, positive_threshold: float = 0.5, negative_low: float = 0.0,
               negative_high: float | None = None) -> tuple[IndexArray, IndexArray]:
    """RCNN/box-head assignment of proposals ``[G, R]`` (two-stage §1 ProposalTarget, §2 box head targets).

    Positive: best IoU ≥ ``positive_threshold`` (classifier_max_overlap / fg_thresh); negative:
    ``negative_low`` ≤ best IoU < ``negative_high`` (classifier_min_overlap / bg_thresh_lo, and bg_thresh_hi, which
    defaults to the positive threshold); the rest ignored. No forcing: FRCNN adds GT boxes as ROIs instead.
    """
    high = positive_threshold if negative_high is None else negative_high
    _check_thresholds(positive_threshold, min(negative_low, high))
    best, best_gt = _best_gt(_iou_2d(iou))
    positive = (best >= positive_threshold) & (best_gt >= 0)
    negative = (best >= negative_low) & (best < high)
    labels = np.where(positive, POSITIVE, np.where(negative, NEGATIVE, IGNORE))
    return np.where(positive, best_gt, UNMATCHED).astype(np.intp), labels.astype(np.intp)


def match_rois_tf(iou: Any, *, positive_threshold: float = 0.5, negative_low: float = 0.0,
                  negative_high: float | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """TF twin of :func:`match_rois` (int32 outputs)."""
    import tensorflow as tf

    high = positive_threshold if negative_high is None else negative_high
    _check_thresholds(positive_threshold, min(negative_low, high))
    best, best_gt = _best_gt_tf(_float_tensor(iou))
    positive = (best >= positive_threshold) & (best_gt >= 0)
    negative = (best >= negative_low) & (best < high)
    labels = tf.where(positive, POSITIVE, tf.where(negative, NEGATIVE, IGNORE))
    return tf.where(positive, best_gt, UNMATCHED), labels


# ------------------------------------------------------------------------------------------------- samplers

def _negatives_to_keep(n_pos: int, n_neg: int, neg_pos_ratio: float, min_negatives: int) -> int:
    return min(max(math.floor(neg_pos_ratio * n_pos), min_negatives), n_neg)


def hard_negative_mask(losses: ArrayLike, labels: ArrayLike, *, neg_pos_ratio: float = 3.0,
                       min_negatives: int = 0) -> BoolArray:
    """The background anchors that hard negative mining keeps (single-stage §2.3), as a mask shaped like ``labels``.

    All elements count together (pass a whole batch for TAO's batch-wide mining, one image for per-image mining):
    k = min(max(⌊neg_pos_ratio·n_pos⌋, min_negatives), number of :data:`NEGATIVE` anchors with loss > 0), and the k
    of those with the largest loss are kept (ties: lower flat index).
    """
    lab = np.asarray(labels)
    loss = np.asarray(losses, dtype=np.float64).reshape(-1)
    flat = lab.reshape(-1)
    if loss.shape != flat.shape:
        raise ValueError(f"{loss.size} losses but {flat.size} labels")
    candidate = (flat == NEGATIVE) & (loss > 0)
    k = _negatives_to_keep(int(np.sum(flat == POSITIVE)), int(candidate.sum()), neg_pos_ratio, min_negatives)
    order = np.argsort(-np.where(candidate, loss, -np.inf), kind="stable")[:k]
    mask = np.zeros(flat.shape, dtype=bool)
    mask[order] = True
    return mask.reshape(lab.shape)


def hard_negative_mask_tf(losses: Any, labels: Any, *, neg_pos_ratio: float = 3.0,
                          min_negatives: int = 0) -> tf.Tensor:
    """TF twin of :func:`hard_negative_mask` (``tf.math.top_k`` keeps the lower index first on ties too)."""
    import tensorflow as tf

    lab = tf.convert_to_tensor(labels)
    loss = tf.reshape(_float_tensor(losses), [-1])
    flat = tf.reshape(lab, [-1])
    candidate = tf.equal(flat, NEGATIVE) & (loss > 0)
    n_pos = tf.reduce_sum(tf.cast(tf.equal(flat, POSITIVE), tf.float64))
    wanted = tf.maximum(tf.cast(tf.floor(neg_pos_ratio * n_pos), tf.int32), min_negatives)
    k = tf.minimum(wanted, tf.reduce_sum(tf.cast(candidate, tf.int32)))
    _, order = tf.math.top_k(tf.where(candidate, loss, tf.cast(-np.inf, loss.dtype)), k)
    mask = tf.scatter_nd(order[:, None], tf.ones_like(order), tf.shape(flat)) > 0
    return tf.reshape(mask, tf.shape(lab))


def positive_quota(batch_size: int, positive_fraction: float) -> int:
    """⌊batch_size·positive_fraction⌋, robust to rounding (0.29·100 is 29, not 28)."""
    return math.floor(batch_size * positive_fraction + 1e-9)


def _keys(n: int, seed: int, keys: ArrayLike | None) -> FloatArray:
    if keys is None:
        return np.random.default_rng(seed).random(n)
    k = np.asarray(keys, dtype=np.float64).reshape(-1)
    if k.size != n:
        raise ValueError(f"{n} labels but {k.size} keys")
    return k


def _keys_tf(n: tf.Tensor, seed: Any, keys: Any | None) -> tf.Tensor:
    import tensorflow as tf

    if keys is None:
        return tf.random.stateless_uniform([n], seed=seed, dtype=tf.float64)
    return tf.reshape(tf.cast(keys, tf.float64), [n])


def _by_key(mask: NDArray[np.bool_], keys: FloatArray) -> IndexArray:
    """Indices with ``mask`` set, lowest key first (ties: lower index); the others follow."""
    return np.argsort(np.where(mask, keys, np.inf), kind="stable").astype(np.intp)


def _by_key_tf(mask: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    neg_keys = tf.where(mask, -keys, tf.constant(-np.inf, tf.float64))
    return tf.math.top_k(neg_keys, tf.size(neg_keys)).indices


def sample_balanced(labels: ArrayLike, batch_size: int, positive_fraction: float, *, seed: int = 0,
                    keys: ArrayLike | None = None) -> IndexArray:
    """Labels with at most ``batch_size`` kept anchors: up to :func:`positive_quota` positives, negatives filling up
    to ``batch_size``; the others become :data:`IGNORE` (FRCNN RPN: 256 at 0.5; MaskRCNN RPN: 256 at 0.5).

    Random subsets without replacement: the members with the lowest ``keys`` (uniform [0, 1), one per label; drawn
    from ``seed`` when not given). The TF twin draws its keys differently; pass ``keys`` to both to compare them.
    """
    lab = np.asarray(labels).reshape(-1)
    k = _keys(lab.size, seed, keys)
    positive, negative = lab == POSITIVE, lab == NEGATIVE
    n_pos = min(int(positive.sum()), positive_quota(batch_size, positive_fraction))
    n_neg = min(int(negative.sum()), batch_size - n_pos)
    out = np.full(lab.size, IGNORE, dtype=np.intp)
    out[_by_key(positive, k)[:n_pos]] = POSITIVE
    out[_by_key(negative, k)[:n_neg]] = NEGATIVE
    return out.reshape(np.shape(labels))


def sample_balanced_tf(labels: Any, batch_size: int, positive_fraction: float, *, seed: Any = (0, 0),
                       keys: Any | None = None) -> tf.Tensor:
    """TF twin of :func:`sample_balanced` (int32); ``seed`` is a stateless seed pair (``tf.random.stateless_*``)."""
    import tensorflow as tf

    lab = tf.convert_to_tensor(labels)
    flat = tf.reshape(lab, [-1])
    n = tf.size(flat)
    k = _keys_tf(n, seed, keys)
    positive, negative = tf.equal(flat, POSITIVE), tf.equal(flat, NEGATIVE)
    n_pos = tf.minimum(tf.reduce_sum(tf.cast(positive, tf.int32)), positive_quota(batch_size, positive_fraction))
    n_neg = tf.minimum(tf.reduce_sum(tf.cast(negative, tf.int32)), batch_size - n_pos)
    pos = _by_key_tf(positive, k)[:n_pos]
    neg = _by_key_tf(negative, k)[:n_neg]
    out = tf.fill([n], IGNORE)
    out = tf.tensor_scatter_nd_update(out, pos[:, None], tf.fill([n_pos], POSITIVE))
    out = tf.tensor_scatter_nd_update(out, neg[:, None], tf.fill([n_neg], NEGATIVE))
    return tf.reshape(out, tf.shape(lab))


def sample_fixed(labels: ArrayLike, batch_size: int, positive_fraction: float, *, seed: int = 0,
                 keys: ArrayLike | None = None, draws: ArrayLike | None = None) -> IndexArray:
    """Exactly ``batch_size`` indices, FRCNN's ROI sampler (two-stage §1 ProposalTarget; 256 at 0.25).

    Slots 0..p−1 hold p = min(positives, :func:`positive_quota`) positives without replacement (lowest ``keys``);
    the rest hold negatives: without replacement when there are enough, else drawn with replacement; without
    negatives, positives drawn with replacement (verify: TAO may redraw the whole batch from positives); without
    either, −1 (an all-zero ROI). Draw d of slot s picks member ⌊u_s·count⌋ of the key-ordered candidates,
    ``draws`` u being uniform [0, 1) ``[batch_size]`` (drawn after ``keys`` from ``seed`` when not given).
    """
    lab = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    k = rng.random(lab.size) if keys is None else _keys(lab.size, seed, keys)
    u = rng.random(batch_size) if draws is None else np.asarray(draws, dtype=np.float64).reshape(batch_size)
    positive, negative = lab == POSITIVE, lab == NEGATIVE
    count_pos, count_neg = int(positive.sum()), int(negative.sum())
    n_pos = min(count_pos, positive_quota(batch_size, positive_fraction))
    pos_order, neg_order = _by_key(positive, k), _by_key(negative, k)
    slot = np.arange(batch_size)
    fill = slot - n_pos
    if count_neg >= batch_size - n_pos:
        filler = neg_order[np.clip(fill, 0, max(lab.size - 1, 0))] if lab.size else np.full(batch_size, -1)
    elif count_neg:
        filler = neg_order[np.minimum((u * count_neg).astype(np.intp), count_neg - 1)]
    elif count_pos:
        filler = pos_order[np.minimum((u * count_pos).astype(np.intp), count_pos - 1)]
    else:
        filler = np.full(batch_size, -1)
    head = pos_order[np.clip(slot, 0, max(lab.size - 1, 0))] if lab.size else np.full(batch_size, -1)
    return np.where(slot < n_pos, head, filler).astype(np.intp)


def sample_fixed_tf(labels: Any, batch_size: int, positive_fraction: float, *, seed: Any = (0, 0),
                    keys: Any | None = None, draws: Any | None = None) -> tf.Tensor:
    """TF twin of :func:`sample_fixed` (int32 ``[batch_size]``); ``seed`` is a stateless seed pair."""
    import tensorflow as tf

    flat = tf.reshape(tf.convert_to_tensor(labels), [-1])
    n = tf.size(flat)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    k = _keys_tf(n, seeds[0], keys)
    u = (tf.random.stateless_uniform([batch_size], seed=seeds[1], dtype=tf.float64) if draws is None
         else tf.reshape(tf.cast(draws, tf.float64), [batch_size]))
    positive, negative = tf.equal(flat, POSITIVE), tf.equal(flat, NEGATIVE)
    count_pos = tf.reduce_sum(tf.cast(positive, tf.int32))
    count_neg = tf.reduce_sum(tf.cast(negative, tf.int32))
    n_pos = tf.minimum(count_pos, positive_quota(batch_size, positive_fraction))
    pos_order = tf.concat([_by_key_tf(positive, k), [-1]], axis=0)  # a trailing −1 for "nothing at all"
    neg_order = tf.concat([_by_key_tf(negative, k), [-1]], axis=0)
    slot = tf.range(batch_size)
    fill = tf.clip_by_value(slot - n_pos, 0, n)

    def drawn(count: tf.Tensor) -> tf.Tensor:
        return tf.minimum(tf.cast(u * tf.cast(count, tf.float64), tf.int32), tf.maximum(count - 1, 0))

    filler = tf.where(count_neg >= batch_size - n_pos, tf.gather(neg_order, fill),
                      tf.where(count_neg > 0, tf.gather(neg_order, drawn(count_neg)),
                               tf.where(count_pos > 0, tf.gather(pos_order, drawn(count_pos)), -1)))
    head = tf.gather(pos_order, tf.minimum(slot, n))
    return tf.where(slot < n_pos, head, filler)


# ------------------------------------------------------------------------------------------------------ NMS

def nms(boxes: ArrayLike, scores: ArrayLike, iou_threshold: float) -> IndexArray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first (ties: lower index)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = _areas(b)
    remaining = np.argsort(-s, kind="stable")
    keep: list[int] = []
    while len(remaining):
        best = int(remaining[0])
        keep.append(best)
        rest = remaining[1:]
        iou = _pair_iou(b[best], b[rest], areas[best], areas[rest])
        remaining = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.intp)


def nms_tf(boxes: Any, scores: Any, iou_threshold: float, max_output_size: Any | None = None) -> tf.Tensor:
    """TF twin of :func:`nms` (``tf.image.non_max_suppression``; int32 indices), at most ``max_output_size``.

    The op works in float32, so the boxes are ranked in their own dtype first (``top_k``: ties to the lower index,
    which the op keeps for float32 ties). Needs x1 ≤ x2 and y1 ≤ y2: TensorFlow reorders flipped corners where
    :func:`nms` gives them zero area.
    """
    import tensorflow as tf

    s = tf.reshape(_float_tensor(scores), [-1])
    order = tf.math.top_k(s, tf.size(s)).indices
    b = tf.cast(tf.gather(tf.reshape(_float_tensor(boxes), [-1, 4]), order), tf.float32)
    limit = tf.size(s) if max_output_size is None else max_output_size
    kept = tf.image.non_max_suppression(b, tf.cast(tf.gather(s, order), tf.float32), limit,
                                        iou_threshold=iou_threshold)
    return tf.gather(order, kept)


@dataclass(frozen=True)
class NmsResult:
    """Fixed-size per-class NMS output of one image, best first: ``boxes`` ``[K, 4]``, ``scores`` ``[K]``,
    ``classes`` ``[K]`` (score columns), ``indices`` ``[K]`` (box rows); rows from ``count`` on are padding (zero
    boxes and scores, class and index −1)."""

    boxes: FloatArray
    scores: FloatArray
    classes: IndexArray
    indices: IndexArray
    count: int


def _class_boxes(boxes: FloatArray, cls: int) -> FloatArray:
    return boxes[:, cls] if boxes.ndim == 3 else boxes


def batched_nms(boxes: ArrayLike, scores: ArrayLike, *, iou_threshold: float, score_threshold: float = -math.inf,
                max_per_class: int = 100, max_total: int = 100, pre_nms_top_k: int | None = None) -> NmsResult:
    """Per-class NMS of one image (single-stage §1.4/§7, two-stage §1 inference and proposals).

    ``boxes`` ``[A, 4]`` shared by the classes or ``[A, C, 4]`` per class, ``scores`` ``[A, C]`` (drop any
    background column first). Per class: the ``pre_nms_top_k`` best scores (TensorRT's 2·top_k; None: all), those
    > ``score_threshold``, greedy NMS, at most ``max_per_class`` kept; then the ``max_total`` best over all classes
    (ties: lower class, then better rank), padded to ``max_total`` rows. TF ``combined_non_max_suppression`` with
    the same limits; FRCNN proposals are the one-class case.
    """
    s = np.asarray(scores, dtype=np.float64)
    b = np.asarray(boxes, dtype=np.float64)
    if s.ndim != 2 or b.shape[0] != s.shape[0] or b.shape[-1] != 4 or b.ndim not in (2, 3):
        raise ValueError(f"expected scores [A, C] and boxes [A, 4] or [A, C, 4], got {s.shape} and {b.shape}")
    num_classes = s.shape[1]
    kept = np.full((num_classes, max_per_class), -1, dtype=np.intp)
    for cls in range(num_classes):
        order = np.argsort(-s[:, cls], kind="stable")[:pre_nms_top_k]
        order = order[s[order, cls] > score_threshold]
        chosen = order[nms(_class_boxes(b, cls)[order], s[order, cls], iou_threshold)][:max_per_class]
        kept[cls, :len(chosen)] = chosen
    flat_index = kept.reshape(-1)
    flat_class = np.repeat(np.arange(num_classes), max_per_class)
    flat_score = np.full(flat_index.shape, -np.inf)
    valid = flat_index >= 0
    flat_score[valid] = s[flat_index[valid], flat_class[valid]]
    top = np.argsort(-flat_score, kind="stable")[:max_total]
    top = top[flat_score[top] > -np.inf]
    count = len(top)
    index = np.full(max_total, -1, dtype=np.intp)
    classes = np.full(max_total, -1, dtype=np.intp)
    out_scores = np.zeros(max_total)
    out_boxes = np.zeros((max_total, 4))
    index[:count], classes[:count], out_scores[:count] = flat_index[top], flat_class[top], flat_score[top]
    if count:
        out_boxes[:count] = b[index[:count], classes[:count]] if b.ndim == 3 else b[index[:count]]
    return NmsResult(out_boxes, out_scores, classes, index, count)


def batched_nms_tf(boxes: Any, scores: Any, *, iou_threshold: float, score_threshold: float = -math.inf,
                   max_per_class: int = 100, max_total: int = 100,
                   pre_nms_top_k: int | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """TF twin of :func:`batched_nms`: ``(boxes, scores, classes, indices, count)`` (int32 ids and count).

    One image; map over a batch with ``tf.map_fn``. The class count may be dynamic; the box rank must be static.
    """
    import tensorflow as tf

    s = _float_tensor(scores)
    b = _like(boxes, s)
    per_class = b.shape.rank == 3
    a, num_classes = tf.shape(s)[0], tf.shape(s)[1]
    k = a if pre_nms_top_k is None else tf.minimum(a, pre_nms_top_k)

    def one_class(cls: tf.Tensor) -> tf.Tensor:
        column = s[:, cls]
        top_scores, order = tf.math.top_k(column, k)
        order = order[:tf.reduce_sum(tf.cast(top_scores > score_threshold, tf.int32))]
        class_boxes = tf.gather(b[:, cls] if per_class else b, order)
        chosen = tf.gather(order, nms_tf(class_boxes, tf.gather(column, order), iou_threshold, max_per_class))
        return tf.pad(chosen, [[0, max_per_class - tf.size(chosen)]], constant_values=-1)

    kept = tf.map_fn(one_class, tf.range(num_classes), fn_output_signature=tf.TensorSpec([max_per_class], tf.int32))
    flat_index = tf.reshape(kept, [-1])
    flat_class = tf.repeat(tf.range(num_classes), max_per_class)
    # Padding slots read an extra row (scores −inf, boxes 0), so gathers stay in range even without boxes.
    row = tf.where(flat_index >= 0, flat_index, a)
    padded_scores = tf.concat([s, tf.fill([1, num_classes], tf.cast(-np.inf, s.dtype))], axis=0)
    flat_score = tf.gather_nd(padded_scores, tf.stack([row, flat_class], axis=1))
    top_scores, top = tf.math.top_k(flat_score, tf.minimum(max_total, tf.size(flat_score)))
    keep = top_scores > -np.inf
    count = tf.reduce_sum(tf.cast(keep, tf.int32))
    index = tf.where(keep, tf.gather(flat_index, top), -1)
    classes = tf.where(keep, tf.gather(flat_class, top), -1)
    padded_boxes = tf.concat([b, tf.zeros(tf.concat([[1], tf.shape(b)[1:]], axis=0), b.dtype)], axis=0)
    safe_index = tf.where(keep, index, a)
    picked = (tf.gather_nd(padded_boxes, tf.stack([safe_index, tf.maximum(classes, 0)], axis=1)) if per_class
              else tf.gather(padded_boxes, safe_index))
    pad = max_total - tf.size(top)
    out_boxes = tf.pad(picked, [[0, pad], [0, 0]])
    out_scores = tf.pad(tf.where(keep, top_scores, tf.zeros_like(top_scores)), [[0, pad]])
    classes = tf.pad(classes, [[0, pad]], constant_values=-1)
    index = tf.pad(index, [[0, pad]], constant_values=-1)
    return out_boxes, out_scores, classes, index, count
