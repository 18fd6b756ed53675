"""Drawing primitives for the sample datasets: objects drawn as *part maps*.

A part map is a small ``uint8`` array the size of an object's canvas where 0 is "not the object"
and 1..5 name a part (body, accent, dark detail, light detail, secondary). The caller colours each
part with a colour drawn independently of the class, so classes differ by shape and layout, never
by a colour key. Drawing is plain Pillow ``ImageDraw`` without anti-aliasing: every pixel either
belongs to the object or not, which makes the label boxes exact.

Detection designs (width/height aspect, height as a fraction of the image height):

* ``car``        wide (2.0–2.6): rounded body, a cabin with two windows, two dark wheels with hubs.
* ``pedestrian`` tall (0.32–0.45): round head, torso, swinging arms, two legs in a walking pose.
* ``cyclist``    squarish (1.1–1.45): two ring-shaped wheels, a frame of thin tubes, a leaning rider.
* ``road_sign``  thin (0.3–0.45): a pole with a disc, triangle or diamond plate.

Classification designs: ``circle``, ``triangle``, ``star``, ``square``, ``cross``, ``ring``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from libtlt.errors import UnsupportedError

BACKGROUND, BODY, ACCENT, DARK, LIGHT, SECONDARY = 0, 1, 2, 3, 4, 5
NUM_PARTS = 6

DrawFn = Callable[[ImageDraw.ImageDraw, int, int, np.random.Generator], None]


@dataclass(frozen=True)
class ObjectDesign:
    """How to draw one detection class: canvas aspect (w/h) and height range (fraction of image height)."""

    name: str
    aspect: tuple[float, float]
    max_height: float
    draw: DrawFn


def _draw_car(d: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    r = max(2.0, 0.19 * h)  # wheel radius
    body_top = h * rng.uniform(0.36, 0.44)
    body_bottom = h - 1 - 0.6 * r
    d.rounded_rectangle((0, body_top, w - 1, body_bottom), radius=max(1, int(0.12 * h)), fill=BODY)
    base_l, base_r = w * rng.uniform(0.12, 0.2), w * rng.uniform(0.8, 0.88)
    roof_l, roof_r = w * rng.uniform(0.28, 0.36), w * rng.uniform(0.62, 0.72)
    d.polygon([(base_l, body_top + 1), (roof_l, 0), (roof_r, 0), (base_r, body_top + 1)], fill=BODY)
    inset = max(1.0, 0.07 * h)
    mid = (roof_l + roof_r) / 2
    d.polygon([(base_l + 2 * inset, body_top), (roof_l + inset, inset), (mid - inset / 2, inset),
               (mid - inset / 2, body_top)], fill=ACCENT)
    d.polygon([(mid + inset / 2, body_top), (mid + inset / 2, inset), (roof_r - inset, inset),
               (base_r - 2 * inset, body_top)], fill=ACCENT)
    light_w = max(1.0, 0.05 * w)
    d.rectangle((w - 1 - light_w, body_top + 0.08 * h, w - 1, body_top + 0.2 * h), fill=LIGHT)
    for cx in (0.21 * w, 0.79 * w):
        d.ellipse((cx - r, h - 1 - 2 * r, cx + r, h - 1), fill=DARK)
        hub = 0.45 * r
        d.ellipse((cx - hub, h - 1 - r - hub, cx + hub, h - 1 - r + hub), fill=SECONDARY)


def _draw_pedestrian(d: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    head = max(3.0, 0.16 * h)  # diameter
    cx = w / 2 + rng.uniform(-0.04, 0.04) * w
    d.ellipse((cx - head / 2, 0, cx + head / 2, head), fill=ACCENT)
    limb = max(2, round(0.13 * w))
    shoulder_y = head + 0.02 * h
    hip_y = h * rng.uniform(0.52, 0.58)
    torso = w * rng.uniform(0.42, 0.55)
    d.rounded_rectangle((cx - torso / 2, shoulder_y, cx + torso / 2, hip_y), radius=max(1, int(torso / 4)), fill=BODY)
    stride = w * rng.uniform(0.05, 0.4)
    half = limb / 2
    for side in (-1, 1):
        hip_x = cx + side * torso / 4
        foot_x = float(np.clip(cx + side * stride, half, w - 1 - half))
        d.line([(hip_x, hip_y - 1), (foot_x, h - 1 - half)], fill=SECONDARY, width=limb)
        d.ellipse((foot_x - half - 1, h - 1 - limb, foot_x + half + 1, h - 1), fill=DARK)
        hand_x = float(np.clip(cx + side * (torso / 2 + w * rng.uniform(0.0, 0.25)), half, w - 1 - half))
        d.line([(cx + side * (torso / 2 - half), shoulder_y + half), (hand_x, hip_y - 0.04 * h)],
               fill=BODY, width=max(2, round(0.8 * limb)))


def _draw_cyclist(d: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    r = min(0.27 * h, 0.24 * w)
    ring = max(2, round(0.07 * h))
    cy = h - 1 - r
    rear, front = r, w - 1 - r
    for cx in (rear, front):
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=DARK, width=ring)
    tube = max(2, round(0.045 * h))
    pedal = (0.45 * w, cy)
    seat = (0.36 * w, h * rng.uniform(0.42, 0.48))
    bar = (0.68 * w, h * rng.uniform(0.36, 0.42))
    d.line([(rear, cy), pedal, seat, (rear, cy)], fill=ACCENT, width=tube)
    d.line([seat, bar, (front, cy)], fill=ACCENT, width=tube)
    d.line([pedal, bar], fill=ACCENT, width=tube)
    head = max(3.0, 0.15 * h)
    shoulder = (w * rng.uniform(0.5, 0.58), head + 0.05 * h)
    d.line([seat, shoulder], fill=BODY, width=max(3, round(0.14 * h)))
    d.ellipse((shoulder[0] - head / 2 + 0.02 * w, 0, shoulder[0] + head / 2 + 0.02 * w, head), fill=LIGHT)
    d.line([shoulder, bar], fill=BODY, width=tube + 1)
    knee = (0.5 * w, h * rng.uniform(0.5, 0.58))
    foot = (pedal[0] + rng.uniform(-0.08, 0.08) * w, cy + 0.3 * r)
    d.line([seat, knee, foot], fill=SECONDARY, width=tube + 1)


def _draw_road_sign(d: ImageDraw.ImageDraw, w: int, h: int, rng: np.random.Generator) -> None:
    plate = w - 1
    pole = max(2, round(0.16 * w))
    d.line([(w / 2, plate / 2), (w / 2, h - 1)], fill=DARK, width=pole)
    border = max(1, round(0.1 * w))
    kind = int(rng.integers(3))
    if kind == 0:
        d.ellipse((0, 0, plate, plate), fill=BODY, outline=LIGHT, width=border)
    elif kind == 1:
        d.polygon([(0, plate), (plate / 2, 0), (plate, plate)], fill=BODY, outline=LIGHT, width=border)
    else:
        d.polygon([(plate / 2, 0), (plate, plate / 2), (plate / 2, plate), (0, plate / 2)], fill=BODY,
                  outline=LIGHT, width=border)


DETECTION_DESIGNS: dict[str, ObjectDesign] = {
    design.name: design
    for design in (
        ObjectDesign("car", (2.0, 2.6), 0.32, _draw_car),
        ObjectDesign("pedestrian", (0.32, 0.45), 0.5, _draw_pedestrian),
        ObjectDesign("cyclist", (1.1, 1.45), 0.42, _draw_cyclist),
        ObjectDesign("road_sign", (0.3, 0.45), 0.45, _draw_road_sign),
    )
}


def assign_designs(classes: Sequence[str], designs: Sequence[str], what: str) -> dict[str, str]:
    """Class name → design name: a class named like a design (any case) gets it, the others take the
    unused designs in order. Raises ``UnsupportedError`` for duplicates or more classes than designs."""
    if not classes:
        raise UnsupportedError(f"at least one {what} class is needed")
    lowered = [c.lower() for c in classes]
    if len(set(lowered)) != len(lowered):
        raise UnsupportedError(f"duplicate {what} class names: {', '.join(classes)}")
    if len(classes) > len(designs):
        raise UnsupportedError(f"at most {len(designs)} {what} classes can be drawn ({', '.join(designs)}), "
                               f"got {len(classes)}")
    chosen = {c: c.lower() for c in classes if c.lower() in designs}
    spare = [d for d in designs if d not in chosen.values()]
    return {c: chosen[c] if c in chosen else spare.pop(0) for c in classes}


def draw_part_map(design: ObjectDesign, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The part map (``height`` × ``width`` uint8) of one object, mirrored left/right at random."""
    canvas = Image.new("L", (width, height), BACKGROUND)
    design.draw(ImageDraw.Draw(canvas), width, height, rng)
    parts = np.asarray(canvas)
    return parts[:, ::-1] if rng.random() < 0.5 else parts


