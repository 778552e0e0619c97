"""The model: the search space Tune explores, hyperparameter precedence, shapes, and that it learns."""

from types import SimpleNamespace

import model
import numpy as np
import tensorflow as tf

SIZES = {"a_xf": None, "b_xf": None, "c_xf": 3}


def test_search_space():
    hp = model.search_space()
    assert {p.name for p in hp.space} == {"hidden_units", "num_layers", "learning_rate"}
    assert set(hp.values) <= set(model.DEFAULTS)


def test_config_then_tuned_values_override_the_defaults():
    fn_args = SimpleNamespace(custom_config={"hidden_units": 8, "batch_size": 16, "max_trials": 3},
                              hyperparameters={"values": {"hidden_units": 64, "num_layers": 1}})
    values = model.hyperparameters(fn_args)
    assert values == {**model.DEFAULTS, "hidden_units": 64, "num_layers": 1, "batch_size": 16}


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = {"a_xf": rng.normal(size=(n, 1)).astype("float32"), "b_xf": rng.normal(size=(n, 1)).astype("float32"),
         "c_xf": rng.integers(0, 3, size=(n, 1))}
    y = 7.0 + 1.5 * x["a_xf"][:, 0] - 0.5 * x["b_xf"][:, 0] - 0.8 * (x["c_xf"][:, 0] == 2)
    return x, y.astype("float32")


def test_predicts_one_number_per_example():
    net = model.build_model(SIZES, hidden_units=8, num_layers=1)
    x, _ = _data(4)
    assert net(x, training=False).shape == (4, 1)


def test_learns_a_simple_regression():
    tf.keras.utils.set_random_seed(0)
    x, y = _data(512)
    net = model.build_model(SIZES, hidden_units=16, num_layers=1, learning_rate=0.03)
    net.run_eagerly = True  # no graph tracing: faster for a toy problem this small
    net.fit(x, y, epochs=20, batch_size=64, verbose=0)
    rmse = net.evaluate(x, y, verbose=0, return_dict=True)["rmse"]
    assert rmse < 0.3, rmse  # predicting the mean would score about 1.6
