"""DetectNet_v2 behind the registry protocol: model, loss, label encoder, data pipeline, post-processing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from libtlt.archs.detectnet_v2 import architecture as dn
from libtlt.archs.detectnet_v2.detectnet_v2_loss import ClassCost, DetectNetLoss, class_costs, normalized_weights
from libtlt.layers.bbox_rasterizer import TargetClassConfig, rasterize
from libtlt.metrics.detection import DetectionEvaluator
from libtlt.registry import REQUIRED_ATTRIBUTES, check_architecture, get_architecture
from libtlt.samples import generate_detection_dataset, kitti_convert_spec
from libtlt.spec import LoadedSpec, load_spec_text
from libtlt.spec.protos import detectnet_v2_pb2 as pb

CLASSES = ["car", "pedestrian", "cyclist"]


def default_text(root: Path | None = None, **replace: str) -> str:
    text = dn.DetectNetV2Architecture().default_spec()
    if root is not None:
        text = text.replace("/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*", f"{root}/tfrecords/*")
        text = text.replace("/workspace/tlt-experiments/data/training", str(root))
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def load(text: str, path: Path | None = None) -> LoadedSpec[pb.Experiment]:
    if path is not None:
        path.write_text(text, encoding="utf-8")
    spec = load_spec_text(text, pb.Experiment, name=str(path) if path else "<spec>")
    dn.DetectNetV2Architecture().validate(spec)
    return spec


# ----------------------------------------------------------------------------------------- protocol

def test_registered_and_protocol_complete() -> None:
    arch = get_architecture("detectnet_v2")
    assert isinstance(arch, dn.DetectNetV2Architecture)
    check_architecture(arch, "test")
    assert all(hasattr(arch, attr) for attr in REQUIRED_ATTRIBUTES)
    spec = load(arch.default_spec())
    assert arch.export_outputs(spec) == ["output_cov/Sigmoid", "output_bbox/BiasAdd"]
    plan = arch.train_plan(spec)
    assert plan.model_name == "resnet18_detector"
    assert plan.optimizer == "adam" and plan.lr_schedule == "soft_start_annealing"
    assert plan.lr_params == {"min_lr": 5e-06, "max_lr": 5e-04, "soft_start": 0.1, "annealing": 0.7}
    assert plan.regularizer == "L1" and plan.regularizer_weight == pytest.approx(3e-9)
    assert plan.epochs == 80 and plan.batch_size_per_gpu == 8 and plan.checkpoint_interval == 10
    assert plan.random_seed == 42 and plan.pretrained_model_path is None
    assert dn.class_names(spec) == CLASSES
    meta = dn.metadata(spec, CLASSES)
    assert meta["input_shape"] == [3, 272, 480] and meta["stride"] == 16
    assert meta["output_names"] == ["output_cov", "output_bbox"] and meta["preprocessing"] == "rgb/255"
    assert meta["architecture"] == "detectnet_v2" and meta["input_layout"] == "NCHW"


def test_no_regularizer_and_default_checkpoint_interval() -> None:
    text = default_text(**{"type: L1": "type: NO_REG", "checkpoint_interval: 10": "checkpoint_interval: 0"})
    plan = dn.DetectNetV2Architecture().train_plan(load(text))
    assert plan.regularizer is None and plan.regularizer_weight == 0.0
    assert plan.checkpoint_interval == 10


@pytest.mark.parametrize("layers", [10, 18])
def test_build_output_shapes(layers: int) -> None:
    spec = load(default_text(**{"num_layers: 18": f"num_layers: {layers}"}))
    model = dn.build_model(spec)
    assert model.input.shape[1:] == (3, 272, 480)
    assert model.layers[0].name == "input_1"
    cov, bbox = model.outputs
    assert tuple(cov.shape[1:]) == (3, 17, 30) and tuple(bbox.shape[1:]) == (12, 17, 30)
    assert model.output_names == ["output_cov", "output_bbox"]
    out = model.predict_on_batch(np.zeros((1, 3, 272, 480), np.float32))
    assert out[0].shape == (1, 3, 17, 30) and (out[0] > 0).all() and (out[0] < 1).all()


def test_vgg16_is_tlts_whole_stride_16_trunk() -> None:
    """TLT's VGG template: all five blocks (13 convolutions), the heads on block 5 at stride 16."""
    from libtlt.archs.detectnet_v2.detectnet_v2_head import DetectNetConfig, build_detectnet

    model = build_detectnet(DetectNetConfig("vgg16", (3, 64, 96), 3, use_batch_norm=True, all_projections=False))
    convs = [layer.name for layer in model.layers if layer.name.startswith("block_") and layer.name.endswith("_conv_1")]
    assert len(convs) == 13 and convs[-1] == "block_5c_conv_1"
    assert tuple(model.outputs[0].shape[1:]) == (3, 4, 6)  # stride 16


