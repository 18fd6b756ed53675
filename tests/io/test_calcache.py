"""cal.bin: REFERENCE.md's check values, round trips, other versions, and file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from libtlt.errors import DataError
from libtlt.io.calcache import (
    CalibrationCache,
    amax_to_hex,
    hex_to_scale,
    parse_calibration_cache,
    read_calibration_cache,
    write_calibration_cache,
)


@pytest.mark.parametrize(("amax", "expected"), [
    (127.0, "3f800000"),
    (1.0, "3c010204"),
    (6.0, "3d418306"),
    (2.5, "3ca14285"),
])
def test_reference_check_values(amax: float, expected: str) -> None:
    assert amax_to_hex(amax) == expected


def test_written_file_is_exactly_the_documented_text(tmp_path: Path) -> None:
    path = tmp_path / "cal.bin"
    write_calibration_cache(path, {"input_1": 127.0, "conv1/Relu:0": 6.0, "output_cov/Sigmoid": 1.0},
                            version="8001")
    assert path.read_text() == ("TRT-8001-EntropyCalibration2\n"
                                "input_1: 3f800000\n"
                                "conv1/Relu:0: 3d418306\n"
                                "output_cov/Sigmoid: 3c010204\n")


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cal.bin"
    amax = {"input_1": 2.5, "block_1a_conv_1/BiasAdd": 13.7, "zero": 0.0}
    written = write_calibration_cache(path, amax, algorithm="MinMaxCalibration")
    cache = read_calibration_cache(path)
    assert cache == written
    assert cache.algorithm == "MinMaxCalibration"
    assert cache.header == f"TRT-{cache.version}-MinMaxCalibration"
    assert list(cache.scales) == list(amax)
    for name, value in amax.items():
        assert cache.amax[name] == pytest.approx(value, rel=1e-6)
    assert cache.scales["input_1"] == hex_to_scale("3ca14285")


@pytest.mark.parametrize("header", ["TRT-5105-EntropyCalibration2", "TRT-7000-EntropyCalibration2",
                                    "TRT-8601-MinMaxCalibration", "TRT-100300-EntropyCalibration2",
                                    "TRT-8001-LegacyCalibration"])
def test_other_versions_and_algorithms_are_accepted(header: str) -> None:
    cache = parse_calibration_cache(f"{header}\ndata: 3c010204\n")
    version, algorithm = header.split("-")[1:]
    assert (cache.version, cache.algorithm, cache.header) == (version, algorithm, header)
    assert cache.amax["data"] == pytest.approx(1.0)


def test_tolerates_crlf_blank_lines_and_uppercase_hex() -> None:
    cache = parse_calibration_cache("TRT-8001-EntropyCalibration2\r\na: 3C010204\r\n\r\nb:3f800000\r\n")
    assert cache.scales == {"a": hex_to_scale("3c010204"), "b": 1.0}


@pytest.mark.parametrize(("text", "where", "message"), [
    ("", "cal.bin:1", "expected a first line"),
    ("input_1: 3f800000\n", "cal.bin:1", "is not 'TRT-<version>-<algorithm>'"),
    ("TRT-abc-EntropyCalibration2\n", "cal.bin:1", "TRT-<version>-<algorithm>"),
    ("TRT-8001-EntropyCalibration2\na: 3f800000\nno separator here\n", "cal.bin:3", "expected '<tensor name>: <hex>'"),
    ("TRT-8001-EntropyCalibration2\n: 3f800000\n", "cal.bin:2", "expected '<tensor name>: <hex>'"),
    ("TRT-8001-EntropyCalibration2\na: 3f8000\n", "cal.bin:2", "tensor 'a': expected 8 hex digits"),
    ("TRT-8001-EntropyCalibration2\na: 0x3f800000\n", "cal.bin:2", "expected 8 hex digits"),
    ("TRT-8001-EntropyCalibration2\na: 7fc00000\n", "cal.bin:2", "not a finite non-negative"),
    ("TRT-8001-EntropyCalibration2\na: bf800000\n", "cal.bin:2", "not a finite non-negative"),
    ("TRT-8001-EntropyCalibration2\na: 3f800000\n\na: 3f800000\n", "cal.bin:4", "appears twice"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "cal.bin"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_calibration_cache(path)
    assert str(info.value).startswith(f"{tmp_path}/{where}: ")


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="calibration cache not found"):
        read_calibration_cache(tmp_path / "absent.bin")
    binary = tmp_path / "engine.bin"
    binary.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(DataError, match="binary content"):
        read_calibration_cache(binary)


def test_writer_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "cal.bin"
    for amax in ({"a": float("nan")}, {"a": -1.0}, {"a\nb": 1.0}, {"": 1.0}, {" a": 1.0}, {"a": 1e300}):
        with pytest.raises(ValueError):
            write_calibration_cache(path, amax)
    with pytest.raises(ValueError, match="header fields"):
        write_calibration_cache(path, {"a": 1.0}, version="10.13")
    assert not path.exists()


def test_to_text_matches_writer() -> None:
    cache = CalibrationCache("8001", "EntropyCalibration2", {"x": 1.0})
    assert cache.to_text() == "TRT-8001-EntropyCalibration2\nx: 3f800000\n"
