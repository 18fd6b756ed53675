"""tlt-prune benchmarks (issue 7; not part of ``make test``; run with ``pytest -s bench/test_prune_bench.py``).

A resnet18 DetectNet_v2 at 960×544, built by the architecture's ``build`` from the default spec, is given the
weights an L1-regularized training leaves behind in a cheap, deterministic way: in every convolution except the
two output heads, the same fixed fraction (``ZEROED``) of filters (the same indices for every layer of a given
width, so residual-tied layers agree) gets an all-zero kernel and bias. Then:

* ``test_prune_resnet18_960x544``: the time ``prune_model`` takes (analysis, rebuild, weight slicing and the
  built-in check run on a test batch);
* ``test_pruned_inference_speedup``: CPU inference images/s of the unpruned and the pruned model in the same run,
  and the FLOP reduction computed from the convolution layer shapes. The goal "speed-up ≥ FLOP reduction × 0.7"
  is printed and recorded in ``extra_info``, not asserted (CPU timings on a shared machine are noisy).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

WIDTH, HEIGHT = 960, 544
ZEROED = 0.7
THRESHOLD = 0.1
BATCH, RUNS = 2, 3


def _spec(tmp: Path) -> Any:
    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture
    from libtlt.spec import load_spec
    from libtlt.spec.protos import detectnet_v2_pb2 as pb

    text = DetectNetV2Architecture().default_spec()
    for old, new in {"output_image_width: 480": f"output_image_width: {WIDTH}",
                     "output_image_height: 272": f"output_image_height: {HEIGHT}"}.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / "spec.txt"
    path.write_text(text, encoding="utf-8")
    return load_spec(path, pb.Experiment)


def sparsify(model: Any, fraction: float, seed: int = 0) -> int:
    """Zero ``fraction`` of the filters of every Conv2D but the outputs; returns the number of layers touched."""
    import keras

    permutations: dict[int, np.ndarray] = {}
    touched = 0
    for layer in model.layers:
        if type(layer) is not keras.layers.Conv2D or layer.name.startswith("output_"):
            continue
        weights = layer.get_weights()
        filters = weights[0].shape[-1]
        if filters not in permutations:
            permutations[filters] = np.random.default_rng(seed + filters).permutation(filters)
        zero = permutations[filters][: round(fraction * filters)]
        weights[0][..., zero] = 0.0
        if len(weights) > 1:
            weights[1][zero] = 0.0
        layer.set_weights(weights)
        touched += 1
    return touched


def conv_flops(model: Any) -> int:
    """Multiply-adds × 2 of every convolution and Dense layer, from the layer shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):  # DepthwiseConv2D / SeparableConv2D are not in DetectNet_v2
            kernel = layer.kernel.shape  # (kh, kw, cin / groups, cout)
            out = layer.output.shape
            spatial = out[2] * out[3] if layer.data_format == "channels_first" else out[1] * out[2]
            total += 2 * int(spatial) * int(np.prod(kernel))
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total


@pytest.fixture(scope="module")
def sparse_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import keras

    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture

    keras.utils.set_random_seed(0)
    spec = _spec(tmp_path_factory.mktemp("prune_bench"))
    model = DetectNetV2Architecture().build(spec)
    assert sparsify(model, ZEROED) > 10
    return model


def test_prune_resnet18_960x544(benchmark: Any, sparse_model: Any) -> None:
    from tlt_prune.prune import prune_model

    result = benchmark.pedantic(prune_model, args=(sparse_model,), kwargs={"pruning_threshold": THRESHOLD},
                                rounds=2, iterations=1)
    benchmark.extra_info.update(params_before=result.params_before, params_after=result.params_after,
                                pruning_ratio=round(result.pruning_ratio, 4))
    print(f"\nprune resnet18 DetectNet_v2 {WIDTH}x{HEIGHT} ({ZEROED:.0%} of the filters zeroed, -pth {THRESHOLD}): "
          f"parameters {result.params_before:,} -> {result.params_after:,} (ratio {result.pruning_ratio:.4f})")
    assert result.params_after < result.params_before


def _images_per_second(model: Any) -> float:
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False))
    images = tf.constant(np.random.default_rng(0).uniform(0, 1, (BATCH, 3, HEIGHT, WIDTH)).astype(np.float32))
    call(images)  # trace + warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        outputs = call(images)
        _ = [np.asarray(o) for o in (outputs.values() if isinstance(outputs, dict) else outputs)]
        times.append(time.perf_counter() - start)
    return BATCH / float(np.median(times))


def test_pruned_inference_speedup(benchmark: Any, sparse_model: Any) -> None:
    from tlt_prune.prune import prune_model

    pruned = prune_model(sparse_model, pruning_threshold=THRESHOLD).model
    flops_before, flops_after = conv_flops(sparse_model), conv_flops(pruned)
    flop_reduction = flops_before / flops_after
    unpruned_rate = _images_per_second(sparse_model)
    pruned_rate = benchmark.pedantic(_images_per_second, args=(pruned,), rounds=1, iterations=1)
    speedup = pruned_rate / unpruned_rate
    goal = flop_reduction * 0.7
    benchmark.extra_info.update(unpruned_images_per_s=round(unpruned_rate, 3), pruned_images_per_s=round(pruned_rate, 3),
                                gflops_before=round(flops_before / 1e9, 2), gflops_after=round(flops_after / 1e9, 2),
                                flop_reduction=round(flop_reduction, 2), speedup=round(speedup, 2),
                                goal_met=speedup >= goal)
    print(f"\nCPU inference {WIDTH}x{HEIGHT}, batch {BATCH}: unpruned {unpruned_rate:.2f} images/s, pruned "
          f"{pruned_rate:.2f} images/s, speed-up {speedup:.2f}x; FLOPs {flops_before / 1e9:.1f} -> "
          f"{flops_after / 1e9:.1f} G (reduction {flop_reduction:.2f}x); goal speed-up >= 0.7 x reduction = "
          f"{goal:.2f}x: {'met' if speedup >= goal else 'NOT met'}")
    assert flops_after < flops_before
