"""The optional ``export_graph(spec, keras_model)`` architecture hook: the architecture's own graph replaces the
tf2onnx conversion and ``export_tail``; calibration, FP16/INT8 engines, the engine check and the .etlt metadata all
follow the graph (its input name included), and the spec is required.

The architecture is the registered classifier wrapped with a hook whose graph has an input of its own name and an
output no Keras layer has, on an untrained tiny model (nothing here needs accuracy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import helper

from libtlt.io.calcache import read_calibration_cache
from libtlt.runtime.engine import open_engine, read_sidecar
from libtlt.runtime.onnx_precision import required_tensors
from libtlt.runtime.onnxruntime_backend import OrtModel, load_etlt
from libtlt.testing import one_error_line
from tlt_export.cli import main

KEY = "export-graph-key"
SIZE = 32
GRAPH_INPUT = "image_nchw"
GRAPH_OUTPUTS = ["probs", "probs_x2"]
SPEC = f"""model_config {{
  arch: "resnet"
  n_layers: 10
  use_batch_norm: True
  all_projections: True
  input_image_size: "3,{SIZE},{SIZE}"
}}
train_config {{
  train_dataset_path: "/no/data"
  batch_size_per_gpu: 4
  n_epochs: 1
  optimizer: "sgd"
  lr_config {{
    scheduler: "step"
    learning_rate: 0.01
    step_size: 10
    gamma: 0.1
  }}
}}
"""


class GraphArchitecture:
    """The classifier plus ``export_graph``: tf2onnx of the model, input renamed, and a doubled copy of the
    probabilities as a second output (so a Keras comparison would be meaningless)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def export_graph(self, spec: Any, keras_model: Any) -> onnx.ModelProto:
        from libtlt.runtime.tf2onnx_convert import convert_keras

        self.calls.append(spec)
        model = convert_keras(keras_model, GRAPH_INPUT, ["probs"], opset=17)
        graph = model.graph
        two = helper.make_tensor("two", onnx.TensorProto.FLOAT, [], [2.0])
        graph.initializer.append(two)
        graph.node.append(helper.make_node("Mul", ["probs", "two"], ["probs_x2"], name="double"))
        graph.output.append(helper.make_tensor_value_info("probs_x2", onnx.TensorProto.FLOAT, ["N", 2]))
        onnx.checker.check_model(model)
        return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Any]:
    """(model .tlt with the spec in its metadata, the same without, a calibration tensorfile, the Keras model)."""
    import keras

    from libtlt.io.tensorfile import write_tensorfile
    from libtlt.registry import get_architecture
    from libtlt.runtime.keras_model import save_tlt_model
    from libtlt.spec.loader import load_spec_text

    base = tmp_path_factory.mktemp("export_graph")
    arch = get_architecture("classification")
    spec = load_spec_text(SPEC, arch.spec_message(), name="<spec>")
    keras.utils.set_random_seed(0)
    model = arch.build(spec, ["a", "b"])
    metadata = arch.metadata(spec, ["a", "b"])
    assert metadata.get("spec")
    with_spec, without_spec = base / "with.tlt", base / "without.tlt"
    save_tlt_model(with_spec, model, KEY, metadata, kdf_iterations=1000)
    save_tlt_model(without_spec, model, KEY, {k: v for k, v in metadata.items() if k != "spec"}, kdf_iterations=1000)
    rng = np.random.default_rng(0)
    tensors = base / "cal.tensor"
    write_tensorfile(tensors, (rng.uniform(-1, 1, (4, 3, SIZE, SIZE)).astype(np.float32) for _ in range(2)))
    return with_spec, without_spec, tensors, model


@pytest.fixture()
def hooked(monkeypatch: pytest.MonkeyPatch) -> GraphArchitecture:
    import libtlt.registry as registry

    arch = GraphArchitecture(registry.get_architecture("classification"))
    monkeypatch.setattr(registry, "resolve", lambda tool, verb, name: arch)
    return arch


