"""What ``tlt-infer detectnet_v2`` needs from DetectNet_v2 (000 §10.2, inference spec §7.2.9).

DetectNet_v2 infers from its own inference spec (``detectnet_v2_inference``): the model
(``inferencer_config.tlt_config.model``, or ``tensorrt_config``), its classes in output order
(``target_classes``, which must equal the ``classes`` recorded in the model), the network input size and the
per-class bbox handler (clustering, confidence model and threshold, output class name, box colour,
``kitti_dump``, ``disable_overlay``, ``overlay_linewidth``). :func:`inference_setup` turns it into the generic
``libtlt.registry.InferenceSetup`` that tlt-infer's box-detector path runs.

``tensorrt_config`` means TensorRT (the proto has no backend choice): without TensorRT installed it exits with
status 2 and the install hint; with it, ``trt_engine`` is loaded when it exists, else built from ``etlt_model``
at ``backend_data_type`` (INT8 with ``calibrator_config.calibration_cache``) and, with ``save_engine``, kept at
``trt_engine`` for reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import ModelFileError
from libtlt.log import get_logger
from libtlt.registry import InferenceSetup

logger = get_logger("libtlt.archs.detectnet_v2")

DEFAULT_KEY = "default"
#: Colours for classes whose handler sets no ``bbox_color`` (an explicit one, black included, is kept).
PALETTE = ((255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 190, 0), (200, 0, 200), (0, 200, 200), (255, 120, 60),
           (120, 60, 255))
DEFAULT_STRIDE = 16
DEFAULT_SCALE = 35.0
DEFAULT_OFFSET = 0.5


@dataclass(frozen=True)
class ClassHandler:
    """What the bbox handler does with one class's detections."""

    name: str  # the model's class name
    output_name: str  # written to the KITTI labels (output_map, default the class name)
    color: tuple[int, int, int]
    clustering: Any  # libtlt.layers.clustering.ClusteringConfig


def class_handlers(spec: Any, classes: Sequence[str]) -> list[ClassHandler]:
    """Per model class, its ``classwise_bbox_handler_config`` entry (or the ``default`` entry)."""
    from libtlt.layers.clustering import ClusteringConfig

    entries = {e.key: e.value for e in spec.message.bbox_handler_config.classwise_bbox_handler_config}
    handlers = []
    for index, name in enumerate(classes):
        config = entries.get(name, entries.get(DEFAULT_KEY))
        if config is None:
            raise spec.error("bbox_handler_config.classwise_bbox_handler_config",
                             f"no entry (and no \"default\") for class {name}")
        threshold = float(config.confidence_threshold) if config.HasField("confidence_threshold") else None
        clustering = ClusteringConfig.from_spec(config.clustering_config, confidence_model=config.confidence_model,
                                                confidence_threshold=threshold)
        if config.HasField("bbox_color"):
            color = (int(config.bbox_color.R), int(config.bbox_color.G), int(config.bbox_color.B))
        else:
            color = PALETTE[index % len(PALETTE)]
        output_name = config.output_map if config.HasField("output_map") and config.output_map else name
        handlers.append(ClassHandler(name, output_name, color, clustering))
    return handlers


def check_classes(spec: Any, model_classes: Sequence[str], model_path: str | Path) -> None:
    """``target_classes`` must be the model's classes in the model's output order."""
    target = list(spec.message.inferencer_config.target_classes)
    if target != list(model_classes):
        raise spec.error("inferencer_config.target_classes",
                         f"target_classes [{', '.join(target)}] disagree with the classes of {model_path} "
                         f"[{', '.join(model_classes)}] (same names, same order)")


def preprocess_rgb(image: np.ndarray) -> np.ndarray:
    """HWC uint8 at the network size → CHW float32 in [0, 1] (DetectNet_v2's RGB / 255)."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


class Decoder:
    """Network outputs of a batch → per-image clustered detections (network-input pixels), with the stride and
    bbox normalization the model records."""

    def __init__(self, model: Any, metadata: dict[str, Any], handlers: Sequence[ClassHandler]):
        self.configs = [h.clustering for h in handlers]
        self.stride = int(metadata.get("stride", DEFAULT_STRIDE))
        self.scale = float(metadata.get("bbox_scale", DEFAULT_SCALE))
        self.offset = float(metadata.get("bbox_offset", DEFAULT_OFFSET))
        names = [str(n) for n in getattr(model, "output_names", [])]
        if "output_cov" not in names or "output_bbox" not in names:
            raise ModelFileError(f"the network's outputs are [{', '.join(names)}], not output_cov and output_bbox")

    def __call__(self, outputs: dict[str, Any], count: int) -> list[Any]:
        from libtlt.layers.clustering import postprocess

        cov = np.asarray(outputs["output_cov"], dtype=np.float64)
        bbox = np.asarray(outputs["output_bbox"], dtype=np.float64)
        return [postprocess(cov[i], bbox[i], self.configs, stride=self.stride, scale=self.scale, offset=self.offset)
                for i in range(count)]


def inference_setup(spec_path: str | Path, key: str | None) -> InferenceSetup:
    """The inference spec's model, classes, decoding and outputs, checked against each other."""
    from libtlt.spec.experiments import load_experiment

    spec = load_experiment("detectnet_v2_inference", spec_path)
    config = spec.message.inferencer_config
    model, model_path = _load_predictor(spec, key)
    metadata = dict(model.metadata)
    if model.framework != "tlt":  # an engine may record no classes or input shape: the spec's are used
        metadata.setdefault("classes", list(config.target_classes))
        metadata.setdefault("input_shape", [int(config.image_channels), int(config.image_height),
                                            int(config.image_width)])
    classes = [str(c) for c in metadata.get("classes") or []]
    if not classes:
        raise ModelFileError("the model metadata lists no classes", location=model_path)
    check_classes(spec, classes, model_path)
    shape = _input_size(spec, metadata, model_path)
    handlers = class_handlers(spec, classes)
    bbox_handler = spec.message.bbox_handler_config
    return InferenceSetup(
        predictor=model,
        model_path=str(model_path),
        classes=classes,
        input_shape=shape,
        batch_size=max(int(config.batch_size), 1),
        preprocess=preprocess_rgb,
        decode=Decoder(model, metadata, handlers),
        label_names=[h.output_name for h in handlers],
        colors=[h.color for h in handlers],
        annotate=not bbox_handler.disable_overlay,
        write_labels=bool(bbox_handler.kitti_dump),
        linewidth=int(bbox_handler.overlay_linewidth),
        settings_field="bbox_handler_config",
    )


