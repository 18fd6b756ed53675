"""Semantic checks of a FasterRCNN spec (000 §7.3 and 002) beyond what the schema parses.

The schema accepts both manuals' layouts (000: ``network_config`` and everything else inside
``training_config``; 002: ``model_config``, ``dataset_config``, ``augmentation_config``,
``inference_config`` and ``evaluation_config`` at the top level). :func:`section` and
:func:`backbone` find a setting whichever layout it was written in; :func:`validate` rejects a spec
that writes one setting under both names and checks the manuals' constraints, raising ``SpecError``
at the field's ``file:line:column``.

Freeze-block IDs come from ``libtlt.spec.backbones``, shared with every architecture.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from libtlt.spec import LoadedSpec
from libtlt.spec.backbones import check_freeze_block
from libtlt.spec.protos import common_pb2
from libtlt.spec.protos import faster_rcnn_pb2 as pb

#: Backbones written as ``feature_extractor`` (000) or ``arch`` (002). ``vgg`` is Keras' VGG16.
BACKBONES = (
    "resnet:10", "resnet:18", "resnet:34", "resnet:50", "resnet:101",
    "vgg:16", "vgg:19", "vgg", "googlenet", "mobilenet_v1", "mobilenet_v2",
    "darknet:19", "darknet:53", "efficientnet:b0", "efficientnet:b1",
)


#: image_type → valid image_channel_order. 000 prints the grayscale order as '1'; 'l' (luminance) is
#: accepted as the same thing.
CHANNEL_ORDERS: dict[int, tuple[str, ...]] = {pb.RGB: ("rgb", "bgr"), pb.GRAYSCALE: ("l", "1")}

MIN_INPUT_SIZE = 160  # 000 chapter 3: "W >= 160; H >= 160"
BACKGROUND = "background"
RPN_STRIDE = 16  # "This value is fixed(16) for current implementation."
REGR_STD_KEYS = ("x", "y", "w", "h")
REG_TYPES = ("L1", "L2", "none")
TRT_DATA_TYPES = ("fp32", "fp16", "int8")
ACTIVATIONS = ("relu", "swish")
PRETRAINED_SUFFIXES = (".h5", ".hdf5", ".tlt")

#: Setting → (000 path, 002 path).
SECTIONS: dict[str, tuple[str, str]] = {
    "model": ("network_config", "model_config"),
    "dataset": ("training_config.kitti_data_config", "dataset_config"),
    "augmentation": ("training_config.data_augmentation", "augmentation_config"),
    "inference": ("training_config.inference_config", "inference_config"),
    "evaluation": ("training_config.evaluation_config", "evaluation_config"),
}


# ---------------------------------------------------------------------------------------- lookups


def _get(message: Message, path: str) -> Message | None:
    """The sub-message at dotted ``path`` if every step of it is set, else None."""
    current = message
    for name in path.split("."):
        if not current.HasField(name):
            return None
        current = getattr(current, name)
    return current


def section(experiment: pb.Experiment, kind: str) -> tuple[str, Any] | None:
    """``(path, message)`` of ``kind`` (a key of ``SECTIONS``) in whichever layout it is written."""
    for path in SECTIONS[kind]:
        found = _get(experiment, path)
        if found is not None:
            return path, found
    return None


def backbone(model: pb.ModelConfig) -> str:
    """The backbone name, from ``feature_extractor`` (000) or ``arch`` (002)."""
    return model.feature_extractor or model.arch


def backbone_family(name: str) -> str:
    """``resnet:18`` → ``resnet``."""
    return name.split(":", 1)[0]


# ------------------------------------------------------------------------------------- validation


def validate(spec: LoadedSpec[pb.Experiment]) -> None:
    """Raise ``SpecError`` at the first setting outside the manuals' supported values."""
    exp = spec.message
    _check_layouts(spec, exp)
    model = section(exp, "model")
    if model is None:
        raise spec.error("model_config", "the spec has no model_config (or network_config) section")
    model_path, model_msg = model
    _validate_model(spec, model_msg, model_path)
    image = model_msg.input_image_config
    dynamic = image.HasField("size_min")
    augmentation = section(exp, "augmentation")
    if augmentation is not None:
        _validate_augmentation(spec, augmentation[1], augmentation[0], image)
    dataset = section(exp, "dataset")
    if dataset is not None:
        _validate_dataset(spec, dataset[1], dataset[0])
    if exp.HasField("training_config"):
        _validate_training(spec, exp.training_config, dynamic)
    inference = section(exp, "inference")
    if inference is not None:
        _validate_inference(spec, inference[1], inference[0], dynamic)
    evaluation = section(exp, "evaluation")
    if evaluation is not None:
        _validate_evaluation(spec, evaluation[1], evaluation[0], dynamic)