# TLT's ResNet template keeps stage 4: resnet18 DetectNet_v2 is the whole ResNet18 plus the 1x1 heads.
@pytest.mark.parametrize(("layers", "expected"), [(10, 4_923_599), (18, 11_198_159), (34, 21_313_743),
                                                  (50, 23_591_887)])
def test_resnet_keeps_stage_4_at_stride_16(layers: int, expected: int) -> None:
    import keras

    from libtlt.archs.detectnet_v2.detectnet_v2_head import DetectNetConfig, build_detectnet
    from libtlt.backbones import build_backbone

    config = DetectNetConfig(f"resnet{layers}", (3, 64, 96), 3, use_batch_norm=True, all_projections=False)
    model = build_detectnet(config)
    names = {layer.name for layer in model.layers}
    assert "block_4a_conv_1" in names and "block_4a_bn_shortcut" in names
    assert tuple(model.outputs[0].shape[1:]) == (3, 4, 6)  # stride 16
    inputs = keras.Input((64, 96, 3))
    paper = keras.Model(inputs, build_backbone(f"resnet{layers}", inputs, all_projections=False)["P5"])
    width = paper.output.shape[-1]
    assert model.count_params() == expected == paper.count_params() + width * 3 + 3 + width * 12 + 12


def test_resnet_with_use_pooling_strides_stage_4() -> None:
    from libtlt.archs.detectnet_v2.detectnet_v2_head import DetectNetConfig, build_detectnet

    spec = load(default_text(**{"num_layers: 18": "num_layers: 10", "all_projections: true": "all_projections: true\n  use_pooling: true"}))
    assert dn.model_stride(spec) == 32 and dn.metadata(spec, CLASSES)["stride"] == 32
    assert dn.make_label_encoder(spec).grid_h == 9  # ceil(272 / 32)
    model = build_detectnet(DetectNetConfig("resnet10", (3, 64, 96), 3, use_pooling=True))
    assert "pool1" in {layer.name for layer in model.layers}
    assert tuple(model.outputs[0].shape[1:]) == (3, 2, 3)


# --------------------------------------------------------------------------------------------- loss

def test_weight_normalization_reference_values() -> None:
    costs = [ClassCost("a", class_weight=1, initial_weights=(4, 1)), ClassCost("b", class_weight=3,
                                                                                initial_weights=(4, 1))]
    cw, ow = normalized_weights(costs)
    np.testing.assert_allclose(cw, [0.25, 0.75])
    np.testing.assert_allclose(ow, [[0.8, 0.2], [0.8, 0.2]])


def test_loss_matches_hand_computation() -> None:
    # 2 classes, one image, a 1x2 grid. class a: weight 1, fg 0.25, objectives 4/1; class b: 3, fg 0.5, 1/1.
    costs = [ClassCost("a", 1.0, 0.25, (4.0, 1.0)), ClassCost("b", 3.0, 0.5, (1.0, 1.0))]
    loss = DetectNetLoss(costs)
    cov_t = np.array([[[[1.0, 0.0]], [[0.0, 0.0]]]], np.float32)
    cov_p = np.array([[[[0.8, 0.1]], [[0.5, 0.2]]]], np.float32)
    bbox_p = np.zeros((1, 8, 1, 2), np.float32)
    bbox_t = np.zeros((1, 10, 1, 2), np.float32)
    bbox_t[0, 0:4, 0, 0] = [1.0, 2.0, 0.5, 0.5]  # class a L T R B at cell 0 (|error| sum 4)
    bbox_t[0, 8, 0, 0] = 0.5  # class a cov_norm at cell 0
    bbox_t[0, 4:8, 0, 1] = [1.0, 1.0, 1.0, 1.0]  # class b at cell 1 (sum 4), cov_norm 0.25
    bbox_t[0, 9, 0, 1] = 0.25
    ln = np.log
    cov_a = (0.25 * -ln(0.8) + 0.75 * -ln(0.9)) / 2
    cov_b = (0.5 * -ln(0.5) + 0.5 * -ln(0.8)) / 2
    bbox_a = 0.5 * 4.0 / 2
    bbox_b = 0.25 * 4.0 / 2
    expected_cov = 0.25 * 0.8 * cov_a + 0.75 * 0.5 * cov_b
    expected_bbox = 0.25 * 0.2 * bbox_a + 0.75 * 0.5 * bbox_b
    got_cov = float(np.asarray(loss.coverage_loss(cov_t, cov_p))[0])
    got_bbox = float(np.asarray(loss.bbox_loss(bbox_t, bbox_p))[0])
    assert got_cov == pytest.approx(expected_cov, rel=1e-5)
    assert got_bbox == pytest.approx(expected_bbox, rel=1e-5)
    ref_cov, ref_bbox = class_costs(cov_t, cov_p, bbox_t, bbox_p, [0.25, 0.5])
    np.testing.assert_allclose(ref_cov, [cov_a, cov_b], rtol=1e-6)
    np.testing.assert_allclose(ref_bbox, [bbox_a, bbox_b], rtol=1e-6)


