"""The classification, FasterRCNN and MaskRCNN schemas load every sample spec printed in the manuals."""

from __future__ import annotations

from pathlib import Path

import pytest

from libtlt.archs.classification import validation as cls_validation
from libtlt.archs.faster_rcnn import validation as frcnn_validation
from libtlt.archs.mask_rcnn import validation as mrcnn_validation
from libtlt.errors import SpecError
from libtlt.spec import load_spec, load_spec_text
from libtlt.spec.protos import classification_pb2, common_pb2, faster_rcnn_pb2, mask_rcnn_pb2

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"

SCHEMAS = {
    "classification": classification_pb2.Experiment,
    "faster_rcnn": faster_rcnn_pb2.Experiment,
    "mask_rcnn": mask_rcnn_pb2.Experiment,
}

SAMPLES = [(arch, path) for arch in SCHEMAS for path in sorted((SPECS / arch).iterdir())]

# Complete experiment specs (not snippets): these also pass validation.
FULL_SPECS = {
    "classification": ("000_7.1_classification.txt", "003_classification.yaml"),
    "faster_rcnn": ("000_7.3_faster_rcnn.txt", "002_train_spec.txt"),
    "mask_rcnn": ("000_7.9_mask_rcnn.txt", "004_mask_rcnn.txt"),
}
VALIDATORS = {
    "classification": cls_validation.validate,
    "faster_rcnn": frcnn_validation.validate,
    "mask_rcnn": mrcnn_validation.validate,
}


def _load(arch: str, name: str):  # type: ignore[no-untyped-def]
    return load_spec(SPECS / arch / name, SCHEMAS[arch])


def test_every_arch_has_samples() -> None:
    for arch in SCHEMAS:
        assert len(list((SPECS / arch).iterdir())) >= 2, arch


@pytest.mark.parametrize(("arch", "path"), SAMPLES, ids=[f"{a}/{p.name}" for a, p in SAMPLES])
def test_sample_loads(arch: str, path: Path) -> None:
    spec = load_spec(path, SCHEMAS[arch])
    assert spec.message.ByteSize() > 0
    assert spec.positions  # every field written has a position for error messages


@pytest.mark.parametrize(("arch", "name"), [(a, n) for a, names in FULL_SPECS.items() for n in names])
def test_full_sample_is_valid(arch: str, name: str) -> None:
    VALIDATORS[arch](_load(arch, name))


# ---------------------------------------------------------------------------------- classification


def test_classification_000_values() -> None:
    exp = _load("classification", "000_7.1_classification.txt").message
    model = exp.model_config
    assert (model.arch, model.n_layers) == ("resnet", 18)
    assert model.use_bias and model.use_batch_norm and model.all_projections
    assert not model.use_pooling and not model.freeze_bn
    assert list(model.freeze_blocks) == [0, 1]
    assert cls_validation.input_image_size(model) == (3, 224, 224)
    assert exp.eval_config.eval_dataset_path == "/path/to/your/eval/data"
    assert (exp.eval_config.top_k, exp.eval_config.batch_size, exp.eval_config.n_workers) == (3, 256, 8)
    assert exp.eval_config.conf_threshold == pytest.approx(0.5)
    train = exp.train_config
    assert train.optimizer == "sgd"
    assert (train.batch_size_per_gpu, train.n_epochs, train.n_workers) == (256, 80, 16)
    assert train.reg_config.type == "L2"
    assert cls_validation.reg_scope(train.reg_config) == ["Conv2D", "Dense"]
    assert train.reg_config.weight_decay == pytest.approx(0.00005)
    lr = train.lr_config
    assert lr.scheduler == "soft_anneal"
    assert lr.learning_rate == pytest.approx(0.005)
    assert lr.soft_start == pytest.approx(0.056)
    assert cls_validation.annealing_points(lr) == pytest.approx([0.3, 0.6, 0.8])
    assert lr.annealing_divider == pytest.approx(10)
    assert not lr.HasField("step_size")  # the step parameters are commented out in the sample


