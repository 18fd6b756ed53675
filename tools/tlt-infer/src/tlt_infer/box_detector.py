"""``tlt-infer ARCH`` for every box detector and instance segmenter (000 §10): boxes (and masks) on images, KITTI
labels with confidence.

One path for all of them; the architecture (``libtlt.registry``, task ``box_detector``) turns its spec into an
``InferenceSetup``: the model (any runtime: ``.tlt`` with Keras, ``.etlt`` or engines with onnxruntime or
TensorRT), its classes, the network input, the preprocessing, the decoding of the outputs and the per-class
label names and colours. Images of any size are resized to the network input (or, when the setup says
``keep_aspect``, scaled keeping their aspect ratio and padded at the bottom and right, as MaskRCNN trains), run
through the network and decoded; the boxes are then mapped back to the original image's pixels. Outputs, each
written atomically:

* ``OUT/images_annotated/<image name>`` — the original image with the boxes drawn in the class's colour (when
  the setup asks for annotated images);
* ``OUT/labels/<image stem>.txt`` — one KITTI line per box with the confidence as a 16th field (when the setup
  asks for labels).

An instance segmenter's detections also carry masks (on the network-input grid); they are resized to the original
image (bilinear, threshold 0.5), drawn translucent in the class's colour under the boxes, and written as
``OUT/masks/<image stem>.png``: an instance map whose pixel value k (1, 2, ...) is the object of the k-th line of
the image's label file, 0 elsewhere (8-bit; 16-bit past 255 objects); where masks overlap, the earlier line wins.
With ``-l`` (``out_label_file``, 000 §10.8's ``--out_label_file``) its detections are also written in COCO's results
format (:func:`coco_results`): one json file for all images when the path ends in ``.json``, else
``<path>/<image stem>.json`` per image (004's frame-by-frame labels).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from libtlt.errors import DataError
from libtlt.log import get_logger

logger = get_logger("tlt_infer.box_detector")

ANNOTATED_DIR = "images_annotated"
LABELS_DIR = "labels"
MASKS_DIR = "masks"
#: Opacity of the masks drawn on annotated images.
MASK_ALPHA = 0.45
#: Pillow modes by the number of colour channels they carry (alpha does not count).
_ONE_CHANNEL_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass(frozen=True)
class ImageResult:
    """One image's detections in its original pixels (``boxes`` [M, 4], ``confidences`` [M], ``class_ids`` [M])."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    confidences: np.ndarray
    class_ids: np.ndarray
    masks: np.ndarray | None = None  # [M, height, width] bool: an instance segmenter's


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
        raise DataError(f"the image has {found} channel{'s' if found > 1 else ''} but the model expects {channels}",
                        location=path)
    return read_image(path, channels=channels)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """HWC uint8 at the network size (bilinear)."""
    if image.shape[1] != width or image.shape[0] != height:
        mode_image = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        resized = np.asarray(mode_image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        image = resized.reshape(height, width, -1)
    return image


def letterbox_size(width: int, height: int, net_width: int, net_height: int) -> tuple[float, tuple[int, int]]:
    """``(s, (w', h'))``: the aspect-keeping factor ``s = min(H/h, W/w)`` and the image's size scaled by it, rounded
    in float32 as a TensorFlow pipeline rounds it (MaskRCNN's ``data.py``), so both see the same pixels."""
    scale32 = min(np.float32(net_height) / np.float32(height), np.float32(net_width) / np.float32(width))
    fitted = (min(int(np.rint(np.float32(width) * scale32)), net_width),
              min(int(np.rint(np.float32(height) * scale32)), net_height))
    return min(net_height / height, net_width / width), fitted


def network_input(image: np.ndarray, setup: Any, net_size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int],
                                                                                      float | None]:
    """``(CHW network input, (width, height) the image was resized to, letterbox factor or None)``: stretched to
    ``net_size``, or with ``setup.keep_aspect`` scaled, preprocessed, then zero-padded at the bottom and right."""
    if not setup.keep_aspect:
        return setup.preprocess(resize(image, *net_size)), net_size, None
    scale, fitted = letterbox_size(image.shape[1], image.shape[0], *net_size)
    chw = np.asarray(setup.preprocess(resize(image, *fitted)))
    padded = np.zeros((chw.shape[0], net_size[1], net_size[0]), chw.dtype)
    padded[:, :fitted[1], :fitted[0]] = chw
    return padded, fitted, scale


