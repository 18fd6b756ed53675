"""Regenerate ``protos/*_pb2.py`` from ``protos/*.proto`` (``make proto``).

The generated modules are committed so that installing libtlt needs no protobuf compiler; a test
(`tests/spec/test_protos_fresh.py`) regenerates them into a temporary folder and fails when the
committed ones are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).parent / "protos"
SRC_ROOT = PROTO_DIR.parents[2]  # .../src, so imports read "libtlt/spec/protos/x.proto"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def compile_protos(out_dir: Path = SRC_ROOT) -> None:
    """Run protoc (bundled with grpcio-tools) on every schema, writing into ``out_dir``."""
    from grpc_tools import protoc  # development dependency only

    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{SRC_ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    args += [str(p.relative_to(SRC_ROOT)) for p in proto_files()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    compile_protos(Path(sys.argv[1]) if len(sys.argv) > 1 else SRC_ROOT)
    print(f"compiled {len(proto_files())} schemas in {PROTO_DIR}")
