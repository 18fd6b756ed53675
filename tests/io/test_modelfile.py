"""The .tlt/.etlt container: round trip, and every kind of damage is a one-line ModelFileError."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libtlt.errors import ModelFileError
from libtlt.io import modelfile
from libtlt.io.modelfile import (
    DEFAULT_KDF_ITERATIONS,
    HEADER_SIZE,
    MAGIC,
    TAG_SIZE,
    decrypt_model,
    encrypt_model,
    is_model_file,
    load_model_file,
    save_model_file,
)

FAST = 1_000  # iterations for tests; the default (600,000) is checked separately, once
KEY = "tlt_encode"
META = {
    "architecture": "detectnet_v2",
    "class_names": ["car", "person", "road_sign"],
    "input_shape": [3, 272, 480],
    "input_layout": "NCHW",
    "preprocessing": {"scale": 1 / 255, "color": "RGB"},
    "output_names": ["output_cov/Sigmoid", "output_bbox/BiasAdd"],
    "versions": {"tlt": "0.1.0"},
}
FILES = {"model.keras": bytes(range(256)) * 3, "extra/notes.txt": "ünïcode".encode()}


@pytest.fixture(scope="module")
def small_blob() -> bytes:
    return encrypt_model(KEY, {"model.onnx": b"\x08\x07onnx-bytes"}, {"architecture": "ssd"}, kdf_iterations=FAST)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "model.tlt"
    save_model_file(path, KEY, FILES, META, kdf_iterations=FAST)
    loaded = load_model_file(path, KEY)
    assert loaded.files == FILES
    assert loaded.file("model.keras") == FILES["model.keras"]
    for name, value in META.items():
        assert loaded.metadata[name] == value
    assert loaded.metadata["format"] == "tlt-model/1"
    assert loaded.metadata["created"].endswith("Z")
    assert loaded.format_version == 1
    assert is_model_file(path)
    # nothing readable leaks into the file
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"detectnet_v2" not in raw and b"metadata.json" not in raw and b"car" not in raw


def test_layout_matches_documentation(small_blob: bytes) -> None:
    magic, version, kdf_id, cipher_id, iterations, salt, nonce, size = struct.unpack(">8sHBBI16s12sQ",
                                                                                      small_blob[:52])
    assert (magic, version, kdf_id, cipher_id, iterations) == (b"TLTMODEL", 1, 1, 1, FAST)
    assert HEADER_SIZE == 52 and len(salt) == 16 and len(nonce) == 12
    assert len(small_blob) == 52 + size + 16


def test_payload_is_a_zip_with_metadata(small_blob: bytes) -> None:
    """Decrypt by hand with the documented recipe: PBKDF2 key, AES-256-GCM, header as associated data."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    salt, nonce = small_blob[16:32], small_blob[32:44]
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, FAST).derive(KEY.encode())
    plain = AESGCM(key).decrypt(nonce, small_blob[52:], small_blob[:52])
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        assert sorted(archive.namelist()) == ["metadata.json", "model.onnx"]
        meta = json.loads(archive.read("metadata.json"))
    assert meta["architecture"] == "ssd" and meta["format"] == "tlt-model/1"


def test_salt_and_nonce_are_fresh() -> None:
    a = encrypt_model(KEY, FILES, META, kdf_iterations=FAST)
    b = encrypt_model(KEY, FILES, META, kdf_iterations=FAST)
    assert a[16:44] != b[16:44]
    assert a[HEADER_SIZE:] != b[HEADER_SIZE:]


def test_wrong_key(tmp_path: Path) -> None:
    path = tmp_path / "m.tlt"
    save_model_file(path, KEY, FILES, META, kdf_iterations=FAST)
    with pytest.raises(ModelFileError, match=r"m\.tlt: wrong key or damaged file: authentication failed") as info:
        load_model_file(path, "not_the_key")
    assert "\n" not in str(info.value)


def test_bytes_key_equals_utf8_str_key(tmp_path: Path) -> None:
    path = tmp_path / "m.etlt"
    save_model_file(path, "clé", {"model.onnx": b"x"}, {}, kdf_iterations=FAST)
    assert load_model_file(path, "clé".encode()).files == {"model.onnx": b"x"}


@pytest.mark.parametrize("key", ["", b""])
def test_empty_key_is_an_error(tmp_path: Path, key: str | bytes) -> None:
    with pytest.raises(ModelFileError, match="key is empty"):
        save_model_file(tmp_path / "m.tlt", key, FILES, META, kdf_iterations=FAST)
    assert not (tmp_path / "m.tlt").exists()
    save_model_file(tmp_path / "ok.tlt", KEY, FILES, META, kdf_iterations=FAST)
    with pytest.raises(ModelFileError, match="key is empty"):
        load_model_file(tmp_path / "ok.tlt", key)


