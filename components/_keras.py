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
import sys

__all__ = ["prefer_tf_keras", "skip_autograph_for_tf_keras", "tf_keras_version"]


def prefer_tf_keras() -> None:
    """Select Keras 2 for ``tf.keras`` in this process, unless the user set ``TF_USE_LEGACY_KERAS``.

    ``tf.keras`` is resolved once per process, the first time something touches it; when that already
    happened with Keras 3 (e.g. ``import tensorflow_model_analysis`` before the variable was set) the
    choice cannot be changed any more, and this raises instead of letting a Keras 2 model meet Keras 3
    callbacks halfway through training.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    tf = sys.modules.get("tensorflow")
    keras_attr = vars(tf).get("keras") if tf is not None else None
    # Until first use this is TensorFlow's lazy loader; afterwards the Keras module it resolved to.
    resolved = getattr(keras_attr, "__name__", "") if type(keras_attr).__name__ == "module" else ""
    if resolved.startswith("keras.") and os.environ["TF_USE_LEGACY_KERAS"] in ("1", "true", "True"):
        from headwater.components.errors import RunnerError

        raise RunnerError(
            "tf.keras is already Keras 3 in this process: something used tf.keras before "
            "TF_USE_LEGACY_KERAS=1 was set, and TensorFlow resolves tf.keras only once. Set "
            "TF_USE_LEGACY_KERAS=1 in the environment of the process that runs this node (or set it to 0 "
            "to train with Keras 3 on purpose)"
        )


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
