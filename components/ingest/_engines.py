"""Ingest's engines: local (pyarrow and a thread pool, no Beam) and Apache Beam (one task per file).

Both read, profile, plan, conform, split and encode the same way and write the same examples.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from headwater.components import _data, _runtime
from headwater.components.errors import InputDataError
from headwater.components.ingest._encode import assign_splits, conform
from headwater.components.ingest._plan import Plan, PlanSettings, make_plan, plan_from_schema, write_schema
from headwater.components.ingest._read import FileProfile, ReadOptions, _Table, profile_table, read_file
from headwater.components.ingest._resolve import ResolvedInput

__all__ = ["run_beam", "run_local"]

_ROWS_PER_SHARD = 1_000_000
_GZIP_LEVEL = 1


def _write_shard(table: Any, path: str) -> int:
    from tfx_bsl.coders import example_coder

    encoder = example_coder.RecordBatchToExamplesEncoder()
    with _data.GzipTFRecordWriter(path, level=_GZIP_LEVEL) as writer:
        for start in range(0, table.num_rows, _runtime.ENCODE_BATCH_ROWS):
            writer.write(_runtime.encode_examples(table.slice(start, _runtime.ENCODE_BATCH_ROWS), encoder))
        return writer.records


def _write_splits_local(by_split: Mapping[str, Sequence[Any]], examples_uri: str) -> dict[str, int]:
    """Write every split, sharded every ``_ROWS_PER_SHARD`` rows; shards are written by a thread pool.

    Encoding (tfx_bsl) and gzip compression release the GIL for much of their work, so shards written
    side by side use the machine's cores.
    """
    import pyarrow as pa

    jobs: list[tuple[str, Any, str]] = []
    for name, tables in by_split.items():
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        folder = _data.split_uri(examples_uri, name)
        _data.makedirs(folder)
        shards = max(1, math.ceil(table.num_rows / _ROWS_PER_SHARD))
        per = math.ceil(table.num_rows / shards)
        for i in range(shards):
            file = f"{_data.EXAMPLES_FILE_PREFIX}-{i:05d}-of-{shards:05d}{_data.EXAMPLES_FILE_SUFFIX}"
            jobs.append((name, table.slice(i * per, per), _data.join(folder, file)))
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        written = [_write_shard(table, path) for _, table, path in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            written = list(pool.map(lambda job: _write_shard(job[1], job[2]), jobs))
    counts = {name: 0 for name in by_split}
    for (name, _, _), n in zip(jobs, written, strict=True):
        counts[name] += n
    return counts


def run_local(resolved: ResolvedInput, opts: ReadOptions, settings: PlanSettings,
              examples_uri: str) -> tuple[Plan, dict[str, int]]:
    """Read, plan, split and write in this process; returns the plan and the examples per split."""
    import pyarrow as pa

    tabs: list[tuple[str | None, _Table]] = []
    profiles = []
    for split, files in resolved.files.items():
        for path in files:
            tab = read_file(path, split, opts)
            tabs.append((split, tab))
            profiles.append(profile_table(tab, split, settings.domain_limit))
    plan = make_plan(profiles, settings)
    by_split: dict[str, list[Any]] = {name: [] for name in plan.split_names}
    while tabs:
        split, tab = tabs.pop(0)  # drop each raw table once it is converted
        table = conform(tab.table, plan)
        if split is not None:
            by_split[split].append(table)
            continue
        assignment = assign_splits(table, plan)
        for i, name in enumerate(plan.split_names):
            by_split[name].append(table.filter(pa.array(assignment == i)))
    return plan, _write_splits_local(by_split, examples_uri)


# ------------------------------------------------------------------------------------------- Beam engine
def _beam_profile(element: tuple[str | None, str], opts: ReadOptions, domain_limit: int) -> FileProfile:
    split, path = element
    return profile_table(read_file(path, split, opts), split, domain_limit)


def _beam_plan(profiles: list[FileProfile], settings: PlanSettings, file_order: Sequence[str]) -> Plan:
    order = {p: i for i, p in enumerate(file_order)}
    profiles = sorted(profiles, key=lambda p: order.get(p.path, len(order)))  # file order, as locally
    return make_plan(profiles, settings)


def _beam_encode(
    element: tuple[str | None, str], opts: ReadOptions, plan: Plan
) -> Iterator[tuple[int, bytes]]:
    from apache_beam.metrics import Metrics

    split, path = element
    tab = read_file(path, split, opts)
    Metrics.counter("headwater.ingest", "skipped/").inc(tab.skipped)
    table = conform(tab.table, plan)
    if split is not None:
        index = plan.split_names.index(split)
        records = _runtime.encode_examples(table)
        Metrics.counter("headwater.ingest", f"examples/{split}").inc(len(records))
        for record in records:
            yield index, record
        return
    assignment = assign_splits(table, plan)
    records = _runtime.encode_examples(table)
    for i, name in enumerate(plan.split_names):
        Metrics.counter("headwater.ingest", f"examples/{name}").inc(int((assignment == i).sum()))
    for index, record in zip(assignment.tolist(), records, strict=True):
        yield index, record


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
    plan = (
        files
        | "Profile" >> beam.Map(_beam_profile, opts, settings.domain_limit)
        | "AllProfiles" >> beam.combiners.ToList()
        | "Plan" >> beam.Map(_beam_plan, settings, [p for _, p in elements])
    )
    _ = plan | "WriteSchema" >> beam.Map(write_schema, schema_uri)
    records = files | "Encode" >> beam.FlatMap(_beam_encode, opts, beam.pvalue.AsSingleton(plan))
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

