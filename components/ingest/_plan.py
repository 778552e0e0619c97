"""The plan for all files of one Ingest: unified column kinds, the inferred schema, the split names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headwater.components import _data
from headwater.components.errors import InputDataError
from headwater.components.ingest._read import FileProfile

__all__ = ["Plan", "PlanSettings", "make_plan", "plan_from_schema", "write_schema"]

_KIND_NAMES = {"int": "INT", "float": "FLOAT", "bytes": "BYTES"}


@dataclass(frozen=True)
class Plan:
    """What every file is converted to: column order and kinds; the schema text; the split names."""

    columns: tuple[str, ...]
    kinds: Mapping[str, str]
    schema_text: str
    split_names: tuple[str, ...]
    ratios: tuple[float, ...]
    partition_feature: str | None
    rows: int
    skipped: int


def _previous_kinds(previous_schema: Any) -> dict[str, str]:
    if previous_schema is None:
        return {}
    from tensorflow_metadata.proto.v0 import schema_pb2

    names = {schema_pb2.INT: "int", schema_pb2.FLOAT: "float", schema_pb2.BYTES: "bytes"}
    return {f.name: names[f.type] for f in previous_schema.feature if f.type in names}


@dataclass(frozen=True)
class PlanSettings:
    """What the plan is made with besides the files' profiles (picklable for Beam)."""

    split_names: tuple[str, ...]
    ratios: tuple[float, ...]
    partition_feature: str | None = None
    label: str | None = None
    previous_schema: Any = None  # tensorflow_metadata Schema of earlier spans
    domain_limit: int = 100  # max_string_domain_size


