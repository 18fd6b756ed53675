"""Engine building shared by tlt-converter, ``tlt-export --engine_file`` and tlt-infer.

``build_engine`` checks the command against the graph (``-d`` against the input's shape, ``-o``
against the output names, optimization profiles against both), makes the precision explicit in the
ONNX graph (``onnx_precision``), then either

* ``backend="tensorrt"``: hands the graph to the thin TensorRT layer (strongly typed network), or
* ``backend="onnxruntime"``: saves onnxruntime's optimized model (``optimized_model_filepath``).

Either way the engine file and a JSON sidecar ``<engine>.json`` (backend, precision, versions, input
and output names, SHA-256 of the engine) are written atomically; ``open_engine`` checks the sidecar
before running the engine.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from libtlt.errors import DataError, ModelFileError, TltError, UnsupportedError
from libtlt.io.atomic import check_writable, write_files
from libtlt.io.calcache import CalibrationCache, read_calibration_cache
from libtlt.log import get_logger
from libtlt.runtime import onnx_precision

logger = get_logger(__name__)

BACKENDS = ("tensorrt", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "int8")
INPUT_ORDERS = ("nchw", "nhwc", "nc")
ORT_LEVELS = ("disable", "basic", "extended", "all")
DEFAULT_WORKSPACE = 1 << 30
SIDECAR_FORMAT = "tlt-engine/1"


@dataclass(frozen=True)
class OptProfile:
    """One input's optimization-profile shapes (``-p name,min,opt,max``)."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def as_tuple(self) -> tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return self.name, self.min, self.opt, self.max


def parse_dims(text: str, what: str = "-d") -> tuple[int, ...]:
    """``"3,544,960"`` → ``(3, 544, 960)``; any malformed or non-positive entry is a clear error."""
    try:
        dims = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise TltError(f"{what} expects comma-separated positive integers such as 3,544,960, not '{text}'") from None
    if not dims or any(d <= 0 for d in dims):
        raise TltError(f"{what} expects comma-separated positive integers such as 3,544,960, not '{text}'")
    return dims


