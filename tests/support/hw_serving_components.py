"""Test components for InfraValidate and the push gate: a Model holding a chosen real SavedModel, and
Examples of tf.Examples with the features those models take (module level, for worker processes)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import savedmodels
from headwater.components import Output, component
from headwater.metadata import types

#: kind -> how to write the SavedModel (each takes the target folder).
KINDS = {"regressor": savedmodels.keras_regressor, "multi": savedmodels.multi_input,
         "nosig": savedmodels.no_signature, "corrupt": savedmodels.corrupt, "hog": savedmodels.memory_hog}


@component
def saved_model(model: Output[types.Model], kind: str = "regressor") -> None:
    """A Model artifact whose Format-Serving/ is the SavedModel ``kind`` (see KINDS)."""
    KINDS[kind](Path(model.path) / "Format-Serving")


@component
def examples_x(examples: Output[types.Examples], rows: int = 6, with_tag: bool = True) -> None:
    """Examples with one split, 'eval': features x (2 floats) and tag (a string), like the test models take."""
    from headwater.components._data import frame_records
    from tensorflow.core.example import example_pb2

    records = []
    for i in range(rows):
        example = example_pb2.Example()
        example.features.feature["x"].float_list.value.extend([float(i), 0.5])
        if with_tag:
            example.features.feature["tag"].bytes_list.value.append(f"row{i}".encode())
        records.append(example.SerializeToString())
    folder = Path(examples.path) / "Split-eval"
    folder.mkdir(parents=True)
    (folder / "data_tfrecord-00000-of-00001.gz").write_bytes(gzip.compress(frame_records(records)))
    examples.properties["split_names"] = json.dumps(["eval"])
