"""Statistics (TFX's StatisticsGen): TFDV statistics of every split, on Beam; and the artifact layout.

``ExampleStatistics`` holds ``Split-<name>/FeatureStats.pb`` (a binary ``DatasetFeatureStatisticsList``),
as TFX writes it, so TFX tools read headwater's statistics and the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from headwater.components._data import examples_file_pattern, join, split_names
from headwater.components._validated import blocked_by_validation
from headwater.components.api import ExecutionContext, Input, Output, ResolverContext, component, resolver
from headwater.components.errors import InputDataError
from headwater.components.resolvers import _live, _outputs_of, _producers
from headwater.metadata import types
from headwater.metadata.artifact import Artifact

__all__ = [
    "STATS_FILE",
    "PreviousStatistics",
    "Statistics",
    "read_statistics",
    "statistics_path",
    "statistics_splits",
]

STATS_FILE = "FeatureStats.pb"


def statistics_path(uri: str, split: str) -> str:
    """``<uri>/Split-<split>/FeatureStats.pb``."""
    return join(join(uri, f"Split-{split}"), STATS_FILE)


def statistics_splits(stats: Artifact) -> list[str]:
    return split_names(stats)


def read_statistics(uri: str, split: str) -> Any:
    """The ``DatasetFeatureStatisticsList`` of one split of an ExampleStatistics folder."""
    from headwater.components._data import open_file
    from tensorflow_metadata.proto.v0 import statistics_pb2

    path = statistics_path(uri, split)
    try:
        with open_file(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputDataError(
            f"statistics file {path} does not exist; an ExampleStatistics artifact holds Split-<name>/{STATS_FILE} "
            "per split (made by Statistics)"
        ) from None
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    try:
        stats.ParseFromString(data)
    except Exception as exc:  # DecodeError
        raise InputDataError(f"statistics file {path} is not a DatasetFeatureStatisticsList: {exc}") from None
    return stats


def beam_options(beam_args: Sequence[str]) -> Any:
    """Beam options from ``beam_args``; without a runner: the in-memory direct runner, one worker."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args = ["--direct_running_mode=in_memory", "--direct_num_workers=1", *args]
    return PipelineOptions(args)


def compute_statistics(examples_uri: str, splits: Sequence[str], output_uri: str, *, schema: Any = None,
                       beam_args: Sequence[str] = ()) -> None:
    """One Beam pipeline: for each split, read the TFRecords and write TFDV's statistics."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.public import tfxio

    options = tfdv.StatsOptions(schema=schema) if schema is not None else tfdv.StatsOptions()
    with beam.Pipeline(options=beam_options(beam_args)) as pipeline:
        for split in splits:
            source = tfxio.TFExampleRecord(
                file_pattern=examples_file_pattern(examples_uri, split),
                telemetry_descriptors=["headwater", "Statistics"],
            )
            _ = (
                pipeline
                | f"Read[{split}]" >> source.BeamSource()
                | f"Stats[{split}]" >> tfdv.GenerateStatistics(options)
                | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(statistics_path(output_uri, split))
            )


def compute_statistics_local(examples_uri: str, splits: Sequence[str], output_uri: str, *,
                             schema: Any = None, batch_size: int = 65536) -> None:
    """TFDV's statistics of each split, in this process (no Beam pipeline to start), streaming: each batch of
    ``batch_size`` examples is added to TFDV's combiner accumulators (bounded sketches: quantiles, top-k),
    so memory is bounded by the batch, not by the split."""
    import tensorflow_data_validation as tfdv
    from headwater.components._data import examples_batches, open_file
    from tensorflow_data_validation.statistics import stats_impl

    options = tfdv.StatsOptions(schema=schema) if schema is not None else tfdv.StatsOptions()
    for split in splits:
        generators = stats_impl.get_generators(options, in_memory=True)
        accumulators = [g.create_accumulator() for g in generators]
        rows = 0
        for batch in examples_batches(examples_uri, split, batch_size=batch_size):
            if not batch.num_rows:
                continue
            rows += batch.num_rows
            accumulators = [g.add_input(a, batch) for g, a in zip(generators, accumulators, strict=True)]
        if not rows:
            raise InputDataError(f"Examples at {examples_uri}: split {split!r} holds no example")
        stats = stats_impl.extract_statistics_output(accumulators, generators)
        with open_file(statistics_path(output_uri, split), "wb") as f:
            f.write(stats.SerializeToString())


@component(version="1", warm_imports=("tensorflow_data_validation",))
def Statistics(
    *,
    examples: Input[types.Examples],
    schema: Input[types.Schema] | None = None,
    statistics: Output[types.ExampleStatistics],
    exclude_splits: list[str] | None = None,
    engine: str = "auto",
    ctx: ExecutionContext,
) -> None:
    """TFDV statistics of every split of ``examples`` (``exclude_splits`` left out).

    ``engine="beam"`` runs TFDV's ``GenerateStatistics`` on Beam with the node's ``beam_args`` (a
    distributed runner); ``"local"`` computes them in this process; ``"auto"`` (default) is Beam when
    ``beam_args`` name a runner other than the direct one, else local (no pipeline start-up)."""
    from headwater.components._data import makedirs, read_schema
    from headwater.components._runtime import choose_engine  # the one --runner parsing

    splits = [s for s in split_names(examples) if s not in set(exclude_splits or [])]
    if not splits:
        raise InputDataError(
            f"node {ctx.node_id!r}: every split of {examples.uri} is excluded ({exclude_splits}); keep one"
        )
    for split in splits:
        makedirs(join(statistics.path, f"Split-{split}"))
    schema_proto = read_schema(schema) if schema is not None else None
    if choose_engine(engine, ctx.beam_args, component="Statistics") == "beam":
        compute_statistics(examples.path, splits, statistics.path, schema=schema_proto, beam_args=ctx.beam_args)
    else:
        compute_statistics_local(examples.path, splits, statistics.path, schema=schema_proto)
    from pathlib import Path

    from headwater.components.validation.report import REPORT_FILE, render_html

    Path(statistics.path, REPORT_FILE).write_text(render_html(statistics.path))
    statistics.properties["split_names"] = json.dumps(splits)
    span = examples.properties.get("span")
    if span is not None:
        statistics.properties["span"] = int(span)


@resolver(outputs={"statistics": types.ExampleStatistics})
def PreviousStatistics(
    ctx: ResolverContext,
    statistics: Input[types.ExampleStatistics],
) -> dict[str, list[Artifact]]:
    """The statistics of the previous span: among the LIVE ExampleStatistics the same node wrote, the
    newest one of the highest span below this one's whose data no Validate blocked (empty on the first
    span). The channel orders this node after the Statistics node of this run."""
    if statistics is None or statistics.id is None:
        return {"statistics": []}
    current = int(statistics.properties.get("span") or 0)
    ids: set[int] = set()
    for node_id, key in _producers(ctx, [statistics.id]):
        ids |= _outputs_of(ctx, node_id, key)
    ids.discard(statistics.id)
    ids -= blocked_by_validation(ctx.store, ids)  # drift is measured against data that passed
    arts = [ctx.store.from_proto(p) for p in _live(ctx.store.mlmd.get_artifacts_by_id(sorted(ids)))]
    earlier = [a for a in arts if a.type_name == types.ExampleStatistics.TYPE_NAME
               and int(a.properties.get("span") or 0) < current]
    if not earlier:
        return {"statistics": []}
    return {"statistics": [max(earlier, key=lambda a: (int(a.properties.get("span") or 0), a.id or 0))]}
