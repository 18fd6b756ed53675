"""Run ONNX models (plain ``.onnx``, decrypted ``.etlt``, onnxruntime engines) with onnxruntime.

An ``.etlt`` is decrypted in memory (``load_etlt``) and its ONNX bytes go straight into an
``InferenceSession``; the plaintext never touches the disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libtlt.errors import DataError, ModelFileError
from libtlt.io.modelfile import identify_foreign_file, is_model_file, load_model_file

ONNX_MEMBER = "model.onnx"
KERAS_MEMBER = "model.keras"
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


def load_etlt(path: str | Path, key: str) -> tuple[bytes, dict[str, Any]]:
    """Decrypt an ``.etlt`` in memory: returns ``(onnx bytes, metadata)``.

    A ``.tlt`` (a Keras model) given instead raises ``ModelFileError`` saying so.
    """
    model_file = load_model_file(path, key)
    if ONNX_MEMBER not in model_file.files:
        if KERAS_MEMBER in model_file.files:
            raise ModelFileError("this is a .tlt (Keras training model), not an .etlt: export it first with "
                                 "tlt-export", location=path)
        members = ", ".join(sorted(model_file.files)) or "none"
        raise ModelFileError(f"not an .etlt: it holds no {ONNX_MEMBER} (it holds: {members})", location=path)
    return model_file.files[ONNX_MEMBER], model_file.metadata


#: The error for an encrypted model file opened without a key (an engine or plain ONNX file needs none).
MISSING_KEY = "this is an encrypted model file: pass its key with -k, --key_file or $TLT_KEY"


def read_onnx_source(path: str | Path, key: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes and metadata of an ``.etlt`` (needs ``key``) or of a plain ONNX file (metadata {}).

    Plain files are recognised by content, not by name, and parsed enough to give a clear error
    when they are not ONNX at all.
    """
    where = str(path)
    file_path = Path(path)
    if not file_path.exists():
        raise ModelFileError("model file not found", location=where)
    if file_path.is_dir():
        raise ModelFileError("expected a model file, found a directory", location=where)
    if is_model_file(file_path):
        if not key:
            raise ModelFileError(MISSING_KEY, location=where)
        return load_etlt(file_path, key)
    data = file_path.read_bytes()
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception:  # protobuf raises DecodeError and others for non-ONNX bytes
        model = None
    if model is None or not model.graph.node:
        foreign = identify_foreign_file(data[:8])
        what = f": this is {foreign}" if foreign and foreign != "a plain ONNX model" else ""
        raise ModelFileError(f"not an .etlt or ONNX model{what}", location=where)
    return data, {}


def _dims(shape: Sequence[Any]) -> list[int | str | None]:
    return [d if isinstance(d, (int, str)) else None for d in shape]


class OrtModel:
    """An onnxruntime session with named inputs and outputs.

    ``source`` is a path to an ONNX file or the ONNX bytes themselves; ``providers`` the execution
    providers in order of preference (CPU by default).
    """

    def __init__(self, source: str | Path | bytes, providers: Sequence[str] = DEFAULT_PROVIDERS, *,
                 session_options: Any = None):
        import onnxruntime as ort

        options = session_options or ort.SessionOptions()
        if session_options is None:
            options.log_severity_level = 3
        model = bytes(source) if isinstance(source, (bytes, bytearray)) else str(source)
        try:
            self.session = ort.InferenceSession(model, options, providers=list(providers))
        except Exception as err:  # onnxruntime raises its own exception types
            where = "<bytes>" if isinstance(model, bytes) else model
            raise ModelFileError(f"onnxruntime cannot load the model: {err}".splitlines()[0], location=where) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = {i.name: _dims(i.shape) for i in self.session.get_inputs()}
        self.output_shapes = {o.name: _dims(o.shape) for o in self.session.get_outputs()}
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}

    @classmethod
    def from_file(cls, path: str | Path, key: str | None = None,
                  providers: Sequence[str] = DEFAULT_PROVIDERS) -> OrtModel:
        """Open an ``.etlt`` (decrypted in memory with ``key``) or a plain ONNX file."""
        data, _ = read_onnx_source(path, key)
        return cls(data, providers)

    def run(self, inputs: Mapping[str, Any] | np.ndarray, output_names: Sequence[str] | None = None
            ) -> dict[str, np.ndarray]:
        """Run the model; ``inputs`` maps input names to arrays (a bare array feeds a single input)."""
        if not isinstance(inputs, Mapping):
            if len(self.input_names) != 1:
                raise DataError(f"the model has {len(self.input_names)} inputs ({', '.join(self.input_names)}); "
                                "pass a mapping from input name to array")
            inputs = {self.input_names[0]: inputs}
        missing = [name for name in self.input_names if name not in inputs]
        unknown = [name for name in inputs if name not in self.input_names]
        if missing or unknown:
            raise DataError(f"model inputs are {', '.join(self.input_names)}; missing {missing}, unknown {unknown}")
        feed = {}
        for name, value in inputs.items():
            array = np.asarray(value)
            if array.dtype == np.float64:
                array = array.astype(np.float32)
            shape = self.input_shapes[name]
            if array.ndim != len(shape) or any(isinstance(want, int) and want > 0 and got != want
                                               for got, want in zip(array.shape, shape, strict=False)):
                raise DataError(f"input '{name}' has shape {list(array.shape)}, the model expects {shape}")
            feed[name] = array
        names = list(output_names) if output_names is not None else self.output_names
        results = self.session.run(names, feed)
        return dict(zip(names, results, strict=True))
