"""The Ingest component and its executor as a plain function (:func:`run_ingest`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.components import _data, _runtime
from headwater.components.api import ExecutionContext, Input, Output
from headwater.components.errors import InputDataError
from headwater.components.ingest._engines import run_beam, run_local
from headwater.components.ingest._plan import PlanSettings, write_schema
from headwater.components.ingest._read import ReadOptions, format_of
from headwater.components.ingest._resolve import fingerprint_resolved, ingest_input_fingerprint, resolve_input
from headwater.metadata import types

__all__ = ["DEFAULT_SPLIT_RATIOS", "Ingest", "IngestOptions", "run_ingest"]

DEFAULT_SPLIT_RATIOS: Mapping[str, float] = {"train": 2, "eval": 1}
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class IngestOptions:
    """Everything one Ingest execution is told: the component's parameters (see :data:`Ingest`), the
    previous span's schema (a parsed ``Schema`` proto) and the Beam arguments. Built once, passed down."""

    input_base: str
    pattern: str | None = None
    splits: Mapping[str, str] | None = None
    split_ratios: Mapping[str, float] | None = None
    partition_feature: str | None = None
    span: int | None = None
    version: int | None = None
    format: str = "auto"
    label: str | None = None
    skip_malformed: bool = False
    column_types: Mapping[str, str] | None = None
    delimiter: str = ","
    null_values: Sequence[str] | None = None
    max_string_domain_size: int = 100
    allow_non_finite: bool = False
    previous_schema: Any = None
    engine: str = "auto"
    beam_args: Sequence[str] = field(default=())

    def read_options(self) -> ReadOptions:
        return ReadOptions(
            format=self.format,
            delimiter=self.delimiter,
            null_values=tuple(self.null_values) if self.null_values is not None else None,
            column_types=dict(self.column_types or {}),
            skip_malformed=self.skip_malformed,
            allow_non_finite=self.allow_non_finite,
        )

    def split_settings(self) -> tuple[list[str], list[float]]:
        """The split names and their weights (pre-split folders weigh 1 each), checked."""
        if self.splits:
            if self.split_ratios:
                raise InputDataError("Ingest got splits= (pre-split folders) and split_ratios=; use one of them")
            return list(self.splits), [1.0] * len(self.splits)
        chosen = dict(self.split_ratios or DEFAULT_SPLIT_RATIOS)
        if not chosen or any((not isinstance(v, (int, float))) or v <= 0 for v in chosen.values()):
            raise InputDataError(
                f"split_ratios {chosen!r} is invalid: give each split a positive weight, e.g. "
                "{'train': 2, 'eval': 1}"
            )
        for name in chosen:
            if not _SPLIT_NAME.match(name):
                raise InputDataError(f"split name {name!r} is invalid: use letters, digits, '_' and '-'")
        return list(chosen), [float(v) for v in chosen.values()]


def run_ingest(
    examples: types.Examples, schema: types.Schema, options: IngestOptions | None = None, /, **parameters: Any
) -> None:
    """The Ingest executor as a plain function: ``run_ingest(examples, schema, IngestOptions(...))``, or
    with the options as keyword arguments (``run_ingest(examples, schema, input_base="data")``)."""
    if options is None:
        options = IngestOptions(**parameters)
    elif parameters:
        raise TypeError(f"run_ingest got IngestOptions and keyword arguments {sorted(parameters)}; give one")
    for name, kind in (options.column_types or {}).items():
        if kind not in ("int", "float", "string"):
            raise InputDataError(
                f"column_types[{name!r}] = {kind!r} is unknown; use 'int', 'float' or 'string'"
            )
    resolved = resolve_input(options.input_base, options.pattern, options.splits, options.span, options.version)
    names, ratios = options.split_settings()
    opts = options.read_options()
    for f in resolved.all_files():
        format_of(f, options.format)
    settings = PlanSettings(
        split_names=tuple(names),
        ratios=tuple(ratios),
        partition_feature=options.partition_feature,
        label=options.label,
        previous_schema=options.previous_schema,
        domain_limit=options.max_string_domain_size,
    )
    chosen_engine = _runtime.choose_engine(options.engine, options.beam_args, component="Ingest")
    if chosen_engine == "beam":
        plan, counts = run_beam(resolved, opts, settings, examples.path, schema.path, options.beam_args)
    else:
        plan, counts = run_local(resolved, opts, settings, examples.path)
        write_schema(plan, schema.path)
    empty = [n for n in names if counts.get(n, 0) == 0]
    if empty:
        raise InputDataError(
            f"split {empty[0]!r} received no examples out of {sum(counts.values())} rows from "
            f"{len(resolved.all_files())} file(s) (split ratios {dict(zip(names, ratios, strict=True))}); "
            "add data, or change split_ratios / partition_feature"
        )
    examples.properties["span"] = resolved.span
    if resolved.version is not None:
        examples.properties["version"] = resolved.version
    examples.properties["split_names"] = json.dumps(names)
    examples.custom_properties.update({
        "file_format": "tfrecords_gzip",
        "payload_format": "FORMAT_TF_EXAMPLE",
        "input_fingerprint": fingerprint_resolved(resolved),
        "input_files": len(resolved.all_files()),
        "num_examples": {n: int(counts.get(n, 0)) for n in names},
        "engine": chosen_engine,
    })
    if options.skip_malformed:
        examples.custom_properties["skipped_rows"] = int(plan.skipped)
    schema.custom_properties["num_features"] = len(plan.columns) if plan.columns else 0


@_runtime.package_component(
    "headwater.components.ingest",
    input_fingerprint=ingest_input_fingerprint,
    # What the first execution in a fresh worker would otherwise import (pyarrow.dataset pulls in pandas).
    warm_imports=("pyarrow.csv", "pyarrow.parquet", "pyarrow.dataset", "tfx_bsl.coders.example_coder",
                  "tensorflow_metadata.proto.v0.schema_pb2", "google_crc32c", "headwater.components.ingest"),
)
def Ingest(
    *,
    examples: Output[types.Examples],
    schema: Output[types.Schema],
    input_base: str,
    previous_schema: Input[types.Schema] | None = None,
    pattern: str | None = None,
    splits: dict[str, str] | None = None,
    split_ratios: dict[str, float] | None = None,
    partition_feature: str | None = None,
    span: int | None = None,
    version: int | None = None,
    format: str = "auto",
    label: str | None = None,
    skip_malformed: bool = False,
    column_types: dict[str, str] | None = None,
    delimiter: str = ",",
    null_values: list[str] | None = None,
    max_string_domain_size: int = 100,
    allow_non_finite: bool = False,
    engine: str = "auto",
    ctx: ExecutionContext,
) -> None:
    """Read CSV / Parquet files into split Examples (TFX layout) and infer their Schema."""
    options = IngestOptions(
        input_base=input_base, pattern=pattern, splits=splits, split_ratios=split_ratios,
        partition_feature=partition_feature, span=span, version=version, format=format, label=label,
        skip_malformed=skip_malformed, column_types=column_types, delimiter=delimiter, null_values=null_values,
        max_string_domain_size=max_string_domain_size, allow_non_finite=allow_non_finite, engine=engine,
        beam_args=tuple(ctx.beam_args),
        previous_schema=_data.read_schema(previous_schema) if previous_schema is not None else None,
    )
    run_ingest(examples, schema, options)
