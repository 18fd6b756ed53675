"""MaskRCNN served: the flat inference model (equal to the NumPy-decoded reference, ``.tlt`` round trip), the training
view sharing its weights, the COCO-record pipeline (resize keeping aspect + pad, normalisation, flip, crowd skipped,
padding, mask crops) and the spec → training plan (warm-up + step levels from the string fields). Tiny sizes."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from PIL import Image

from libtlt.archs.mask_rcnn import data as mdata
from libtlt.archs.mask_rcnn import network as net
from libtlt.archs.mask_rcnn.inference import InferenceConfig, detect
from libtlt.archs.mask_rcnn.mask_targets import crop_gt_masks
from libtlt.archs.mask_rcnn.model import build_inference_model, network_view
from libtlt.archs.mask_rcnn.proposals import ProposalConfig
from libtlt.registry import get_architecture
from libtlt.spec.loader import load_spec_text

SIZE = 64


def tiny() -> tuple[net.MaskRcnnNetworkConfig, InferenceConfig]:
    config = net.MaskRcnnNetworkConfig(num_classes=4, image_hw=(SIZE, SIZE), nlayers=10, fpn_channels=16,
                                       mlp_head_dim=32, mask_head_channels=16, mrcnn_resolution=14)
    return config, InferenceConfig(proposals=ProposalConfig(100, 40, 0.7, 0.0), detections_per_image=12)


def test_flat_model_outputs_equal_the_reference_and_survive_a_tlt_round_trip(tmp_path: Path) -> None:
    from libtlt.runtime.keras_model import load_tlt_model, save_tlt_model

    keras.utils.set_random_seed(1)
    config, inference = tiny()
    model = build_inference_model(config, inference)
    assert [t.name for t in model.inputs] and model.output_names == ["generate_detections", "mask_fcn_probs"]
    images = np.random.default_rng(0).normal(size=(2, 3, SIZE, SIZE)).astype(np.float32)
    detections, masks = model.predict_on_batch(images)
    assert detections.shape == (2, 12, 6) and masks.shape == (2, 12, 4, 14, 14)
    assert masks.min() >= 0.0 and masks.max() <= 1.0  # probabilities, as TAO's deployed mask output
    ref_detections, ref_masks = detect(network_view(model, config), images, inference)  # NumPy NMS and decode
    np.testing.assert_allclose(detections, ref_detections, atol=1e-4)
    np.testing.assert_allclose(masks, ref_masks, atol=1e-5)

    save_tlt_model(tmp_path / "m.tlt", model, "k", {"architecture": "mask_rcnn"}, kdf_iterations=1000)
    loaded, _ = load_tlt_model(tmp_path / "m.tlt", "k", architecture="mask_rcnn")
    again = loaded.predict_on_batch(images)
    np.testing.assert_array_equal(again[0], detections)
    np.testing.assert_array_equal(again[1], masks)


def test_training_view_trains_the_saved_models_weights() -> None:
    from libtlt.archs.mask_rcnn.box_targets import BoxTargetConfig
    from libtlt.archs.mask_rcnn.rpn_targets import RpnTargetConfig
    from libtlt.archs.mask_rcnn.training import MaskRcnnTrainer, TrainingConfig

    keras.utils.set_random_seed(2)
    config, inference = tiny()
    model = build_inference_model(config, inference)
    view = network_view(model, config)
    assert view.box_head.get_layer("fc6") is model.get_layer("fc6")
    assert view.mask_head.get_layer("mask_fcn_logits") is model.get_layer("mask_fcn_logits")
    trainer = MaskRcnnTrainer(view, TrainingConfig(rpn=RpnTargetConfig(batch_size_per_im=32),
                                                   proposals=ProposalConfig(100, 30),
                                                   boxes=BoxTargetConfig(batch_size_per_im=16)))
    trainer.compile(optimizer=keras.optimizers.SGD(0.01))
    saved = {id(v) for v in model.trainable_variables}
    assert {id(v) for v in trainer.trainable_variables} == saved
    batch = {mdata.IMAGES: np.random.default_rng(1).normal(size=(1, 3, SIZE, SIZE)).astype(np.float32),
             mdata.GT_BOXES: np.array([[[8, 8, 40, 36], [0, 0, 0, 0]]], np.float32),
             mdata.GT_CLASSES: np.array([[2, -1]], np.int32), mdata.GT_MASKS: np.ones((1, 2, 28, 28), np.float32)}
    before = np.asarray(model.get_layer("fc6").kernel).copy()
    logs = trainer.train_on_batch(batch, return_dict=True)
    assert set(logs) >= {"loss", "rpn_score_loss", "rpn_box_loss", "fast_rcnn_class_loss", "fast_rcnn_box_loss",
                         "mask_loss"} and np.isfinite(logs["loss"])
    assert not np.array_equal(np.asarray(model.get_layer("fc6").kernel), before)


# ------------------------------------------------------------------------------------------------- data pipeline


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated COCO data (96×64 frames) with the first annotation marked crowd, converted by the installed
    tlt-dataset-convert."""
    from libtlt.samples import generate_coco_dataset
    from libtlt.testing import convert_coco

    root = tmp_path_factory.mktemp("mrcnn_data")
    train = generate_coco_dataset(root / "coco", split="train", num_images=3, seed=4, objects_per_image=(2, 3))
    generate_coco_dataset(root / "coco", split="val", num_images=2, seed=5, first_image_id=1001)
    truth = json.loads(train.annotation_file.read_text())
    truth["annotations"][0]["iscrowd"] = 1
    train.annotation_file.write_text(json.dumps(truth))
    convert_coco(root / "coco", root / "records")
    return {"root": root, "truth": truth, "train": sorted(map(str, (root / "records").glob("train-*"))),
            "image_dir": train.image_dir}


