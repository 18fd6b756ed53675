"""The .tlt / .etlt model container: an authenticated, encrypted zip of model files plus metadata.

Layout (format version 1; every integer big-endian; docs/formats.md has the same table)::

    offset  size  field
         0     8  magic b"TLTMODEL"
         8     2  format version (1)
        10     1  KDF id (1 = PBKDF2-HMAC-SHA256)
        11     1  cipher id (1 = AES-256-GCM, 16-byte tag)
        12     4  KDF iterations
        16    16  salt (random per file)
        32    12  nonce (random per file)
        44     8  ciphertext length n (without the tag)
        52     n  ciphertext
      52+n    16  GCM tag

The 52 header bytes are the GCM associated data, so changing any of them (iteration count, salt,
lengths) fails authentication just like a changed ciphertext byte. The plaintext is a zip archive
held in memory: the caller's files (``model.keras`` for .tlt, ``model.onnx`` for .etlt, ...) and
``metadata.json``. Nothing is ever decrypted to disk.

KDF: PBKDF2-HMAC-SHA256 with 600,000 iterations (OWASP's 2023 figure for this hash). It is in
OpenSSL everywhere ``cryptography`` runs (x86-64 servers and Jetson alike), FIPS-approved, and needs
no memory beyond a few hashes, so loading several models in one DeepStream process costs no RAM.
It is not memory-hard like scrypt; the KDF id and its parameter live in the header so a later format
can switch without breaking old files. Derived keys are cached per (key, salt, parameters) within a
process, so opening the same file twice costs one derivation.
"""

from __future__ import annotations

import datetime as _dt
import functools
import io
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from libtlt.errors import ModelFileError
from libtlt.io.atomic import write_bytes

MAGIC = b"TLTMODEL"
FORMAT_VERSION = 1
KDF_PBKDF2_SHA256 = 1
CIPHER_AES_256_GCM = 1
#: PBKDF2-HMAC-SHA256 iterations for new files (OWASP 2023). Tests pass a smaller ``kdf_iterations``.
DEFAULT_KDF_ITERATIONS = 600_000
#: A reader refuses more than this, so a crafted header cannot make loading take hours.
MAX_KDF_ITERATIONS = 10_000_000
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32

_HEADER = struct.Struct(">8sHBBI16s12sQ")
HEADER_SIZE = _HEADER.size  # 52
METADATA_NAME = "metadata.json"
#: Value of ``metadata["format"]``: the container name and version that wrote the payload.
METADATA_FORMAT = f"tlt-model/{FORMAT_VERSION}"
_CHUNK = 64 << 20  # bytes per GCM update call; keeps every call well under OpenSSL's int limits

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


@dataclass
class ModelFile:
    """A decrypted model file: ``metadata`` (from metadata.json) and ``files`` (name → bytes)."""

    metadata: dict[str, Any]
    files: dict[str, bytes] = field(repr=False)
    format_version: int = FORMAT_VERSION
    source: str = "<bytes>"

    def file(self, name: str) -> bytes:
        """The member ``name``; a ``ModelFileError`` names the members present when it is missing."""
        try:
            return self.files[name]
        except KeyError:
            present = ", ".join(sorted(self.files)) or "none"
            raise ModelFileError(f"model file has no member '{name}' (it holds: {present})",
                                 location=self.source) from None


@dataclass(frozen=True)
class _Header:
    version: int
    kdf_id: int
    cipher_id: int
    iterations: int
    salt: bytes
    nonce: bytes
    ciphertext_size: int

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, self.version, self.kdf_id, self.cipher_id, self.iterations, self.salt,
                            self.nonce, self.ciphertext_size)


def _key_bytes(key: str | bytes) -> bytes:
    if not isinstance(key, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"the model key must be str or bytes, not {type(key).__name__}")
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not data:
        raise ModelFileError("the model key is empty; pass the key the model was saved with (-k/--key)")
    return data


@functools.lru_cache(maxsize=32)
def _derive_key(key: bytes, salt: bytes, kdf_id: int, iterations: int) -> bytes:
    if kdf_id != KDF_PBKDF2_SHA256:  # callers check first; this keeps the cache honest
        raise ValueError(f"unknown KDF id {kdf_id}")
    # cryptography's PBKDF2 (OpenSSL) runs about twice as fast here as hashlib's: same cost to an attacker.
    return PBKDF2HMAC(hashes.SHA256(), KEY_SIZE, salt, iterations).derive(key)


