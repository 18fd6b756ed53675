"""FasterRCNN's plugin-free ONNX export (libtlt.archs.faster_rcnn.export): every stage of the stitched graph in
onnxruntime equals the Keras model (RPN, proposals in the same order, RCNN head), the ``NMS`` / ``NMS_1`` outputs
equal the Keras path's decoder, the graph is default-domain ONNX, and a model loaded from disk exports the same graph.

One tiny ResNet10 at 64×96 (a 4×6 feature map, 9 anchors, 12 proposals) whose RPN and head weights are set so that
scores spread out: the fresh initializers give every anchor nearly the same objectness and every class nearly the
same probability, which would test tie-breaking instead of the pipeline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import onnx
import pytest

from libtlt.archs.faster_rcnn.decoding import decode_detections
from libtlt.archs.faster_rcnn.export import INTERMEDIATE_OUTPUTS, to_onnx
from libtlt.archs.faster_rcnn.network import FasterRcnnNetworkConfig, build_inference_model
from libtlt.runtime.onnx_two_stage import DetectionConfig
from libtlt.testing import spread_weights

HEIGHT, WIDTH = 64, 96
NETWORK = FasterRcnnNetworkConfig(backbone="resnet10", input_shape=(3, HEIGHT, WIDTH), num_fg_classes=2,
                                  scales=(16.0, 32.0, 64.0), ratios=(1.0, 0.5, 2.0), pre_nms_top_n=40,
                                  post_nms_top_n=12)
DETECTION = DetectionConfig(HEIGHT, WIDTH, num_classes=2, confidence_threshold=0.05, iou_threshold=0.3, keep_top_k=10)
KERAS_OUTPUTS = ["rpn_out_class", "rpn_out_regress", "proposals", "dense_class_td", "dense_regress_td"]


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(3)
    built = build_inference_model(NETWORK)
    spread_weights(built, "rpn_out_class", 0.05, (-2.0, 2.0), 1)
    spread_weights(built, "rpn_out_regress", 0.01, (-0.3, 0.3), 2)
    spread_weights(built, "dense_class_td", 0.05, (-1.0, 1.0), 3)
    spread_weights(built, "dense_regress_td", 0.02, (-2.0, 2.0), 4)
    return built


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Two BGR images minus their means, as the FasterRCNN preprocessing gives them."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([np.sin(xx / (7 + 3 * c)) * np.cos(yy / (5 + c)) for c in range(3)]) * 100.0
    return np.stack([base + rng.normal(0, 30, base.shape), base[:, ::-1, ::-1] * 0.5 + rng.normal(0, 30, base.shape)]
                    ).astype(np.float32)


@pytest.fixture(scope="module")
def staged(model: keras.Model) -> onnx.ModelProto:
    return to_onnx(model, NETWORK, DETECTION, with_intermediate=True)


@pytest.fixture(scope="module")
def deployed(model: keras.Model) -> onnx.ModelProto:
    return to_onnx(model, NETWORK, DETECTION)


def _run(graph: onnx.ModelProto, batch: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input_image": batch}), strict=True))


def _keras(model: keras.Model, batch: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.asarray(v) for name, v in zip(KERAS_OUTPUTS, model.predict_on_batch(batch), strict=True)}


def test_graph_is_default_domain_onnx_with_deepstream_outputs(deployed: onnx.ModelProto) -> None:
    graph = deployed.graph
    assert [o.name for o in graph.output] == ["NMS", "NMS_1"]
    (image,) = graph.input
    dims = image.type.tensor_type.shape.dim
    assert image.name == "input_image" and dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [3, 64, 96]
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]] == [1, DETECTION.keep_top_k, 7]
    assert graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.INT32
    assert {n.domain for n in graph.node} <= {""} and [o.domain for o in deployed.opset_import] == [""]
    ops = {n.op_type for n in graph.node}
    assert {"RoiAlign", "NonMaxSuppression", "TopK", "Conv"} <= ops
    node_names = [n.name for n in graph.node]
    produced = [out for n in graph.node for out in n.output]
    initializers = [i.name for i in graph.initializer]
    assert len(set(node_names)) == len(node_names) and len(set(produced)) == len(produced)
    assert len(set(initializers)) == len(initializers) and not set(produced) & set(initializers)
    onnx.checker.check_model(deployed, full_check=True)


@pytest.mark.parametrize("count", [1, 2])
def test_every_stage_matches_keras_and_detections_match_the_keras_decoder(
        model: keras.Model, staged: onnx.ModelProto, deployed: onnx.ModelProto, images: np.ndarray,
        count: int) -> None:
    batch = images[:count]
    ours, theirs = _run(staged, batch), _keras(model, batch)
    assert list(ours) == ["NMS", "NMS_1", *INTERMEDIATE_OUTPUTS]
    for name in ("rpn_out_class", "rpn_out_regress"):
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-4, err_msg=name)
    scores = theirs["rpn_out_class"]
    assert scores.std() > 0.1  # the RPN really ranks its anchors
    np.testing.assert_allclose(ours["proposals"], theirs["proposals"], atol=1e-3)  # same ROIs, same order
    assert (ours["proposals"][..., 2] > ours["proposals"][..., 0]).sum() >= count * 8  # mostly real boxes
    for name in ("dense_class_td", "dense_regress_td"):
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-4, err_msg=name)

    expected = decode_detections(theirs["proposals"], theirs["dense_class_td"], theirs["dense_regress_td"],
                                 (HEIGHT, WIDTH), regr_std=DETECTION.regr_std, nms_iou=DETECTION.iou_threshold,
                                 score_threshold=DETECTION.confidence_threshold, max_boxes=DETECTION.keep_top_k)
    rows, kept = ours["NMS"], ours["NMS_1"]
    assert rows.shape == (count, 1, DETECTION.keep_top_k, 7) and kept.shape == (count, 1, 1, 1)
    scale = np.asarray([WIDTH, HEIGHT, WIDTH, HEIGHT], np.float32)
    for n, want in enumerate(expected):
        k = int(kept[n, 0, 0, 0])
        assert k == len(want.confidences) and k >= 3, (n, k)
        got = rows[n, 0]
        np.testing.assert_array_equal(got[:, 0], n)
        np.testing.assert_array_equal(got[:k, 1], want.class_ids)
        np.testing.assert_allclose(got[:k, 2], want.confidences, atol=1e-4)
        np.testing.assert_allclose(got[:k, 3:], np.asarray(want.boxes) / scale, atol=1e-4)
        np.testing.assert_array_equal(got[k:, 1:], np.tile([-1, 0, 0, 0, 0, 0], (DETECTION.keep_top_k - k, 1)))
    plain = _run(deployed, batch)
    np.testing.assert_array_equal(plain["NMS"], rows)
    np.testing.assert_array_equal(plain["NMS_1"], kept)


def test_a_model_loaded_from_disk_exports_the_same_graph(model: keras.Model, deployed: onnx.ModelProto,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "frcnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    again = to_onnx(loaded, NETWORK, DETECTION)
    assert again.SerializeToString() == deployed.SerializeToString()


def test_proposal_settings_come_from_the_model_not_the_spec(model: keras.Model, staged: onnx.ModelProto,
                                                            images: np.ndarray) -> None:
    """A spec with other proposal counts (evaluation_config vs training) exports the model's own layer."""
    other = dataclasses.replace(NETWORK, post_nms_top_n=5, pre_nms_top_n=7)
    graph = to_onnx(model, other, DETECTION, with_intermediate=True)
    proposals = _run(graph, images[:1])["proposals"]
    assert proposals.shape == (1, NETWORK.post_nms_top_n, 4)
    np.testing.assert_array_equal(proposals, _run(staged, images[:1])["proposals"])