# ---------------------------------------------------------------------------------------------------
# Classification shapes: filled polygons/ellipses around a centre, drawn into an "L" mask.

Point = tuple[float, float]


def _regular(cx: float, cy: float, radius: float, n: int, angle: float) -> list[Point]:
    return [(cx + radius * math.cos(angle + 2 * math.pi * k / n), cy + radius * math.sin(angle + 2 * math.pi * k / n))
            for k in range(n)]


def _shape_circle(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator) -> None:
    squash = rng.uniform(0.85, 1.0)
    rx, ry = (r, r * squash) if rng.random() < 0.5 else (r * squash, r)
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)


def _shape_triangle(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator) -> None:
    d.polygon(_regular(cx, cy, r, 3, angle), fill=255)


def _shape_square(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator) -> None:
    d.polygon(_regular(cx, cy, r, 4, angle), fill=255)


def _shape_star(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator) -> None:
    inner = r * rng.uniform(0.38, 0.5)
    points = [(cx + (r if k % 2 == 0 else inner) * math.cos(angle + math.pi * k / 5),
               cy + (r if k % 2 == 0 else inner) * math.sin(angle + math.pi * k / 5)) for k in range(10)]
    d.polygon(points, fill=255)


def _shape_cross(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator) -> None:
    t = r * rng.uniform(0.28, 0.38)  # half arm width
    outline = [(t, r), (t, t), (r, t), (r, -t), (t, -t), (t, -r), (-t, -r), (-t, -t), (-r, -t), (-r, t), (-t, t), (-t, r)]
    c, s = math.cos(angle), math.sin(angle)
    d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in outline], fill=255)


def _shape_ring(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, angle: float, rng: np.random.Generator) -> None:
    d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=max(2, round(r * rng.uniform(0.25, 0.4))))


ShapeFn = Callable[[ImageDraw.ImageDraw, float, float, float, float, np.random.Generator], None]

CLASSIFICATION_SHAPES: dict[str, ShapeFn] = {
    "circle": _shape_circle,
    "triangle": _shape_triangle,
    "star": _shape_star,
    "square": _shape_square,
    "cross": _shape_cross,
    "ring": _shape_ring,
}


def draw_shape_mask(shape: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean ``height`` × ``width`` mask of one classification shape with random size, place and angle."""
    canvas = Image.new("L", (width, height), 0)
    side = min(width, height)
    r = side * rng.uniform(0.24, 0.42)
    cx = width / 2 + rng.uniform(-1, 1) * (width / 2 - r) * 0.8
    cy = height / 2 + rng.uniform(-1, 1) * (height / 2 - r) * 0.8
    CLASSIFICATION_SHAPES[shape](ImageDraw.Draw(canvas), cx, cy, r, rng.uniform(0, 2 * math.pi), rng)
    return np.asarray(canvas) > 0