def map_boxes_back(boxes: np.ndarray, *, from_size: tuple[int, int], to_size: tuple[int, int],
                   scale: float | None = None) -> np.ndarray:
    """Scale ``[M, 4]`` boxes from the network input ``(width, height)`` to the original image's and clip them;
    a letterboxed input's boxes are divided by its ``scale`` instead (its padding holds no image)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if scale is None:
        sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    else:
        sx = sy = 1.0 / scale
    mapped = boxes * np.array([sx, sy, sx, sy])
    mapped[:, 0::2] = np.clip(mapped[:, 0::2], 0.0, float(to_size[0]))
    mapped[:, 1::2] = np.clip(mapped[:, 1::2], 0.0, float(to_size[1]))
    return mapped


def map_masks_back(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[M, h, w]`` mask probabilities on the network grid → ``[M, H, W]`` bool at the image ``size`` (W, H)."""
    masks = np.asarray(masks, dtype=np.float32)
    width, height = size
    if masks.shape[1:] == (height, width):
        return masks >= 0.5
    resized = [np.asarray(Image.fromarray(m, mode="F").resize((width, height), Image.Resampling.BILINEAR))
               for m in masks]
    return np.stack(resized) >= 0.5 if resized else np.zeros((0, height, width), bool)


# -------------------------------------------------------------------------------------------- outputs


def kitti_text(result: ImageResult, label_names: Sequence[str]) -> str:
    from libtlt.io.kitti import format_labels, make_object

    objects = [make_object(label_names[int(c)], box, float(conf))
               for box, conf, c in zip(result.boxes, result.confidences, result.class_ids, strict=True)]
    return format_labels(objects) if objects else ""


def instance_map(masks: np.ndarray) -> np.ndarray:
    """``[M, H, W]`` bool → ``[H, W]`` map of 1-based instance numbers (0: none; the earlier instance wins)."""
    dtype = np.uint8 if len(masks) < 256 else np.uint16
    out = np.zeros(masks.shape[1:], dtype)
    for number, mask in enumerate(masks, start=1):
        out[(out == 0) & mask] = number
    return out


def png_bytes(array: np.ndarray) -> bytes:
    """A 2-D uint8 or uint16 array as a greyscale PNG (8 or 16 bits)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def coco_image_ids(paths: Sequence[Path]) -> list[int]:
    """COCO image ids of the inputs: each file's stem when every stem is a distinct integer (COCO's own file names,
    ``000000397133.jpg``), else 1, 2, ... in file order (the order of ``list_inputs``)."""
    if all(p.stem.isdigit() for p in paths) and len({int(p.stem) for p in paths}) == len(paths):
        return [int(p.stem) for p in paths]
    return list(range(1, len(paths) + 1))


def coco_results(result: ImageResult, image_id: int) -> list[dict[str, Any]]:
    """One image's detections in COCO's results format: ``category_id`` = the class id (an instance segmenter's
    are COCO category ids), ``bbox`` [x, y, width, height] and ``segmentation`` (compressed RLE, counts as text)
    in the original image's pixels."""
    from libtlt.metrics.coco import result_entry

    masks = result.masks if result.masks is not None else [None] * len(result.boxes)
    return [result_entry(image_id, box, score, class_id, mask) for box, score, class_id, mask in
            zip(result.boxes, result.confidences, result.class_ids, masks, strict=True)]


