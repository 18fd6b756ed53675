"""The TensorRT layer on a machine that has TensorRT and a GPU; skipped, with the reason, elsewhere.

Where TensorRT cannot be installed, test_tensorrt_api_surface.py checks the names this layer uses
against the bindings of TensorRT 10.13 and 11.4 instead.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from libtlt.errors import ModelFileError
from libtlt.runtime.calibration import calibrate_to_cache
from libtlt.runtime.engine import build_engine, open_engine, sidecar_path
from libtlt.runtime.onnxruntime_backend import OrtModel
from libtlt.runtime.sample_models import detectnet_like_model, image_batches

try:
    import tensorrt

    from libtlt.runtime.tensorrt_backend import gpu_description

    GPU = gpu_description()
    REASON = ""
except Exception as err:  # ImportError without TensorRT; CUDA errors without a GPU
    tensorrt = None
    GPU = {}
    REASON = f"TensorRT with a CUDA GPU is not available here ({type(err).__name__}: {err})"

pytestmark = pytest.mark.skipif(tensorrt is None, reason=REASON or "TensorRT is not installed")

SHAPE = (3, 32, 48)
OUTPUTS = ["output_cov/Sigmoid", "output_bbox/BiasAdd"]


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-3), ("fp16", 1e-2), ("int8", 0.05)])
def test_tensorrt_engine_matches_onnxruntime(tmp_path, precision, tolerance) -> None:
    model = detectnet_like_model(*SHAPE[1:])
    cal = tmp_path / "cal.bin"
    calibrate_to_cache(model, image_batches(4, 8, SHAPE, seed=1), cal)
    path = tmp_path / f"{precision}.engine"
    sidecar = build_engine(model, path, backend="tensorrt", precision=precision, cal_cache=cal, input_dims=SHAPE,
                           output_names=OUTPUTS, max_batch_size=4)
    assert sidecar["tensorrt_version"] == tensorrt.__version__ and sidecar["gpu"] == GPU["gpu"]
    images = next(image_batches(1, 4, SHAPE, seed=2))
    got = open_engine(path).run({"input_1": images})
    want = OrtModel(model.SerializeToString()).run(images)
    for name in OUTPUTS:
        assert np.abs(got[name] - want[name]).max() <= tolerance * max(1.0, float(np.abs(want[name]).max()))


def test_engine_from_another_tensorrt_is_refused(tmp_path) -> None:
    path = tmp_path / "e.engine"
    build_engine(detectnet_like_model(*SHAPE[1:]), path, backend="tensorrt", input_dims=SHAPE, output_names=OUTPUTS)
    sidecar = json.loads(sidecar_path(path).read_text())
    sidecar["tensorrt_version"] = "9.0.0"
    sidecar_path(path).write_text(json.dumps(sidecar))
    with pytest.raises(ModelFileError, match="rebuild it with tlt-converter"):
        open_engine(path)
