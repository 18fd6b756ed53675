"""Regenerate the committed ``*_pb2.py`` modules from the ``.proto`` schemas (``make proto``).

Schemas live in ``libtlt/spec/protos`` (spec files) and ``libtlt/io/protos`` (file formats such as
tf.train.Example). The generated modules are committed so installing libtlt needs no protobuf
compiler; a test regenerates them into a temporary folder and fails when the committed ones are stale.

    python -m libtlt.spec.compile                  # all schemas, in place
    python -m libtlt.spec.compile --only ssd.proto  # just one (while editing it)
    python -m libtlt.spec.compile --out DIR         # into another tree (the staleness test)
"""

from __future__ import annotations

import argparse
from pathlib import Path

SRC_ROOT = Path(__file__).resolve().parents[2]  # .../src, so imports read "libtlt/spec/protos/x.proto"
PROTO_DIRS = (SRC_ROOT / "libtlt" / "spec" / "protos", SRC_ROOT / "libtlt" / "io" / "protos")


def proto_files() -> list[Path]:
    return sorted(p for d in PROTO_DIRS for p in d.glob("*.proto"))


def compile_protos(out_dir: Path = SRC_ROOT, only: list[str] | None = None) -> list[Path]:
    """Run protoc (bundled with grpcio-tools) on the schemas, writing into ``out_dir``."""
    from grpc_tools import protoc  # development dependency only

    files = [p for p in proto_files() if not only or p.name in only]
    missing = set(only or ()) - {p.name for p in files}
    if missing:
        raise SystemExit(f"no such schema: {', '.join(sorted(missing))}")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{SRC_ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    args += [str(p.relative_to(SRC_ROOT)) for p in files]
    if files and protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="schema file names to compile (default: all)")
    parser.add_argument("--out", type=Path, default=SRC_ROOT, help="output root (default: the source tree)")
    args = parser.parse_args()
    files = compile_protos(args.out, args.only)
    print(f"compiled {len(files)} schemas")


if __name__ == "__main__":
    main()
