"""Transform: a user's tf.Transform ``preprocessing_fn``, analysed on the train split, applied to every split.

::

    from headwater.components import Transform

    transform = Transform(
        examples=ingest.outputs.examples,
        schema=ingest.outputs.schema,
        module_file="models/penguin.py",        # or a dotted module, or preprocessing_fn="pkg.mod.fn"
    )
    transform.outputs.transform_graph           # TransformGraph: transform_fn/, transformed_metadata/
    transform.outputs.transformed_examples      # Examples: Split-<name>/data_tfrecord-*.gz

``preprocessing_fn(inputs)`` is the same function TFX's Transform calls (a TFX module file runs
unchanged): ``inputs`` maps raw feature names to tensors — dense ``[batch, 1]`` for features present in
every example, ``tf.SparseTensor`` for features that may be missing — and it returns a dict of
transformed tensors. Its analyzers (``tft.mean``, ``tft.compute_and_apply_vocabulary`` …) see only the
``analyze_splits`` (default: ``["train"]``); the resulting graph transforms every split.

``examples`` takes one Examples channel or a rolling window of spans (``SpanRange``)::

    window = SpanRange(examples=ingest.outputs.examples, spans=2)
    transform = Transform(examples=window.outputs.examples, schema=ingest.outputs.schema, ...)

With several artifacts the analyzers see the ``analyze_splits`` of all of them together, and the graph
transforms every split of every artifact into one transformed Examples artifact: ``Split-train`` holds
the train examples of all spans, and so on. That artifact's ``span`` (and ``version``) are those of the
newest span; its ``spans`` custom property lists every span it covers (``[1, 2]``). Every artifact must
have the splits that are analysed and transformed. The schema (usually the newest span's) may require a
feature that an older span misses; such features are read as optional for the window and listed in the
``optional_in_window`` custom property (see :func:`_window_schema`).

Examples are read with tfx_bsl's ``TFExampleRecord`` TFXIO and the Schema, as TFX does. The analysis is
an Apache Beam pipeline (``tft_beam.AnalyzeDataset``, with the node's ``beam_args``; by default the
in-memory DirectRunner), and the graph is written by ``tft_beam.WriteTransformFn`` — so
``tft.TFTransformOutput(transform_graph.uri)`` reads it — next to the raw schema (``metadata/``), which
``raw_feature_spec()`` needs for serving signatures. Applying the graph is where the two engines differ:

* ``engine="local"`` (the default unless ``beam_args`` name a non-direct runner) applies the saved graph
  in this process, batch by batch, and writes the examples directly: each ``tft_beam.TransformDataset``
  would add Beam stages that cost more than the transformation itself on small and medium data;
* ``engine="beam"`` applies it with ``tft_beam.TransformDataset`` inside the same Beam pipeline and writes
  with ``WriteToTFRecord``, so Flink, Spark or Dataflow can do it at scale.

Both produce the same examples (``transformed_examples``: ``Split-<name>/data_tfrecord-*.gz``, every
output of ``preprocessing_fn`` as a feature), with ``num_examples`` per split as a custom property.

tf.Transform 1.16 needs Keras 2: it imports the ``tf_keras`` package and, unless the variable is already
set, sets ``TF_USE_LEGACY_KERAS=1`` when it is imported (so ``tf.keras`` is Keras 2 afterwards in the same
process). Transform only builds and saves TensorFlow graphs; it never builds a Keras model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from headwater.components import _data, _keras, _runtime
from headwater.components._boundary import user_code
from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.components.errors import InputDataError, UserCodeError
from headwater.metadata import types
from headwater.metadata.artifact import Artifact

__all__ = [
    "TRANSFORMED_METADATA_DIR",
    "TRANSFORM_FN_DIR",
    "Transform",
    "run_transform",
]

#: Folders tf.Transform writes inside the TransformGraph artifact (``tft.TFTransformOutput`` reads them).
TRANSFORM_FN_DIR = "transform_fn"
TRANSFORMED_METADATA_DIR = "transformed_metadata"


class _UnknownFeature(KeyError):
    """``inputs[name]`` for a feature the schema does not have (raised inside tracing, re-raised clearly)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Inputs(dict[str, Any]):
    """The ``inputs`` dict handed to ``preprocessing_fn``: a missing key raises :class:`_UnknownFeature`."""

    def __missing__(self, key: str) -> Any:
        raise _UnknownFeature(str(key))