def derive_key(key: str | bytes, salt: bytes, iterations: int = DEFAULT_KDF_ITERATIONS) -> bytes:
    """The AES-256 key for ``key`` and ``salt`` (PBKDF2-HMAC-SHA256), cached within the process."""
    return _derive_key(_key_bytes(key), bytes(salt), KDF_PBKDF2_SHA256, iterations)


def _check_iterations(iterations: int) -> None:
    if not isinstance(iterations, int) or not 1 <= iterations <= MAX_KDF_ITERATIONS:
        raise ValueError(f"kdf_iterations must be an integer in [1, {MAX_KDF_ITERATIONS}], not {iterations!r}")


def _check_member_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"model file member names must be non-empty strings, not {name!r}")
    if name == METADATA_NAME:
        raise ValueError(f"'{METADATA_NAME}' is reserved for the metadata; pass it as metadata")
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"model file member name {name!r} must be a relative path without '.', '..' or '\\'")


def _build_payload(files: Mapping[str, bytes], metadata: Mapping[str, Any]) -> bytes:
    meta = dict(metadata)
    meta["format"] = METADATA_FORMAT
    meta["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    meta_text = json.dumps(meta, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # Fixed timestamps: the payload depends only on the inputs (and "created").
        info = zipfile.ZipInfo(METADATA_NAME, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, meta_text.encode("utf-8"))
        for name, data in files.items():
            _check_member_name(name)
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"model file member {name!r} must be bytes, not {type(data).__name__}")
            # Model weights barely compress and .keras is already a zip: store them.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, bytes(data))
    return buffer.getvalue()


def encrypt_model(key: str | bytes, files: Mapping[str, bytes], metadata: Mapping[str, Any], *,
                  kdf_iterations: int = DEFAULT_KDF_ITERATIONS) -> bytes:
    """The complete container bytes for ``files`` and ``metadata`` (``format`` and ``created`` are set here).

    ``kdf_iterations`` is stored in the header; lower it only in tests.
    """
    key_data = _key_bytes(key)
    _check_iterations(kdf_iterations)
    plaintext = _build_payload(files, metadata)
    header = _Header(FORMAT_VERSION, KDF_PBKDF2_SHA256, CIPHER_AES_256_GCM, kdf_iterations,
                     os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE), len(plaintext))
    header_bytes = header.pack()
    aes_key = _derive_key(key_data, header.salt, header.kdf_id, header.iterations)
    encryptor = Cipher(algorithms.AES(aes_key), modes.GCM(header.nonce)).encryptor()
    encryptor.authenticate_additional_data(header_bytes)
    out = bytearray(header_bytes)
    view = memoryview(plaintext)
    for start in range(0, len(view), _CHUNK):
        out += encryptor.update(view[start:start + _CHUNK])
    out += encryptor.finalize()
    out += encryptor.tag
    return bytes(out)


def save_model_file(path: str | Path, key: str | bytes, files: Mapping[str, bytes], metadata: Mapping[str, Any],
                    *, kdf_iterations: int = DEFAULT_KDF_ITERATIONS) -> None:
    """Encrypt ``files`` + ``metadata`` with ``key`` and write them to ``path`` atomically."""
    data = encrypt_model(key, files, metadata, kdf_iterations=kdf_iterations)
    write_bytes(path, data)


def identify_foreign_file(head: bytes) -> str | None:
    """What a file that is not a tlt container probably is, from its first bytes; None for a container.

    Returns "" when the content is not recognised.
    """
    if head.startswith(MAGIC):
        return None
    if not head:
        return "an empty file"
    if head.startswith(_HDF5_SIGNATURE):
        return "an HDF5 file (a plain Keras .hdf5 model?)"
    if head.startswith(_ZIP_SIGNATURE):
        return "a zip archive (a plain .keras model?)"
    if head[:1] == b"\x08":  # protobuf field 1 (ir_version) as a varint: how ONNX files begin
        return "a plain ONNX model"
    return ""


