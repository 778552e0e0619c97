"""``run_fn``: the Keras model (Train calls it), and the signatures the pushed model serves.

Train gives ``run_fn`` TFX's ``fn_args``: the transformed examples (``train_files``/``eval_files``), the
tf.Transform output, the step counts, and ``custom_config`` (the ``model`` section of
``configs/training.yaml``). The model is a small feed-forward network over the z-scored measurements
and one-hot ``island``/``sex``, with a softmax over the species.

The exported SavedModel has three signatures:

* ``serving_default``: serialized raw ``tf.Example`` in (measurements, island, sex; missing ones may be
  left out), class probabilities out. The tf.Transform graph runs inside, so clients send raw data;
* ``classify_species``: the same input; out ``classes`` (the species names, in the order of the
  probabilities) and ``scores`` (the probabilities) — what ``web/penguin.js`` shows;
* ``transform_features``: the transformed features, which Evaluate uses to read the label
  (``species_xf``) of its raw eval examples.
"""

import features
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

#: Defaults for the model's hyperparameters; configs/training.yaml (``model:``) overrides them.
DEFAULTS = {"hidden_units": 16, "num_layers": 2, "learning_rate": 0.01, "batch_size": 32, "eval_batch_size": 32}


def hyperparameters(fn_args) -> dict:
    """DEFAULTS, updated by ``custom_config`` and then by tuned values (``fn_args.hyperparameters``)."""
    values = dict(DEFAULTS)
    values.update({k: v for k, v in (fn_args.custom_config or {}).items() if k in DEFAULTS})
    if fn_args.hyperparameters:
        values.update(fn_args.hyperparameters.get("values", {}))
    return values


def build_model(vocabulary_sizes: dict, num_classes: int, hidden_units: int = 16, num_layers: int = 2,
                learning_rate: float = 0.01, **unused: object) -> tf.keras.Model:
    """The network: ``vocabulary_sizes`` maps each categorical feature to its number of ids."""
    inputs, encoded = [], []
    for key in features.NUMERIC_FEATURES:
        x = tf.keras.layers.Input(shape=(1,), name=features.transformed_name(key))
        inputs.append(x)
        encoded.append(x)
    for key in features.CATEGORICAL_FEATURES:
        x = tf.keras.layers.Input(shape=(1,), name=features.transformed_name(key), dtype=tf.int64)
        inputs.append(x)
        encoded.append(tf.keras.layers.CategoryEncoding(num_tokens=vocabulary_sizes[key], output_mode="one_hot")(x))
    d = tf.keras.layers.concatenate(encoded)
    for _ in range(num_layers):
        d = tf.keras.layers.Dense(hidden_units, activation="relu")(d)
    outputs = tf.keras.layers.Dense(num_classes, activation="softmax")(d)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def _dataset(fn_args, files, tf_transform_output, batch_size, *, train):
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size, label_key=features.transformed_name(features.LABEL_KEY),
        shuffle=train, shuffle_seed=fn_args.seed, num_epochs=None if train else 1,
    )
    return fn_args.data_accessor.tf_dataset_factory(files, options, tf_transform_output.transformed_metadata.schema)


def raw_feature_spec(schema_path: str) -> dict:
    """``tf.io`` parsing spec of the raw examples, from the Schema Ingest inferred (``fn_args.schema_path``)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import schema_utils

    with open(schema_path) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    return schema_utils.schema_as_feature_spec(schema).feature_spec


def _signatures(model, tf_transform_output, raw_spec, labels):
    model.tft_layer = tf_transform_output.transform_features_layer()
    serving_spec = {k: v for k, v in raw_spec.items() if k in features.NUMERIC_FEATURES + features.CATEGORICAL_FEATURES}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized):
        raw = tf.io.parse_example(serialized, serving_spec)
        return model(model.tft_layer(raw))

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def classify_species(serialized):
        scores = serve_tf_examples(serialized)
        return {"classes": tf.tile(tf.constant([labels]), [tf.shape(scores)[0], 1]), "scores": scores}

    return {"serving_default": serve_tf_examples, "transform_features": transform_features,
            "classify_species": classify_species}


def run_fn(fn_args):
    """Train the model on the transformed examples and save it to ``fn_args.serving_model_dir``."""
    hp = hyperparameters(fn_args)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    sizes = {k: tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(k)) + features.OOV_BUCKETS
             for k in features.CATEGORICAL_FEATURES}
    num_classes = tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(features.LABEL_KEY))
    model = build_model(sizes, num_classes, **hp)
    model.fit(
        _dataset(fn_args, fn_args.train_files, tf_transform_output, hp["batch_size"], train=True),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_dataset(fn_args, fn_args.eval_files, tf_transform_output, hp["eval_batch_size"], train=False),
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
        verbose=2,
    )
    labels = [v.decode() for v in tf_transform_output.vocabulary_by_name(features.vocabulary_name(features.LABEL_KEY))]
    signatures = _signatures(model, tf_transform_output, raw_feature_spec(fn_args.schema_path), labels)
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures)