def _guard(fn: Callable[..., Any], failures: list[BaseException]) -> Callable[..., Any]:
    """``fn`` with a strict ``inputs`` dict; its own exceptions are remembered (tf.Transform may wrap them)."""

    def preprocessing_fn(inputs: Mapping[str, Any]) -> Any:
        try:
            return fn(_Inputs(inputs))
        except _UnknownFeature:
            raise
        except Exception as exc:
            failures.append(exc)
            raise

    preprocessing_fn.__name__ = getattr(fn, "__name__", "preprocessing_fn")
    preprocessing_fn.__doc__ = getattr(fn, "__doc__", None)
    return preprocessing_fn


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        stack.extend([current.__cause__, current.__context__])
    return None


def _feature_names(schema: Any) -> list[str]:
    names = [f.name for f in schema.feature]
    names += [f.name for f in schema.sparse_feature]
    return names


def _span(art: Artifact) -> int:
    value = art.properties["span"]
    return -1 if value is None else int(value)


def _newest(artifacts: Sequence[types.Examples]) -> types.Examples:
    """The artifact of the newest span (of equal spans, the last given); its span and version go on the output."""
    newest = artifacts[0]
    for art in artifacts[1:]:
        if _span(art) >= _span(newest):
            newest = art
    return newest


def _pattern(artifacts: Sequence[types.Examples], split: str) -> str | list[str]:
    """The file pattern(s) of one split over all artifacts (one string for one artifact, as before)."""
    patterns = [_data.examples_file_pattern(a.path, split) for a in artifacts]
    return patterns[0] if len(patterns) == 1 else patterns


def _window_schema(schema: Any, artifacts: Sequence[types.Examples], splits: Sequence[str]) -> tuple[Any, list[str]]:
    """The schema to read a span window with, and the features it had to make optional.

    The schema usually comes from the newest span. A feature it requires in every example (a fixed
    ``shape``, read as a dense tensor) may be missing in an older span of the window — the real penguin
    data has missing measurements in 2007 and 2009 but none in 2008. Such a feature is read as optional
    (a ``tf.SparseTensor`` for ``preprocessing_fn``, a ``VarLenFeature`` when serving), as it would be had
    the schema been inferred from the whole window; every other feature keeps its shape.
    """
    fixed = {f.name: f for f in schema.feature if f.HasField("shape")}
    if len(artifacts) < 2 or not fixed:
        return schema, []
    import math

    import pyarrow.compute as pc
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx_bsl.coders import example_coder

    probe = schema_pb2.Schema()
    probe.feature.extend(fixed.values())
    decoder = example_coder.ExamplesToRecordBatchDecoder(probe.SerializeToString())
    sizes = {name: math.prod(d.size for d in f.shape.dim) for name, f in fixed.items()}
    ragged: set[str] = set()
    for art in artifacts:
        for split in splits:
            for path in _data.examples_files(art, split):
                for chunk in _data.record_chunks(path, _LOCAL_BATCH, verify=False):
                    batch = decoder.DecodeBatch(chunk)
                    for name in set(sizes) - ragged:
                        index = batch.schema.get_field_index(name)
                        if index < 0:
                            ragged.add(name)
                            continue
                        lengths = pc.list_value_length(batch.column(index))
                        if lengths.null_count or pc.any(pc.not_equal(lengths, sizes[name])).as_py():
                            ragged.add(name)
            if ragged == set(sizes):
                break
    if not ragged:
        return schema, []
    relaxed = type(schema)()
    relaxed.CopyFrom(schema)
    for feature in relaxed.feature:
        if feature.name in ragged:
            feature.ClearField("shape")
            feature.presence.ClearField("min_fraction")
            feature.value_count.min = feature.value_count.max = sizes[feature.name]
    return relaxed, sorted(ragged)


