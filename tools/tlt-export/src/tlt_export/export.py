"""tlt-export's logic (000 §12, 001 export): .tlt (Keras) → encrypted ONNX .etlt, plus on request the
INT8 calibration cache, an engine and the DeepStream template files.

1. Decrypt the .tlt, check that it is a Keras model of the architecture the command names.
2. Convert with tf2onnx (input ``input_1`` [N, C, H, W], outputs named by the architecture's
   ``export_outputs``) and check onnxruntime against Keras on real preprocessed images (calibration
   images when there are some, else a fixed image-like batch): a difference beyond 1e-4 fails the export.
   An architecture with ``export_graph(spec, keras_model)`` builds the whole deployed graph itself (a
   two-stage detector stitched around standard-ONNX proposal and ROI ops): its graph replaces the
   conversion and ``export_tail``, its input keeps its own name, and since its outputs are no Keras
   outputs the check against Keras is the architecture's own tests' job; engines are compared with it.
3. ``--data_type int8``: cal.bin from QAT scales, or calibration (``tlt_export.calibrate``). A model trained
   with QAT stores its ranges by Keras layer name; ``tlt_export.qat_names`` maps them to the graph's tensors.
4. Write the .etlt (``model.onnx`` + metadata), then ``--engine_file`` through the same
   ``libtlt.runtime.engine.build_engine`` as tlt-converter, then ``--gen_ds_config``.

The .etlt always holds the float32 graph; precision is applied when an engine is built (tlt-converter
``-t``), so the same .etlt serves FP32, FP16 and INT8 engines.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import DataError, ModelFileError
from libtlt.log import get_logger
from libtlt.qat.metadata import stored_ranges
from libtlt.runtime.engine import engine_metadata
from tlt_export import __version__
from tlt_export.calibrate import (
    Preprocessing,
    calibration_batches,
    preprocessing_from_metadata,
    qat_scales,
    write_qat_cache,
)

logger = get_logger("tlt_export")

DATA_TYPES = ("fp32", "fp16", "int8")
ONNX_MEMBER = "model.onnx"
KERAS_MEMBER = "model.keras"
#: Images in the export-time Keras/ONNX check.
CHECK_IMAGES = 4
#: Metadata written by the container itself, not copied from the .tlt.
_CONTAINER_KEYS = ("format", "created")


@dataclass
class ExportResult:
    """What one export wrote and measured."""

    output_file: Path
    input_name: str
    input_dims: tuple[int, int, int]
    output_names: list[str]
    max_abs_diff: float | None  # None: the architecture's export graph has no Keras twin to compare with
    cal_cache_file: Path | None = None
    engine_file: Path | None = None
    engine_max_abs_diff: float | None = None
    deepstream_files: tuple[Path, ...] = ()
    seconds: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


def default_output_file(model: str | Path) -> Path:
    """``-o`` default: the model's path with ``.etlt`` (``weights/resnet_010.tlt`` → ``weights/resnet_010.etlt``)."""
    return Path(model).with_suffix(".etlt")


def load_keras_model(model: str | Path, key: str, architecture: str) -> tuple[Any, dict[str, Any]]:
    """Decrypt and rebuild the .tlt; an .etlt, another architecture or a wrong key is a one-line error."""
    from libtlt.io.modelfile import load_model_file
    from libtlt.runtime.keras_model import keras_model_from

    model_file = load_model_file(model, key)  # decrypted once, then rebuilt
    if ONNX_MEMBER in model_file.files and KERAS_MEMBER not in model_file.files:
        raise ModelFileError("this is an .etlt (an exported model); tlt-export takes the .tlt written by tlt-train",
                             location=model)
    return keras_model_from(model_file, model, architecture=architecture)


def load_export_spec(arch: Any, experiment_spec: str | None, metadata: dict[str, Any]) -> Any:
    """The spec handed to the architecture: ``-e`` if given, else the spec text stored in the model, else None."""
    from libtlt.errors import SpecError
    from libtlt.spec import load_spec
    from libtlt.spec.loader import load_spec_text

    if experiment_spec is not None:
        return load_spec(experiment_spec, arch.spec_message())
    text = metadata.get("spec")
    if isinstance(text, str) and text.strip():
        for syntax in ("text", "yaml"):
            try:
                return load_spec_text(text, arch.spec_message(), name="<model spec>", syntax=syntax)
            except SpecError:
                continue
    return None


