"""The thin TensorRT 10/11 layer: parse an ONNX graph whose precision is already explicit into a
strongly typed network, build and serialize an engine, and run engines with cuda-python buffers.

Everything numeric (FP16 conversion, Q/DQ from cal.bin) happened in the ONNX graph before this
module sees it (``libtlt.runtime.onnx_precision``), so the same code serves TensorRT 10, which still
has the old precision flags and calibrators, and TensorRT 11, which has neither. Features are
detected with ``hasattr``, never by parsing version strings. ``tensorrt`` and ``cuda.bindings`` are
imported lazily: this module imports (and type-checks) where neither is installed.

Every TensorRT object lives in a variable named in ``TRT_OBJECT_NAMES``; the API-surface test
(tests/runtime/test_tensorrt_api_surface.py) checks each attribute used on them against the
bindings of TensorRT 10.13 and 11.4, except names guarded by ``hasattr``/``getattr``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import ModelFileError, UnsupportedError
from libtlt.io.atomic import write_files
from libtlt.log import get_logger

logger = get_logger(__name__)

#: Names of the variables and attributes that hold the tensorrt module or TensorRT objects.
TRT_OBJECT_NAMES = frozenset({"trt", "builder", "network", "parser", "config", "profile", "runtime", "engine",
                              "context", "trt_logger", "_engine", "_context"})

INSTALL_HINT = ("TensorRT is not installed: install it for your CUDA version (pip install tensorrt-cu12, or "
                "JetPack on Jetson) or build an onnxruntime engine with --backend onnxruntime")
Profile = tuple[str, Sequence[int], Sequence[int], Sequence[int]]


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or ``UnsupportedError`` saying how to get it."""
    try:
        import tensorrt
    except ImportError as err:
        raise UnsupportedError(f"{INSTALL_HINT} ({err})") from None
    return tensorrt


def tensorrt_available() -> bool:
    try:
        import_tensorrt()
    except UnsupportedError:
        return False
    return True


def _cudart() -> Any:
    """cuda-python's runtime API: ``cuda.bindings.runtime`` (cuda-python 12.6+) or ``cuda.cudart``."""
    try:
        import cuda
    except ImportError:
        raise UnsupportedError("cuda-python is not installed (pip install cuda-python): TensorRT inference needs "
                               "it for device memory") from None
    try:
        from cuda.bindings import runtime
    except ImportError:
        runtime = None
    if runtime is not None:
        return runtime
    if hasattr(cuda, "cudart"):
        return cuda.cudart
    raise UnsupportedError("this cuda-python has neither cuda.bindings.runtime nor cuda.cudart")


def _check_cuda(result: Any, what: str) -> Any:
    """Unpack a cuda-python call's ``(error, *values)`` tuple, raising on failure."""
    cudart = _cudart()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA call {what} failed: {error}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_description() -> dict[str, str]:
    """The current GPU's name and compute capability (recorded beside every engine)."""
    cudart = _cudart()
    device = _check_cuda(cudart.cudaGetDevice(), "cudaGetDevice")
    props = _check_cuda(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name.decode("utf-8", "replace") if isinstance(props.name, bytes) else str(props.name)
    return {"gpu": name.rstrip("\x00"), "compute_capability": f"{props.major}.{props.minor}"}


def _make_logger(trt: Any, verbose: bool) -> Any:
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)