def test_classification_003_yaml_values() -> None:
    exp = _load("classification", "003_classification.yaml").message
    assert (exp.results_dir, exp.key) == ("/workspace/results_dir", "nvidia_tlt")
    assert exp.data.train_dataset_path == "/workspace/tao-experiments/data/split/train"
    assert exp.data.preprocess_mode == "torch"
    assert exp.augment.enable_color_augmentation and exp.augment.enable_center_crop
    assert exp.augment.enable_random_crop  # documented default True
    assert exp.augment.mixup_alpha == pytest.approx(0.2)
    train = exp.train
    assert not train.qat
    assert (train.checkpoint_interval, train.batch_size_per_gpu, train.num_epochs) == (1, 64, 80)
    assert train.pretrained_model_path == "PRUNEDMODEL"
    assert train.optim_config.optimizer == "sgd"
    assert train.optim_config.momentum == pytest.approx(0.9)  # documented default
    assert train.lr_config.scheduler == "cosine"
    assert train.lr_config.learning_rate == pytest.approx(0.05)
    assert list(train.reg_config.scope) == ["conv2d", "dense"]
    assert exp.model.arch == "efficientnet-b0"
    assert cls_validation.input_image_size(exp.model) == (3, 256, 256)
    assert exp.model.input_image_depth == 8
    assert exp.evaluate.dataset_path == "/workspace/tao-experiments/data/split/test"
    assert exp.inference.classmap == "RESULTSDIR/classmap.json"
    assert exp.export.output_path == "EXPORTDIR/efficientnet-b0.etlt"
    assert exp.export.data_type == "fp32"


SAME_EXPERIMENT_000 = """\
model_config {
  arch: "resnet"
  n_layers: 18
  freeze_blocks: 0
  freeze_blocks: 1
  input_image_size: "3,224,224"
}
train_config {
  train_dataset_path: "/data/train"
  val_dataset_path: "/data/val"
  pretrained_model_path: "/models/resnet18.hdf5"
  optimizer: "sgd"
  batch_size_per_gpu: 64
  n_epochs: 80
  n_workers: 8
  reg_config {
    type: "L2"
    scope: "Conv2D,Dense"
    weight_decay: 0.00005
  }
  lr_config {
    scheduler: "soft_anneal"
    learning_rate: 0.005
    soft_start: 0.056
    annealing_points: "0.3, 0.6, 0.8"
    annealing_divider: 10
  }
}
eval_config {
  eval_dataset_path: "/data/test"
  model_path: "/results/weights/resnet_080.tlt"
  top_k: 3
  batch_size: 256
  n_workers: 8
}
"""

SAME_EXPERIMENT_003 = """\
data:
  train_dataset_path: "/data/train"
  val_dataset_path: "/data/val"
model:
  arch: 'resnet'
  n_layers: 18
  freeze_blocks: [0, 1]
  input_image_size: [3, 224, 224]
train:
  pretrained_model_path: '/models/resnet18.hdf5'
  batch_size_per_gpu: 64
  num_epochs: 80
  n_workers: 8
  optim_config:
    optimizer: 'sgd'
  reg_config:
    type: 'L2'
    scope: ['Conv2D', 'Dense']
    weight_decay: 0.00005
  lr_config:
    scheduler: 'soft_anneal'
    learning_rate: 0.005
    soft_start: 0.056
    annealing_points: [0.3, 0.6, 0.8]
    annealing_divider: 10
evaluate:
  dataset_path: '/data/test'
  model_path: '/results/weights/resnet_080.tlt'
  top_k: 3
  batch_size: 256
  n_workers: 8
"""


def test_same_experiment_in_000_prototxt_and_003_yaml_is_equivalent() -> None:
    prototxt = load_spec_text(SAME_EXPERIMENT_000, classification_pb2.Experiment, name="a.txt")
    yaml = load_spec_text(SAME_EXPERIMENT_003, classification_pb2.Experiment, name="a.yaml", syntax="yaml")
    cls_validation.validate(prototxt)
    cls_validation.validate(yaml)
    a = cls_validation.canonical_experiment(prototxt.message)
    b = cls_validation.canonical_experiment(yaml.message)
    assert a.model_config == b.model_config
    assert a.eval_config == b.eval_config
    b.train_config.ClearField("optim_config")  # the 003 spelling of the optimizer; its name is folded in
    assert a.train_config == b.train_config
    assert a.train_config.n_epochs == 80 and a.train_config.optimizer == "sgd"
    assert list(b.model_config.input_image_size) == ["3", "224", "224"]
    assert cls_validation.annealing_points(b.train_config.lr_config) == pytest.approx([0.3, 0.6, 0.8])


def test_canonical_experiment_leaves_input_untouched() -> None:
    spec = load_spec_text(SAME_EXPERIMENT_003, classification_pb2.Experiment, name="a.yaml", syntax="yaml")
    before = spec.message.SerializeToString()
    cls_validation.canonical_experiment(spec.message)
    assert spec.message.SerializeToString() == before


def test_classification_typo_in_prototxt_suggests_field() -> None:
    text = SAME_EXPERIMENT_000.replace("batch_size_per_gpu", "batch_size_per_gpus")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, classification_pb2.Experiment, name="cls.txt")
    assert err.value.location == "cls.txt:13:3"
    assert "did you mean 'batch_size_per_gpu'" in err.value.message


