"""make_optimizer: spec parameter names of both manual generations, the scheduler's learning rate."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from libtlt.errors import SpecError
from tlt_train.optimizers import make_optimizer
from tlt_train.schedules import step


def test_sgd_momentum_and_nesterov():
    opt = make_optimizer("sgd", 0.01, momentum=0.9, nesterov=True)
    assert isinstance(opt, keras.optimizers.SGD)
    assert opt.momentum == pytest.approx(0.9)
    assert opt.nesterov is True
    assert float(opt.learning_rate) == pytest.approx(0.01)


def test_sgd_global_clipnorm_clips_the_update_and_zero_means_none():
    import numpy as np

    assert make_optimizer("sgd", 0.1, global_clipnorm=0.0).global_clipnorm is None
    opt = make_optimizer("sgd", 1.0, global_clipnorm=1.0)
    assert opt.global_clipnorm == pytest.approx(1.0)
    v = keras.Variable(np.zeros(2, np.float32))
    opt.apply([keras.ops.convert_to_tensor(np.array([30.0, 40.0], np.float32))], [v])
    np.testing.assert_allclose(np.asarray(v), [-0.6, -0.8], rtol=1e-6)  # the gradient scaled to norm 1


def test_adam_accepts_common_proto_and_keras_names():
    a = make_optimizer("adam", 1e-3, epsilon=1e-8, beta1=0.8, beta2=0.99)
    b = make_optimizer("Adam", 1e-3, epsilon=1e-8, beta_1=0.8, beta_2=0.99)
    for opt in (a, b):
        assert isinstance(opt, keras.optimizers.Adam)
        assert (opt.beta_1, opt.beta_2, opt.epsilon) == pytest.approx((0.8, 0.99, 1e-8))


def test_rmsprop_parameters():
    opt = make_optimizer("rmsprop", 1e-3, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True)
    assert isinstance(opt, keras.optimizers.RMSprop)
    assert (opt.rho, opt.momentum, opt.epsilon, opt.centered) == (pytest.approx(0.8), pytest.approx(0.5),
                                                                 pytest.approx(1e-6), True)


def test_spec_lr_and_decay_are_overridden_by_the_scheduler():
    # 003: "This parameter is overridden by the learning rate scheduler and hence not useful."
    opt = make_optimizer("sgd", 0.05, lr=0.01, decay=0.1, momentum=None)
    assert float(opt.learning_rate) == pytest.approx(0.05)


def test_schedule_drives_the_learning_rate():
    schedule = step(0.1, 50, 0.1)
    opt = make_optimizer("adam", schedule.keras_schedule(steps_per_epoch=2, total_steps=10))
    opt.build([keras.Variable(np.zeros(2, "float32"))])
    assert float(opt.learning_rate) == pytest.approx(0.1)
    opt.iterations.assign(5)
    assert float(opt.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_each_optimizer_trains_a_step(name):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="ones")])
    model.compile(make_optimizer(name, 0.1), "mse")
    before = model.get_weights()[0].copy()
    model.train_on_batch(np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"))
    assert int(model.optimizer.iterations.numpy()) == 1
    assert not np.allclose(model.get_weights()[0], before)


def test_unknown_optimizer_and_parameter_are_spec_errors():
    with pytest.raises(SpecError, match="unknown optimizer 'adagrad'"):
        make_optimizer("adagrad", 0.1)
    with pytest.raises(SpecError) as err:
        make_optimizer("sgd", 0.1, beta1=0.9)
    assert err.value.field == "beta1"
    assert "momentum" in str(err.value)


@pytest.mark.parametrize(("name", "params", "field"), [
    ("sgd", {"momentum": 1.5}, "momentum"),
    ("adam", {"epsilon": 0.0}, "epsilon"),
    ("adam", {"beta_2": -0.1}, "beta_2"),
    ("sgd", {"nesterov": "yes"}, "nesterov"),
])
def test_bad_values_name_the_field(name, params, field):
    with pytest.raises(SpecError) as err:
        make_optimizer(name, 0.1, **params)
    assert err.value.field == field
