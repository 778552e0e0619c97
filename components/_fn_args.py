"""``FnArgs`` and ``DataAccessor``: what a user's ``run_fn(fn_args)`` receives, field for field as in TFX.

A TFX module file reads ``fn_args.train_files``, ``fn_args.transform_output``, ``fn_args.serving_model_dir``
… and builds its datasets with ``fn_args.data_accessor.tf_dataset_factory(files, options, schema)``; all of
that works unchanged here. headwater adds ``seed`` and two conveniences, :meth:`FnArgs.train_dataset` and
:meth:`FnArgs.eval_dataset`.

Nothing here imports TensorFlow until a dataset is actually built.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["DataAccessor", "FnArgs", "make_data_accessor", "split_file_patterns"]

_TELEMETRY = ["headwater", "Train"]


class DataAccessor(NamedTuple):
    """Factories that read the examples on disk, as in TFX (``tfx.components.DataAccessor``).

    ``tf_dataset_factory(file_patterns, tfxio.TensorFlowDatasetOptions(...), schema)`` returns a
    ``tf.data.Dataset`` of ``(features, label)`` (or ``features`` without ``label_key``);
    ``record_batch_factory(file_patterns, tfxio.RecordBatchesOptions(...), schema)`` yields Arrow record
    batches; ``data_view_decode_fn`` is ``None`` (TFX data views are not supported).
    """

    tf_dataset_factory: Callable[..., Any]
    record_batch_factory: Callable[..., Iterator[Any]]
    data_view_decode_fn: Callable[..., Any] | None = None


def _patterns(file_pattern: str | Sequence[str]) -> list[str]:
    return [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)


def _tf_dataset_factory(file_pattern: str | Sequence[str], options: Any, schema: Any = None) -> Any:
    from tfx_bsl.public import tfxio

    patterns = _patterns(file_pattern)
    _check_patterns(patterns)
    return tfxio.TFExampleRecord(
        file_pattern=patterns, schema=schema, telemetry_descriptors=_TELEMETRY
    ).TensorFlowDataset(options)


def _record_batch_factory(file_pattern: str | Sequence[str], options: Any, schema: Any = None) -> Iterator[Any]:
    from tfx_bsl.public import tfxio

    patterns = _patterns(file_pattern)
    _check_patterns(patterns)
    return tfxio.TFExampleRecord(
        file_pattern=patterns, schema=schema, telemetry_descriptors=_TELEMETRY
    ).RecordBatches(options)


def _check_patterns(patterns: list[str]) -> None:
    from headwater.components.errors import InputDataError

    if not patterns:
        raise InputDataError("no example files to read: the file pattern list is empty")
    for pattern in patterns:
        if "://" not in pattern and not glob.glob(pattern):
            raise InputDataError(
                f"no example files match {pattern!r}; check that the Examples artifact has this split "
                "(its Split-<name>/ folder) and that the split names given to Train exist"
            )


def make_data_accessor() -> DataAccessor:
    """The accessor for gzip TFRecord files of ``tf.train.Example`` (the layout Ingest and Transform write)."""
    return DataAccessor(_tf_dataset_factory, _record_batch_factory, None)


def split_file_patterns(examples_uris: Sequence[str], splits: Sequence[str]) -> list[str]:
    """``<uri>/Split-<split>/*`` for every Examples artifact URI and split, in order."""
    return [os.path.join(uri, f"Split-{split}", "*") for uri in examples_uris for split in splits]


@dataclass
class FnArgs:
    """Arguments to a user ``run_fn``; the same fields as TFX's ``FnArgs`` (unset ones are ``None``).

    ``transform_output`` and ``transform_graph_path`` are the same directory (TFX keeps both names);
    so are ``schema_path`` and ``schema_file``. ``hyperparameters`` is the dict a
    ``keras_tuner.HyperParameters.from_config`` call expects, or ``None``.
    """

    working_dir: str | None = None
    train_files: list[str] = field(default_factory=list)
    eval_files: list[str] = field(default_factory=list)
    train_steps: int | None = None
    eval_steps: int | None = None
    schema_path: str | None = None
    schema_file: str | None = None
    transform_graph_path: str | None = None
    transform_output: str | None = None
    data_accessor: DataAccessor | None = None
    serving_model_dir: str | None = None
    eval_model_dir: str | None = None
    model_run_dir: str | None = None
    base_model: str | None = None
    hyperparameters: dict[str, Any] | None = None
    custom_config: dict[str, Any] | None = None
    seed: int | None = None

    # ------------------------------------------------------------------ conveniences
    def schema(self, *, transformed: bool | None = None) -> Any:
        """The tensorflow-metadata ``Schema`` of the examples Train reads.

        With a transform graph (and ``transformed`` not ``False``) that is tf.Transform's transformed
        schema; otherwise the schema file given to Train; ``None`` when there is neither.
        """
        if self.transform_output and transformed is not False:
            import tensorflow_transform as tft

            return tft.TFTransformOutput(self.transform_output).transformed_metadata.schema
        if self.schema_path:
            from google.protobuf import text_format
            from tensorflow_metadata.proto.v0 import schema_pb2

            with open(self.schema_path) as f:
                return text_format.Parse(f.read(), schema_pb2.Schema())
        return None

    def _dataset(self, files: list[str], batch_size: int, label_key: str | None, **options: Any) -> Any:
        from tfx_bsl.public import tfxio

        if self.seed is not None:
            options.setdefault("shuffle_seed", self.seed)
        opts = tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key, **options)
        assert self.data_accessor is not None
        return self.data_accessor.tf_dataset_factory(files, opts, self.schema())

    def train_dataset(self, batch_size: int, label_key: str | None = None, **options: Any) -> Any:
        """A ``tf.data.Dataset`` over the train files (repeating, shuffled; seeded when ``seed`` is set).

        ``options`` are further ``tfxio.TensorFlowDatasetOptions`` fields (``shuffle=False`` …).
        """
        return self._dataset(self.train_files, batch_size, label_key, **options)

    def eval_dataset(self, batch_size: int, label_key: str | None = None, **options: Any) -> Any:
        """A ``tf.data.Dataset`` over the eval files (one pass, not shuffled, unless ``options`` say so)."""
        options.setdefault("num_epochs", 1)
        options.setdefault("shuffle", False)
        return self._dataset(self.eval_files, batch_size, label_key, **options)
