"""Make models/ importable in the tests, with the same Keras as Train gives run_fn."""

import os
import sys
from pathlib import Path

# Train runs run_fn with Keras 2 (the tf-keras package) as tf.keras, as tf.Transform and TFMA need;
# the tests do the same. This must happen before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "models"))