def _load_predictor(spec: Any, key: str | None) -> tuple[Any, str]:
    """The inference spec's model as a ``Predictor``, and its path."""
    from libtlt.runtime.predictor import make_predictor

    config = spec.message.inferencer_config
    if not config.HasField("tensorrt_config"):
        model_path = config.tlt_config.model
        if not Path(model_path).is_file():
            raise spec.error("inferencer_config.tlt_config.model", f"the model file {model_path} does not exist")
        return make_predictor(model_path, key, None, architecture="detectnet_v2"), model_path
    from libtlt.runtime.tensorrt_backend import import_tensorrt

    import_tensorrt()  # exit 2 with the install hint where TensorRT is missing
    trt = config.tensorrt_config
    if trt.trt_engine and Path(trt.trt_engine).is_file():
        logger.info("Loading the TensorRT engine %s", trt.trt_engine)
        return make_predictor(trt.trt_engine, key, "tensorrt", architecture="detectnet_v2"), trt.trt_engine
    if not trt.etlt_model or not Path(trt.etlt_model).is_file():
        raise spec.error("inferencer_config.tensorrt_config.etlt_model",
                         f"the .etlt model {trt.etlt_model or '(unset)'} does not exist (and no trt_engine to load)")
    precision = {0: "fp32", 1: "fp16", 2: "int8"}[int(trt.backend_data_type)]
    cal_cache = trt.calibrator_config.calibration_cache or None
    if precision == "int8" and not cal_cache:
        raise spec.error("inferencer_config.tensorrt_config.calibrator_config",
                         "backend_data_type INT8 needs calibrator_config.calibration_cache")
    if trt.save_engine and trt.trt_engine:
        from libtlt.runtime.onnxruntime_backend import read_onnx_source
        from libtlt.runtime.predictor import build_and_save_engine

        data, metadata = read_onnx_source(trt.etlt_model, key)
        build_and_save_engine(data, trt.trt_engine, metadata, backend="tensorrt", precision=precision,
                              cal_cache=cal_cache)
        logger.info("TensorRT engine saved to %s", trt.trt_engine)
        return make_predictor(trt.trt_engine, key, "tensorrt", architecture="detectnet_v2"), trt.trt_engine
    return make_predictor(trt.etlt_model, key, "tensorrt", architecture="detectnet_v2", precision=precision,
                          cal_cache=cal_cache), trt.etlt_model


def _input_size(spec: Any, metadata: dict[str, Any], model_path: str | Path) -> tuple[int, int, int]:
    """(C, H, W) of the network: the model's recorded input shape; the spec's must agree on the channels."""
    config = spec.message.inferencer_config
    shape = metadata.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 3):
        raise ModelFileError(f"the model metadata has no [C, H, W] input_shape (found {shape!r})", location=model_path)
    channels, height, width = (int(v) for v in shape)
    if config.image_channels != channels:
        raise spec.error("inferencer_config.image_channels",
                         f"image_channels is {config.image_channels} but the model takes {channels} channels")
    if (config.image_height, config.image_width) != (height, width):
        logger.warning("The spec's image size %dx%d differs from the model's input %dx%d; the model's is used",
                       config.image_width, config.image_height, width, height)
    return channels, height, width


def inference_spec_text(model: str | Path, classes: Sequence[str], width: int, height: int, *,
                        confidence_threshold: float, dbscan_eps: float, batch_size: int = 2,
                        colors: Mapping[str, tuple[int, int, int]] | None = None, linewidth: int = 2) -> str:
    """A complete inference spec (000 §7.2.9) for ``model``: labels and annotated images on, aggregate-coverage
    confidence, one handler per class with its colour when ``colors`` are given, else one ``default`` handler
    (``make demo`` and tests/archs write theirs with it)."""
    keys = [(name, colors[name]) for name in classes] if colors else [(DEFAULT_KEY, None)]
    handlers = ""
    for key, rgb in keys:
        color = "" if rgb is None else f"\n      bbox_color {{ R: {rgb[0]} G: {rgb[1]} B: {rgb[2]} }}"
        handlers += f"""
  classwise_bbox_handler_config {{
    key: "{key}"
    value {{
      confidence_model: "aggregate_cov"
      confidence_threshold: {confidence_threshold}{color}
      clustering_config {{ coverage_threshold: 0.005 dbscan_eps: {dbscan_eps} dbscan_min_samples: 0.05
                          minimum_bounding_box_height: 4 }}
    }}
  }}"""
    targets = "\n".join(f'  target_classes: "{name}"' for name in classes)
    return f"""inferencer_config {{
{targets}
  image_width: {width}
  image_height: {height}
  image_channels: 3
  batch_size: {batch_size}
  tlt_config {{ model: "{model}" }}
}}
bbox_handler_config {{
  kitti_dump: true
  disable_overlay: false
  overlay_linewidth: {linewidth}{handlers}
}}
"""
