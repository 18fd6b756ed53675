"""Forward speed of every backbone at 224x224 (channels_last, batch 8, inference mode).

Compare images/s across backbones: ``extra_info["images_per_round"]`` / the mean round time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from libtlt.backbones import BACKBONE_NAMES, build_backbone  # noqa: E402

BATCH = 8
SIZE = 224


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_forward_224(benchmark: Any, name: str) -> None:
    inputs = keras.Input((SIZE, SIZE, 3))
    features = build_backbone(name, inputs)
    model = keras.Model(inputs, features[max(features, key=lambda key: int(key[1:]))])
    batch = np.random.default_rng(0).normal(size=(BATCH, SIZE, SIZE, 3)).astype("float32")
    model.predict_on_batch(batch)  # trace once
    benchmark.pedantic(model.predict_on_batch, args=(batch,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["images_per_round"] = BATCH
    benchmark.extra_info["params"] = model.count_params()