def _check_layouts(spec: LoadedSpec[pb.Experiment], exp: pb.Experiment) -> None:
    for old, new in SECTIONS.values():
        if _get(exp, old) is not None and _get(exp, new) is not None:
            raise spec.error(new, f"'{new}' (TAO layout) and '{old}' (TLT 2.0 layout) are the same section; "
                                  "write only one of them")
    for path in SECTIONS["model"]:
        model = _get(exp, path)
        if model is None:
            continue
        for old, new in (("feature_extractor", "arch"), ("conv_bn_share_bias", "use_bias")):
            if model.HasField(old) and model.HasField(new):
                raise spec.error(f"{path}.{new}", f"{old} and {new} are the same setting; write only one")
    training = exp.training_config
    for old, new in (("reg_config", "regularizer"), ("lr_scheduler", "learning_rate")):
        if training.HasField(old) and training.HasField(new):
            raise spec.error(f"training_config.{new}", f"{old} and {new} are the same setting; write only one")


def _validate_model(spec: LoadedSpec[pb.Experiment], model: pb.ModelConfig, path: str) -> None:
    name = backbone(model)
    field = "arch" if model.HasField("arch") else "feature_extractor"
    if not name:
        raise spec.error(f"{path}.{field}", f"the backbone is required (one of: {', '.join(BACKBONES)})")
    if name not in BACKBONES:
        raise spec.error(f"{path}.{field}", _unknown(name, BACKBONES))
    _validate_input_image(spec, model, path)
    anchors = model.anchor_box_config
    if not anchors.scale or not anchors.ratio:
        raise spec.error(f"{path}.anchor_box_config", "anchor_box_config needs at least one scale and one ratio")
    for field_name, values in (("scale", anchors.scale), ("ratio", anchors.ratio)):
        for index, value in enumerate(values):
            if value <= 0:
                raise spec.error(f"{path}.anchor_box_config.{field_name}[{index}]", f"must be > 0, got {value:g}")
    if model.roi_mini_batch <= 0:
        raise spec.error(f"{path}.roi_mini_batch", f"must be > 0, got {model.roi_mini_batch}")
    if model.rpn_stride != RPN_STRIDE:
        raise spec.error(f"{path}.rpn_stride", f"the RPN stride is fixed at {RPN_STRIDE}, got {model.rpn_stride}")
    for index, block in enumerate(model.freeze_blocks):
        try:
            check_freeze_block(backbone_family(name), block)
        except ValueError as err:
            raise spec.error(f"{path}.freeze_blocks[{index}]", str(err)) from None
    if model.roi_pooling_config.pool_size <= 0:
        raise spec.error(f"{path}.roi_pooling_config.pool_size", "must be > 0, got 0")
    for rate in ("dropout_rate", "drop_connect_rate"):
        value = getattr(model, rate)
        if not 0.0 <= value < 1.0:
            raise spec.error(f"{path}.{rate}", f"must be in [0, 1), got {value:g}")
    if model.HasField("activation") and model.activation.activation_type not in ACTIVATIONS:
        raise spec.error(f"{path}.activation.activation_type", _unknown(model.activation.activation_type, ACTIVATIONS))


