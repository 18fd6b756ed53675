"""The QAT record of a saved model's metadata (no TensorFlow: tlt-export reads it before building anything).

``metadata["qat"] = {"ranges": {Keras layer name: amax}, "momentum", "activations", "weights",
"float_layers"}``: the activation ranges learned during training, keyed by the layer whose output feeds
a quantized layer, and how the training quantized (see :mod:`libtlt.qat`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libtlt.errors import ModelFileError

METADATA_KEY = "qat"


def stored_ranges(metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """The ranges a saved model's metadata records (``None`` when it was not trained with QAT)."""
    record = metadata.get(METADATA_KEY)
    if record is None:
        return None
    ranges = record.get("ranges") if isinstance(record, Mapping) else None
    if not isinstance(ranges, Mapping):
        raise ModelFileError("the model metadata's qat record has no mapping 'ranges' of layer name to amax")
    try:
        return {str(name): float(value) for name, value in ranges.items()}
    except (TypeError, ValueError):
        raise ModelFileError("the model metadata's qat ranges hold a value that is not a number") from None
