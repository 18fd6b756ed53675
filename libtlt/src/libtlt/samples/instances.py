"""A COCO instance-segmentation sample: shapes on textured backgrounds, one polygon per object.

For the instance segmenters (MaskRCNN, plug-ins): ``root/<split>/*.jpg`` and
``root/annotations/instances_<split>.json`` in the COCO instances format (``images``, ``annotations`` with
``segmentation`` polygons, ``bbox`` x y w h, ``area``, ``iscrowd`` 0, ``categories`` with ids 1..C), which
``tlt-dataset-convert`` turns into MaskRCNN records. Classes differ by shape only; objects do not overlap, so
every polygon is exactly its visible mask; the same seed gives the same files.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from libtlt.errors import UnsupportedError
from libtlt.io.atomic import write_bytes, write_text
from libtlt.io.images import encode_image
from libtlt.samples.backgrounds import add_sensor_noise, contrasting_colour, low_frequency_texture

INSTANCE_CLASSES = ("circle", "triangle", "square")
#: Polygon corners per shape (a circle is a 24-gon).
_CORNERS = {"circle": 24, "triangle": 3, "square": 4}
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CocoSample:
    root: Path
    image_dir: Path
    annotation_file: Path
    categories: tuple[str, ...]
    num_images: int
    num_objects: int


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    n = _CORNERS[shape]
    return [(cx + radius * math.cos(angle + 2 * math.pi * k / n), cy + radius * math.sin(angle + 2 * math.pi * k / n))
            for k in range(n)]


def _place(rng: np.random.Generator, width: int, height: int, radius: float,
           taken: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """A centre for a shape of ``radius`` inside the image, clear of the shapes already placed."""
    for _ in range(30):
        cx = rng.uniform(radius + 1, width - radius - 1)
        cy = rng.uniform(radius + 1, height - radius - 1)
        if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in taken):
            return cx, cy
    return None


def generate_coco_dataset(root: str | Path, *, split: str = "train", num_images: int = 8, width: int = 96,
                          height: int = 64, classes: Sequence[str] = INSTANCE_CLASSES, seed: int = 0,
                          objects_per_image: tuple[int, int] = (1, 3), first_image_id: int = 1) -> CocoSample:
    """Write ``num_images`` JPEG frames and their COCO json (see the module docstring); returns where."""
    unknown = [c for c in classes if c not in _CORNERS]
    if unknown or not classes:
        raise UnsupportedError(f"unknown shape class(es) {', '.join(unknown) or '(none given)'}; the instance sample "
                               f"draws {', '.join(_CORNERS)}")
    from pycocotools import mask as mask_api

    rng = np.random.default_rng(seed)
    root = Path(root)
    image_dir = root / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(num_images):
        image_id = first_image_id + index
        background = np.clip(low_frequency_texture(rng, width, height, cell=16) * 0.5 + 128.0, 0, 255)
        canvas = Image.fromarray(background.astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        taken: list[tuple[float, float, float]] = []
        for _ in range(int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))):
            class_index = int(rng.integers(len(classes)))
            radius = float(rng.uniform(0.12, 0.3) * min(width, height))
            centre = _place(rng, width, height, radius, taken)
            if centre is None:
                continue
            taken.append((*centre, radius))
            points = _polygon(classes[class_index], *centre, radius, float(rng.uniform(0, 2 * math.pi)))
            colour = contrasting_colour(rng, background[int(centre[1]), int(centre[0])])
            draw.polygon(points, fill=tuple(int(v) for v in colour))
            flat = [round(v, 2) for point in points for v in point]
            with warnings.catch_warnings():  # pycocotools' NumPy-2 "copy keyword" notice, harmless
                warnings.simplefilter("ignore", DeprecationWarning)
                rle = mask_api.frPyObjects([flat], height, width)
            xs, ys = flat[0::2], flat[1::2]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": class_index + 1, "iscrowd": 0,
                "segmentation": [flat], "area": float(mask_api.area(rle)[0]),
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
            })
        pixels = add_sensor_noise(np.asarray(canvas), rng, amplitude=6)
        name = f"{image_id:06d}.jpg"
        write_bytes(image_dir / name, encode_image(pixels, ".jpg", jpeg_quality=JPEG_QUALITY), fsync=False)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
    data = {"info": {"description": f"tlt sample instances ({split}, seed {seed})"}, "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(classes)]}
    annotation_file = root / "annotations" / f"instances_{split}.json"
    annotation_file.parent.mkdir(parents=True, exist_ok=True)
    write_text(annotation_file, json.dumps(data))
    return CocoSample(root, image_dir, annotation_file, tuple(classes), num_images, len(annotations))
