"""The curated schema: ImportSchema, parsing with file:line errors, inference and a readable diff.

TFX re-infers the schema on every run (SchemaGen), so it accepts whatever arrives. headwater infers once
(``headwater schema infer``), keeps the ``schema.pbtxt`` in the project, imports it with
``ImportSchema(schema_file=...)`` (its content is in the cache key) and shows what new statistics would
change (``headwater schema diff``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from headwater.components._data import write_schema
from headwater.components.api import Component, Node, Output, component
from headwater.components.errors import InputDataError, ParameterError
from headwater.metadata import types

__all__ = ["ImportSchema", "diff_schema", "infer_schema", "parse_schema_file", "schema_features"]


def parse_schema_file(path: str | Path) -> Any:
    """A tensorflow-metadata ``Schema`` from a text file; a bad file names its line and column."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(
            f"schema file {file} does not exist; create it from a run's statistics with "
            "`headwater schema infer` (or fix the path)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"schema file {file} cannot be read: {exc}") from None
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as exc:
        line, column = exc.GetLine(), exc.GetColumn()
        message = str(exc).split(" : ", 1)[-1] if " : " in str(exc) else str(exc)
        where = f"{file}:{line}:{column}" if line else str(file)
        raise ParameterError(
            f"schema file {where}: {message} — it must be a tensorflow-metadata Schema in text format; fix "
            "that line, or recreate the file with `headwater schema infer`"
        ) from None


def schema_features(schema: Any) -> list[str]:
    return [f.name for f in schema.feature]


def _fingerprint(parameters: dict[str, Any]) -> str:
    path = parameters.get("schema_file")
    try:
        return hashlib.sha256(Path(str(path)).read_bytes()).hexdigest()
    except OSError:
        return ""


class _ImportSchemaComponent(Component):
    """``ImportSchema`` parses the file when the node is declared: a bad schema fails before anything runs."""

    def __call__(self, **kwargs: Any) -> Node:
        path = kwargs.get("schema_file")
        if isinstance(path, (str, Path)):
            try:
                import tensorflow_metadata  # noqa: F401  (the ML extra)
            except ImportError:  # pragma: no cover - a core install declaring an ML pipeline
                pass
            else:
                parse_schema_file(path)
            kwargs["schema_file"] = str(path)
        return super().__call__(**kwargs)


@component(version="1", input_fingerprint=_fingerprint)
def ImportSchema(*, schema: Output[types.Schema], schema_file: str) -> None:
    """Import a curated ``schema.pbtxt`` kept in the project as a ``Schema`` artifact (TFX's ImportSchemaGen)."""
    write_schema(parse_schema_file(schema_file), schema)
    schema.custom_properties["schema_file"] = schema_file
    schema.custom_properties["schema_sha256"] = _fingerprint({"schema_file": schema_file})


ImportSchema = _ImportSchemaComponent(ImportSchema.fn, ImportSchema.spec, input_fingerprint=_fingerprint)


def infer_schema(statistics: Any) -> Any:
    """A schema inferred by TFDV from one split's ``DatasetFeatureStatisticsList``."""
    import tensorflow_data_validation as tfdv

    return tfdv.infer_schema(statistics)


def _type_name(feature: Any) -> str:
    from tensorflow_metadata.proto.v0 import schema_pb2

    return str(schema_pb2.FeatureType.Name(feature.type))


def _domain(schema: Any, feature: Any) -> set[str] | None:
    if feature.HasField("string_domain"):
        return set(feature.string_domain.value)
    if feature.HasField("domain"):
        for dom in schema.string_domain:
            if dom.name == feature.domain:
                return set(dom.value)
    return None


def _bounds(feature: Any) -> tuple[float | None, float | None] | None:
    for name in ("int_domain", "float_domain"):
        if feature.HasField(name):
            dom = getattr(feature, name)
            return (dom.min if dom.HasField("min") else None, dom.max if dom.HasField("max") else None)
    return None


def _listed(values: Iterable[str]) -> str:
    items = sorted(values)
    shown = ", ".join(repr(v) for v in items[:8])
    return shown + (f" and {len(items) - 8} more" if len(items) > 8 else "")


def diff_schema(curated: Any, statistics: Any) -> list[str]:
    """What ``statistics`` imply against ``curated``, one readable line per change (empty: nothing).

    ``+`` a feature in the data but not in the schema, ``-`` one in the schema but not in the data,
    ``~`` a changed type, presence, value list or range.
    """
    import tensorflow_data_validation as tfdv

    inferred = tfdv.infer_schema(statistics)
    proposed = tfdv.update_schema(curated, statistics)
    cur = {f.name: f for f in curated.feature}
    new = {f.name: f for f in inferred.feature}
    upd = {f.name: f for f in proposed.feature}
    lines = []
    for name in sorted(set(new) - set(cur)):
        lines.append(f"+ feature {name!r} ({_type_name(new[name])}): in the data, not in the schema")
    for name in sorted(set(cur) - set(new)):
        lines.append(f"- feature {name!r} ({_type_name(cur[name])}): in the schema, not in the data")
    for name in sorted(set(cur) & set(new)):
        old, got = cur[name], new[name]
        if old.type != got.type:
            lines.append(f"~ feature {name!r}: type {_type_name(old)} in the schema, {_type_name(got)} in the data")
        old_dom, new_dom = _domain(curated, old), _domain(proposed, upd[name]) if name in upd else None
        if old_dom is not None and new_dom is not None and new_dom - old_dom:
            lines.append(f"~ feature {name!r}: new values {_listed(new_dom - old_dom)} not in the schema's domain")
        if old.presence.min_fraction and got.presence.min_fraction < old.presence.min_fraction:
            lines.append(
                f"~ feature {name!r}: present in {got.presence.min_fraction:.0%} of examples, the schema requires "
                f"{old.presence.min_fraction:.0%}"
            )
        bounds = _bounds(old)
        if bounds is not None:
            low, high = _stat_range(statistics, name)
            if low is not None and bounds[0] is not None and low < bounds[0]:
                lines.append(f"~ feature {name!r}: minimum {low:g} is below the schema's min {bounds[0]:g}")
            if high is not None and bounds[1] is not None and high > bounds[1]:
                lines.append(f"~ feature {name!r}: maximum {high:g} is above the schema's max {bounds[1]:g}")
    return lines


def _stat_range(statistics: Any, name: str) -> tuple[float | None, float | None]:
    for dataset in statistics.datasets:
        for feat in dataset.features:
            path = ".".join(feat.path.step) if feat.HasField("path") else feat.name
            if path == name and feat.HasField("num_stats"):
                return feat.num_stats.min, feat.num_stats.max
    return None, None


def read_statistics_dir(uri: str, split: str | None = None) -> tuple[Any, str]:
    """Statistics of one split of an ExampleStatistics folder (default: ``train``, else the first split)."""
    from headwater.components.validation._stats import STATS_FILE, read_statistics

    folder = Path(uri)
    splits = sorted(p.name[len("Split-"):] for p in folder.glob("Split-*") if (p / STATS_FILE).is_file())
    if not splits:
        raise InputDataError(
            f"{uri} holds no Split-<name>/{STATS_FILE}; give the folder of an ExampleStatistics artifact"
        )
    chosen = split or ("train" if "train" in splits else splits[0])
    if chosen not in splits:
        raise InputDataError(f"{uri} has no statistics for split {chosen!r}; its splits are {', '.join(splits)}")
    return read_statistics(uri, chosen), chosen
