"""One test per validation rule of classification, FasterRCNN and MaskRCNN specs.

Each case edits a minimal valid spec and expects a ``SpecError`` naming the field and pointing at the
line where the offending setting is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from libtlt.archs.classification import validation as cls_validation
from libtlt.archs.faster_rcnn import validation as frcnn_validation
from libtlt.archs.mask_rcnn import validation as mrcnn_validation
from libtlt.errors import SpecError
from libtlt.spec import load_spec_text
from libtlt.spec.protos import classification_pb2, faster_rcnn_pb2, mask_rcnn_pb2


def _line_of(text: str, marker: str | tuple[str, int]) -> int:
    """The line of the first (or, for ``(text, n)``, the n-th) line containing the marker text."""
    wanted, nth = (marker, 1) if isinstance(marker, str) else marker
    for number, line in enumerate(text.splitlines(), start=1):
        if wanted in line:
            nth -= 1
            if nth == 0:
                return number
    raise AssertionError(f"{marker!r} not in the spec")


def _edit(text: str, edits: list[tuple[str, str]]) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _expect_error(text: str, message_type: Any, validate: Callable[[Any], None], field: str,
                  marker: str | tuple[str, int] | None,
                  match: str, *, syntax: str = "text") -> None:
    name = "spec.yaml" if syntax == "yaml" else "spec.txt"
    spec = load_spec_text(text, message_type, name=name, syntax=syntax)
    with pytest.raises(SpecError) as err:
        validate(spec)
    assert err.value.field == field
    assert err.value.location is not None
    if marker is not None:
        assert err.value.location.startswith(f"{name}:{_line_of(text, marker)}:"), err.value.location
    else:
        assert err.value.location.startswith(name)
    assert re.search(match, err.value.message), err.value.message
    assert err.value.one_line().startswith(err.value.location)


# ----------------------------------------------------------------------------------- classification

CLS = """\
model_config {
  arch: "resnet"
  n_layers: 18
  freeze_blocks: 0
  freeze_blocks: 1
  dropout: 0.0
  input_image_size: "3,224,224"
}
train_config {
  optimizer: "sgd"
  batch_size_per_gpu: 32
  n_epochs: 10
  n_workers: 4
  label_smoothing: 0.1
  reg_config {
    type: "L2"
    scope: "Conv2D,Dense"
    weight_decay: 0.00005
  }
  lr_config {
    scheduler: "step"
    learning_rate: 0.006
    step_size: 10
    gamma: 0.1
  }
}
eval_config {
  top_k: 3
  batch_size: 16
  n_workers: 2
  conf_threshold: 0.5
}
"""

CLS_SOFT_ANNEAL = _edit(CLS, [("""    scheduler: "step"
    learning_rate: 0.006
    step_size: 10
    gamma: 0.1
""", """    scheduler: "soft_anneal"
    learning_rate: 0.005
    soft_start: 0.056
    annealing_points: "0.3, 0.6, 0.8"
    annealing_divider: 10
""")])

CLS_YAML = """\
results_dir: '/results'
key: 'nvidia_tlt'
data:
  train_dataset_path: '/data/train'
  val_dataset_path: '/data/val'
  preprocess_mode: 'torch'
  image_mean: [103.9, 116.8, 123.7]
augment:
  mixup_alpha: 0.2
model:
  arch: 'efficientnet-b0'
  freeze_blocks: [0, 7]
  input_image_size: [3, 256, 256]
train:
  batch_size_per_gpu: 64
  num_epochs: 80
  optim_config:
    optimizer: 'adam'
  lr_config:
    scheduler: 'cosine'
    learning_rate: 0.05
    soft_start: 0.05
    min_lr_ratio: 0.001
  bn_config:
    momentum: 0.9
evaluate:
  dataset_path: '/data/test'
  top_k: 5
prune:
  normalizer: 'max'
  equalization_criterion: 'union'
export:
  data_type: 'int8'
