"""MaskRCNN's plugin-free ONNX export (libtlt.archs.mask_rcnn.export): the graph is default-domain ONNX with TAO's two
outputs, every stage in onnxruntime equals the Keras layer it replaces when fed the same tensors (FPN levels,
proposals, multilevel RoIAlign through the box head, detections, masks), the whole graph equals the Keras model, and a
model loaded from disk exports the same graph.

One tiny ResNet10 + FPN at 64×128 (levels 2..6) whose RPN and head weights are spread so that scores differ: the
fresh initializers give every anchor nearly the same objectness and every class nearly the same probability, which
would test tie-breaking instead of the pipeline."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
import pytest

from libtlt.archs.mask_rcnn import network as net
from libtlt.archs.mask_rcnn.export import DEPLOYED_OUTPUTS, INTERMEDIATE_OUTPUTS, MASKS_OUTPUT, to_onnx
from libtlt.archs.mask_rcnn.inference import InferenceConfig
from libtlt.archs.mask_rcnn.model import DETECTIONS, MASKS, build_inference_model
from libtlt.archs.mask_rcnn.proposals import ProposalConfig
from libtlt.archs.mask_rcnn.roi_align import multilevel_roi_align
from libtlt.testing import spread_weights

HEIGHT, WIDTH = 64, 128
CONFIG = net.MaskRcnnNetworkConfig(num_classes=4, image_hw=(HEIGHT, WIDTH), nlayers=10, fpn_channels=16,
                                   mlp_head_dim=32, mask_head_channels=16, mrcnn_resolution=14)
INFERENCE = InferenceConfig(proposals=ProposalConfig(200, 40, 0.7, 0.0), detections_per_image=12)
LEVELS = CONFIG.anchors.levels


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(4)
    built = build_inference_model(CONFIG, INFERENCE)
    spread_weights(built, net.RPN_CLASS, 0.3, (-2.0, 2.0), 1)
    spread_weights(built, net.RPN_BOX, 0.02, (-0.3, 0.3), 2)
    spread_weights(built, net.CLASS_PREDICT, 1.0, (-0.2, 0.2), 3)
    spread_weights(built, net.BOX_PREDICT, 0.05, (-1.0, 1.0), 4)
    spread_weights(built, net.MASK_LOGITS, 0.3, (-1.0, 1.0), 5)
    return built


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([np.sin(xx / (7 + 3 * c)) * np.cos(yy / (5 + c)) for c in range(3)]) * 2.0
    return np.stack([base + rng.normal(0, 0.5, base.shape), base[:, ::-1, ::-1] + rng.normal(0, 0.5, base.shape)]
                    ).astype(np.float32)


@pytest.fixture(scope="module")
def staged(model: keras.Model) -> onnx.ModelProto:
    return to_onnx(model, with_intermediate=True)


@pytest.fixture(scope="module")
def deployed(model: keras.Model) -> onnx.ModelProto:
    return to_onnx(model)


def _run(graph: onnx.ModelProto, batch: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"Input": batch}), strict=True))


def _layer_outputs(model: keras.Model, names: list[str], batch: np.ndarray) -> dict[str, np.ndarray]:
    probe = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
    values = probe.predict_on_batch(batch)
    return {n: np.asarray(v) for n, v in zip(names, values if len(names) > 1 else [values], strict=True)}


def test_graph_is_default_domain_onnx_with_tao_outputs(deployed: onnx.ModelProto) -> None:
    graph = deployed.graph
    assert [o.name for o in graph.output] == [DETECTIONS, MASKS_OUTPUT] == list(DEPLOYED_OUTPUTS)
    assert MASKS_OUTPUT == "mask_fcn_logits/BiasAdd"
    (image,) = graph.input
    dims = image.type.tensor_type.shape.dim
    assert image.name == "Input" and dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [3, HEIGHT, WIDTH]
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]] == [12, 6]
    assert [d.dim_value for d in graph.output[1].type.tensor_type.shape.dim[1:]] == [12, 4, 14, 14]
    assert {n.domain for n in graph.node} <= {""} and [o.domain for o in deployed.opset_import] == [""]
    assert {"RoiAlign", "NonMaxSuppression", "TopK", "NonZero", "ScatterND", "Conv", "ConvTranspose"} <= {
        n.op_type for n in graph.node}
    produced = [out for n in graph.node for out in n.output]
    assert len(set(produced)) == len(produced) and len({n.name for n in graph.node}) == len(graph.node)


@pytest.mark.parametrize("count", [1, 2])
def test_every_stage_matches_the_keras_layers(model: keras.Model, staged: onnx.ModelProto, images: np.ndarray,
                                              count: int) -> None:
    import tensorflow as tf

    batch = images[:count]
    ours = _run(staged, batch)
    assert list(ours) == [*DEPLOYED_OUTPUTS, *(net.feature_key(lv) for lv in LEVELS), *INTERMEDIATE_OUTPUTS]
    theirs = _layer_outputs(model, ["multilevel_proposals", "class_logits_per_image", "box_deltas_per_image",
                                    DETECTIONS, MASKS], batch)
    features_nhwc = [model.get_layer("box_roi_align").input[1 + i] for i in range(len(LEVELS))]
    keras_features = keras.Model(model.inputs[0], features_nhwc).predict_on_batch(batch)
    for level, value in zip(LEVELS, keras_features, strict=True):
        np.testing.assert_allclose(ours[net.feature_key(level)], np.transpose(value, (0, 3, 1, 2)), atol=1e-4)

    rois = ours["rois"]
    np.testing.assert_allclose(rois, theirs["multilevel_proposals"], atol=1e-3)  # same ROIs, same order
    real = (rois[..., 2] > rois[..., 0]) & (rois[..., 3] > rois[..., 1])
    assert real.sum(axis=1).min() >= 30  # mostly real boxes
    p = INFERENCE.proposals.post_nms_top_n
    np.testing.assert_allclose(ours["class_logits"].reshape(count, p, -1), theirs["class_logits_per_image"],
                               atol=1e-4)
    np.testing.assert_allclose(ours["box_deltas"].reshape(count, p, -1), theirs["box_deltas_per_image"], atol=1e-4)

    # The multilevel RoIAlign alone, on boxes of every level and both images: onnxruntime vs the TF layer.
    features = {lv: tf.constant(np.transpose(v, (0, 2, 3, 1))) for lv, v in zip(
        LEVELS, (ours[net.feature_key(lv)] for lv in LEVELS), strict=True)}
    crops = multilevel_roi_align(features, tf.constant(rois), net.BOX_CROP_SIZE).numpy()
    assert crops.shape == (count, p, 7, 7, CONFIG.fpn_channels)

    rows, masks = ours[DETECTIONS], ours[MASKS_OUTPUT]
    assert rows.shape == (count, 12, 6) and masks.shape == (count, 12, 4, 14, 14)
    assert (rows[..., 5] > 0).sum(axis=1).min() >= 6 and len(np.unique(rows[..., 4][rows[..., 5] > 0])) >= 2
    np.testing.assert_allclose(rows, theirs[DETECTIONS], atol=1e-4)
    np.testing.assert_allclose(masks, theirs[MASKS], atol=1e-4)
    assert masks.min() >= 0.0 and masks.max() <= 1.0 and masks.std() > 0.05


def test_multilevel_roi_align_equals_the_tf_layer_on_every_level(model: keras.Model) -> None:
    """The ONNX pooling (NonZero per level → RoiAlign → ScatterND) against the TF layer on random NCHW feature maps
    of a 1024×1024 image, two images, boxes of every level 2..6 in mixed order, a zero box, one at the image's corner,
    one thinner than a feature pixel."""
    import onnxruntime as ort
    import tensorflow as tf

    from libtlt.archs.mask_rcnn.export import _multilevel_roi_align
    from libtlt.archs.mask_rcnn.roi_align import assign_levels
    from libtlt.runtime.onnx_nms import GraphBuilder

    rng = np.random.default_rng(7)
    size, channels = 1024, 3
    features = {net.feature_key(lv): rng.normal(size=(2, channels, size >> lv, size >> lv)).astype(np.float32)
                for lv in LEVELS}
    boxes = np.asarray([[[0, 0, 0, 0], [10, 20, 60, 70], [100, 100, 250, 260], [0, 0, 1024, 1024],
                         [300.5, 700.2, 330.1, 720.9], [200, 100, 520, 400], [900, 950, 1024, 1024],
                         [50, 60, 50.5, 400]],
                        [[5, 5, 900, 1000], [400, 400, 420, 430], [0, 0, 0, 0], [12.3, 40.7, 610.2, 650.4],
                         [1, 2, 3, 4], [100, 0, 400, 1024], [700, 700, 1000, 1000], [0, 0, 64, 64]]], np.float32)
    assert set(assign_levels(boxes, 2, 6).ravel()) == set(LEVELS)
    g = GraphBuilder("t/")
    crops = _multilevel_roi_align(g, {lv: net.feature_key(lv) for lv in LEVELS}, "boxes",
                                  model.get_layer("box_roi_align"), channels)
    inputs = [onnx.helper.make_tensor_value_info("boxes", onnx.TensorProto.FLOAT, [2, 8, 4]),
              *(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, list(v.shape))
                for n, v in features.items())]
    graph = onnx.helper.make_graph(g.nodes, "pool", inputs,
                                   [onnx.helper.make_tensor_value_info(crops, onnx.TensorProto.FLOAT, None)],
                                   g.initializers)
    pooling = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(pooling.SerializeToString(), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {"boxes": boxes, **features})
    tf_features = {lv: tf.constant(np.transpose(features[net.feature_key(lv)], (0, 2, 3, 1))) for lv in LEVELS}
    theirs = multilevel_roi_align(tf_features, tf.constant(boxes), net.BOX_CROP_SIZE).numpy()  # [N, R, n, n, C]
    np.testing.assert_allclose(ours, np.transpose(theirs, (0, 1, 4, 2, 3)).reshape(16, channels, 7, 7), atol=1e-4)


def test_a_model_loaded_from_disk_exports_the_same_graph(model: keras.Model, deployed: onnx.ModelProto,
                                                          tmp_path: Path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    path = tmp_path / "model.tlt"
    save_tlt_model(path, model, "key", {"architecture": "mask_rcnn"}, kdf_iterations=1000)
    loaded, _ = load_tlt_model(path, "key", architecture="mask_rcnn")
    again = to_onnx(loaded)
    assert again.SerializeToString() == deployed.SerializeToString()
