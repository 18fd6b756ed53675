"""Semantic validation of the detection specs: one case per rule.

Each base spec is built from the manuals' own samples and passes; each case edits one spot of it and
expects a SpecError naming that field at the edited line (``spec.txt:<line>:``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from libtlt.archs.detectnet_v2.validation import validate as validate_detectnet_v2
from libtlt.archs.dssd.validation import validate as validate_dssd
from libtlt.archs.retinanet.validation import validate as validate_retinanet
from libtlt.archs.ssd.validation import validate as validate_ssd
from libtlt.archs.yolo_v3.validation import validate as validate_yolo_v3
from libtlt.errors import SpecError
from libtlt.spec import load_spec_text
from libtlt.spec.protos import detectnet_v2_pb2, dssd_pb2, retinanet_pb2, ssd_pb2, yolo_v3_pb2

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


def sample(arch: str, *names: str) -> str:
    return "".join((SPECS / arch / name).read_text() for name in names)


DETECTNET_EVALUATION = """evaluation_config {
  validation_period_during_training: 10
  first_validation_epoch: 1
  minimum_detection_ground_truth_overlap {
    key: "car"
    value: 0.7
  }
  evaluation_box_config {
    key: "car"
    value {
      minimum_height: 4
      maximum_height: 9999
      minimum_width: 4
      maximum_width: 9999
    }
  }
}
"""

# The 000 §7.2 snippets together (classes car, cyclist, pedestrian), plus an evaluation_config for them.
DETECTNET_V2 = sample(
    "detectnet_v2", "000_7.2.1_model_config.txt", "000_7.2.2_bbox_rasterizer_config.txt",
    "000_7.2.3_postprocessing_config.txt", "000_7.2.4_cost_function_config.txt", "000_7.2.5_training_config.txt",
    "000_7.2.6_augmentation_config.txt", "000_7.2.8_dataset_config.txt",
) + DETECTNET_EVALUATION
INFERENCE = sample("detectnet_v2", "000_7.2.9.1_inferencer_config.txt", "000_7.2.9.3_bbox_handler_config.txt")
DSSD = sample("dssd", "000_7.5_full.txt")
# 7.4 prints no complete SSD spec; its fields are DSSD's minus pred_num_channels.
SSD = DSSD.replace("dssd_config", "ssd_config").replace("  pred_num_channels: 512\n", "")
RETINANET = sample("retinanet", "000_7.6_full.txt")
YOLO = sample("yolo_v3", "000_7.7_full.txt")

BASES: dict[str, tuple[str, type, Callable[[Any], None]]] = {
    "detectnet_v2": (DETECTNET_V2, detectnet_v2_pb2.Experiment, validate_detectnet_v2),
    "inference": (INFERENCE, detectnet_v2_pb2.InferenceSpec, validate_detectnet_v2),
    "ssd": (SSD, ssd_pb2.Experiment, validate_ssd),
    "dssd": (DSSD, dssd_pb2.Experiment, validate_dssd),
    "retinanet": (RETINANET, retinanet_pb2.Experiment, validate_retinanet),
    "retinanet_7.8": (sample("retinanet", "000_7.8_full.txt"), retinanet_pb2.Experiment, validate_retinanet),
    "yolo_v3": (YOLO, yolo_v3_pb2.Experiment, validate_yolo_v3),
}


@pytest.mark.parametrize("base", list(BASES))
def test_samples_are_valid(base: str) -> None:
    text, message, validate = BASES[base]
    validate(load_spec_text(text, message, name="spec.txt"))


def edit(text: str, old: str, new: str) -> tuple[str, int]:
    """Replace the first ``old`` by ``new``; return the text and the line where ``new`` starts."""
    index = text.find(old)
    assert index >= 0, f"{old!r} not in the base spec"
    line = text.count("\n", 0, index) + 1 + (len(new) - len(new.lstrip("\n")))
    return text[:index] + new + text[index + len(old):], line


def drop_block(text: str, header: str) -> str:
    """Remove the message block that starts with ``header`` (e.g. ``training_config {``)."""
    start = text.find(header)
    assert start >= 0, f"{header!r} not in the base spec"
    depth, index = 0, start
    while True:
        char = text[index]
        depth += {"{": 1, "}": -1}.get(char, 0)
        index += 1
        if char == "}" and depth == 0:
            break
    return text[:start] + text[index:].lstrip("\n")


def expect_error(base: str, old: str, new: str, field: str, fragment: str, at: str | int | None = None) -> None:
    """``at``: None = the edited line, an int = that many lines from it, "" = the file only (the field and
    all its ancestors are absent), other text = the line where that text first occurs."""
    text, message, validate = BASES[base]
    if old.startswith("DROP "):
        text, line = drop_block(text, old[len("DROP "):]), 0
    else:
        text, line = edit(text, old, new)
    if isinstance(at, int):
        line += at
    elif at:  # errors about absent fields point at the closest written ancestor
        line = text.count("\n", 0, text.index(at)) + 1
    spec = load_spec_text(text, message, name="spec.txt")
    with pytest.raises(SpecError) as info:
        validate(spec)
    err = info.value
    assert err.field == field, str(err)
    assert fragment in err.message, str(err)
    if at == "":
        assert err.location == "spec.txt", str(err)
    else:
        assert err.location is not None and err.location.startswith(f"spec.txt:{line}:"), str(err)


LR = """  learning_rate {
    soft_start_annealing_schedule {
      min_learning_rate: 5e-5
      max_learning_rate: 2e-2
      soft_start: 0.15
      annealing: 0.8
    }
  }
"""
SCHEDULE = "training_config.learning_rate.soft_start_annealing_schedule"
PRE = "augmentation_config.preprocessing"
SPATIAL = "augmentation_config.spatial_augmentation"
COLOR = "augmentation_config.color_augmentation"

# (base, old, new, field, message fragment[, line anchor for absent fields])
COMMON_CASES = [
    # training_config (000 §7.2.5 / §7.4.1)
    ("dssd", "batch_size_per_gpu: 16", "batch_size_per_gpu: 0", "training_config.batch_size_per_gpu", "must be > 0"),
    ("dssd", "num_epochs: 80", "num_epochs: 0", "training_config.num_epochs", "must be > 0"),
    ("dssd", "enable_qat: false", "checkpoint_interval: 81", "training_config.checkpoint_interval", "in [0, 80]"),
    ("dssd", LR, "", "training_config.learning_rate", "soft_start_annealing_schedule", "training_config {"),
    ("dssd", "min_learning_rate: 5e-5", "min_learning_rate: 0.0", f"{SCHEDULE}.min_learning_rate", "> 0"),
    ("dssd", "min_learning_rate: 5e-5", "min_learning_rate: 5e-1", f"{SCHEDULE}.min_learning_rate",
     "<= max_learning_rate"),
    ("dssd", "soft_start: 0.15", "soft_start: 1.5", f"{SCHEDULE}.soft_start", "in [0, 1]"),
    ("dssd", "annealing: 0.8", "annealing: 0.1", f"{SCHEDULE}.annealing", "greater than soft_start"),
    ("dssd", "weight: 3e-5", "weight: -3e-5", "training_config.regularizer.weight", ">= 0"),
    ("detectnet_v2", "beta1: 0.9", "beta1: 1.0", "training_config.optimizer.adam.beta1", "in [0, 1)"),
    ("detectnet_v2", "epsilon: 1e-08", "epsilon: 0", "training_config.optimizer.adam.epsilon", "> 0"),
    ("dssd", "enable_qat: false", "optimizer { sgd { momentum: -0.9 } }", "training_config.optimizer.sgd.momentum",
     ">= 0"),
    ("dssd", "enable_qat: false", "optimizer { rmsprop { rho: 1.0 } }", "training_config.optimizer.rmsprop.rho",
     "in [0, 1)"),
    ("yolo_v3", "DROP training_config {", "", "training_config", "required", ""),
    # augmentation_config (000 §7.2.6, chapter 3 input sizes)
    ("ssd", "output_image_width: 1248", "output_image_width: 1250", f"{PRE}.output_image_width", "multiple of 32"),
    ("ssd", "output_image_height: 384", "output_image_height: 96", f"{PRE}.output_image_height", ">= 128"),
    ("detectnet_v2", "output_image_width: 960", "output_image_width: 968", f"{PRE}.output_image_width",
     "multiple of 16"),
    ("detectnet_v2", "output_image_width: 960", "output_image_width: 464", f"{PRE}.output_image_width", ">= 480"),
    ("detectnet_v2", "output_image_height: 544", "output_image_height: 256", f"{PRE}.output_image_height", ">= 272"),
    ("retinanet", "    output_image_width: 1248\n", "", f"{PRE}.output_image_width", "required", "preprocessing {"),
    ("dssd", "output_image_channel: 3", "output_image_channel: 2", f"{PRE}.output_image_channel", "1 or 3"),
    ("dssd", "min_bbox_width: 1.0", "min_bbox_width: 2000.0", f"{PRE}.min_bbox_width", "in [0, 1248]"),
    ("dssd", "min_bbox_height: 1.0", "min_bbox_height: -1.0", f"{PRE}.min_bbox_height", "in [0, 384]"),
    ("dssd", "crop_right: 1248", "crop_left: 1248\n    crop_right: 1248", f"{PRE}.crop_right",
     "greater than crop_left", "crop_right"),
    ("dssd", "crop_bottom: 384", "crop_top: -4\n    crop_bottom: 384", f"{PRE}.crop_top", ">= 0"),
    ("dssd", "crop_bottom: 384", "crop_top: 400\n    crop_bottom: 384", f"{PRE}.crop_bottom",
     "greater than crop_top", "crop_bottom"),
    ("dssd", "crop_bottom: 384", "scale_height: 0.0", f"{PRE}.scale_height", "> 0"),
    ("dssd", "hflip_probability: 0.5", "hflip_probability: 1.5", f"{SPATIAL}.hflip_probability", "in [0, 1]"),
    ("dssd", "vflip_probability: 0.0", "vflip_probability: -0.1", f"{SPATIAL}.vflip_probability", "in [0, 1]"),
    ("dssd", "zoom_min: 0.7", "zoom_min: 0.0", f"{SPATIAL}.zoom_min", "> 0"),
    ("dssd", "zoom_max: 1.8", "zoom_max: 0.5", f"{SPATIAL}.zoom_max", ">= zoom_min"),
    ("dssd", "translate_max_x: 8.0", "translate_max_x: 1300.0", f"{SPATIAL}.translate_max_x", "in [0, 1248]"),
    ("dssd", "translate_max_y: 8.0", "translate_max_y: 400.0", f"{SPATIAL}.translate_max_y", "in [0, 384]"),
    ("dssd", "translate_max_y: 8.0", "rotate_rad_max: -0.5", f"{SPATIAL}.rotate_rad_max", ">= 0"),
    ("detectnet_v2", "color_shift_stddev: 0.0", "color_shift_stddev: 1.5", f"{COLOR}.color_shift_stddev",
     "in [0, 1]"),
    ("dssd", "hue_rotation_max: 25.0", "hue_rotation_max: 400.0", f"{COLOR}.hue_rotation_max", "in [0, 360]"),
    ("dssd", "saturation_shift_max: 0.20000000298", "saturation_shift_max: 2", f"{COLOR}.saturation_shift_max",
     "in [0, 1]"),
    ("dssd", "contrast_scale_max: 0.10000000149", "contrast_scale_max: -1", f"{COLOR}.contrast_scale_max",
     "in [0, 1]"),
    ("dssd", "contrast_center: 0.5", "contrast_center: 127.5", f"{COLOR}.contrast_center", "in [0, 1]"),
    # dataset_config (000 §7.2.8)
    ("dssd", "DROP dataset_config {", "", "dataset_config", "required", ""),
    ("dssd", "DROP data_sources: {", "", "dataset_config.data_sources", "at least one",
     "dataset_config {"),
    ("dssd", 'image_directory_path: "/workspace/tlt-experiments/data/training"', 'image_directory_path: ""',
     "dataset_config.data_sources[0].image_directory_path", "required"),
    ("detectnet_v2", 'tfrecords_path: "<path to the training tfrecords root/tfrecords train pattern>"',
     'tfrecords_path: " "', "dataset_config.data_sources[0].tfrecords_path", "required"),
    ("dssd", 'image_extension: "png"', 'image_extension: "bmp"', "dataset_config.image_extension", "jpg, jpeg, png"),
    ("dssd", 'key: "van"', 'key: "car"', "dataset_config.target_class_mapping[3]", "duplicate source class 'car'", -1),
    ("yolo_v3", 'value: "pedestrian"', 'value: ""', "dataset_config.target_class_mapping[1].value", "not be empty"),
    ("dssd", "validation_fold: 0",
     'validation_fold: 0\n  validation_data_source { tfrecords_path: "v*" image_directory_path: "v" }',
     "dataset_config.validation_fold", "not both"),
    ("dssd", "validation_fold: 0", 'validation_data_source { tfrecords_path: "" image_directory_path: "v" }',
     "dataset_config.validation_data_source.tfrecords_path", "required"),
    # eval_config and nms_config (000 §7.4.2, §7.4.3)
    ("dssd", "validation_period_during_training: 10", "validation_period_during_training: 0",
     "eval_config.validation_period_during_training", "in [1, num_epochs (80)]"),
    ("dssd", "validation_period_during_training: 10", "validation_period_during_training: 81",
     "eval_config.validation_period_during_training", "in [1, num_epochs (80)]"),
    ("dssd", "matching_iou_threshold: 0.5", "matching_iou_threshold: 0.0", "eval_config.matching_iou_threshold",
     "in (0, 1]"),
    ("dssd", "batch_size: 16", "batch_size: 0", "eval_config.batch_size", "must be > 0"),
    ("dssd", "confidence_threshold: 0.01", "confidence_threshold: 1.01", "nms_config.confidence_threshold",
     "in [0, 1]"),
    ("dssd", "clustering_iou_threshold: 0.6", "clustering_iou_threshold: 0", "nms_config.clustering_iou_threshold",
     "in (0, 1]"),
    ("dssd", "top_k: 200", "top_k: 0", "nms_config.top_k", "must be > 0"),
]

BACKBONE_CASES = [
    ("ssd", 'arch: "resnet"', 'arch: "alexnet"', "ssd_config.arch", "unsupported arch 'alexnet'"),
    ("ssd", "nlayers: 18", "nlayers: 20", "ssd_config.nlayers", "resnet supports 10, 18, 34, 50, 101 layers"),
    ("dssd", "  nlayers: 18\n", "", "dssd_config.nlayers", "required for resnet", "dssd_config {"),
    ("dssd", 'arch: "resnet"', 'arch: "mobilenet_v1"', "dssd_config.nlayers", "remove it", "nlayers: 18"),
    ("yolo_v3", "nlayers: 53", "nlayers: 50", "yolo_config.nlayers", "darknet supports 19, 53 layers"),
    ("yolo_v3", "freeze_blocks: 1}", "freeze_blocks: 6}", "yolo_config.freeze_blocks[1]", "0-5, got 6"),
    ("retinanet", "freeze_blocks: 0", "freeze_blocks: 5", "retinanet_config.freeze_blocks[0]", "resnet block IDs"),
    ("retinanet", "freeze_blocks: 0", "freeze_blocks: -1", "retinanet_config.freeze_blocks[0]", "non-negative"),
    ("ssd", "freeze_blocks: 0", "freeze_blocks: 0\n  freeze_blocks: 0", "ssd_config.freeze_blocks[1]", "listed twice",
     1),
    ("ssd", 'arch: "resnet"\n  nlayers: 18', 'arch: "vgg"\n  nlayers: 16', "ssd_config.freeze_blocks[0]",
     "vgg block IDs valid for freezing are 1-5, got 0", "freeze_blocks: 0"),
    ("ssd", 'arch: "resnet"\n  nlayers: 18\n  freeze_bn: false\n  freeze_blocks: 0',
     'arch: "mobilenet_v2"\n  freeze_blocks: 14', "ssd_config.freeze_blocks[0]", "0-13, got 14", "freeze_blocks: 14"),
]

ANCHOR_CASES = [
    ("dssd", 'scales: "[0.05', 'aspect_ratios: "[[1.0]]"\n  scales: "[0.05', "dssd_config.aspect_ratios",
     "exactly one of aspect_ratios_global and aspect_ratios"),
    ("ssd", '  aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"\n', "", "ssd_config",
     "exactly one of", "ssd_config {"),
    ("ssd", '"[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"', '"[1.0, 2.0, 0.5, 3.0, 1.0/3.0"', "ssd_config.aspect_ratios_global",
     "cannot read"),
    ("ssd", '"[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"', '"[1.0, 2.0, -0.5]"', "ssd_config.aspect_ratios_global",
     "must be positive, got -0.5"),
    ("ssd", 'aspect_ratios_global: "[1.0, 2.0, 0.5, 3.0, 1.0/3.0]"', 'aspect_ratios: "[[1.0, 2.0], [1.0, 0.5]]"',
     "ssd_config.aspect_ratios", "one list per prediction layer (6), got 2"),
    ("dssd", '"[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"', '"[0.05, 0.1, 0.25, 0.4, 0.55, 0.7]"',
     "dssd_config.scales", "needs 7 values"),
    ("dssd", '"[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"', '"[0.05, 0.1, 0.25, 0.0, 0.55, 0.7, 0.85]"',
     "dssd_config.scales", "must be positive"),
    ("dssd", "two_boxes_for_ar1: true", "min_scale: 0.1\n  two_boxes_for_ar1: true", "dssd_config.min_scale",
     "either scales or min_scale and max_scale"),
    ("dssd", '  scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"\n', "  min_scale: 0.1\n", "dssd_config.min_scale",
     "min_scale needs max_scale"),
    ("dssd", '  scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"\n', "", "dssd_config.scales",
     "scales, or both min_scale and max_scale, are required", "dssd_config {"),
    ("dssd", '  scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"\n', "  max_scale: 0.5\n", "dssd_config.max_scale",
     "max_scale needs min_scale"),
    ("dssd", '  scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"\n', "  min_scale: 0.5\n  max_scale: 0.5\n",
     "dssd_config.max_scale", "greater than min_scale", "max_scale"),
    ("dssd", '  scales: "[0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85]"\n', "  min_scale: -0.1\n  max_scale: 0.5\n",
     "dssd_config.min_scale", "> 0"),
    ("dssd", 'variances: "[0.1, 0.1, 0.2, 0.2]"', 'variances: "[0.1, 0.1, 0.2]"', "dssd_config.variances",
     "needs 4 values"),
    ("dssd", 'variances: "[0.1, 0.1, 0.2, 0.2]"', 'variances: "[0.1, 0.1, 0.2, 0]"', "dssd_config.variances",
     "must be positive"),
    ("ssd", "clip_boxes: false", 'steps: "[8, 16, 32, 64, 128]"', "ssd_config.steps",
     "one step per prediction layer (6), got 5"),
    ("ssd", "clip_boxes: false", 'offsets: "[0.5, 0.5, 0.5, 0.5, 0.5, 1.5]"', "ssd_config.offsets", "in [0, 1]"),
    ("dssd", "loss_loc_weight: 0.8", "loss_loc_weight: 0.0", "dssd_config.loss_loc_weight", "> 0"),
    ("dssd", "focal_loss_alpha: 0.25", "focal_loss_alpha: 1.25", "dssd_config.focal_loss_alpha", "in [0, 1]"),
    ("dssd", "focal_loss_gamma: 2.0", "focal_loss_gamma: -2.0", "dssd_config.focal_loss_gamma", ">= 0"),
    ("dssd", "pred_num_channels: 512", "pred_num_channels: 128", "dssd_config.pred_num_channels",
     "0, 256, 512, 1024"),
    ("retinanet", '"[0.045, 0.09, 0.2, 0.4, 0.55, 0.7]"', '"[0.045, 0.09, 0.2, 0.4, 0.55, 0.7, 0.85]"',
     "retinanet_config.scales", "needs 6 values"),
    ("retinanet", "n_kernels: 1", "n_kernels: 0", "retinanet_config.n_kernels", "must be > 0"),
    ("retinanet", "feature_size: 256", "feature_size: 0", "retinanet_config.feature_size", "must be > 0"),
    ("retinanet_7.8", "n_layers: 18", "n_layers: 18\n  nlayers: 34", "retinanet_config.n_layers",
     "conflicts with nlayers (34)"),
    ("retinanet_7.8", "n_layers: 18", "n_layers: 19", "retinanet_config.n_layers", "resnet supports"),
    # YOLOv3 (000 §7.7.6)
    ("yolo_v3", '"[ (116,90), (156,198), (373,326) ]"', '"[ (116,90), (156,198), (373,326) "',
     "yolo_config.big_anchor_shape", "cannot read"),
    ("yolo_v3", '"[ (30,61), (62,45), (59,119) ]"', '"[ 30, 61 ]"', "yolo_config.mid_anchor_shape",
     "(width, height) pairs"),
    ("yolo_v3", '"[ (10,13), (16,30), (33,23) ]"', '"[ (10,-13) ]"', "yolo_config.small_anchor_shape",
     "must be positive"),
    ("yolo_v3", '"[ (10,13), (16,30), (33,23) ]"', '"[]"', "yolo_config.small_anchor_shape", "at least one"),
    ("yolo_v3", '  mid_anchor_shape: "[ (30,61), (62,45), (59,119) ]"\n', "", "yolo_config.mid_anchor_shape",
     "required", "yolo_config {"),
    ("yolo_v3", "matching_neutral_box_iou: 0.5", "matching_neutral_box_iou: 1.5",
     "yolo_config.matching_neutral_box_iou", "in [0, 1]"),
    ("yolo_v3", "arch_conv_blocks: 2", "arch_conv_blocks: 3", "yolo_config.arch_conv_blocks", "0, 1 or 2"),
    ("yolo_v3", "loss_neg_obj_weights: 50.0", "loss_neg_obj_weights: -50.0", "yolo_config.loss_neg_obj_weights",
     ">= 0"),
]

ARCH = 'arch: "resnet"\n  pretrained_model_file: "<path_to_model_file>"\n  freeze_blocks: 0\n  freeze_blocks: 1\n  all_projections: True\n  num_layers: 18'
RASTER = "bbox_rasterizer_config.target_class_config"
POST = "postprocessing_config.target_class_config"
COST = "cost_function_config.target_classes"
DETECTNET_CASES = [
    ("detectnet_v2", "DROP model_config {", "", "model_config", "required", ""),
    ("detectnet_v2", 'arch: "resnet"', 'arch: "alexnet"', "model_config.arch", "unsupported arch"),
    ("detectnet_v2", "num_layers: 18", "num_layers: 20", "model_config.num_layers", "10, 18, 34, 50, 101"),
    ("detectnet_v2", "freeze_blocks: 1", "freeze_blocks: 1.5", "model_config.freeze_blocks[1]", "integers"),
    ("detectnet_v2", "freeze_blocks: 1", "freeze_blocks: 5", "model_config.freeze_blocks[1]", "0-4, got 5"),
    ("detectnet_v2", ARCH, ARCH.replace('"resnet"', '"vgg"').replace("18", "16").replace("True", "False"),
     "model_config.freeze_blocks[0]", "1-5, got 0", 2),
    ("detectnet_v2", ARCH, ARCH.replace('"resnet"', '"vgg"').replace("18", "16").replace("blocks: 0", "blocks: 2"),
     "model_config.all_projections",
     "only applies to templates with shortcuts (resnet, mobilenet_v2), not vgg", 4),
    ("detectnet_v2", "dropout_rate: 0.0", "dropout_rate: 0.2", "model_config.dropout_rate", "in [0, 0.1]"),
    ("detectnet_v2", 'pretrained_model_file: "<path_to_model_file>"', 'pretrained_model_file: ""\n  load_graph: true',
     "model_config.load_graph", "needs pretrained_model_file", "load_graph"),
    ("detectnet_v2", "    cov {}\n", "", "model_config.objective_set.cov", "cov {} and bbox", "objective_set"),
    ("detectnet_v2", "scale: 35.0", "scale: 0.0", "model_config.objective_set.bbox.scale", "> 0"),
    ("detectnet_v2", "backend_floatx: FLOAT32", "backend_floatx: FLOAT16",
     "model_config.training_precision.backend_floatx", "only FLOAT32"),
    ("detectnet_v2", 'value: "cyclist"', 'value: "bicycle"', f"{COST}[1].name", "not a target class",
     'name: "cyclist"'),
    ("detectnet_v2", 'name: "pedestrian"', 'name: "car"', f"{COST}[2]", "duplicate target class 'car'",
     '  target_classes {\n    name: "car"\n    class_weight: 1.0\n    coverage_foreground_weight: 0.05\n    '
     'objectives {\n      name: "cov"\n      initial_weight: 1.0\n      weight_target: 1.0\n    }\n    objectives {\n'
     '      name: "bbox"\n      initial_weight: 10.0\n      weight_target: 10.0\n    }\n  }\n  enable'),
    ("detectnet_v2", 'key: "rider"\n    value: "cyclist"', 'key: "rider"\n    value: "cyclist"\n  }\n'
     '  target_class_mapping {\n    key: "truck"\n    value: "truck"', COST, "no target_classes entry for",
     "target_classes {"),
    ("detectnet_v2", 'name: "cov"', 'name: "coverage"', f"{COST}[0].objectives[0].name", "cov or bbox"),
    ("detectnet_v2", 'name: "bbox"', 'name: "cov"', f"{COST}[0].objectives[1]", "duplicate objective", -1),
    ("detectnet_v2", "coverage_foreground_weight: 0.05", "coverage_foreground_weight: 1.05",
     f"{COST}[0].coverage_foreground_weight", "in [0, 1]"),
    ("detectnet_v2", "class_weight: 1.0", "class_weight: -1.0", f"{COST}[0].class_weight", ">= 0"),
    ("detectnet_v2", "initial_weight: 1.0", "initial_weight: -1.0", f"{COST}[0].objectives[0].initial_weight",
     ">= 0"),
    ("detectnet_v2", "min_objective_weight: 0.0001", "min_objective_weight: 0.99999",
     "cost_function_config.min_objective_weight", "<= max_objective_weight"),
    ("detectnet_v2", 'key: "cyclist"\n    value: {\n      cov_center_x',
     'key: "bicycle"\n    value: {\n      cov_center_x', f"{RASTER}[1].key", "not a target class"),
    ("detectnet_v2", 'key: "cyclist"\n    value: {\n      cov_center_x', 'key: "car"\n    value: {\n      cov_center_x',
     f"{RASTER}[1]", "duplicate key 'car'", -1),
    ("detectnet_v2", "cov_radius_x: 0.4", "cov_radius_x: 1.4", f"{RASTER}[0].value.cov_radius_x", "in [0, 1]"),
    ("detectnet_v2", "deadzone_radius: 0.67", "deadzone_radius: 1.67", "bbox_rasterizer_config.deadzone_radius",
     "in [0, 1]"),
    ("detectnet_v2", 'key: "pedestrian"\n    value: {\n      clustering_config',
     'key: "person"\n    value: {\n      clustering_config', f"{POST}[2].key", "not a target class"),
    ("detectnet_v2", 'key: "pedestrian"\n    value: {\n      clustering_config',
     'key: "cyclist"\n    value: {\n      clustering_config', f"{POST}[2]", "duplicate key 'cyclist'", -1),
    ("detectnet_v2", "coverage_threshold: 0.005", "coverage_threshold: 5",
     f"{POST}[0].value.clustering_config.coverage_threshold", "in [0, 1]"),
    ("detectnet_v2", "dbscan_eps: 0.15", "dbscan_eps: 1.15", f"{POST}[0].value.clustering_config.dbscan_eps",
     "in [0, 1]"),
    ("detectnet_v2", "minimum_bounding_box_height: 20", "minimum_bounding_box_height: 600",
     f"{POST}[0].value.clustering_config.minimum_bounding_box_height", "in [0, 544]"),
    ("detectnet_v2", "dbscan_eps: 0.15", "dbscan_eps: 0.15\n        clustering_algorithm: HYBRID\n"
     "        nms_iou_threshold: 1.0", f"{POST}[0].value.clustering_config.nms_iou_threshold", "in (0, 1)",
     "nms_iou_threshold"),
    ("detectnet_v2", "dbscan_eps: 0.15", "dbscan_eps: 0.15\n        dbscan_confidence_threshold: 0.0",
     f"{POST}[0].value.clustering_config.dbscan_confidence_threshold", "> 0", "dbscan_confidence_threshold"),
    ("detectnet_v2", "first_validation_epoch: 1", "first_validation_epoch: 81",
     "evaluation_config.first_validation_epoch", "in [1, num_epochs (80)]"),
    ("detectnet_v2", "validation_period_during_training: 10", "validation_period_during_training: 0",
     "evaluation_config.validation_period_during_training", "in [1, num_epochs (80)]"),
    ("detectnet_v2", 'key: "car"\n    value: 0.7', 'key: "person"\n    value: 0.7',
     "evaluation_config.minimum_detection_ground_truth_overlap[0].key", "not a target class"),
    ("detectnet_v2", "value: 0.7", "value: 1.7", "evaluation_config.minimum_detection_ground_truth_overlap[0].value",
     "in (0, 1]"),
    ("detectnet_v2", "maximum_height: 9999", "maximum_height: 2",
     "evaluation_config.evaluation_box_config[0].value.maximum_height", ">= minimum_height"),
    ("detectnet_v2", "maximum_width: 9999", "maximum_width: 2",
     "evaluation_config.evaluation_box_config[0].value.maximum_width", ">= minimum_width"),
    ("detectnet_v2", "minimum_width: 4", "minimum_width: -4",
     "evaluation_config.evaluation_box_config[0].value.minimum_width", ">= 0"),
]

HANDLER = "bbox_handler_config.classwise_bbox_handler_config"
TENSORRT = INFERENCE[INFERENCE.index("  tensorrt_config{"):INFERENCE.index("  }\n}\n") + 4]
INFERENCE_CASES = [
    ("inference", "DROP inferencer_config{", "", "inferencer_config", "required", ""),
    ("inference", '  target_classes: "car"\n  target_classes: "cyclist"\n  target_classes: "pedestrian"\n', "",
     "inferencer_config.target_classes", "required", "inferencer_config{"),
    ("inference", 'target_classes: "pedestrian"', 'target_classes: "car"', "inferencer_config.target_classes[2]",
     "duplicate target class"),
    ("inference", "image_width: 1248", "image_width: 16", "inferencer_config.image_width", "> 16"),
    ("inference", "image_height: 384", "image_height: 8", "inferencer_config.image_height", "> 16"),
    ("inference", "image_channels: 3", "image_channels: 4", "inferencer_config.image_channels", "1 or 3"),
    ("inference", "batch_size: 16", "batch_size: 0", "inferencer_config.batch_size", "> 0"),
    ("inference", "gpu_index: 0", 'gpu_index: 0\n  tlt_config { model: "m.tlt" }', "inferencer_config.tlt_config",
     "exactly one of tensorrt_config and tlt_config", "tlt_config"),
    ("inference", "DROP tensorrt_config{", "", "inferencer_config", "exactly one of",
     "inferencer_config{"),
    ("inference", TENSORRT, "  tlt_config {\n  }", "inferencer_config.tlt_config.model", "required"),
    ("inference", '    etlt_model: "/path/to/model.etlt"\n    backend_data_type: INT8\n    save_engine: true\n'
     '    trt_engine: "/path/to/trt/engine/file"\n', "", "inferencer_config.tensorrt_config",
     "etlt_model or trt_engine", "tensorrt_config{"),
    ("inference", '    trt_engine: "/path/to/trt/engine/file"\n', "", "inferencer_config.tensorrt_config.save_engine",
     "needs trt_engine", "save_engine"),
    ("inference", 'calibration_cache: "/path/to/calibration/cache"', 'calibration_cache: ""',
     "inferencer_config.tensorrt_config.backend_data_type", "INT8 needs", "backend_data_type"),
    ("inference", "overlay_linewidth: 2", "overlay_linewidth: 0", "bbox_handler_config.overlay_linewidth", ">= 1"),
    ("inference", 'key:"car"', 'key:"truck"', f"{HANDLER}[0].key", "not a target class"),
    ("inference", 'key:"default"', 'key:"pedestrian"', HANDLER, "no entry (and no \"default\") for class(es) cyclist",
     "classwise_bbox_handler_config{"),
    ("inference", 'confidence_model: "aggregate_cov"', 'confidence_model: "max_cov"',
     f"{HANDLER}[0].value.confidence_model", "aggregate_cov or mean_cov"),
    ("inference", 'confidence_model: "aggregate_cov"\n      output_map: "car"\n      confidence_threshold: 0.9',
     'confidence_model: "mean_cov"\n      output_map: "car"\n      confidence_threshold: 1.9',
     f"{HANDLER}[0].value.confidence_threshold", "in [0, 1]", "confidence_threshold"),
    ("inference", "confidence_threshold: 0.9", "confidence_threshold: 0.0", f"{HANDLER}[0].value.confidence_threshold",
     "> 0"),
    ("inference", "G: 255", "G: 256", f"{HANDLER}[0].value.bbox_color.G", "in [0, 255]"),
    ("inference", "dbscan_eps: 0.3", "dbscan_eps: 3", f"{HANDLER}[0].value.clustering_config.dbscan_eps", "in [0, 1]"),
]

ALL_CASES = COMMON_CASES + BACKBONE_CASES + ANCHOR_CASES + DETECTNET_CASES + INFERENCE_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[f"{c[0]}:{c[3]}:{c[4]}" for c in ALL_CASES])
def test_rule(case: tuple[Any, ...]) -> None:
    base, old, new, field, fragment, *at = case
    expect_error(base, old, new, field, fragment or "", at[0] if at else None)


def test_retinanet_n_layers_is_checked_as_nlayers() -> None:
    text = sample("retinanet", "000_7.8_full.txt").replace('arch: "resnet"', 'arch: "mobilenet_v1"')
    spec = load_spec_text(text, retinanet_pb2.Experiment, name="spec.txt")
    with pytest.raises(SpecError, match="mobilenet_v1 has no n_layers setting"):
        validate_retinanet(spec)
    assert spec.message.retinanet_config.n_layers == 18  # validation does not modify the spec


def test_squeezenet_and_darknet_are_detectnet_v2_backbones() -> None:
    for arch in ("squeezenet", "darknet"):
        text = DETECTNET_V2.replace('arch: "resnet"', f'arch: "{arch}"').replace("num_layers: 18", "num_layers: 19")
        text = text.replace("all_projections: True", "all_projections: False")
        validate_detectnet_v2(load_spec_text(text, detectnet_v2_pb2.Experiment, name="spec.txt"))


def test_validation_does_not_use_assert() -> None:
    # Rules must hold under python -O: no assert statements in the validators or helpers.
    import libtlt.archs
    import libtlt.spec

    roots = [Path(libtlt.archs.__file__).parent, Path(libtlt.spec.__file__).parent]
    offenders = [str(p) for root in roots for p in root.rglob("*.py")
                 if not p.name.endswith("_pb2.py") and any(line.lstrip().startswith("assert ")
                                                          for line in p.read_text().splitlines())]
    assert not offenders
