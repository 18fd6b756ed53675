"""The FasterRCNN network pieces (DETECTORS-TWO-STAGE.md §1 "Backbone and feature layer", "RPN head", "ROI
pooling", "RCNN head and losses") as Keras 3 building blocks, NHWC inside:

* :func:`split_backbone` — the backbone cut at stride 16: the *trunk* on the image (the RPN's feature map) and the
  *RCNN body* (:class:`RcnnBody`), the backbone's last stage applied to ROI crops ``[N·R, p, p, C]``, ending in one
  vector per ROI ``[N·R, D]``;
* :func:`rpn_head` — ``rpn_conv1`` → ``rpn_out_class`` ``[N, Hf, Wf, A]`` (sigmoid) and ``rpn_out_regress``
  ``[N, Hf, Wf, 4A]`` (channels 4a..4a+3 = tx, ty, tw, th of anchor a);
* :class:`ProposalLayer` and :class:`CropAndResize` — serializable Keras layers around
  :func:`~libtlt.archs.faster_rcnn.proposals.proposals` and ``tf.image.crop_and_resize`` with static shapes;
* :func:`rcnn_head` — ``dense_class_td`` ``[N, R, C_fg + 1]`` (softmax, background last) and ``dense_regress_td``
  ``[N, R, 4·C_fg]``;
* :func:`build_inference_model` — NCHW ``input_image`` → ``Permute`` → trunk → RPN → proposals → crops → body →
  head, outputs ``rpn_out_class``, ``rpn_out_regress``, ``proposals``, ``dense_class_td``, ``dense_regress_td``.

**The split.** Every family is built once by its own ``build`` function (``libtlt.backbones``) on a throw-away
probe input while a recording :class:`~libtlt.backbones.blocks.Builder` notes each layer call. The calls up to the
stride-16 level ``P4`` are the trunk, the calls after it the body; both are replayed with fresh layers made from
the recorded layers' configs (same TLT names, same options), the trunk on the image and the body on the crops, so
each layer exists exactly once in the model and the probe's layers are dropped. The body's downsampling layers get
stride 2 with ``pool_size_2x`` (crops of 2p × 2p come out p × p) and stride 1 otherwise; average pooling over the
remaining p × p (``avg_pool``) and ``time_distributed_flatten`` then give the ROI vector (512 for ResNet10/18/34,
2048 for ResNet50/101). ResNet: trunk = stem + blocks 1–3, body = block 4. VGG16/19 (TLT's stride-16 template):
trunk = blocks 1–5 without pool5, body = (with ``pool_size_2x`` the 2×2 max pool ``rcnn_pool_2x``) ``flatten`` →
``fc1`` 4096 ReLU → ``fc1_dropout`` → ``fc2`` 4096 ReLU → ``fc2_dropout`` (dropouts only when ``dropout`` > 0).
GoogLeNet (body ``pool4`` + inception 5a/5b), MobileNet v1 (units 12–13), v2 (blocks 13–16 + ``conv_1``),
DarkNet19/53 (block 5) and EfficientNet B0–B5 (stages 6–7 + ``top_conv``) split the same way. SqueezeNet has no
stage after stride 16 and is rejected (so is it in TAO's FasterRCNN).

**Shared layers, not a nested model.** The body's layers are plain layers of the outer functional graph:
``tlt-prune`` refuses nested models and pretrained loading matches layer names, both of which work unchanged on a
flat model. :class:`RcnnBody` creates its layers on the first call and calls the *same* layer objects on later
calls (one set of weights however often it is applied). ``freeze_blocks`` / ``freeze_bn`` reach the body's layers
through the family's ``block_of`` (ResNet block 4 = freeze ID 4), like :func:`libtlt.backbones.set_freeze`.

TAO wraps the body and the head in ``TimeDistributed``; here the crops are rows of one batch ``[N·R, ...]`` and the
head's Dense layers act on the last axis of ``[N, R, D]`` (:class:`RoisToImages` regroups the rows), which is the
same computation with the same weights.

Initializers: the RPN's three convolutions draw from N(0, 0.01²) with zero biases (the FasterRCNN paper's choice
for its new layers); ``dense_class_td`` N(0, 0.01²) and ``dense_regress_td`` N(0, 0.001²) (Fast R-CNN's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from libtlt.archs.faster_rcnn import anchors as anchor_ops
from libtlt.archs.faster_rcnn import proposals as proposal_ops
from libtlt.backbones.blocks import Builder

__all__ = [
    "INPUT_NAME", "CropAndResize", "FasterRcnnNetworkConfig", "ProposalLayer", "RcnnBody", "RoisToImages",
    "build_inference_model", "rcnn_head", "rpn_head", "split_backbone",
]

INPUT_NAME = "input_image"
RPN_CONV = "rpn_conv1"
RPN_CLASS = "rpn_out_class"
RPN_REGRESS = "rpn_out_regress"
PROPOSALS = "proposals"
CROP_AND_RESIZE = "crop_and_resize"
RCNN_CLASS = "dense_class_td"
RCNN_REGRESS = "dense_regress_td"
#: The FasterRCNN feature map's stride (``rpn_stride``; TAO accepts only 16).
RPN_STRIDE = 16
#: Width of VGG's ``fc1``/``fc2``.
VGG_FC_UNITS = 4096

# ---------------------------------------------------------------------------------------------- backbone split


@dataclass
class _RecordingBuilder(Builder):
    """A :class:`Builder` that also notes every call ``(layer, inputs, output)`` in order."""

    calls: list[tuple[keras.layers.Layer, Any, Any]] = field(default_factory=list)

    def apply(self, layer: keras.layers.Layer, inputs: Any) -> Any:
        output = super().apply(layer, inputs)
        self.calls.append((layer, inputs, output))
        return output


def _arguments(inputs: Any, mapping: dict[int, Any], backbone: str) -> Any:
    """``inputs`` (a tensor or a list of tensors) of the recorded graph mapped to the new graph's tensors."""
    try:
        if isinstance(inputs, (list, tuple)):
            return [mapping[id(t)] for t in inputs]
        return mapping[id(inputs)]
    except KeyError:
        raise ValueError(f"backbone {backbone!r} is not yet supported for FasterRCNN: its last stage reads tensors "
                         "from before the stride-16 level") from None


