"""TensorRT INT8 calibration caches (cal.bin).

Text: a header line ``TRT-<version>-<algorithm>`` (``EntropyCalibration2`` or ``MinMaxCalibration``
when we write; readers accept any version number and algorithm name), then one line per tensor
``<tensor name>: <hex>`` where hex is the big-endian IEEE float32 bit pattern of the scale
``amax / 127`` in lowercase without ``0x``. Tensor names may themselves contain ``:``; the value
follows the last one. Example: amax 6.0 → scale 0.047244 → ``3d418306``.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from libtlt.errors import DataError, location
from libtlt.io.atomic import write_text

ENTROPY_CALIBRATION_2 = "EntropyCalibration2"
MINMAX_CALIBRATION = "MinMaxCalibration"
#: The header's version field when the caller names none: TensorRT 10.13.0 as NV_TENSORRT_VERSION
#: (major·10000 + minor·100 + patch). Our readers, and Q/DQ insertion, ignore it.
DEFAULT_TRT_VERSION = "101300"
INT8_MAX = 127.0

_HEADER_RE = re.compile(r"TRT-(?P<version>[0-9]+)-(?P<algorithm>[A-Za-z][A-Za-z0-9_]*)")
_HEX_RE = re.compile(r"[0-9a-fA-F]{8}")


def scale_to_hex(scale: float) -> str:
    """``scale`` rounded to float32, as 8 lowercase big-endian hex digits."""
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    """The float32 value of 8 big-endian hex digits."""
    value: float = struct.unpack(">f", bytes.fromhex(text))[0]
    return value


def amax_to_hex(amax: float) -> str:
    """The cache value for a tensor whose absolute maximum is ``amax`` (amax / 127)."""
    return scale_to_hex(amax / INT8_MAX)


@dataclass(frozen=True)
class CalibrationCache:
    """A parsed cal.bin: header fields and the per-tensor scales (float32 values, as stored)."""

    version: str
    algorithm: str
    scales: dict[str, float] = field(default_factory=dict)

    @property
    def header(self) -> str:
        return f"TRT-{self.version}-{self.algorithm}"

    @property
    def amax(self) -> dict[str, float]:
        """Per-tensor absolute maxima: ``scale * 127``."""
        return {name: scale * INT8_MAX for name, scale in self.scales.items()}

    def to_text(self) -> str:
        lines = [self.header] + [f"{name}: {scale_to_hex(scale)}" for name, scale in self.scales.items()]
        return "\n".join(lines) + "\n"


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in "\r\n"):
        raise ValueError(f"calibration cache tensor names must be non-empty, single-line and unpadded: {name!r}")


def make_cache(amax: Mapping[str, float], *, algorithm: str = ENTROPY_CALIBRATION_2,
               version: str | int = DEFAULT_TRT_VERSION) -> CalibrationCache:
    """A cache from per-tensor absolute maxima (in the mapping's order)."""
    version = str(version)
    if _HEADER_RE.fullmatch(f"TRT-{version}-{algorithm}") is None:
        raise ValueError(f"invalid calibration cache header fields: version {version!r}, algorithm {algorithm!r}")
    scales = {}
    for name, value in amax.items():
        _check_name(name)
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"amax of tensor {name!r} must be finite and non-negative, not {value}")
        try:
            scales[name] = hex_to_scale(amax_to_hex(value))
        except OverflowError:
            raise ValueError(f"amax of tensor {name!r} is too large for float32: {value}") from None
    return CalibrationCache(version, algorithm, scales)


def write_calibration_cache(path: str | Path, amax: Mapping[str, float], *,
                            algorithm: str = ENTROPY_CALIBRATION_2,
                            version: str | int = DEFAULT_TRT_VERSION) -> CalibrationCache:
    """Write ``amax`` (tensor name → absolute maximum) as a cal.bin, atomically; returns what was written."""
    cache = make_cache(amax, algorithm=algorithm, version=version)
    write_text(path, cache.to_text())
    return cache


def parse_calibration_cache(text: str, path: str | Path = "<cal.bin>") -> CalibrationCache:
    """Parse cal.bin text; errors name ``file:line``."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError("not a TensorRT calibration cache: expected a first line 'TRT-<version>-<algorithm>'",
                        location=location(path, 1))
    header = _HEADER_RE.fullmatch(lines[0].strip())
    if header is None:
        raise DataError(f"not a TensorRT calibration cache: first line {lines[0].strip()[:80]!r} is not "
                        "'TRT-<version>-<algorithm>'", location=location(path, 1))
    scales: dict[str, float] = {}
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line:
            continue
        name, sep, value = line.rpartition(":")
        name, value = name.rstrip(), value.strip()
        where = location(path, lineno)
        if not sep or not name:
            raise DataError(f"expected '<tensor name>: <hex>', found {line[:80]!r}", location=where)
        if _HEX_RE.fullmatch(value) is None:
            raise DataError(f"tensor '{name}': expected 8 hex digits, found {value[:80]!r}", location=where)
        scale = hex_to_scale(value)
        if not math.isfinite(scale) or scale < 0:
            raise DataError(f"tensor '{name}': scale {scale} is not a finite non-negative number", location=where)
        if name in scales:
            raise DataError(f"tensor '{name}' appears twice", location=where)
        scales[name] = scale
    return CalibrationCache(header["version"], header["algorithm"], scales)


def read_calibration_cache(path: str | Path) -> CalibrationCache:
    """Read a cal.bin file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError("calibration cache not found", location=path) from None
    except IsADirectoryError:
        raise DataError("expected a calibration cache file, found a directory", location=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("not a TensorRT calibration cache (binary content)", location=path) from None
    return parse_calibration_cache(text, path)
