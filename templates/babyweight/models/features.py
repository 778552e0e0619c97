"""The natality columns as the model sees them: one place to change when the data changes."""

LABEL_KEY = "weight_pounds"
#: Numbers, z-scored; a missing value becomes the train mean and sets ``<name>_missing``.
NUMERIC_FEATURES = ["mother_age", "gestation_weeks"]
#: Categories (values are read as strings), one-hot encoded through a vocabulary.
CATEGORICAL_FEATURES = ["is_male", "plurality"]
#: Numbers also cut into quantile buckets (computed on the train split), one-hot encoded.
BUCKETIZED_FEATURES = {"mother_age": 5}
MISSING_CATEGORY = "unknown"
OOV_BUCKETS = 1


def transformed_name(key: str) -> str:
    """The name of a feature after preprocessing (``mother_age`` -> ``mother_age_xf``)."""
    return f"{key}_xf"


def missing_name(key: str) -> str:
    """The 0/1 feature that says a numeric value was missing."""
    return f"{key}_missing_xf"


def bucket_name(key: str) -> str:
    return f"{key}_bucket_xf"
