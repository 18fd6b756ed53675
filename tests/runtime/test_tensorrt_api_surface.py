"""Every TensorRT name libtlt.runtime.tensorrt_backend uses exists in TensorRT 10.13 and 11.4.

TensorRT cannot be installed here, but its Python *bindings* wheels download from PyPI
(``tensorrt-cu12-bindings==10.13.*``, ``tensorrt-cu13-bindings==11.4.*``): their compiled
``tensorrt.so`` holds every class, method, enum and property name as a string, and their
``__init__.py`` the pure-Python helpers (``nptype``, ``volume``). ``make install`` downloads both
wheels into ``.venv/trt-bindings`` (or set ``TLT_TRT_BINDINGS_DIR``). The test fails, never skips,
when they are missing: a silent skip would let a call removed in TensorRT 11 through.

Collected names: every attribute in a chain that starts at a name in ``TRT_OBJECT_NAMES`` (the
module, or a variable/attribute holding a TensorRT object), e.g. ``trt.Logger.WARNING`` →
``Logger``, ``WARNING``; ``config.set_memory_pool_limit`` → ``set_memory_pool_limit``. Names given
as strings to ``hasattr``/``getattr`` are guarded feature checks and exempt. The linker merges string
tails (``Runtime`` may live inside ``IPluginV3OneRuntime``), so a name counts as present when some
identifier in the library ends with it.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import zipfile
from functools import cache
from pathlib import Path

import pytest

from libtlt.runtime import tensorrt_backend

MODULE = Path(tensorrt_backend.__file__)
WHEELS = {"10.13": "tensorrt_cu12_bindings-10.13.*.whl", "11.4": "tensorrt_cu13_bindings-11.4.*.whl"}
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
INSTALL = ("python -m pip download --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 "
           "--python-version 3.11 -d .venv/trt-bindings 'tensorrt-cu12-bindings==10.13.*' "
           "'tensorrt-cu13-bindings==11.4.*'  (make install does this)")


def bindings_dir() -> Path:
    configured = os.environ.get("TLT_TRT_BINDINGS_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "trt-bindings"


@cache
def api_names(version: str) -> tuple[frozenset[str], frozenset[str]]:
    """(identifier strings of tensorrt.so, names defined by the package's __init__.py)."""
    folder = bindings_dir()
    found = sorted(folder.glob(WHEELS[version])) if folder.is_dir() else []
    if not found:
        pytest.fail(f"the TensorRT {version} bindings wheel ({WHEELS[version]}) is not in {folder}: {INSTALL}")
    with zipfile.ZipFile(found[-1]) as wheel:
        library = next(n for n in wheel.namelist() if n.endswith("/tensorrt.so"))
        binary = wheel.read(library)
        init = wheel.read(library.rsplit("/", 1)[0] + "/__init__.py").decode("utf-8")
    # Whole NUL-terminated strings that are identifiers: symbol, class, method and enum names, not words of
    # docstrings (which mention removed calls too).
    strings = {s.decode("ascii") for s in binary.split(b"\0") if _IDENTIFIER.fullmatch(s)}
    python_names = set()
    for node in ast.walk(ast.parse(init)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            python_names.add(node.name)
        elif isinstance(node, ast.Assign):
            python_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(strings), frozenset(python_names)


def present(name: str, version: str) -> bool:
    strings, python_names = api_names(version)
    return name in python_names or name in strings or any(s.endswith(name) for s in strings)


def _chain(node: ast.expr) -> list[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def used_names() -> dict[str, int]:
    """TensorRT attribute names used by the module → first line number."""
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    roots = tensorrt_backend.TRT_OBJECT_NAMES
    guarded = {arg.value for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in ("hasattr", "getattr") for arg in node.args[1:2] if isinstance(arg, ast.Constant)}
    names: dict[str, int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain = _chain(node)
        starts = [i for i, part in enumerate(chain) if part in roots]
        if not starts:
            continue
        for part in chain[starts[0] + 1:]:
            if part not in guarded and part not in roots:
                names.setdefault(part, node.lineno)
    return names


def test_the_collector_finds_the_calls_that_matter() -> None:
    names = used_names()
    for expected in ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED", "OnnxParser", "set_memory_pool_limit",
                     "MemoryPoolType", "WORKSPACE", "create_optimization_profile", "set_shape", "DLA_core",
                     "default_device_type", "GPU_FALLBACK", "build_serialized_network", "execute_async_v3",
                     "set_tensor_address", "set_input_shape", "deserialize_cuda_engine", "nptype", "Logger"):
        assert expected in names, expected


@pytest.mark.parametrize("version", sorted(WHEELS))
def test_every_tensorrt_name_exists_in(version: str) -> None:
    missing = {name: line for name, line in used_names().items() if not present(name, version)}
    assert not missing, (f"names used by {MODULE.name} that TensorRT {version} does not have (line numbers): "
                         f"{missing}; guard them with hasattr or use the newer API")


@pytest.mark.parametrize("version", sorted(WHEELS))
def test_the_check_catches_removed_calls(version: str) -> None:
    """Sanity: calls TensorRT 11 removed are absent from 11.4's strings, present in 10.13's."""
    removed = ("int8_calibrator", "IInt8EntropyCalibrator2", "FP16")
    assert all(present(name, version) == (version == "10.13") for name in removed)
    assert not present("definitely_not_a_tensorrt_call", version)
