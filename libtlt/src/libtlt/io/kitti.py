"""KITTI detection labels (000 §6.2): 15 whitespace-separated fields per object, 16 with a confidence.

Objects keep their original text tokens, so tools that only move boxes (tlt-augment) copy every
other field verbatim. Malformed lines raise ``DataError`` naming ``file:line`` and the field.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from libtlt.errors import DataError, location
from libtlt.io.atomic import write_text

#: Field names in file order (000 §6.2.2), with the optional 16th confidence of predicted labels.
FIELD_NAMES = (
    "class_name", "truncation", "occlusion", "alpha", "xmin", "ymin", "xmax", "ymax",
    "height", "width", "length", "x", "y", "z", "rotation_y", "confidence",
)
NUM_FIELDS = 15
BBOX_SLICE = slice(4, 8)
LABEL_EXTENSION = ".txt"
SEQUENCE_MAP_NAME = "kitti_seq_to_map.json"


@dataclass(frozen=True)
class KittiObject:
    """One label line. ``fields`` holds the 15 or 16 original tokens; accessors parse on demand."""

    fields: tuple[str, ...]

    @property
    def class_name(self) -> str:
        return self.fields[0]

    @property
    def truncation(self) -> float:
        return float(self.fields[1])

    @property
    def occlusion(self) -> int:
        return int(float(self.fields[2]))

    @property
    def alpha(self) -> float:
        return float(self.fields[3])

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in pixels, 0-based."""
        x1, y1, x2, y2 = (float(v) for v in self.fields[BBOX_SLICE])
        return x1, y1, x2, y2

    @property
    def dimensions(self) -> tuple[float, float, float]:
        """3-D height, width, length in metres."""
        return float(self.fields[8]), float(self.fields[9]), float(self.fields[10])

    @property
    def location3d(self) -> tuple[float, float, float]:
        return float(self.fields[11]), float(self.fields[12]), float(self.fields[13])

    @property
    def rotation_y(self) -> float:
        return float(self.fields[14])

    @property
    def confidence(self) -> float | None:
        return float(self.fields[15]) if len(self.fields) > NUM_FIELDS else None

    def with_bbox(self, x1: float, y1: float, x2: float, y2: float) -> KittiObject:
        """The same object with a new box; every other token is kept verbatim."""
        box = tuple(f"{v:.2f}" for v in (x1, y1, x2, y2))
        return KittiObject(self.fields[:4] + box + self.fields[8:])

    def to_line(self) -> str:
        return " ".join(self.fields)


def make_object(class_name: str, bbox: Sequence[float], confidence: float | None = None, *,
                truncation: float = 0.0, occlusion: int = 0) -> KittiObject:
    """A label line with only class and box set (the other fields 0, as 000 §6.2.2 allows)."""
    fields = [class_name, f"{truncation:.2f}", str(occlusion), "0.00", *(f"{v:.2f}" for v in bbox)]
    fields += ["0.00"] * 7
    if confidence is not None:
        fields.append(f"{confidence:.6f}".rstrip("0").rstrip(".") if confidence else "0.0")
    return KittiObject(tuple(fields))


def parse_label_line(line: str, path: str | Path = "<labels>", lineno: int | None = None) -> KittiObject:
    """Parse one non-empty label line; errors name the file, line and field."""
    tokens = tuple(line.split())
    where = location(path, lineno)
    if len(tokens) not in (NUM_FIELDS, NUM_FIELDS + 1):
        raise DataError(
            f"expected {NUM_FIELDS} fields (16 with a confidence), found {len(tokens)}: {line.strip()!r}",
            location=where,
        )
    for index, token in enumerate(tokens[1:], start=1):
        try:
            value = float(token)
        except ValueError:
            raise DataError(f"not a number: {token!r}", location=where, field=FIELD_NAMES[index]) from None
        if not math.isfinite(value):
            raise DataError(f"not a finite number: {token!r}", location=where, field=FIELD_NAMES[index])
    return KittiObject(tokens)


def read_label_file(path: str | Path) -> list[KittiObject]:
    """All objects of a label file; blank lines are ignored."""
    return [obj for _, obj in read_label_lines(path)]