def test_classification_typo_in_yaml_suggests_field_with_line() -> None:
    text = SAME_EXPERIMENT_003.replace("num_epochs", "num_epoch")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, classification_pb2.Experiment, name="cls.yaml", syntax="yaml")
    assert err.value.location == "cls.yaml:12:3"
    assert "did you mean 'num_epochs'" in err.value.message


def test_classification_yaml_wrong_type_has_line() -> None:
    text = SAME_EXPERIMENT_003.replace("batch_size_per_gpu: 64", "batch_size_per_gpu: many")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, classification_pb2.Experiment, name="cls.yaml", syntax="yaml")
    assert err.value.location == "cls.yaml:11:23"
    assert err.value.field == "train.batch_size_per_gpu"


def test_classification_yaml_syntax_error_has_line() -> None:
    text = SAME_EXPERIMENT_003.replace("  top_k: 3", "  top_k: [3")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, classification_pb2.Experiment, name="cls.yaml", syntax="yaml")
    assert err.value.location is not None and err.value.location.startswith("cls.yaml:")
    assert "invalid YAML" in err.value.message


def test_classification_yaml_unknown_enum_value() -> None:
    text = SAME_EXPERIMENT_003.replace("  n_layers: 18", "  n_layers: 18\n  resize_interpolation_method: BILEANER")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, classification_pb2.Experiment, name="cls.yaml", syntax="yaml")
    assert err.value.location == "cls.yaml:7:32"
    assert "BILINEAR" in err.value.message


# ------------------------------------------------------------------------------------- FasterRCNN


def test_faster_rcnn_000_values() -> None:
    exp = _load("faster_rcnn", "000_7.3_faster_rcnn.txt").message
    assert (exp.random_seed, exp.enc_key, exp.verbose) == (42, "tlt", True)
    net = exp.network_config
    image = net.input_image_config
    assert image.image_type == faster_rcnn_pb2.RGB and image.image_channel_order == "bgr"
    assert (image.size_height_width.height, image.size_height_width.width) == (384, 1248)
    assert [(m.key, round(m.value, 3)) for m in image.image_channel_mean] == [
        ("b", 103.939), ("g", 116.779), ("r", 123.68)]
    assert image.max_objects_num_per_image == 100
    assert frcnn_validation.backbone(net) == "resnet:18"
    assert list(net.anchor_box_config.scale) == [64.0, 128.0, 256.0]
    assert list(net.anchor_box_config.ratio) == [1.0, 0.5, 2.0]
    assert list(net.freeze_blocks) == [0, 1]
    assert not net.conv_bn_share_bias and net.all_projections and not net.use_pooling
    assert net.roi_pooling_config.pool_size == 7 and not net.roi_pooling_config.pool_size_2x
    train = exp.training_config
    data = train.kitti_data_config
    assert data.data_sources[0].tfrecords_path == "/workspace/tlt-experiments/tfrecords/kitti_trainval/kitti_trainval*"
    assert [(m.key, m.value) for m in data.target_class_mapping][:2] == [("car", "car"), ("van", "car")]
    assert train.data_augmentation.preprocessing.output_image_width == 1248
    assert train.data_augmentation.color_augmentation.hue_rotation_max == 0.0
    assert train.data_augmentation.color_augmentation.color_shift_stddev == 0.0  # DetectNet_v2 default
    assert (train.batch_size_per_gpu, train.num_epochs, train.checkpoint_interval) == (16, 12, 1)
    assert not train.HasField("resume_from_model")  # commented out in the sample
    assert train.output_model == "/workspace/tlt-experiments/data/faster_rcnn/frcnn_kitti_resnet18.tlt"
    assert [(s.key, s.value) for s in train.classifier_regr_std] == [("x", 10.0), ("y", 10.0), ("w", 5.0), ("h", 5.0)]
    assert (train.rpn_pre_nms_top_N, train.rpn_nms_max_boxes) == (12000, 2000)
    assert train.reg_config.reg_type == "L2" and train.reg_config.weight_decay == pytest.approx(1e-4)
    assert train.optimizer.WhichOneof("optim") == "adam"
    assert train.optimizer.adam.lr == pytest.approx(0.00001)
    assert train.lr_scheduler.step.base_lr == pytest.approx(0.00016)
    assert train.lr_scheduler.step.step_size == 30
    assert train.inference_config.bbox_visualize_threshold == pytest.approx(0.6)
    assert train.inference_config.model.endswith("frCNN_kitti_resnet18.epoch12.tlt")
    assert train.evaluation_config.object_confidence_thres == pytest.approx(0.0001)
    assert not train.evaluation_config.use_voc07_11point_metric
    path, _ = frcnn_validation.section(exp, "evaluation") or ("", None)
    assert path == "training_config.evaluation_config"


