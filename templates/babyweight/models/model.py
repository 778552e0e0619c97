"""The regression model: ``run_fn`` (Train) and ``tuner_fn`` (Tune), sharing one model definition.

Tune calls ``tuner_fn``: a small random search over :func:`search_space`, each trial training
:func:`build_model` for ``fn_args.train_steps`` (few) steps and scoring its RMSE on the eval split. Train
then calls ``run_fn`` with the winner in ``fn_args.hyperparameters`` and trains for longer.

The exported SavedModel's ``serving_default`` takes serialized raw ``tf.Example`` (``is_male``,
``mother_age``, ``plurality``, ``gestation_weeks``; a missing gestation may be left out) and returns the
predicted weight in pounds; the tf.Transform graph runs inside it.
"""

import features
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from headwater.components import TunerFnResult, trial_tuner
from tfx_bsl.public import tfxio

#: Defaults; configs/training.yaml (``model:``) overrides them, and tuned values override both.
DEFAULTS = {"hidden_units": 32, "num_layers": 2, "learning_rate": 0.01, "batch_size": 64}


def search_space() -> keras_tuner.HyperParameters:
    """What Tune searches: the network's width and depth and the learning rate."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("hidden_units", [16, 32, 64])
    hp.Int("num_layers", 1, 3)
    hp.Choice("learning_rate", [0.003, 0.01, 0.03])
    return hp


def hyperparameters(fn_args) -> dict:
    """DEFAULTS, updated by ``custom_config`` and then by tuned values (``fn_args.hyperparameters``)."""
    values = dict(DEFAULTS)
    values.update({k: v for k, v in (fn_args.custom_config or {}).items() if k in DEFAULTS})
    if fn_args.hyperparameters:
        values.update(fn_args.hyperparameters.get("values", {}))
    return values


def _input_names(tf_transform_output) -> list:
    schema = tf_transform_output.transformed_metadata.schema
    return sorted(f.name for f in schema.feature if f.name != features.LABEL_KEY)


def build_model(input_sizes: dict, hidden_units: int = 32, num_layers: int = 2, learning_rate: float = 0.01,
                **unused: object) -> tf.keras.Model:
    """A feed-forward network over the transformed features.

    ``input_sizes`` maps each transformed feature to its number of categories (one-hot encoded) or to
    ``None`` for a number.
    """
    inputs, encoded = [], []
    for name, size in sorted(input_sizes.items()):
        x = tf.keras.layers.Input(shape=(1,), name=name, dtype=tf.float32 if size is None else tf.int64)
        inputs.append(x)
        encoded.append(x if size is None else tf.keras.layers.CategoryEncoding(size, output_mode="one_hot")(x))
    d = tf.keras.layers.concatenate(encoded)
    for _ in range(num_layers):
        d = tf.keras.layers.Dense(hidden_units, activation="relu")(d)
    output = tf.keras.layers.Dense(1, name="weight_pounds")(d)
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="mse",
                  metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse")])
    return model


def input_sizes(tf_transform_output) -> dict:
    """Number of categories of every categorical transformed feature (``None`` for numbers)."""
    sizes: dict = {}
    for name in _input_names(tf_transform_output):
        sizes[name] = None
    for key in features.CATEGORICAL_FEATURES:
        sizes[features.transformed_name(key)] = tf_transform_output.vocabulary_size_by_name(key) + features.OOV_BUCKETS
    for key, buckets in features.BUCKETIZED_FEATURES.items():
        sizes[features.bucket_name(key)] = buckets
    return sizes


def _dataset(fn_args, files, tf_transform_output, batch_size, *, train):
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size, label_key=features.LABEL_KEY, shuffle=train, shuffle_seed=fn_args.seed,
        num_epochs=None if train else 1,
    )
    return fn_args.data_accessor.tf_dataset_factory(files, options, tf_transform_output.transformed_metadata.schema)


def fit(fn_args, values: dict, steps: int, tf_transform_output=None, callbacks=()):
    """Build the model with ``values`` and train it for ``steps`` steps; returns (model, keras History)."""
    tf_transform_output = tf_transform_output or tft.TFTransformOutput(fn_args.transform_output)
    model = build_model(input_sizes(tf_transform_output), **values)
    history = model.fit(
        _dataset(fn_args, fn_args.train_files, tf_transform_output, values["batch_size"], train=True),
        steps_per_epoch=steps,
        validation_data=_dataset(fn_args, fn_args.eval_files, tf_transform_output, 256, train=False),
        validation_steps=fn_args.eval_steps,
        callbacks=list(callbacks),
        verbose=2,
    )
    return model, history


def tuner_fn(fn_args) -> TunerFnResult:
    """Tune calls this: a random search, each trial a short training run scored by eval RMSE."""
    config = fn_args.custom_config or {}
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

    def trial(hp):
        values = {**hyperparameters(fn_args), **hp.values}
        _, history = fit(fn_args, values, fn_args.train_steps, tf_transform_output)
        return {"val_rmse": history.history["val_rmse"][-1]}

    tuner = trial_tuner(
        trial, hyperparameters=search_space(), objective=("val_rmse", "min"),
        max_trials=int(config.get("max_trials", 4)), algorithm=config.get("algorithm", "random"),
        directory=fn_args.working_dir, seed=fn_args.seed,
    )
    return TunerFnResult(tuner=tuner, fit_kwargs={})


def raw_feature_spec(schema_path: str) -> dict:
    """``tf.io`` parsing spec of the raw examples, from the Schema Ingest inferred (``fn_args.schema_path``)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import schema_utils

    with open(schema_path) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    return schema_utils.schema_as_feature_spec(schema).feature_spec


def run_fn(fn_args):
    """Train with the tuned hyperparameters for ``fn_args.train_steps`` and save the serving model."""
    values = hyperparameters(fn_args)
    print(f"training with {values}")
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    model, _ = fit(fn_args, values, fn_args.train_steps, tf_transform_output,
                   callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)])

    model.tft_layer = tf_transform_output.transform_features_layer()
    spec = raw_feature_spec(fn_args.schema_path)
    spec.pop(features.LABEL_KEY)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, spec))
        transformed.pop(features.LABEL_KEY, None)
        return model(transformed)

    model.save(fn_args.serving_model_dir, save_format="tf", signatures={"serving_default": serve_tf_examples})