def _validate_input_image(spec: LoadedSpec[pb.Experiment], model: pb.ModelConfig, path: str) -> None:
    where = f"{path}.input_image_config"
    if not model.HasField("input_image_config"):
        raise spec.error(where, "input_image_config is required (image type, size and preprocessing)")
    image = model.input_image_config
    static, dynamic = image.HasField("size_height_width"), image.HasField("size_min")
    if static == dynamic:
        raise spec.error(where, "give exactly one of size_height_width (static input shape) and size_min "
                                "(dynamic input shape)")
    if static:
        height, width = image.size_height_width.height, image.size_height_width.width
        if height < MIN_INPUT_SIZE or width < MIN_INPUT_SIZE:
            raise spec.error(f"{where}.size_height_width",
                             f"height and width must be >= {MIN_INPUT_SIZE}, got {height}x{width}")
    elif image.size_min.min < MIN_INPUT_SIZE:
        raise spec.error(f"{where}.size_min.min", f"must be >= {MIN_INPUT_SIZE}, got {image.size_min.min}")
    orders = CHANNEL_ORDERS[image.image_type]
    if image.image_channel_order not in orders:
        raise spec.error(f"{where}.image_channel_order",
                         f"{pb.ImageType.Name(image.image_type)} images take image_channel_order "
                         f"{' or '.join(repr(o) for o in orders)}, got {image.image_channel_order!r}")
    channels = set("l" if image.image_type == pb.GRAYSCALE else image.image_channel_order)
    seen: set[str] = set()
    for index, entry in enumerate(image.image_channel_mean):
        entry_path = f"{where}.image_channel_mean[{index}]"
        key = "l" if entry.key == "1" else entry.key
        if key not in channels:
            raise spec.error(f"{entry_path}.key", f"channel {entry.key!r} is not one of the image's channels "
                                                  f"({', '.join(sorted(channels))})")
        if key in seen:
            raise spec.error(f"{entry_path}.key", f"channel {entry.key!r} is given twice")
        seen.add(key)
        if entry.value < 0:
            raise spec.error(f"{entry_path}.value", f"mean values must be >= 0, got {entry.value:g}")
    if seen and seen != channels:
        missing = ", ".join(sorted(channels - seen))
        raise spec.error(f"{where}.image_channel_mean", f"no mean value for channel(s) {missing}")
    if image.image_scaling_factor <= 0:
        raise spec.error(f"{where}.image_scaling_factor", f"must be > 0, got {image.image_scaling_factor:g}")
    if image.max_objects_num_per_image <= 0:
        raise spec.error(f"{where}.max_objects_num_per_image", "must be > 0, got 0")


def _validate_augmentation(spec: LoadedSpec[pb.Experiment], aug: common_pb2.AugmentationConfig, path: str,
                           image: pb.InputImageConfig) -> None:
    pre = aug.preprocessing
    where = f"{path}.preprocessing"
    if image.HasField("size_height_width"):
        size = image.size_height_width
        for field, expected in (("output_image_height", size.height), ("output_image_width", size.width)):
            if pre.HasField(field) and getattr(pre, field) != expected:
                raise spec.error(f"{where}.{field}", f"must equal the model input size_height_width "
                                                     f"({expected}), got {getattr(pre, field)}")
    elif image.HasField("size_min") and pre.HasField("output_image_min") \
            and pre.output_image_min != image.size_min.min:
        raise spec.error(f"{where}.output_image_min", f"must equal the model input size_min ({image.size_min.min}), "
                                                      f"got {pre.output_image_min}")
    channels = 1 if image.image_type == pb.GRAYSCALE else 3
    if pre.HasField("output_image_channel") and pre.output_image_channel != channels:
        raise spec.error(f"{where}.output_image_channel",
                         f"{pb.ImageType.Name(image.image_type)} input has {channels} channel(s), "
                         f"got {pre.output_image_channel}")


def _validate_dataset(spec: LoadedSpec[pb.Experiment], dataset: common_pb2.DatasetConfig, path: str) -> None:
    if dataset.HasField("validation_fold") and dataset.HasField("validation_data_source"):
        raise spec.error(f"{path}.validation_data_source",
                         "validation_fold and validation_data_source are exclusive; remove validation_fold")
    seen: set[str] = set()
    for index, mapping in enumerate(dataset.target_class_mapping):
        if mapping.key in seen:
            raise spec.error(f"{path}.target_class_mapping[{index}].key", f"class {mapping.key!r} is mapped twice")
        seen.add(mapping.key)
        if not mapping.value:
            raise spec.error(f"{path}.target_class_mapping[{index}].value", "the target class name is empty")
        for part in ("key", "value"):
            if getattr(mapping, part).lower() == BACKGROUND:
                raise spec.error(f"{path}.target_class_mapping[{index}].{part}",
                                 f"'{BACKGROUND}' is FasterRCNN's own last class (every ROI that matches no object); "
                                 "map no class to or from it")