def export(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["classification", *[str(a) for a in args]], catch_exceptions=False)


def _batch() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (3, 3, SIZE, SIZE)).astype(np.float32)


def test_the_architecture_graph_is_exported_with_an_fp16_engine(setup: Any, hooked: GraphArchitecture,
                                                                tmp_path: Path) -> None:
    model_path, _, _, keras_model = setup
    engine = tmp_path / "fp16.engine"
    result = export("-m", model_path, "-k", KEY, "-o", tmp_path / "m.etlt", "--data_type", "fp16",
                    "--engine_file", engine, "--max_batch_size", "4")
    assert result.exit_code == 0, result.output
    assert len(hooked.calls) == 1 and hooked.calls[0] is not None
    onnx_bytes, meta = load_etlt(tmp_path / "m.etlt", KEY)
    graph = onnx.load_from_string(onnx_bytes).graph
    assert [i.name for i in graph.input] == [GRAPH_INPUT] and [o.name for o in graph.output] == GRAPH_OUTPUTS
    assert meta["input_names"] == [GRAPH_INPUT] and meta["output_names"] == GRAPH_OUTPUTS
    assert meta["keras_output_names"] == GRAPH_OUTPUTS and meta["export_check_max_abs_diff"] is None
    assert meta["onnx_opset"] == 17
    batch = _batch()
    float_out = OrtModel(onnx_bytes).run({GRAPH_INPUT: batch})
    np.testing.assert_allclose(float_out["probs"], np.asarray(keras_model(batch, training=False)), atol=1e-5)
    np.testing.assert_allclose(float_out["probs_x2"], 2 * float_out["probs"], rtol=1e-6)
    sidecar = read_sidecar(engine)
    assert sidecar["precision"] == "fp16" and sidecar["inputs"] == [GRAPH_INPUT]
    assert sidecar["profiles"][0]["name"] == GRAPH_INPUT and sidecar["outputs"] == GRAPH_OUTPUTS
    half = open_engine(engine).run({GRAPH_INPUT: batch})
    assert np.max(np.abs(half["probs_x2"] - float_out["probs_x2"])) <= 1e-2
    assert "max |engine - the float32 graph|" in result.stderr


def test_int8_is_calibrated_on_the_architecture_graph(setup: Any, hooked: GraphArchitecture, tmp_path: Path) -> None:
    model_path, _, tensors, _ = setup
    cal, engine = tmp_path / "cal.bin", tmp_path / "int8.engine"
    result = export("-m", model_path, "-k", KEY, "-o", tmp_path / "m.etlt", "--data_type", "int8",
                    "--cal_data_file", tensors, "--batches", "2", "--batch_size", "4", "--cal_cache_file", cal,
                    "--engine_file", engine)
    assert result.exit_code == 0, result.output
    onnx_model = onnx.load_from_string(load_etlt(tmp_path / "m.etlt", KEY)[0])
    scales = read_calibration_cache(cal).scales
    assert {GRAPH_INPUT, "probs_x2"} <= set(scales) and set(required_tensors(onnx_model)) <= set(scales)
    assert read_sidecar(engine)["precision"] == "int8"
    out = open_engine(engine).run({GRAPH_INPUT: _batch()})
    assert out["probs_x2"].shape == (3, 2) and np.isfinite(out["probs_x2"]).all()


def test_the_hook_needs_the_spec(setup: Any, hooked: GraphArchitecture, tmp_path: Path) -> None:
    _, without_spec, _, _ = setup
    result = CliRunner().invoke(main, ["classification", "-m", str(without_spec), "-k", KEY, "-o",
                                       str(tmp_path / "m.etlt")])
    assert result.exit_code == 2
    assert "needs its experiment spec (-e): the model records none" in one_error_line(result)
    assert hooked.calls == [] and not (tmp_path / "m.etlt").exists()
