"""``preprocessing_fn``: the Beam preprocessing of the natality records (Transform runs it with tf.Transform).

The analyzers — mean and variance for z-scores, quantiles for the age buckets, vocabularies for the
categories — are full passes over the train split, computed by Apache Beam (locally, or on Flink, Spark
or Dataflow through the pipeline's ``beam_args``). The graph they produce is applied to every split and
travels inside the exported model, so serving preprocesses exactly as training did.

* ``mother_age``, ``gestation_weeks``: z-scored; a missing value becomes the train mean (0.0 after
  scaling) and ``<name>_missing_xf`` is 1 for that row, so the model can tell imputed from real;
* ``mother_age`` is also cut into 5 quantile buckets (the effect of age is not linear);
* ``is_male``, ``plurality``: categories through a vocabulary (a missing value is ``unknown``).

The label ``weight_pounds`` is not transformed: the model predicts pounds.
"""

import features
import tensorflow as tf
import tensorflow_transform as tft


def _dense(x, default):
    """A ``[batch, 1]`` dense tensor; rows where the feature is missing get ``default``."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1, 1])


def _as(x, dtype, fn=None):
    convert = fn or (lambda v: tf.cast(v, dtype))
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, convert(x.values), x.dense_shape)
    return convert(x)


def _present(x):
    """1.0 where a value is present, 0.0 where it is missing, as ``[batch, 1]``."""
    if isinstance(x, tf.SparseTensor):
        return _dense(tf.SparseTensor(x.indices, tf.ones_like(x.values, tf.float32), x.dense_shape), 0.0)
    return tf.ones_like(tf.reshape(tf.cast(x, tf.float32), [-1, 1]))


def preprocessing_fn(inputs):
    """Raw natality features in, model features out (``<name>_xf``); the label passes through."""
    outputs = {}
    for key in features.NUMERIC_FEATURES:
        raw = _as(inputs[key], tf.float32)
        outputs[features.transformed_name(key)] = _dense(tft.scale_to_z_score(raw), 0.0)
        outputs[features.missing_name(key)] = 1.0 - _present(raw)
    for key, buckets in features.BUCKETIZED_FEATURES.items():
        raw = _as(inputs[key], tf.float32)
        filled = _dense(raw, tft.mean(raw))  # a missing value falls in the bucket of the mean
        outputs[features.bucket_name(key)] = tft.bucketize(filled, num_buckets=buckets)
    for key in features.CATEGORICAL_FEATURES:
        text = _as(inputs[key], tf.string, lambda v: v if v.dtype == tf.string else tf.strings.as_string(v))
        outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _dense(text, features.MISSING_CATEGORY), num_oov_buckets=features.OOV_BUCKETS, vocab_filename=key
        )
    outputs[features.LABEL_KEY] = tf.cast(_dense(inputs[features.LABEL_KEY], 0.0), tf.float32)
    return outputs