def test_autoweighting_update() -> None:
    costs = [ClassCost("a", 1.0, 0.5, (1.0, 1.0), (1.0, 10.0))]
    loss = DetectNetLoss(costs, autoweighting=True, min_objective_weight=0.0001, max_objective_weight=0.9999)
    loss.epoch_costs.assign(np.array([[2.0, 1.0]], np.float32))
    new = loss.update_weights()
    # w = target / cost = (0.5, 10) → normalized (0.5/10.5, 10/10.5)
    np.testing.assert_allclose(new, [[0.5 / 10.5, 10 / 10.5]], rtol=1e-6)
    assert np.asarray(loss.epoch_costs).sum() == 0.0


# --------------------------------------------------------------------------------------------- data

@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tlt_dataset_convert.convert import convert

    root = tmp_path_factory.mktemp("dn_data")
    generate_detection_dataset(root, num_images=10, seed=5)
    (root / "convert.txt").write_text(kitti_convert_spec(root, val_split=30, num_shards=1), encoding="utf-8")
    (root / "tfrecords").mkdir()
    convert(root / "convert.txt", str(root / "tfrecords" / "kitti"))
    return root


def kitti_boxes(root: Path, frame_id: str) -> tuple[np.ndarray, np.ndarray]:
    boxes, ids = [], []
    for line in (root / "labels" / f"{Path(frame_id).name}.txt").read_text().splitlines():
        fields = line.split()
        boxes.append([float(v) for v in fields[4:8]])
        ids.append(CLASSES.index(fields[0].lower()))
    return np.array(boxes).reshape(-1, 4), np.array(ids)


NO_AUGMENT = {"hflip_probability: 0.5": "hflip_probability: 0.0", "translate_max_x: 8.0": "translate_max_x: 0.0",
              "translate_max_y: 8.0": "translate_max_y: 0.0", "hue_rotation_max: 25.0": "hue_rotation_max: 0.0",
              "saturation_shift_max: 0.2": "saturation_shift_max: 0.0",
              "contrast_scale_max: 0.1": "contrast_scale_max: 0.0"}


def test_eval_dataset_reads_images_and_ground_truth(dataset: Path) -> None:
    from PIL import Image

    spec = load(default_text(dataset))
    batches = list(dn.eval_dataset(spec, batch_size=2))
    truths = [t for _, batch in batches for t in batch]
    assert len(truths) == 3  # 30 % of 10 frames in fold 0
    images, first = batches[0]
    assert images.shape == (2, 3, 272, 480) and images.dtype == np.float32
    pixels = np.asarray(Image.open(dataset / "images" / f"{Path(first[0].frame_id).name}.png").convert("RGB"))
    np.testing.assert_allclose(images[0], pixels.transpose(2, 0, 1) / 255.0, atol=1e-6)
    for truth in truths:
        boxes, ids = kitti_boxes(dataset, truth.frame_id)
        np.testing.assert_allclose(truth.boxes, boxes, atol=1e-4)
        np.testing.assert_array_equal(truth.class_ids, ids)
    assert len(list(dn.eval_dataset(spec, use_training_set=True, batch_size=4))) == 2  # 7 frames