def network_type(arch: Any) -> int:
    """nvinfer's network-type: the architecture's ``network_type`` if it has one, else by its task (1 for a
    classifier, 3 for an instance segmenter, 0 for a detector)."""
    from libtlt.registry import CLASSIFIER, INSTANCE_SEGMENTER

    declared = getattr(arch, "network_type", None)
    if isinstance(declared, int):
        return declared
    return {CLASSIFIER: 1, INSTANCE_SEGMENTER: 3}.get(arch.task, 0)


def check_batch(preprocessing: Preprocessing) -> np.ndarray:
    """A fixed batch of image-like inputs (smooth gradients plus noise in [0, 255]), preprocessed like the model's."""
    rng = np.random.default_rng(0)
    height, width, channels = preprocessing.height, preprocessing.width, preprocessing.channels
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for n in range(CHECK_IMAGES):
        base = [127.5 + 100 * np.sin((xx * (c + 1) + yy * (n + 1)) / max(height, width) * np.pi) for c in range(channels)]
        image = np.stack(base, axis=-1) + rng.normal(0, 20, (height, width, channels))
        images.append(np.clip(image, 0, 255))
    batch = np.stack(images).astype(np.float32)
    scale = np.asarray(preprocessing.scale, np.float32)
    offsets = np.asarray(preprocessing.offsets, np.float32)
    return np.ascontiguousarray(((batch - offsets) * scale).transpose(0, 3, 1, 2), dtype=np.float32)


def _training_loader(arch: Any, spec: Any) -> Any:
    """The architecture's calibration batches of ``spec`` (``-e``), or None without a spec or a loader."""
    from libtlt.registry import supports

    if spec is None or not supports(arch, "tensorfile"):
        return None

    def load() -> Any:
        arch.validate(spec)
        return arch.calibration_batches(spec)

    return load


