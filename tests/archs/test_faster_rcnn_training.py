"""FasterRCNN's training graph: replayed from the inference model with shared weights, ROI sampling against the
ground truth inside the graph, the four losses, and a fit that moves the inference model's weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from libtlt.archs.faster_rcnn import anchors as anchor_ops
from libtlt.archs.faster_rcnn import rcnn_targets, rpn_targets
from libtlt.archs.faster_rcnn import training as T
from libtlt.archs.faster_rcnn.network import FasterRcnnNetworkConfig, build_inference_model

SIZE = 160
NETWORK = FasterRcnnNetworkConfig(backbone="resnet10", input_shape=(3, SIZE, SIZE), num_fg_classes=2,
                                  pre_nms_top_n=200, post_nms_top_n=32)
TRAINING = T.TrainingConfig(targets=rcnn_targets.RcnnTargetConfig(roi_mini_batch=16), pre_nms_top_n=300,
                            post_nms_top_n=64, rpn_mini_batch=64, seed=3)
GT_BOXES = np.array([[[20, 30, 90, 100], [60, 60, 150, 140], [0, 0, 0, 0]],
                     [[10, 10, 70, 60], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
GT_CLASSES = np.array([[0, 1, -1], [1, -1, -1]], np.int32)


def rpn_target_tensors(gt_boxes: np.ndarray) -> dict[str, np.ndarray]:
    """The dataset's RPN targets in TAO's layout (NHWC): [valid ; label] and [label x4 ; deltas]."""
    hf, wf = NETWORK.feature_hw
    a = NETWORK.num_anchors
    anchors = anchor_ops.grid_anchors((hf, wf), 16, NETWORK.scales, NETWORK.ratios)
    cls = np.zeros((len(gt_boxes), hf, wf, 2 * a), np.float32)
    regress = np.zeros((len(gt_boxes), hf, wf, 8 * a), np.float32)
    for i, boxes in enumerate(gt_boxes):
        labels, deltas = rpn_targets.rpn_targets(anchors, boxes, (SIZE, SIZE), min_overlap=0.3, max_overlap=0.7,
                                                 mini_batch=64, rng=np.random.default_rng(i))
        labels = labels.reshape(hf, wf, a)
        cls[i, ..., :a], cls[i, ..., a:] = labels >= 0, labels == 1
        regress[i, ..., :4 * a] = np.repeat(labels == 1, 4, axis=-1)
        regress[i, ..., 4 * a:] = deltas.reshape(hf, wf, 4 * a)
    return {"rpn_out_class": cls, "rpn_out_regress": regress}


@pytest.fixture(scope="module")
def models() -> tuple[Any, Any]:
    import keras

    keras.utils.set_random_seed(0)
    model = build_inference_model(NETWORK)
    return model, T.training_graph(model, TRAINING)


def batch() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    images = np.random.default_rng(1).normal(0, 50, (2, 3, SIZE, SIZE)).astype(np.float32)
    return {"input_image": images, "gt_boxes": GT_BOXES, "gt_classes": GT_CLASSES}, rpn_target_tensors(GT_BOXES)


def test_the_training_graph_shares_every_weight_and_samples_roi_mini_batch_rois(models) -> None:
    model, graph = models
    assert {id(v) for v in graph.trainable_weights} == {id(v) for v in model.trainable_weights}
    shapes = {name: tuple(tensor.shape) for name, tensor in graph.output.items()}
    assert shapes["dense_class_td"] == (None, 16, 3) and shapes["dense_regress_td"] == (None, 16, 8)
    assert shapes["rcnn_class_targets"] == (None, 16, 3) and shapes["rcnn_regression_targets"] == (None, 16, 16)
    assert shapes["rpn_out_class"] == (None, 10, 10, 9)
    # the inference model keeps its own proposal count
    assert tuple(model.get_layer("dense_class_td").output.shape) == (None, 32, 3)


def test_sampled_targets_follow_the_ground_truth(models) -> None:
    _, graph = models
    x, _ = batch()
    out = graph(x, training=False)
    weights = np.asarray(out["rcnn_roi_weights"])
    classes = np.asarray(out["rcnn_class_targets"])
    assert weights.shape == (2, 16) and set(np.unique(weights)) <= {0.0, 1.0}
    # every real slot is one class: background (last) or a foreground class present in that image
    assert np.array_equal(classes.sum(-1), weights)
    for image, present in enumerate(({0, 1}, {1})):
        labels = classes[image].argmax(-1)[weights[image] > 0]
        assert set(labels.tolist()) <= present | {2}


def test_the_sample_changes_every_step_and_repeats_with_the_seed(models) -> None:
    model, _ = models
    x, _ = batch()
    first = [T.training_graph(model, TRAINING)(x)["rcnn_class_targets"] for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])  # fresh samplers, same seed: same first draw
    graph = T.training_graph(model, TRAINING)
    draws = [np.asarray(graph(x)["rcnn_regression_targets"]) for _ in range(3)]
    assert not all(np.array_equal(draws[0], d) for d in draws[1:])


def test_rpn_targets_unpack_to_labels_and_deltas() -> None:
    _, targets = batch()
    labels, deltas, _ = T.rpn_labels_and_deltas(targets, NETWORK.num_anchors)
    a = NETWORK.num_anchors
    cls = targets["rpn_out_class"]
    want = np.where(cls[..., :a] > 0.5, cls[..., a:], -1).reshape(2, -1)
    np.testing.assert_array_equal(labels, want)
    assert deltas.shape == (2, want.shape[1], 4)
    assert np.all(np.asarray(deltas)[want != 1] == 0) and np.any(np.asarray(deltas)[want == 1] != 0)


def test_fit_reports_the_four_losses_and_trains_the_inference_model(models) -> None:
    import keras

    model, graph = models
    trainer = T.FasterRcnnTrainer(graph, TRAINING)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [w.copy() for w in model.get_layer("dense_class_td").get_weights()]
    history = trainer.fit(tf.data.Dataset.from_tensors(batch()).repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert set(T.LOSS_NAMES) <= set(logs) and all(np.isfinite(v) for v in logs.values())
    assert logs["loss"] == pytest.approx(sum(logs[name] for name in T.LOSS_NAMES), rel=0.05)
    after = model.get_layer("dense_class_td").get_weights()
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before, strict=True))
    view, extra = T.saving_view(model)(trainer)
    assert view is model and extra == {} and model.optimizer is trainer.optimizer
