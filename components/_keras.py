"""Which Keras a training executor runs, and a fix that makes tf-keras (Keras 2) trace as fast as Keras 3.

TensorFlow 2.16 makes ``tf.keras`` Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before ``tf.keras`` is
first touched; tf.Transform and TFMA 0.47 are built on Keras 2 (the ``tf_keras`` package), and so are TFX
module files (``model.save(dir, save_format='tf', signatures=...)`` exists only there). Train therefore
selects Keras 2 for ``tf.keras`` in its process; a module may still ``import keras`` (Keras 3) itself.

The first ``fit`` of a small tf-keras model took ~11 s on a 2-core machine, against ~0.8 s with Keras 3.
The time is AutoGraph converting tf-keras's *own* source (``train_step``, ``compile_utils`` …) on every
trace: AutoGraph's allowlist skips the ``keras`` module but does not know the ``tf_keras`` name, which is
the same code under a new package name. :func:`skip_autograph_for_tf_keras` adds that one rule (user code,
custom layers and ``tf.function``\\ s in module files are still converted as before) and brings the first
``fit`` down to ~0.9 s.
"""

from __future__ import annotations

import os

__all__ = ["prefer_tf_keras", "skip_autograph_for_tf_keras", "tf_keras_version"]


def prefer_tf_keras() -> None:
    """Select Keras 2 for ``tf.keras`` in this process, unless the user set ``TF_USE_LEGACY_KERAS``."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def skip_autograph_for_tf_keras() -> bool:
    """Tell AutoGraph not to convert tf-keras's own functions (as it already skips ``keras``).

    Returns ``True`` when the rule was added, ``False`` when it was already there or AutoGraph's
    configuration is not where TensorFlow 2.16 keeps it (then nothing changes, training is only slower).
    """
    try:
        from tensorflow.python.autograph.core import config
    except ImportError:  # pragma: no cover - a TensorFlow without this module
        return False
    rules = tuple(getattr(config, "CONVERSION_RULES", ()))
    if not rules or not hasattr(config, "DoNotConvert"):
        return False  # pragma: no cover - a TensorFlow that changed its AutoGraph configuration
    if any(getattr(r, "_prefix", None) == "tf_keras" for r in rules):
        return False
    config.CONVERSION_RULES = (config.DoNotConvert("tf_keras"), *rules)
    return True


def tf_keras_version() -> str:
    """The version behind ``tf.keras`` in this process (``2.x`` for tf-keras, ``3.x`` for Keras 3)."""
    import tensorflow as tf

    version = getattr(tf.keras, "__version__", None) or getattr(tf.keras, "version", lambda: "?")()
    return str(version)
