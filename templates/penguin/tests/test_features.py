"""The data has the columns the model code expects, with the missing values the preprocessing handles."""

import csv
from pathlib import Path

import features

DATA = Path(__file__).resolve().parents[1] / "data" / "penguins.csv"
MISSING = {"", "NA"}


def _rows():
    with DATA.open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_feature_and_the_label_is_a_column():
    columns = set(_rows()[0])
    wanted = {features.LABEL_KEY, *features.NUMERIC_FEATURES, *features.CATEGORICAL_FEATURES}
    assert wanted <= columns, f"missing columns: {sorted(wanted - columns)}"
    assert features.LABEL_KEY not in features.NUMERIC_FEATURES + features.CATEGORICAL_FEATURES


def test_label_has_no_missing_values_and_three_species():
    labels = [r[features.LABEL_KEY] for r in _rows()]
    assert not MISSING & set(labels)
    assert sorted(set(labels)) == ["Adelie", "Chinstrap", "Gentoo"]


def test_the_missing_values_preprocessing_must_handle_are_there():
    rows = _rows()
    assert any(r["sex"] in MISSING for r in rows)
    assert any(r[k] in MISSING for r in rows for k in features.NUMERIC_FEATURES)
    assert features.MISSING_CATEGORY not in {r[k] for r in rows for k in features.CATEGORICAL_FEATURES}


def test_transformed_names():
    assert features.transformed_name("island") == "island_xf"