def test_truncation_at_several_points(small_blob: bytes, tmp_path: Path) -> None:
    n = len(small_blob)
    cuts = sorted({0, 1, 4, 7, 8, 9, 10, 20, 44, 51, 52, 53, n // 2, n - TAG_SIZE - 1, n - TAG_SIZE, n - 1})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.etlt"
        path.write_bytes(small_blob[:cut])
        with pytest.raises(ModelFileError) as info:
            load_model_file(path, KEY)
        message = str(info.value)
        assert message.startswith(f"{path}: "), message
        if cut == 0:
            assert "empty file" in message
        else:
            assert "truncated" in message, (cut, message)


def test_appended_bytes_are_detected(small_blob: bytes) -> None:
    with pytest.raises(ModelFileError, match="unexpected bytes after the end"):
        decrypt_model(small_blob + b"\0", KEY)


def _flip(blob: bytes, position: int, mask: int) -> bytes:
    data = bytearray(blob)
    data[position] ^= mask
    return bytes(data)


def test_every_byte_flipped_is_detected(small_blob: bytes) -> None:
    for position in range(len(small_blob)):
        with pytest.raises(ModelFileError):
            decrypt_model(_flip(small_blob, position, 0xFF), KEY)


# Positions 12..15 hold the KDF iteration count: single-bit flips there are covered by the exhaustive
# test above (0xFF) and by test_header_tampering; sampling them here could ask for ~10^7 iterations.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bit_flips_are_detected(small_blob: bytes, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(small_blob) - 1).filter(lambda p: not 12 <= p < 16))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ModelFileError):
        decrypt_model(_flip(small_blob, position, mask), KEY)


def test_header_tampering(small_blob: bytes) -> None:
    """Rewriting header fields consistently (still a well-formed header) fails authentication."""
    fields = list(struct.unpack(">8sHBBI16s12sQ", small_blob[:52]))

    def with_field(index: int, value: object) -> bytes:
        changed = list(fields)
        changed[index] = value
        return struct.pack(">8sHBBI16s12sQ", *changed) + small_blob[52:]

    for index, value in ((4, FAST + 1), (4, 1), (5, bytes(16)), (6, bytes(12))):
        with pytest.raises(ModelFileError, match="authentication failed"):
            decrypt_model(with_field(index, value), KEY)
    with pytest.raises(ModelFileError, match="implausible KDF iteration count"):
        decrypt_model(with_field(4, 0xFFFFFFFF), KEY)
    with pytest.raises(ModelFileError, match="unknown KDF id 2"):
        decrypt_model(with_field(2, 2), KEY)
    with pytest.raises(ModelFileError, match="truncated"):
        decrypt_model(with_field(7, fields[7] + 1), KEY)


def test_newer_format_version(small_blob: bytes) -> None:
    newer = small_blob[:8] + struct.pack(">H", 2) + small_blob[10:]
    with pytest.raises(ModelFileError, match=r"format version 2 is newer than this tlt reads \(1\); upgrade tlt"):
        decrypt_model(newer, KEY)
    with pytest.raises(ModelFileError, match="unknown format version 0"):
        decrypt_model(small_blob[:8] + b"\0\0" + small_blob[10:], KEY)


def test_plain_hdf5_given_by_mistake(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.hdf5"
    with h5py.File(path, "w") as handle:
        handle["w"] = np.zeros(3)
    with pytest.raises(ModelFileError, match=r"not a tlt model file: this is an HDF5 file \(a plain Keras"):
        load_model_file(path, KEY)
    assert not is_model_file(path)


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x08\x07\x12\x07pytorch", "a plain ONNX model"),
    (b"PK\x03\x04rest-of-a-keras-zip", "a zip archive"),
    (b"hello, this is text\n", "no TLTMODEL magic"),
    (b"", "an empty file"),
])
def test_other_files_given_by_mistake(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "model.etlt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=expected):
        load_model_file(path, KEY)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model_file(tmp_path / "absent.tlt", KEY)
    with pytest.raises(ModelFileError, match="found a directory"):
        load_model_file(tmp_path, KEY)


def test_missing_member_names_the_members(tmp_path: Path) -> None:
    path = tmp_path / "m.etlt"
    save_model_file(path, KEY, {"model.onnx": b"x"}, {}, kdf_iterations=FAST)
    with pytest.raises(ModelFileError, match=r"no member 'model.keras' \(it holds: model.onnx\)"):
        load_model_file(path, KEY).file("model.keras")


def test_failing_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "m.tlt"
    with pytest.raises(TypeError):
        save_model_file(path, KEY, {"model.keras": b"x"}, {"bad": object()}, kdf_iterations=FAST)
    with pytest.raises(ValueError, match="reserved"):
        save_model_file(path, KEY, {"metadata.json": b"{}"}, {}, kdf_iterations=FAST)
    with pytest.raises(ValueError, match="relative path"):
        save_model_file(path, KEY, {"../evil": b"x"}, {}, kdf_iterations=FAST)
    with pytest.raises(ValueError, match="kdf_iterations"):
        save_model_file(path, KEY, {"a": b"x"}, {}, kdf_iterations=0)
    assert list(tmp_path.iterdir()) == []


def test_failing_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "m.tlt"
    save_model_file(path, KEY, {"model.keras": b"old"}, {}, kdf_iterations=FAST)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_model_file(path, KEY, {"model.keras": b"new"}, {"nan": float("nan")}, kdf_iterations=FAST)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.tlt"]


def test_default_iterations_and_key_cache(tmp_path: Path) -> None:
    """The default is at least 600,000 iterations; a second load reuses the derived key."""
    assert DEFAULT_KDF_ITERATIONS >= 600_000
    path = tmp_path / "default.tlt"
    save_model_file(path, KEY, {"model.keras": b"x"}, {})
    assert struct.unpack(">I", path.read_bytes()[12:16])[0] == DEFAULT_KDF_ITERATIONS
    modelfile._derive_key.cache_clear()
    load_model_file(path, KEY)
    load_model_file(path, KEY)
    info = modelfile._derive_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_loading_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.tlt"
    save_model_file(path, KEY, FILES, META, kdf_iterations=FAST)
    before = sorted(tmp_path.iterdir())
    load_model_file(path, KEY)
    assert sorted(tmp_path.iterdir()) == before