def test_training_targets_match_the_rasterizer(dataset: Path) -> None:
    spec = load(default_text(dataset, **NO_AUGMENT))
    arch = dn.DetectNetV2Architecture()
    data = arch.training_data(spec, batch_size=7, seed=1)
    assert data.num_samples == 7 and data.steps_per_epoch == 1 and data.classes == CLASSES
    assert data.files["labels.txt"] == "car\npedestrian\ncyclist\n"
    images, targets = next(iter(data.train))
    assert images.shape == (7, 3, 272, 480)
    cov, bbox = targets["output_cov"].numpy(), targets["output_bbox"].numpy()
    assert cov.shape == (7, 3, 17, 30) and bbox.shape == (7, 15, 17, 30)
    # Identify each image by its pixels, then compare with the rasterized KITTI labels.
    train, _ = dn.split_frames(spec, CLASSES)
    configs = [TargetClassConfig(0.5, 0.5, 0.4, 0.4, 1.0)] * 3
    matched = 0
    for frame in train:
        from PIL import Image

        pixels = np.asarray(Image.open(frame.image_path).convert("RGB")).transpose(2, 0, 1) / 255.0
        k = int(np.argmin([np.abs(images[i].numpy() - pixels).mean() for i in range(7)]))
        boxes, ids = kitti_boxes(dataset, frame.frame_id)
        boxes = np.clip(boxes, 0.0, [480, 272, 480, 272])  # the pipeline clips boxes to the canvas
        expected = rasterize(boxes, ids, num_classes=3, grid_h=17, grid_w=30, class_configs=configs,
                             deadzone_radius=0.67)
        np.testing.assert_allclose(cov[k], expected.cov, atol=1e-6)
        np.testing.assert_allclose(bbox[k, :12], expected.bbox, atol=1e-5)
        np.testing.assert_allclose(bbox[k, 12:], expected.cov_norm, atol=1e-6)
        matched += 1
    assert matched == 7


def test_hflip_mirrors_boxes(dataset: Path) -> None:
    from libtlt.archs.detectnet_v2.detectnet_v2_data import augmentation, frames_dataset, preprocessing

    spec = load(default_text(dataset, **{**NO_AUGMENT, "hflip_probability: 0.0": "hflip_probability: 1.0"}))
    train, _ = dn.split_frames(spec, CLASSES)
    plain = next(iter(frames_dataset(train[:1], preprocessing(spec), None)))
    flipped = next(iter(frames_dataset(train[:1], preprocessing(spec), augmentation(spec))))
    keep = plain[2].numpy() >= 0
    b, f = plain[1].numpy()[keep], flipped[1].numpy()[keep]
    np.testing.assert_allclose(f[:, [0, 2]], 480 - b[:, [2, 0]], atol=1e-3)
    np.testing.assert_allclose(f[:, [1, 3]], b[:, [1, 3]], atol=1e-3)
    np.testing.assert_allclose(flipped[0].numpy(), plain[0].numpy()[:, :, ::-1], atol=1e-5)


def test_augmented_stream_is_reproducible_from_the_seed(dataset: Path) -> None:
    """Same random_seed → the same frames, augmented the same way (the parallel map never decides)."""
    from libtlt.archs.detectnet_v2.detectnet_v2_data import augmentation, frames_dataset, preprocessing

    spec = load(default_text(dataset))  # flips, translation, colour: all random
    train, _ = dn.split_frames(spec, CLASSES)

    def first(seed: int, count: int = 6) -> list[np.ndarray]:
        stream = frames_dataset(train, preprocessing(spec), augmentation(spec), shuffle=True, seed=seed, repeat=True)
        return [np.concatenate([element[0].numpy().ravel(), element[1].numpy().ravel()])
                for element in stream.take(count)]

    a, b, c = first(3), first(3), first(4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(x.shape != z.shape or not np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_postprocess_of_encoded_targets_recovers_the_boxes(dataset: Path) -> None:
    spec = load(default_text(dataset))
    encoder = dn.make_label_encoder(spec)
    evaluator = DetectionEvaluator.from_spec(spec.message.evaluation_config, CLASSES)
    for _, truths in dn.eval_dataset(spec, batch_size=4):
        for truth in truths:
            cov, bbox = encoder.encode(truth.boxes, truth.class_ids)
            det = dn.postprocess(spec, cov[None], bbox[None, :12], [(480, 272)])[0]
            assert set(det.class_names) <= set(CLASSES)
            evaluator.add_image(det.boxes, det.confidences, det.class_ids, truth.boxes, truth.class_ids)
    assert evaluator.result().mean_average_precision > 0.95
