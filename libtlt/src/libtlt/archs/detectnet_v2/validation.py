"""Semantic checks of DetectNet_v2 specs: the "Supported Values" of 000 §7.2 (and 001's additions).

``validate`` takes either spec: the experiment spec of tlt-train / tlt-evaluate
(``detectnet_v2_pb2.Experiment``) or the tlt-infer spec (``detectnet_v2_pb2.InferenceSpec``).
"""

from __future__ import annotations

from typing import Any

from libtlt.spec import values
from libtlt.spec.backbones import DETECTNET_V2_ARCHS, SHORTCUT_ARCHS
from libtlt.spec.loader import LoadedSpec
from libtlt.spec.protos import detectnet_v2_pb2

#: Chapter 3: W >= 480, H >= 272, multiples of 16 (the 16x16 output grid).
MIN_WIDTH, MIN_HEIGHT, MULTIPLE = 480, 272, 16
OBJECTIVES = ("cov", "bbox")
CONFIDENCE_MODELS = ("aggregate_cov", "mean_cov")


def validate(spec: LoadedSpec[Any]) -> None:
    """Raise ``SpecError`` (file:line, field) for the first unsupported value."""
    if isinstance(spec.message, detectnet_v2_pb2.InferenceSpec):
        validate_inference(spec)
    else:
        validate_experiment(spec)


def validate_experiment(spec: LoadedSpec[Any]) -> None:
    classes = values.check_dataset_config(spec)
    values.check_augmentation_config(spec, min_width=MIN_WIDTH, min_height=MIN_HEIGHT, multiple=MULTIPLE)
    values.check_training_config(spec)
    _check_model_config(spec)
    _check_cost_function(spec, classes)
    _check_rasterizer(spec, classes)
    _check_postprocessing(spec, classes)
    _check_evaluation(spec, classes)


def _check_model_config(spec: LoadedSpec[Any]) -> None:
    if not spec.message.HasField("model_config"):
        raise spec.error("model_config", "model_config is required")
    config = spec.message.model_config
    values.check_backbone(spec, "model_config", config, DETECTNET_V2_ARCHS, depth_field="num_layers",
                          strict_depth=False)
    if config.all_projections and config.arch not in SHORTCUT_ARCHS:
        raise spec.error("model_config.all_projections",
                         f"only applies to templates with shortcuts ({', '.join(SHORTCUT_ARCHS)}), not {config.arch}")
    values.check_range(spec, "model_config.dropout_rate", config.dropout_rate, 0.0, 0.1)
    if config.load_graph and not config.pretrained_model_file:
        raise spec.error("model_config.load_graph", "load_graph needs pretrained_model_file")
    objectives = config.objective_set
    for name in OBJECTIVES:
        if not objectives.HasField(name):
            raise spec.error(f"model_config.objective_set.{name}" if config.HasField("objective_set")
                             else "model_config.objective_set",
                             "objective_set must contain cov {} and bbox {scale offset} for object detection")
    values.check_range(spec, "model_config.objective_set.bbox.scale", objectives.bbox.scale, 0.0, low_open=True)
    if config.training_precision.backend_floatx != detectnet_v2_pb2.TrainingPrecision.FLOAT32:
        raise spec.error("model_config.training_precision.backend_floatx",
                         "only FLOAT32 is supported (use tlt-train --use_amp for mixed precision)")