def _first(files: list[str], config: mdata.PipelineConfig) -> dict[str, np.ndarray]:
    ds = mdata.training_dataset(files, config, batch_size=1, seed=0, shuffle_buffer=1)
    return {k: np.asarray(v)[0] for k, v in next(iter(ds)).items()}


def _truth_of_first_record(records: dict[str, Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    from libtlt.io import tfrecord
    from libtlt.io.example import decode_example

    example = decode_example(next(iter(tfrecord.read_records(records["train"][0]))))
    image_id = int(example["image/source_id"][0])
    image = np.asarray(Image.open(io.BytesIO(example["image/encoded"][0])).convert("RGB"))
    return image, [a for a in records["truth"]["annotations"] if a["image_id"] == image_id]


def test_pipeline_resizes_keeping_aspect_pads_and_normalises(records: dict[str, Any]) -> None:
    config = mdata.PipelineConfig(image_hw=(128, 128), gt_mask_size=28, max_num_instances=5, augment=False,
                                  skip_crowd=False)
    out = _first(records["train"], config)
    image, annotations = _truth_of_first_record(records)
    assert image.shape == (64, 96, 3)  # scale min(128/64, 128/96) = 4/3 → 85×128, padded at the bottom
    assert out[mdata.IMAGES].shape == (3, 128, 128)
    np.testing.assert_array_equal(out[mdata.IMAGES][:, 86:], 0.0)
    expected = mdata.normalize(np.asarray(Image.fromarray(image).resize((128, 85), Image.Resampling.BILINEAR),
                                          np.float32))
    assert np.abs(out[mdata.IMAGES][:, :85].transpose(1, 2, 0) - expected).mean() < 0.1  # TF vs PIL bilinear
    count = len(annotations)
    assert list(out[mdata.GT_CLASSES]) == [a["category_id"] for a in annotations] + [-1] * (5 - count)
    for box, annotation in zip(out[mdata.GT_BOXES], annotations, strict=False):
        x, y, w, h = annotation["bbox"]
        np.testing.assert_allclose(box, np.array([y, x, y + h, x + w]) * 4 / 3, atol=0.02)
    np.testing.assert_array_equal(out[mdata.GT_BOXES][count:], 0.0)


def test_pipeline_mask_crops_match_crop_gt_masks(records: dict[str, Any]) -> None:
    from pycocotools import mask as mask_api

    config = mdata.PipelineConfig(image_hw=(128, 128), gt_mask_size=28, max_num_instances=5, augment=False,
                                  skip_crowd=False)
    out = _first(records["train"], config)
    _, annotations = _truth_of_first_record(records)
    for k, annotation in enumerate(annotations):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            mask = mask_api.decode(mask_api.merge(mask_api.frPyObjects(annotation["segmentation"], 64, 96)))
        x, y, w, h = annotation["bbox"]
        expected = crop_gt_masks(mask[None], np.array([[y, x, y + h, x + w]]), 28)[0]
        assert np.abs(out[mdata.GT_MASKS][k] - expected).mean() < 0.02
        assert out[mdata.GT_MASKS][k].max() == pytest.approx(1.0)


def test_pipeline_skips_crowd_and_flips_boxes_with_their_masks(records: dict[str, Any]) -> None:
    keep = mdata.PipelineConfig(image_hw=(128, 128), gt_mask_size=28, max_num_instances=5, augment=False,
                                skip_crowd=False)
    skip = mdata.PipelineConfig(image_hw=(128, 128), gt_mask_size=28, max_num_instances=5, augment=False)
    _, annotations = _truth_of_first_record(records)
    assert annotations[0]["iscrowd"] == 1
    kept, skipped = _first(records["train"], keep), _first(records["train"], skip)
    np.testing.assert_array_equal(skipped[mdata.GT_CLASSES][:len(annotations) - 1], kept[mdata.GT_CLASSES][1:len(
        annotations)])
    assert skipped[mdata.GT_CLASSES][len(annotations) - 1] == -1

    ds = mdata.training_dataset(records["train"], mdata.PipelineConfig(image_hw=(128, 128), gt_mask_size=28,
                                                                       max_num_instances=5, skip_crowd=False),
                                batch_size=1, seed=0, shuffle_buffer=1)
    flipped = None
    for index, batch in enumerate(ds.take(30)):
        b = {k: np.asarray(v)[0] for k, v in batch.items()}
        if index % 3 == 0 and not np.allclose(b[mdata.IMAGES], kept[mdata.IMAGES]):  # the first of 3 records
            flipped = b
            break
    assert flipped is not None, "no flipped copy of the first image in 10 draws"
    np.testing.assert_allclose(flipped[mdata.IMAGES][:, :85, :], kept[mdata.IMAGES][:, :85, ::-1], atol=1e-5)
    n = len(annotations)
    boxes, mirrored = kept[mdata.GT_BOXES][:n], flipped[mdata.GT_BOXES][:n]
    np.testing.assert_allclose(mirrored[:, [1, 3]], 128 - boxes[:, [3, 1]], atol=1e-4)
    np.testing.assert_allclose(flipped[mdata.GT_MASKS][:n], kept[mdata.GT_MASKS][:n, :, ::-1], atol=1e-6)


# ------------------------------------------------------------------------------------------------------ the spec


def _spec(**edits: str) -> Any:
    arch = get_architecture("mask_rcnn")
    text = arch.default_spec()
    for old, new in edits.items():
        text = text.replace(old, new)
    spec = load_spec_text(text, arch.spec_message(), name="<spec>")
    arch.validate(spec)
    return spec


def test_train_plan_reads_the_schedule_strings_in_intervals_of_num_steps_per_eval() -> None:
    arch = get_architecture("mask_rcnn")
    plan = arch.train_plan(_spec())
    assert (plan.epochs, arch.interval(_spec())) == (5, (5000, 5))
    assert plan.optimizer == "sgd" and plan.optimizer_params == {"momentum": 0.9, "global_clipnorm": 5.0}
    assert plan.lr_schedule == "warmup_step" and plan.regularizer == "L2" and plan.regularizer_weight == 1e-4
    assert "BatchNormalization" not in plan.regularizer_scope
    assert plan.lr_params == {"base_lr": 0.01, "warmup": 1000 / 25000, "start_ratio": 0.0001 / 0.01,
                              "boundaries": [0.4, 0.6, 0.8], "levels": [0.1, 0.02, 0.01]}
    odd = arch.interval(_spec(**{"total_steps: 25000": "total_steps: 25001"}))
    assert odd == (5000, 6)  # whole intervals: the run is rounded up


def test_bad_literal_and_size_name_the_field() -> None:
    from libtlt.errors import SpecError

    with pytest.raises(SpecError, match="image_size") as err:
        _spec(**{'image_size: "(832, 1344)"': 'image_size: "(832, 1344"'})
    line = 1 + get_architecture("mask_rcnn").default_spec().split("image_size")[0].count("\n")
    assert err.value.location is not None and f"<spec>:{line}:" in str(err.value.location)
    with pytest.raises(SpecError, match="multiples of 64"):
        _spec(**{'image_size: "(832, 1344)"': 'image_size: "(800, 1344)"'})


# ------------------------------------------------------------------------------------------------------ decoding


def test_a_perfect_prediction_decodes_to_coco_ap_1(tmp_path: Path) -> None:
    """Network outputs made from the ground truth (boxes scaled into the padded 128×128 input, masks cropped to their
    boxes at 56×56) → decode_instances (boxes back to the original 96×64 pixels, masks pasted there) → pycocotools:
    AP 1.0 for bbox and for segm."""
    from types import SimpleNamespace

    from pycocotools import mask as mask_api

    from libtlt.archs.mask_rcnn.evaluation import coco_results
    from libtlt.metrics.coco import coco_stats
    from libtlt.samples import generate_coco_dataset

    sample = generate_coco_dataset(tmp_path / "coco", split="val", num_images=3, seed=9, objects_per_image=(2, 3))
    truth = json.loads(sample.annotation_file.read_text())
    arch = get_architecture("mask_rcnn")
    text = arch.sample_spec(SimpleNamespace(train="x", val="x", root=str(tmp_path), annotations=sample.annotation_file))
    spec = load_spec_text(text.replace("mrcnn_resolution: 14", "mrcnn_resolution: 56"), arch.spec_message(),
                          name="<spec>")
    arch.validate(spec)
    d, c, r = 20, 4, 56
    detections: list[dict[str, Any]] = []
    for image in truth["images"]:
        width, height = image["width"], image["height"]
        scale = mdata.resize_scale(height, width, (128, 128))
        rows = np.zeros((1, d, 6), np.float32)
        probs = np.zeros((1, d, c, r, r), np.float32)
        for k, a in enumerate(x for x in truth["annotations"] if x["image_id"] == image["id"]):
            x, y, w, h = a["bbox"]
            rows[0, k] = [y * scale, x * scale, (y + h) * scale, (x + w) * scale, a["category_id"], 0.9 - 0.1 * k]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                full = mask_api.decode(mask_api.merge(mask_api.frPyObjects(a["segmentation"], height, width)))
            probs[0, k, a["category_id"]] = crop_gt_masks(full[None], np.array([[y, x, y + h, x + w]]), r)[0]
        [found] = arch.decode_instances(spec, {"generate_detections": rows, "mask_fcn_probs": probs},
                                        [(width, height)])
        assert found.masks.shape[1:] == (height, width)
        detections += coco_results(image["id"], found)
    assert coco_stats(truth, detections, "bbox")["AP"] == pytest.approx(1.0)
    segm = coco_stats(truth, detections, "segm")
    assert segm["AP"] == pytest.approx(1.0), segm
