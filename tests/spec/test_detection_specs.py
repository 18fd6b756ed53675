"""Every sample spec the manuals print for DetectNet_v2, SSD, DSSD, RetinaNet and YOLOv3 loads.

The samples live in tests/data/specs/<arch>/ (000_<section>_*.txt from the TLT 2.0 guide, 001_*.txt from
the TAO DetectNet_v2 chapter), copied verbatim except for PDF line-wrapping and page-break debris.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libtlt.errors import SpecError
from libtlt.spec import load_spec, load_spec_text
from libtlt.spec.protos import common_pb2, detectnet_v2_pb2, dssd_pb2, retinanet_pb2, ssd_pb2, yolo_v3_pb2

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"
MODULES: dict[str, Any] = {
    "detectnet_v2": detectnet_v2_pb2,
    "ssd": ssd_pb2,
    "dssd": dssd_pb2,
    "retinanet": retinanet_pb2,
    "yolo_v3": yolo_v3_pb2,
}
#: How many samples each manual prints (a deleted file must fail a test).
COUNTS = {"detectnet_v2": 25, "ssd": 1, "dssd": 3, "retinanet": 3, "yolo_v3": 2}


def message_type(arch: str, path: Path) -> type:
    """The message a sample file is written against."""
    if "validation_data_source" in path.name:
        return common_pb2.DatasetConfig  # printed as a fragment of dataset_config
    if "inferencer_config" in path.name or "bbox_handler_config" in path.name:
        return detectnet_v2_pb2.InferenceSpec
    return MODULES[arch].Experiment


def sample_files() -> list[tuple[str, Path]]:
    return [(arch, path) for arch in MODULES for path in sorted((SPECS / arch).glob("*.txt"))]


def load(arch: str, name: str) -> Any:
    path = SPECS / arch / name
    return load_spec(path, message_type(arch, path)).message


@pytest.mark.parametrize(("arch", "path"), sample_files(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_sample_loads(arch: str, path: Path) -> None:
    spec = load_spec(path, message_type(arch, path))
    assert spec.message.ListFields(), f"{path.name} loaded empty"
    assert spec.positions  # every field located for error messages


def test_sample_counts() -> None:
    assert {arch: len(list((SPECS / arch).glob("*.txt"))) for arch in MODULES} == COUNTS


def test_detectnet_v2_samples_read_as_printed() -> None:
    model = load("detectnet_v2", "000_7.2.1_model_config.txt").model_config
    assert (model.arch, model.num_layers, list(model.freeze_blocks)) == ("resnet", 18, [0.0, 1.0])
    assert model.all_projections and model.use_batch_norm and not model.use_pooling
    assert model.objective_set.HasField("cov") and model.objective_set.bbox.scale == 35.0
    assert model.training_precision.backend_floatx == detectnet_v2_pb2.TrainingPrecision.FLOAT32

    training = load("detectnet_v2", "000_7.2.5_training_config.txt").training_config
    assert (training.batch_size_per_gpu, training.num_epochs) == (16, 80)
    schedule = training.learning_rate.soft_start_annealing_schedule
    assert schedule.min_learning_rate == pytest.approx(5e-6) and schedule.max_learning_rate == pytest.approx(5e-4)
    assert (schedule.soft_start, schedule.annealing) == pytest.approx((0.1, 0.7))
    assert training.regularizer.type == common_pb2.RegularizerConfig.L1
    assert training.regularizer.weight == pytest.approx(3e-9)
    assert training.optimizer.WhichOneof("optimizer") == "adam"
    assert training.optimizer.adam.beta2 == pytest.approx(0.999)
    assert training.cost_scaling.initial_exponent == 20.0 and not training.cost_scaling.enabled

    dataset = load("detectnet_v2", "000_7.2.8_dataset_config.txt").dataset_config
    assert dataset.data_sources[0].tfrecords_path == "<path to the training tfrecords root/tfrecords train pattern>"
    assert [(m.key, m.value) for m in dataset.target_class_mapping][:2] == [("car", "car"), ("automobile", "car")]
    assert dataset.HasField("validation_fold") and dataset.validation_fold == 0

    evaluate = load("detectnet_v2", "000_9.2_dataset_config.txt").dataset_config
    assert evaluate.validation_data_source.image_directory_path == "<path to testing data root>"

    rasterizer = load("detectnet_v2", "000_7.2.2_bbox_rasterizer_config.txt").bbox_rasterizer_config
    assert [e.key for e in rasterizer.target_class_config] == ["car", "cyclist", "pedestrian"]
    assert rasterizer.target_class_config[1].value.cov_radius_x == pytest.approx(0.4)

    post = load("detectnet_v2", "001_postprocessing_config.txt").postprocessing_config
    clustering = post.target_class_config[2].value.clustering_config
    assert (clustering.dbscan_eps, clustering.minimum_bounding_box_height) == (pytest.approx(0.15), 20)

    cost = load("detectnet_v2", "000_7.2.4_cost_function_config.txt").cost_function_config
    assert [t.name for t in cost.target_classes] == ["car", "cyclist", "pedestrian"]
    assert cost.target_classes[1].objectives[1].weight_target == 1.0  # as printed (car has 10.0)
    assert cost.enable_autoweighting and cost.max_objective_weight == pytest.approx(0.9999)

    ds_cost = load("detectnet_v2", "000_13.3.2_cost_function_config.txt").cost_function_config
    assert [t.name for t in ds_cost.target_classes] == ["sheep", "bottle", "horse", "boat", "car"]

    evaluation = load("detectnet_v2", "001_evaluation_config.txt").evaluation_config
    assert evaluation.average_precision_mode == common_pb2.INTEGRATE
    assert evaluation.minimum_detection_ground_truth_overlap[0].value == pytest.approx(0.7)
    assert evaluation.evaluation_box_config[2].key == "bicycle"


def test_detectnet_v2_inference_samples_read_as_printed() -> None:
    inferencer = load("detectnet_v2", "000_7.2.9.1_inferencer_config.txt").inferencer_config
    assert list(inferencer.target_classes) == ["car", "cyclist", "pedestrian"]
    assert (inferencer.image_width, inferencer.image_height, inferencer.batch_size) == (1248, 384, 16)
    trt = inferencer.tensorrt_config
    assert trt.backend_data_type == detectnet_v2_pb2.TensorRTConfig.INT8 and trt.save_engine
    assert trt.calibrator_config.n_batches == 10

    handler = load("detectnet_v2", "001_bbox_handler_config.txt").bbox_handler_config
    assert handler.kitti_dump and not handler.disable_overlay and handler.overlay_linewidth == 2
    assert [e.key for e in handler.classwise_bbox_handler_config] == ["car", "default"]
    car = handler.classwise_bbox_handler_config[0].value
    assert (car.output_map, car.bbox_color.G) == ("car", 255)
    assert car.clustering_config.dbscan_confidence_threshold == pytest.approx(0.9)


def test_ssd_family_samples_read_as_printed() -> None:
    dssd = load("dssd", "000_7.5_full.txt")
    assert dssd.random_seed == 42
    assert dssd.dssd_config.aspect_ratios_global == "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"
    assert (dssd.dssd_config.arch, dssd.dssd_config.nlayers, dssd.dssd_config.pred_num_channels) == ("resnet", 18, 512)
    assert dssd.training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate == pytest.approx(2e-2)
    assert (dssd.eval_config.batch_size, dssd.nms_config.clustering_iou_threshold) == (16, pytest.approx(0.6))
    assert dssd.augmentation_config.preprocessing.crop_right == 1248
    assert dssd.augmentation_config.color_augmentation.saturation_shift_max == pytest.approx(0.2)
    source = dssd.dataset_config.data_sources[0]
    assert source.tfrecords_path == "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/kitti_trainval*"
    assert [m.key for m in dssd.dataset_config.target_class_mapping][-1] == "person_sitting"

    snippet = load("dssd", "000_7.5.6_dssd_config.txt").dssd_config
    assert (snippet.pred_num_channels, list(snippet.freeze_blocks), snippet.freeze_bn) == (0, [0, 1], True)

    retina = load("retinanet", "000_7.6_full.txt").retinanet_config
    assert (retina.n_kernels, retina.feature_size, retina.nlayers, retina.two_boxes_for_ar1) == (1, 256, 18, False)
    assert load("retinanet", "000_7.8_full.txt").retinanet_config.n_layers == 18

    yolo = load("yolo_v3", "000_7.7_full.txt").yolo_config
    assert yolo.big_anchor_shape == "[ (116,90), (156,198), (373,326) ]"
    assert (yolo.arch, yolo.nlayers, yolo.arch_conv_blocks) == ("darknet", 53, 2)
    assert (yolo.loss_neg_obj_weights, yolo.matching_neutral_box_iou) == (50.0, 0.5)

    voc = load("ssd", "000_13.3.3_dataset_config.txt").dataset_config
    assert voc.data_sources[0].tfrecords_path == "/workspace/tlt-experiments/tfrecords/pascal_voc/pascal_voc*"
    assert [m.value for m in voc.target_class_mapping] == ["car", "person", "bicycle"]


@pytest.mark.parametrize("arch", ["ssd", "dssd", "retinanet", "yolo_v3"])
def test_detectnet_v2_augmentation_and_dataset_blocks_are_shared(arch: str) -> None:
    # 7.4.4 / 7.4.5: "The configuration is shared with DetectNet_v2."
    for name in ("000_7.2.6_augmentation_config.txt", "000_7.2.8_dataset_config.txt", "000_7.2.5_training_config.txt"):
        spec = load_spec(SPECS / "detectnet_v2" / name, MODULES[arch].Experiment)
        assert spec.message.ListFields()


def test_defaults_apply_when_fields_are_absent() -> None:
    empty = ssd_pb2.Experiment()
    assert (empty.training_config.batch_size_per_gpu, empty.training_config.num_epochs) == (32, 120)
    assert not empty.training_config.enable_qat
    assert empty.nms_config.top_k == 200
    assert empty.nms_config.confidence_threshold == pytest.approx(0.01)
    assert empty.nms_config.clustering_iou_threshold == pytest.approx(0.6)
    assert empty.eval_config.validation_period_during_training == 10
    assert empty.eval_config.average_precision_mode == common_pb2.SAMPLE
    assert empty.eval_config.matching_iou_threshold == 0.5
    assert empty.ssd_config.arch == "resnet" and empty.ssd_config.two_boxes_for_ar1
    assert (empty.ssd_config.focal_loss_alpha, empty.ssd_config.focal_loss_gamma) == (0.25, 2.0)
    spatial = empty.augmentation_config.spatial_augmentation
    assert (spatial.hflip_probability, spatial.vflip_probability, spatial.zoom_min, spatial.zoom_max) == (0.5, 0, 1, 1)
    assert (spatial.translate_max_x, spatial.rotate_rad_max) == (8.0, pytest.approx(0.69))
    color = empty.augmentation_config.color_augmentation
    assert (color.hue_rotation_max, color.saturation_shift_max, color.contrast_scale_max, color.contrast_center) == \
        pytest.approx((25.0, 0.2, 0.1, 0.5))
    assert not empty.augmentation_config.preprocessing.enable_auto_resize
    assert dssd_pb2.DSSDConfig().pred_num_channels == 512
    assert (retinanet_pb2.RetinaNetConfig().n_kernels, retinanet_pb2.RetinaNetConfig().feature_size) == (2, 256)
    yolo = yolo_v3_pb2.YOLOv3Config()
    assert (yolo.arch_conv_blocks, yolo.loss_loc_weight, yolo.loss_neg_obj_weights, yolo.loss_class_weights) == \
        (2, 5.0, 50.0, 1.0)

    # Defaults also show through a loaded spec that leaves the fields out.
    spec = load_spec_text("model_config { arch: \"vgg\" }\nevaluation_config { evaluation_box_config { key: \"car\" } }",
                          detectnet_v2_pb2.Experiment).message
    assert (spec.model_config.num_layers, spec.model_config.dropout_rate) == (18, 0.0)
    assert spec.evaluation_config.first_validation_epoch == 30
    box = spec.evaluation_config.evaluation_box_config[0].value
    assert (box.minimum_height, box.maximum_height, box.minimum_width, box.maximum_width) == (10, 9999, 10, 9999)
    assert spec.bbox_rasterizer_config.deadzone_radius == pytest.approx(0.67)
    assert spec.postprocessing_config.target_class_config.add().value.clustering_config.clustering_algorithm == \
        detectnet_v2_pb2.ClusteringConfig.DBSCAN
    inference = detectnet_v2_pb2.InferenceSpec()
    inferencer = inference.inferencer_config
    assert (inferencer.batch_size, inferencer.image_height, inferencer.image_width, inferencer.image_channels) == \
        (1, 384, 1248, 3)
    assert inferencer.tensorrt_config.parser == detectnet_v2_pb2.TensorRTConfig.ETLT
    assert inferencer.tensorrt_config.backend_data_type == detectnet_v2_pb2.TensorRTConfig.FP32
    handler = inference.bbox_handler_config
    assert (handler.kitti_dump, handler.disable_overlay, handler.overlay_linewidth) == (False, True, 1)
    assert handler.classwise_bbox_handler_config.add().value.confidence_model == "aggregate_cov"


@pytest.mark.parametrize(
    ("arch", "text", "expected"),
    [
        ("dssd", "nms_config {\n  clustering_iou_treshold: 0.6\n}\n",
         "spec.txt:2:3: unknown field 'clustering_iou_treshold' in nms_config; "
         "did you mean 'clustering_iou_threshold'?"),
        ("ssd", "training_config {\n  batch_size_per_gpus: 4\n}\n",
         "did you mean 'batch_size_per_gpu'?"),
        ("retinanet", "retinanet_config {\n  aspect_ratio_global: \"[1.0]\"\n}\n",
         "did you mean 'aspect_ratios_global'?"),
        ("yolo_v3", "yolo_config {\n  big_anchor_shapes: \"[(1,1)]\"\n}\n", "did you mean 'big_anchor_shape'?"),
        ("detectnet_v2", "augmentation_config {\n  preprocessing {\n    output_image_widht: 960\n  }\n}\n",
         "spec.txt:3:5: unknown field 'output_image_widht' in augmentation_config.preprocessing; "
         "did you mean 'output_image_width'?"),
        ("detectnet_v2", "evaluation_config {\n  average_precision_mode: SAMPLES\n}\n",
         "valid: SAMPLE, INTEGRATE"),
        ("ssd", "eval_config {\n  validation_period_duration: 10\n}\n",
         "did you mean 'validation_period_during_training'?"),
    ],
)
def test_typos_name_line_and_suggest(arch: str, text: str, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, MODULES[arch].Experiment, name="spec.txt")
    assert expected in str(info.value)
