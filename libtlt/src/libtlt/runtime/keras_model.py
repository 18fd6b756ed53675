"""Save and load Keras models as encrypted ``.tlt`` files (``libtlt.io.modelfile`` containers).

The payload is the Keras 3 ``.keras`` archive (``model.keras``), serialized and deserialized in
memory — the plaintext never touches the disk — plus ``metadata.json``. The metadata records what
``tlt-evaluate``/``tlt-infer``/``tlt-export`` need to check a file against the command: the
architecture, class names in output order, the input shape and layout, preprocessing, output names,
the spec text and tool versions (see docs/formats.md).

Custom layers register themselves with ``keras.saving.register_keras_serializable(package="tlt")``
in their architecture's package; loading first loads the file's architecture from the registry (any
installed package's, by its entry point) so they are known, then deserializes in Keras' safe mode.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from libtlt import __version__
from libtlt.errors import ModelFileError
from libtlt.io.modelfile import DEFAULT_KDF_ITERATIONS, load_model_file, save_model_file

MODEL_MEMBER = "model.keras"


def model_to_bytes(model: Any) -> bytes:
    """The Keras 3 ``.keras`` archive of ``model``, built in memory."""
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.getvalue()


def model_from_bytes(data: bytes, *, compile: bool = False) -> Any:
    """Deserialize a ``.keras`` archive held in memory (safe mode: no arbitrary code)."""
    from keras.src.saving import saving_lib

    return saving_lib.load_model(io.BytesIO(data), compile=compile, safe_mode=True)


def save_tlt_model(path: str | Path, model: Any, key: str, metadata: Mapping[str, Any], *,
                   kdf_iterations: int = DEFAULT_KDF_ITERATIONS) -> None:
    """Write ``model`` with ``metadata`` to ``path`` as an encrypted ``.tlt`` (atomically)."""
    import keras

    meta = dict(metadata)
    meta.setdefault("framework", f"keras-{keras.__version__}")
    meta.setdefault("libtlt_version", __version__)
    meta.setdefault("input_names", [_layer_name(t) for t in _as_list(model.inputs)])
    meta.setdefault("output_names", [_layer_name(t) for t in _as_list(model.outputs)])
    save_model_file(path, key, {MODEL_MEMBER: model_to_bytes(model)}, meta, kdf_iterations=kdf_iterations)


def load_tlt_model(path: str | Path, key: str, *, architecture: str | None = None,
                   compile: bool = False) -> tuple[Any, dict[str, Any]]:
    """Decrypt and load a ``.tlt``: returns ``(keras_model, metadata)``.

    ``architecture`` (when given) must match the file's, so ``tlt-evaluate detectnet_v2`` on a
    classification model fails with a clear message instead of a shape error later.
    """
    return keras_model_from(load_model_file(path, key), path, architecture=architecture, compile=compile)


def keras_model_from(model_file: Any, path: str | Path, *, architecture: str | None = None,
                     compile: bool = False) -> tuple[Any, dict[str, Any]]:
    """Rebuild the Keras model of an already decrypted model file (``libtlt.io.modelfile``), checked as
    :func:`load_tlt_model` checks it; ``path`` names the file in errors. A tool that also reads the file's other
    members decrypts it once this way."""
    meta = model_file.metadata
    found = meta.get("architecture")
    if architecture is not None and found is not None and found != architecture:
        raise ModelFileError(f"this is a {found} model, not {architecture}", location=path)
    if MODEL_MEMBER not in model_file.files:
        members = ", ".join(sorted(model_file.files)) or "none"
        raise ModelFileError(f"not a .tlt Keras model (holds {members}; an .etlt is loaded with onnxruntime)",
                             location=path)
    if found:
        _import_architecture(str(found))
    try:
        model = model_from_bytes(model_file.files[MODEL_MEMBER], compile=compile)
    except Exception as err:  # Keras raises many types for a model it cannot rebuild
        raise ModelFileError(f"cannot rebuild the Keras model: {err}", location=path) from err
    return model, dict(meta)


def _import_architecture(name: str) -> None:
    """Load the registered architecture ``name``: importing its package registers its custom Keras layers. A
    model of an architecture that is not installed may still rebuild from standard layers, so that is no error."""
    from libtlt.registry import RegistryError, get_architecture

    with contextlib.suppress(RegistryError, ImportError):
        get_architecture(name)


def _layer_name(tensor: Any) -> str:
    """The name of the layer that produced ``tensor`` (Keras 3 tensors are named keras_tensor_N)."""
    history = getattr(tensor, "_keras_history", None)
    return str(history.operation.name) if history is not None else str(tensor.name)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