def _check_cost_function(spec: LoadedSpec[Any], classes: list[str]) -> None:
    config = spec.message.cost_function_config
    field = "cost_function_config.target_classes"
    if not config.target_classes:
        raise spec.error(field, "cost_function_config needs one target_classes entry per target class")
    names = [t.name for t in config.target_classes]
    values.check_unique(spec, field, names, "target class")
    for index, target in enumerate(config.target_classes):
        if target.name not in classes:
            raise spec.error(f"{field}[{index}].name",
                             f"{target.name!r} is not a target class of dataset_config.target_class_mapping "
                             f"({', '.join(classes)})")
        values.check_range(spec, f"{field}[{index}].class_weight", target.class_weight, 0.0)
        values.check_probability(spec, f"{field}[{index}].coverage_foreground_weight",
                                 target.coverage_foreground_weight)
        objective_names = [o.name for o in target.objectives]
        values.check_unique(spec, f"{field}[{index}].objectives", objective_names, "objective")
        for k, objective in enumerate(target.objectives):
            where = f"{field}[{index}].objectives[{k}]"
            if objective.name not in OBJECTIVES:
                raise spec.error(f"{where}.name", f"must be cov or bbox, got {objective.name!r}")
            values.check_range(spec, f"{where}.initial_weight", objective.initial_weight, 0.0)
            values.check_range(spec, f"{where}.weight_target", objective.weight_target, 0.0)
        missing_objectives = [o for o in OBJECTIVES if o not in objective_names]
        if missing_objectives:
            raise spec.error(f"{field}[{index}]", f"objectives {', '.join(missing_objectives)} missing")
    missing = [c for c in classes if c not in names]
    if missing:
        raise spec.error(field, f"no target_classes entry for target class(es) {', '.join(missing)}")
    if config.HasField("min_objective_weight") or config.HasField("max_objective_weight"):
        values.check_probability(spec, "cost_function_config.min_objective_weight", config.min_objective_weight)
        values.check_probability(spec, "cost_function_config.max_objective_weight", config.max_objective_weight)
        if config.min_objective_weight > config.max_objective_weight:
            raise spec.error("cost_function_config.min_objective_weight",
                             f"must be <= max_objective_weight ({config.max_objective_weight:g})")


def _check_rasterizer(spec: LoadedSpec[Any], classes: list[str]) -> None:
    config = spec.message.bbox_rasterizer_config
    field = "bbox_rasterizer_config.target_class_config"
    values.check_known_classes(spec, field, [e.key for e in config.target_class_config], classes, complete=True)
    for index, entry in enumerate(config.target_class_config):
        for name in ("cov_center_x", "cov_center_y", "cov_radius_x", "cov_radius_y", "bbox_min_radius"):
            values.check_probability(spec, f"{field}[{index}].value.{name}", getattr(entry.value, name))
    values.check_probability(spec, "bbox_rasterizer_config.deadzone_radius", config.deadzone_radius)


def _check_postprocessing(spec: LoadedSpec[Any], classes: list[str]) -> None:
    config = spec.message.postprocessing_config
    field = "postprocessing_config.target_class_config"
    values.check_known_classes(spec, field, [e.key for e in config.target_class_config], classes, complete=True)
    height = spec.message.augmentation_config.preprocessing.output_image_height
    for index, entry in enumerate(config.target_class_config):
        _check_clustering(spec, f"{field}[{index}].value.clustering_config", entry.value.clustering_config, height)


def _check_clustering(spec: LoadedSpec[Any], field: str, config: Any, max_height: int | None) -> None:
    values.check_probability(spec, f"{field}.coverage_threshold", config.coverage_threshold)
    values.check_probability(spec, f"{field}.dbscan_eps", config.dbscan_eps)
    values.check_probability(spec, f"{field}.dbscan_min_samples", config.dbscan_min_samples)
    values.check_range(spec, f"{field}.minimum_bounding_box_height", config.minimum_bounding_box_height, 0, max_height)
    algorithm = config.clustering_algorithm
    if algorithm in (config.DBSCAN, config.HYBRID):
        values.check_range(spec, f"{field}.dbscan_confidence_threshold", config.dbscan_confidence_threshold, 0.0,
                           low_open=True)
    if algorithm in (config.NMS, config.HYBRID):
        values.check_range(spec, f"{field}.nms_iou_threshold", config.nms_iou_threshold, 0.0, 1.0,
                           low_open=True, high_open=True)
        values.check_probability(spec, f"{field}.nms_confidence_threshold", config.nms_confidence_threshold)


def _check_evaluation(spec: LoadedSpec[Any], classes: list[str]) -> None:
    config = spec.message.evaluation_config
    epochs = spec.message.training_config.num_epochs
    for name in ("validation_period_during_training", "first_validation_epoch"):
        value = getattr(config, name)
        if not 1 <= value <= epochs:
            raise spec.error(f"evaluation_config.{name}", f"must be in [1, num_epochs ({epochs})], got {value}")
    field = "evaluation_config.minimum_detection_ground_truth_overlap"
    overlaps = config.minimum_detection_ground_truth_overlap
    values.check_known_classes(spec, field, [e.key for e in overlaps], classes, complete=False)
    for index, entry in enumerate(overlaps):
        values.check_range(spec, f"{field}[{index}].value", entry.value, 0.0, 1.0, low_open=True)
    field = "evaluation_config.evaluation_box_config"
    boxes = config.evaluation_box_config
    values.check_known_classes(spec, field, [e.key for e in boxes], classes, complete=False)
    for index, entry in enumerate(boxes):
        box = entry.value
        for name in ("minimum_height", "minimum_width"):
            values.check_range(spec, f"{field}[{index}].value.{name}", getattr(box, name), 0.0)
        if box.maximum_height < box.minimum_height:
            raise spec.error(f"{field}[{index}].value.maximum_height",
                             f"must be >= minimum_height ({box.minimum_height:g}), got {box.maximum_height:g}")
        if box.maximum_width < box.minimum_width:
            raise spec.error(f"{field}[{index}].value.maximum_width",
                             f"must be >= minimum_width ({box.minimum_width:g}), got {box.maximum_width:g}")


