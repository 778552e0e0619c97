"""``preprocessing_fn``\\ s with mistakes, for Transform's error messages."""

import tensorflow_transform as tft


def preprocessing_fn(inputs):
    # 'culmen_length_mm' is TFX's name for the column; the real data calls it 'bill_length_mm'.
    return {"culmen_xf": tft.scale_to_z_score(inputs["culmen_length_mm"])}


def raises(inputs):
    raise ValueError("the scaling table is not ready")
