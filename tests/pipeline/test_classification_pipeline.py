"""libtlt.data.classification: class maps, folder scans, preprocessing, the tf.data pipeline, spec/metadata configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from libtlt.archs.classification.classification_inputs import augment_settings, input_config_from_spec
from libtlt.data.classification import (
    BRIGHTNESS_DELTA,
    CAFFE_MEAN_BGR,
    ClassMap,
    InputConfig,
    check_image,
    input_config_from_metadata,
    load_images_for_inference,
    make_dataset,
    preprocess,
    scan_folder,
)
from libtlt.errors import DataError, ModelFileError
from libtlt.samples import generate_classification_dataset
from libtlt.spec.experiments import load_experiment

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "tests" / "data" / "specs" / "classification"


def solid(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline") / "data"
    generate_classification_dataset(root, images_per_split={"train": 8, "val": 4})
    return root


# --------------------------------------------------------------------------------------- class map


def test_class_map_round_trip(tmp_path: Path) -> None:
    cmap = ClassMap(("cat", "dog", "eel"))
    assert cmap.index("dog") == 1 and len(cmap) == 3
    assert cmap.to_json() == {"cat": 0, "dog": 1, "eel": 2}
    cmap.write(tmp_path / "classmap.json")
    assert json.loads((tmp_path / "classmap.json").read_text()) == {"cat": 0, "dog": 1, "eel": 2}
    assert ClassMap.from_file(tmp_path / "classmap.json") == cmap
    assert [p.name for p in tmp_path.iterdir()] == ["classmap.json"]  # no temporary left behind
    # Order comes from the indices, not from the JSON key order.
    (tmp_path / "shuffled.json").write_text('{"eel": 2, "cat": 0, "dog": 1}')
    assert ClassMap.from_file(tmp_path / "shuffled.json") == cmap
    with pytest.raises(DataError, match="not in the class map"):
        cmap.index("fox")


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 0,', "not valid JSON"),
    ('["a", "b"]', "expected a JSON object"),
    ("{}", "expected a JSON object"),
    ('{"a": 0, "b": 2}', "indices must be 0..1"),
    ('{"a": 0, "b": 0}', "same index 0"),
    ('{"a": "0"}', "must be an integer"),
    ('{"a": true}', "must be an integer"),
])
def test_class_map_file_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "classmap.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        ClassMap.from_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(DataError, match="not found"):
        ClassMap.from_file(tmp_path / "absent.json")


def test_class_map_rejects_duplicates_and_empty() -> None:
    with pytest.raises(DataError, match="unique"):
        ClassMap(("a", "a"))
    with pytest.raises(DataError, match="at least one"):
        ClassMap(())


# ------------------------------------------------------------------------------------- folder scan


def test_scan_orders_classes_like_keras_and_labels_every_image(sample: Path) -> None:
    index = scan_folder(sample / "train")
    assert index.class_map.names == ("circle", "star", "triangle")
    assert len(index) == 24 and index.counts() == {"circle": 8, "star": 8, "triangle": 8}
    for path, label in zip(index.paths, index.labels, strict=True):
        assert path.parent.name == index.class_map.names[label]
    assert index.skipped == ()


def test_scan_with_a_class_map_uses_its_indices(sample: Path) -> None:
    cmap = ClassMap(("triangle", "star", "circle", "square"))  # the model knows a class the folder lacks
    index = scan_folder(sample / "val", cmap)
    assert index.class_map == cmap
    assert {p.parent.name: label for p, label in zip(index.paths, index.labels, strict=True)} == {
        "triangle": 0, "star": 1, "circle": 2}
    assert index.counts()["square"] == 0
    with pytest.raises(DataError, match="'star' are not classes of the model"):
        scan_folder(sample / "val", ClassMap(("circle", "triangle")))


def test_scan_finds_nested_images_and_ignores_other_files(tmp_path: Path) -> None:
    solid(tmp_path / "a" / "x.png", (1, 2, 3))
    solid(tmp_path / "a" / "deeper" / "y.JPG", (1, 2, 3))
    (tmp_path / "a" / "readme.txt").write_text("not an image")
    solid(tmp_path / "b" / "z.jpeg", (1, 2, 3))
    solid(tmp_path / "stray.png", (1, 2, 3))  # not in a class folder: ignored
    (tmp_path / ".hidden").mkdir()
    index = scan_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in index.paths] == ["a/x.png", "a/deeper/y.JPG", "b/z.jpeg"]
    assert index.labels == (0, 0, 1)


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset directory not found"):
        scan_folder(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="found a file"):
        scan_folder(tmp_path / "file")
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        scan_folder(tmp_path / "root")
    solid(tmp_path / "root" / "a" / "1.png", (0, 0, 0))
    (tmp_path / "root" / "b").mkdir()
    with pytest.raises(DataError, match="empty class folder") as info:
        scan_folder(tmp_path / "root")
    assert str(tmp_path / "root" / "b") in str(info.value)


def corrupt_images(folder: Path, good: Path) -> list[Path]:
    data = good.read_bytes()
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    text = folder / "text.jpg"
    text.write_text("hello")
    png = Image.new("RGB", (20, 20), (9, 9, 9))
    png.save(folder / "tmp.png")
    raw = bytearray((folder / "tmp.png").read_bytes())
    (folder / "tmp.png").unlink()
    raw[-20] ^= 0xFF  # flip a byte inside the image data: the chunk CRC no longer matches
    bad_crc = folder / "bad_crc.png"
    bad_crc.write_bytes(bytes(raw))
    return [truncated, garbage, text, bad_crc]


def test_corrupt_images_are_skipped_or_raise_when_strict(sample: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "train"
    shutil.copytree(sample / "train", root)
    bad = corrupt_images(root / "star", root / "star" / "000000.jpg")
    index = scan_folder(root)
    assert len(index) == 24
    assert sorted(p for p, _ in index.skipped) == sorted(bad)
    assert all(check_image(p) is not None for p in bad)
    assert check_image(root / "star" / "000000.jpg") is None
    with pytest.raises(DataError) as info:
        scan_folder(root, strict=True)
    assert any(str(p) in str(info.value) for p in bad)
    # Every decodable image passes the check: the pipeline then never fails half-way.
    for _ in make_dataset(index, InputConfig(3, 16, 16), batch_size=7, training=False):
        pass


def test_a_jpeg_with_trailing_data_is_not_skipped(tmp_path: Path) -> None:
    path = solid(tmp_path / "a" / "x.jpg", (200, 10, 10))
    path.write_bytes(path.read_bytes() + b"\x00" * 10000)  # EOI marker far from the end
    assert check_image(path) is None


# ----------------------------------------------------------------------------------- preprocessing


def test_preprocess_modes_known_values() -> None:
    rgb = np.array([[[[10, 20, 30]]]], dtype=np.uint8)  # N=1, H=W=1, RGB
    caffe = preprocess(rgb, "caffe")
    assert caffe.shape == (1, 3, 1, 1) and caffe.dtype == np.float32
    np.testing.assert_allclose(caffe[0, :, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(preprocess(rgb, "caffe", image_mean=[1, 2, 3])[0, :, 0, 0], [29, 18, 7])
    torch = preprocess(rgb, "torch")[0, :, 0, 0]
    expected = (np.array([10, 20, 30]) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(torch, expected, rtol=1e-5)
    np.testing.assert_allclose(preprocess(rgb, "tf")[0, :, 0, 0], np.array([10, 20, 30]) / 127.5 - 1, rtol=1e-6)


def test_preprocess_grayscale_and_single_images() -> None:
    gray = np.full((2, 3, 5, 1), 117, dtype=np.uint8)
    out = preprocess(gray, "caffe")
    assert out.shape == (2, 1, 3, 5)
    np.testing.assert_allclose(out, 117 - 117.3786, atol=1e-3)  # luma of the BGR means
    single = preprocess(np.zeros((4, 6, 3), np.float32), "tf")
    assert single.shape == (3, 4, 6) and np.all(single == -1)
    with pytest.raises(ValueError, match="preprocess_mode"):
        preprocess(gray, "keras")
    with pytest.raises(ValueError, match="image_mean"):
        preprocess(np.zeros((1, 2, 2, 3)), "caffe", image_mean=[1.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=3, max_size=3), st.sampled_from(["caffe", "torch", "tf"]))
def test_preprocess_is_an_invertible_per_channel_affine_map(rgb: list[int], mode: str) -> None:
    image = np.array(rgb, dtype=np.uint8).reshape(1, 1, 1, 3)
    out = preprocess(image, mode)[0, :, 0, 0].astype(np.float64)
    if mode == "caffe":
        back = (out + CAFFE_MEAN_BGR)[::-1]
    elif mode == "torch":
        back = (out * [0.229, 0.224, 0.225] + [0.485, 0.456, 0.406]) * 255
    else:
        back = (out + 1) * 127.5
    np.testing.assert_allclose(back, rgb, atol=1e-3)


# ------------------------------------------------------------------------------------- tf pipeline


def test_evaluation_batches_preprocess_exact_colours_in_index_order(tmp_path: Path) -> None:
    colours = {"a": (10, 20, 30), "b": (200, 100, 50)}
    for name, rgb in colours.items():
        for i in range(3):
            solid(tmp_path / name / f"{i}.png", rgb, size=(40 + i, 30))
    index = scan_folder(tmp_path)
    config = InputConfig(3, 16, 24, preprocess_mode="caffe")
    batches = list(make_dataset(index, config, batch_size=4, training=False))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 16, 24), (2, 3, 16, 24)]
    images = np.concatenate([x.numpy() for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_array_equal(labels, np.eye(2)[[0, 0, 0, 1, 1, 1]])
    for image, label in zip(images, labels.argmax(axis=1), strict=True):
        r, g, b = colours["ab"[label]]
        expected = np.array([b - 103.939, g - 116.779, r - 123.68], np.float32)
        np.testing.assert_allclose(image, np.broadcast_to(expected[:, None, None], image.shape), atol=1e-3)
    # Inference sees exactly what evaluation sees.
    np.testing.assert_array_equal(load_images_for_inference(index.paths, config), images)


def test_pipeline_matches_numpy_preprocess_after_resize(sample: Path) -> None:
    import tensorflow as tf

    index = scan_folder(sample / "val")
    for mode in ("caffe", "torch", "tf"):
        config = InputConfig(3, 24, 24, preprocess_mode=mode, interpolation="bicubic")
        x, _ = next(iter(make_dataset(index, config, batch_size=3, training=False)))
        raw = np.stack([tf.io.decode_jpeg(tf.io.read_file(str(p)), channels=3).numpy() for p in index.paths[:3]])
        resized = tf.clip_by_value(tf.image.resize(raw.astype(np.float32), [24, 24], "bicubic", antialias=True),
                                   0, 255).numpy()
        np.testing.assert_allclose(x.numpy(), preprocess(resized, mode), atol=1e-4)


def test_grayscale_pipeline(tmp_path: Path) -> None:
    solid(tmp_path / "a" / "0.png", (100, 100, 100))
    solid(tmp_path / "b" / "0.jpg", (50, 50, 50))
    index = scan_folder(tmp_path)
    x, y = next(iter(make_dataset(index, InputConfig(1, 16, 16, preprocess_mode="tf"), batch_size=2,
                                  training=False)))
    assert x.shape == (2, 1, 16, 16) and y.shape == (2, 2)
    np.testing.assert_allclose(x.numpy()[0], 100 / 127.5 - 1, atol=1e-4)


def test_center_crop_cuts_the_border(tmp_path: Path) -> None:
    image = np.full((64, 64, 3), 255, np.uint8)
    image[3:-3, 3:-3] = 0  # white 3-pixel frame around black
    path = tmp_path / "a" / "framed.png"
    path.parent.mkdir()
    Image.fromarray(image).save(path)
    index = scan_folder(tmp_path)
    plain = load_images_for_inference(index.paths, InputConfig(3, 32, 32, preprocess_mode="tf"))
    cropped = load_images_for_inference(index.paths, InputConfig(3, 32, 32, preprocess_mode="tf", center_crop=True))
    assert plain[0, :, 0, 0].min() > 0  # the frame survives a plain resize
    np.testing.assert_allclose(cropped, -1.0, atol=1e-3)  # all black after the center crop
    eval_batch = next(iter(make_dataset(index, InputConfig(3, 32, 32, preprocess_mode="tf", center_crop=True),
                                        batch_size=1, training=False)))[0].numpy()
    np.testing.assert_array_equal(eval_batch, cropped)


AUGMENTED = InputConfig(3, 32, 32, random_crop=True, color_augmentation=True, horizontal_flip=True,
                        mixup_alpha=0.2, label_smoothing=0.1)


def collect(ds) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_training_is_reproducible_per_seed_and_changes_every_epoch(sample: Path) -> None:
    index = scan_folder(sample / "train")
    first = make_dataset(index, AUGMENTED, batch_size=8, training=True, seed=3)
    x1, y1 = collect(first)
    x2, y2 = collect(make_dataset(index, AUGMENTED, batch_size=8, training=True, seed=3))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = collect(make_dataset(index, AUGMENTED, batch_size=8, training=True, seed=4))
    assert not np.array_equal(x1, x3)
    x_next_epoch, _ = collect(first)  # iterating again: a new shuffle and new augmentation
    assert not np.array_equal(x1, x_next_epoch)
    assert x1.shape == (24, 3, 32, 32) and x1.dtype == np.float32


def test_label_smoothing_and_mixup_targets(sample: Path) -> None:
    index = scan_folder(sample / "train")
    smooth_only = InputConfig(3, 32, 32, label_smoothing=0.1)
    _, y = collect(make_dataset(index, smooth_only, batch_size=8, training=True))
    np.testing.assert_allclose(np.sort(y, axis=1), np.tile([0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3], (24, 1)), atol=1e-6)
    # Every image appears once per epoch (shuffled, not sampled with replacement).
    assert sorted(y.argmax(axis=1).tolist()) == sorted(index.labels)
    _, mixed = collect(make_dataset(index, AUGMENTED, batch_size=8, training=True))
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
    assert mixed.min() >= 0 and (mixed.max(axis=1) < 0.9 + 0.1 / 3 - 1e-3).any()  # some targets were mixed


def test_augmentation_stays_in_range_and_eval_is_untouched(sample: Path) -> None:
    index = scan_folder(sample / "train")
    jitter = InputConfig(3, 32, 32, preprocess_mode="tf", random_crop=True, color_augmentation=True,
                         horizontal_flip=True)
    x, _ = collect(make_dataset(index, jitter, batch_size=8, training=True))
    assert x.min() >= -1.0 - 1e-5 and x.max() <= 1.0 + 1e-5
    plain, _ = collect(make_dataset(index, AUGMENTED, batch_size=8, training=False))
    np.testing.assert_array_equal(plain, load_images_for_inference(index.paths, AUGMENTED))


def test_drop_remainder_and_repeat(sample: Path) -> None:
    index = scan_folder(sample / "train")
    config = InputConfig(3, 16, 16)
    ds = make_dataset(index, config, batch_size=10, training=True, drop_remainder=True, repeat=True)
    batches = list(ds.take(5))
    assert all(tuple(x.shape) == (10, 3, 16, 16) for x, _ in batches)
    assert len(list(make_dataset(index, config, batch_size=10, training=False, drop_remainder=True))) == 2


def test_unreadable_image_at_inference_names_the_file(tmp_path: Path) -> None:
    good = solid(tmp_path / "good.png", (1, 2, 3))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    config = InputConfig(3, 16, 16)
    with pytest.raises(DataError) as info:
        load_images_for_inference([good, bad], config)
    assert str(bad) in str(info.value)
    with pytest.raises(DataError, match="image not found"):
        load_images_for_inference([tmp_path / "absent.png"], config)
    assert load_images_for_inference([], config).shape == (0, 3, 16, 16)


def test_a_tiny_model_learns_from_the_pipeline(sample: Path) -> None:
    import keras

    index = scan_folder(sample / "train")
    keras.utils.set_random_seed(1)
    inputs = keras.Input((3, 32, 32), name="input_1")
    x = keras.layers.Permute((2, 3, 1))(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    config = InputConfig(3, 32, 32, horizontal_flip=True)
    history = model.fit(make_dataset(index, config, batch_size=8, training=True, seed=0), epochs=4, verbose=0,
                        shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------------------------ configs


def test_input_config_from_the_000_spec() -> None:
    # The prototxt form: unwritten augmentation scalars are proto3 zeros, as in the original toolkit.
    spec = load_experiment("classification", SPECS / "000_7.1_classification.txt")
    evaluation = input_config_from_spec(spec, training=False)
    assert evaluation == InputConfig(3, 224, 224, "caffe", center_crop=False)
    training = input_config_from_spec(spec.message, training=True)
    assert (training.random_crop, training.color_augmentation, training.horizontal_flip) == (False, False, True)
    assert training.mixup_alpha == 0 and training.label_smoothing == 0
    assert not training.center_crop
    assert augment_settings(spec).defaults == "prototxt"


def test_prototxt_form_takes_what_is_written(tmp_path: Path) -> None:
    text = (SPECS / "000_7.1_classification.txt").read_text()
    edited = tmp_path / "spec.txt"
    edited.write_text(text + "augment {\n  enable_random_crop: true\n  enable_center_crop: true\n"
                      "  mixup_alpha: 0.3\n  disable_horizontal_flip: true\n}\n")
    settings = augment_settings(load_experiment("classification", edited))
    assert (settings.random_crop, settings.center_crop, settings.color_augmentation) == (True, True, False)
    assert not settings.horizontal_flip
    assert settings.mixup_alpha == pytest.approx(0.3) and settings.label_smoothing == 0
    assert "random crop on, center crop on, colour augmentation off" in settings.describe()


def test_yaml_form_keeps_the_003_table_defaults(tmp_path: Path) -> None:
    text = (SPECS / "003_classification.yaml").read_text()
    bare = tmp_path / "spec.yaml"
    bare.write_text(text.replace("  enable_color_augmentation: True\n", "").replace("  enable_center_crop: True\n", ""))
    settings = augment_settings(load_experiment("classification", bare))
    assert (settings.random_crop, settings.center_crop, settings.color_augmentation) == (True, True, True)
    assert settings.mixup_alpha == pytest.approx(0.2) and settings.label_smoothing == pytest.approx(0.1)
    assert settings.defaults == "yaml"


def test_input_config_from_the_003_yaml_spec(tmp_path: Path) -> None:
    text = (SPECS / "003_classification.yaml").read_text()
    spec = load_experiment("classification", SPECS / "003_classification.yaml")
    config = input_config_from_spec(spec, training=True)
    assert (config.channels, config.height, config.width, config.preprocess_mode) == (3, 256, 256, "torch")
    edited = tmp_path / "spec.yaml"
    edited.write_text(text.replace("  preprocess_mode: 'torch'\n", "  preprocess_mode: 'caffe'\n"
                                   "  image_mean: [100.0, 110.0, 120.0]\n")
                      .replace("  enable_center_crop: True\n", "  enable_center_crop: False\n"
                               "  disable_horizontal_flip: True\n  mixup_alpha: 0.0\n")
                      .replace("  input_image_depth: 8\n", "  input_image_depth: 8\n"
                               "  resize_interpolation_method: BICUBIC\n")
                      .replace("  qat: False\n", "  qat: False\n  label_smoothing: 0.0\n"))
    spec = load_experiment("classification", edited)
    train = input_config_from_spec(spec, training=True)
    assert train.image_mean == (100.0, 110.0, 120.0) and train.interpolation == "bicubic"
    assert not train.horizontal_flip and train.mixup_alpha == 0 and train.label_smoothing == 0
    assert not input_config_from_spec(spec, training=False).center_crop


def test_input_config_from_model_metadata() -> None:
    meta = {"architecture": "classification", "classes": ["a", "b"], "input_shape": [1, 48, 64],
            "input_layout": "NCHW", "preprocess_mode": "torch", "image_mean": None, "interpolation": "bicubic",
            "spec": 'model_config { arch: "vgg" n_layers: 16 input_image_size: "1,48,64" }'}
    config = input_config_from_metadata(meta)  # saved before center_crop was recorded: no crop, with a warning
    assert config == InputConfig(1, 48, 64, "torch", interpolation="bicubic", center_crop=False)
    assert input_config_from_metadata({**meta, "center_crop": True}).center_crop
    assert not input_config_from_metadata({**meta, "center_crop": False}).center_crop
    assert input_config_from_metadata(meta, center_crop=False).center_crop is False
    with pytest.raises(ModelFileError, match="input_shape"):
        input_config_from_metadata({**meta, "input_shape": None}, source="m.tlt")
    with pytest.raises(ModelFileError, match="preprocess_mode"):
        input_config_from_metadata({**meta, "preprocess_mode": "keras"})
    with pytest.raises(ModelFileError, match="NHWC"):
        input_config_from_metadata({**meta, "input_layout": "NHWC"})


def test_importing_the_pipeline_and_metrics_does_not_import_tensorflow() -> None:
    code = ("import sys, libtlt.data, libtlt.metrics; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_colour_jitter_keeps_gray_images_gray(tmp_path: Path) -> None:
    for i in range(6):
        solid(tmp_path / "a" / f"{i}.png", (90, 90, 90))
    index = scan_folder(tmp_path)
    config = InputConfig(3, 16, 16, preprocess_mode="tf", color_augmentation=True)
    x, _ = collect(make_dataset(index, config, batch_size=6, training=True, seed=5))
    np.testing.assert_allclose(x[:, 0], x[:, 1], atol=1e-4)  # hue and saturation leave gray alone
    np.testing.assert_allclose(x[:, 1], x[:, 2], atol=1e-4)
    levels = x[:, 0, 0, 0]
    assert np.ptp(levels) > 0.01 and np.all(np.abs(levels - (90 / 127.5 - 1)) <= BRIGHTNESS_DELTA * 2 + 1e-4)
