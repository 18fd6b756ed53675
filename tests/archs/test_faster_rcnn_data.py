"""FasterRCNN's input side (libtlt.archs.faster_rcnn.data): classes and labels.txt, the input settings and their
preprocessing, the training batches with RPN targets in TAO's layout (NHWC), the max_objects_num_per_image policy,
reproducibility, and the evaluation / calibration data. A few generated 256x160 KITTI frames, converted to records."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from libtlt.archs.faster_rcnn import data as D  # noqa: E402
from libtlt.archs.faster_rcnn import rpn_targets  # noqa: E402
from libtlt.archs.faster_rcnn.validation import validate  # noqa: E402
from libtlt.errors import SpecError  # noqa: E402
from libtlt.samples import generate_detection_dataset, kitti_convert_spec  # noqa: E402
from libtlt.spec import LoadedSpec, load_spec_text  # noqa: E402
from libtlt.spec.protos import faster_rcnn_pb2 as pb  # noqa: E402

HEIGHT, WIDTH = 160, 256
BATCH = 2
# pedestrian → person and cyclist → bike: sorted network order is bike, car, person.
CLASS_MAP = {"car": "car", "pedestrian": "person", "cyclist": "bike"}
NO_AUGMENT = {"enable_augmentation: True": "enable_augmentation: False"}
GREY = {"image_type: RGB": "image_type: GRAYSCALE", "'bgr'": "'l'", "output_image_channel: 3": "output_image_channel: 1",
        "image_channel_mean { key: 'b' value: 103.939 }": "image_channel_mean { key: 'l' value: 117.0 }",
        "image_channel_mean { key: 'g' value: 116.779 }": "", "image_channel_mean { key: 'r' value: 123.68 }": ""}


def spec_text(root: Path | str = "/data", *, layout: str = "002", **replace: str) -> str:
    """The manual's sample spec (002), shrunk to 3x160x256, with the records of ``root``."""
    image = f"""input_image_config {{
    image_type: RGB
    image_channel_order: 'bgr'
    size_height_width {{ height: {HEIGHT} width: {WIDTH} }}
    image_channel_mean {{ key: 'b' value: 103.939 }}
    image_channel_mean {{ key: 'g' value: 116.779 }}
    image_channel_mean {{ key: 'r' value: 123.68 }}
    image_scaling_factor: 2.0
    max_objects_num_per_image: 10
  }}
  anchor_box_config {{ scale: 32.0 scale: 64.0 scale: 128.0 ratio: 1.0 ratio: 0.5 ratio: 2.0 }}
  roi_mini_batch: 16
  rpn_stride: 16
  roi_pooling_config {{ pool_size: 7 pool_size_2x: False }}"""
    mapping = "\n".join(f"  target_class_mapping {{ key: '{k}' value: '{v}' }}" for k, v in CLASS_MAP.items())
    dataset = f"""data_sources {{ tfrecords_path: "{root}/tfrecords/*" image_directory_path: "{root}" }}
  image_extension: 'png'
{mapping}
  validation_fold: 0"""
    augmentation = f"""preprocessing {{ output_image_width: {WIDTH} output_image_height: {HEIGHT} output_image_channel: 3
                   min_bbox_width: 1.0 min_bbox_height: 1.0 }}
  spatial_augmentation {{ hflip_probability: 0.5 vflip_probability: 0.0 zoom_min: 1.0 zoom_max: 1.0
                         translate_max_x: 8 translate_max_y: 8 }}
  color_augmentation {{ hue_rotation_max: 0.0 saturation_shift_max: 0.0 contrast_scale_max: 0.0
                       contrast_center: 0.5 }}"""
    training = """enable_augmentation: True
  batch_size_per_gpu: 2
  num_epochs: 1
  output_model: "/tmp/frcnn.tlt"
  rpn_min_overlap: 0.3
  rpn_max_overlap: 0.7
  rpn_mini_batch: 64
  optimizer { sgd { lr: 0.02 momentum: 0.9 decay: 0.0 nesterov: False } }
  learning_rate { soft_start { base_lr: 0.02 start_lr: 0.002 soft_start: 0.1 annealing_points: 0.8
                               annealing_divider: 10.0 } }"""
    if layout == "002":
        text = (f"random_seed: 42\nmodel_config {{\n  {image}\n  arch: \"resnet:18\"\n}}\n"
                f"dataset_config {{\n  {dataset}\n}}\naugmentation_config {{\n  {augmentation}\n}}\n"
                f"training_config {{\n  {training}\n}}\n")
    else:  # 000: everything but the model inside training_config
        text = (f"random_seed: 42\nnetwork_config {{\n  {image}\n  feature_extractor: \"resnet:18\"\n}}\n"
                f"training_config {{\n  kitti_data_config {{\n  {dataset}\n}}\n"
                f"  data_augmentation {{\n  {augmentation}\n}}\n  {training}\n}}\n")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def load(text: str) -> LoadedSpec[pb.Experiment]:
    spec = load_spec_text(text, pb.Experiment, name="frcnn.txt")
    validate(spec)
    return spec


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tlt_dataset_convert.convert import convert

    root = tmp_path_factory.mktemp("frcnn_data")
    generate_detection_dataset(root, num_images=7, width=WIDTH, height=HEIGHT, seed=4, objects_per_image=(2, 6))
    (root / "convert.txt").write_text(kitti_convert_spec(root, val_split=30, num_shards=1), encoding="utf-8")
    (root / "tfrecords").mkdir()
    convert(root / "convert.txt", str(root / "tfrecords" / "kitti"))
    return root