def read_label_lines(path: str | Path) -> list[tuple[int, KittiObject]]:
    """``(line number, object)`` for every non-blank line, so later checks can name ``file:line``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("label file not found", location=path) from None
    except UnicodeDecodeError:
        raise DataError("label file is not UTF-8 text", location=path) from None
    return [(n, parse_label_line(line, path, n)) for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def box_problem(bbox: Sequence[float], width: int, height: int) -> str | None:
    """Why a labelled box cannot be used, or ``None``: the one box rule of every tool.

    A box with ``xmax < xmin`` or ``ymax < ymin`` is a labelling mistake (never silently flipped), and
    a box entirely outside its ``width`` × ``height`` image marks nothing visible. Both are skipped
    with a warning by tlt-augment and tlt-dataset-convert alike.
    """
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if x2 < x1 or y2 < y1:
        return f"xmax < xmin or ymax < ymin ({x1:g} {y1:g} {x2:g} {y2:g})"
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return f"entirely outside the {width}x{height} image ({x1:g} {y1:g} {x2:g} {y2:g})"
    return None


class SkippedBoxes:
    """Warns ``file:line: skipped box: reason`` for each box ``box_problem`` rejects (the first
    ``limit`` in full, then a count), so a badly labelled dataset does not flood the log."""

    def __init__(self, logger: logging.Logger, limit: int = 20):
        self.logger = logger
        self.limit = limit
        self.count = 0

    def check(self, bbox: Sequence[float], width: int, height: int, path: str | Path, lineno: int) -> bool:
        """True when the box is usable; otherwise warn and return False."""
        problem = box_problem(bbox, width, height)
        if problem is not None:
            self.warn(problem, path, lineno)
        return problem is None

    def warn(self, problem: str, path: str | Path, lineno: int) -> None:
        self.count += 1
        if self.count <= self.limit:
            self.logger.warning("%s: skipped box: %s", location(path, lineno), problem)

    def log_summary(self) -> None:
        if self.count > self.limit:
            self.logger.warning("Skipped %d box(es) in all (%d more not listed above)", self.count,
                                self.count - self.limit)


def format_labels(objects: Iterable[KittiObject]) -> str:
    lines = [obj.to_line() for obj in objects]
    return "\n".join(lines) + ("\n" if lines else "")


def write_label_file(path: str | Path, objects: Iterable[KittiObject]) -> None:
    """Write a label file atomically (an empty file for a frame without objects)."""
    write_text(path, format_labels(objects), fsync=False)


@dataclass(frozen=True)
class Frame:
    """An image and its label file, paired by file id (the name before the extension)."""

    frame_id: str
    image_path: Path
    label_path: Path


def list_images(image_dir: Path, image_extension: str) -> dict[str, Path]:
    """Images in ``image_dir`` with ``image_extension`` (with or without the dot, any case), by file id."""
    ext = "." + image_extension.lstrip(".").lower()
    return {p.stem: p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() == ext}


def pair_frames(image_dir: str | Path, label_dir: str | Path, image_extension: str) -> list[Frame]:
    """Pair images with labels by file id, sorted by id; an unpaired file is an error naming it."""
    image_dir, label_dir = Path(image_dir), Path(label_dir)
    for folder, what in ((image_dir, "image"), (label_dir, "label")):
        if not folder.is_dir():
            raise DataError(f"{what} directory not found", location=folder)
    images = list_images(image_dir, image_extension)
    labels = {p.stem: p for p in label_dir.iterdir() if p.is_file() and p.suffix == LABEL_EXTENSION}
    if not images:
        raise DataError(f"no images with extension '{image_extension}'", location=image_dir)
    for frame_id in sorted(images):
        if frame_id not in labels:
            raise DataError(f"image has no label file {frame_id}{LABEL_EXTENSION} in {label_dir}", location=images[frame_id])
    for frame_id in sorted(labels):
        if frame_id not in images:
            raise DataError(f"label file has no image {frame_id}.{image_extension.lstrip('.')} in {image_dir}",
                            location=labels[frame_id])
    return [Frame(fid, images[fid], labels[fid]) for fid in sorted(images)]


def read_sequence_map(path: str | Path) -> dict[str, list[str]]:
    """``kitti_seq_to_map.json``: sequence name → frame ids (000 §6.2.3)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("sequence map file not found", location=path) from None
    except json.JSONDecodeError as err:
        raise DataError(f"invalid JSON: {err.msg}", location=location(path, err.lineno, err.colno)) from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(f, str) for f in v) for k, v in data.items()
    ):
        raise DataError('expected {"sequence name": ["frame id", ...], ...}', location=path)
    return {name: list(frames) for name, frames in data.items()}


def write_sequence_map(path: str | Path, sequences: dict[str, list[str]]) -> None:
    write_text(path, json.dumps(sequences, indent=2) + "\n")
