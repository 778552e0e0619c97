"""Ingest: CSV / Parquet files → split ``Examples`` (TFX layout) and an inferred ``Schema``.

::

    from headwater.components import Ingest

    ingest = Ingest(input_base="data", pattern="span-{SPAN}/*.csv", label="species")
    ingest.outputs.examples     # Examples: Split-train/, Split-eval/ (gzip TFRecord of tf.train.Example)
    ingest.outputs.schema       # Schema: schema.pbtxt (tensorflow-metadata, text format)

**Which files.** ``input_base`` is a local folder or an object-store URL (``s3://``, ``gs://``, or any
scheme fsspec knows, such as ``memory://``; see :mod:`headwater.components.storage`); ``pattern`` is a
glob below it (default: every ``.csv``,
``.csv.gz`` and ``.parquet`` file directly in it). Patterns may hold ``{SPAN}``, ``{VERSION}`` and a date
``{YYYY}{MM}{DD}`` (whose span is the number of days since 1970-01-01, as in TFX). The latest span is
ingested unless ``span`` is given, and within it the latest ``version`` unless ``version`` is given; both
become properties of the Examples artifact. ``splits={"train": "train/*.csv", "eval": "eval/*.csv"}``
reads pre-split folders instead of hash-splitting.

**Splitting.** Each row goes to a split by a deterministic 64-bit hash of its values (or of the
``partition_feature`` value alone, so that rows sharing it stay together), in proportion to
``split_ratios`` (default ``{"train": 2, "eval": 1}``). The same data always splits the same way, on
every engine.

**Values.** Column types are inferred (INT, FLOAT, BYTES); empty fields and the usual null markers
(``NA``, ``null``, ``NaN`` …) are missing values and become features without values. ``column_types``
forces a type. A malformed row is an :class:`~headwater.metadata.errors.InputDataError` naming the file,
line, column and value, unless ``skip_malformed=True``: then it is dropped and counted in the Examples'
``skipped_rows`` custom property. Malformed are: a wrong number of fields; text in a numeric column (a CSV
column is numeric when at most 10% of its present values are not numbers, ``NUMERIC_TEXT_SHARE``; with
more text it is a text column — force either with ``column_types``); a number that is not finite
(``inf``, ``-inf``, ``Infinity``, ``1e309``; kept with ``allow_non_finite=True``); text that is not UTF-8.
A CSV header that names a column twice is an error. Empty files, header-only files, a column whose type
differs between files or from ``previous_schema`` (the schema of earlier spans), and a ``label`` column
without values are errors too.

**Engines.** ``engine="local"`` (the default unless ``beam_args`` name a non-direct runner) parses with
``pyarrow.csv`` (multi-threaded), encodes examples with tfx_bsl's C++ encoder and writes gzip TFRecords
directly — no Beam start-up, no TensorFlow import, which keeps small pipelines fast; inputs of 64 MB or more
are encoded and written by one writer process per CPU. ``engine="beam"``
runs the same steps as an Apache Beam pipeline (files are read in parallel, one task per file, then
examples are written with ``WriteToTFRecord``), so ``beam_args`` such as ``--runner=FlinkRunner`` or
``--runner=DataflowRunner`` send it to a cluster. Both engines produce the same examples in the same
splits.

**Memory.** Files are streamed in two passes of 4 MiB chunks (profile and check, then conform, split and
write), so memory follows the chunk size, not the size of the input.

**Caching.** The component's ``input_fingerprint`` lists the selected files with their sizes and
modification times (or the object store's checksum / generation), so changed or new data is a cache
miss and is ingested again.

**Modules.** ``_resolve`` (files, spans, fingerprint), ``_read`` (options, profiles, row rules), ``_stream``
(the two chunked passes over a file), ``_plan`` (column kinds, schema), ``_encode`` (conform, split),
``_write`` (shards, writer processes), ``_engines`` (local, Beam), ``_component``.
"""

from headwater.components.ingest._component import DEFAULT_SPLIT_RATIOS, Ingest, IngestOptions, run_ingest
from headwater.components.ingest._resolve import ResolvedInput, ingest_input_fingerprint, resolve_input

__all__ = [
    "DEFAULT_SPLIT_RATIOS",
    "Ingest",
    "IngestOptions",
    "ResolvedInput",
    "ingest_input_fingerprint",
    "resolve_input",
    "run_ingest",
]