# ------------------------------------------------------------------------------------- tlt-infer spec


def validate_inference(spec: LoadedSpec[Any]) -> None:
    """000 §7.2.9: inferencer_config and bbox_handler_config."""
    message = spec.message
    if not message.HasField("inferencer_config"):
        raise spec.error("inferencer_config", "inferencer_config is required")
    config = message.inferencer_config
    classes = list(config.target_classes)
    if not classes:
        raise spec.error("inferencer_config.target_classes", "target_classes is required (the network's classes)")
    values.check_unique(spec, "inferencer_config.target_classes", classes, "target class")
    for name in ("image_width", "image_height"):
        size = getattr(config, name)
        if size <= 16:
            raise spec.error(f"inferencer_config.{name}", f"must be > 16, got {size}")
    if config.image_channels not in (1, 3):
        raise spec.error("inferencer_config.image_channels", f"must be 1 or 3, got {config.image_channels}")
    if config.batch_size < 1:
        raise spec.error("inferencer_config.batch_size", f"must be > 0, got {config.batch_size}")
    has_trt, has_tlt = config.HasField("tensorrt_config"), config.HasField("tlt_config")
    if has_trt == has_tlt:
        raise spec.error("inferencer_config.tlt_config" if has_tlt else "inferencer_config",
                         "exactly one of tensorrt_config and tlt_config is required")
    if has_tlt and not config.tlt_config.model:
        raise spec.error("inferencer_config.tlt_config.model", "model (the .tlt file) is required")
    if has_trt:
        trt = config.tensorrt_config
        if not trt.etlt_model and not trt.trt_engine:
            raise spec.error("inferencer_config.tensorrt_config", "etlt_model or trt_engine is required")
        if trt.save_engine and not trt.trt_engine:
            raise spec.error("inferencer_config.tensorrt_config.save_engine", "save_engine needs trt_engine (the path)")
        if trt.backend_data_type == trt.INT8 and not trt.calibrator_config.calibration_cache:
            raise spec.error("inferencer_config.tensorrt_config.backend_data_type",
                             "INT8 needs calibrator_config.calibration_cache")
    _check_bbox_handler(spec, classes, config.image_height)


def _check_bbox_handler(spec: LoadedSpec[Any], classes: list[str], image_height: int) -> None:
    config = spec.message.bbox_handler_config
    if config.overlay_linewidth < 1:
        raise spec.error("bbox_handler_config.overlay_linewidth", f"must be >= 1, got {config.overlay_linewidth}")
    field = "bbox_handler_config.classwise_bbox_handler_config"
    entries = config.classwise_bbox_handler_config
    keys = [e.key for e in entries]
    values.check_known_classes(spec, field, keys, classes, complete=False, extra=("default",))
    missing = [c for c in classes if c not in keys]
    if missing and "default" not in keys:
        raise spec.error(field, f"no entry (and no \"default\") for class(es) {', '.join(missing)}")
    for index, entry in enumerate(entries):
        where = f"{field}[{index}].value"
        handler = entry.value
        if handler.confidence_model not in CONFIDENCE_MODELS:
            raise spec.error(f"{where}.confidence_model",
                             f"must be aggregate_cov or mean_cov, got {handler.confidence_model!r}")
        if handler.HasField("confidence_threshold"):
            if handler.confidence_model == "mean_cov":
                values.check_probability(spec, f"{where}.confidence_threshold", handler.confidence_threshold)
            else:
                values.check_range(spec, f"{where}.confidence_threshold", handler.confidence_threshold, 0.0,
                                   low_open=True)
        for channel in ("R", "G", "B"):
            values.check_range(spec, f"{where}.bbox_color.{channel}", getattr(handler.bbox_color, channel), 0, 255)
        _check_clustering(spec, f"{where}.clustering_config", handler.clustering_config, image_height)