"""


@pytest.mark.parametrize("text", [CLS, CLS_SOFT_ANNEAL, CLS.replace('"3,224,224"', '"1, 16, 16"')])
def test_classification_minimal_valid_spec_passes(text: str) -> None:
    cls_validation.validate(load_spec_text(text, classification_pb2.Experiment))


def test_classification_minimal_valid_yaml_spec_passes() -> None:
    cls_validation.validate(load_spec_text(CLS_YAML, classification_pb2.Experiment, syntax="yaml"))


@pytest.mark.parametrize(("base", "edits", "field", "marker", "match"), [
    pytest.param(CLS, [('arch: "resnet"\n  n_layers: 18', "n_layers: 18")], "model_config.arch", "model_config",
                 "arch is required", id="arch-required"),
    pytest.param(CLS, [('"resnet"', '"resnt"')], "model_config.arch", "resnt", "did you mean 'resnet'",
                 id="arch-unknown"),
    pytest.param(CLS, [("n_layers: 18", "n_layers: 20")], "model_config.n_layers", "n_layers",
                 "resnet supports n_layers 10, 18, 34, 50, 101, got 20", id="n-layers-resnet"),
    pytest.param(CLS, [('"resnet"', '"vgg"'), ("freeze_blocks: 0", "freeze_blocks: 1")], "model_config.n_layers",
                 "n_layers", "vgg supports n_layers 16, 19", id="n-layers-vgg"),
    pytest.param(CLS, [('"resnet"', '"darknet"'), ("n_layers: 18", "n_layers: 50")], "model_config.n_layers",
                 "n_layers", "darknet supports n_layers 19, 53", id="n-layers-darknet"),
    pytest.param(CLS, [('  input_image_size: "3,224,224"\n', "")], "model_config.input_image_size",
                 "model_config", "input_image_size is required", id="input-size-required"),
    pytest.param(CLS, [('"3,224,224"', '"3,224"')], "model_config.input_image_size", "input_image_size",
                 "three integers", id="input-size-malformed"),
    pytest.param(CLS, [('"3,224,224"', '"3,224,2x4"')], "model_config.input_image_size", "input_image_size",
                 "three integers", id="input-size-not-integer"),
    pytest.param(CLS, [('"3,224,224"', '"2,224,224"')], "model_config.input_image_size", "input_image_size",
                 "C must be 1 or 3", id="input-channels"),
    pytest.param(CLS, [('"3,224,224"', '"3,224,15"')], "model_config.input_image_size", "input_image_size",
                 ">= 16", id="input-too-small"),
    pytest.param(CLS, [("freeze_blocks: 1", "freeze_blocks: 5")], "model_config.freeze_blocks[1]",
                 "freeze_blocks: 5", "valid for freezing are 0-4, got 5", id="freeze-blocks-resnet"),
    pytest.param(CLS, [('"resnet"', '"vgg"'), ("n_layers: 18", "n_layers: 16")], "model_config.freeze_blocks[0]",
                 "freeze_blocks: 0", "valid for freezing are 1-5, got 0", id="freeze-blocks-vgg"),
    pytest.param(CLS, [("dropout: 0.0", "dropout: 1.0")], "model_config.dropout", "dropout", r"\[0, 1\)",
                 id="dropout"),
    pytest.param(CLS, [('optimizer: "sgd"', 'optimizer: "sdg"')], "train_config.optimizer", "optimizer",
                 "did you mean 'sgd'", id="optimizer"),
    pytest.param(CLS, [("batch_size_per_gpu: 32", "batch_size_per_gpu: 0")], "train_config.batch_size_per_gpu",
                 "batch_size_per_gpu", "must be > 0, got 0", id="batch-size"),
    pytest.param(CLS, [("n_epochs: 10", "n_epochs: 0")], "train_config.n_epochs", "n_epochs", "must be > 0",
                 id="epochs"),
    pytest.param(CLS, [("label_smoothing: 0.1", "label_smoothing: 1.5")], "train_config.label_smoothing",
                 "label_smoothing", r"\[0, 1\)", id="label-smoothing"),
    pytest.param(CLS, [('type: "L2"', 'type: "L3"')], "train_config.reg_config.type", 'type: "L3"',
                 "valid: L1, L2, None", id="reg-type"),
    pytest.param(CLS, [("weight_decay: 0.00005", "weight_decay: 0.0")], "train_config.reg_config.weight_decay",
                 "weight_decay", "needs weight_decay > 0", id="reg-weight-decay"),
    pytest.param(CLS, [('scheduler: "step"', 'scheduler: "exponential"')], "train_config.lr_config.scheduler",
                 "scheduler", "valid: step, soft_anneal, cosine", id="scheduler-name"),
    pytest.param(CLS, [('    scheduler: "step"\n', "")], "train_config.lr_config.scheduler", "lr_config",
                 "scheduler is required", id="scheduler-required"),
    pytest.param(CLS, [("    gamma: 0.1\n", "")], "train_config.lr_config.scheduler", "scheduler",
                 "step scheduler needs gamma", id="step-needs-gamma"),
    pytest.param(CLS_SOFT_ANNEAL, [('    annealing_points: "0.3, 0.6, 0.8"\n', "")],
                 "train_config.lr_config.scheduler", "scheduler", "soft_anneal scheduler needs annealing_points",
                 id="soft-anneal-needs-points"),
    pytest.param(CLS, [("learning_rate: 0.006", "learning_rate: 0.0")], "train_config.lr_config.learning_rate",
                 "learning_rate", "must be > 0", id="learning-rate"),
    pytest.param(CLS, [("gamma: 0.1", "gamma: 1.5")], "train_config.lr_config.gamma", "gamma", r"\(0, 1\)",
                 id="gamma"),
    pytest.param(CLS, [("step_size: 10", "step_size: 100")], "train_config.lr_config.step_size", "step_size",
                 r"\(0, 100\)", id="step-size"),
    pytest.param(CLS_SOFT_ANNEAL, [("soft_start: 0.056", "soft_start: 1.2")], "train_config.lr_config.soft_start",
                 "soft_start", r"\(0, 1\)", id="soft-start"),
    pytest.param(CLS_SOFT_ANNEAL, [('"0.3, 0.6, 0.8"', '"0.3, 0.9, 0.8"')],
                 "train_config.lr_config.annealing_points", "annealing_points", "increasing order",
                 id="annealing-order"),
    pytest.param(CLS_SOFT_ANNEAL, [('"0.3, 0.6, 0.8"', '"0.3, 0.6, 1.8"')],
                 "train_config.lr_config.annealing_points", "annealing_points", r"in \(0, 1\)",
                 id="annealing-range"),
    pytest.param(CLS_SOFT_ANNEAL, [('"0.3, 0.6, 0.8"', '"0.3, late"')],
                 "train_config.lr_config.annealing_points", "annealing_points", "'late'", id="annealing-number"),
    pytest.param(CLS_SOFT_ANNEAL, [("annealing_divider: 10", "annealing_divider: 1")],
                 "train_config.lr_config.annealing_divider", "annealing_divider", "> 1.0", id="annealing-divider"),
    pytest.param(CLS, [("top_k: 3", "top_k: 2")], "eval_config.top_k", "top_k", "one of 1, 3, 5", id="top-k"),
    pytest.param(CLS, [("batch_size: 16", "batch_size: 0")], "eval_config.batch_size", "batch_size: 0",
                 "must be > 0", id="eval-batch-size"),
    pytest.param(CLS, [("conf_threshold: 0.5", "conf_threshold: 2")], "eval_config.conf_threshold",
                 "conf_threshold", r"\[0, 1\]", id="conf-threshold"),
    pytest.param(CLS, [("eval_config {", 'model { arch: "vgg" }\neval_config {')], "model", "model {",
                 "same section", id="both-layouts"),
    pytest.param(CLS, [("n_epochs: 10", "n_epochs: 10\n  num_epochs: 10")], "train_config.num_epochs",
                 "num_epochs", "same setting", id="epochs-both-names"),
    pytest.param(CLS, [("n_epochs: 10", 'n_epochs: 10\n  optim_config { optimizer: "adam" }')],
                 "train_config.optim_config", "optim_config", "write only one", id="optimizer-both-names"),
])
def test_classification_rule(base: str, edits: list[tuple[str, str]], field: str, marker: str, match: str) -> None:
    _expect_error(_edit(base, edits), classification_pb2.Experiment, cls_validation.validate, field, marker, match)


@pytest.mark.parametrize(("edits", "field", "marker", "match"), [
    pytest.param([("'efficientnet-b0'", "'efficientnet-b9'")], "model.arch", "arch", "valid: resnet",
                 id="arch-unknown"),
    pytest.param([("[0, 7]", "[0, 8]")], "model.freeze_blocks[1]", "freeze_blocks", "0-7, got 8",
                 id="freeze-blocks-efficientnet"),
    pytest.param([("[3, 256, 256]", "[4, 256, 256]")], "model.input_image_size", "input_image_size",
                 "C must be 1 or 3", id="input-channels"),
    pytest.param([("optimizer: 'adam'", "optimizer: 'adamw'")], "train.optim_config.optimizer", "adamw",
                 "did you mean 'adam'", id="optimizer"),
    pytest.param([("min_lr_ratio: 0.001", "min_lr_ratio: 1.0")], "train.lr_config.min_lr_ratio", "min_lr_ratio",
                 r"\[0, 1\)", id="min-lr-ratio"),
    pytest.param([("  bn_config:\n    momentum: 0.9", "  bn_config:\n    momentum: 1.9")],
                 "train.bn_config.momentum", "momentum: 1.9", r"\[0, 1\)", id="bn-momentum"),
    pytest.param([("num_epochs: 80", "num_epochs: 0")], "train.num_epochs", "num_epochs", "must be > 0",
                 id="epochs"),
    pytest.param([("'torch'", "'pytorch'")], "data.preprocess_mode", "preprocess_mode", "did you mean 'torch'",
                 id="preprocess-mode"),
    pytest.param([("[103.9, 116.8, 123.7]", "[103.9, 116.8]")], "data.image_mean", "image_mean",
                 "one value per input channel", id="image-mean"),
    pytest.param([("mixup_alpha: 0.2", "mixup_alpha: 1.2")], "augment.mixup_alpha", "mixup_alpha", r"\[0, 1\)",
                 id="mixup-alpha"),
    pytest.param([("top_k: 5", "top_k: 4")], "evaluate.top_k", "top_k", "one of 1, 3, 5", id="top-k"),
    pytest.param([("normalizer: 'max'", "normalizer: 'min'")], "prune.normalizer", "normalizer", "valid: max, L2",
                 id="prune-normalizer"),
    pytest.param([("'union'", "'onion'")], "prune.equalization_criterion", "equalization_criterion",
                 "did you mean 'union'", id="prune-criterion"),
    pytest.param([("data_type: 'int8'", "data_type: 'int4'")], "export.data_type", "data_type", "fp32, fp16, int8",
                 id="export-data-type"),
    pytest.param([("  dataset_path: '/data/test'", "  dataset_path: '/data/test'\n  eval_dataset_path: '/t'")],
                 "evaluate.dataset_path", "  dataset_path", "same setting", id="eval-path-both-names"),
    pytest.param([("train:\n", "train:\n  train_dataset_path: '/other'\n")], "data.train_dataset_path",
                 "train_dataset_path", "set in train", id="dataset-path-twice"),
    pytest.param([("model:\n", "model_config:\n  arch: 'resnet'\nmodel:\n")], "model", "model:", "same section",
                 id="both-layouts"),
])
def test_classification_yaml_rule(edits: list[tuple[str, str]], field: str, marker: str, match: str) -> None:
    _expect_error(_edit(CLS_YAML, edits), classification_pb2.Experiment, cls_validation.validate, field, marker,
                  match, syntax="yaml")


def test_classification_model_section_required() -> None:
    text = CLS.split("train_config {", 1)[1]
    _expect_error("train_config {" + text, classification_pb2.Experiment, cls_validation.validate,
                  "model_config", None, "no model_config")


def test_classification_unchecked_freeze_blocks_for_undocumented_backbones() -> None:
    text = _edit(CLS, [('"resnet"', '"squeezenet"'), ("freeze_blocks: 1", "freeze_blocks: 9")])
    cls_validation.validate(load_spec_text(text, classification_pb2.Experiment))


# --------------------------------------------------------------------------------------- FasterRCNN

FRCNN = """\
model_config {
  input_image_config {
    image_type: RGB
    image_channel_order: 'bgr'
    size_height_width {
      height: 384
      width: 1248
    }
    image_channel_mean {
      key: 'b'
      value: 103.939
    }
    image_channel_mean {
      key: 'g'
      value: 116.779
    }
    image_channel_mean {
      key: 'r'
      value: 123.68
    }
    image_scaling_factor: 1.0
  }
  arch: "resnet:18"
  anchor_box_config {
    scale: 64.0
    scale: 128.0
    ratio: 1.0
    ratio: 0.5
  }
  freeze_blocks: 0
  rpn_stride: 16
  roi_pooling_config {
    pool_size: 7
  }
  dropout_rate: 0.0
}
dataset_config {
  data_sources: {
    tfrecords_path: "/tfrecords/kitti*"
    image_directory_path: "/data/training"
  }
  target_class_mapping {
    key: 'car'
    value: 'car'
  }
  target_class_mapping {
    key: 'van'
    value: 'car'
  }
  validation_fold: 0
}
augmentation_config {
  preprocessing {
    output_image_width: 1248
    output_image_height: 384
    output_image_channel: 3
  }
}
training_config {
  batch_size_per_gpu: 8
  num_epochs: 12
  pretrained_weights: "/models/resnet18.hdf5"
  output_model: "/results/frcnn.tlt"
  rpn_min_overlap: 0.3
  rpn_max_overlap: 0.7
  classifier_min_overlap: 0.0
  classifier_max_overlap: 0.5
  std_scaling: 1.0
  classifier_regr_std {
    key: 'x'
    value: 10.0
  }
  classifier_regr_std {
    key: 'y'
    value: 10.0
  }
  classifier_regr_std {
    key: 'w'
    value: 5.0
  }
  classifier_regr_std {
    key: 'h'
    value: 5.0
  }
  rpn_pre_nms_top_N: 12000
  rpn_nms_max_boxes: 2000
  rpn_nms_overlap_threshold: 0.7
  regularizer {
    type: L2
    weight: 1e-4
  }
  optimizer {
    sgd {
      lr: 0.02
      momentum: 0.9
    }
  }
  learning_rate {
    soft_start {
      base_lr: 0.02
      start_lr: 0.002
      soft_start: 0.1
      annealing_points: 0.8
      annealing_points: 0.9
      annealing_divider: 10.0
    }
  }
  lambda_rpn_regr: 1.0
}
inference_config {
  batch_size: 1
  rpn_pre_nms_top_N: 6000
  rpn_nms_max_boxes: 300
  bbox_visualize_threshold: 0.6
  trt_inference {
    trt_engine: '/results/trt.int8.engine'
  }
}
evaluation_config {
  rpn_pre_nms_top_N: 6000
  rpn_nms_max_boxes: 300
  object_confidence_thres: 0.0001
  gt_matching_iou_threshold: 0.5
}
"""

FRCNN_000_LAYOUT = _edit(FRCNN, [
    ("model_config {", "network_config {"), ('arch: "resnet:18"', 'feature_extractor: "resnet:18"'),
    ("  learning_rate {", "  lr_scheduler {"),
    ("  regularizer {\n    type: L2\n    weight: 1e-4", "  reg_config {\n    reg_type: 'L2'\n    weight_decay: 1e-4"),
])

FRCNN_DYNAMIC = _edit(FRCNN, [("""    size_height_width {
      height: 384
      width: 1248
    }""", """    size_min {
      min: 600
    }"""), ("batch_size_per_gpu: 8", "batch_size_per_gpu: 1"),
    ("    output_image_width: 1248\n    output_image_height: 384\n", "    output_image_min: 600\n")])

FRCNN_STEP = _edit(FRCNN, [("""    soft_start {
      base_lr: 0.02
      start_lr: 0.002
      soft_start: 0.1
      annealing_points: 0.8
      annealing_points: 0.9
      annealing_divider: 10.0
    }""", """    step {
      base_lr: 0.00016
      gamma: 1.0
      step_size: 30
    }""")])

FRCNN_GRAY = _edit(FRCNN, [("image_type: RGB", "image_type: GRAYSCALE"), ("'bgr'", "'l'"),
                           ("""    image_channel_mean {
      key: 'b'
      value: 103.939
    }
    image_channel_mean {
      key: 'g'
      value: 116.779
    }
    image_channel_mean {
      key: 'r'""", """    image_channel_mean {
      key: 'l'"""), ("output_image_channel: 3", "output_image_channel: 1")])


@pytest.mark.parametrize("text", [FRCNN, FRCNN_000_LAYOUT, FRCNN_DYNAMIC, FRCNN_STEP, FRCNN_GRAY],
                         ids=["002", "000-layout", "dynamic-shape", "step-lr", "grayscale"])
def test_faster_rcnn_minimal_valid_spec_passes(text: str) -> None:
    frcnn_validation.validate(load_spec_text(text, faster_rcnn_pb2.Experiment))


@pytest.mark.parametrize(("base", "edits", "field", "marker", "match"), [
    pytest.param(FRCNN, [('  arch: "resnet:18"\n', "")], "model_config.feature_extractor", "model_config",
                 "backbone is required", id="backbone-required"),
    pytest.param(FRCNN, [('"resnet:18"', '"resnet:20"')], "model_config.arch", "arch", "did you mean 'resnet:",
                 id="backbone-unknown"),
    pytest.param(FRCNN, [('arch: "resnet:18"', 'arch: "squeezenet"')], "model_config.arch", "arch",
                 "valid: resnet:10", id="backbone-squeezenet"),
    pytest.param(FRCNN, [('  arch: "resnet:18"', '  arch: "resnet:18"\n  feature_extractor: "resnet:18"')],
                 "model_config.arch", "arch", "same setting", id="backbone-both-names"),
    pytest.param(FRCNN, [("dataset_config {", 'network_config {\n  arch: "vgg:16"\n}\ndataset_config {')],
                 "model_config", "model_config", "same section", id="model-both-layouts"),
    pytest.param(FRCNN, [("training_config {", "training_config {\n  kitti_data_config {\n  }")],
                 "dataset_config", "dataset_config", "same section", id="dataset-both-layouts"),
    pytest.param(FRCNN, [("  dropout_rate: 0.0", "  use_bias: true\n  conv_bn_share_bias: true")],
                 "model_config.use_bias", "use_bias", "same setting", id="bias-both-names"),
    pytest.param(FRCNN, [("  lambda_rpn_regr: 1.0", "  lambda_rpn_regr: 1.0\n  reg_config {\n  }")],
                 "training_config.regularizer", "regularizer", "same setting", id="regularizer-both-names"),
    pytest.param(FRCNN, [("""    size_height_width {
      height: 384
      width: 1248
    }
""", "")], "model_config.input_image_config", "input_image_config", "exactly one of size_height_width",
                 id="size-required"),
    pytest.param(FRCNN, [("      width: 1248\n    }", "      width: 1248\n    }\n    size_min {\n      min: 600\n    }")],
                 "model_config.input_image_config", "input_image_config", "exactly one", id="size-both"),
    pytest.param(FRCNN, [("height: 384", "height: 128")], "model_config.input_image_config.size_height_width",
                 "size_height_width", ">= 160, got 128x1248", id="size-min-160"),
    pytest.param(FRCNN_DYNAMIC, [("min: 600", "min: 100")], "model_config.input_image_config.size_min.min",
                 "min: 100", ">= 160", id="dynamic-size-min-160"),
    pytest.param(FRCNN, [("'bgr'", "'brg'")], "model_config.input_image_config.image_channel_order", "brg",
                 "RGB images take image_channel_order 'rgb' or 'bgr'", id="channel-order-rgb"),
    pytest.param(FRCNN_GRAY, [("'l'\n    size", "'bgr'\n    size")],
                 "model_config.input_image_config.image_channel_order", "'bgr'", "GRAYSCALE images take",
                 id="channel-order-gray"),
    pytest.param(FRCNN, [("key: 'g'", "key: 'x'")], "model_config.input_image_config.image_channel_mean[1].key",
                 "key: 'x'", "not one of the image's channels", id="mean-unknown-channel"),
    pytest.param(FRCNN, [("key: 'g'", "key: 'b'")], "model_config.input_image_config.image_channel_mean[1].key",
                 ("key: 'b'", 2), "given twice", id="mean-duplicate"),
    pytest.param(FRCNN, [("""    image_channel_mean {
      key: 'r'
      value: 123.68
    }
""", "")], "model_config.input_image_config.image_channel_mean", "image_channel_mean", "channel\\(s\\) r",
                 id="mean-missing-channel"),
    pytest.param(FRCNN, [("value: 116.779", "value: -1.0")],
                 "model_config.input_image_config.image_channel_mean[1].value", "value: -1.0", ">= 0",
                 id="mean-negative"),
    pytest.param(FRCNN, [("image_scaling_factor: 1.0", "image_scaling_factor: 0.0")],
                 "model_config.input_image_config.image_scaling_factor", "image_scaling_factor", "> 0",
                 id="scaling-factor"),
    pytest.param(FRCNN, [("    ratio: 1.0\n    ratio: 0.5\n", "")], "model_config.anchor_box_config",
                 "anchor_box_config", "at least one scale and one ratio", id="anchors-required"),
    pytest.param(FRCNN, [("scale: 128.0", "scale: -128.0")], "model_config.anchor_box_config.scale[1]",
                 "scale: -128.0", "must be > 0", id="anchor-scale"),
    pytest.param(FRCNN, [("ratio: 0.5", "ratio: 0")], "model_config.anchor_box_config.ratio[1]", "ratio: 0",
                 "must be > 0", id="anchor-ratio"),
    pytest.param(FRCNN, [("rpn_stride: 16", "rpn_stride: 8")], "model_config.rpn_stride", "rpn_stride",
                 "fixed at 16", id="rpn-stride"),
    pytest.param(FRCNN, [('"resnet:18"', '"vgg:16"')], "model_config.freeze_blocks[0]", "freeze_blocks",
                 "1-5, got 0", id="freeze-blocks-vgg"),
    pytest.param(FRCNN, [("freeze_blocks: 0", "freeze_blocks: 5")], "model_config.freeze_blocks[0]",
                 "freeze_blocks", "0-4, got 5", id="freeze-blocks-resnet"),
    pytest.param(FRCNN, [("pool_size: 7", "pool_size: 0")], "model_config.roi_pooling_config.pool_size",
                 "pool_size", "must be > 0", id="pool-size"),
    pytest.param(FRCNN, [("dropout_rate: 0.0", "dropout_rate: 1.0")], "model_config.dropout_rate", "dropout_rate",
                 r"\[0, 1\)", id="dropout-rate"),
    pytest.param(FRCNN, [("dropout_rate: 0.0", "activation {\n    activation_type: 'tanh'\n  }")],
                 "model_config.activation.activation_type", "tanh", "valid: relu, swish", id="activation"),
    pytest.param(FRCNN, [("output_image_width: 1248", "output_image_width: 960")],
                 "augmentation_config.preprocessing.output_image_width", "output_image_width",
                 "must equal the model input size_height_width \\(1248\\)", id="augmentation-width"),
    pytest.param(FRCNN, [("output_image_channel: 3", "output_image_channel: 1")],
                 "augmentation_config.preprocessing.output_image_channel", "output_image_channel", "3 channel",
                 id="augmentation-channels"),
    pytest.param(FRCNN, [("validation_fold: 0", 'validation_fold: 0\n  validation_data_source: {\n'
                                                '    tfrecords_path: "/val*"\n  }')],
                 "dataset_config.validation_data_source", "validation_data_source", "exclusive",
                 id="validation-fold-and-source"),
    pytest.param(FRCNN, [("key: 'van'", "key: 'car'")], "dataset_config.target_class_mapping[1].key",
                 ("key: 'car'", 2), "mapped twice", id="class-mapping-duplicate"),
    pytest.param(FRCNN, [("batch_size_per_gpu: 8", "batch_size_per_gpu: 0")], "training_config.batch_size_per_gpu",
                 "batch_size_per_gpu", "must be > 0, got 0", id="batch-size"),
    pytest.param(FRCNN, [("num_epochs: 12", "num_epochs: 0")], "training_config.num_epochs", "num_epochs",
                 "must be > 0", id="epochs"),
    pytest.param(FRCNN_DYNAMIC, [("batch_size_per_gpu: 1", "batch_size_per_gpu: 4")],
                 "training_config.batch_size_per_gpu", "batch_size_per_gpu", "batch size 1", id="dynamic-batch"),
    pytest.param(FRCNN, [('  output_model: "/results/frcnn.tlt"\n', "")], "training_config.output_model",
                 "training_config", "cannot be empty", id="output-model"),
    pytest.param(FRCNN, [("resnet18.hdf5", "resnet18.pth")], "training_config.pretrained_weights",
                 "pretrained_weights", ".h5, .hdf5, .tlt", id="pretrained-weights"),
    pytest.param(FRCNN, [("rpn_min_overlap: 0.3", "rpn_min_overlap: 1.0")], "training_config.rpn_min_overlap",
                 "rpn_min_overlap", r"\(0, 1\)", id="rpn-min-overlap"),
    pytest.param(FRCNN, [("rpn_max_overlap: 0.7", "rpn_max_overlap: 0.2")], "training_config.rpn_max_overlap",
                 "rpn_max_overlap", "greater than rpn_min_overlap", id="rpn-max-overlap"),
    pytest.param(FRCNN, [("classifier_min_overlap: 0.0", "classifier_min_overlap: -0.1")],
                 "training_config.classifier_min_overlap", "classifier_min_overlap", r"\[0, 1\)",
                 id="classifier-min-overlap"),
    pytest.param(FRCNN, [("classifier_min_overlap: 0.0", "classifier_min_overlap: 0.6")],
                 "training_config.classifier_max_overlap", "classifier_max_overlap",
                 "greater than classifier_min_overlap", id="classifier-max-overlap"),
    pytest.param(FRCNN, [("std_scaling: 1.0", "std_scaling: 0.0")], "training_config.std_scaling", "std_scaling",
                 "must be > 0", id="std-scaling"),
    pytest.param(FRCNN, [("value: 'car'\n  }\n  target_class_mapping {\n    key: 'van'",
                          "value: 'Background'\n  }\n  target_class_mapping {\n    key: 'van'")],
                 "dataset_config.target_class_mapping[0].value", "value: 'Background'", "own last class",
                 id="class-mapping-background"),
    pytest.param(FRCNN, [("lambda_rpn_regr: 1.0", "lambda_rpn_regr: 0.0")], "training_config.lambda_rpn_regr",
                 "lambda_rpn_regr", "must be > 0", id="loss-weight"),
    pytest.param(FRCNN, [("key: 'w'", "key: 'z'")], "training_config.classifier_regr_std[2].key", "key: 'z'",
                 "valid: x, y, w, h", id="regr-std-key"),
    pytest.param(FRCNN, [("key: 'w'", "key: 'x'")], "training_config.classifier_regr_std[2].key", ("key: 'x'", 2),
                 "given twice", id="regr-std-duplicate"),
    pytest.param(FRCNN, [("""  classifier_regr_std {
    key: 'h'
    value: 5.0
  }
""", "")], "training_config.classifier_regr_std", "classifier_regr_std", "no scaling factor for h",
                 id="regr-std-missing"),
    pytest.param(FRCNN, [("value: 10.0", "value: 0.0")], "training_config.classifier_regr_std[0].value",
                 "value: 0.0", "must be > 0", id="regr-std-value"),
    pytest.param(FRCNN, [("rpn_nms_max_boxes: 2000", "rpn_nms_max_boxes: 20000")],
                 "training_config.rpn_nms_max_boxes", "rpn_nms_max_boxes", "no greater than rpn_pre_nms_top_N",
                 id="rpn-nms-max-boxes"),
    pytest.param(FRCNN, [("rpn_nms_overlap_threshold: 0.7", "rpn_nms_overlap_threshold: 1.7")],
                 "training_config.rpn_nms_overlap_threshold", "rpn_nms_overlap_threshold", r"\(0, 1\)",
                 id="rpn-nms-threshold"),
    pytest.param(FRCNN_000_LAYOUT, [("reg_type: 'L2'", "reg_type: 'L4'")], "training_config.reg_config.reg_type",
                 "reg_type", "valid: L1, L2, none", id="reg-type"),
    pytest.param(FRCNN_000_LAYOUT, [("weight_decay: 1e-4", "weight_decay: 0")],
                 "training_config.reg_config.weight_decay", "weight_decay", "> 0 for an L2", id="reg-weight-decay"),
    pytest.param(FRCNN, [("weight: 1e-4", "weight: -1e-4")], "training_config.regularizer.weight", "weight:",
                 ">= 0", id="regularizer-weight"),
    pytest.param(FRCNN, [("""  optimizer {
    sgd {
      lr: 0.02
      momentum: 0.9
    }
  }
""", "")], "training_config.optimizer", "training_config", "choose an optimizer", id="optimizer-required"),
    pytest.param(FRCNN_STEP, [("gamma: 1.0", "gamma: 0.0")], "training_config.learning_rate.step.gamma", "gamma",
                 r"\(0, 1\]", id="step-gamma"),
    pytest.param(FRCNN_STEP, [("step_size: 30", "step_size: 0")], "training_config.learning_rate.step.step_size",
                 "step_size", r"\(0, 100\]", id="step-size"),
    pytest.param(FRCNN_STEP, [("base_lr: 0.00016", "base_lr: 0.0")], "training_config.learning_rate.step.base_lr",
                 "base_lr", "must be > 0", id="step-base-lr"),
    pytest.param(FRCNN, [("start_lr: 0.002", "start_lr: 0.2")], "training_config.learning_rate.soft_start.start_lr",
                 "start_lr", "smaller than base_lr", id="soft-start-start-lr"),
    pytest.param(FRCNN, [("soft_start: 0.1", "soft_start: 1.1")],
                 "training_config.learning_rate.soft_start.soft_start", "soft_start: 1.1", r"\(0, 1\)",
                 id="soft-start-fraction"),
    pytest.param(FRCNN, [("annealing_points: 0.9", "annealing_points: 0.5")],
                 "training_config.learning_rate.soft_start.annealing_points", "annealing_points",
                 "increasing order", id="annealing-order"),
    pytest.param(FRCNN, [("annealing_points: 0.9", "annealing_points: 1.5")],
                 "training_config.learning_rate.soft_start.annealing_points[1]", "annealing_points: 1.5",
                 r"\(0, 1\)", id="annealing-range"),
    pytest.param(FRCNN, [("annealing_divider: 10.0", "annealing_divider: 0.5")],
                 "training_config.learning_rate.soft_start.annealing_divider", "annealing_divider", "> 1.0",
                 id="annealing-divider"),
    pytest.param(FRCNN, [("lambda_rpn_regr: 1.0", "lambda_rpn_regr: 1.0\n  model_parallelism: 0.3\n"
                                                  "  model_parallelism: 0.6")],
                 "training_config.model_parallelism", "model_parallelism", "add up to 1", id="model-parallelism"),
    pytest.param(FRCNN, [("bbox_visualize_threshold: 0.6", "bbox_visualize_threshold: 1.6")],
                 "inference_config.bbox_visualize_threshold", "bbox_visualize_threshold", r"\(0, 1\)",
                 id="inference-visualize-threshold"),
    pytest.param(FRCNN, [("rpn_nms_max_boxes: 300", "rpn_nms_max_boxes: 7000")],
                 "inference_config.rpn_nms_max_boxes", "rpn_nms_max_boxes: 7000", "no greater than",
                 id="inference-rpn-boxes"),
    pytest.param(FRCNN_DYNAMIC, [("  batch_size: 1\n", "  batch_size: 2\n")], "inference_config.batch_size",
                 "batch_size: 2", "batch size 1", id="dynamic-inference-batch"),
    pytest.param(FRCNN, [("    trt_engine: '/results/trt.int8.engine'", "    etlt_model {\n      model: '/m.etlt'\n"
                                                                         "    }\n    trt_data_type: 'int8'")],
                 "inference_config.trt_inference.etlt_model", "etlt_model", "needs calibration_cache",
                 id="trt-int8-cache"),
    pytest.param(FRCNN, [("    trt_engine: '/results/trt.int8.engine'", "    trt_engine: '/e'\n"
                                                                         "    trt_data_type: 'fp8'")],
                 "inference_config.trt_inference.trt_data_type", "trt_data_type", "valid: fp32, fp16, int8",
                 id="trt-data-type"),
    pytest.param(FRCNN, [("    trt_engine: '/results/trt.int8.engine'\n", "")], "inference_config.trt_inference",
                 "trt_inference", "trt_engine or etlt_model", id="trt-model-required"),
    pytest.param(FRCNN, [("object_confidence_thres: 0.0001", "object_confidence_thres: 0.0")],
                 "evaluation_config.object_confidence_thres", "object_confidence_thres", r"\(0, 1\)",
                 id="evaluation-confidence"),
    pytest.param(FRCNN, [("gt_matching_iou_threshold: 0.5", "gt_matching_iou_threshold: 1.5")],
                 "evaluation_config.gt_matching_iou_threshold", "gt_matching_iou_threshold", r"\(0, 1\)",
                 id="iou-threshold"),
    pytest.param(FRCNN, [("gt_matching_iou_threshold: 0.5", "gt_matching_iou_threshold: 0.5\n"
                                                            "  gt_matching_iou_threshold_range {\n  }")],
                 "evaluation_config.gt_matching_iou_threshold_range", "gt_matching_iou_threshold_range", "exclusive",
                 id="iou-both"),
    pytest.param(FRCNN, [("gt_matching_iou_threshold: 0.5", "gt_matching_iou_threshold_range {\n    start: 0.5\n"
                                                            "    step: 0.05\n    end: 0.4\n  }")],
                 "evaluation_config.gt_matching_iou_threshold_range.end", "end: 0.4", "greater than start",
                 id="iou-range"),
])
def test_faster_rcnn_rule(base: str, edits: list[tuple[str, str]], field: str, marker: str | tuple[str, int],
                         match: str) -> None:
    _expect_error(_edit(base, edits), faster_rcnn_pb2.Experiment, frcnn_validation.validate, field, marker, match)


def test_faster_rcnn_learning_rate_required() -> None:
    text = _edit(FRCNN_STEP, [("""  learning_rate {
    step {
      base_lr: 0.00016
      gamma: 1.0
      step_size: 30
    }
  }
""", "")])
    _expect_error(text, faster_rcnn_pb2.Experiment, frcnn_validation.validate, "training_config.lr_scheduler",
                  "training_config", "choose a learning rate scheduler")


def test_faster_rcnn_model_section_required() -> None:
    text = FRCNN.split("dataset_config {", 1)[1]
    _expect_error("dataset_config {" + text, faster_rcnn_pb2.Experiment, frcnn_validation.validate, "model_config",
                  None, "no model_config")


def test_faster_rcnn_section_lookup_in_both_layouts() -> None:
    old = load_spec_text(FRCNN_000_LAYOUT, faster_rcnn_pb2.Experiment).message
    new = load_spec_text(FRCNN, faster_rcnn_pb2.Experiment).message
    assert frcnn_validation.section(old, "model") == ("network_config", old.network_config)
    assert frcnn_validation.section(new, "model") == ("model_config", new.model_config)
    assert frcnn_validation.backbone(old.network_config) == frcnn_validation.backbone(new.model_config) == "resnet:18"
    assert frcnn_validation.section(new, "inference") == ("inference_config", new.inference_config)


# ----------------------------------------------------------------------------------------- MaskRCNN

MRCNN = """\
seed: 123
warmup_steps: 100
learning_rate_steps: "[10000, 15000]"
learning_rate_decay_levels: "[0.1, 0.01]"
total_steps: 20000
train_batch_size: 2
eval_batch_size: 4
num_steps_per_eval: 5000
momentum: 0.9
l2_weight_decay: 0.0001
init_learning_rate: 0.02
skip_checkpoint_variables: "head"
data_config {
  image_size: "(832, 1344)"
  eval_samples: 500
  num_classes: 91
}
maskrcnn_config {
  nlayers: 50
  arch: "resnet"
  freeze_blocks: "[0,1]"
  rpn_positive_overlap: 0.7
  rpn_negative_overlap: 0.3
  rpn_fg_fraction: 0.5
  fg_fraction: 0.25
  bg_thresh_hi: 0.5
  bg_thresh_lo: 0.
  bbox_reg_weights: "(10., 10., 5., 5.)"
  gt_mask_size: 112
  train_rpn_nms_threshold: 0.7
  test_nms: 0.5
  min_level: 2
  max_level: 6
  num_scales: 1
  aspect_ratios: "[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]"
  anchor_scale: 8
  include_mask: True
  mrcnn_weight_loss_mask: 1.0
}
"""


def test_mask_rcnn_minimal_valid_spec_passes() -> None:
    mrcnn_validation.validate(load_spec_text(MRCNN, mask_rcnn_pb2.Experiment))


def test_mask_rcnn_defaults_are_valid() -> None:
    mrcnn_validation.validate(load_spec_text('data_config {\n  image_size: "(512, 512)"\n  num_classes: 2\n}\n',
                                             mask_rcnn_pb2.Experiment))


@pytest.mark.parametrize(("edits", "field", "marker", "match"), [
    pytest.param([('arch: "resnet"', 'arch: "vgg"')], "maskrcnn_config.arch", "arch", "only the ResNet",
                 id="arch"),
    pytest.param([("nlayers: 50", "nlayers: 152")], "maskrcnn_config.nlayers", "nlayers", "10, 18, 34, 50, 101",
                 id="nlayers"),
    pytest.param([('"[0,1]"', '"[0,4]"')], "maskrcnn_config.freeze_blocks", "freeze_blocks", "0-3, got 4",
                 id="freeze-blocks-range"),
    pytest.param([('"[0,1]"', '"[0,1"')], "maskrcnn_config.freeze_blocks", "freeze_blocks", "missing",
                 id="freeze-blocks-malformed"),
    pytest.param([('"[0,1]"', '"[0.5]"')], "maskrcnn_config.freeze_blocks", "freeze_blocks", "integers",
                 id="freeze-blocks-integers"),
    pytest.param([("gt_mask_size: 112", "gt_mask_size: 0")], "maskrcnn_config.gt_mask_size", "gt_mask_size",
                 "must be > 0", id="gt-mask-size"),
    pytest.param([("rpn_positive_overlap: 0.7", "rpn_positive_overlap: 1.7")], "maskrcnn_config.rpn_positive_overlap",
                 "rpn_positive_overlap", r"\[0, 1\]", id="rpn-overlap-range"),
    pytest.param([("rpn_negative_overlap: 0.3", "rpn_negative_overlap: 0.8")],
                 "maskrcnn_config.rpn_negative_overlap", "rpn_negative_overlap", "must not exceed",
                 id="rpn-overlap-order"),
    pytest.param([("bg_thresh_lo: 0.", "bg_thresh_lo: 0.6")], "maskrcnn_config.bg_thresh_lo", "bg_thresh_lo",
                 "must not exceed bg_thresh_hi", id="bg-thresh-order"),
    pytest.param([("rpn_fg_fraction: 0.5", "rpn_fg_fraction: 0.0")], "maskrcnn_config.rpn_fg_fraction",
                 "rpn_fg_fraction", r"\(0, 1\]", id="fg-fraction"),
    pytest.param([("test_nms: 0.5", "test_nms: 1.0")], "maskrcnn_config.test_nms", "test_nms", r"\(0, 1\)",
                 id="nms-threshold"),
    pytest.param([("include_mask: True", "include_mask: False")], "maskrcnn_config.include_mask", "include_mask",
                 "only include_mask: True", id="include-mask"),
    pytest.param([('"(10., 10., 5., 5.)"', '"(10., 10., 5.)"')], "maskrcnn_config.bbox_reg_weights",
                 "bbox_reg_weights", "four numbers", id="bbox-reg-weights-count"),
    pytest.param([('"(10., 10., 5., 5.)"', '"(10., 0., 5., 5.)"')], "maskrcnn_config.bbox_reg_weights",
                 "bbox_reg_weights", "must be > 0", id="bbox-reg-weights-positive"),
    pytest.param([("min_level: 2", "min_level: 1")], "maskrcnn_config.min_level", "min_level", "starts at level 2",
                 id="min-level"),
    pytest.param([("max_level: 6", "max_level: 2")], "maskrcnn_config.max_level", "max_level",
                 "greater than min_level", id="max-level"),
    pytest.param([("num_scales: 1", "num_scales: 0")], "maskrcnn_config.num_scales", "num_scales", "must be > 0",
                 id="num-scales"),
    pytest.param([("(0.7, 1.4)]", "(0.7)]")], "maskrcnn_config.aspect_ratios", "aspect_ratios", "pairs",
                 id="aspect-ratios-pairs"),
    pytest.param([("(0.7, 1.4)]", "(0.7, -1.4)]")], "maskrcnn_config.aspect_ratios", "aspect_ratios", "positive",
                 id="aspect-ratios-positive"),
    pytest.param([("anchor_scale: 8", "anchor_scale: 0")], "maskrcnn_config.anchor_scale", "anchor_scale",
                 "must be > 0", id="anchor-scale"),
    pytest.param([("mrcnn_weight_loss_mask: 1.0", "mrcnn_weight_loss_mask: -1.0")],
                 "maskrcnn_config.mrcnn_weight_loss_mask", "mrcnn_weight_loss_mask", ">= 0", id="loss-weight"),
    pytest.param([('"(832, 1344)"', '"(832, 1344"')], "data_config.image_size", "image_size", "missing",
                 id="image-size-malformed"),
    pytest.param([('"(832, 1344)"', '"(832)"')], "data_config.image_size", "image_size", "height, width",
                 id="image-size-two-values"),
    pytest.param([('"(832, 1344)"', '"(64, 1344)"')], "data_config.image_size", "image_size", ">= 128",
                 id="image-size-min"),
    pytest.param([('"(832, 1344)"', '"(800, 1344)"')], "data_config.image_size", "image_size",
                 "multiples of 64", id="image-size-multiple"),
    pytest.param([("max_level: 6", "max_level: 7")], "data_config.image_size", "image_size", "multiples of 128",
                 id="image-size-multiple-max-level"),
    pytest.param([('  image_size: "(832, 1344)"\n', "")], "data_config.image_size", "data_config",
                 "image_size is required", id="image-size-required"),
    pytest.param([("num_classes: 91", "num_classes: 1")], "data_config.num_classes", "num_classes", "at least 2",
                 id="num-classes"),
    pytest.param([("eval_samples: 500", "eval_samples: 0")], "data_config.eval_samples", "eval_samples",
                 "must be > 0", id="eval-samples"),
    pytest.param([("train_batch_size: 2", "train_batch_size: 0")], "train_batch_size", "train_batch_size",
                 "must be > 0, got 0", id="train-batch-size"),
    pytest.param([("warmup_steps: 100", "warmup_steps: 30000")], "warmup_steps", "warmup_steps",
                 "must not exceed total_steps", id="warmup-steps"),
    pytest.param([("momentum: 0.9", "momentum: 1.0")], "momentum", "momentum", r"\[0, 1\)", id="momentum"),
    pytest.param([("l2_weight_decay: 0.0001", "l2_weight_decay: -0.1")], "l2_weight_decay", "l2_weight_decay",
                 ">= 0", id="weight-decay"),
    pytest.param([("init_learning_rate: 0.02", "init_learning_rate: 0.0")], "init_learning_rate",
                 "init_learning_rate", "must be > 0", id="init-learning-rate"),
    pytest.param([('"[10000, 15000]"', '"[15000, 10000]"')], "learning_rate_steps", "learning_rate_steps:",
                 "increasing", id="lr-steps-order"),
    pytest.param([('"[10000, 15000]"', '"[10000, 25000]"')], "learning_rate_steps", "learning_rate_steps:",
                 "after total_steps", id="lr-steps-total"),
    pytest.param([('"[10000, 15000]"', '"[10000, 1.5e4]"')], "learning_rate_steps", "learning_rate_steps:",
                 "integers", id="lr-steps-integers"),
    pytest.param([('"[10000, 15000]"', '"10000, 15000"')], "learning_rate_steps", "learning_rate_steps:",
                 "unexpected", id="lr-steps-malformed"),
    pytest.param([('"[0.1, 0.01]"', '"[0.1]"')], "learning_rate_decay_levels", "learning_rate_decay_levels",
                 "one decay factor per learning_rate_steps entry", id="lr-levels-length"),
    pytest.param([('"[0.1, 0.01]"', '"[0.1, -0.01]"')], "learning_rate_decay_levels", "learning_rate_decay_levels",
                 "must be > 0", id="lr-levels-positive"),
    pytest.param([('skip_checkpoint_variables: "head"', 'skip_checkpoint_variables: "head("')],
                 "skip_checkpoint_variables", "skip_checkpoint_variables", "regular expression", id="skip-regex"),
])
def test_mask_rcnn_rule(edits: list[tuple[str, str]], field: str, marker: str, match: str) -> None:
    _expect_error(_edit(MRCNN, edits), mask_rcnn_pb2.Experiment, mrcnn_validation.validate, field, marker, match)