def build_serialized_engine(onnx_bytes: bytes, *, profiles: Sequence[Profile] = (), workspace: int = 1 << 30,
                            dla_core: int | None = None, verbose: bool = False) -> bytes:
    """Parse ``onnx_bytes`` into a strongly typed network and return the serialized engine."""
    trt = import_tensorrt()
    trt_logger = _make_logger(trt, verbose)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(index)) for index in range(parser.num_errors)]
        raise ModelFileError("TensorRT's ONNX parser rejected the model: " + "; ".join(errors))
    logger.info("Detected %d inputs and %d output network tensors.", network.num_inputs, network.num_outputs)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    if profiles:
        profile = builder.create_optimization_profile()
        for name, low, opt, high in profiles:
            profile.set_shape(name, tuple(low), tuple(opt), tuple(high))
        config.add_optimization_profile(profile)
    if dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise UnsupportedError(f"DLA core {dla_core} requested, but this device has no DLA (-u is for Jetson)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelFileError("TensorRT could not build an engine from this model (run with -v for its log)")
    return bytes(serialized)


def sidecar_path(engine_path: str | Path) -> Path:
    return Path(f"{engine_path}.json")


def build_engine_file(onnx_bytes: bytes, engine_path: str | Path, *, profiles: Sequence[Profile] = (),
                      workspace: int = 1 << 30, dla_core: int | None = None, verbose: bool = False,
                      extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build, then write the engine and its sidecar (TensorRT version, GPU) atomically; returns the sidecar."""
    trt = import_tensorrt()
    data = build_serialized_engine(onnx_bytes, profiles=profiles, workspace=workspace, dla_core=dla_core,
                                   verbose=verbose)
    sidecar = {**dict(extra or {}), "backend": "tensorrt", "tensorrt_version": trt.__version__,
               **gpu_description(), "dla_core": dla_core, "sha256": hashlib.sha256(data).hexdigest()}
    write_files({Path(engine_path): data, sidecar_path(engine_path): (json.dumps(sidecar, indent=2) + "\n").encode()})
    return sidecar


def check_engine_sidecar(engine_path: str | Path, sidecar: Mapping[str, Any]) -> None:
    """Refuse an engine built by another TensorRT version or on another GPU."""
    trt = import_tensorrt()
    here = {"tensorrt_version": trt.__version__, **gpu_description()}
    for field in ("tensorrt_version", "gpu"):
        if sidecar.get(field) != here[field]:
            raise ModelFileError(f"engine built with TensorRT {sidecar.get('tensorrt_version')} on "
                                 f"{sidecar.get('gpu')}; this is TensorRT {here['tensorrt_version']} on "
                                 f"{here['gpu']}: rebuild it with tlt-converter", location=engine_path)


class _DeviceBuffer:
    def __init__(self, nbytes: int):
        self.nbytes = max(int(nbytes), 1)
        self.pointer = _check_cuda(_cudart().cudaMalloc(self.nbytes), "cudaMalloc")

    def free(self) -> None:
        if self.pointer is not None:
            _check_cuda(_cudart().cudaFree(self.pointer), "cudaFree")
            self.pointer = None


class TrtEngine:
    """A deserialized engine and one execution context; ``run`` copies inputs in and outputs out."""

    def __init__(self, engine_path: str | Path, *, check_sidecar: bool = True, verbose: bool = False):
        trt = import_tensorrt()
        path = Path(engine_path)
        data = path.read_bytes()
        side = sidecar_path(path)
        if check_sidecar:
            if not side.is_file():
                raise ModelFileError(f"engine has no sidecar {side.name} recording its TensorRT version and GPU",
                                     location=path)
            sidecar = json.loads(side.read_text(encoding="utf-8"))
            if sidecar.get("sha256") not in (None, hashlib.sha256(data).hexdigest()):
                raise ModelFileError(f"engine does not match its sidecar {side.name} (rebuilt or damaged)",
                                     location=path)
            check_engine_sidecar(path, sidecar)
        self.trt_logger = _make_logger(trt, verbose)
        runtime = trt.Runtime(self.trt_logger)
        self._engine = runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise ModelFileError("TensorRT cannot deserialize this engine", location=path)
        self._context = self._engine.create_execution_context()
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self.dtypes: dict[str, Any] = {}
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.input_names if is_input else self.output_names).append(name)
            self.dtypes[name] = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = _cudart()
        buffers: list[_DeviceBuffer] = []
        stream = _check_cuda(cudart.cudaStreamCreate(), "cudaStreamCreate")
        try:
            for name in self.input_names:
                host = np.ascontiguousarray(inputs[name], dtype=self.dtypes[name])
                self._context.set_input_shape(name, tuple(host.shape))
                buffer = _DeviceBuffer(host.nbytes)
                buffers.append(buffer)
                _check_cuda(cudart.cudaMemcpy(buffer.pointer, host.ctypes.data, host.nbytes,
                                              cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), "cudaMemcpy")
                self._context.set_tensor_address(name, buffer.pointer)
            results: dict[str, np.ndarray] = {}
            for name in self.output_names:
                shape = tuple(self._context.get_tensor_shape(name))
                results[name] = np.empty(shape, dtype=self.dtypes[name])
                buffer = _DeviceBuffer(results[name].nbytes)
                buffers.append(buffer)
                self._context.set_tensor_address(name, buffer.pointer)
            if not self._context.execute_async_v3(int(stream)):
                raise RuntimeError("TensorRT execution failed")
            for name, buffer in zip(self.output_names, buffers[len(self.input_names):], strict=True):
                host = results[name]
                _check_cuda(cudart.cudaMemcpyAsync(host.ctypes.data, buffer.pointer, host.nbytes,
                                                   cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream),
                            "cudaMemcpyAsync")
            _check_cuda(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
            return results
        finally:
            for buffer in buffers:
                buffer.free()
            _check_cuda(cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")