def parse_profile(text: str) -> OptProfile:
    """``"input_1,1x3x544x960,8x3x544x960,16x3x544x960"`` → an ``OptProfile``."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not parts[0]:
        raise TltError(f"-p expects <input_name>,<min_shape>,<opt_shape>,<max_shape> with shapes like "
                       f"1x3x544x960, not '{text}'")
    shapes = []
    for part in parts[1:]:
        try:
            shape = tuple(int(d) for d in part.lower().split("x"))
        except ValueError:
            raise TltError(f"-p: shape '{part}' is not of the form <n>x<c>x<h>x<w>") from None
        if any(d <= 0 for d in shape):
            raise TltError(f"-p: shape '{part}' has a non-positive dimension")
        shapes.append(shape)
    return OptProfile(parts[0], shapes[0], shapes[1], shapes[2])


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    dims: list[int | str] = []
    for dim in value.type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return dims


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def _show(shape: Sequence[int | str]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def check_input_dims(model: onnx.ModelProto, input_dims: Sequence[int], input_order: str = "nchw") -> str:
    """Check ``-d`` (C,H,W, or C for ``nc``) against the first graph input; returns its name."""
    if input_order not in INPUT_ORDERS:
        raise TltError(f"-i must be one of {', '.join(INPUT_ORDERS)}, not '{input_order}'")
    inputs = _graph_inputs(model)
    if not inputs:
        raise ModelFileError("the model has no inputs")
    value = inputs[0]
    shape = _shape(value)
    dims = tuple(input_dims)
    if input_order == "nc":
        expected: tuple[int, ...] = dims
    elif len(dims) != 3:
        raise TltError(f"-d expects C,H,W for -i {input_order}, got {len(dims)} numbers ({','.join(map(str, dims))})")
    elif input_order == "nchw":
        expected = dims
    else:  # nhwc: -d stays C,H,W; the graph holds H,W,C
        expected = (dims[1], dims[2], dims[0])
    rest = shape[1:]
    ok = len(rest) == len(expected) and all(not isinstance(have, int) or have == want
                                           for have, want in zip(rest, expected, strict=True))
    if not ok:
        raise ModelFileError(f"-d {','.join(map(str, dims))} (-i {input_order}) does not match the model's input "
                             f"'{value.name}' of shape {_show(shape)}: use -d "
                             f"{_suggest(shape, input_order)}")
    return value.name


def _suggest(shape: Sequence[int | str], input_order: str) -> str:
    rest = [str(d) for d in shape[1:]]
    if input_order == "nhwc" and len(rest) == 3:
        rest = [rest[2], rest[0], rest[1]]
    elif input_order == "nchw" and len(rest) == 3 and rest[2] in ("1", "3") and rest[0] not in ("1", "3"):
        return f"{rest[2]},{rest[0]},{rest[1]} -i nhwc"  # channels last
    return ",".join(rest)


def check_output_names(model: onnx.ModelProto, output_names: Sequence[str]) -> list[str]:
    """Check ``-o`` against the graph's outputs; returns the names in the order given.

    As in TLT, ``-o NMS`` (``-o BatchedNMS``) names the NMS layer, whose outputs are ``NMS``, ``NMS_1`` (...): a
    named output brings the graph's outputs ``<name>_<k>`` right after it.
    """
    real = [value.name for value in model.graph.output]
    names = [name.strip() for name in output_names if name.strip()]
    if not names:
        raise TltError(f"-o names no output; this model's outputs are: {', '.join(real)}")
    unknown = [name for name in names if name not in real]
    if unknown:
        raise ModelFileError(f"-o names output(s) the model does not have: {', '.join(unknown)}; this model's "
                             f"outputs are: {', '.join(real)}")
    chosen: list[str] = []
    for name in names:
        chosen.append(name)
        chosen += [other for other in real if re.fullmatch(re.escape(name) + r"_\d+", other)]
    return list(dict.fromkeys(chosen))


def _select_outputs(model: onnx.ModelProto, names: Sequence[str]) -> None:
    keep = {value.name: value for value in model.graph.output}
    selected = [keep[name] for name in names]
    del model.graph.output[:]
    model.graph.output.extend(selected)


def check_profiles(model: onnx.ModelProto, profiles: Sequence[OptProfile]) -> None:
    shapes = {value.name: _shape(value) for value in _graph_inputs(model)}
    seen: set[str] = set()
    for profile in profiles:
        if profile.name not in shapes:
            raise ModelFileError(f"-p names input '{profile.name}', but the model's inputs are: {', '.join(shapes)}")
        if profile.name in seen:
            raise TltError(f"-p gives input '{profile.name}' twice")
        seen.add(profile.name)
        shape = shapes[profile.name]
        for label, dims in (("min", profile.min), ("opt", profile.opt), ("max", profile.max)):
            if len(dims) != len(shape) or any(isinstance(have, int) and have != want
                                              for have, want in zip(shape, dims, strict=True)):
                raise ModelFileError(f"-p {profile.name}: {label} shape {'x'.join(map(str, dims))} does not fit the "
                                     f"input's shape {_show(shape)}")
        if not all(a <= b <= c for a, b, c in zip(profile.min, profile.opt, profile.max, strict=True)):
            raise TltError(f"-p {profile.name}: shapes must satisfy min <= opt <= max in every dimension")


def default_profiles(model: onnx.ModelProto, input_name: str, input_dims: Sequence[int], input_order: str,
                     max_batch_size: int) -> list[OptProfile]:
    """A profile for a dynamic input from ``-d`` and ``-m``: batch 1..max, opt = max, C,H,W fixed."""
    value = next(v for v in _graph_inputs(model) if v.name == input_name)
    shape = _shape(value)
    if all(isinstance(d, int) for d in shape):
        return []
    dims = tuple(input_dims)
    if input_order == "nhwc":
        dims = (dims[1], dims[2], dims[0])
    batch = shape[0]
    low = (batch if isinstance(batch, int) else 1, *dims)
    high = (batch if isinstance(batch, int) else max_batch_size, *dims)
    return [OptProfile(input_name, low, high, high)]


def cache_scales(cal_cache: str | Path | CalibrationCache | Mapping[str, float]) -> dict[str, float]:
    """Tensor → INT8 scale (``amax / 127``) of a cal.bin path, a read cache or a mapping."""
    if isinstance(cal_cache, (str, Path)):
        cal_cache = read_calibration_cache(cal_cache)
    return dict(cal_cache.scales) if isinstance(cal_cache, CalibrationCache) else dict(cal_cache)


def make_precision_explicit(model: onnx.ModelProto, precision: str,
                            cal_cache: str | Path | CalibrationCache | Mapping[str, float] | None = None
                            ) -> onnx.ModelProto:
    """The graph with ``precision`` written into it: as is (fp32), float16, or int8 Q/DQ from ``cal_cache``."""
    if precision == "fp32":
        return model
    if precision == "fp16":
        return onnx_precision.to_fp16(model, keep_io_types=True)
    if precision != "int8":
        raise TltError(f"-t must be one of {', '.join(PRECISIONS)}, not '{precision}'")
    if cal_cache is None:
        raise DataError("INT8 needs a calibration cache (-c cal.bin from tlt-export --data_type int8)")
    source = str(cal_cache) if isinstance(cal_cache, (str, Path)) else "the calibration cache"
    scales = cache_scales(cal_cache)
    onnx_precision.check_scales(model, scales, source=source)
    return onnx_precision.insert_qdq(model, scales)


def _load(onnx_model: onnx.ModelProto | bytes) -> onnx.ModelProto:
    if isinstance(onnx_model, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(onnx_model)
        return model
    try:
        return onnx.load_from_string(bytes(onnx_model))
    except Exception as err:  # protobuf's DecodeError and friends
        raise ModelFileError(f"not an ONNX model ({err})") from None


#: Model metadata that stays in training files: the spec text (dataset paths, a YAML spec's key) and
#: the checkpoint's training state (epoch, optimizer settings), which deployment never reads.
PRIVATE_METADATA = ("spec", "key", "training_state")


def engine_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What an engine's sidecar records of its model (classes, input shape, preprocessing ...), so
    tlt-infer/tlt-evaluate can run an engine without the .tlt or the spec; never the spec text."""
    return {k: v for k, v in metadata.items() if k not in PRIVATE_METADATA}