def label_boxes(root: Path) -> dict[str, np.ndarray]:
    """Each frame's KITTI boxes (the classes of CLASS_MAP), by frame id."""
    found = {}
    for path in (root / "labels").glob("*.txt"):
        rows = [[float(v) for v in line.split()[4:8]] for line in path.read_text().splitlines()
                if line.split()[0].lower() in CLASS_MAP]
        found[path.stem] = np.array(rows, np.float32).reshape(-1, 4)
    return found


def take(ds: Any, count: int) -> list[Any]:
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(count)]


def decode_plus_one(deltas: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Inverse of the +1-convention encoding: w = x2 − x1 + 1, cx = x1 + w/2."""
    wa, ha = anchors[:, 2] - anchors[:, 0] + 1, anchors[:, 3] - anchors[:, 1] + 1
    cxa, cya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
    w, h = np.exp(deltas[:, 2]) * wa, np.exp(deltas[:, 3]) * ha
    x1, y1 = deltas[:, 0] * wa + cxa - w / 2, deltas[:, 1] * ha + cya - h / 2
    return np.stack([x1, y1, x1 + w - 1, y1 + h - 1], axis=1)


# ------------------------------------------------------------------------------------ classes, input


def test_classes_are_sorted_with_background_last_in_labels_txt() -> None:
    for layout in ("002", "000"):
        spec = load(spec_text(layout=layout))
        assert D.class_names(spec) == ["bike", "car", "person"]
        assert D.labels_txt(spec) == ["bike", "car", "person", "background"]
    with pytest.raises(SpecError, match="background") as err:
        D.class_names(load(spec_text(**{"value: 'bike'": "value: 'background'"})))
    assert "frcnn.txt:" in str(err.value) and "target_class_mapping" in str(err.value)


def test_input_config_reads_the_image_settings() -> None:
    config = D.input_config(load(spec_text()))
    assert config.shape == (3, HEIGHT, WIDTH) and config.channel_order == "bgr"
    assert config.means == (103.939, 116.779, 123.68) and config.scaling_factor == 2.0 and config.max_objects == 10
    assert config.feature_hw == (10, 16)
    rgb = D.input_config(load(spec_text(**{"'bgr'": "'rgb'"})))
    assert rgb.channel_order == "rgb" and rgb.means == (123.68, 116.779, 103.939)
    grey = D.input_config(load(spec_text(**GREY)))
    assert grey.shape == (1, HEIGHT, WIDTH) and grey.channel_order == "l" and grey.means == (117.0,)
    no_means = D.input_config(load(spec_text(**{"image_channel_mean { key: 'g' value: 116.779 }": "",
                                                "image_channel_mean { key: 'r' value: 123.68 }": "",
                                                "image_channel_mean { key: 'b' value: 103.939 }": ""})))
    assert no_means.means == (103.939, 116.779, 123.68)


def test_network_feature_map_size_is_the_one_the_targets_use() -> None:
    from libtlt.archs.faster_rcnn.network import FasterRcnnNetworkConfig

    for height, width in ((160, 256), (170, 250), (384, 1248)):
        config = D.InputConfig(3, "bgr", height, width, (0.0, 0.0, 0.0), 1.0, 10)
        assert config.feature_hw == FasterRcnnNetworkConfig("resnet18", (3, height, width), 2).feature_hw


def test_dynamic_input_size_reads_size_min() -> None:
    text = spec_text(**{f"size_height_width {{ height: {HEIGHT} width: {WIDTH} }}": "size_min { min: 200 }",
                        "batch_size_per_gpu: 2": "batch_size_per_gpu: 1"})
    config = D.input_config(load(text))
    assert config.shape == (3, -1, -1) and config.min_side == 200 and config.dynamic
    assert config.resized_size(WIDTH, HEIGHT) == (320, 200)  # 256·1.25
    assert D.input_config(load(spec_text())).resized_size(100, 50) == (WIDTH, HEIGHT)  # a fixed size stays


def test_normalize_subtracts_means_in_channel_order_and_divides_by_the_scaling_factor() -> None:
    rgb_pixel = np.array([10, 20, 30], np.float32)[:, None, None] / 255.0  # CHW, R G B
    bgr = D.InputConfig(3, "bgr", 1, 1, (100.0, 110.0, 120.0), 2.0, 1).normalize(rgb_pixel)
    np.testing.assert_allclose(bgr[:, 0, 0], [(30 - 100) / 2, (20 - 110) / 2, (10 - 120) / 2], rtol=1e-6)
    rgb = D.InputConfig(3, "rgb", 1, 1, (1.0, 2.0, 3.0), 1.0, 1).normalize(rgb_pixel)
    np.testing.assert_allclose(rgb[:, 0, 0], [9, 18, 27], rtol=1e-6)
    tensor = D.InputConfig(3, "bgr", 1, 1, (100.0, 110.0, 120.0), 2.0, 1).normalize(tf.constant(rgb_pixel))
    np.testing.assert_allclose(tensor.numpy(), bgr, rtol=1e-6)
    hwc = np.array([[[10, 20, 30]]], np.uint8)  # an image reader's RGB pixel
    preprocessed = D.InputConfig(3, "bgr", 1, 1, (100.0, 110.0, 120.0), 2.0, 1).preprocess(hwc)
    assert preprocessed.dtype == np.float32 and preprocessed.shape == (3, 1, 1)
    np.testing.assert_allclose(preprocessed, bgr, rtol=1e-6)
    grey = D.InputConfig(1, "l", 1, 1, (100.0,), 4.0, 1).preprocess(np.array([[60]], np.uint8))
    np.testing.assert_allclose(grey, [[[-10.0]]])


# -------------------------------------------------------------------------------------------- training


def test_training_batches_have_the_documented_shapes_and_dtypes(root: Path) -> None:
    ds, steps, samples = D.training_dataset(load(spec_text(root)), batch_size=BATCH, seed=0)
    assert samples >= BATCH and steps == samples // BATCH
    inputs, targets = take(ds, 1)[0]
    a = 9
    assert inputs["input_image"].shape == (BATCH, 3, HEIGHT, WIDTH) and inputs["input_image"].dtype == np.float32
    assert inputs["gt_boxes"].shape == (BATCH, 10, 4) and inputs["gt_boxes"].dtype == np.float32
    assert inputs["gt_classes"].shape == (BATCH, 10) and inputs["gt_classes"].dtype == np.int32
    assert targets["rpn_out_class"].shape == (BATCH, 10, 16, 2 * a)
    assert targets["rpn_out_regress"].shape == (BATCH, 10, 16, 8 * a)
    assert {t.dtype for t in targets.values()} == {np.dtype(np.float32)}
    spec = tf.data.DatasetSpec.from_value(ds).element_spec
    assert spec[0]["input_image"].shape.as_list() == [BATCH, 3, HEIGHT, WIDTH]  # static for Keras
    grey, _, _ = D.training_dataset(load(spec_text(root, **GREY)), batch_size=BATCH, seed=0)
    assert take(grey, 1)[0][0]["input_image"].shape == (BATCH, 1, HEIGHT, WIDTH)


def test_rpn_targets_follow_the_ground_truth_in_taos_layout(root: Path) -> None:
    spec = load(spec_text(root))
    config = D.rpn_target_config(spec)
    anchors = config.anchors()
    a = config.num_anchors
    ds, _, _ = D.training_dataset(spec, batch_size=BATCH, seed=3)
    positives = 0
    for inputs, targets in take(ds, 2):
        for b in range(BATCH):
            cls = targets["rpn_out_class"][b].reshape(-1, 2 * a)
            regress = targets["rpn_out_regress"][b].reshape(-1, 8 * a)
            valid, label = cls[:, :a].reshape(-1), cls[:, a:].reshape(-1)  # (H, W, A) order, as the anchors
            weights, deltas = regress[:, :4 * a].reshape(-1, 4), regress[:, 4 * a:].reshape(-1, 4)
            assert set(np.unique(valid)) <= {0.0, 1.0} and set(np.unique(label)) <= {0.0, 1.0}
            assert np.all(valid[label == 1] == 1)  # a positive is sampled
            assert 0 < valid.sum() <= config.mini_batch and label.sum() <= config.mini_batch // 2
            np.testing.assert_array_equal(weights, np.repeat(label[:, None], 4, axis=1))
            assert not deltas[label == 0].any()
            # sampled labels agree with the assignment before sampling
            boxes = inputs["gt_boxes"][b]
            assigned, _ = rpn_targets.assign(anchors, boxes, config.image_hw, min_overlap=config.min_overlap,
                                             max_overlap=config.max_overlap)
            assert np.all(assigned[label == 1] == 1) and np.all(assigned[(valid == 1) & (label == 0)] == 0)
            # each positive's deltas decode (+1 convention) back to one of the image's GT boxes
            real = boxes[np.any(boxes != 0, axis=1)]
            decoded = decode_plus_one(deltas[label == 1].astype(np.float64), anchors[label == 1].astype(np.float64))
            distance = np.abs(decoded[:, None, :] - real[None, :, :]).max(-1).min(-1)
            assert np.all(distance < 1e-2)
            positives += int(label.sum())
    assert positives > 0


def test_std_scaling_multiplies_the_rpn_regression_targets(root: Path) -> None:
    """The manual's "scaling factor to multiply by for the RPN regression loss": the same frames and samples, targets
    ×4 (the proposal layer divides the predictions by the same factor); the labels and weights are unchanged."""
    plain = take(D.training_dataset(load(spec_text(root)), batch_size=BATCH, seed=3)[0], 1)[0][1]
    scaled_spec = load(spec_text(root).replace("  rpn_mini_batch: 64", "  rpn_mini_batch: 64\n  std_scaling: 4.0"))
    assert D.rpn_target_config(scaled_spec).std_scaling == 4.0
    scaled = take(D.training_dataset(scaled_spec, batch_size=BATCH, seed=3)[0], 1)[0][1]
    a = D.rpn_target_config(scaled_spec).num_anchors
    np.testing.assert_array_equal(scaled["rpn_out_class"], plain["rpn_out_class"])
    np.testing.assert_array_equal(scaled["rpn_out_regress"][..., :4 * a], plain["rpn_out_regress"][..., :4 * a])
    np.testing.assert_allclose(scaled["rpn_out_regress"][..., 4 * a:], 4.0 * plain["rpn_out_regress"][..., 4 * a:],
                               rtol=1e-6)
    assert np.abs(plain["rpn_out_regress"][..., 4 * a:]).max() > 0


def test_ground_truth_rows_are_padded_and_match_the_labels(root: Path) -> None:
    labels = label_boxes(root)
    ds, _, _ = D.training_dataset(load(spec_text(root, **NO_AUGMENT)), batch_size=BATCH, seed=0)
    for inputs, _ in take(ds, 3):
        for boxes, classes in zip(inputs["gt_boxes"], inputs["gt_classes"], strict=True):
            count = int((classes >= 0).sum())
            assert np.all(classes[:count] >= 0) and np.all(classes[count:] == -1)
            assert classes.max() < 3
            assert not boxes[count:].any() and np.all(np.any(boxes[:count] != 0, axis=1))
            # without augmentation, the boxes are the frame's own label boxes (images already at model size)
            assert any(len(b) == count and np.allclose(b, boxes[:count]) for b in labels.values())


def test_too_many_objects_fail_when_strict_and_are_cut_with_one_warning_otherwise(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = load(spec_text(root, **{"max_objects_num_per_image: 10": "max_objects_num_per_image: 2"}))
    with pytest.raises(SpecError, match=r"has \d+ objects.*max_objects_num_per_image \(2") as err:
        D.training_dataset(spec, batch_size=BATCH, seed=0, strict=True)
    assert err.value.field == "model_config.input_image_config.max_objects_num_per_image"
    assert str(root / "images") in err.value.message and str(err.value.location).startswith("frcnn.txt:")
    with caplog.at_level(logging.WARNING, logger="libtlt.archs.faster_rcnn.data"):
        ds, _, _ = D.training_dataset(spec, batch_size=BATCH, seed=0)
    warnings = [r for r in caplog.records if "max_objects_num_per_image" in r.getMessage()]
    assert len(warnings) == 1 and "first 2 boxes" in warnings[0].getMessage()
    inputs, _ = take(ds, 1)[0]
    assert inputs["gt_boxes"].shape == (BATCH, 2, 4) and np.all(inputs["gt_classes"] >= 0)


def test_same_seed_same_batches_other_seed_other_batches(root: Path) -> None:
    spec = load(spec_text(root))

    def first(seed: int) -> list[Any]:
        return take(D.training_dataset(spec, batch_size=BATCH, seed=seed)[0], 2)

    one, again, other = first(1), first(1), first(2)
    for x, y in zip(tf.nest.flatten(one), tf.nest.flatten(again), strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(tf.nest.flatten(one), tf.nest.flatten(other), strict=True))


# ------------------------------------------------------------------------------------ evaluation, INT8


def test_evaluation_frames_hold_preprocessed_images_and_their_truth(root: Path) -> None:
    from PIL import Image

    spec = load(spec_text(root))
    config = D.input_config(spec)
    labels = label_boxes(root)
    batches = list(D.evaluation_frames(spec, batch_size=2))
    truths = [t for _, ts in batches for t in ts]
    assert 0 < len(truths) < len(labels)  # the validation fold only
    images, first = batches[0]
    assert images.shape[1:] == (3, HEIGHT, WIDTH) and images.dtype == np.float32
    truth = first[0]
    name = Path(truth.frame_id).name
    np.testing.assert_allclose(truth.boxes, labels[name], atol=1e-4)
    assert truth.class_ids.dtype == np.int64 and set(truth.class_ids.tolist()) <= {0, 1, 2}
    # a known pixel: RGB from the file → BGR − means, / image_scaling_factor
    r, g, b = np.asarray(Image.open(root / "images" / f"{name}.png").convert("RGB"), np.float32)[40, 100]
    expected = [(b - 103.939) / 2.0, (g - 116.779) / 2.0, (r - 123.68) / 2.0]
    np.testing.assert_allclose(images[0][:, 40, 100], expected, atol=1e-3)
    assert config.channel_order == "bgr"
    everything = sum(len(ts) for _, ts in D.evaluation_frames(spec, use_training_set=True, batch_size=4))
    assert everything == len(labels)
    calibration = D.calibration_batches(spec)
    assert calibration.batch_size == 2 and calibration.batch_size_field == "training_config.batch_size_per_gpu"
    assert next(iter(calibration.batches)).shape == (2, 3, HEIGHT, WIDTH)


def test_both_layouts_read_the_records_and_point_errors_at_the_section_written() -> None:
    from libtlt.errors import DataError

    for layout in ("002", "000"):
        text = spec_text("/nowhere", layout=layout)
        line = next(i for i, row in enumerate(text.splitlines(), 1) if "tfrecords_path" in row)
        with pytest.raises(DataError, match="no TFRecord file matches") as err:
            D.training_dataset(load(text), batch_size=BATCH)
        assert err.value.location == f"frcnn.txt:{line}:18"
