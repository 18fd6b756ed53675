"""The committed *_pb2.py modules must match their .proto schemas (run `make proto` after editing one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from libtlt.spec.compile import SRC_ROOT, proto_files

pytest.importorskip("grpc_tools")


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    # protoc runs in a subprocess: the in-process compiler crashes once upb has loaded the same schemas.
    subprocess.run([sys.executable, "-m", "libtlt.spec.compile", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    schemas = proto_files()
    stale = []
    for schema in schemas:
        relative = schema.relative_to(SRC_ROOT)
        for suffix in ("_pb2.py", "_pb2.pyi"):
            generated = relative.with_name(relative.stem + suffix)
            committed = SRC_ROOT / generated
            if not committed.exists() or committed.read_bytes() != (tmp_path / generated).read_bytes():
                stale.append(str(generated))
    assert not stale, f"stale generated modules (run `make proto`): {stale}"


def test_every_schema_module_imports() -> None:
    import importlib

    for schema in proto_files():
        module = ".".join(schema.relative_to(SRC_ROOT).with_suffix("").parts) + "_pb2"
        assert importlib.import_module(module).DESCRIPTOR.name.endswith(schema.name)