def export(arch_name: str, model: str | Path, key: str, *, output_file: str | Path | None = None,
           data_type: str = "fp32", cal_data_file: str | None = None, cal_image_dir: str | None = None,
           cal_cache_file: str | Path = "cal.bin", batches: int = 10, batch_size: int = 8, max_batch_size: int = 16,
           max_workspace_size: int = 1 << 30, experiment_spec: str | None = None, engine_file: str | Path | None = None,
           force_ptq: bool = False, gen_ds_config: bool = False, strict_type_constraints: bool = False,
           verbose: bool = False) -> ExportResult:
    """Export ``model`` (.tlt) of architecture ``arch_name``; returns what was written."""
    from libtlt.registry import resolve

    started = time.perf_counter()
    if data_type not in DATA_TYPES:
        raise DataError(f"--data_type must be one of {', '.join(DATA_TYPES)}, not '{data_type}'")
    if batches < 1 or batch_size < 1 or max_batch_size < 1 or max_workspace_size < 1:
        raise DataError("--batches, --batch_size, --max_batch_size and --max_workspace_size must be positive")
    arch = resolve("tlt-export", "export", arch_name)
    out_path = Path(output_file) if output_file is not None else default_output_file(model)
    if out_path.resolve() == Path(model).resolve():
        raise DataError("-o names the input model itself; give another output file", location=out_path)
    logger.info("Loading model from %s", model)
    keras_model, metadata = load_keras_model(model, key, arch_name)
    preprocessing = preprocessing_from_metadata(metadata, source=model)
    spec = load_export_spec(arch, experiment_spec, metadata)
    export_names = list(arch.export_outputs(spec))
    build_graph = getattr(arch, "export_graph", None)
    tail = None if build_graph is not None else getattr(arch, "export_tail", None)
    if (build_graph is not None or tail is not None) and spec is None:
        raise DataError(f"exporting {arch_name} needs its experiment spec (-e): the model records none")

    from tlt_export.onnx_convert import DEFAULT_OPSET, INPUT_NAME, check_conversion, input_chw, keras_to_onnx

    dims = input_chw(keras_model)
    if dims != (preprocessing.channels, preprocessing.height, preprocessing.width):
        raise ModelFileError(f"the model's input is {list(dims)} but its metadata says input_shape "
                             f"{[preprocessing.channels, preprocessing.height, preprocessing.width]}", location=model)
    cal_batches: list[np.ndarray] = []  # loaded before converting: a missing source fails fast
    learned = qat_scales(metadata)
    ranges = stored_ranges(metadata)
    use_qat = data_type == "int8" and (learned is not None or ranges is not None) and not force_ptq
    if data_type == "int8" and not use_qat:
        cal_batches = calibration_batches(metadata, preprocessing, cal_data_file=cal_data_file,
                                          cal_image_dir=cal_image_dir, experiment_spec=experiment_spec,
                                          batch_size=batch_size, batches=batches,
                                          loader=_training_loader(arch, spec))
    check = cal_batches[0][:CHECK_IMAGES] if cal_batches else check_batch(preprocessing)
    input_name = INPUT_NAME
    keras_names: list[str] | None = metadata.get("output_names")
    reference = None
    worst: float | None = None
    if build_graph is not None:  # the architecture's whole deployed graph, standard ONNX ops only
        onnx_model = build_graph(spec, keras_model)
        input_name = graph_input_name(onnx_model, dims)
        export_names = [value.name for value in onnx_model.graph.output]
        keras_names = export_names  # no Keras layer has these outputs: the predictor keeps the names
        reference = _onnx_outputs(onnx_model, check, input_name)
        logger.info("Export graph built by %s (opset %d): input %s, outputs %s.", arch_name,
                    _opset(onnx_model), input_name, ", ".join(export_names))
    else:
        onnx_model = keras_to_onnx(keras_model, export_names, opset=DEFAULT_OPSET)
        worst = check_conversion(keras_model, onnx_model, check, export_names)
        logger.info("ONNX (opset %d) matches Keras: max |difference| %.3g on %d images.", DEFAULT_OPSET, worst,
                    len(check))

    result = ExportResult(out_path, input_name, dims, export_names, worst)
    if data_type == "int8":
        result.cal_cache_file = Path(cal_cache_file)
        if use_qat:
            if learned is None:
                from tlt_export.qat_names import onnx_scales

                learned = onnx_scales(keras_model, onnx_model, ranges or {}, check, input_name=input_name)
            write_qat_cache(onnx_model, learned, cal_cache_file)
        else:
            from libtlt.runtime.calibration import calibrate_to_cache

            calibrate_to_cache(onnx_model, cal_batches, cal_cache_file, input_name=input_name)

    if tail is not None:  # the architecture's post-processing (decoder, NMS) in standard ONNX ops
        onnx_model = tail(spec, onnx_model)
        export_names = [value.name for value in onnx_model.graph.output]
        keras_names = export_names  # no Keras layer has these outputs: the predictor keeps the names
        reference = _onnx_outputs(onnx_model, check, input_name)
        logger.info("Post-processing appended in standard ONNX ops: outputs %s.", ", ".join(export_names))
        result.output_names = export_names

    # What deployment needs (classes, input, preprocessing, outputs): never the training spec text, which
    # names the datasets and can hold the key (003 `key:`).
    meta = {k: v for k, v in engine_metadata(metadata).items() if k not in _CONTAINER_KEYS}
    meta.update({
        "input_names": [input_name],
        "output_names": export_names,
        "keras_output_names": keras_names,
        "onnx_opset": _opset(onnx_model),
        "data_type": data_type,
        "export_check_max_abs_diff": worst,
        "exported_by": f"tlt-export {__version__}",
    })
    if result.cal_cache_file is not None:
        meta["calibration"] = "qat" if use_qat else "ptq"
    from libtlt.io.modelfile import save_model_file

    save_model_file(out_path, key, {ONNX_MEMBER: onnx_model.SerializeToString()}, meta,
                    kdf_iterations=_kdf_iterations(model))
    result.metadata = meta
    logger.info("Converted model was saved into %s", out_path)
    logger.info("Input node: %s", input_name)
    logger.info("Output node(s): %s", export_names)

    if engine_file is not None:
        result.engine_file = Path(engine_file)
        result.engine_max_abs_diff = _build_engine(onnx_model, engine_file, data_type=data_type,
                                                   cal_cache_file=result.cal_cache_file, dims=dims,
                                                   export_names=export_names, batch_size=batch_size,
                                                   max_batch_size=max_batch_size, workspace=max_workspace_size,
                                                   strict=strict_type_constraints, metadata=meta, input_name=input_name,
                                                   reference=(keras_model, check, reference), verbose=verbose)
    if gen_ds_config:
        from tlt_export.deepstream import write_deepstream_files

        classes = [str(c) for c in metadata.get("classes") or []]
        if not classes:
            raise ModelFileError("--gen_ds_config needs the class names, and the model metadata has none",
                                 location=model)
        settings_of = getattr(arch, "deepstream_settings", None)
        settings = dict(settings_of(spec, classes)) if settings_of is not None and spec is not None else {}
        result.deepstream_files = write_deepstream_files(out_path, preprocessing, key=key,
                                                         network_type=network_type(arch), classes=classes,
                                                         output_names=export_names, settings=settings)
        logger.info("DeepStream template config and labels written to %s", result.deepstream_files[0].parent)
    result.seconds = time.perf_counter() - started
    return result


