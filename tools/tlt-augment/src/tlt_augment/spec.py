"""Load and validate a tlt-augment spec (000 §5.1) into an ``AugmentSpec`` of plain typed values.

The ranges are the manual's "Supported Values" columns. One deliberate difference: the manual gives
``contrast_config.center`` the range 0.0-1.0 while its own description (8-bit images, "127.5 is the
common value") needs 0-255; the pixel range is what is checked here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from libtlt.errors import SpecError
from libtlt.log import get_logger
from libtlt.spec import LoadedSpec, load_spec
from libtlt.spec.protos.augment_pb2 import AugmentationConfig

logger = get_logger("tlt_augment.spec")

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg")
ANGLE_UNITS = ("degrees", "radians")
#: OpenCV's warp and filter functions take coordinates as 16-bit integers internally.
MAX_IMAGE_SIDE = 32767


@dataclass(frozen=True)
class AugmentSpec:
    """Everything the pipeline needs; ``None`` marks an inactive operator."""

    output_width: int
    output_height: int
    output_channels: int
    image_extension: str  # lower case, without the dot: "png", "jpg" or "jpeg"
    image_path: str
    label_path: str
    rotation: float | None = None  # radians
    flip: tuple[bool, bool] | None = None  # (horizontal, vertical)
    shear: tuple[float, float] | None = None  # (shear_ratio_x, shear_ratio_y)
    translation: tuple[int, int] | None = None  # (translate_x, translate_y) pixels
    hue_saturation: tuple[float, float] | None = None  # (hue rotation degrees, saturation multiplier)
    brightness: float | None = None  # offset added to every channel
    contrast: tuple[float, float] | None = None  # (contrast, center)
    blur: tuple[int, float] | None = None  # (kernel size, standard deviation)

    @property
    def has_spatial(self) -> bool:
        return any(op is not None for op in (self.rotation, self.flip, self.shear, self.translation))


def load_augment_spec(path: str | Path) -> AugmentSpec:
    """Read, log and validate the spec at ``path``; every problem is a ``SpecError`` naming file:line."""
    logger.info("Merging specification from %s", path)
    loaded = load_spec(path, AugmentationConfig)
    logger.debug("Spec:\n%s", text_format.MessageToString(loaded.message))
    return validate(loaded)


def _finite(spec: LoadedSpec[AugmentationConfig], field: str, value: float) -> float:
    if not math.isfinite(value):
        raise spec.error(field, f"must be a finite number, got {value}")
    return float(value)


def _in_range(spec: LoadedSpec[AugmentationConfig], field: str, value: float, low: float, high: float,
              what: str = "") -> float:
    value = _finite(spec, field, value)
    if not low <= value <= high:
        raise spec.error(field, f"must be between {low:g} and {high:g}{what}, got {value:g}")
    return value


def validate(spec: LoadedSpec[AugmentationConfig]) -> AugmentSpec:
    """Check every rule of 000 §5.1 and convert the message into an ``AugmentSpec``."""
    msg = spec.message
    width, height = _output_size(spec)
    channels = _output_channels(spec)
    extension = msg.image_extension.strip().lower().lstrip(".")
    if extension not in IMAGE_EXTENSIONS:
        raise spec.error("image_extension", f"unsupported extension {msg.image_extension!r} "
                                            f"(supported: .png, .jpeg, .jpg)")
    if not msg.HasField("dataset_config"):
        raise spec.error("dataset_config", "missing: set dataset_config { image_path: ... label_path: ... }")
    for name in ("image_path", "label_path"):
        if not getattr(msg.dataset_config, name).strip():
            raise spec.error(f"dataset_config.{name}", "missing: the folder relative to the dataset root (-d)")

    values: dict[str, object] = {}
    if msg.HasField("spatial_config"):
        values.update(_spatial(spec, width, height))
    if msg.HasField("color_config"):
        values.update(_color(spec))
    if msg.HasField("blur_config"):
        values["blur"] = _blur(spec, width, height)
    return AugmentSpec(
        output_width=width, output_height=height, output_channels=channels, image_extension=extension,
        image_path=msg.dataset_config.image_path, label_path=msg.dataset_config.label_path,
        **values,  # type: ignore[arg-type]
    )


def _output_size(spec: LoadedSpec[AugmentationConfig]) -> tuple[int, int]:
    sizes = []
    for name in ("output_image_width", "output_image_height"):
        if not spec.message.HasField(name):
            raise spec.error(name, "missing: the size of the output images must be given")
        value = getattr(spec.message, name)
        if not 0 < value <= MAX_IMAGE_SIDE:
            raise spec.error(name, f"must be between 1 and {MAX_IMAGE_SIDE}, got {value}")
        sizes.append(value)
    return sizes[0], sizes[1]


def _output_channels(spec: LoadedSpec[AugmentationConfig]) -> int:
    msg = spec.message
    channels = msg.output_image_channel
    if msg.HasField("output_image_channels"):
        if msg.HasField("output_image_channel") and msg.output_image_channel != msg.output_image_channels:
            raise spec.error("output_image_channels",
                             f"contradicts output_image_channel ({msg.output_image_channels} vs "
                             f"{msg.output_image_channel}); set only one of them")
        channels = msg.output_image_channels
        field = "output_image_channels"
    else:
        field = "output_image_channel"
    if channels not in (1, 3):
        raise spec.error(field, f"must be 1 or 3, got {channels}")
    return channels


def _spatial(spec: LoadedSpec[AugmentationConfig], width: int, height: int) -> dict[str, object]:
    cfg = spec.message.spatial_config
    out: dict[str, object] = {}
    if cfg.HasField("rotation_config"):
        rot = cfg.rotation_config
        units = rot.units.strip().lower()
        if units not in ANGLE_UNITS:
            raise spec.error("spatial_config.rotation_config.units",
                             f"must be \"degrees\" or \"radians\", got {rot.units!r}")
        field = "spatial_config.rotation_config.angle"
        if units == "degrees":
            out["rotation"] = math.radians(_in_range(spec, field, rot.angle, -360.0, 360.0, " degrees"))
        else:
            limit = 2 * math.pi
            # The field is a float32: allow 2*pi as written in the spec ("6.2831855").
            out["rotation"] = _in_range(spec, field, rot.angle, -limit - 1e-6, limit + 1e-6, " radians")
    if cfg.HasField("flip_config"):
        flip = cfg.flip_config
        if not (flip.flip_horizontal or flip.flip_vertical):
            raise spec.error("spatial_config.flip_config",
                             "set flip_horizontal and/or flip_vertical to true (or remove flip_config)")
        out["flip"] = (bool(flip.flip_horizontal), bool(flip.flip_vertical))
    if cfg.HasField("shear_config"):
        shear = cfg.shear_config
        rx = _finite(spec, "spatial_config.shear_config.shear_ratio_x", shear.shear_ratio_x)
        ry = _finite(spec, "spatial_config.shear_config.shear_ratio_y", shear.shear_ratio_y)
        if abs(1.0 - rx * ry) < 1e-6:
            raise spec.error("spatial_config.shear_config",
                             "shear_ratio_x * shear_ratio_y = 1 collapses the image onto a line")
        out["shear"] = (rx, ry)
    if cfg.HasField("translation_config"):
        tr = cfg.translation_config
        tx = int(_in_range(spec, "spatial_config.translation_config.translate_x", tr.translate_x, 0, width,
                           " (the output image width)"))
        ty = int(_in_range(spec, "spatial_config.translation_config.translate_y", tr.translate_y, 0, height,
                           " (the output image height)"))
        out["translation"] = (tx, ty)
    return out


def _color(spec: LoadedSpec[AugmentationConfig]) -> dict[str, object]:
    cfg = spec.message.color_config
    out: dict[str, object] = {}
    if cfg.HasField("hue_saturation_config"):
        hs = cfg.hue_saturation_config
        hue = _in_range(spec, "color_config.hue_saturation_config.hue_rotation_angle", hs.hue_rotation_angle,
                        0.0, 360.0, " degrees")
        sat = _in_range(spec, "color_config.hue_saturation_config.saturation_shift", hs.saturation_shift, 0.0, 1.0)
        out["hue_saturation"] = (hue % 360.0, sat)
    if cfg.HasField("brightness_config"):
        out["brightness"] = _in_range(spec, "color_config.brightness_config.offset",
                                      cfg.brightness_config.offset, 0.0, 255.0)
    if cfg.HasField("contrast_config"):
        ct = cfg.contrast_config
        contrast = _in_range(spec, "color_config.contrast_config.contrast", ct.contrast, 0.0, 1.0)
        center = _in_range(spec, "color_config.contrast_config.center", ct.center, 0.0, 255.0,
                           " (8-bit pixel values)")
        out["contrast"] = (contrast, center)
    return out


def _blur(spec: LoadedSpec[AugmentationConfig], width: int, height: int) -> tuple[int, float]:
    cfg = spec.message.blur_config
    if not cfg.HasField("size"):
        raise spec.error("blur_config.size", "missing: the kernel size (> 0) must be given")
    if not cfg.HasField("std"):
        raise spec.error("blur_config.std", "missing: the standard deviation (> 0.0) must be given")
    longest = max(width, height)
    if not 0 < cfg.size <= longest:
        raise spec.error("blur_config.size", f"must be between 1 and {longest} (the longer output side), "
                                             f"got {cfg.size}")
    std = _finite(spec, "blur_config.std", cfg.std)
    if std <= 0.0:
        raise spec.error("blur_config.std", f"must be greater than 0.0, got {std:g}")
    return int(cfg.size), std


__all__ = ["AugmentSpec", "SpecError", "load_augment_spec", "validate"]
