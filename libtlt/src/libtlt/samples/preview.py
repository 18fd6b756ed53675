"""Contact sheets: a few frames of a dataset on one PNG, detection frames with their label boxes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from libtlt.io.atomic import write_bytes
from libtlt.io.kitti import pair_frames, read_label_file

BOX_COLOURS = ((255, 40, 40), (40, 255, 40), (60, 140, 255), (255, 220, 0), (255, 0, 255), (0, 255, 255))
MARGIN = 4


def _save_png(image: Image.Image, path: str | Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    write_bytes(path, buffer.getvalue())


def _sheet(tiles: Sequence[Image.Image], columns: int) -> Image.Image:
    tile_w = max(t.width for t in tiles)
    tile_h = max(t.height for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (tile_w + MARGIN) + MARGIN, rows * (tile_h + MARGIN) + MARGIN), (16, 16, 16))
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet.paste(tile, (MARGIN + c * (tile_w + MARGIN), MARGIN + r * (tile_h + MARGIN)))
    return sheet


def detection_contact_sheet(image_dir: str | Path, label_dir: str | Path, path: str | Path, *,
                            classes: Sequence[str], image_extension: str = "png", count: int = 6,
                            columns: int = 2) -> Path:
    """Draw the label boxes (one colour per class, with the class name) on the first ``count`` frames."""
    frames = pair_frames(image_dir, label_dir, image_extension)[:count]
    colour = {name: BOX_COLOURS[k % len(BOX_COLOURS)] for k, name in enumerate(classes)}
    tiles = []
    for frame in frames:
        with Image.open(frame.image_path) as opened:
            tile = opened.convert("RGB")
        draw = ImageDraw.Draw(tile)
        for obj in read_label_file(frame.label_path):
            x1, y1, x2, y2 = obj.bbox
            box_colour = colour.get(obj.class_name, (255, 255, 255))
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=box_colour, width=2)
            draw.text((x1 + 2, max(0.0, y1 - 11)), obj.class_name, fill=box_colour)
        draw.text((4, 4), frame.frame_id, fill=(255, 255, 255))
        tiles.append(tile)
    path = Path(path)
    _save_png(_sheet(tiles, columns) if tiles else Image.new("RGB", (1, 1)), path)
    return path


def classification_contact_sheet(root: str | Path, split: str, classes: Sequence[str], path: str | Path, *,
                                 per_class: int = 8, scale: int = 2) -> Path:
    """One row per class: its name, then the first ``per_class`` images of ``root/split/<class>``."""
    rows = []
    for name in classes:
        files = sorted(p for p in (Path(root) / split / name).iterdir() if p.is_file())[:per_class]
        images = []
        for file in files:
            with Image.open(file) as opened:
                images.append(opened.convert("RGB").resize((opened.width * scale, opened.height * scale),
                                                           Image.Resampling.NEAREST))
        if not images:
            continue
        label = Image.new("RGB", (96, images[0].height), (16, 16, 16))
        ImageDraw.Draw(label).text((4, images[0].height // 2 - 6), name, fill=(255, 255, 255))
        rows.append(_sheet([label, *images], len(images) + 1))
    path = Path(path)
    _save_png(_sheet(rows, 1) if rows else Image.new("RGB", (1, 1)), path)
    return path
