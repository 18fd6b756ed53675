"""MaskRCNN network: layer names and shapes, ResNet depths, the training graph taking optimizer steps on a generated
COCO batch (libtlt.samples.instances), and inference to ``generate_detections`` rows and pasted masks. Tiny
networks on 64×64 inputs."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from libtlt.archs.mask_rcnn import network as net
from libtlt.archs.mask_rcnn.anchors import AnchorConfig
from libtlt.archs.mask_rcnn.box_targets import BoxTargetConfig
from libtlt.archs.mask_rcnn.decoding import paste_masks
from libtlt.archs.mask_rcnn.inference import InferenceConfig, detect
from libtlt.archs.mask_rcnn.losses import LOSS_NAMES
from libtlt.archs.mask_rcnn.mask_targets import crop_gt_masks
from libtlt.archs.mask_rcnn.proposals import ProposalConfig
from libtlt.archs.mask_rcnn.rpn_targets import RpnTargetConfig
from libtlt.archs.mask_rcnn.training import TrainingConfig, anchor_count, training_losses
from libtlt.io.images import read_image
from libtlt.samples.instances import generate_coco_dataset

SIZE = 64
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = 0.224  # TAO's 'th' normalisation: one std for the three channels


def tiny_config(nlayers: int = 10, **overrides: Any) -> net.MaskRcnnNetworkConfig:
    values: dict[str, Any] = {"num_classes": 4, "image_hw": (SIZE, SIZE), "nlayers": nlayers, "fpn_channels": 16,
                              "mlp_head_dim": 32, "mask_head_channels": 16, "mrcnn_resolution": 14}
    return net.MaskRcnnNetworkConfig(**{**values, **overrides})


def test_rpn_model_names_levels_and_shapes() -> None:
    model = net.build_rpn_model(tiny_config())
    assert model.inputs[0].shape == (None, 3, SIZE, SIZE)
    out = model(np.zeros((2, 3, SIZE, SIZE), np.float32))
    for level in range(2, 7):
        side = SIZE >> level
        assert tuple(out[f"P{level}"].shape) == (2, side, side, 16)
        assert tuple(out[f"rpn_class_P{level}"].shape) == (2, side, side, 3)
        assert tuple(out[f"rpn_box_P{level}"].shape) == (2, side, side, 12)
    names = [layer.name for layer in model.layers]
    for name in ("conv1", "block_4a_relu", "l2", "l5", "FPN_up_2", "post_hoc_d2", "post_hoc_d5", "p6", "rpn",
                 "rpn-class", "rpn-box"):
        assert names.count(name) == 1, name  # the RPN head is one set of layers shared by the five levels
    assert "l6" not in names and "post_hoc_d6" not in names


def test_fpn_top_down_path_is_nearest_upsampling_plus_lateral() -> None:
    model = net.build_rpn_model(tiny_config())
    probe = keras.Model(model.inputs[0], [model.get_layer("l2").output, model.get_layer("FPN_add_3").output,
                                       model.get_layer("FPN_add_2").output])
    lateral, upper, merged = (np.asarray(t) for t in probe(np.random.default_rng(0).normal(
        size=(1, 3, SIZE, SIZE)).astype(np.float32)))
    np.testing.assert_allclose(merged, lateral + upper.repeat(2, axis=1).repeat(2, axis=2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("nlayers", "c5_channels"), [(10, 512), (18, 512), (34, 512), (50, 2048), (101, 2048)])
def test_every_resnet_depth_feeds_the_fpn(nlayers: int, c5_channels: int) -> None:
    model = net.build_rpn_model(tiny_config(nlayers, anchors=AnchorConfig(max_level=5)))
    assert model.get_layer("l5").input.shape[-1] == c5_channels
    assert model.get_layer("post_hoc_d5").output.shape[1:] == (2, 2, 16)


def test_heads_names_and_shapes() -> None:
    config = tiny_config()
    box_head, mask_head = net.build_box_head(config), net.build_mask_head(config)
    logits, deltas = box_head(np.zeros((5, 7, 7, 16), np.float32))
    assert logits.shape == (5, 4) and deltas.shape == (5, 16)
    assert mask_head(np.zeros((5, 7, 7, 16), np.float32)).shape == (5, 4, 14, 14)
    assert [layer.name for layer in box_head.layers][2:] == ["fc6", "fc7", "class-predict", "box-predict"]
    names = [layer.name for layer in mask_head.layers]
    assert names[1:7] == ["mask-conv-l0", "mask-conv-l1", "mask-conv-l2", "mask-conv-l3", "conv5-mask",
                          "mask_fcn_logits"]


def test_network_config_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="divisible by 2\\^max_level = 64"):
        tiny_config(image_hw=(64, 96))
    with pytest.raises(ValueError, match="background"):
        tiny_config(num_classes=1)
    with pytest.raises(ValueError, match="even"):
        tiny_config(mrcnn_resolution=7)


# ---------------------------------------------------------------------------------------------- training graph


def _coco_batch(root: Path, max_instances: int = 4) -> dict[str, np.ndarray]:
    """The generated sample as the training graph's inputs (what the record pipeline will produce)."""
    from pycocotools import mask as mask_api

    sample = generate_coco_dataset(root, num_images=2, width=SIZE, height=SIZE, seed=3, objects_per_image=(2, 3))
    data = json.loads(sample.annotation_file.read_text())
    images, boxes, classes, crops = [], [], [], []
    for image in data["images"]:
        pixels = read_image(sample.image_dir / image["file_name"]).astype(np.float32) / 255.0
        images.append(((pixels - MEAN) / STD).transpose(2, 0, 1))
        objects = [a for a in data["annotations"] if a["image_id"] == image["id"]][:max_instances]
        b = np.zeros((max_instances, 4), np.float32)
        c = np.full(max_instances, -1, np.int32)
        m = np.zeros((max_instances, SIZE, SIZE))
        for k, obj in enumerate(objects):
            x, y, w, h = obj["bbox"]
            b[k] = [y, x, y + h, x + w]
            c[k] = obj["category_id"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                rle = mask_api.frPyObjects(obj["segmentation"], SIZE, SIZE)
                m[k] = mask_api.decode(mask_api.merge(rle))
        boxes.append(b)
        classes.append(c)
        crops.append(crop_gt_masks(m, b, 28))
    return {"images": np.stack(images), "gt_boxes": np.stack(boxes), "gt_classes": np.stack(classes),
            "gt_mask_crops": np.stack(crops)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny network after a few optimizer steps on the generated batch, and the losses of each step."""
    keras.utils.set_random_seed(0)
    batch = _coco_batch(tmp_path_factory.mktemp("coco"))
    network = net.build_network(tiny_config())
    config = TrainingConfig(rpn=RpnTargetConfig(batch_size_per_im=64), proposals=ProposalConfig(200, 50),
                            boxes=BoxTargetConfig(batch_size_per_im=32))
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def step() -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            terms = training_losses(network, batch["images"], batch["gt_boxes"], batch["gt_classes"],
                                    batch["gt_mask_crops"], config, seed=(0, 0))
        variables = network.trainable_variables
        gradients = tape.gradient(terms["total_loss"], variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return terms

    history = [{name: float(value) for name, value in step().items()} for _ in range(5)]
    return {"network": network, "batch": batch, "history": history}


def test_training_steps_give_finite_losses_that_fall(trained: dict[str, Any]) -> None:
    history = trained["history"]
    for terms in history:
        assert set(terms) == {*LOSS_NAMES, "total_loss"}
        assert all(math.isfinite(v) for v in terms.values()), terms
        assert terms["total_loss"] == pytest.approx(sum(terms[name] for name in LOSS_NAMES), rel=1e-5)
    assert history[-1]["total_loss"] < history[0]["total_loss"]
    assert history[-1]["fast_rcnn_class_loss"] < history[0]["fast_rcnn_class_loss"]
    assert history[0]["mask_loss"] > 0 and history[0]["rpn_box_loss"] > 0  # foregrounds reached both heads


def test_every_trainable_weight_gets_a_gradient(trained: dict[str, Any]) -> None:
    network, batch = trained["network"], trained["batch"]
    config = TrainingConfig(rpn=RpnTargetConfig(batch_size_per_im=64), proposals=ProposalConfig(200, 50),
                            boxes=BoxTargetConfig(batch_size_per_im=32))
    with tf.GradientTape() as tape:
        terms = training_losses(network, batch["images"], batch["gt_boxes"], batch["gt_classes"],
                                batch["gt_mask_crops"], config, seed=(1, 2))
    gradients = tape.gradient(terms["total_loss"], network.trainable_variables)
    missing = [v.path for v, g in zip(network.trainable_variables, gradients, strict=True) if g is None]
    assert not missing
    assert anchor_count(network) == 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)


def test_inference_gives_detection_rows_and_pasteable_masks(trained: dict[str, Any]) -> None:
    network, batch = trained["network"], trained["batch"]
    config = InferenceConfig(proposals=ProposalConfig(100, 30, 0.7, 0.0), detections_per_image=10)
    detections, probs = detect(network, batch["images"], config)
    assert detections.shape == (2, 10, 6) and probs.shape == (2, 10, 4, 14, 14)
    valid = detections[..., 5] > 0
    assert valid.any()
    rows = detections[valid]
    assert np.all((rows[:, 4] >= 1) & (rows[:, 4] <= 3)) and np.all(rows[:, 5] <= 1)
    assert np.all(rows[:, 2] >= rows[:, 0]) and np.all(rows[:, :4] >= 0) and np.all(rows[:, :4] <= SIZE)
    assert np.all((probs >= 0) & (probs <= 1))
    masks = paste_masks(detections[0], probs[0], (SIZE, SIZE))
    assert masks.shape == (10, SIZE, SIZE) and not masks[~valid[0]].any()


def test_training_graph_traces_with_unknown_batch_and_instance_counts() -> None:
    # A tf.data pipeline feeds batches of unknown size and padded GT of unknown length.
    network = net.build_network(tiny_config())
    config = TrainingConfig(rpn=RpnTargetConfig(batch_size_per_im=32), proposals=ProposalConfig(50, 20),
                            boxes=BoxTargetConfig(batch_size_per_im=8))

    @tf.function(input_signature=[tf.TensorSpec([None, 3, SIZE, SIZE]), tf.TensorSpec([None, None, 4]),
                                  tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None, 28, 28])])
    def losses(images: Any, boxes: Any, classes: Any, crops: Any) -> dict[str, tf.Tensor]:
        return training_losses(network, images, boxes, classes, crops, config)

    boxes = np.array([[[10, 10, 40, 30], [0, 0, 0, 0]]], np.float32)
    terms = losses(np.zeros((1, 3, SIZE, SIZE), np.float32), boxes, np.array([[1, -1]], np.int32),
                   np.ones((1, 2, 28, 28), np.float32))
    assert all(math.isfinite(float(v)) for v in terms.values())
    assert float(terms["fast_rcnn_class_loss"]) == pytest.approx(math.log(4), rel=1e-2)  # untrained: uniform