def build_engine(onnx_model: onnx.ModelProto | bytes, engine_path: str | Path, *, backend: str = "tensorrt",
                 precision: str = "fp32", cal_cache: str | Path | CalibrationCache | Mapping[str, float] | None = None,
                 input_dims: Sequence[int] | None = None, input_order: str = "nchw",
                 output_names: Sequence[str] | None = None, max_batch_size: int = 16, calib_batch_size: int = 8,
                 opt_profiles: Sequence[OptProfile] = (), workspace: int = DEFAULT_WORKSPACE,
                 dla_core: int | None = None, strict_type_constraints: bool = False,
                 ort_optimization: str = "basic", metadata: Mapping[str, Any] | None = None,
                 verbose: bool = False) -> dict[str, Any]:
    """Validate the request against the graph, make ``precision`` explicit, build, write atomically.

    Returns the sidecar written beside the engine (``<engine>.json``).
    """
    if backend not in BACKENDS:
        raise TltError(f"--backend must be one of {', '.join(BACKENDS)}, not '{backend}'")
    if precision not in PRECISIONS:
        raise TltError(f"-t must be one of {', '.join(PRECISIONS)}, not '{precision}'")
    if max_batch_size < 1 or workspace < 1:
        raise TltError("-m and -w must be positive")
    if backend == "onnxruntime" and dla_core is not None:
        raise UnsupportedError("-u (DLA core) needs the TensorRT backend on a Jetson; onnxruntime has no DLA")
    check_writable(engine_path)  # a folder in the way or a missing parent: say so before a long build
    if backend == "tensorrt":
        from libtlt.runtime.tensorrt_backend import import_tensorrt

        import_tensorrt()  # before any work: say how to install it
    model = _load(onnx_model)
    input_name = check_input_dims(model, input_dims, input_order) if input_dims is not None else \
        _graph_inputs(model)[0].name
    names = check_output_names(model, output_names) if output_names is not None else \
        [value.name for value in model.graph.output]
    _select_outputs(model, names)
    check_profiles(model, opt_profiles)
    profiles = list(opt_profiles)
    if input_dims is not None and input_name not in {p.name for p in profiles}:
        profiles += default_profiles(model, input_name, input_dims, input_order, max_batch_size)
    if strict_type_constraints:
        logger.info("Strict types: a strongly typed network always follows the graph's types.")
    model = make_precision_explicit(model, precision, cal_cache)
    if backend == "onnxruntime" and precision == "int8" and cal_cache is not None:
        from libtlt.runtime.onnxruntime_int8 import integer_kernels

        model = integer_kernels(model, cache_scales(cal_cache))  # else onnxruntime runs float Convs (slower)
    sidecar: dict[str, Any] = {
        "format": SIDECAR_FORMAT, "precision": precision,
        "inputs": [v.name for v in _graph_inputs(model)], "outputs": names,
        "input_dims": list(input_dims) if input_dims is not None else None, "input_order": input_order,
        "max_batch_size": max_batch_size, "calib_batch_size": calib_batch_size,
        "profiles": [{"name": p.name, "min": list(p.min), "opt": list(p.opt), "max": list(p.max)} for p in profiles],
        "workspace": workspace, "strict_type_constraints": strict_type_constraints,
    }
    if metadata:
        sidecar["model_metadata"] = dict(metadata)
    data = model.SerializeToString()
    if backend == "tensorrt":
        from libtlt.runtime.tensorrt_backend import build_engine_file

        return build_engine_file(data, engine_path, profiles=[p.as_tuple() for p in profiles], workspace=workspace,
                                 dla_core=dla_core, verbose=verbose, extra=sidecar)
    return _build_onnxruntime(data, engine_path, sidecar, ort_optimization)


