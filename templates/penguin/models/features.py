"""The penguin data's columns, as the model sees them: one place to change when the data changes.

``species`` is the label (3 classes); ``island`` and ``sex`` are categorical strings; the four
measurements are numbers. ``sex`` and the measurements have missing values in the real data: they are
imputed in ``preprocessing.py``, never dropped. ``year`` is in the data but is not a feature.
"""

LABEL_KEY = "species"
NUMERIC_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL_FEATURES = ["island", "sex"]
#: What a missing categorical value becomes (its own category, learned like any other).
MISSING_CATEGORY = "unknown"
#: Extra vocabulary slots for categories not seen in the training data (new islands ...).
OOV_BUCKETS = 1


def transformed_name(key: str) -> str:
    """The name of a feature after preprocessing (``island`` -> ``island_xf``)."""
    return f"{key}_xf"


def vocabulary_name(key: str) -> str:
    """The name tf.Transform gives the vocabulary file of a categorical feature (or the label)."""
    return key
