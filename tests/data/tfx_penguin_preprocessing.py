"""A ``preprocessing_fn`` in the form of TFX's penguin example (its Keras module file).

TFX's example reads its own cleaned copy of the penguins data: four numeric ``culmen_*``/``flipper``/
``body_mass`` columns without missing values and an integer ``species`` label. Each feature is z-scored
with ``tft.scale_to_z_score`` and the label is passed through. Headwater's Transform must run it as is.
"""

import tensorflow_transform as tft

_FEATURE_KEYS = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]
_LABEL_KEY = "species"


def _transformed_name(key):
    return key + "_xf"


def preprocessing_fn(inputs):
    outputs = {}
    for key in _FEATURE_KEYS:
        outputs[_transformed_name(key)] = tft.scale_to_z_score(inputs[key])
    # The label is left as it is (TFX's example does not transform it either).
    outputs[_transformed_name(_LABEL_KEY)] = inputs[_LABEL_KEY]
    return outputs
