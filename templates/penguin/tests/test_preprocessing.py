"""preprocessing_fn, run by tf.Transform on Apache Beam (in-process) over a few raw rows with gaps."""

import math
import tempfile

import features
import preprocessing
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

ROWS = [
    {"species": "Adelie", "island": "Torgersen", "bill_length_mm": [39.0], "bill_depth_mm": [18.0],
     "flipper_length_mm": [181], "body_mass_g": [3750], "sex": ["male"]},
    {"species": "Gentoo", "island": "Biscoe", "bill_length_mm": [47.0], "bill_depth_mm": [14.0],
     "flipper_length_mm": [215], "body_mass_g": [5000], "sex": ["female"]},
    {"species": "Gentoo", "island": "Biscoe", "bill_length_mm": [], "bill_depth_mm": [],
     "flipper_length_mm": [], "body_mass_g": [], "sex": []},  # a penguin nobody measured
    {"species": "Chinstrap", "island": "Dream", "bill_length_mm": [49.0], "bill_depth_mm": [19.0],
     "flipper_length_mm": [196], "body_mass_g": [3800], "sex": ["female"]},
]
SPEC = {
    "species": tf.io.FixedLenFeature([], tf.string),
    "island": tf.io.FixedLenFeature([], tf.string),
    "bill_length_mm": tf.io.VarLenFeature(tf.float32),
    "bill_depth_mm": tf.io.VarLenFeature(tf.float32),
    "flipper_length_mm": tf.io.VarLenFeature(tf.int64),
    "body_mass_g": tf.io.VarLenFeature(tf.int64),
    "sex": tf.io.VarLenFeature(tf.string),
}


@pytest.fixture(scope="module")
def transformed():
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=False):
        (rows, _), (_, _) = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn, output_record_batches=False)
    return rows


def _name(key):
    return features.transformed_name(key)


def test_measurements_are_z_scored_and_missing_ones_become_the_mean(transformed):
    present = [39.0, 47.0, 49.0]
    mean = sum(present) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in present) / 3)
    got = [float(r[_name("bill_length_mm")][0]) for r in transformed]
    assert got[0] == pytest.approx((39.0 - mean) / std, rel=1e-5)
    assert got[2] == 0.0  # missing: the mean, in z-score units
    assert sum(got) == pytest.approx(0.0, abs=1e-5)


def test_missing_sex_is_its_own_category(transformed):
    ids = [int(r[_name("sex")][0]) for r in transformed]
    assert len(set(ids)) == 3  # male, female, unknown
    assert ids[1] == ids[3]  # both female


def test_label_becomes_a_class_id(transformed):
    ids = [int(r[_name("species")][0]) for r in transformed]
    assert ids[1] == ids[2] and len(set(ids)) == 3 and set(ids) == {0, 1, 2}
    assert ids[1] == 0  # Gentoo is the most frequent species here: id 0


def test_every_model_feature_is_produced(transformed):
    expected = {_name(k) for k in [*features.NUMERIC_FEATURES, *features.CATEGORICAL_FEATURES, features.LABEL_KEY]}
    assert set(transformed[0]) == expected
    assert tft.__version__
