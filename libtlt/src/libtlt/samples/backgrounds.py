"""Backgrounds and colours for the sample datasets: textured, noisy, cluttered, but without the
shapes the classes use (no wheels or heads: clutter is rectangles, bars and stripes only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


def random_colour(rng: np.random.Generator, value: tuple[float, float] = (0.25, 0.95),
                  saturation: tuple[float, float] = (0.15, 0.95)) -> np.ndarray:
    """An RGB colour (float32, 0..255) with uniform hue and the given HSV value/saturation ranges."""
    h = rng.uniform(0.0, 6.0)
    s = rng.uniform(*saturation)
    v = rng.uniform(*value) * 255.0
    k = np.array([5.0, 3.0, 1.0])  # HSV → RGB, the closed form with k = (n + h) mod 6
    kk = (k + h) % 6.0
    rgb = v - v * s * np.clip(np.minimum(kk, 4.0 - kk), 0.0, 1.0)
    return rgb.astype(np.float32)


def contrasting_colour(rng: np.random.Generator, against: np.ndarray, min_distance: float = 70.0,
                       tries: int = 6) -> np.ndarray:
    """A random colour at least ``min_distance`` (RGB Euclidean) from ``against`` when one is found quickly."""
    colour = random_colour(rng)
    for _ in range(tries):
        if float(np.linalg.norm(colour - against)) >= min_distance:
            break
        colour = random_colour(rng)
    return colour


def low_frequency_texture(rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    """Smooth colour blotches: random cells upsampled bilinearly, centred on 0 (float32, about ±128)."""
    small = rng.integers(0, 256, size=(max(2, height // cell + 2), max(2, width // cell + 2), 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(big, dtype=np.float32) - 128.0


def add_sensor_noise(image: np.ndarray, rng: np.random.Generator, amplitude: int) -> np.ndarray:
    """``image`` (uint8) plus uniform integer noise in ±``amplitude``, clipped."""
    noise = rng.integers(-amplitude, amplitude + 1, size=image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class SceneStyle:
    """What frames of one sequence share: palette, horizon and texture strength."""

    sky_top: np.ndarray
    sky_bottom: np.ndarray
    ground_far: np.ndarray
    ground_near: np.ndarray
    horizon: float  # fraction of the image height
    texture: float
    noise: int

    @classmethod
    def random(cls, rng: np.random.Generator) -> SceneStyle:
        return cls(
            sky_top=random_colour(rng, (0.45, 0.95), (0.0, 0.6)),
            sky_bottom=random_colour(rng, (0.5, 1.0), (0.0, 0.4)),
            ground_far=random_colour(rng, (0.25, 0.7), (0.0, 0.5)),
            ground_near=random_colour(rng, (0.15, 0.6), (0.0, 0.5)),
            horizon=float(rng.uniform(0.3, 0.5)),
            texture=float(rng.uniform(0.12, 0.3)),
            noise=int(rng.integers(4, 11)),
        )


def street_scene(rng: np.random.Generator, width: int, height: int, style: SceneStyle) -> np.ndarray:
    """A ``height`` × ``width`` × 3 uint8 street-like background: sky and ground gradients, texture,
    buildings, poles, lane stripes and boxes. Sensor noise is added by the caller after the objects."""
    horizon = int(height * (style.horizon + rng.uniform(-0.03, 0.03)))
    t = np.linspace(0.0, 1.0, max(horizon, 1), dtype=np.float32)[:, None]
    sky = style.sky_top * (1 - t) + style.sky_bottom * t
    t = np.linspace(0.0, 1.0, max(height - horizon, 1), dtype=np.float32)[:, None]
    ground = style.ground_far * (1 - t) + style.ground_near * t
    rows = np.concatenate([sky, ground])[:height, None, :]
    texture = low_frequency_texture(rng, width, height, cell=int(rng.integers(12, 40)))
    base = np.clip(rows + texture * style.texture, 0, 255).astype(np.uint8)

    canvas = Image.fromarray(base)
    draw = ImageDraw.Draw(canvas)
    x = int(rng.integers(-width // 10, width // 10))
    while x < width:  # buildings along the horizon
        bw = int(rng.integers(width // 14 + 4, width // 5 + 8))
        bh = int(horizon * rng.uniform(0.3, 0.95))
        if rng.random() < 0.7:
            colour = tuple(int(c) for c in random_colour(rng, (0.2, 0.8), (0.0, 0.5)))
            draw.rectangle((x, horizon - bh, x + bw, horizon), fill=colour)
            window = tuple(int(c) for c in random_colour(rng, (0.1, 1.0), (0.0, 0.4)))
            step = max(4, bw // int(rng.integers(3, 7)))
            for wx in range(x + step // 3, x + bw - step // 2, step):
                for wy in range(horizon - bh + step // 3, horizon - step // 2, step):
                    draw.rectangle((wx, wy, wx + step // 2, wy + step // 2), fill=window)
        x += bw + int(rng.integers(0, width // 12 + 1))
    for _ in range(int(rng.integers(2, 6))):  # lane stripes converging to the horizon
        x0 = float(rng.uniform(-0.2, 1.2) * width)
        x1 = width / 2 + (x0 - width / 2) * 0.15
        stripe = max(2.0, width * 0.006)
        colour = tuple(int(c) for c in random_colour(rng, (0.6, 1.0), (0.0, 0.3)))
        draw.polygon([(x0 - stripe * 3, height), (x0 + stripe * 3, height), (x1 + stripe / 2, horizon),
                      (x1 - stripe / 2, horizon)], fill=colour)
    for _ in range(int(rng.integers(1, 5))):  # poles
        px = int(rng.integers(0, width))
        colour = tuple(int(c) for c in random_colour(rng, (0.1, 0.7), (0.0, 0.4)))
        draw.line([(px, int(horizon * rng.uniform(0.0, 0.6))), (px, int(height * rng.uniform(0.55, 1.0)))],
                  fill=colour, width=max(2, width // 250))
    for _ in range(int(rng.integers(0, 4))):  # boxes and bars on the ground
        bw, bh = int(rng.uniform(0.02, 0.12) * width), int(rng.uniform(0.02, 0.1) * height)
        bx, by = int(rng.integers(0, width)), int(rng.uniform(style.horizon, 1.0) * height)
        colour = tuple(int(c) for c in random_colour(rng))
        draw.rectangle((bx, by - bh, bx + bw, by), fill=colour)
    return np.array(canvas)


def tile_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A small textured background for classification images: gradient, blotches, thin stripes."""
    a, b = random_colour(rng), random_colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * xs / max(width - 1, 1) + np.sin(angle) * ys / max(height - 1, 1) + 1.0) / 2.0
    base = a * (1 - t[..., None]) + b * t[..., None]
    base += low_frequency_texture(rng, width, height, cell=int(rng.integers(4, 16))) * rng.uniform(0.1, 0.35)
    canvas = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(0, 4))):
        colour = tuple(int(c) for c in random_colour(rng))
        draw.line([(float(rng.uniform(0, width)), float(rng.uniform(0, height))),
                   (float(rng.uniform(0, width)), float(rng.uniform(0, height)))],
                  fill=colour, width=int(rng.integers(1, 3)))
    return np.array(canvas)