def run_transform(
    examples: types.Examples | Sequence[types.Examples],
    schema: types.Schema,
    transform_graph: types.TransformGraph,
    transformed_examples: types.Examples,
    *,
    module_file: str | None = None,
    preprocessing_fn: str | None = None,
    analyze_splits: Sequence[str] | None = None,
    transform_splits: Sequence[str] | None = None,
    engine: str = "auto",
    beam_args: Sequence[str] = (),
    tmp_dir: str | None = None,
) -> None:
    """The Transform executor as a plain function (what the component calls).

    ``examples`` is one Examples artifact or several (a span window): analysis runs over the
    ``analyze_splits`` of all of them, and every split of every artifact is transformed into
    ``transformed_examples``.
    """
    artifacts = [examples] if isinstance(examples, Artifact) else list(examples)
    if not artifacts:
        raise InputDataError(
            "Transform: input 'examples' holds no Examples artifact; connect Ingest's examples or a "
            "SpanRange window that has at least one span"
        )
    chosen_engine = _runtime.choose_engine(engine, beam_args, component="Transform")
    what = "Transform preprocessing_fn"
    fn = _data.load_user_function(module_file, preprocessing_fn, what=what, default_name="preprocessing_fn")
    source = module_file or (preprocessing_fn or "").rpartition(".")[0]
    analyze = list(analyze_splits or ["train"])
    apply = list(transform_splits or _data.split_names(artifacts[0]))
    used = list(dict.fromkeys([*analyze, *apply]))
    _runtime.check_splits(artifacts, analyze, node="Transform", setting="Transform's analyze_splits")
    _runtime.check_splits(artifacts, apply, node="Transform", setting="Transform's transform_splits")
    schema_proto, relaxed = _window_schema(_data.read_schema(schema), artifacts, used)
    features = _feature_names(schema_proto)

    _keras.skip_autograph_for_tf_keras()
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public import tfxio

    temp = os.path.join(tmp_dir or transform_graph.path, "tft_tmp")
    sources = {
        name: tfxio.TFExampleRecord(
            file_pattern=_pattern(artifacts, name),
            schema=schema_proto,
            telemetry_descriptors=["headwater", "Transform"],
        )
        for name in {*analyze, *apply}
    }
    adapter_config = sources[analyze[0]].TensorAdapterConfig()
    failures: list[BaseException] = []
    guarded = _guard(fn, failures)
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    try:
        with _data.beam_dofn_spec_cache(), tft_beam.Context(temp_dir=temp, force_tf_compat_v1=False):
            read = set(analyze) | (set(apply) if chosen_engine == "beam" else set())
            raw = {name: pipeline | f"Read[{name}]" >> sources[name].BeamSource() for name in sorted(read)}
            analyze_data = (
                raw[analyze[0]] if len(analyze) == 1
                else [raw[n] for n in analyze] | "AnalyzeData" >> beam.Flatten()
            )
            transform_fn = (analyze_data, adapter_config) | "Analyze" >> tft_beam.AnalyzeDataset(guarded)
            _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(transform_graph.path)
            for name in apply if chosen_engine == "beam" else ():
                transformed, metadata = (
                    ((raw[name], adapter_config), transform_fn)
                    | f"Transform[{name}]" >> tft_beam.TransformDataset(output_record_batches=True)
                )
                folder = _data.split_uri(transformed_examples.path, name)
                _ = (
                    transformed
                    | f"Encode[{name}]" >> beam.FlatMap(
                        _encode, beam.pvalue.AsSingleton(metadata.deferred_metadata), name
                    )
                    | f"Write[{name}]" >> beam.io.WriteToTFRecord(
                        _data.join(folder, _data.EXAMPLES_FILE_PREFIX),
                        file_name_suffix=_data.EXAMPLES_FILE_SUFFIX,
                    )
                )
            result = pipeline.run()
            result.wait_until_finish()
    except Exception as exc:
        unknown = _find(exc, _UnknownFeature)
        if isinstance(unknown, _UnknownFeature):
            raise UserCodeError(
                f"preprocessing_fn in {source} reads feature {unknown.name!r}, which is not in the schema "
                f"{_data.schema_path(schema)} (features: {', '.join(features)}). Fix the feature name in "
                "preprocessing_fn, or ingest data that has this column"
            ) from None
        if failures:
            with user_code(f"preprocessing_fn in {source}"):
                raise failures[0] from None
        raise
    # The raw schema next to the graph, as TFX's Transform writes it: tft.TFTransformOutput reads it for
    # raw_feature_spec(), which TFX-style serving signatures use to parse raw tf.Examples.
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema_proto),
                               os.path.join(transform_graph.path, "metadata"))
    if chosen_engine == "local":
        counts = _transform_local([a.path for a in artifacts], schema_proto, apply, transform_graph.path,
                                  transformed_examples.path)
    else:
        from apache_beam.metrics.metric import MetricsFilter

        counts = {name: 0 for name in apply}
        for counter in result.metrics().query(MetricsFilter().with_namespace("headwater.transform"))["counters"]:
            value = counter.committed if counter.committed is not None else counter.attempted
            counts[counter.key.metric.name.partition("/")[2]] += int(value)
    transformed_examples.properties["split_names"] = json.dumps(apply)
    newest = _newest(artifacts)
    for key in ("span", "version"):
        value = newest.properties[key]
        if value is not None:
            transformed_examples.properties[key] = value
    spans = sorted({_span(a) for a in artifacts if a.properties["span"] is not None})
    if spans:
        transformed_examples.custom_properties["spans"] = spans
    if relaxed:
        transformed_examples.custom_properties["optional_in_window"] = relaxed
    transformed_examples.custom_properties.update({
        "file_format": "tfrecords_gzip",
        "payload_format": "FORMAT_TF_EXAMPLE",
        "analyze_splits": analyze,
        "engine": chosen_engine,
        "num_examples": counts,
    })
    rows = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"Transform: {rows} rows transformed (analyzed {', '.join(analyze)}; engine {chosen_engine})", flush=True)


