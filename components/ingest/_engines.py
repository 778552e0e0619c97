"""Ingest's engines: local (pyarrow and writer processes, no Beam) and Apache Beam (one task per file).

Both stream every file in two passes (:mod:`._stream`: profile, then conform / split / encode chunk by
chunk), plan the same way and write the same examples.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from headwater.components import _data, _runtime
from headwater.components.errors import InputDataError
from headwater.components.ingest import _write
from headwater.components.ingest._encode import assign_splits, conform
from headwater.components.ingest._plan import Plan, PlanSettings, make_plan, plan_from_schema, write_schema
from headwater.components.ingest._read import ReadOptions
from headwater.components.ingest._resolve import ResolvedInput
from headwater.components.ingest._stream import FileScan, checked_chunks, scan_file

__all__ = ["run_beam", "run_local"]

def _expected_rows(scans: Sequence[FileScan], plan: Plan) -> dict[str, float]:
    """Rows each split will get (exact for pre-split folders, by the split ratios for hash-splitting)."""
    expected = {name: 0.0 for name in plan.split_names}
    total = float(sum(plan.ratios))
    for scan in scans:
        if scan.split is not None:
            expected[scan.split] += scan.profile.rows
            continue
        for name, ratio in zip(plan.split_names, plan.ratios, strict=True):
            expected[name] += scan.profile.rows * ratio / total
    return expected


def run_local(resolved: ResolvedInput, opts: ReadOptions, settings: PlanSettings, examples_uri: str,
              stats: dict[str, Any] | None = None) -> tuple[Plan, dict[str, int]]:
    """Read, plan, split and write, streaming: pass 1 profiles every file chunk by chunk, pass 2 conforms,
    splits and hands each chunk to the shard writers (writer processes for large inputs). Returns the plan
    and the examples per split; ``stats`` (if given) receives the chunk and writer figures."""
    files = [(split, path) for split, paths in resolved.files.items() for path in paths]
    scans = [scan_file(path, split, opts, settings.domain_limit) for split, path in files]
    plan = make_plan([s.profile for s in scans], settings)
    size = sum(_data.file_info(path).size for _, path in files)
    workers = _write.writer_count() if size >= _write.POOL_MIN_BYTES else 1
    shards = _write.shard_counts(_expected_rows(scans, plan), workers)
    sink: Any = (_write.WriterPool(workers, examples_uri, plan.split_names, shards) if workers > 1
                 else _write.ShardWriters(examples_uri, plan.split_names, shards))
    chunk, largest = 0, 0
    try:
        for scan in scans:
            for table in checked_chunks(scan, opts):
                table = conform(table, plan)
                largest = max(largest, table.num_rows)
                target = (plan.split_names.index(scan.split) if scan.split is not None
                          else assign_splits(table, plan))
                sink.write(chunk, table, target)
                chunk += 1
        counts = sink.close()
    finally:
        if workers > 1:
            sink.stop()
    if stats is not None:
        stats.update(chunks=chunk, largest_chunk_rows=max(largest, sink.rows_seen), writers=workers,
                     shards=dict(shards))
    return plan, counts


# ------------------------------------------------------------------------------------------- Beam engine
def _beam_scan(element: tuple[str | None, str], opts: ReadOptions, domain_limit: int) -> FileScan:
    split, path = element
    return scan_file(path, split, opts, domain_limit)


def _beam_plan(scans: list[FileScan], settings: PlanSettings, file_order: Sequence[str]) -> Plan:
    order = {p: i for i, p in enumerate(file_order)}
    scans = sorted(scans, key=lambda s: order.get(s.path, len(order)))  # file order, as locally
    return make_plan([s.profile for s in scans], settings)


def _beam_encode(scan: FileScan, opts: ReadOptions, plan: Plan) -> Iterator[tuple[int, bytes]]:
    """One file's examples, chunk by chunk (pass 2 of :mod:`._stream`)."""
    from apache_beam.metrics import Metrics

    Metrics.counter("headwater.ingest", "skipped/").inc(scan.profile.skipped)
    for chunk in checked_chunks(scan, opts):
        table = conform(chunk, plan)
        records = _runtime.encode_examples(table)
        if scan.split is not None:
            index = plan.split_names.index(scan.split)
            Metrics.counter("headwater.ingest", f"examples/{scan.split}").inc(len(records))
            for record in records:
                yield index, record
            continue
        assignment = assign_splits(table, plan)
        for i, name in enumerate(plan.split_names):
            Metrics.counter("headwater.ingest", f"examples/{name}").inc(int((assignment == i).sum()))
        yield from zip(assignment.tolist(), records, strict=True)


def run_beam(resolved: ResolvedInput, opts: ReadOptions, settings: PlanSettings, examples_uri: str,
             schema_uri: str, beam_args: Sequence[str]) -> tuple[Plan, dict[str, int]]:
    """The same steps as an Apache Beam pipeline (writes the schema too); returns the plan and counts."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    elements = [(split, path) for split, files in resolved.files.items() for path in files]
    split_names = list(settings.split_names)

    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    files = pipeline | "Files" >> beam.Create(elements) | "Reshuffle" >> beam.Reshuffle()
    scans = files | "Scan" >> beam.Map(_beam_scan, opts, settings.domain_limit)
    plan = (
        scans
        | "AllScans" >> beam.combiners.ToList()
        | "Plan" >> beam.Map(_beam_plan, settings, [p for _, p in elements])
    )
    _ = plan | "WriteSchema" >> beam.Map(write_schema, schema_uri)
    records = scans | "Encode" >> beam.FlatMap(_beam_encode, opts, beam.pvalue.AsSingleton(plan))
    parts = records | "BySplit" >> beam.Partition(_split_of, len(split_names))
    for i, name in enumerate(split_names):
        folder = _data.split_uri(examples_uri, name)
        _ = (
            parts[i]
            | f"Records[{name}]" >> beam.Values()
            | f"Write[{name}]" >> beam.io.WriteToTFRecord(
                _data.join(folder, _data.EXAMPLES_FILE_PREFIX), file_name_suffix=_data.EXAMPLES_FILE_SUFFIX
            )
        )
    try:
        with _data.beam_dofn_spec_cache():
            result = pipeline.run()
            result.wait_until_finish()
    except Exception as exc:
        original = _find_input_error(exc)
        if original is not None:
            raise original from None
        raise
    counts = {name: 0 for name in split_names}
    skipped = 0
    for counter in result.metrics().query(MetricsFilter().with_namespace("headwater.ingest"))["counters"]:
        value = int(counter.committed if counter.committed is not None else counter.attempted)
        kind, _, name = counter.key.metric.name.partition("/")
        if kind == "examples":
            counts[name] += value
        elif kind == "skipped":
            skipped += value
    # The plan is small: rebuild it from the schema the pipeline wrote (no second read of the data).
    return plan_from_schema(_data.read_schema(schema_uri), settings, skipped), counts


def _split_of(element: tuple[int, bytes], _count: int) -> int:
    return element[0]


def _find_input_error(exc: BaseException) -> InputDataError | None:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InputDataError):
            return current
        current = current.__cause__ or current.__context__
    m = re.search(r"InputDataError: (.*?)(?: \[while running|$)", str(exc), re.S)
    return InputDataError(m.group(1).strip()) if m else None