def _build_onnxruntime(data: bytes, engine_path: str | Path, sidecar: dict[str, Any], level: str) -> dict[str, Any]:
    import onnxruntime as ort

    if level not in ORT_LEVELS:
        raise TltError(f"onnxruntime optimization level must be one of {', '.join(ORT_LEVELS)}, not '{level}'")
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    # onnxruntime writes the optimized model itself and reports a full disk only as "serialization
    # failed": let it write to a private scratch folder, then write the engine through libtlt.io.atomic.
    with tempfile.TemporaryDirectory(prefix="tlt-engine-") as scratch:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = levels[level]
        options.optimized_model_filepath = str(Path(scratch) / "engine.onnx")
        try:
            ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types
            raise ModelFileError(f"onnxruntime cannot load the model: {str(err).splitlines()[0]}") from None
        engine_bytes = Path(options.optimized_model_filepath).read_bytes()
    sidecar = {**sidecar, "backend": "onnxruntime", "onnxruntime_version": ort.__version__,
               "onnxruntime_optimization": level, "sha256": hashlib.sha256(engine_bytes).hexdigest()}
    # The engine and its sidecar appear together or not at all (an engine without one cannot be opened).
    write_files({Path(engine_path): engine_bytes,
                 sidecar_path(engine_path): (json.dumps(sidecar, indent=2) + "\n").encode()})
    logger.info("onnxruntime engine (%s, %s optimizations) written to %s", sidecar["precision"], level, engine_path)
    return sidecar


def sidecar_path(engine_path: str | Path) -> Path:
    """``<engine>.json``: what the engine is and what built it."""
    return Path(f"{engine_path}.json")


def read_sidecar(engine_path: str | Path) -> dict[str, Any]:
    path = sidecar_path(engine_path)
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"engine has no sidecar {path.name} (build engines with tlt-converter)",
                             location=engine_path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"engine sidecar {path.name} is not valid JSON ({err})", location=engine_path) from None
    if not isinstance(sidecar, dict) or sidecar.get("backend") not in BACKENDS:
        raise ModelFileError(f"engine sidecar {path.name} names no known backend", location=engine_path)
    return sidecar


def open_engine(engine_path: str | Path, providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    """An engine ready to ``run``: an ``OrtModel`` or a ``TrtEngine``, after checking its sidecar.

    An onnxruntime engine saved with more than basic optimizations may hold operators of the
    onnxruntime version that wrote it; it is refused under another version.
    """
    path = Path(engine_path)
    if not path.is_file():
        raise ModelFileError("engine file not found", location=path)
    sidecar = read_sidecar(path)
    if sidecar["backend"] == "tensorrt":
        from libtlt.runtime.tensorrt_backend import TrtEngine

        return TrtEngine(path)
    import onnxruntime as ort

    from libtlt.runtime.onnxruntime_backend import OrtModel

    data = path.read_bytes()
    if sidecar.get("sha256") != hashlib.sha256(data).hexdigest():
        raise ModelFileError(f"engine does not match its sidecar {sidecar_path(path).name} (rebuilt or damaged)",
                             location=path)
    if sidecar.get("onnxruntime_optimization") in ("extended", "all") and \
            sidecar.get("onnxruntime_version") != ort.__version__:
        raise ModelFileError(f"engine optimized by onnxruntime {sidecar.get('onnxruntime_version')}; this is "
                             f"{ort.__version__}: rebuild it with tlt-converter", location=path)
    return OrtModel(data, providers)
