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


#: Libraries whose own functions AutoGraph should leave alone: tf-keras (Keras 2 under its new package
#: name) and the TFX libraries, all written for graph mode without AutoGraph.
LIBRARIES = ("tf_keras", "tensorflow_transform", "tfx_bsl", "tensorflow_metadata", "tensorflow_model_analysis")


def skip_autograph_for_tf_keras(libraries: tuple[str, ...] = LIBRARIES) -> list[str]:
    """Tell AutoGraph not to convert these libraries' own functions (as it already skips ``keras``).

    Returns the module names a rule was added for (none when already there, or when AutoGraph's
    configuration is not where TensorFlow 2.16 keeps it: then nothing changes, tracing is only slower).
    """
    try:
        from tensorflow.python.autograph.core import config
    except ImportError:  # pragma: no cover - a TensorFlow without this module
        return []
    rules = tuple(getattr(config, "CONVERSION_RULES", ()))
    if not rules or not hasattr(config, "DoNotConvert"):
        return []  # pragma: no cover - a TensorFlow that changed its AutoGraph configuration
    present = {getattr(r, "_prefix", None) for r in rules}
    added = [name for name in libraries if name not in present]
    if added:
        config.CONVERSION_RULES = (*(config.DoNotConvert(name) for name in added), *rules)
    return added


def tf_keras_version() -> str:
    """``tf_keras 2.16.0`` or ``keras 3.x``: the package and version behind ``tf.keras`` in this process."""
    import importlib

    import tensorflow as tf

    package = tf.keras.Model.__module__.split(".")[0]
    return f"{package} {getattr(importlib.import_module(package), '__version__', '?')}"