def make_plan(profiles: Sequence[FileProfile], settings: PlanSettings) -> Plan:
    """Unify column types over every file, check them, and infer the schema."""
    split_names, ratios = settings.split_names, settings.ratios
    partition_feature, label, domain_limit = settings.partition_feature, settings.label, settings.domain_limit
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    order: list[str] = []
    for p in profiles:
        order.extend(c for c in p.columns if c not in order)
    prev = _previous_kinds(settings.previous_schema)
    kinds: dict[str, str] = {}
    for name in order:
        seen = [(p, p.columns[name]) for p in profiles if name in p.columns]
        real = [(p, c) for p, c in seen if c.kind != "null"]
        kset = {c.kind for _, c in real}
        if not kset:
            kind = prev.get(name, "bytes")
        elif len(kset) == 1:
            kind = next(iter(kset))
        elif kset == {"int", "float"}:
            kind = "float"
        elif kset == {"int_list", "float_list"}:
            kind = "float_list"
        else:
            text = next((p, c) for p, c in real if c.kind.startswith("bytes"))
            other = next((p, c) for p, c in real if not c.kind.startswith("bytes"))
            example = f", e.g. line {text[1].example[0]}: {text[1].example[1]!r}" if text[1].example else ""
            raise InputDataError(
                f"column {name!r} changes type between files: {_describe(other[1].kind)} in {other[0].path} "
                f"but {_describe(text[1].kind)} in {text[0].path}{example}. A column keeps one type across "
                f"files and spans: fix the data, or force a type with column_types={{{name!r}: 'string'}}"
            )
        if name in prev and prev[name] != kind.removesuffix("_list") and kset:
            before = prev[name]
            now = kind.removesuffix("_list")
            offending = next((p, c) for p, c in real if c.kind.removesuffix("_list") == now)
            if before == "float" and now == "int":
                kind = kind.replace("int", "float")
            elif before == "int" and now == "float" and all(c.integral for _, c in real):
                kind = kind.replace("float", "int")
            else:
                example = ""
                if offending[1].example:
                    example = f" (line {offending[1].example[0]}: {offending[1].example[1]!r})"
                elif now == "float":
                    example = " (it now has fractional values)"
                raise InputDataError(
                    f"column {name!r} was {_KIND_NAMES[before]} in the previous schema but is "
                    f"{_KIND_NAMES[now]} in {offending[0].path}{example}. A feature keeps its type across "
                    "spans, or models trained on earlier spans break: fix the data, or, if the change is "
                    "intended, ingest without previous_schema and retrain from this span"
                )
        kinds[name] = kind

    rows = sum(p.rows for p in profiles)
    if label is not None:
        if label not in kinds:
            raise InputDataError(
                f"label column {label!r} is not in the input ({', '.join(p.path for p in profiles[:3])}); "
                f"its columns are {order}. Pass the right label= (or none)"
            )
        for p in profiles:
            col = p.columns.get(label)
            if col is None or col.nulls == col.rows:
                raise InputDataError(
                    f"file {p.path}: label column {label!r} has no values (all {p.rows} rows are missing "
                    "it); every example needs a label — fill the column, fix the label= parameter, or remove "
                    "the file"
                )
    if partition_feature is not None and partition_feature not in kinds:
        raise InputDataError(
            f"partition_feature {partition_feature!r} is not a column of the input; columns are {order}"
        )

    schema = schema_pb2.Schema()
    ptypes = {"int": schema_pb2.INT, "float": schema_pb2.FLOAT, "bytes": schema_pb2.BYTES}
    for name in order:
        kind = kinds[name]
        cols = [p.columns[name] for p in profiles if name in p.columns]
        present = sum(c.rows - c.nulls for c in cols)
        feature = schema.feature.add(name=name, type=ptypes[kind.removesuffix("_list")])
        feature.presence.min_count = 1 if present else 0
        if present == rows and rows:
            feature.presence.min_fraction = 1.0
        if kind.endswith("_list"):
            mins = [c.min_count for c in cols if c.min_count is not None]
            maxs = [c.max_count for c in cols if c.max_count is not None]
            if mins:
                feature.value_count.min = min(mins)
                feature.value_count.max = max(maxs)
        elif present == rows and rows:
            feature.shape.dim.add(size=1)
        else:
            feature.value_count.min = 1
            feature.value_count.max = 1
        if kind == "bytes":
            uniques: set[bytes] | None = set()
            for c in cols:
                if c.uniques is None or uniques is None:
                    uniques = None
                    break
                uniques |= c.uniques
            if uniques and len(uniques) <= domain_limit:
                feature.domain = name
                domain = schema.string_domain.add(name=name)
                domain.value.extend(sorted(u.decode("utf-8", "replace") for u in uniques))
    return Plan(
        columns=tuple(order),
        kinds=kinds,
        schema_text=text_format.MessageToString(schema),
        split_names=tuple(split_names),
        ratios=tuple(ratios),
        partition_feature=partition_feature,
        rows=rows,
        skipped=sum(p.skipped for p in profiles),
    )


def _describe(kind: str) -> str:
    base = kind.removesuffix("_list")
    text = {"int": "numbers (INT)", "float": "numbers (FLOAT)", "bytes": "text (BYTES)"}[base]
    return f"lists of {text}" if kind.endswith("_list") else text


def write_schema(plan: Plan, schema_uri: str) -> None:
    """Write the plan's schema as the Schema artifact's ``schema.pbtxt``."""
    _data.makedirs(schema_uri)
    with _data.open_file(_data.schema_path(schema_uri), "wb") as f:
        f.write(plan.schema_text.encode("utf-8"))


def plan_from_schema(schema: Any, settings: PlanSettings, skipped: int) -> Plan:
    """The plan again from the schema it wrote (small; no second read of the data)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    kinds = {v: k for k, v in _KIND_NAMES.items()}

    out = {}
    for f in schema.feature:
        out[f.name] = kinds[schema_pb2.FeatureType.Name(f.type)]
    return Plan(tuple(out), out, text_format.MessageToString(schema), tuple(settings.split_names),
                tuple(settings.ratios), settings.partition_feature, 0, skipped)

