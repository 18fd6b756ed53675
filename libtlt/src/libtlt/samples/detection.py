"""Synthetic KITTI detection datasets (000 §6.2): street-like frames with cars, pedestrians, cyclists.

Every frame depends only on ``(seed, frame index)`` and its sequence (frames of one sequence share a
palette and horizon, like frames of one video), so the output is byte-identical for a seed whatever
the number of worker processes.

Labelling rules (documented for the detectors trained on this data):

* Boxes are the exact extent of the object's *visible* pixels, clipped to the image, in pixel-edge
  coordinates: ``xmin`` is the first visible column, ``xmax`` one past the last (so ``xmax - xmin``
  is the visible width and ``0 <= xmin < xmax <= width``); the same for rows.
* Objects are drawn far to near (small to large). A new object is placed only where it leaves every
  earlier object at least ``MIN_VISIBLE`` (40%) of its in-image pixels and keeps at least
  ``MIN_IN_IMAGE`` (50%) of its own pixels inside the image; otherwise another position is tried,
  and after ``PLACEMENT_TRIES`` failures the object is left out. So every drawn object is labelled,
  and no labelled object is hidden behind others.
* ``truncation`` is the fraction of the object's pixels outside the image; ``occlusion`` is 0 when at
  least 95% of its in-image pixels are visible, 1 down to 60%, 2 below. The 3-D fields are 0.
* Images are PNG with zlib ``compress_level=1`` by default (the fastest level that still
  compresses; encoding dominates the generation time of large frames) or JPEG at quality 92.
"""

from __future__ import annotations

import functools
import io
import multiprocessing
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from libtlt.errors import UnsupportedError
from libtlt.io.atomic import write_bytes
from libtlt.io.kitti import KittiObject, make_object, write_label_file, write_sequence_map
from libtlt.log import get_logger
from libtlt.samples.backgrounds import SceneStyle, add_sensor_noise, contrasting_colour, random_colour, street_scene
from libtlt.samples.shapes import DETECTION_DESIGNS, assign_designs, draw_part_map

logger = get_logger("libtlt.samples")

DETECTION_CLASSES: tuple[str, ...] = ("car", "pedestrian", "cyclist")
MIN_VISIBLE = 0.4
MIN_IN_IMAGE = 0.5
PLACEMENT_TRIES = 12
MIN_HEIGHT_AT_272 = 20  # smallest object height at 480x272; scales with the image height
JPEG_QUALITY = 92
PNG_COMPRESS_LEVEL = 1
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}

# Stream identifiers, so frame, sequence and layout randomness never overlap.
_FRAME_STREAM, _SEQUENCE_STREAM, _LAYOUT_STREAM = 0, 1, 2


@dataclass(frozen=True)
class SampleObject:
    """One labelled object of a rendered frame. ``owner_id`` is its value in ``RenderedFrame.owner``."""

    class_name: str
    bbox: tuple[int, int, int, int]  # xmin, ymin, xmax (exclusive), ymax (exclusive)
    truncation: float
    occlusion: int
    visible_fraction: float
    owner_id: int

    def to_kitti(self) -> KittiObject:
        return make_object(self.class_name, self.bbox, truncation=self.truncation, occlusion=self.occlusion)


@dataclass
class RenderedFrame:
    """A frame before encoding: the RGB image, which object owns each pixel (0 = background), objects."""

    image: np.ndarray
    owner: np.ndarray
    objects: list[SampleObject]


@dataclass
class DetectionSample:
    """What ``generate_detection_dataset`` wrote."""

    root: Path
    image_dir: Path
    label_dir: Path
    classes: tuple[str, ...]
    frame_ids: list[str]
    sequence_map_path: Path | None
    object_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameConfig:
    width: int
    height: int
    seed: int
    classes: tuple[str, ...]
    objects_per_image: tuple[int, int]
    image_extension: str = "png"
    png_compress_level: int = PNG_COMPRESS_LEVEL


def frame_id(index: int) -> str:
    return f"{index:06d}"


def sequence_layout(seed: int, num_images: int) -> list[list[int]]:
    """Frames grouped into runs of 5–15 consecutive indices (the last one may be shorter)."""
    rng = np.random.default_rng([seed, _LAYOUT_STREAM])
    groups: list[list[int]] = []
    start = 0
    while start < num_images:
        length = int(rng.integers(5, 16))
        groups.append(list(range(start, min(start + length, num_images))))
        start += length
    return groups


def sequence_name(index: int) -> str:
    return f"sequence_{index:04d}"


def _object_heights(rng: np.random.Generator, designs: list[str], height: int) -> list[int]:
    low = max(12.0, MIN_HEIGHT_AT_272 * height / 272)
    heights = []
    for name in designs:
        high = max(low + 1.0, DETECTION_DESIGNS[name].max_height * height)
        heights.append(round(float(np.exp(rng.uniform(np.log(low), np.log(high))))))
    return heights


