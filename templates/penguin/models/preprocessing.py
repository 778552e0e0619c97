"""``preprocessing_fn``: the tf.Transform step (Transform runs it with Apache Beam).

Analyzers (``tft.scale_to_z_score``, ``tft.compute_and_apply_vocabulary``) see the train split only;
the resulting graph is applied to every split and, inside the exported model, to serving requests, so
training and serving preprocess the same way.

Missing values are kept, not dropped:

* a missing measurement becomes the train-split mean. ``scale_to_z_score`` computes mean and variance
  over the values that are present (a feature that may be missing arrives as a ``tf.SparseTensor``),
  so after scaling the mean is 0.0 and a missing value is filled with 0.0;
* a missing ``sex`` becomes its own category, ``unknown`` (``features.MISSING_CATEGORY``).
"""

import features
import tensorflow as tf
import tensorflow_transform as tft


def _dense(x, default):
    """A ``[batch, 1]`` dense tensor; rows where the feature is missing get ``default``."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1, 1])


def _as_float(x):
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    return tf.cast(x, tf.float32)


def preprocessing_fn(inputs):
    """Raw features in, model features out (``<name>_xf``)."""
    outputs = {}
    for key in features.NUMERIC_FEATURES:
        scaled = tft.scale_to_z_score(_as_float(inputs[key]))
        outputs[features.transformed_name(key)] = _dense(scaled, 0.0)  # 0.0 = the train mean
    for key in features.CATEGORICAL_FEATURES:
        outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _dense(inputs[key], features.MISSING_CATEGORY),
            num_oov_buckets=features.OOV_BUCKETS,
            vocab_filename=features.vocabulary_name(key),
        )
    outputs[features.transformed_name(features.LABEL_KEY)] = tft.compute_and_apply_vocabulary(
        _dense(inputs[features.LABEL_KEY], ""), vocab_filename=features.vocabulary_name(features.LABEL_KEY)
    )
    return outputs