_LOCAL_BATCH = 8192


def _transform_local(
    examples_uris: Sequence[str], schema: Any, splits: Sequence[str], graph_uri: str, out_uri: str
) -> dict[str, int]:
    """Apply the transform graph to each split in this process (no Beam stages), streaming: records are
    read, transformed and written ``_LOCAL_BATCH`` at a time, so memory is bounded by the batch.

    Each split of every input artifact goes, in order, into one file of that split.
    """
    import pyarrow as pa
    import tensorflow_transform as tft
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    output = tft.TFTransformOutput(graph_uri)
    decoder = example_coder.ExamplesToRecordBatchDecoder(schema.SerializeToString())
    counts = {}
    for name in splits:
        source = tfxio.TFExampleRecord(file_pattern=_data.examples_file_pattern(examples_uris[0], name),
                                       schema=schema)
        adapter = tfxio.TensorAdapter(source.TensorAdapterConfig())
        folder = _data.split_uri(out_uri, name)
        _data.makedirs(folder)
        path = _data.join(folder, f"{_data.EXAMPLES_FILE_PREFIX}-00000-of-00001{_data.EXAMPLES_FILE_SUFFIX}")
        with _data.GzipTFRecordWriter(path) as writer:
            for file in (f for uri in examples_uris for f in _data.examples_files(uri, name)):
                for chunk in _data.record_chunks(file, _LOCAL_BATCH, verify=False):  # bounded by the batch
                    batch = decoder.DecodeBatch(chunk)
                    outputs = output.transform_raw_features(adapter.ToBatchTensors(batch), drop_unused_features=True)
                    table = pa.table({k: _list_array(v) for k, v in sorted(outputs.items())})
                    writer.write(_runtime.encode_examples(table))
            counts[name] = writer.records
    return counts


