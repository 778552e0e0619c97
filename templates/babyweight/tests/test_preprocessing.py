"""preprocessing_fn, run by tf.Transform on Apache Beam (in-process) over a few natality records."""

import tempfile

import features
import preprocessing
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

ROWS = [
    {"weight_pounds": [7.5], "is_male": ["true"], "mother_age": [25], "plurality": [1], "gestation_weeks": [40]},
    {"weight_pounds": [6.1], "is_male": ["false"], "mother_age": [31], "plurality": [2], "gestation_weeks": [36]},
    {"weight_pounds": [8.0], "is_male": ["true"], "mother_age": [35], "plurality": [1], "gestation_weeks": []},
    {"weight_pounds": [5.0], "is_male": ["false"], "mother_age": [19], "plurality": [1], "gestation_weeks": [35]},
]
SPEC = {
    "weight_pounds": tf.io.VarLenFeature(tf.float32),
    "is_male": tf.io.VarLenFeature(tf.string),
    "mother_age": tf.io.VarLenFeature(tf.int64),
    "plurality": tf.io.VarLenFeature(tf.int64),
    "gestation_weeks": tf.io.VarLenFeature(tf.int64),
}


@pytest.fixture(scope="module")
def transformed():
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=False):
        (rows, _), _ = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn, output_record_batches=False)
    return rows


def _values(rows, name):
    return [r[name][0] for r in rows]


def test_missing_gestation_becomes_the_mean_and_is_flagged(transformed):
    weeks = _values(transformed, features.transformed_name("gestation_weeks"))
    flags = _values(transformed, features.missing_name("gestation_weeks"))
    assert weeks[2] == 0.0 and list(flags) == [0.0, 0.0, 1.0, 0.0]
    assert sum(weeks) == pytest.approx(0.0, abs=1e-5)  # z-scores of the present values, plus a 0.0
    assert weeks[0] > weeks[1] > weeks[3]


def test_categories_and_buckets(transformed):
    sexes = _values(transformed, features.transformed_name("is_male"))
    assert sexes[0] == sexes[2] != sexes[1] == sexes[3]
    plurality = _values(transformed, features.transformed_name("plurality"))
    assert plurality[0] == plurality[2] == plurality[3] != plurality[1]
    buckets = _values(transformed, features.bucket_name("mother_age"))
    assert all(0 <= b < features.BUCKETIZED_FEATURES["mother_age"] for b in buckets)
    assert buckets[3] < buckets[2]  # the youngest mother is in a lower bucket than the oldest


def test_label_passes_through_in_pounds(transformed):
    assert list(_values(transformed, features.LABEL_KEY)) == pytest.approx([7.5, 6.1, 8.0, 5.0])