def _copy(layer: keras.layers.Layer, strides: int | None = None) -> keras.layers.Layer:
    """A fresh layer from ``layer``'s config; ``strides`` replaces every stride ≠ 1 (the stage's downsampling)."""
    config = layer.get_config()
    if strides is not None and "strides" in config:
        current = config["strides"]
        values = tuple(current) if isinstance(current, (list, tuple)) else (current,)
        if any(int(v) != 1 for v in values):
            config["strides"] = (strides,) * len(values) if len(values) > 1 else strides
    return type(layer).from_config(config)


class _Freezer:
    """Applies ``freeze_blocks`` / ``freeze_bn`` to one layer by its name (the family's ``block_of``)."""

    def __init__(self, key: str, family: Any, frozen: frozenset[int], freeze_bn: bool) -> None:
        self._key, self._family, self._frozen, self._freeze_bn = key, family, frozen, freeze_bn

    def __call__(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        block = self._family.block_of(self._key, layer.name)
        if block is not None:
            layer.trainable = block not in self._frozen
        if self._freeze_bn and isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        return layer


class RcnnBody:
    """The RCNN body: crops ``[M, p, p, C]`` (NHWC, M = N·R) → per-ROI vectors ``[M, D]``.

    Callable like a layer on symbolic or eager tensors. The first call creates the layers (named as in TLT, with
    the freeze rules applied); every later call applies the same layer objects again. Crops must keep the first
    call's size and channels.
    """

    def __init__(self, backbone: str, *, kind: str, calls: list[tuple[keras.layers.Layer, Any, Any]], split: Any,
                 pool_size_2x: bool, dropout: float, freeze: Callable[[keras.layers.Layer], keras.layers.Layer]) -> None:
        self.backbone = backbone
        self.pool_size_2x = pool_size_2x
        self.dropout = dropout
        self._kind = kind  # "stage": the backbone's last stage; "vgg": the fully connected layers
        self._calls: list[tuple[keras.layers.Layer, Any, Any]] | None = calls
        self._split = split
        self._freeze = freeze
        #: The layers of the body in call order (empty before the first call).
        self.layers: list[keras.layers.Layer] = []
        # The recorded program: (layer, argument slots); slot 0 is the crops, slot k the output of step k.
        self._program: list[tuple[keras.layers.Layer, int | tuple[int, ...]]] = []
        self._crop_shape: tuple[int, int, int] | None = None
        self._last_units = 0

    @property
    def output_dim(self) -> int | None:
        """D, the per-ROI vector length (``None`` before the first call)."""
        return self._last_units or None

    def __call__(self, crops: Any) -> Any:
        shape = tuple(crops.shape)
        if len(shape) != 4:
            raise ValueError(f"RCNN body input must be ROI crops [M, p, p, C] (NHWC), got shape {shape}")
        crop_shape = (int(shape[1]), int(shape[2]), int(shape[3]))
        if self._crop_shape is None:
            return self._build(crops, crop_shape)
        if crop_shape != self._crop_shape:
            raise ValueError(f"RCNN body built for crops {self._crop_shape}, called on {crop_shape}")
        slots = [crops]
        for layer, args in self._program:
            slots.append(layer(slots[args] if isinstance(args, int) else [slots[i] for i in args]))
        return slots[-1]

    # -- first call: create the layers, record the program --------------------------------------------------------

    def _build(self, crops: Any, crop_shape: tuple[int, int, int]) -> Any:
        slot_of: dict[int, int] = {id(crops): 0}
        slots = [crops]

        def step(layer: keras.layers.Layer, inputs: Any) -> Any:
            args: int | tuple[int, ...]
            if isinstance(inputs, (list, tuple)):
                args = tuple(slot_of[id(t)] for t in inputs)
                output = layer([slots[i] for i in args])
            else:
                args = slot_of[id(inputs)]
                output = layer(slots[args])
            self._program.append((layer, args))
            self.layers.append(layer)
            slot_of[id(output)] = len(slots)
            slots.append(output)
            return output

        stride = 2 if self.pool_size_2x else 1
        expected = -(-crop_shape[0] // stride), -(-crop_shape[1] // stride)
        if self._kind == "vgg":
            x = crops
            if self.pool_size_2x:
                x = step(keras.layers.MaxPooling2D(2, strides=2, padding="same", name="rcnn_pool_2x"), x)
            x = step(keras.layers.Flatten(name="flatten"), x)
            for name in ("fc1", "fc2"):
                x = step(self._freeze(keras.layers.Dense(VGG_FC_UNITS, activation="relu", name=name)), x)
                if self.dropout > 0.0:
                    x = step(keras.layers.Dropout(self.dropout, name=f"{name}_dropout"), x)
            self._last_units = VGG_FC_UNITS
        else:
            if self._calls is None:  # pragma: no cover - _build runs once
                raise AssertionError("RCNN body already built")
            mapping: dict[int, Any] = {id(self._split): crops}
            for layer, inputs, output in self._calls:
                mapping[id(output)] = step(self._freeze(_copy(layer, stride)),
                                           _arguments(inputs, mapping, self.backbone))
            x = mapping[id(self._calls[-1][2])]
            found = int(x.shape[1]), int(x.shape[2])
            if found != expected:
                raise ValueError(f"backbone {self.backbone!r} is not yet supported for FasterRCNN: its last stage "
                                 f"turns {crop_shape[:2]} crops into {found}, expected {expected}")
            x = step(keras.layers.AveragePooling2D(found, name="avg_pool"), x)
            x = step(keras.layers.Flatten(name="time_distributed_flatten"), x)
            self._last_units = int(x.shape[-1])
        self._calls, self._split = None, None  # drop the probe graph
        self._crop_shape = crop_shape
        return x


def split_backbone(
    name: str,
    image_nhwc: Any,
    *,
    pool_size_2x: bool = False,
    dropout: float = 0.0,
    use_bias: bool = False,
    use_batch_norm: bool = True,
    all_projections: bool = True,
    use_pooling: bool = False,
    freeze_bn: bool = False,
    freeze_blocks: Sequence[float] = (),
    activation: str | None = None,
    kernel_regularizer: keras.regularizers.Regularizer | None = None,
    bias_regularizer: keras.regularizers.Regularizer | None = None,
) -> tuple[Any, RcnnBody]:
    """Backbone ``name`` split for FasterRCNN: ``(feature_map, rcnn_body)`` (module docstring, "The split").

    ``feature_map`` is the trunk's stride-16 output on ``image_nhwc`` ``[N, H, W, C]``; ``rcnn_body`` maps ROI crops
    ``[M, p, p, C_f]`` to ``[M, D]`` (stride 2 in its first stage with ``pool_size_2x``, so crops are 2p × 2p then).
    ``dropout``: VGG's fc dropouts. The other options are :func:`libtlt.backbones.build_backbone`'s.
    """
    from libtlt import backbones

    key, family = backbones._family(name)
    frozen = backbones._check_blocks(key, freeze_blocks)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout:g}")
    if len(image_nhwc.shape) != 4:
        raise ValueError(f"backbone input must be NHWC (4 dimensions), got shape {tuple(image_nhwc.shape)}")
    vgg = family.arch == "vgg"
    recorder = _RecordingBuilder(
        use_bias=use_bias, use_batch_norm=use_batch_norm or family.always_batch_norm,
        kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
        activation=activation or family.activation, kernel_initializer=family.kernel_initializer,
        tlt_template=vgg)  # VGG's template is the stride-16 trunk; ResNet's paper layout has blocks 1-3 at 16
    probe = keras.Input(shape=tuple(image_nhwc.shape[1:]), name=f"{key}_probe")
    family.build(key, probe, recorder, all_projections=all_projections, use_pooling=use_pooling, dropout=0.0)
    split = recorder.levels.get(4)
    cut = next((i for i, (_, _, output) in enumerate(recorder.calls) if output is split), None)
    body_calls = recorder.calls[cut + 1:] if cut is not None else []
    if cut is None or (not vgg and not body_calls):
        raise ValueError(f"backbone {name!r} is not yet supported for FasterRCNN: it has no stage after stride 16")
    freeze = _Freezer(key, family, frozen, freeze_bn)
    mapping: dict[int, Any] = {id(probe): image_nhwc}
    for layer, inputs, output in recorder.calls[:cut + 1]:
        mapping[id(output)] = freeze(_copy(layer))(_arguments(inputs, mapping, name))
    body = RcnnBody(key, kind="vgg" if vgg else "stage", calls=[] if vgg else body_calls, split=split,
                    pool_size_2x=pool_size_2x, dropout=dropout, freeze=freeze)
    return mapping[id(split)], body


# ---------------------------------------------------------------------------------------------------- RPN head


def rpn_head(feature_map: Any, num_anchors: int) -> tuple[Any, Any]:
    """``(rpn_out_class [N, Hf, Wf, A], rpn_out_regress [N, Hf, Wf, 4A])`` on the NHWC feature map."""
    if num_anchors < 1:
        raise ValueError(f"the RPN needs at least one anchor per cell, got {num_anchors}")
    layers = keras.layers

    def normal() -> keras.initializers.Initializer:
        return keras.initializers.RandomNormal(stddev=0.01)

    x = layers.Conv2D(512, 3, padding="same", activation="relu", kernel_initializer=normal(), name=RPN_CONV)(
        feature_map)
    scores = layers.Conv2D(num_anchors, 1, activation="sigmoid", kernel_initializer=normal(), name=RPN_CLASS,
                           dtype="float32")(x)
    deltas = layers.Conv2D(4 * num_anchors, 1, kernel_initializer=normal(), name=RPN_REGRESS, dtype="float32")(x)
    return scores, deltas


# ------------------------------------------------------------------------------------------------ Keras layers


def _image_hw(image_hw: Sequence[int] | None) -> tuple[int, int] | None:
    """A fixed input size ``(H, W)``, checked; ``None`` (a dynamic input size) as it is."""
    if image_hw is None:
        return None
    if len(image_hw) != 2 or min(int(v) for v in image_hw) < 2:
        raise ValueError(f"image_hw must be (H, W) with H, W >= 2, got {list(image_hw)}")
    return int(image_hw[0]), int(image_hw[1])


@keras.saving.register_keras_serializable(package="tlt")
class ProposalLayer(keras.layers.Layer):
    """RPN outputs → ROIs ``[N, post_nms_top_n, 4]`` ``(x1, y1, x2, y2)`` pixels, zero padded.

    Inputs ``[rpn_out_class [N, Hf, Wf, A], rpn_out_regress [N, Hf, Wf, 4A]]``; the anchors are
    :func:`~libtlt.archs.faster_rcnn.anchors.grid_anchors` of the inputs' static Hf × Wf with ``stride``,
    ``scales`` and ``ratios``, in the same (H, W, A) order. Semantics: :func:`proposals.proposals`. With
    ``with_count`` the layer returns ``[rois, count [N] int32]``. No gradient flows back into the RPN.

    ``image_hw`` ``None`` is a dynamic input size (``size_min``): a third input, the network's input image
    ``[N, C, H, W]``, gives the size to clip to, and the anchors are computed for the feature map each call sees.
    """

    def __init__(self, image_hw: Sequence[int] | None, scales: Sequence[float], ratios: Sequence[float], *,
                 stride: int = RPN_STRIDE, std_scaling: float = 1.0, pre_nms_top_n: int = 6000,
                 post_nms_top_n: int = 300, nms_iou: float = 0.7, min_size: float = proposal_ops.DEFAULT_MIN_SIZE,
                 with_count: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_hw = _image_hw(image_hw)
        if std_scaling <= 0:
            raise ValueError(f"std_scaling must be > 0, got {std_scaling:g}")
        if pre_nms_top_n < 1 or post_nms_top_n < 1:
            raise ValueError(f"pre/post NMS top N must be >= 1, got {pre_nms_top_n}, {post_nms_top_n}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou:g}")
        anchor_ops.anchor_shapes(scales, ratios)  # validates
        self.scales = [float(s) for s in scales]
        self.ratios = [float(r) for r in ratios]
        self.stride = int(stride)
        self.std_scaling = float(std_scaling)
        self.pre_nms_top_n = int(pre_nms_top_n)
        self.post_nms_top_n = int(post_nms_top_n)
        self.nms_iou = float(nms_iou)
        self.min_size = float(min_size)
        self.with_count = bool(with_count)
        self._anchor_cache: dict[tuple[int, int], np.ndarray] = {}

    @property
    def num_anchors(self) -> int:
        return len(self.scales) * len(self.ratios)

    def anchors(self, feature_hw: Sequence[int]) -> np.ndarray:
        """``(Hf·Wf·A, 4)`` anchors of an Hf × Wf feature map."""
        hw = (int(feature_hw[0]), int(feature_hw[1]))
        if hw not in self._anchor_cache:
            self._anchor_cache[hw] = anchor_ops.grid_anchors(hw, self.stride, self.scales, self.ratios)
        return self._anchor_cache[hw]

    def _check(self, inputs: Sequence[Any]) -> tuple[int | None, int | None]:
        if len(inputs) != (2 if self.image_hw is not None else 3):
            raise ValueError(f"ProposalLayer takes the RPN outputs{' and the input image' if self.image_hw is None else ''}"
                             f", got {len(inputs)} inputs")
        class_shape, regress_shape = inputs[0].shape, inputs[1].shape
        static = self.image_hw is not None
        if len(class_shape) != 4 or len(regress_shape) != 4 or (static and None in tuple(class_shape[1:])):
            raise ValueError(f"ProposalLayer needs static NHWC RPN outputs, got {tuple(class_shape)}")
        a = self.num_anchors
        if class_shape[3] != a or regress_shape[3] != 4 * a or tuple(class_shape[1:3]) != tuple(regress_shape[1:3]):
            raise ValueError(f"ProposalLayer with {a} anchors per cell got RPN outputs {tuple(class_shape)} and "
                             f"{tuple(regress_shape)}")
        return class_shape[1], class_shape[2]

    def call(self, inputs: Sequence[Any]) -> Any:
        import tensorflow as tf

        self._check(inputs)
        scores, deltas = inputs[0], inputs[1]
        if self.image_hw is not None:
            hf, wf = int(scores.shape[1]), int(scores.shape[2])
            anchors: Any = self.anchors((hf, wf))
            image_hw: Sequence[Any] = self.image_hw
        else:  # dynamic input size: anchors of this feature map, clipped to this image
            feature = tf.shape(scores)
            anchors = proposal_ops.grid_anchors_tf((feature[1], feature[2]), self.stride,
                                                   anchor_ops.anchor_shapes(self.scales, self.ratios))
            image = tf.shape(inputs[2])
            image_hw = (image[2], image[3])
        batch = tf.shape(scores)[0]
        scores = tf.reshape(tf.stop_gradient(scores), [batch, -1])
        deltas = tf.reshape(tf.stop_gradient(deltas), [batch, -1, 4])
        rois, count = proposal_ops.proposals(
            scores, deltas, anchors, image_hw, std_scaling=self.std_scaling,
            pre_nms_top_n=self.pre_nms_top_n, post_nms_top_n=self.post_nms_top_n, nms_iou=self.nms_iou,
            min_size=self.min_size)
        return [rois, count] if self.with_count else rois

    def compute_output_spec(self, inputs: Sequence[Any]) -> Any:
        scores = inputs[0]
        self._check(inputs)
        batch = scores.shape[0]
        rois = keras.KerasTensor((batch, self.post_nms_top_n, 4), dtype="float32")
        return [rois, keras.KerasTensor((batch,), dtype="int32")] if self.with_count else rois

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(image_hw=None if self.image_hw is None else list(self.image_hw), scales=self.scales,
                      ratios=self.ratios, stride=self.stride,
                      std_scaling=self.std_scaling, pre_nms_top_n=self.pre_nms_top_n,
                      post_nms_top_n=self.post_nms_top_n, nms_iou=self.nms_iou, min_size=self.min_size,
                      with_count=self.with_count)
        return config


@keras.saving.register_keras_serializable(package="tlt")
class CropAndResize(keras.layers.Layer):
    """ROI pooling: ``[feature_map [N, Hf, Wf, C], rois [N, R, 4]]`` → crops ``[N·R, p, p, C]`` (NHWC).

    ROIs are ``(x1, y1, x2, y2)`` image pixels; ``tf.image.crop_and_resize`` (bilinear, extrapolation 0) gets them
    as ``(y1, x1, y2, x2)`` normalised by the **image** size minus one (y / (H_img − 1), x / (W_img − 1)), so
    0..1 spans feature pixels 0..Hf − 1. Crop row m belongs to image m // R. The boxes get no gradient.

    ``image_hw`` ``None`` is a dynamic input size (``size_min``): a third input, the network's input image
    ``[N, C, H, W]``, gives the size.
    """

    #: For tlt-prune: the crops' channels are the feature map's (input 0), unchanged.
    pruned_channels_follow_input = 0

    def __init__(self, image_hw: Sequence[int] | None, crop_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if crop_size < 1:
            raise ValueError(f"crop_size must be >= 1, got {crop_size}")
        self.image_hw = _image_hw(image_hw)
        self.crop_size = int(crop_size)

    def normalized_boxes(self, rois: Any, image_hw: Sequence[Any] | None = None) -> Any:
        """``[..., 4]`` ``(x1, y1, x2, y2)`` pixels → ``(y1, x1, y2, x2)`` as crop_and_resize wants them
        (``image_hw``: the input size, by default the layer's own)."""
        import tensorflow as tf

        x1, y1, x2, y2 = tf.unstack(tf.cast(rois, tf.float32), axis=-1)
        size = image_hw if image_hw is not None else self.image_hw
        if size is None:
            raise ValueError("a CropAndResize of a dynamic input size needs the image's size")
        h, w = tf.cast(size[0], tf.float32) - 1.0, tf.cast(size[1], tf.float32) - 1.0
        return tf.stack([y1 / h, x1 / w, y2 / h, x2 / w], axis=-1)

    def call(self, inputs: Sequence[Any]) -> Any:
        import tensorflow as tf

        if len(inputs) != (2 if self.image_hw is not None else 3):
            raise ValueError(f"CropAndResize takes the feature map and the ROIs"
                             f"{' and the input image' if self.image_hw is None else ''}, got {len(inputs)} inputs")
        feature_map, rois = inputs[0], inputs[1]
        size = None if self.image_hw is not None else tf.shape(inputs[2])[2:4]
        rois_per_image = tf.shape(rois)[1]
        boxes = tf.reshape(self.normalized_boxes(tf.stop_gradient(rois), size), [-1, 4])
        index = tf.range(tf.shape(boxes)[0], dtype=tf.int32) // rois_per_image
        return tf.image.crop_and_resize(feature_map, boxes, index, [self.crop_size, self.crop_size],
                                        method="bilinear")

    def compute_output_spec(self, inputs: Sequence[Any]) -> Any:
        feature_map, rois = inputs[0], inputs[1]
        if len(feature_map.shape) != 4 or len(rois.shape) != 3 or rois.shape[-1] != 4:
            raise ValueError(f"CropAndResize needs [N, Hf, Wf, C] and [N, R, 4], got {tuple(feature_map.shape)} "
                             f"and {tuple(rois.shape)}")
        n, r = rois.shape[0], rois.shape[1]
        rows = None if n is None or r is None else int(n) * int(r)
        return keras.KerasTensor((rows, self.crop_size, self.crop_size, feature_map.shape[-1]), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(image_hw=None if self.image_hw is None else list(self.image_hw), crop_size=self.crop_size)
        return config


@keras.saving.register_keras_serializable(package="tlt")
class RoisToImages(keras.layers.Layer):
    """Regroups ROI rows ``[N·R, ...]`` into ``[N, R, ...]`` (``rois_per_image`` = R)."""

    #: For tlt-prune: the last axis passes through unchanged.
    pruned_channels_follow_input = 0

    def __init__(self, rois_per_image: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rois_per_image < 1:
            raise ValueError(f"rois_per_image must be >= 1, got {rois_per_image}")
        self.rois_per_image = int(rois_per_image)

    def call(self, inputs: Any) -> Any:
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(inputs, (-1, self.rois_per_image, *shape[1:]))

    def compute_output_shape(self, input_shape: Sequence[Any]) -> tuple[Any, ...]:
        rows = input_shape[0]
        images = None if rows is None else int(rows) // self.rois_per_image
        return (images, self.rois_per_image, *input_shape[1:])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rois_per_image=self.rois_per_image)
        return config


# --------------------------------------------------------------------------------------------------- RCNN head


def rcnn_head(vectors: Any, num_fg_classes: int, rois_per_image: int) -> tuple[Any, Any]:
    """``(dense_class_td [N, R, C_fg + 1] softmax, background last; dense_regress_td [N, R, 4·C_fg])``.

    ``vectors`` are the body's ``[N·R, D]`` rows (R = ``rois_per_image``, rows of image i first).
    """
    if num_fg_classes < 1:
        raise ValueError(f"FasterRCNN needs at least one object class, got {num_fg_classes}")
    x = RoisToImages(rois_per_image, name="rcnn_rois_to_images")(vectors)
    probs = keras.layers.Dense(num_fg_classes + 1, activation="softmax", name=RCNN_CLASS, dtype="float32",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(x)
    deltas = keras.layers.Dense(4 * num_fg_classes, name=RCNN_REGRESS, dtype="float32",
                                kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))(x)
    return probs, deltas


# ---------------------------------------------------------------------------------------------- whole network


@dataclass(frozen=True)
class FasterRcnnNetworkConfig:
    """Everything :func:`build_inference_model` needs, parsed from a FasterRCNN spec."""

    backbone: str  # a libtlt.backbones name: "resnet18", "vgg16", ...
    input_shape: tuple[int, int, int]  # (C, H, W); H = W = -1: any size (size_min)
    num_fg_classes: int
    scales: tuple[float, ...] = (64.0, 128.0, 256.0)
    ratios: tuple[float, ...] = (1.0, 0.5, 2.0)
    pool_size: int = 7
    pool_size_2x: bool = False
    std_scaling: float = 1.0
    pre_nms_top_n: int = 6000
    post_nms_top_n: int = 300
    nms_iou: float = 0.7
    min_size: float = proposal_ops.DEFAULT_MIN_SIZE
    dropout: float = 0.0
    use_bias: bool = False
    all_projections: bool = True
    use_pooling: bool = False
    freeze_bn: bool = False
    freeze_blocks: tuple[int, ...] = ()
    activation: str | None = None

    @property
    def num_anchors(self) -> int:
        return anchor_ops.num_anchors(self.scales, self.ratios)

    @property
    def crop_size(self) -> int:
        """The ROI crops' side: pool_size, or twice it with pool_size_2x."""
        return self.pool_size * (2 if self.pool_size_2x else 1)

    @property
    def dynamic(self) -> bool:
        """Whether the network takes images of any size (``size_min``; input_shape (C, -1, -1))."""
        return self.input_shape[1] <= 0 or self.input_shape[2] <= 0

    @property
    def feature_hw(self) -> tuple[int, int]:
        """The stride-16 feature map's (Hf, Wf) ('same' padding: ceil division) of a fixed input size."""
        if self.dynamic:
            raise ValueError("a network of a dynamic input size (size_min) has no fixed feature map size")
        return math.ceil(self.input_shape[1] / RPN_STRIDE), math.ceil(self.input_shape[2] / RPN_STRIDE)

    def backbone_options(self) -> dict[str, Any]:
        return {"pool_size_2x": self.pool_size_2x, "dropout": self.dropout, "use_bias": self.use_bias,
                "all_projections": self.all_projections, "use_pooling": self.use_pooling,
                "freeze_bn": self.freeze_bn, "freeze_blocks": self.freeze_blocks, "activation": self.activation}


def build_inference_model(config: FasterRcnnNetworkConfig) -> keras.Model:
    """The FasterRCNN inference network of ``config``.

    Outputs, in order: ``rpn_out_class`` ``[N, Hf, Wf, A]``, ``rpn_out_regress`` ``[N, Hf, Wf, 4A]``, ``proposals``
    ``[N, P, 4]`` (P = ``post_nms_top_n``), ``dense_class_td`` ``[N, P, C_fg + 1]``, ``dense_regress_td``
    ``[N, P, 4·C_fg]``.
    """
    channels, height, width = config.input_shape
    if config.pool_size < 1:
        raise ValueError(f"pool_size must be >= 1, got {config.pool_size}")
    dynamic = config.dynamic
    shape = (channels, None, None) if dynamic else config.input_shape
    inputs = keras.Input(shape=shape, name=INPUT_NAME, dtype="float32")
    nhwc = keras.layers.Permute((2, 3, 1), name="input_nhwc")(inputs)
    feature_map, body = split_backbone(config.backbone, nhwc, **config.backbone_options())
    if not dynamic:
        found = (int(feature_map.shape[1]), int(feature_map.shape[2]))
        if found != config.feature_hw:  # pragma: no cover - every family pads 'same'
            raise ValueError(f"{config.backbone}: feature map {found} differs from the expected {config.feature_hw}")
    scores, deltas = rpn_head(feature_map, config.num_anchors)
    image_hw = None if dynamic else (height, width)
    size_input = [inputs] if dynamic else []  # a dynamic size is read from the image when the graph runs
    rois = ProposalLayer(image_hw, config.scales, config.ratios, std_scaling=config.std_scaling,
                         pre_nms_top_n=config.pre_nms_top_n, post_nms_top_n=config.post_nms_top_n,
                         nms_iou=config.nms_iou, min_size=config.min_size, name=PROPOSALS)(
        [scores, deltas, *size_input])
    crops = CropAndResize(image_hw, config.crop_size, name=CROP_AND_RESIZE)([feature_map, rois, *size_input])
    probs, box_deltas = rcnn_head(body(crops), config.num_fg_classes, config.post_nms_top_n)
    return keras.Model(inputs, [scores, deltas, rois, probs, box_deltas], name="faster_rcnn")
