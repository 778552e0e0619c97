"""Where the built-in components keep things inside their artifacts (TFX's layout), each fact spelled once.

Components read each other's outputs through these names instead of importing each other: Train writes
``<Model>/Format-Serving/saved_model.pb`` and Evaluate and Push read it there; Evaluate writes a ``BLESSED``
or ``NOT_BLESSED`` file into the blessing and Push checks it; Ingest writes ``<Examples>/Split-<name>/``
folders of ``data_tfrecord-*.gz`` files that Transform, Train, Tune and Evaluate read.

Plain names and path arithmetic only: nothing here touches the file system or imports anything heavy.
"""

from __future__ import annotations

import os

__all__ = [
    "BLESSED_FILE",
    "EVAL_DIR",
    "EXAMPLES_FILE_PREFIX",
    "EXAMPLES_FILE_SUFFIX",
    "NOT_BLESSED_FILE",
    "SAVED_MODEL_FILE",
    "SCHEMA_FILE",
    "SERVING_DIR",
    "SPLIT_PREFIX",
    "serving_model_path",
    "split_dir",
]

# ------------------------------------------------------------------------------------------- Examples
#: A split's folder inside an Examples artifact is ``Split-<name>`` (TFX's name).
SPLIT_PREFIX = "Split-"
#: Examples data files, as TFX names them: ``Split-<name>/data_tfrecord-00000-of-00001.gz``.
EXAMPLES_FILE_PREFIX = "data_tfrecord"
EXAMPLES_FILE_SUFFIX = ".gz"

# --------------------------------------------------------------------------------------------- Schema
#: The Schema artifact's file (tensorflow-metadata ``Schema`` in text format).
SCHEMA_FILE = "schema.pbtxt"

# ---------------------------------------------------------------------------------------------- Model
#: Folder of the serving SavedModel inside a Model artifact (TFX's name).
SERVING_DIR = "Format-Serving"
#: Folder TFX gives Estimator eval models; kept in ``fn_args.eval_model_dir`` for compatibility.
EVAL_DIR = "Format-TFMA"
#: The file that makes a folder a SavedModel (written last by Push, so a half-copied model is never served).
SAVED_MODEL_FILE = "saved_model.pb"

# ------------------------------------------------------------------------------------------- Blessing
#: The empty marker file Evaluate writes into a ModelBlessing artifact (TFX's names).
BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"


def split_dir(split: str) -> str:
    """The folder name of one split: ``Split-<split>``."""
    return f"{SPLIT_PREFIX}{split}"


def serving_model_path(model_uri: str) -> str:
    """Where a Model artifact keeps its serving SavedModel."""
    return os.path.join(model_uri, SERVING_DIR)
