"""A module file for Tune's tests: a linear-ish regression on raw features ``x1``, ``x2`` → ``y``.

``tuner_fn`` searches the learning rate and width of the same tf.keras model ``run_fn`` trains, with
:func:`headwater.components.tune.trial_tuner`; ``tuner_fn_keras3`` is a TFX-style tuner_fn whose
KerasTuner ``RandomSearch`` builds Keras 3 models itself. The ``broken_*`` functions misbehave on purpose.
"""

import json

import keras_tuner
import tensorflow as tf
from headwater.components.tune import TunerFnResult, trial_tuner
from tfx_bsl.public import tfxio

FEATURES = ["x1", "x2"]
LABEL = "y"


def _dataset(fn_args, files, batch_size=32):
    return fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL, shuffle_seed=fn_args.seed),
        fn_args.schema(),
    )


def _as_matrix(features, label):
    return tf.concat([tf.cast(features[k], tf.float32) for k in FEATURES], axis=1), label


def _model(keras, hidden_units, learning_rate):
    model = keras.Sequential([keras.layers.Input((len(FEATURES),)),
                              keras.layers.Dense(hidden_units, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def search_space():
    hp = keras_tuner.HyperParameters()
    hp.Choice("hidden_units", [4, 16])
    hp.Choice("learning_rate", [1e-3, 3e-2])
    return hp


def _fit(fn_args, values, steps):
    model = _model(tf.keras, values["hidden_units"], values["learning_rate"])
    history = model.fit(
        _dataset(fn_args, fn_args.train_files).map(_as_matrix).repeat(), steps_per_epoch=steps,
        validation_data=_dataset(fn_args, fn_args.eval_files).map(_as_matrix), validation_steps=fn_args.eval_steps,
        verbose=0,
    )
    return model, history


def tuner_fn(fn_args):
    config = fn_args.custom_config or {}

    def trial(hp):
        _, history = _fit(fn_args, hp.values, fn_args.train_steps)
        return {"val_loss": history.history["val_loss"][-1]}

    tuner = trial_tuner(trial, hyperparameters=search_space(), objective=("val_loss", "min"),
                        max_trials=config.get("max_trials", 4), algorithm=config.get("algorithm", "grid"),
                        directory=fn_args.working_dir, seed=fn_args.seed)
    return TunerFnResult(tuner=tuner, fit_kwargs={})


def tuner_fn_keras3(fn_args):
    import keras  # Keras 3: what KerasTuner's model-building tuners train

    def build(hp):
        return _model(keras, hp.Choice("hidden_units", [4, 16]), hp.Choice("learning_rate", [1e-3, 3e-2]))

    tuner = keras_tuner.RandomSearch(build, objective="val_loss", max_trials=2, seed=fn_args.seed,
                                     directory=fn_args.working_dir, project_name="keras3")
    train = _dataset(fn_args, fn_args.train_files).map(_as_matrix).repeat()
    evaluation = _dataset(fn_args, fn_args.eval_files).map(_as_matrix)
    return TunerFnResult(tuner, {"x": train, "steps_per_epoch": fn_args.train_steps, "validation_data": evaluation,
                                 "validation_steps": fn_args.eval_steps, "epochs": 1, "verbose": 0})


def run_fn(fn_args):
    values = dict(fn_args.hyperparameters["values"]) if fn_args.hyperparameters else {}
    model, _ = _fit(fn_args, {"hidden_units": 4, "learning_rate": 1e-3, **values}, fn_args.train_steps)
    with open(f"{fn_args.model_run_dir}/hyperparameters_seen.json", "w") as f:
        json.dump(values, f)
    model.save(fn_args.serving_model_dir, save_format="tf")


def broken_returns_tuner(fn_args):
    return trial_tuner(lambda hp: 1.0, hyperparameters=search_space(), directory=fn_args.working_dir)


def broken_trial(fn_args):
    def trial(hp):
        raise ValueError(f"no good: {hp.values['hidden_units']}")

    return TunerFnResult(trial_tuner(trial, hyperparameters=search_space(), max_trials=2, algorithm="grid",
                                     directory=fn_args.working_dir), {})