def render_detection_frame(index: int, config: FrameConfig, sequence: int = 0) -> RenderedFrame:
    """Draw frame ``index`` of the dataset described by ``config`` (deterministic)."""
    width, height = config.width, config.height
    style = SceneStyle.random(np.random.default_rng([config.seed, _SEQUENCE_STREAM, sequence]))
    rng = np.random.default_rng([config.seed, _FRAME_STREAM, index])
    image = street_scene(rng, width, height, style)
    owner = np.zeros((height, width), dtype=np.int16)
    mapping = assign_designs(config.classes, list(DETECTION_DESIGNS), "detection")

    low, high = config.objects_per_image
    count = int(rng.integers(low, high + 1))
    # Classes in turn from a random start, then shuffled: balanced within a frame and over a dataset.
    start = int(rng.integers(len(config.classes)))
    class_names = [config.classes[(start + k) % len(config.classes)] for k in rng.permutation(count)]
    heights = _object_heights(rng, [mapping[c] for c in class_names], height)
    order = np.argsort(heights, kind="stable")  # far (small) objects first, near ones on top

    placed: list[str] = []
    regions: list[tuple[slice, slice]] = []  # where each object was drawn, clipped to the image
    total: list[int] = []  # pixels of each object's full shape
    in_image: list[int] = []  # of those, inside the image
    visible: list[int] = []  # of those, not covered by later objects
    for k in order:
        name, obj_h = class_names[k], heights[k]
        design = DETECTION_DESIGNS[mapping[name]]
        obj_w = max(4, round(obj_h * float(rng.uniform(*design.aspect))))
        obj_w = min(obj_w, int(width * 0.9))
        parts = draw_part_map(design, obj_w, obj_h, rng)
        mask = parts > 0
        mask_total = int(mask.sum())
        if mask_total == 0:
            continue
        for _ in range(PLACEMENT_TRIES):
            x0 = int(rng.integers(-obj_w // 3, width - obj_w + obj_w // 3 + 1))
            y0 = int(rng.integers(-obj_h // 6, height - obj_h + obj_h // 4 + 1))
            ys = slice(max(y0, 0), min(y0 + obj_h, height))
            xs = slice(max(x0, 0), min(x0 + obj_w, width))
            local = mask[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
            inside = int(local.sum())
            if inside < MIN_IN_IMAGE * mask_total:
                continue
            covered = np.bincount(owner[ys, xs][local], minlength=len(placed) + 1)
            if any(visible[j] - covered[j + 1] < MIN_VISIBLE * in_image[j] for j in range(len(placed)) if covered[j + 1]):
                continue
            break
        else:
            continue
        region = image[ys, xs]
        against = region.reshape(-1, 3).mean(axis=0)
        palette = np.stack([  # one colour per part id, NUM_PARTS rows
            np.zeros(3, np.float32),
            contrasting_colour(rng, against),          # body
            random_colour(rng),                        # accent
            random_colour(rng, (0.1, 0.9)),            # "dark" detail (tyres, shoes): any value
            random_colour(rng, (0.6, 1.0), (0.0, 0.6)),  # light detail
            random_colour(rng),                        # secondary
        ])
        local_parts = parts[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        shade = np.linspace(rng.uniform(1.0, 1.2), rng.uniform(0.7, 0.9), obj_h, dtype=np.float32)
        shade = shade[ys.start - y0:ys.stop - y0, None, None]
        colours = np.clip(palette[local_parts] * shade, 0, 255).astype(np.uint8)
        region[local] = colours[local]
        for j, count_j in enumerate(covered[1:]):
            visible[j] -= int(count_j)
        owner[ys, xs][local] = len(placed) + 1
        placed.append(name)
        regions.append((ys, xs))
        total.append(mask_total)
        in_image.append(inside)
        visible.append(inside)

    image = add_sensor_noise(image, rng, style.noise)
    objects = []
    for j, name in enumerate(placed):
        obj_id = j + 1
        ys, xs = regions[j]
        mine = owner[ys, xs] == obj_id
        rows = ys.start + np.flatnonzero(mine.any(axis=1))
        cols = xs.start + np.flatnonzero(mine.any(axis=0))
        fraction = visible[j] / in_image[j]
        occlusion = 0 if fraction >= 0.95 else 1 if fraction >= 0.6 else 2
        objects.append(SampleObject(
            class_name=name,
            bbox=(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1),
            truncation=round(1.0 - in_image[j] / total[j], 2),
            occlusion=occlusion,
            visible_fraction=fraction,
            owner_id=obj_id,
        ))
    objects.sort(key=lambda o: (o.bbox[0], o.bbox[1], o.owner_id))
    return RenderedFrame(image=image, owner=owner, objects=objects)


def encode_image(image: np.ndarray, extension: str, png_compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """PNG (zlib level ``png_compress_level``) or JPEG (quality 92) bytes of an RGB uint8 array."""
    fmt = IMAGE_FORMATS[extension.lower()]
    buffer = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt == "PNG":
        pil.save(buffer, format="PNG", compress_level=png_compress_level)
    else:
        pil.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _write_frame(job: tuple[int, int], config: FrameConfig, image_dir: Path, label_dir: Path) -> list[str]:
    index, sequence = job
    frame = render_detection_frame(index, config, sequence)
    name = frame_id(index)
    # Images are many and large: atomic rename without fsync (a crash never leaves a partial file
    # under the final name; durability across power loss is not needed for generated data).
    write_bytes(image_dir / f"{name}.{config.image_extension}", encode_image(frame.image, config.image_extension,
                                                                          config.png_compress_level), fsync=False)
    write_label_file(label_dir / f"{name}.txt", [obj.to_kitti() for obj in frame.objects])
    return [obj.class_name for obj in frame.objects]


def _check_arguments(num_images: int, width: int, height: int, image_extension: str,
                     objects_per_image: tuple[int, int], workers: int, png_compress_level: int) -> None:
    if image_extension.lower() not in IMAGE_FORMATS:
        raise UnsupportedError(f"image extension '{image_extension}' is not supported (use png or jpg)")
    if num_images < 0:
        raise UnsupportedError(f"num_images must be >= 0, got {num_images}")
    if width < 64 or height < 48:
        raise UnsupportedError(f"image size {width}x{height} is too small (at least 64x48)")
    low, high = objects_per_image
    if not 0 <= low <= high:
        raise UnsupportedError(f"objects_per_image must be (min, max) with 0 <= min <= max, got {objects_per_image}")
    if workers < 1:
        raise UnsupportedError(f"workers must be >= 1, got {workers}")
    if not 0 <= png_compress_level <= 9:
        raise UnsupportedError(f"png_compress_level must be 0..9, got {png_compress_level}")


def generate_detection_dataset(
    root: str | Path,
    *,
    num_images: int = 20,
    width: int = 480,
    height: int = 272,
    seed: int = 0,
    image_extension: str = "png",
    classes: Sequence[str] = DETECTION_CLASSES,
    with_sequence_map: bool = False,
    objects_per_image: tuple[int, int] = (2, 8),
    workers: int = 1,
    progress: bool = False,
    png_compress_level: int = PNG_COMPRESS_LEVEL,
) -> DetectionSample:
    """Write a KITTI dataset: ``root/images/<id>.<ext>``, ``root/labels/<id>.txt`` and, with
    ``with_sequence_map``, ``root/kitti_seq_to_map.json``. Same arguments → byte-identical files,
    whatever ``workers``. Files are replaced atomically; files of an earlier run into the same root
    with other ids (a larger ``num_images``, another extension) are left in place."""
    image_extension = image_extension.lstrip(".")
    _check_arguments(num_images, width, height, image_extension, (objects_per_image[0], objects_per_image[1]), workers,
                     png_compress_level)
    classes = tuple(classes)
    assign_designs(classes, list(DETECTION_DESIGNS), "detection")
    root = Path(root)
    image_dir, label_dir = root / "images", root / "labels"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    config = FrameConfig(width, height, seed, classes, (int(objects_per_image[0]), int(objects_per_image[1])),
                         image_extension, png_compress_level)
    groups = sequence_layout(seed, num_images)
    jobs = [(index, s) for s, group in enumerate(groups) for index in group]
    write = functools.partial(_write_frame, config=config, image_dir=image_dir, label_dir=label_dir)

    counts: Counter[str] = Counter()
    for names in _progress(_map(write, jobs, workers), len(jobs), progress, "detection frames"):
        counts.update(names)

    sequence_map_path = None
    if with_sequence_map:
        sequence_map_path = root / "kitti_seq_to_map.json"
        write_sequence_map(sequence_map_path, {sequence_name(s): [frame_id(i) for i in group]
                                               for s, group in enumerate(groups)})
    logger.info("Wrote %d frames (%s) to %s", num_images,
                ", ".join(f"{c}: {counts[c]}" for c in classes), root)
    return DetectionSample(root=root, image_dir=image_dir, label_dir=label_dir, classes=classes,
                           frame_ids=[frame_id(i) for i in range(num_images)], sequence_map_path=sequence_map_path,
                           object_counts={c: counts[c] for c in classes})


def _map(func: functools.partial[list[str]], jobs: list[tuple[int, int]], workers: int) -> Iterator[list[str]]:
    """``map(func, jobs)`` in order, over a process pool when ``workers > 1``."""
    if workers <= 1 or len(jobs) < 2:
        yield from map(func, jobs)
        return
    chunk = max(1, min(16, len(jobs) // (workers * 8)))
    # forkserver (spawn where missing): forking a process that already runs threads (TensorFlow,
    # tqdm's monitor) can deadlock; the workers only need this module.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with context.Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(func, jobs, chunksize=chunk)


def _progress(items: Iterator[list[str]], total: int, enabled: bool, desc: str) -> Iterator[list[str]]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit="frame")
