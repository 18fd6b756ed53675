"""``tlt-infer detectnet_v2`` (000 §10.2, inference spec §7.2.9): boxes on images, KITTI labels with confidence.

The inference spec names the model (``inferencer_config.tlt_config.model``), its classes in output order
(``target_classes``, which must equal the ``classes`` recorded in the ``.tlt``), the network input size and the
per-class bbox handler (clustering, confidence model and threshold, output class name, box colour). Images of any
size are resized to the network input, run through the network and post-processed per class; the boxes are then
mapped back to the original image's pixels. Outputs, each written atomically:

* ``OUT/images_annotated/<image name>`` — the original image with the boxes drawn in the class's ``bbox_color``
  and ``overlay_linewidth`` (only when ``disable_overlay`` is false);
* ``OUT/labels/<image stem>.txt`` — one KITTI line per box with the confidence as a 16th field (only when
  ``kitti_dump`` is true).

``tlt_config.model`` may be a ``.tlt`` (Keras), an ``.etlt`` (decrypted in memory, run with onnxruntime) or an
engine built by tlt-converter / ``tlt-export --engine_file`` (run by the backend that built it). ``tensorrt_config``
means TensorRT (the proto has no backend choice): without TensorRT installed it exits with status 2 and the install
hint; with it, ``trt_engine`` is loaded when it exists, else built from ``etlt_model`` at ``backend_data_type``
(INT8 with ``calibrator_config.calibration_cache``) and, with ``save_engine``, kept at ``trt_engine`` for reuse.
Pre- and post-processing are the same for every runtime (``libtlt.runtime.predictor``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from libtlt.errors import DataError, ModelFileError
from libtlt.log import get_logger

logger = get_logger("tlt_infer.detectnet_v2")

ANNOTATED_DIR = "images_annotated"
LABELS_DIR = "labels"
DEFAULT_KEY = "default"
#: Pillow modes by the number of colour channels they carry (alpha does not count).
_ONE_CHANNEL_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
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


@dataclass(frozen=True)
class ImageResult:
    """One image's detections in its original pixels (``boxes`` [M, 4], ``confidences`` [M], ``class_ids`` [M])."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray


# ----------------------------------------------------------------------------------------------- spec


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


# --------------------------------------------------------------------------------------------- images


def list_inputs(path: str | Path) -> list[Path]:
    """``path`` itself when it is a file, else the image files directly inside the directory, sorted by name."""
    from libtlt.io.images import is_image_file

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("no such image or directory", location=path)
    images = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
    if not images:
        raise DataError("the directory holds no .jpg, .jpeg or .png images", location=path)
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise DataError(f"{stems[image.stem].name} and {image.name} would both write labels/{image.stem}.txt; "
                            "rename one of them", location=path)
        stems[image.stem] = image
    return images


def channel_count(image: Image.Image) -> int:
    """Colour channels of a Pillow image (1 for greyscale modes, 3 otherwise; alpha is ignored)."""
    return 1 if image.mode in _ONE_CHANNEL_MODES else 3


def load_image(path: Path, channels: int) -> np.ndarray:
    """The image as HWC uint8 with ``channels`` channels; a greyscale image for a colour model (or the reverse)
    is an error naming the file."""
    from libtlt.io.images import read_image

    try:
        with Image.open(path) as image:
            found = channel_count(image)
    except OSError:
        found = channels  # read_image reports the unreadable file
    if found != channels:
        raise DataError(f"the image has {found} channel{'s' if found > 1 else ''} but the model expects {channels} "
                        f"(inferencer_config.image_channels)", location=path)
    return read_image(path, channels=channels)