def _validate_training(spec: LoadedSpec[pb.Experiment], training: pb.TrainingConfig, dynamic: bool) -> None:
    p = "training_config"
    for field in ("batch_size_per_gpu", "num_epochs", "checkpoint_interval", "rpn_mini_batch"):
        if getattr(training, field) <= 0:
            raise spec.error(f"{p}.{field}", f"must be > 0, got {getattr(training, field)}")
    if dynamic and training.batch_size_per_gpu != 1:
        raise spec.error(f"{p}.batch_size_per_gpu",
                         f"a dynamic input shape (size_min) trains with batch size 1, got {training.batch_size_per_gpu}")
    if dynamic and training.enable_qat:
        raise spec.error(f"{p}.enable_qat", "QAT prepares an INT8 export, and a model with a dynamic input shape "
                                            "(size_min) cannot be exported; use size_height_width for QAT")
    if not training.output_model:
        raise spec.error(f"{p}.output_model", "output_model cannot be empty")
    if training.pretrained_weights and not training.pretrained_weights.endswith(PRETRAINED_SUFFIXES):
        raise spec.error(f"{p}.pretrained_weights", f"pretrained weights must be a {', '.join(PRETRAINED_SUFFIXES)} "
                                                    f"file, got {training.pretrained_weights!r}")
    _open_interval(spec, training, p, "rpn_min_overlap")
    _open_interval(spec, training, p, "rpn_max_overlap")
    if training.rpn_max_overlap <= training.rpn_min_overlap:
        raise spec.error(f"{p}.rpn_max_overlap", f"must be greater than rpn_min_overlap "
                                                 f"({training.rpn_min_overlap:g}), got {training.rpn_max_overlap:g}")
    if not 0.0 <= training.classifier_min_overlap < 1.0:
        raise spec.error(f"{p}.classifier_min_overlap", f"must be in [0, 1), got {training.classifier_min_overlap:g}")
    _open_interval(spec, training, p, "classifier_max_overlap")
    if training.classifier_max_overlap <= training.classifier_min_overlap:
        raise spec.error(f"{p}.classifier_max_overlap",
                         f"must be greater than classifier_min_overlap ({training.classifier_min_overlap:g}), "
                         f"got {training.classifier_max_overlap:g}")
    for field in ("std_scaling", "lambda_rpn_regr", "lambda_rpn_class", "lambda_cls_regr", "lambda_cls_class"):
        if getattr(training, field) <= 0:
            raise spec.error(f"{p}.{field}", f"must be > 0, got {getattr(training, field):g}")
    _validate_regr_std(spec, training)
    _validate_proposals(spec, training, p)
    _validate_regularizer(spec, training)
    if training.optimizer.WhichOneof("optim") is None:
        raise spec.error(f"{p}.optimizer", "choose an optimizer: optimizer { sgd {...} }, { adam {...} } "
                                           "or { rmsprop {...} }")
    lr_field = "learning_rate" if training.HasField("learning_rate") else "lr_scheduler"
    _validate_lr(spec, getattr(training, lr_field), f"{p}.{lr_field}")
    if training.model_parallelism:
        fractions = list(training.model_parallelism)
        for index, value in enumerate(fractions):
            if not 0.0 < value <= 1.0:
                raise spec.error(f"{p}.model_parallelism[{index}]", f"must be in (0, 1], got {value:g}")
        if abs(sum(fractions) - 1.0) > 1e-3:
            raise spec.error(f"{p}.model_parallelism", f"the fractions must add up to 1, got {sum(fractions):g}")


def _validate_regr_std(spec: LoadedSpec[pb.Experiment], training: pb.TrainingConfig) -> None:
    seen: set[str] = set()
    for index, entry in enumerate(training.classifier_regr_std):
        where = f"training_config.classifier_regr_std[{index}]"
        if entry.key not in REGR_STD_KEYS:
            raise spec.error(f"{where}.key", _unknown(entry.key, REGR_STD_KEYS))
        if entry.key in seen:
            raise spec.error(f"{where}.key", f"{entry.key!r} is given twice")
        seen.add(entry.key)
        if entry.value <= 0:
            raise spec.error(f"{where}.value", f"must be > 0, got {entry.value:g}")
    if seen and len(seen) != len(REGR_STD_KEYS):
        missing = ", ".join(k for k in REGR_STD_KEYS if k not in seen)
        raise spec.error("training_config.classifier_regr_std", f"no scaling factor for {missing}")


