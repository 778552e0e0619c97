"""A TFX-style module file for the real Palmer penguins data: ``preprocessing_fn`` (Transform) and
``run_fn`` (Train), written the way TFX's penguin example writes them.

Differences from the TFX example, all about the data (TFX's copy of it was cleaned): ``island`` and
``sex`` are categorical strings, ``species`` is a string label, and measurements and ``sex`` have missing
values. Measurements are z-scored over the present values and a missing one becomes 0.0 (the
train-split mean), a missing category is its own value, and the label is mapped to an integer with a
vocabulary (``species_xf``).

The serving signature parses raw ``tf.Example``\\ s and applies the tf.Transform graph before the model,
so the pushed SavedModel predicts from raw features; ``transform_features`` is the signature TFMA uses
(``preprocessing_function_names``) to read the transformed label.
"""

import tensorflow as tf
import tensorflow_transform as tft
from headwater.components import tfx_compat as tfx  # TFX: from tfx import v1 as tfx
from tensorflow import keras
from tfx_bsl.public import tfxio

NUMERIC_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL_FEATURES = ["island", "sex"]
LABEL_KEY = "species"

TRAIN_BATCH_SIZE = 20
EVAL_BATCH_SIZE = 10


def transformed_name(key: str) -> str:
    return key + "_xf"


def _dense(x, default):
    """A ``[batch, 1]`` dense tensor; rows where the feature is missing get ``default``."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    return tf.reshape(x, [-1, 1])


# TFX Transform calls this function.
def preprocessing_fn(inputs):
    outputs = {}
    for key in NUMERIC_FEATURES:
        # z-score over the present values; a missing value becomes 0.0, the train mean in z units.
        outputs[transformed_name(key)] = _dense(tft.scale_to_z_score(inputs[key]), 0.0)
    for key in CATEGORICAL_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _dense(inputs[key], "missing"), num_oov_buckets=1, vocab_filename=key
        )
    outputs[transformed_name(LABEL_KEY)] = tft.compute_and_apply_vocabulary(
        _dense(inputs[LABEL_KEY], ""), vocab_filename=LABEL_KEY
    )
    return outputs


def _input_fn(file_pattern, data_accessor, tf_transform_output, batch_size):
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=transformed_name(LABEL_KEY)),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def _make_serving_signatures(model, tf_transform_output):
    model.tft_layer = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_examples):
        feature_spec = tf_transform_output.raw_feature_spec()
        feature_spec.pop(LABEL_KEY)
        parsed_features = tf.io.parse_example(serialized_tf_examples, feature_spec)
        transformed_features = model.tft_layer(parsed_features)
        return model(transformed_features)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features_fn(serialized_tf_examples):
        feature_spec = tf_transform_output.raw_feature_spec()
        parsed_features = tf.io.parse_example(serialized_tf_examples, feature_spec)
        return model.tft_layer(parsed_features)

    return {"serving_default": serve_tf_examples_fn, "transform_features": transform_features_fn}


def _make_keras_model(tf_transform_output, hidden_units=8, num_layers=2, learning_rate=1e-2):
    inputs = []
    encoded = []
    for key in NUMERIC_FEATURES:
        x = keras.layers.Input(shape=(1,), name=transformed_name(key))
        inputs.append(x)
        encoded.append(x)
    for key in CATEGORICAL_FEATURES:
        x = keras.layers.Input(shape=(1,), name=transformed_name(key), dtype=tf.int64)
        inputs.append(x)
        size = tf_transform_output.vocabulary_size_by_name(key) + 1  # + the OOV bucket
        encoded.append(keras.layers.CategoryEncoding(num_tokens=size, output_mode="one_hot")(x))
    d = keras.layers.concatenate(encoded)
    for _ in range(num_layers):
        d = keras.layers.Dense(hidden_units, activation="relu")(d)
    num_classes = tf_transform_output.vocabulary_size_by_name(LABEL_KEY)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(d)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


# TFX Trainer calls this function.
def run_fn(fn_args: tfx.components.FnArgs):
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, TRAIN_BATCH_SIZE)
    eval_dataset = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, EVAL_BATCH_SIZE)
    hparams = dict(fn_args.hyperparameters.get("values", {})) if fn_args.hyperparameters else {}
    hparams.update((fn_args.custom_config or {}).get("hparams", {}))
    model = _make_keras_model(tf_transform_output, **hparams)

    tensorboard_callback = tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
    model.fit(
        train_dataset,
        steps_per_epoch=fn_args.train_steps,
        validation_data=eval_dataset,
        validation_steps=fn_args.eval_steps,
        callbacks=[tensorboard_callback],
        verbose=0,
    )
    signatures = _make_serving_signatures(model, tf_transform_output)
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures)