def _list_array(tensor: Any) -> Any:
    """One transformed tensor as an Arrow list column (one list of values per example)."""
    import numpy as np
    import pyarrow as pa
    import tensorflow as tf

    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.reorder(tensor)
        rows = tensor.indices[:, 0].numpy()
        batch = int(tensor.dense_shape[0])
        values = tensor.values.numpy()
        offsets = np.zeros(batch + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=batch), out=offsets[1:])
    elif isinstance(tensor, tf.RaggedTensor):
        flat = tensor.merge_dims(1, -1) if tensor.ragged_rank > 1 or len(tensor.shape) > 2 else tensor
        values = flat.flat_values.numpy()
        offsets = flat.row_splits.numpy().astype(np.int64)
    else:
        array = tensor.numpy()
        batch = array.shape[0] if array.ndim else 1
        values = array.reshape(batch, -1)
        width = values.shape[1]
        values = values.reshape(-1)
        offsets = np.arange(batch + 1, dtype=np.int64) * width
    if values.dtype.kind == "f":
        arrow_values = pa.array(values.astype(np.float32))
    elif values.dtype.kind in "iub":
        arrow_values = pa.array(values.astype(np.int64))
    else:
        arrow_values = pa.array(list(values), type=pa.binary())
    return pa.LargeListArray.from_arrays(pa.array(offsets), arrow_values)


_ENCODERS: dict[bytes, Any] = {}


def _encode(batch_and_passthrough: Any, metadata: Any, split: str) -> list[bytes]:
    """Serialized tf.Examples of one transformed record batch (tfx_bsl's encoder, the transformed schema)."""
    from apache_beam.metrics import Metrics
    from tfx_bsl.coders import example_coder

    Metrics.counter("headwater.transform", f"examples/{split}").inc(batch_and_passthrough[0].num_rows)
    key = metadata.schema.SerializeToString()
    encoder = _ENCODERS.get(key)
    if encoder is None:
        encoder = _ENCODERS[key] = example_coder.RecordBatchToExamplesEncoder(metadata.schema)
    return encoder.encode(batch_and_passthrough[0])


@component(
    version="1",
    code_params=("module_file", "preprocessing_fn"),
    warm_imports=("tensorflow", "tensorflow_transform.beam", "tfx_bsl.public.tfxio"),
)
def Transform(
    *,
    examples: Input[list[types.Examples]],
    schema: Input[types.Schema],
    transform_graph: Output[types.TransformGraph],
    transformed_examples: Output[types.Examples],
    module_file: str | None = None,
    preprocessing_fn: str | None = None,
    analyze_splits: list[str] | None = None,
    transform_splits: list[str] | None = None,
    engine: str = "auto",
    ctx: ExecutionContext,
) -> None:
    """Run the user's tf.Transform ``preprocessing_fn``: analyse the train split, transform every split.

    ``examples`` is one Examples channel or a span window: analysis covers the train splits of all its
    spans, and one transformed Examples artifact holds every split of every span.
    """
    run_transform(
        examples,
        schema,
        transform_graph,
        transformed_examples,
        module_file=module_file,
        preprocessing_fn=preprocessing_fn,
        analyze_splits=analyze_splits,
        transform_splits=transform_splits,
        engine=engine,
        beam_args=ctx.beam_args,
        tmp_dir=ctx.tmp_dir,
    )
