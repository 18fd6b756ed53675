"""FasterRCNN's training graph, derived from any inference model (fresh, pretrained, pruned or resumed).

The inference model (:func:`~libtlt.archs.faster_rcnn.network.build_inference_model`) maps an image to RPN outputs,
proposals and the RCNN head's outputs on them. Training needs a different middle (DETECTORS-TWO-STAGE.md §1): the
training configuration's proposal counts (``rpn_pre_nms_top_N`` / ``rpn_nms_max_boxes``), then ProposalTarget
(:mod:`~libtlt.archs.faster_rcnn.rcnn_targets`) choosing ``roi_mini_batch`` ROIs per image against the ground
truth, and the RCNN body and head run on those. :func:`training_graph` replays the inference model's graph with the
*same layer objects* (so every weight is shared and nothing is copied) and swaps three nodes on the way:

* ``proposals`` → a ProposalLayer with the training counts, returning the valid count too;
* between the proposals and ``crop_and_resize`` → :class:`RoiSampler` (inputs ``gt_boxes`` ``[N, G, 4]`` and
  ``gt_classes`` ``[N, G]``, −1 = padding), whose targets become extra outputs;
* the head's ``rcnn_rois_to_images`` → one regrouping ``roi_mini_batch`` rows per image.

:class:`FasterRcnnTrainer` wraps that graph for ``fit``: the dataset's targets are the RPN targets (layout of
:mod:`~libtlt.archs.faster_rcnn.data`), the RCNN targets come from the graph, and ``compute_loss`` adds the four
weighted terms of :mod:`~libtlt.archs.faster_rcnn.losses` and the regularizers. The trainer is never saved:
checkpoints hold the inference model (``saving_view``), whose weights are the trainer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras

from libtlt.archs.faster_rcnn import losses as loss_ops
from libtlt.archs.faster_rcnn import rcnn_targets as target_ops
from libtlt.archs.faster_rcnn.network import (
    PROPOSALS,
    RCNN_CLASS,
    RCNN_REGRESS,
    RPN_CLASS,
    RPN_REGRESS,
    ProposalLayer,
    RoisToImages,
)
from libtlt.registry import inference_model_saving_view

GT_BOXES = "gt_boxes"
GT_CLASSES = "gt_classes"
ROIS_TO_IMAGES = "rcnn_rois_to_images"
#: Names of the training graph's extra outputs (the sampled ROIs' targets).
CLASS_TARGETS, REGRESSION_TARGETS, ROI_WEIGHTS = "rcnn_class_targets", "rcnn_regression_targets", "rcnn_roi_weights"
LOSS_NAMES = ("rpn_class_loss", "rpn_regression_loss", "rcnn_class_loss", "rcnn_regression_loss")


@dataclass(frozen=True)
class TrainingConfig:
    """The training-only fields of a FasterRCNN spec (``training_config`` and ``model_config.roi_mini_batch``)."""

    targets: target_ops.RcnnTargetConfig
    pre_nms_top_n: int = 12000
    post_nms_top_n: int = 2000
    nms_iou: float = 0.7
    rpn_mini_batch: int = 256
    lambda_rpn_class: float = 1.0
    lambda_rpn_regr: float = 1.0
    lambda_cls_class: float = 1.0
    lambda_cls_regr: float = 1.0
    seed: int = 0


@keras.saving.register_keras_serializable(package="tlt")
class RoiSampler(keras.layers.Layer):
    """ProposalTarget as a layer: ``[rois [N,R,4], count [N], gt_boxes [N,G,4], gt_classes [N,G]]`` →
    ``[sampled rois [N,B,4], class targets [N,B,C+1], regression targets [N,B,8C], weights [N,B]]``.

    Each call draws a new sample: the stateless seed is (``seed``, a step counter the layer keeps), so a run is
    reproducible and two steps never reuse one sample. No gradient flows through the ROIs.
    """

    def __init__(self, num_fg_classes: int, targets: Mapping[str, Any], seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_fg_classes = int(num_fg_classes)
        self.targets = dict(targets)
        self.config = target_ops.RcnnTargetConfig(**{**self.targets,
                                                     "regr_std": tuple(self.targets.get("regr_std", (10, 10, 5, 5)))})
        self.seed = int(seed)

    def build(self, input_shape: Any) -> None:
        self.step = self.add_weight(name="step", shape=(), dtype="int64", initializer="zeros", trainable=False)

    def call(self, inputs: Any) -> Any:
        import tensorflow as tf

        rois, count, gt_boxes, gt_classes = inputs
        self.step.assign_add(1)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.step, tf.int64)])
        sampled = target_ops.rcnn_targets(rois, count, gt_boxes, gt_classes, num_classes=self.num_fg_classes,
                                          config=self.config, seed=seed)
        return [tf.stop_gradient(sampled.rois), sampled.class_targets, sampled.regression_targets, sampled.weights]

    def compute_output_spec(self, inputs: Any) -> Any:
        batch, b, c = inputs[0].shape[0], self.config.roi_mini_batch, self.num_fg_classes
        return [keras.KerasTensor((batch, b, 4)), keras.KerasTensor((batch, b, c + 1)),
                keras.KerasTensor((batch, b, 8 * c)), keras.KerasTensor((batch, b))]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_fg_classes=self.num_fg_classes, targets=self.targets, seed=self.seed)
        return config


def _num_fg_classes(model: keras.Model) -> int:
    return int(model.get_layer(RCNN_CLASS).output.shape[-1]) - 1


def training_graph(model: keras.Model, config: TrainingConfig) -> keras.Model:
    """The training graph of inference ``model`` (module docstring): inputs ``input_image``, ``gt_boxes``,
    ``gt_classes``; outputs by name ``rpn_out_class``, ``rpn_out_regress``, ``dense_class_td``, ``dense_regress_td``
    (on the sampled ROIs) and the three target tensors."""
    image = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name=model.inputs[0].name.split(":")[0])
    gt_boxes = keras.Input(shape=(None, 4), name=GT_BOXES)
    gt_classes = keras.Input(shape=(None,), name=GT_CLASSES, dtype="int32")
    num_fg = _num_fg_classes(model)
    targets = {"min_overlap": config.targets.min_overlap, "max_overlap": config.targets.max_overlap,
               "roi_mini_batch": config.targets.roi_mini_batch, "gt_as_roi": config.targets.gt_as_roi,
               "regr_std": list(config.targets.regr_std), "positive_fraction": config.targets.positive_fraction}
    sampler = RoiSampler(num_fg, targets, seed=config.seed, name="rcnn_roi_sampler")
    extra: dict[str, Any] = {}

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if layer.name == PROPOSALS:
            settings = {**layer.get_config(), "pre_nms_top_n": config.pre_nms_top_n,
                        "post_nms_top_n": config.post_nms_top_n, "nms_iou": config.nms_iou, "with_count": True,
                        "name": f"{PROPOSALS}_training"}
            rois, count = ProposalLayer.from_config(settings)(*args, **kwargs)
            sampled, extra[CLASS_TARGETS], extra[REGRESSION_TARGETS], extra[ROI_WEIGHTS] = sampler(
                [rois, count, gt_boxes, gt_classes])
            return sampled
        if layer.name == ROIS_TO_IMAGES:
            return RoisToImages(config.targets.roi_mini_batch, name=f"{ROIS_TO_IMAGES}_training")(*args, **kwargs)
        return layer(*args, **kwargs)

    # keras.models.clone_model replays a graph the same way but insists that the result depends on the image alone;
    # the Function method it calls does not (Keras is pinned, and the tests exercise this path).
    replayed = model._run_through_graph(image, operation_fn=lambda layer: layer, call_fn=call)
    outputs = dict(zip(model.output_names, replayed, strict=True))
    if set(extra) != {CLASS_TARGETS, REGRESSION_TARGETS, ROI_WEIGHTS}:
        raise ValueError(f"the model has no '{PROPOSALS}' layer to sample ROIs after")
    kept = {name: outputs[name] for name in (RPN_CLASS, RPN_REGRESS, RCNN_CLASS, RCNN_REGRESS)}
    return keras.Model({"input_image": image, GT_BOXES: gt_boxes, GT_CLASSES: gt_classes}, {**kept, **extra},
                       name="faster_rcnn_training")


def rpn_labels_and_deltas(targets: Mapping[str, Any], num_anchors: int) -> tuple[Any, Any, Any]:
    """``(labels [N,K] 1/0/−1, target deltas [N,K,4])`` from the dataset's RPN targets (NHWC, TAO's layout:
    ``rpn_out_class`` = [valid (A) ; label (A)], ``rpn_out_regress`` = [label ×4 (4A) ; deltas (4A)])."""
    import tensorflow as tf

    a = num_anchors
    cls = tf.cast(targets[RPN_CLASS], tf.float32)
    regress = tf.cast(targets[RPN_REGRESS], tf.float32)
    batch = tf.shape(cls)[0]
    labels = tf.where(cls[..., :a] > 0.5, cls[..., a:], -1.0)
    return tf.reshape(labels, [batch, -1]), tf.reshape(regress[..., 4 * a:], [batch, -1, 4]), batch


class FasterRcnnTrainer(keras.Model):
    """``fit`` target for a FasterRCNN: the training graph plus the loss (module docstring)."""

    def __init__(self, graph: keras.Model, config: TrainingConfig, **kwargs: Any) -> None:
        super().__init__(name="faster_rcnn_trainer", **kwargs)
        self.graph = graph
        self.config = config
        self.num_anchors = int(graph.get_layer(RPN_CLASS).output.shape[-1])
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.graph(inputs, training=training)

    @property
    def metrics(self) -> list[Any]:
        return [*super().metrics, *self.trackers.values()]

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        import tensorflow as tf

        c = self.config
        labels, target_deltas, batch = rpn_labels_and_deltas(y, self.num_anchors)
        scores = tf.reshape(y_pred[RPN_CLASS], [batch, -1])
        deltas = tf.reshape(y_pred[RPN_REGRESS], [batch, -1, 4])
        terms = {
            "rpn_class_loss": c.lambda_rpn_class * loss_ops.rpn_class_loss(labels, scores, c.rpn_mini_batch),
            "rpn_regression_loss": c.lambda_rpn_regr * loss_ops.rpn_regression_loss(labels, target_deltas, deltas,
                                                                                      c.rpn_mini_batch),
            "rcnn_class_loss": c.lambda_cls_class * loss_ops.rcnn_class_loss(
                y_pred[CLASS_TARGETS], y_pred[RCNN_CLASS], y_pred[ROI_WEIGHTS], c.targets.roi_mini_batch),
            "rcnn_regression_loss": c.lambda_cls_regr * loss_ops.rcnn_regression_loss(
                y_pred[REGRESSION_TARGETS], y_pred[RCNN_REGRESS], c.targets.roi_mini_batch)}
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        total = tf.add_n(list(terms.values()))
        if self.losses:
            total += tf.add_n([tf.cast(loss, tf.float32) for loss in self.losses])
        return total


#: Checkpoints save the inference model (the trainer shares its layers).
saving_view = inference_model_saving_view