def is_model_file(path: str | Path) -> bool:
    """True when ``path`` starts with the container magic (nothing is decrypted)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _parse_header(data: bytes, where: str) -> _Header:
    if len(data) < len(MAGIC) and data and MAGIC.startswith(data):
        raise ModelFileError(f"damaged file: truncated inside the header ({len(data)} bytes)", location=where)
    foreign = identify_foreign_file(data[:len(MAGIC)])
    if foreign:
        raise ModelFileError(f"not a tlt model file: this is {foreign}", location=where)
    if foreign is not None:
        raise ModelFileError("not a tlt model file (no TLTMODEL magic; model files of NVIDIA's TLT are not "
                             "supported, re-export them with this tlt)", location=where)
    if len(data) >= len(MAGIC) + 2:
        (version,) = struct.unpack_from(">H", data, len(MAGIC))
        if version > FORMAT_VERSION:
            raise ModelFileError(f"format version {version} is newer than this tlt reads ({FORMAT_VERSION}); "
                                 "upgrade tlt (or the file is damaged)", location=where)
    if len(data) < HEADER_SIZE:
        raise ModelFileError(f"damaged file: truncated inside the header ({len(data)} of {HEADER_SIZE} bytes)",
                             location=where)
    _, version, kdf_id, cipher_id, iterations, salt, nonce, size = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ModelFileError(f"damaged file: unknown format version {version}", location=where)
    if kdf_id != KDF_PBKDF2_SHA256 or cipher_id != CIPHER_AES_256_GCM:
        raise ModelFileError(f"damaged file: unknown KDF id {kdf_id} or cipher id {cipher_id} in the header",
                             location=where)
    if not 1 <= iterations <= MAX_KDF_ITERATIONS:
        raise ModelFileError(f"damaged file: implausible KDF iteration count {iterations}", location=where)
    expected = HEADER_SIZE + size + TAG_SIZE
    if len(data) < expected:
        raise ModelFileError(f"damaged file: truncated ({len(data)} bytes, the header says {expected})",
                             location=where)
    if len(data) > expected:
        raise ModelFileError(f"damaged file: {len(data) - expected} unexpected bytes after the end of the model",
                             location=where)
    return _Header(version, kdf_id, cipher_id, iterations, salt, nonce, size)


def decrypt_model(data: bytes, key: str | bytes, *, source: str = "<bytes>") -> ModelFile:
    """Authenticate and decrypt container bytes; any problem is a one-line ``ModelFileError``."""
    key_data = _key_bytes(key)
    header = _parse_header(data, source)
    aes_key = _derive_key(key_data, header.salt, header.kdf_id, header.iterations)
    tag = data[len(data) - TAG_SIZE:]
    decryptor = Cipher(algorithms.AES(aes_key), modes.GCM(header.nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(data[:HEADER_SIZE])
    view = memoryview(data)[HEADER_SIZE:len(data) - TAG_SIZE]
    parts = [decryptor.update(view[start:start + _CHUNK]) for start in range(0, len(view), _CHUNK)]
    try:
        parts.append(decryptor.finalize())
    except InvalidTag:
        raise ModelFileError("wrong key or damaged file: authentication failed (the key is not the one the model "
                             "was saved with, or the file was modified)", location=source) from None
    return _read_payload(b"".join(parts), source, header.version)


def _read_payload(plaintext: bytes, source: str, version: int) -> ModelFile:
    # Authenticated plaintext: problems here mean a writer bug or a file from another program.
    try:
        with zipfile.ZipFile(io.BytesIO(plaintext)) as archive:
            contents = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise ModelFileError(f"damaged file: the decrypted payload is not a valid archive ({err})",
                             location=source) from None
    meta_bytes = contents.pop(METADATA_NAME, None)
    if meta_bytes is None:
        raise ModelFileError(f"damaged file: the payload has no {METADATA_NAME}", location=source)
    try:
        metadata = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"damaged file: {METADATA_NAME} is not valid JSON ({err})", location=source) from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"damaged file: {METADATA_NAME} is not a JSON object", location=source)
    return ModelFile(metadata=metadata, files=contents, format_version=version, source=source)


def load_model_file(path: str | Path, key: str | bytes) -> ModelFile:
    """Read, authenticate and decrypt ``path`` in memory.

    Wrong key, truncation, any modified byte, a file that is not a tlt model, or a newer format each
    raise ``ModelFileError`` with one line naming the file.
    """
    _key_bytes(key)
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelFileError("model file not found", location=where) from None
    except IsADirectoryError:
        raise ModelFileError("expected a model file, found a directory", location=where) from None
    except OSError as err:
        raise ModelFileError(f"cannot read model file: {err.strerror or err}", location=where) from None
    return decrypt_model(data, key, source=where)
