"""Synthetic classification datasets (000 §6.1): ``root/<split>/<class>/<n>.<ext>``.

Each image shows one shape (the class) at a random size, position and angle on a textured,
cluttered background. The shape's colour and fill (solid, stripes, gradient, speckle) are drawn
independently of the class, so only the shape tells the classes apart. Every image depends only on
``(seed, split, class name, n)``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from libtlt.errors import UnsupportedError
from libtlt.io.atomic import write_bytes
from libtlt.log import get_logger
from libtlt.samples.backgrounds import add_sensor_noise, contrasting_colour, random_colour, tile_background
from libtlt.samples.detection import IMAGE_FORMATS, encode_image
from libtlt.samples.shapes import CLASSIFICATION_SHAPES, assign_designs, draw_shape_mask

logger = get_logger("libtlt.samples")

CLASSIFICATION_CLASSES: tuple[str, ...] = ("circle", "triangle", "star")
DEFAULT_SPLITS: Mapping[str, int] = {"train": 40, "val": 10, "test": 10}
SUPERSAMPLE = 2
_CLASSIFICATION_STREAM = 3


@dataclass
class ClassificationSample:
    """What ``generate_classification_dataset`` wrote; ``counts[split][class]`` images each."""

    root: Path
    classes: tuple[str, ...]
    split_dirs: dict[str, Path]
    counts: dict[str, dict[str, int]]


def image_name(n: int, extension: str) -> str:
    return f"{n:06d}.{extension}"


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def render_classification_image(shape: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One ``height`` × ``width`` × 3 uint8 image of ``shape`` (a key of ``CLASSIFICATION_SHAPES``)."""
    background = tile_background(rng, width, height).astype(np.float32)
    big = draw_shape_mask(shape, width * SUPERSAMPLE, height * SUPERSAMPLE, rng)
    alpha_img = Image.fromarray(big.astype(np.uint8) * 255).resize((width, height), Image.Resampling.BOX)
    alpha = np.asarray(alpha_img, dtype=np.float32)[..., None] / 255.0
    against = (background * alpha).sum(axis=(0, 1)) / max(float(alpha.sum()), 1.0)
    colour = contrasting_colour(rng, against, min_distance=90.0)
    style = int(rng.integers(4))
    if style == 0:  # solid
        fill = np.broadcast_to(colour, (height, width, 3))
    else:
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        angle = rng.uniform(0, 2 * math.pi)
        along = math.cos(angle) * xs + math.sin(angle) * ys
        if style == 1:  # stripes of two colours
            period = rng.uniform(4, 10)
            second = contrasting_colour(rng, colour, min_distance=60.0)
            stripes = ((along / period) % 2.0 < 1.0)[..., None]
            fill = np.where(stripes, colour, second)
        elif style == 2:  # gradient to a second colour
            second = random_colour(rng)
            t = ((along - along.min()) / max(float(np.ptp(along)), 1.0))[..., None]
            fill = colour * (1 - t) + second * t
        else:  # speckle
            fill = colour + rng.normal(0.0, 30.0, size=(height, width, 1)).astype(np.float32)
    image = background * (1 - alpha) + fill * alpha
    return add_sensor_noise(np.clip(image, 0, 255).astype(np.uint8), rng, int(rng.integers(3, 10)))


def generate_classification_dataset(
    root: str | Path,
    *,
    classes: Sequence[str] = CLASSIFICATION_CLASSES,
    images_per_split: Mapping[str, int] = DEFAULT_SPLITS,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
    image_extension: str = "jpg",
) -> ClassificationSample:
    """Write ``images_per_split[split]`` images per class into ``root/<split>/<class>/``."""
    image_extension = image_extension.lstrip(".")
    if image_extension.lower() not in IMAGE_FORMATS:
        raise UnsupportedError(f"image extension '{image_extension}' is not supported (use png or jpg)")
    width, height = size
    if width < 16 or height < 16:
        raise UnsupportedError(f"image size {width}x{height} is too small (at least 16x16)")
    for split, count in images_per_split.items():
        if count < 0 or not split or "/" in split:
            raise UnsupportedError(f"bad split {split!r}: {count} images")
    classes = tuple(classes)
    mapping = assign_designs(classes, list(CLASSIFICATION_SHAPES), "classification")
    root = Path(root)
    split_dirs: dict[str, Path] = {}
    counts: dict[str, dict[str, int]] = {}
    for split, count in images_per_split.items():
        split_dirs[split] = root / split
        counts[split] = {}
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(count):
                rng = np.random.default_rng([seed, _CLASSIFICATION_STREAM, _stable_id(split), _stable_id(name), n])
                image = render_classification_image(mapping[name], width, height, rng)
                write_bytes(folder / image_name(n, image_extension), encode_image(image, image_extension), fsync=False)
            counts[split][name] = count
    logger.info("Wrote %s images of %d classes to %s",
                ", ".join(f"{split}: {sum(c.values())}" for split, c in counts.items()), len(classes), root)
    return ClassificationSample(root=root, classes=classes, split_dirs=split_dirs, counts=counts)
