"""Helpers for the ML component tests (serving raw examples, writing module files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def raw_eval_examples(examples_uri: str, *, drop: Sequence[str] = ("species",)) -> tuple[list[bytes], list[str]]:
    """Serialized raw eval ``tf.Example``s without the label, and their labels (as Ingest wrote them)."""
    from headwater.components._data import examples_files, read_tfrecords
    from tensorflow.core.example import example_pb2

    records, labels = [], []
    for path in examples_files(examples_uri, "eval"):
        for record in read_tfrecords(path):
            example = example_pb2.Example.FromString(record)
            labels.append(example.features.feature["species"].bytes_list.value[0].decode())
            for key in drop:
                del example.features.feature[key]
            records.append(example.SerializeToString())
    return records, labels


def serve(model_dir: str, records: list[bytes]) -> Any:
    """Predictions of the SavedModel's ``serving_default`` signature for serialized examples."""
    import tensorflow as tf

    loaded = tf.saved_model.load(model_dir)
    outputs = loaded.signatures["serving_default"](examples=tf.constant(records))
    return next(iter(outputs.values())).numpy()


def write_module(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return path