def _onnx_outputs(onnx_model: Any, batch: np.ndarray, input_name: str) -> dict[str, np.ndarray]:
    """The float32 graph's outputs on ``batch`` (onnxruntime), the reference of an engine with post-processing."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {input_name: batch}), strict=True))


def _opset(onnx_model: Any) -> int:
    """The default-domain opset the graph declares (what the .etlt metadata records)."""
    return next((int(o.version) for o in onnx_model.opset_import if o.domain in ("", "ai.onnx")), 0)


def graph_input_name(onnx_model: Any, dims: tuple[int, int, int]) -> str:
    """The name of an architecture-built graph's one input, checked to be float32 ``[N, C, H, W]`` like the model's:
    calibration, the engine profiles and the engine check all feed it."""
    from onnx import TensorProto

    inputs = list(onnx_model.graph.input)
    if len(inputs) != 1:
        raise ModelFileError(f"the architecture's export graph has {len(inputs)} inputs; tlt-export feeds one image "
                             "batch")
    tensor = inputs[0].type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type != TensorProto.FLOAT or len(shape) != 4 or tuple(shape[1:]) != dims:
        raise ModelFileError(f"the architecture's export graph takes {inputs[0].name} {shape}, not float32 "
                             f"[N, {', '.join(map(str, dims))}] like the model")
    return str(inputs[0].name)


def _kdf_iterations(model: str | Path) -> int:
    """The .etlt uses the same key-derivation cost as the .tlt it came from."""
    from libtlt.io.modelfile import DEFAULT_KDF_ITERATIONS, MAX_KDF_ITERATIONS

    with open(model, "rb") as handle:
        head = handle.read(16)
    # Header layout (libtlt.io.modelfile, docs/formats.md): KDF iterations, big-endian, at offset 12.
    iterations = struct.unpack_from(">I", head, 12)[0] if len(head) == 16 else DEFAULT_KDF_ITERATIONS
    return iterations if 1 <= iterations <= MAX_KDF_ITERATIONS else DEFAULT_KDF_ITERATIONS


def _build_engine(onnx_model: Any, engine_file: str | Path, *, data_type: str, cal_cache_file: Path | None,
                  dims: tuple[int, int, int], export_names: list[str], batch_size: int, max_batch_size: int,
                  workspace: int, strict: bool, metadata: dict[str, Any],
                  reference: tuple[Any, np.ndarray, dict[str, np.ndarray] | None], verbose: bool,
                  input_name: str) -> float:
    from libtlt.runtime.engine import build_engine, engine_metadata, open_engine
    from libtlt.runtime.tensorrt_backend import tensorrt_available
    from tlt_export.onnx_convert import keras_outputs, max_differences

    if tensorrt_available():
        backend = "tensorrt"
    else:
        backend = "onnxruntime"
        logger.info("TensorRT is not installed: building an onnxruntime engine (%s) instead.", data_type)
    build_engine(onnx_model, engine_file, backend=backend, precision=data_type, cal_cache=cal_cache_file,
                 input_dims=dims, output_names=export_names, max_batch_size=max_batch_size,
                 calib_batch_size=batch_size, workspace=workspace, strict_type_constraints=strict,
                 metadata=engine_metadata(metadata), verbose=verbose)
    keras_model, batch, expected = reference
    engine = open_engine(engine_file)
    outputs = engine.run({input_name: batch})
    against = "Keras" if expected is None else "the float32 graph"
    diffs = max_differences(expected if expected is not None else keras_outputs(keras_model, batch, export_names),
                            outputs)
    worst = max(diffs.values())
    logger.info("%s engine saved to %s; max |engine - %s| on the check images: %s", backend, engine_file, against,
                ", ".join(f"{name} {value:.3g}" for name, value in diffs.items()))
    return worst
