"""Learning-rate schedules: hand-computed values at the phase boundaries, Keras wrapper, serialization."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libtlt.errors import SpecError
from tlt_train import schedules
from tlt_train.schedules import TltLearningRateSchedule, cosine, make_schedule, soft_anneal, soft_start_annealing, step


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=0.0)


def test_soft_start_annealing_matches_the_manual_sample():
    # 000 §7.2.5: soft_start 0.3, annealing 0.7, min 5e-6, max 5e-4.
    sched = soft_start_annealing(5e-6, 5e-4, 0.3, 0.7)
    assert sched.lr_at(0.0) == approx(5e-6)
    assert sched.lr_at(0.15) == approx(5e-5)  # exponential ramp: geometric mean half way
    assert sched.lr_at(0.3) == approx(5e-4)
    assert sched.lr_at(0.5) == approx(5e-4)
    assert sched.lr_at(0.7) == approx(5e-4)
    assert sched.lr_at(0.85) == approx(5e-5)  # exponential decay: geometric mean half way
    assert sched.lr_at(1.0) == approx(5e-6)
    assert sched.lr_at(1.5) == approx(5e-6)  # clipped past the end


def test_soft_start_annealing_by_step():
    sched = soft_start_annealing(1e-4, 1e-2, 0.2, 0.6)
    # 10 steps per epoch, 10 epochs: step 10 is progress 0.1, half of the soft start.
    assert sched.lr(0, 10, 100) == approx(1e-4)
    assert sched.lr(10, 10, 100) == approx(1e-3)
    assert sched.lr(20, 10, 100) == approx(1e-2)
    assert sched.lr(80, 10, 100) == approx(1e-3)
    assert sched.lr(100, 10, 100) == approx(1e-4)


def test_soft_anneal_matches_the_classification_sample():
    # 000 §7.1: learning_rate 0.005, soft_start 0.056, annealing_points "0.3, 0.6, 0.8", divider 10.
    sched = soft_anneal(0.005, 0.056, [0.3, 0.6, 0.8], 10)
    assert sched.lr_at(0.0) == approx(0.005 * 0.01)
    assert sched.lr_at(0.028) == approx(0.005 * 0.1)
    assert sched.lr_at(0.056) == approx(0.005)
    assert sched.lr_at(0.2999) == approx(0.005)
    assert sched.lr_at(0.3) == approx(0.0005)
    assert sched.lr_at(0.6) == approx(0.00005)
    assert sched.lr_at(0.8) == approx(0.000005)
    assert sched.lr_at(1.0) == approx(0.000005)
    # Step 30 of 100 is exactly the first annealing point.
    assert sched.lr(29, 10, 100) == approx(0.005)
    assert sched.lr(30, 10, 100) == approx(0.0005)


def test_soft_anneal_without_soft_start_or_points_is_constant():
    sched = soft_anneal(0.1, 0.0, [], 10)
    assert [sched.lr_at(p) for p in (0.0, 0.5, 1.0)] == [approx(0.1)] * 3


def test_step_uses_percent_of_training():
    # 003: step_size is "the progress (percentage of the entire training duration)".
    sched = step(0.006, 10, 0.1)
    assert sched.lr(0, 10, 100) == approx(0.006)
    assert sched.lr(9, 10, 100) == approx(0.006)
    assert sched.lr(10, 10, 100) == approx(0.0006)
    assert sched.lr(29, 10, 100) == approx(0.00006)
    assert sched.lr(30, 10, 100) == approx(0.000006)
    assert sched.lr_at(0.57) == approx(0.006 * 0.1**5)
    assert step(0.00016, 30, 1.0).lr_at(0.9) == approx(0.00016)  # FasterRCNN sample: gamma 1.0 is constant


def test_step_boundary_is_exact_despite_rounding():
    # 0.57 * 100 = 56.99999999999999 in binary floating point; the step still happens at 57 %.
    sched = step(1.0, 57, 0.5)
    assert sched.lr(57, 1, 100) == approx(0.5)
    assert sched.lr(56, 1, 100) == approx(1.0)


def test_cosine_with_soft_start():
    sched = cosine(0.05, 0.01, 0.1)
    assert sched.lr_at(0.0) == approx(0.0005)
    assert sched.lr_at(0.01) == approx(0.05)
    assert sched.lr_at(0.505) == approx(0.005 + 0.045 * 0.5)
    assert sched.lr_at(1.0) == approx(0.005)
    assert cosine(0.05, 0.0).lr_at(1.0) == pytest.approx(0.0, abs=1e-18)


ALL = [
    soft_start_annealing(5e-6, 5e-4, 0.3, 0.7),
    soft_start_annealing(1e-3, 1e-3, 0.0, 1.0),
    soft_anneal(0.005, 0.056, [0.3, 0.6, 0.8], 10),
    soft_anneal(0.1, 0.0, [], 10),
    step(0.006, 10, 0.1),
    cosine(0.05, 0.01, 0.1),
    cosine(0.05, 0.0, 0.0),
    make_schedule("warmup_step", base_lr=0.02, warmup=0.1, start_ratio=0.1, boundaries=[0.5, 0.8],
                  levels=[0.1, 0.01]),
    make_schedule("warmup_step", base_lr=0.01),
]


def test_warmup_step_is_maskrcnns_linear_warmup_then_levels():
    # 004: warmup_steps 1000 from warmup_learning_rate 0.0067 to init 0.02, x0.1 at step 5000, x0.01 at 8000 (of 10000)
    sched = make_schedule("warmup_step", base_lr=0.02, warmup=0.1, start_ratio=0.0067 / 0.02, boundaries=[0.5, 0.8],
                          levels=[0.1, 0.01])
    assert sched.lr(0, 100, 10000) == pytest.approx(0.0067)
    assert sched.lr(500, 100, 10000) == pytest.approx(0.0067 + 0.5 * (0.02 - 0.0067))
    assert sched.lr(1000, 100, 10000) == pytest.approx(0.02)
    assert sched.lr(4999, 100, 10000) == pytest.approx(0.02)
    assert sched.lr(5000, 100, 10000) == pytest.approx(0.002)
    assert sched.lr(8000, 100, 10000) == pytest.approx(0.0002)
    assert sched.scaled(2).lr(9000, 100, 10000) == pytest.approx(0.0004)


def test_warmup_step_needs_one_level_per_boundary():
    with pytest.raises(SpecError, match="one level per boundary"):
        make_schedule("warmup_step", base_lr=0.02, boundaries=[0.5], levels=[])


@pytest.mark.parametrize("sched", ALL, ids=repr)
def test_keras_schedule_follows_the_python_curve(sched):
    keras_schedule = sched.keras_schedule(steps_per_epoch=7, total_steps=70)
    steps = np.arange(0, 75)
    expected = np.array([sched.lr(int(s), 7, 70) for s in steps])
    got = np.array([float(keras_schedule(int(s))) for s in steps])
    np.testing.assert_allclose(got, expected, rtol=2e-6)
    assert keras_schedule(np.int64(35)).dtype == "float32"


@pytest.mark.parametrize("sched", ALL, ids=repr)
def test_keras_schedule_serializes(sched):
    keras_schedule = sched.keras_schedule(steps_per_epoch=5, total_steps=50)
    config = keras.optimizers.schedules.serialize(keras_schedule)
    assert config["registered_name"] == "tlt>TltLearningRateSchedule"
    restored = keras.optimizers.schedules.deserialize(config)
    assert isinstance(restored, TltLearningRateSchedule)
    assert restored.schedule == sched
    assert (restored.steps_per_epoch, restored.total_steps) == (5, 50)
    for s in (0, 13, 27, 49):
        assert float(restored(s)) == float(keras_schedule(s))


def test_optimizer_with_schedule_round_trips_through_its_config():
    sched = soft_anneal(0.01, 0.1, [0.5], 10).keras_schedule(10, 100)
    optimizer = keras.optimizers.SGD(learning_rate=sched, momentum=0.9)
    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    rebuilt.build([keras.Variable(np.zeros(3, "float32"))])
    rebuilt.iterations.assign(60)
    assert float(rebuilt.learning_rate) == pytest.approx(0.001, rel=1e-6)


def test_make_schedule_by_spec_name_and_config_round_trip():
    sched = make_schedule("Soft_Anneal", base_lr=0.1, soft_start=0.1, annealing_points=[0.5], annealing_divider=10)
    assert isinstance(sched, schedules.SoftAnneal)
    assert schedules.schedule_from_config(sched.get_config()) == sched
    with pytest.raises(SpecError, match="unknown learning rate scheduler 'linear'"):
        make_schedule("linear", base_lr=0.1)
    with pytest.raises(SpecError, match="bad parameters"):
        make_schedule("step", base_lr=0.1)


def test_scaled_multiplies_absolute_rates():
    assert soft_start_annealing(1e-5, 1e-3, 0.1, 0.7).scaled(4).lr_at(0.5) == approx(4e-3)
    assert soft_start_annealing(1e-5, 1e-3, 0.1, 0.7).scaled(4).lr_at(0.0) == approx(4e-5)
    assert step(0.1, 10, 0.5).scaled(2).lr_at(0.15) == approx(0.1)
    assert cosine(0.1, 0.1, 0.5).scaled(2).lr_at(1.0) == approx(0.1)
    assert soft_anneal(0.1, 0.1, [0.5], 10).scaled(2).lr_at(0.6) == approx(0.02)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: soft_start_annealing(5e-6, 5e-4, 0.7, 0.3), "annealing"),
        (lambda: soft_start_annealing(5e-4, 5e-6, 0.1, 0.7), "max_learning_rate"),
        (lambda: soft_start_annealing(0.0, 5e-4, 0.1, 0.7), "min_learning_rate"),
        (lambda: soft_start_annealing(5e-6, 5e-4, 1.5, 1.7), "soft_start"),
        (lambda: soft_anneal(0.1, 0.1, [0.6, 0.3], 10), "annealing_points"),
        (lambda: soft_anneal(0.1, 0.1, [1.0], 10), "annealing_points"),
        (lambda: soft_anneal(0.1, 0.1, [0.5], 0), "annealing_divider"),
        (lambda: step(0.1, 0, 0.1), "step_size"),
        (lambda: step(0.1, 150, 0.1), "step_size"),
        (lambda: cosine(-0.1, 0.1), "learning_rate"),
        (lambda: cosine(0.1, 0.1, 1.0), "min_lr_ratio"),
    ],
)
def test_invalid_parameters_name_the_spec_field(factory, field):
    with pytest.raises(SpecError) as err:
        factory()
    assert err.value.field == field


def test_lr_rejects_empty_runs():
    with pytest.raises(ValueError):
        step(0.1, 10, 0.1).lr(0, 0, 0)


@settings(max_examples=60, deadline=None)
@given(
    min_lr=st.floats(1e-7, 1e-2),
    ratio=st.floats(1.0, 1e3),
    soft_start=st.floats(0.0, 1.0),
    gap=st.floats(0.0, 1.0),
    progress=st.floats(0.0, 1.0),
)
def test_soft_start_annealing_stays_between_min_and_max(min_lr, ratio, soft_start, gap, progress):
    max_lr = min_lr * ratio
    annealing = soft_start + (1.0 - soft_start) * gap
    lr = soft_start_annealing(min_lr, max_lr, soft_start, annealing).lr_at(progress)
    assert min_lr * (1 - 1e-9) <= lr <= max_lr * (1 + 1e-9)
    assert math.isfinite(lr)