def test_faster_rcnn_002_values() -> None:
    exp = _load("faster_rcnn", "002_train_spec.txt").message
    assert exp.enc_key == "nvidia_tlt"
    assert exp.model_config.arch == "resnet:18" and not exp.model_config.use_bias
    assert exp.dataset_config.validation_fold == 0 and exp.dataset_config.HasField("validation_fold")
    assert exp.augmentation_config.spatial_augmentation.hflip_probability == pytest.approx(0.5)
    train = exp.training_config
    assert train.enable_augmentation and not train.enable_qat
    assert train.retrain_pruned_model.endswith("model_1_pruned.tlt")
    assert train.regularizer.type == common_pb2.RegularizerConfig.L2
    assert train.regularizer.weight == pytest.approx(1e-4)
    assert train.optimizer.sgd.momentum == pytest.approx(0.9) and not train.optimizer.sgd.nesterov
    soft = train.learning_rate.soft_start
    assert (soft.base_lr, soft.start_lr, soft.soft_start) == pytest.approx((0.02, 0.002, 0.1))
    assert list(soft.annealing_points) == pytest.approx([0.8, 0.9])
    assert exp.inference_config.batch_size == 1
    assert exp.inference_config.classifier_nms_max_boxes == 100
    assert not exp.inference_config.HasField("trt_inference")  # commented out
    assert exp.evaluation_config.validation_period_during_training == 1
    assert exp.evaluation_config.gt_matching_iou_threshold == pytest.approx(0.5)
    assert frcnn_validation.section(exp, "model") == ("model_config", exp.model_config)


def test_faster_rcnn_snippets() -> None:
    engine = _load("faster_rcnn", "000_9.3_trt_evaluation_etlt.txt").message
    trt = engine.training_config.evaluation_config.trt_evaluation
    assert trt.etlt_model.calibration_cache == "/workspace/tlt-experiments/data/faster_rcnn/cal.bin"
    assert (trt.trt_data_type, trt.max_workspace_size_MB) == ("int8", 2000)
    infer = _load("faster_rcnn", "000_10.3_trt_inference_engine.txt").message
    assert infer.training_config.inference_config.trt_inference.trt_engine.endswith("trt.int8.engine")
    assert infer.training_config.inference_config.trt_inference.trt_data_type == "fp32"  # default
    adam = _load("faster_rcnn", "002_optimizer_adam.txt").message.training_config.optimizer.adam
    assert (adam.beta_1, adam.beta_2) == pytest.approx((0.9, 0.999))
    step = _load("faster_rcnn", "002_learning_rate_step.txt").message.training_config.learning_rate.step
    assert (step.base_lr, step.gamma, step.step_size) == pytest.approx((0.00001, 1.0, 30))
    parallel = _load("faster_rcnn", "002_model_parallelism.txt").message.training_config.model_parallelism
    assert list(parallel) == pytest.approx([0.3, 0.7])
    rng = _load("faster_rcnn", "002_gt_matching_iou_threshold_range.txt").message
    assert rng.evaluation_config.gt_matching_iou_threshold_range.step == pytest.approx(0.05)
    mapping = _load("faster_rcnn", "002_label_file_target_class_mapping.txt").message.dataset_config
    assert [m.key for m in mapping.target_class_mapping] == ["car", "person", "bicycle"]


def test_faster_rcnn_typo_suggests_field() -> None:
    text = (SPECS / "faster_rcnn" / "002_train_spec.txt").read_text()
    text = text.replace("rpn_nms_overlap_threshold: 0.7", "rpn_nms_overlap_treshold: 0.7", 1)
    with pytest.raises(SpecError) as err:
        load_spec_text(text, faster_rcnn_pb2.Experiment, name="frcnn.txt")
    assert err.value.location == "frcnn.txt:131:3"
    assert "in training_config" in err.value.message
    assert "did you mean 'rpn_nms_overlap_threshold'" in err.value.message


def test_faster_rcnn_unknown_enum_lists_values() -> None:
    text = (SPECS / "faster_rcnn" / "002_train_spec.txt").read_text().replace("image_type: RGB", "image_type: RGBA")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, faster_rcnn_pb2.Experiment, name="frcnn.txt")
    assert err.value.location is not None and err.value.location.startswith("frcnn.txt:6:")
    assert "RGB, GRAYSCALE" in err.value.message


