"""One model call for every runtime: ``.tlt`` (Keras), ``.etlt`` (onnxruntime, decrypted in memory) and engines.

``make_predictor(path, key, framework)`` returns a ``Predictor``: called with a batch (NCHW float32) it returns
``{Keras output layer name: array}`` whatever ran the model, so a tool's pre- and post-processing do not change
with the framework. ONNX output names (``predictions/Softmax``, ``output_cov/Sigmoid``) are mapped back to the
Keras names through the ``.etlt`` metadata (``output_names`` ↔ ``keras_output_names``), else by dropping the
``/<op>`` suffix tlt-export adds.

Frameworks (``-f``): ``tlt`` (Keras, ``.tlt`` only), ``onnxruntime`` (``.etlt``, plain ONNX, onnxruntime engines)
and ``tensorrt`` (TensorRT engines, or an ``.etlt`` built into a temporary engine; exits 2 with the install hint
where TensorRT is missing). ``None`` picks by the file's content: ``.tlt`` → tlt, ``.etlt``/ONNX → onnxruntime,
an engine (it has a ``<engine>.json`` sidecar) → the backend that built it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import ModelFileError, TltError

FRAMEWORKS = ("tlt", "tensorrt", "onnxruntime")
KERAS_MEMBER = "model.keras"


class Predictor:
    """``predictor(batch)`` → ``{Keras output name: array}``; ``metadata`` is what the model file records."""

    def __init__(self, run: Callable[[np.ndarray], dict[str, np.ndarray]], output_names: Sequence[str],
                 metadata: dict[str, Any], framework: str, path: str | Path):
        self._run = run
        self.output_names = list(output_names)
        self.metadata = metadata
        self.framework = framework
        self.path = Path(path)

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self._run(np.ascontiguousarray(batch, dtype=np.float32))

    def first(self, batch: np.ndarray) -> np.ndarray:
        """The first (for classification: the only) output."""
        return self(batch)[self.output_names[0]]


def keras_name(onnx_name: str, metadata: dict[str, Any]) -> str:
    """The Keras output layer name of an ONNX output name."""
    exported = metadata.get("output_names")
    keras = metadata.get("keras_output_names")
    if isinstance(exported, list) and isinstance(keras, list) and len(exported) == len(keras) \
            and onnx_name in exported:
        return str(keras[exported.index(onnx_name)])
    return onnx_name.split("/", 1)[0]


def _onnx_runner(model: Any, metadata: dict[str, Any]) -> tuple[Callable[[np.ndarray], dict[str, np.ndarray]],
                                                                 list[str]]:
    input_name = model.input_names[0] if hasattr(model, "input_names") else "input_1"
    names = {name: keras_name(name, metadata) for name in getattr(model, "output_names", [])}

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = model.run({input_name: batch})
        return {names.get(name, keras_name(name, metadata)): np.asarray(value) for name, value in outputs.items()}

    return run, list(names.values())


def _keras_predictor(path: str | Path, key: str, architecture: str | None) -> Predictor:
    from libtlt.runtime.keras_model import load_tlt_model

    model, metadata = load_tlt_model(path, key, architecture=architecture)
    names = [str(n) for n in getattr(model, "output_names", [])]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = model.predict_on_batch(batch)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return {name: np.asarray(value) for name, value in zip(names, outputs, strict=True)}

    return Predictor(run, names, metadata, "tlt", path)


def _is_engine(path: Path) -> bool:
    from libtlt.runtime.engine import sidecar_path

    return sidecar_path(path).is_file()


def _engine_predictor(path: Path, framework: str | None) -> Predictor:
    from libtlt.runtime.engine import open_engine, read_sidecar

    sidecar = read_sidecar(path)
    backend = str(sidecar["backend"])
    if framework == "tlt" or (framework is not None and framework != backend):
        raise TltError(f"{path} is a {backend} engine: run it with -f {backend} (or leave -f out)")
    metadata = dict(sidecar.get("model_metadata") or {})
    metadata.setdefault("output_names", list(sidecar.get("outputs") or []))
    engine = open_engine(path)
    run, names = _onnx_runner(engine, metadata)
    if not names:
        names = [keras_name(n, metadata) for n in sidecar.get("outputs") or []]
    return Predictor(run, names, metadata, backend, path)


def _check_architecture(metadata: dict[str, Any], architecture: str | None, path: str | Path) -> None:
    found = metadata.get("architecture")
    if architecture is not None and found is not None and found != architecture:
        raise ModelFileError(f"this is a {found} model, not {architecture}", location=path)


def make_predictor(path: str | Path, key: str | None, framework: str | None = None, *,
                   architecture: str | None = None, precision: str = "fp32",
                   cal_cache: str | Path | None = None) -> Predictor:
    """A ``Predictor`` for a ``.tlt``, ``.etlt``, plain ONNX file or engine (see the module docstring).

    ``precision`` and ``cal_cache`` matter only when ``-f tensorrt`` builds an engine from an ``.etlt``.
    """
    from libtlt.io.modelfile import is_model_file, load_model_file

    if framework is not None and framework not in FRAMEWORKS:
        raise TltError(f"-f must be one of {', '.join(FRAMEWORKS)}, not '{framework}'")
    if framework == "tensorrt":
        from libtlt.runtime.tensorrt_backend import import_tensorrt

        import_tensorrt()  # before anything else: say how to install it
    file_path = Path(path)
    if not file_path.is_file():
        raise ModelFileError("model file not found", location=path)
    if is_model_file(file_path):
        if not key:
            from libtlt.runtime.onnxruntime_backend import MISSING_KEY

            raise ModelFileError(MISSING_KEY, location=path)
        members = load_model_file(file_path, key).files
        if KERAS_MEMBER in members:
            if framework not in (None, "tlt"):
                raise TltError(f"{path} is a .tlt (Keras) model: run it with -f tlt, or export it with tlt-export "
                               f"for -f {framework}")
            return _keras_predictor(file_path, key, architecture)
        if framework == "tlt":
            raise TltError(f"{path} is not a .tlt: run an .etlt with -f onnxruntime (or -f tensorrt)")
    elif _is_engine(file_path):
        predictor = _engine_predictor(file_path, framework)
        _check_architecture(predictor.metadata, architecture, path)
        return predictor
    elif framework == "tlt":
        raise TltError(f"{path} is not a .tlt model")
    from libtlt.runtime.onnxruntime_backend import OrtModel, read_onnx_source

    data, metadata = read_onnx_source(file_path, key)
    _check_architecture(metadata, architecture, path)
    if framework == "tensorrt":
        return _tensorrt_from_onnx(data, metadata, file_path, precision, cal_cache)
    model = OrtModel(data)
    run, names = _onnx_runner(model, metadata)
    return Predictor(run, names, metadata, "onnxruntime", path)


def _tensorrt_from_onnx(data: bytes, metadata: dict[str, Any], path: Path, precision: str,
                        cal_cache: str | Path | None) -> Predictor:
    """Build a TensorRT engine from the ONNX bytes in a temporary directory and run it.

    The engine is read into memory when it is opened, so the directory goes as soon as it is loaded
    (each ``-f tensorrt`` run on an ``.etlt`` would otherwise leave an engine behind in /tmp).
    """
    with tempfile.TemporaryDirectory(prefix="tlt-engine-") as engine_dir:
        engine_path = Path(engine_dir) / "model.engine"
        build_and_save_engine(data, engine_path, metadata, backend="tensorrt", precision=precision,
                              cal_cache=cal_cache)
        return _engine_predictor(engine_path, "tensorrt")


def build_and_save_engine(data: bytes, engine_path: str | Path, metadata: dict[str, Any], *, backend: str,
                          precision: str, cal_cache: str | Path | None = None) -> dict[str, Any]:
    """``build_engine`` with the model's metadata kept in the sidecar (so the engine runs without the .etlt)."""
    from libtlt.runtime.engine import build_engine

    shape = metadata.get("input_shape")
    dims = [int(v) for v in shape] if isinstance(shape, list) and len(shape) == 3 else None
    return build_engine(data, engine_path, backend=backend, precision=precision, cal_cache=cal_cache,
                        input_dims=dims, metadata=metadata)