def draw_boxes(image: np.ndarray, result: ImageResult, colors: Sequence[tuple[int, int, int]],
               linewidth: int) -> np.ndarray:
    """The image (HWC uint8) as RGB with every box outlined in its class's colour, ``linewidth`` pixels wide, over
    its mask (translucent) when it has one."""
    rgb = np.asarray(Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB"))
    if result.masks is not None and len(result.masks):
        blended = rgb.astype(np.float32)
        for mask, c in zip(result.masks, result.class_ids, strict=True):
            blended[mask] = (1.0 - MASK_ALPHA) * blended[mask] + MASK_ALPHA * np.asarray(colors[int(c)], np.float32)
        rgb = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    for box, c in zip(result.boxes, result.class_ids, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 <= x1 or y2 <= y1:
            continue
        draw.rectangle((x1, y1, max(x2 - 1, x1), max(y2 - 1, y1)), outline=colors[int(c)], width=linewidth)
    return np.asarray(canvas)


# -------------------------------------------------------------------------------------------- running


def _batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def infer_box_detector(arch_name: str, spec_path: str | Path, inference_input: str | Path | None,
                       inference_output: str | Path | None, key: str | None, *,
                       out_label_file: str | Path | None = None, **options: Any) -> list[ImageResult]:
    """Run the spec's model on one image or a directory of images; write annotated images and labels (and COCO
    results to ``out_label_file``, module docstring). Without ``inference_input`` / ``inference_output`` the
    setup's ``images_dir`` / ``annotated_dir`` and ``labels_dir`` (from the spec, where the architecture's spec
    names them) are used."""
    import json

    import click

    from libtlt.io.atomic import write_bytes, write_text
    from libtlt.io.images import write_image
    from libtlt.log import progress
    from libtlt.registry import get_architecture

    setup = get_architecture(arch_name).inference_setup(spec_path, key, **options)
    if inference_input is None:
        if not setup.images_dir:
            raise click.UsageError("missing -i IMAGES (the spec names no images to run on)")
        inference_input = setup.images_dir
    images = list_inputs(inference_input)
    channels, height, width = setup.input_shape
    if inference_output is not None:
        out = Path(inference_output)
        annotated_dir, labels_dir, masks_dir = out / ANNOTATED_DIR, out / LABELS_DIR, out / MASKS_DIR
    elif setup.annotated_dir or setup.labels_dir:
        annotated_dir, labels_dir = Path(setup.annotated_dir or "."), Path(setup.labels_dir or ".")
        masks_dir = labels_dir.parent / MASKS_DIR
        setup.annotate, setup.write_labels = setup.annotate and bool(setup.annotated_dir), \
            setup.write_labels and bool(setup.labels_dir)
        out = labels_dir if setup.labels_dir else annotated_dir
    else:
        raise click.UsageError("missing -o OUTPUT_DIR (the spec names no output folders)")
    if setup.annotate:
        annotated_dir.mkdir(parents=True, exist_ok=True)
    if setup.write_labels:
        labels_dir.mkdir(parents=True, exist_ok=True)
    if not setup.annotate and not setup.write_labels:
        logger.warning("%s asks for neither annotated images nor labels: nothing will be written",
                       setup.settings_field or "the spec")
    coco_file = coco_dir = None
    if out_label_file is not None:
        if str(out_label_file).lower().endswith(".json"):
            coco_file = Path(out_label_file)
            coco_file.parent.mkdir(parents=True, exist_ok=True)
        else:
            coco_dir = Path(out_label_file)
            coco_dir.mkdir(parents=True, exist_ok=True)
    image_ids = dict(zip(images, coco_image_ids(images), strict=True))
    coco: list[dict[str, Any]] = []
    any_size = setup.input_size  # a network of any input size: each image at its own size, one per batch
    logger.info("Running %s on %d image(s) at %s", setup.model_path, len(images),
                "each image's own size" if any_size else f"{width}x{height}")

    results: list[ImageResult] = []
    with progress(total=len(images), unit="img", desc="Inference", leave=False) as bar:
        for paths in _batches(images, 1 if any_size else setup.batch_size):
            originals = [load_image(p, channels) for p in paths]
            net_size = any_size(originals[0].shape[1], originals[0].shape[0]) if any_size else (width, height)
            placed = [network_input(a, setup, net_size) for a in originals]
            batch = np.stack([p[0] for p in placed])
            outputs = setup.predictor(batch)
            found = setup.decode(outputs, len(paths), net_size) if any_size else setup.decode(outputs, len(paths))
            for path, original, (_, fitted, scale), detections in zip(paths, originals, placed, found, strict=True):
                size = (original.shape[1], original.shape[0])
                masks = getattr(detections, "masks", None)
                if masks is not None:  # the image's part of the network grid (all of it unless letterboxed)
                    masks = map_masks_back(np.asarray(masks)[:, :fitted[1], :fitted[0]], size)
                result = ImageResult(path, size[0], size[1],
                                     map_boxes_back(detections.boxes, from_size=fitted, to_size=size, scale=scale),
                                     detections.confidences, detections.class_ids, masks)
                if setup.write_labels:
                    write_text(labels_dir / f"{path.stem}.txt", kitti_text(result, setup.label_names), fsync=False)
                    if result.masks is not None:
                        masks_dir.mkdir(parents=True, exist_ok=True)
                        write_bytes(masks_dir / f"{path.stem}.png", png_bytes(instance_map(result.masks)))
                if out_label_file is not None:
                    found_here = coco_results(result, image_ids[path])
                    coco += found_here
                    if coco_dir is not None:
                        write_text(coco_dir / f"{path.stem}.json", json.dumps(found_here) + "\n", fsync=False)
                if setup.annotate:
                    write_image(annotated_dir / path.name, draw_boxes(original, result, setup.colors, setup.linewidth))
                results.append(result)
                bar.update(1)
    if coco_file is not None:
        write_text(coco_file, json.dumps(coco) + "\n")
    total = sum(len(r.confidences) for r in results)
    logger.info("%d object(s) found in %d image(s); outputs in %s", total, len(results), out)
    return results
