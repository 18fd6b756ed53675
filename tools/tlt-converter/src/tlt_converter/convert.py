"""tlt-converter's logic: decrypt the .etlt in memory (or read a plain ONNX file), then build the
engine with ``libtlt.runtime.engine.build_engine``. No TensorFlow anywhere on this path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from libtlt.log import get_logger
from libtlt.runtime.engine import OptProfile, build_engine, engine_metadata
from libtlt.runtime.onnxruntime_backend import read_onnx_source

logger = get_logger("tlt_converter")


def convert(input_file: str | Path, *, key: str | None, input_dims: Sequence[int], output_names: Sequence[str],
            engine_file: str | Path = "saved.engine", data_type: str = "fp32", cal_cache_file: str | Path = "cal.bin",
            batch_size: int = 8, max_batch_size: int = 16, max_workspace_size: int = 1 << 30,
            input_order: str = "nchw", profiles: Sequence[OptProfile] = (), strict_type_constraints: bool = False,
            dla_core: int | None = None, backend: str = "tensorrt", verbose: bool = False) -> dict[str, Any]:
    """Build ``engine_file`` from ``input_file``; returns the sidecar written beside it."""
    if backend == "tensorrt":
        from libtlt.runtime.tensorrt_backend import import_tensorrt

        import_tensorrt()  # fail before decrypting anything, with the install hint
    onnx_bytes, metadata = read_onnx_source(input_file, key)
    if not metadata:
        logger.info("%s is a plain ONNX model (not encrypted)", input_file)
    sidecar = build_engine(onnx_bytes, engine_file, backend=backend, precision=data_type,
                           cal_cache=cal_cache_file if data_type == "int8" else None, input_dims=input_dims,
                           input_order=input_order, output_names=output_names, max_batch_size=max_batch_size,
                           calib_batch_size=batch_size, opt_profiles=profiles, workspace=max_workspace_size,
                           dla_core=dla_core, strict_type_constraints=strict_type_constraints,
                           metadata=engine_metadata(metadata),
                           verbose=verbose)
    logger.info("Detected %d inputs and %d output network tensors.", len(sidecar["inputs"]), len(sidecar["outputs"]))
    logger.info("%s engine (%s) saved to %s", backend, data_type, engine_file)
    return sidecar