def _validate_proposals(spec: LoadedSpec[pb.Experiment], config: Any, path: str) -> None:
    """rpn_pre_nms_top_N / rpn_nms_max_boxes / rpn_nms_overlap_threshold (training, inference, evaluation)."""
    for field in ("rpn_pre_nms_top_N", "rpn_nms_max_boxes"):
        if config.HasField(field) and getattr(config, field) <= 0:
            raise spec.error(f"{path}.{field}", "must be > 0, got 0")
    if config.HasField("rpn_nms_max_boxes") and config.HasField("rpn_pre_nms_top_N") \
            and config.rpn_nms_max_boxes > config.rpn_pre_nms_top_N:
        raise spec.error(f"{path}.rpn_nms_max_boxes", f"must be no greater than rpn_pre_nms_top_N "
                                                      f"({config.rpn_pre_nms_top_N}), got {config.rpn_nms_max_boxes}")
    _open_interval(spec, config, path, "rpn_nms_overlap_threshold")


def _validate_regularizer(spec: LoadedSpec[pb.Experiment], training: pb.TrainingConfig) -> None:
    if training.HasField("reg_config"):
        reg = training.reg_config
        if reg.reg_type not in REG_TYPES:
            raise spec.error("training_config.reg_config.reg_type", _unknown(reg.reg_type, REG_TYPES))
        if reg.reg_type != "none" and reg.weight_decay <= 0:
            raise spec.error("training_config.reg_config.weight_decay",
                             f"must be > 0 for an {reg.reg_type} regularizer, got {reg.weight_decay:g}")
    if training.HasField("regularizer") and training.regularizer.weight < 0:
        raise spec.error("training_config.regularizer.weight", f"must be >= 0, got {training.regularizer.weight:g}")


def _validate_lr(spec: LoadedSpec[pb.Experiment], lr: pb.LRConfig, path: str) -> None:
    kind = lr.WhichOneof("lr_config")
    if kind is None:
        raise spec.error(path, "choose a learning rate scheduler: step {...} or soft_start {...}")
    if kind == "step":
        step = lr.step
        if step.base_lr <= 0:
            raise spec.error(f"{path}.step.base_lr", f"must be > 0, got {step.base_lr:g}")
        if not 0.0 < step.gamma <= 1.0:
            raise spec.error(f"{path}.step.gamma", f"must be in (0, 1], got {step.gamma:g}")
        if not 0.0 < step.step_size <= 100.0:
            raise spec.error(f"{path}.step.step_size", f"must be in (0, 100] (percent of the epochs), "
                                                       f"got {step.step_size:g}")
        return
    soft = lr.soft_start
    where = f"{path}.soft_start"
    if soft.base_lr <= 0:
        raise spec.error(f"{where}.base_lr", f"must be > 0, got {soft.base_lr:g}")
    if not 0.0 < soft.start_lr < soft.base_lr:
        raise spec.error(f"{where}.start_lr", f"must be > 0 and smaller than base_lr ({soft.base_lr:g}), "
                                              f"got {soft.start_lr:g}")
    if not 0.0 < soft.soft_start < 1.0:
        raise spec.error(f"{where}.soft_start", f"must be in (0, 1), got {soft.soft_start:g}")
    points = list(soft.annealing_points)
    for index, point in enumerate(points):
        if not 0.0 < point < 1.0:
            raise spec.error(f"{where}.annealing_points[{index}]", f"must be in (0, 1), got {point:g}")
    if points != sorted(points):
        raise spec.error(f"{where}.annealing_points", "annealing points must be in increasing order")
    if points and soft.annealing_divider <= 1.0:
        raise spec.error(f"{where}.annealing_divider", f"must be > 1.0, got {soft.annealing_divider:g}")