def test_fp16_and_int8_engines_build_and_run(deployed: onnx.ModelProto, images: np.ndarray, tmp_path: Path) -> None:
    """The precision rewrites tlt-export applies (FP16 conversion keeping NonMaxSuppression, RoiAlign and TopK in
    float32; entropy calibration of every activation and Q/DQ) accept the stitched graph, and the FP16 engine keeps
    the float32 detections (scores spread enough here for float16 not to reorder them)."""
    from libtlt.runtime.calibration import calibrate_to_cache
    from libtlt.runtime.engine import build_engine, open_engine

    reference = _run(deployed, images)
    build_engine(deployed, tmp_path / "fp16.engine", backend="onnxruntime", precision="fp16",
                 input_dims=(3, HEIGHT, WIDTH), max_batch_size=2)
    half = open_engine(tmp_path / "fp16.engine").run({"input_image": images})
    np.testing.assert_array_equal(half["NMS_1"], reference["NMS_1"])
    np.testing.assert_array_equal(half["NMS"][..., :2], reference["NMS"][..., :2])
    np.testing.assert_allclose(half["NMS"], reference["NMS"], atol=1e-2)
    calibrate_to_cache(deployed, [images, images[::-1]], tmp_path / "cal.bin", input_name="input_image")
    build_engine(deployed, tmp_path / "int8.engine", backend="onnxruntime", precision="int8",
                 cal_cache=tmp_path / "cal.bin", input_dims=(3, HEIGHT, WIDTH), max_batch_size=2)
    int8 = open_engine(tmp_path / "int8.engine").run({"input_image": images})
    assert int8["NMS"].shape == reference["NMS"].shape and np.isfinite(int8["NMS"]).all()
    assert ((int8["NMS_1"] >= 0) & (int8["NMS_1"] <= DETECTION.keep_top_k)).all()


def test_mismatches_and_unsupported_opsets_are_refused(model: keras.Model) -> None:
    with pytest.raises(ValueError, match="opset 16 or 17"):
        to_onnx(model, NETWORK, DETECTION, opset=18)
    three = DetectionConfig(HEIGHT, WIDTH, num_classes=3, confidence_threshold=0.05, iou_threshold=0.3, keep_top_k=10)
    with pytest.raises(ValueError, match="2 object classes"):
        to_onnx(model, NETWORK, three)
    wide = DetectionConfig(HEIGHT, 128, num_classes=2, confidence_threshold=0.05, iou_threshold=0.3, keep_top_k=10)
    with pytest.raises(ValueError, match="image size mismatch"):
        to_onnx(model, NETWORK, wide)
    with pytest.raises(ValueError, match="no 'proposals' layer"):
        to_onnx(keras.Sequential([keras.Input((3, HEIGHT, WIDTH)), keras.layers.Flatten()]), NETWORK, DETECTION)
