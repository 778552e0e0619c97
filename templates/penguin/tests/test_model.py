"""The Keras model: shapes, hyperparameter precedence, and that it can learn a separable toy problem."""

from types import SimpleNamespace

import features
import model
import numpy as np
import pytest
import tensorflow as tf

SIZES = {key: 4 for key in features.CATEGORICAL_FEATURES}


def _inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    x = {features.transformed_name(k): rng.normal(size=(n, 1)).astype("float32") for k in features.NUMERIC_FEATURES}
    x.update({features.transformed_name(k): rng.integers(0, 4, size=(n, 1)) for k in features.CATEGORICAL_FEATURES})
    return x


def test_outputs_are_probabilities_over_the_classes():
    net = model.build_model(SIZES, num_classes=3)
    probabilities = net(_inputs(5), training=False).numpy()
    assert probabilities.shape == (5, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_config_then_tuned_values_override_the_defaults():
    fn_args = SimpleNamespace(custom_config={"hidden_units": 8, "learning_rate": 0.1, "unrelated": 1},
                              hyperparameters={"values": {"learning_rate": 0.003}})
    hp = model.hyperparameters(fn_args)
    assert hp["hidden_units"] == 8 and hp["learning_rate"] == 0.003 and hp["num_layers"] == model.DEFAULTS["num_layers"]
    assert "unrelated" not in hp


def test_learns_a_separable_problem():
    tf.keras.utils.set_random_seed(0)
    x = _inputs(300)
    first = features.transformed_name(features.NUMERIC_FEATURES[0])
    y = (x[first][:, 0] > 0).astype("int64") + (x[first][:, 0] > 1).astype("int64")
    net = model.build_model(SIZES, num_classes=3, learning_rate=0.05)
    net.run_eagerly = True  # no graph tracing: faster for a toy problem this small
    net.fit(x, y, epochs=15, batch_size=32, verbose=0)
    accuracy = net.evaluate(x, y, verbose=0, return_dict=True)["sparse_categorical_accuracy"]
    assert accuracy == pytest.approx(1.0, abs=0.1)