def preprocess(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """HWC uint8 → CHW float32 in [0, 1] at the network size (bilinear resize; DetectNet_v2's RGB/255)."""
    if image.shape[1] != width or image.shape[0] != height:
        mode_image = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        resized = np.asarray(mode_image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        image = resized.reshape(height, width, -1)
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def map_boxes_back(boxes: np.ndarray, *, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Scale ``[M, 4]`` boxes from the network input ``(width, height)`` to the original image's and clip them."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sx = to_size[0] / from_size[0]
    sy = to_size[1] / from_size[1]
    mapped = boxes * np.array([sx, sy, sx, sy])
    mapped[:, 0::2] = np.clip(mapped[:, 0::2], 0.0, float(to_size[0]))
    mapped[:, 1::2] = np.clip(mapped[:, 1::2], 0.0, float(to_size[1]))
    return mapped


# -------------------------------------------------------------------------------------------- outputs


def kitti_text(result: ImageResult, handlers: Sequence[ClassHandler]) -> str:
    from libtlt.io.kitti import format_labels, make_object

    objects = [make_object(handlers[int(c)].output_name, box, float(conf))
               for box, conf, c in zip(result.boxes, result.confidences, result.class_ids, strict=True)]
    return format_labels(objects) if objects else ""


def draw_boxes(image: np.ndarray, result: ImageResult, handlers: Sequence[ClassHandler], linewidth: int) -> np.ndarray:
    """The image (HWC uint8) as RGB with every box outlined in its class's colour, ``linewidth`` pixels wide."""
    canvas = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for box, c in zip(result.boxes, result.class_ids, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 <= x1 or y2 <= y1:
            continue
        draw.rectangle((x1, y1, max(x2 - 1, x1), max(y2 - 1, y1)), outline=handlers[int(c)].color, width=linewidth)
    return np.asarray(canvas)


# -------------------------------------------------------------------------------------------- running


class DetectNetRunner:
    """A DetectNet_v2 model (a ``libtlt.runtime.predictor.Predictor``) plus its post-processing: batches of CHW
    images → per-image detections."""

    def __init__(self, model: Any, metadata: dict[str, Any], handlers: Sequence[ClassHandler]):
        self.model = model
        self.metadata = metadata
        self.handlers = list(handlers)
        self.stride = int(metadata.get("stride", DEFAULT_STRIDE))
        self.scale = float(metadata.get("bbox_scale", DEFAULT_SCALE))
        self.offset = float(metadata.get("bbox_offset", DEFAULT_OFFSET))
        names = [str(n) for n in getattr(model, "output_names", [])]
        if "output_cov" not in names or "output_bbox" not in names:
            raise ModelFileError(f"the network's outputs are [{', '.join(names)}], not output_cov and output_bbox")\
                from None

    def __call__(self, batch: np.ndarray) -> list[Any]:
        from libtlt.layers.clustering import postprocess

        outputs = self.model(batch)
        cov = np.asarray(outputs["output_cov"], dtype=np.float64)
        bbox = np.asarray(outputs["output_bbox"], dtype=np.float64)
        configs = [h.clustering for h in self.handlers]
        return [postprocess(cov[i], bbox[i], configs, stride=self.stride, scale=self.scale, offset=self.offset)
                for i in range(len(batch))]


def _batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def infer_detectnet_v2(inference_spec: str | Path, inference_input: str | Path, inference_output: str | Path,
                       key: str | None) -> list[ImageResult]:
    """Run the inference spec's model on one image or a directory of images; write annotated images and labels."""
    from libtlt.io.atomic import write_text
    from libtlt.io.images import write_image
    from libtlt.log import progress
    from libtlt.spec.experiments import load_experiment

    spec = load_experiment("detectnet_v2_inference", inference_spec)
    config = spec.message.inferencer_config
    images = list_inputs(inference_input)
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
    channels, height, width = _input_size(spec, metadata, model_path)
    handlers = class_handlers(spec, classes)
    runner = DetectNetRunner(model, metadata, handlers)
    bbox_handler = spec.message.bbox_handler_config
    out = Path(inference_output)
    annotated_dir, labels_dir = out / ANNOTATED_DIR, out / LABELS_DIR
    if not bbox_handler.disable_overlay:
        annotated_dir.mkdir(parents=True, exist_ok=True)
    if bbox_handler.kitti_dump:
        labels_dir.mkdir(parents=True, exist_ok=True)
    if bbox_handler.disable_overlay and not bbox_handler.kitti_dump:
        logger.warning("bbox_handler_config has disable_overlay: true and kitti_dump: false: nothing will be written")
    logger.info("Running %s on %d image(s) at %dx%d", model_path, len(images), width, height)

    results: list[ImageResult] = []
    batch_size = max(int(config.batch_size), 1)
    with progress(total=len(images), unit="img", desc="Inference", leave=False) as bar:
        for paths in _batches(images, batch_size):
            originals = [load_image(p, channels) for p in paths]
            batch = np.stack([preprocess(a, width, height) for a in originals])
            for path, original, detections in zip(paths, originals, runner(batch), strict=True):
                size = (original.shape[1], original.shape[0])
                result = ImageResult(path, size[0], size[1],
                                     map_boxes_back(detections.boxes, from_size=(width, height), to_size=size),
                                     detections.confidences, detections.class_ids)
                if bbox_handler.kitti_dump:
                    write_text(labels_dir / f"{path.stem}.txt", kitti_text(result, handlers), fsync=False)
                if not bbox_handler.disable_overlay:
                    write_image(annotated_dir / path.name,
                                draw_boxes(original, result, handlers, int(bbox_handler.overlay_linewidth)))
                results.append(result)
                bar.update(1)
    total = sum(len(r.confidences) for r in results)
    logger.info("%d object(s) found in %d image(s); outputs in %s", total, len(results), out)
    return results


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