def test_faster_rcnn_two_optimizers_is_a_parse_error() -> None:
    text = "training_config {\n  optimizer {\n    sgd { lr: 0.1 }\n    adam { lr: 0.1 }\n  }\n}\n"
    with pytest.raises(SpecError) as err:
        load_spec_text(text, faster_rcnn_pb2.Experiment, name="frcnn.txt")
    assert err.value.location is not None and err.value.location.startswith("frcnn.txt:4:")


# --------------------------------------------------------------------------------------- MaskRCNN


@pytest.mark.parametrize("name", FULL_SPECS["mask_rcnn"])
def test_mask_rcnn_values(name: str) -> None:
    exp = _load("mask_rcnn", name).message
    assert (exp.seed, exp.use_amp, exp.warmup_steps, exp.total_steps) == (123, False, 0, 120000)
    assert mrcnn_validation.learning_rate_steps(exp) == [60000, 80000, 100000]
    assert mrcnn_validation.learning_rate_decay_levels(exp) == pytest.approx([0.1, 0.02, 0.002])
    assert (exp.train_batch_size, exp.eval_batch_size, exp.num_steps_per_eval) == (2, 4, 10000)
    assert (exp.momentum, exp.l2_weight_decay, exp.init_learning_rate) == pytest.approx((0.9, 0.0001, 0.02))
    assert exp.checkpoint.endswith("tlt_instance_segmentation_vresnet50/resnet50.hdf5")
    data = exp.data_config
    assert mrcnn_validation.image_size(data) == (832, 1344)
    assert (data.eval_samples, data.num_classes) == (500, 91)
    assert data.augment_input_data and data.skip_crowd_during_training
    assert data.val_json_file.endswith("/data/annotations/instances_val2017.json")
    cfg = exp.maskrcnn_config
    assert (cfg.arch, cfg.nlayers, cfg.freeze_bn) == ("resnet", 50, True)
    assert mrcnn_validation.freeze_blocks(cfg) == [0, 1]
    assert (cfg.rpn_batch_size_per_im, cfg.batch_size_per_im, cfg.gt_mask_size) == (256, 512, 112)
    assert (cfg.rpn_min_size, cfg.bg_thresh_lo) == (0.0, 0.0)
    assert mrcnn_validation.bbox_reg_weights(cfg) == (10.0, 10.0, 5.0, 5.0)
    assert (cfg.train_rpn_nms_threshold, cfg.test_rpn_nms_thresh) == pytest.approx((0.7, 0.7))
    assert (cfg.min_level, cfg.max_level, cfg.num_scales, cfg.anchor_scale) == (2, 6, 1, 8)
    assert mrcnn_validation.aspect_ratios(cfg) == [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]
    assert cfg.mrcnn_weight_loss_mask == pytest.approx(1.0)


def test_mask_rcnn_004_additions() -> None:
    exp = _load("mask_rcnn", "004_mask_rcnn.txt").message
    assert exp.HasField("l1_weight_decay") and exp.l1_weight_decay == 0.0
    assert not exp.HasField("pruned_model_path")  # commented out
    assert exp.data_config.max_num_instances == 200
    assert (exp.data_config.n_workers, exp.data_config.shuffle_buffer_size) == (16, 4096)  # defaults


def test_mask_rcnn_typo_suggests_field() -> None:
    text = (SPECS / "mask_rcnn" / "004_mask_rcnn.txt").read_text().replace("test_rpn_nms_thresh", "test_rpn_nms_tresh")
    with pytest.raises(SpecError) as err:
        load_spec_text(text, mask_rcnn_pb2.Experiment, name="mrcnn.txt")
    assert err.value.location == "mrcnn.txt:62:9"
    assert "did you mean 'test_rpn_nms_thresh'" in err.value.message


@pytest.mark.parametrize(("text", "expected"), [
    ("(832, 1344)", [832, 1344]),
    ("[60000, 80000, 100000]", [60000, 80000, 100000]),
    ("[(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]", [[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]]),
    ("(10., 10., 5., 5.)", [10.0, 10.0, 5.0, 5.0]),
    ("[0,1]", [0, 1]),
    ("[]", []),
    ("[1e-3, .5, -2]", [0.001, 0.5, -2]),
])
def test_mask_rcnn_parse_literal(text: str, expected: object) -> None:
    assert mrcnn_validation.parse_literal(text) == expected


@pytest.mark.parametrize("text", ["", "[1, 2", "1, 2]", "[1 2]", "__import__('os')", "[1, 2] + [3]", "(1,,2)"])
def test_mask_rcnn_parse_literal_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        mrcnn_validation.parse_literal(text)