def _validate_inference(spec: LoadedSpec[pb.Experiment], config: pb.InferenceConfig, path: str,
                        dynamic: bool) -> None:
    _validate_proposals(spec, config, path)
    for field in ("bbox_visualize_threshold", "classifier_nms_overlap_threshold"):
        _open_interval(spec, config, path, field)
    if config.HasField("object_confidence_thres"):
        _open_interval(spec, config, path, "object_confidence_thres")
    if config.classifier_nms_max_boxes <= 0:
        raise spec.error(f"{path}.classifier_nms_max_boxes", "must be > 0, got 0")
    _validate_batch(spec, config, path, dynamic)
    if config.HasField("trt_inference"):
        _validate_trt(spec, config.trt_inference, f"{path}.trt_inference")


def _validate_evaluation(spec: LoadedSpec[pb.Experiment], config: pb.EvaluationConfig, path: str,
                         dynamic: bool) -> None:
    _validate_proposals(spec, config, path)
    for field in ("classifier_nms_overlap_threshold", "object_confidence_thres"):
        _open_interval(spec, config, path, field)
    if config.HasField("classifier_nms_max_boxes") and config.classifier_nms_max_boxes <= 0:
        raise spec.error(f"{path}.classifier_nms_max_boxes", "must be > 0, got 0")
    _validate_batch(spec, config, path, dynamic)
    if config.HasField("trt_evaluation"):
        _validate_trt(spec, config.trt_evaluation, f"{path}.trt_evaluation")
    single, ranged = config.HasField("gt_matching_iou_threshold"), config.HasField("gt_matching_iou_threshold_range")
    if single and ranged:
        raise spec.error(f"{path}.gt_matching_iou_threshold_range",
                         "gt_matching_iou_threshold and gt_matching_iou_threshold_range are exclusive")
    if single:
        _open_interval(spec, config, path, "gt_matching_iou_threshold")
    if ranged:
        rng = config.gt_matching_iou_threshold_range
        where = f"{path}.gt_matching_iou_threshold_range"
        _open_interval(spec, rng, where, "start")
        _open_interval(spec, rng, where, "step")
        if not 0.0 < rng.end <= 1.0:
            raise spec.error(f"{where}.end", f"must be in (0, 1], got {rng.end:g}")
        if rng.end <= rng.start:
            raise spec.error(f"{where}.end", f"must be greater than start ({rng.start:g}), got {rng.end:g}")


def _validate_batch(spec: LoadedSpec[pb.Experiment], config: Any, path: str, dynamic: bool) -> None:
    if config.HasField("batch_size") and config.batch_size <= 0:
        raise spec.error(f"{path}.batch_size", "must be > 0, got 0")
    if dynamic and config.HasField("batch_size") and config.batch_size != 1:
        raise spec.error(f"{path}.batch_size", f"a dynamic input shape (size_min) runs with batch size 1, "
                                               f"got {config.batch_size}")


def _validate_trt(spec: LoadedSpec[pb.Experiment], trt: pb.TrtInference, path: str) -> None:
    if trt.WhichOneof("trt_infer_model") is None:
        raise spec.error(path, "give trt_engine or etlt_model")
    if trt.trt_data_type not in TRT_DATA_TYPES:
        raise spec.error(f"{path}.trt_data_type", _unknown(trt.trt_data_type, TRT_DATA_TYPES))
    if trt.HasField("etlt_model"):
        if not trt.etlt_model.model:
            raise spec.error(f"{path}.etlt_model.model", "the .etlt model path is required")
        if trt.trt_data_type == "int8" and not trt.etlt_model.calibration_cache:
            raise spec.error(f"{path}.etlt_model", "INT8 inference on an .etlt model needs calibration_cache")


def _open_interval(spec: LoadedSpec[pb.Experiment], message: Any, path: str, field: str) -> None:
    value = getattr(message, field)
    if not 0.0 < value < 1.0:
        raise spec.error(f"{path}.{field}", f"must be in (0, 1), got {value:g}")


def _unknown(value: str, valid: Sequence[str]) -> str:
    text = f"unknown value {value!r} (valid: {', '.join(valid)})"
    close = difflib.get_close_matches(value, list(valid), n=1, cutoff=0.6)
    if close:
        text += f"; did you mean {close[0]!r}?"
    return text
