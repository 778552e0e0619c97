"""A tf.Transform ``preprocessing_fn`` for the real Palmer penguins data (as Ingest writes it).

Like TFX's penguin example it z-scores the numeric measurements, and it also handles what TFX's cleaned
copy of the data does not have: missing values and categorical strings. Features that may be missing
arrive as ``tf.SparseTensor`` (the schema gives them no fixed shape); tf.Transform's analyzers accept
them as they are and ignore the missing values. After scaling, a missing measurement is filled with 0.0,
which is the train-split mean in z-score units (mean imputation without a second analysis pass).
Categorical ``island`` and ``sex`` become vocabulary indices (missing ``sex`` is its own value), and the
string label ``species`` becomes an integer class id.
"""

import tensorflow as tf
import tensorflow_transform as tft

NUMERIC_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL_FEATURES = ["island", "sex"]
LABEL_KEY = "species"


def transformed_name(key):
    return key + "_xf"


def _to_dense(x, default):
    """``[batch, 1]`` dense tensor; rows where the feature is missing get ``default``."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    return tf.reshape(x, [-1, 1])


def preprocessing_fn(inputs):
    outputs = {}
    for key in NUMERIC_FEATURES:
        outputs[transformed_name(key)] = _to_dense(tft.scale_to_z_score(inputs[key]), 0.0)
    for key in CATEGORICAL_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _to_dense(inputs[key], "missing"), num_oov_buckets=1, vocab_filename=key
        )
    outputs[transformed_name(LABEL_KEY)] = tft.compute_and_apply_vocabulary(
        _to_dense(inputs[LABEL_KEY], ""), vocab_filename=LABEL_KEY
    )
    return outputs
