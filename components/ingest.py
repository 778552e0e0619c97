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
forces a type. A malformed row (wrong number of fields, or text in a numeric column) is an
:class:`~headwater.metadata.errors.InputDataError` naming the file and line, unless
``skip_malformed=True``: then it is dropped and counted in the Examples' ``skipped_rows`` custom
property. Empty files, header-only files, a column whose type differs between files or from
``previous_schema`` (the schema of earlier spans), and a ``label`` column without values are errors too.

**Engines.** ``engine="local"`` (the default unless ``beam_args`` name a non-direct runner) parses with
``pyarrow.csv`` (multi-threaded), encodes examples with tfx_bsl's C++ encoder and writes gzip TFRecords
directly — no Beam start-up, no TensorFlow import, which keeps small pipelines fast. ``engine="beam"``
runs the same steps as an Apache Beam pipeline (files are read in parallel, one task per file, then
examples are written with ``WriteToTFRecord``), so ``beam_args`` such as ``--runner=FlinkRunner`` or
``--runner=DataflowRunner`` send it to a cluster. Both engines produce the same examples in the same
splits.

**Caching.** The component's ``input_fingerprint`` lists the selected files with their sizes and
modification times (or the object store's checksum / generation), so changed or new data is a cache
miss and is ingested again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from headwater.components import _data, storage
from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.metadata import types
from headwater.metadata.errors import InputDataError

__all__ = [
    "DEFAULT_SPLIT_RATIOS",
    "Ingest",
    "ResolvedInput",
    "ingest_input_fingerprint",
    "resolve_input",
    "run_ingest",
]

DEFAULT_SPLIT_RATIOS: Mapping[str, float] = {"train": 2, "eval": 1}
_EXTENSIONS = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet")
_BUCKETS = 1_000_000
_BATCH_ROWS = 65_536
_ROWS_PER_SHARD = 1_000_000
_GZIP_LEVEL = 1
_NUMBER_RE = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_INT_RE = r"^\s*[-+]?\d+\s*$"
_KIND_NAMES = {"int": "INT", "float": "FLOAT", "bytes": "BYTES"}
_TOKEN_RE = re.compile(r"\{(SPAN|VERSION|YYYY|MM|DD)\}")


# =========================================================================================== file choice
@dataclass(frozen=True)
class ResolvedInput:
    """The files one Ingest execution reads: per split (``None`` = to be hash-split), span and version."""

    files: Mapping[str | None, tuple[str, ...]]
    span: int
    version: int | None
    patterns: Mapping[str | None, str]

    def all_files(self) -> list[str]:
        return [f for fs in self.files.values() for f in fs]


def _normalize(path: str) -> str:
    if _data.is_url(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{re.sub('/+', '/', rest).rstrip('/')}"
    return os.path.normpath(path) if path else path


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Regex for a glob pattern with span tokens: ``*`` stays inside one path segment."""
    out = []
    i = 0
    while i < len(pattern):
        m = _TOKEN_RE.match(pattern, i)
        ch = pattern[i]
        if m:
            token = m.group(1)
            width = {"YYYY": 4, "MM": 2, "DD": 2}.get(token)
            out.append(f"(?P<{token}>\\d{{{width}}})" if width else f"(?P<{token}>\\d+)")
            i = m.end()
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def _check_tokens(pattern: str) -> None:
    tokens = _TOKEN_RE.findall(pattern)
    for token in set(tokens):
        if tokens.count(token) > 1:
            raise InputDataError(f"input pattern {pattern!r} holds {{{token}}} more than once; use it once")
    has_date = any(t in tokens for t in ("YYYY", "MM", "DD"))
    if has_date and not all(t in tokens for t in ("YYYY", "MM", "DD")):
        raise InputDataError(f"input pattern {pattern!r}: a date needs all of {{YYYY}}, {{MM}} and {{DD}}")
    if has_date and "SPAN" in tokens:
        raise InputDataError(
            f"input pattern {pattern!r} holds both {{SPAN}} and a date; the date is the span — use one"
        )
    if "VERSION" in tokens and not (has_date or "SPAN" in tokens):
        raise InputDataError(
            f"input pattern {pattern!r} holds {{VERSION}} without {{SPAN}} or a date; versions number the "
            "files of one span — add {SPAN} (or {YYYY}{MM}{DD}) to the pattern"
        )


def _match_files(full_pattern: str) -> list[tuple[str, int | None, int | None]]:
    """(path, span, version) of every data file matching ``full_pattern``."""
    _check_tokens(full_pattern)
    glob = _TOKEN_RE.sub("*", full_pattern)
    regex = _pattern_regex(full_pattern)
    found = []
    for path in _data.glob_files(glob):
        m = regex.match(path)
        if not m:
            continue
        groups = m.groupdict()
        span: int | None = None
        if groups.get("SPAN") is not None:
            span = int(groups["SPAN"])
        elif groups.get("YYYY") is not None:
            try:
                day = date(int(groups["YYYY"]), int(groups["MM"]), int(groups["DD"]))
            except ValueError:
                raise InputDataError(
                    f"file {path} matches input pattern {full_pattern!r} but its date "
                    f"{groups['YYYY']}-{groups['MM']}-{groups['DD']} is not a calendar date; rename it"
                ) from None
            span = (day - date(1970, 1, 1)).days
        version = int(groups["VERSION"]) if groups.get("VERSION") is not None else None
        found.append((path, span, version))
    return found


def _is_file(path: str) -> bool:
    if _data.is_url(path):
        return _data.glob_files(path) == [path]
    return os.path.isfile(path)


def _is_data_file(path: str) -> bool:
    return path.lower().endswith(_EXTENSIONS)


def resolve_input(
    input_base: str,
    pattern: str | None = None,
    splits: Mapping[str, str] | None = None,
    span: int | None = None,
    version: int | None = None,
) -> ResolvedInput:
    """Choose the files to ingest: the given (or latest) span, and within it the given (or latest) version."""
    if not input_base:
        raise InputDataError("Ingest needs input_base: a folder, file or URL holding the data")
    base = _normalize(input_base)
    patterns: dict[str | None, str] = {}
    if splits:
        if pattern:
            raise InputDataError(
                "Ingest got both pattern= and splits=; splits maps each split name to its own pattern — "
                "put the pattern there"
            )
        for name, split_pattern in splits.items():
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                raise InputDataError(f"split name {name!r} is invalid: use letters, digits, '_' and '-'")
            patterns[name] = _data.join(base, split_pattern)
    elif pattern:
        patterns[None] = _data.join(base, pattern)
    elif _TOKEN_RE.search(base) or any(c in base for c in "*?[") or _is_file(base):
        patterns[None] = base
    else:
        patterns[None] = _data.join(base, "*")

    matched: dict[str | None, list[tuple[str, int | None, int | None]]] = {}
    for key, full in patterns.items():
        found = [f for f in _match_files(full) if _is_data_file(f[0]) or f[0] == full]
        if not found:
            where = f" for split {key!r}" if key else ""
            raise InputDataError(
                f"no input files match {full!r}{where}; Ingest reads {', '.join(_EXTENSIONS)} files — check "
                "input_base and pattern (tokens: {SPAN}, {VERSION}, {YYYY}{MM}{DD})"
            )
        matched[key] = found

    spans_by_split = {k: {s for _, s, _ in v} for k, v in matched.items()}
    common = set.intersection(*spans_by_split.values())
    if span is None:
        if not common:
            per_split = {k: sorted(s, key=lambda x: -1 if x is None else x) for k, s in spans_by_split.items()}
            raise InputDataError(
                f"the splits have no span in common (spans per split: {per_split}); every split needs "
                "files for the span being ingested"
            )
        chosen_span = max(common, key=lambda x: -1 if x is None else x)
    else:
        if None in common:
            raise InputDataError(
                f"Ingest got span={span} but the input pattern has no {{SPAN}} or date token "
                f"({', '.join(p for p in patterns.values())}); add {{SPAN}} to the pattern or drop span="
            )
        if span not in common:
            available = sorted(x for x in common if x is not None)
            raise InputDataError(
                f"span {span} not found under {input_base!r} (available spans: {available or 'none'}); "
                "ingest one of those, or omit span= for the latest"
            )
        chosen_span = span

    files: dict[str | None, tuple[str, ...]] = {}
    versions = {v for fs in matched.values() for _, s, v in fs if s == chosen_span}
    chosen_version: int | None
    if version is not None:
        if version not in versions:
            raise InputDataError(
                f"version {version} of span {chosen_span} not found (available: "
                f"{sorted(v for v in versions if v is not None) or 'none'}); omit version= for the latest"
            )
        chosen_version = version
    else:
        chosen_version = None if versions == {None} else max(v for v in versions if v is not None)
    for key, fs in matched.items():
        chosen = tuple(sorted(p for p, s, v in fs if s == chosen_span and v == chosen_version))
        if not chosen:
            raise InputDataError(
                f"split {key!r} has no files for span {chosen_span} version {chosen_version}; "
                "every split needs files for the same span and version"
            )
        files[key] = chosen
    return ResolvedInput(files, int(chosen_span or 0), chosen_version, patterns)


def _param(parameters: Mapping[str, Any], key: str) -> Any:
    return parameters.get(key)


def ingest_input_fingerprint(parameters: dict[str, Any]) -> str:
    """Fingerprint of the files Ingest would read now: names, sizes, modification times / checksums.

    Runs in the orchestrator before the cache lookup, so new or changed files are a cache miss.
    """
    try:
        resolved = resolve_input(
            _param(parameters, "input_base") or "",
            _param(parameters, "pattern"),
            _param(parameters, "splits"),
            _param(parameters, "span"),
            _param(parameters, "version"),
        )
    except InputDataError as exc:
        # The executor reports the problem properly; never match a cached result meanwhile.
        return "unresolved:" + hashlib.sha256(f"{exc}{os.urandom(8).hex()}".encode()).hexdigest()
    return _fingerprint_resolved(resolved)


def _fingerprint_resolved(resolved: ResolvedInput) -> str:
    digest = hashlib.sha256()
    digest.update(f"span={resolved.span};version={resolved.version}\n".encode())
    for split, files in sorted(resolved.files.items(), key=lambda kv: kv[0] or ""):
        for path in files:
            digest.update(f"{split}\t{_data.file_info(path).fingerprint_line()}\n".encode())
    return digest.hexdigest()


# =============================================================================================== reading
@dataclass(frozen=True)
class ReadOptions:
    """Parsing options, shared by both engines (picklable for Beam)."""

    format: str = "auto"
    delimiter: str = ","
    null_values: tuple[str, ...] | None = None
    column_types: Mapping[str, str] = field(default_factory=dict)
    skip_malformed: bool = False


@dataclass
class ColumnProfile:
    kind: str  # int | float | bytes | null | int_list | float_list | bytes_list
    rows: int = 0
    nulls: int = 0
    uniques: set[bytes] | None = None  # bytes columns, up to the domain limit + 1
    integral: bool = True  # float columns: every value is a whole number
    min_count: int | None = None  # list columns: fewest / most values in a present row
    max_count: int | None = None
    example: tuple[int, str] | None = None  # bytes columns: (line, value) of a first non-numeric value


@dataclass
class FileProfile:
    path: str
    split: str | None
    rows: int
    skipped: int
    columns: dict[str, ColumnProfile]


@dataclass
class _Table:
    path: str
    table: Any  # pyarrow.Table
    skipped: int
    line_of: Any  # callable: data row index -> physical line


def _format_of(path: str, fmt: str) -> str:
    if fmt != "auto":
        if fmt not in ("csv", "parquet"):
            raise InputDataError(f"Ingest format={fmt!r} is unknown; use 'csv', 'parquet' or 'auto'")
        return fmt
    lower = path.lower()
    if lower.endswith(".parquet"):
        return "parquet"
    return "csv"


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {"int": pa.int64(), "float": pa.float64(), "string": pa.string(), "bytes": pa.string()}[kind]


def _line_mapper(skipped_lines: Sequence[int], header_lines: int = 1) -> Any:
    skipped = sorted(skipped_lines)

    def line_of(index: int) -> int:
        line = index + header_lines + 1
        for s in skipped:
            if s <= line:
                line += 1
        return line

    return line_of


def _read_csv(path: str, opts: ReadOptions) -> _Table:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    bad: list[Any] = []
    delimiter = _delimiter(path, opts)

    def on_invalid(row: Any) -> str:
        bad.append(row)
        return "skip"

    def source() -> Any:
        if not _data.is_url(path):
            return storage.local_path(path)
        stream = pa.PythonFile(_data.open_file(path, "rb"), mode="r")
        return pa.CompressedInputStream(stream, "gzip") if path.lower().endswith(".gz") else stream

    def parse(threads: bool, column_types: Mapping[str, str] = opts.column_types) -> Any:
        convert = pcsv.ConvertOptions(
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            column_types={k: _arrow_type(v) for k, v in column_types.items()},
            **({"null_values": list(opts.null_values)} if opts.null_values is not None else {}),
        )
        return pcsv.read_csv(
            source(),
            read_options=pcsv.ReadOptions(use_threads=threads),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=convert,
        )

    if _data.file_info(path).size == 0:
        raise InputDataError(
            f"file {path} is empty (0 bytes); remove it from the input or write its data (a header line "
            "and at least one row)"
        )
    try:
        table = parse(threads=True)
        if bad and any(r.number is None for r in bad):
            bad.clear()
            table = parse(threads=False)  # only now: single-threaded parsing knows line numbers
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "Empty CSV file" in text:
            raise InputDataError(
                f"file {path} has no header and no rows; remove it from the input or write its data"
            ) from None
        m = re.search(
            r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): invalid value '(.*)'", text
        )
        if m:
            col, value = int(m.group(1)), m.group(4)
            names = _csv_header(path, opts)
            name = names[col] if col < len(names) else f"#{col}"
            where = "a row"
            if m.group(2):
                where = f"line {m.group(2)}"
            elif name in opts.column_types:  # find the line: read the column as text, single-threaded
                bad.clear()
                as_text = parse(False, {**opts.column_types, name: "string"})
                hits = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(as_text.column(name), value), False)))
                if len(hits):
                    where = f"line {_line_mapper([r.number for r in bad if r.number])(int(hits[0]))}"
            raise InputDataError(
                f"file {path}, {where}: column {name!r} holds {m.group(4)!r}, which is not {m.group(3)} as "
                f"column_types requires; fix the value or change column_types[{name!r}]"
            ) from None
        raise InputDataError(f"file {path} cannot be parsed as CSV: {text}") from None
    if bad and not opts.skip_malformed:
        row = bad[0]
        raise InputDataError(
            f"file {path}, line {row.number}: malformed row: expected {row.expected_columns} fields as in "
            f"the header, found {row.actual_columns}: {row.text[:200]!r}. Fix the row (quote fields that "
            f"contain the delimiter {delimiter!r}), or pass skip_malformed=True to drop and count such rows"
        )
    line_of = _line_mapper([r.number for r in bad if r.number is not None])
    return _Table(path, table, len(bad), line_of)


def _csv_header(path: str, opts: ReadOptions) -> list[str]:
    import csv
    import io

    with _data.open_file(path, "rb") as f:
        head = f.read(1 << 16)
    if path.lower().endswith(".gz"):
        import gzip

        head = gzip.decompress(head) if len(head) < (1 << 16) else b""
    first = head.decode("utf-8", "replace").splitlines()[:1]
    return next(csv.reader(io.StringIO(first[0]), delimiter=_delimiter(path, opts))) if first else []


def _delimiter(path: str, opts: ReadOptions) -> str:
    """``opts.delimiter``, except that ``.tsv`` files are tab-separated unless another one was given."""
    if opts.delimiter == "," and path.lower().endswith((".tsv", ".tsv.gz")):
        return "\t"
    return opts.delimiter


def _read_parquet(path: str, opts: ReadOptions) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _data.file_info(path).size == 0:
        raise InputDataError(f"file {path} is empty (0 bytes); remove it from the input or write its data")
    try:
        if _data.is_url(path):
            with _data.open_file(path, "rb") as f:
                table = pq.read_table(f)
        else:
            table = pq.read_table(storage.local_path(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputDataError(f"file {path} cannot be read as Parquet: {exc}") from None
    for name, kind in opts.column_types.items():
        if name in table.column_names:
            try:
                table = table.set_column(table.column_names.index(name), name,
                                         table.column(name).cast(_arrow_type(kind)))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputDataError(
                    f"file {path}: column {name!r} cannot be read as {kind} as column_types requires: {exc}"
                ) from None
    return _Table(path, table, 0, _line_mapper([], header_lines=0))


def _arrow_kind(path: str, name: str, typ: Any) -> str:
    import pyarrow as pa
    import pyarrow.types as pat

    if pat.is_dictionary(typ):
        typ = typ.value_type
    if pat.is_null(typ):
        return "null"
    if pat.is_integer(typ) or pat.is_boolean(typ):
        return "int"
    if pat.is_floating(typ) or pat.is_decimal(typ):
        return "float"
    if (pat.is_string(typ) or pat.is_large_string(typ) or pat.is_binary(typ) or pat.is_large_binary(typ)
            or pat.is_temporal(typ)):
        return "bytes"
    if pat.is_list(typ) or pat.is_large_list(typ):
        inner = _arrow_kind(path, name, typ.value_type)
        if inner in ("int", "float", "bytes"):
            return inner + "_list"
    raise InputDataError(
        f"file {path}: column {name!r} has type {typ}, which cannot become a tf.train.Example feature "
        f"(supported: integers, booleans, floats, decimals, strings, binary, dates/times, and lists of "
        f"those); convert it or drop the column. ({pa.__name__} type)"
    )


def _plain(arr: Any) -> Any:
    """A ChunkedArray as one Array, dictionaries decoded."""
    import pyarrow as pa
    import pyarrow.types as pat

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pat.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _numeric_check(tab: _Table, opts: ReadOptions) -> _Table:
    """Find text values in otherwise numeric CSV columns: malformed rows (error, or dropped and counted)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = tab.table
    drop = None
    numeric_cols: dict[str, bool] = {}  # name -> all integers
    for name in table.column_names:
        if name in opts.column_types:
            continue
        col = _plain(table.column(name))
        if not pa.types.is_string(col.type):
            continue
        present = len(col) - col.null_count
        if present < 2:
            continue
        is_num = pc.match_substring_regex(col, _NUMBER_RE)
        numbers = pc.sum(is_num).as_py() or 0
        bad = present - numbers
        if bad == 0 or numbers < 2 or bad > max(1, present // 100):
            continue
        bad_mask = np.asarray(pc.fill_null(pc.invert(is_num), False))
        first = int(np.flatnonzero(bad_mask)[0])
        if not opts.skip_malformed:
            raise InputDataError(
                f"file {tab.path}, line {tab.line_of(first)}: malformed row: column {name!r} holds "
                f"{col[first].as_py()!r}, which is not a number, while {numbers} other values of the column "
                f"are numbers. Fix the value, declare the column as text with column_types={{{name!r}: "
                f"'string'}}, or pass skip_malformed=True to drop and count such rows"
            )
        drop = bad_mask if drop is None else (drop | bad_mask)
        numeric_cols[name] = (pc.sum(pc.match_substring_regex(col, _INT_RE)).as_py() or 0) == numbers
    if drop is None:
        return tab
    keep = pa.array(~drop)
    table = table.filter(keep)
    for name, integral in numeric_cols.items():
        i = table.column_names.index(name)
        col = pc.utf8_trim_whitespace(_plain(table.column(name)))
        table = table.set_column(i, name, col.cast(pa.int64() if integral else pa.float64()))
    kept = np.flatnonzero(~drop)
    old = tab.line_of
    return _Table(tab.path, table, tab.skipped + int(drop.sum()), lambda index: old(int(kept[index])))


def read_file(path: str, split: str | None, opts: ReadOptions) -> _Table:
    """Read one file into an Arrow table, checking for emptiness and malformed rows."""
    if _format_of(path, opts.format) == "parquet":
        tab = _read_parquet(path, opts)
    else:
        tab = _numeric_check(_read_csv(path, opts), opts)
    if tab.table.num_columns == 0:
        raise InputDataError(f"file {path} has no columns; write a header line and rows")
    if tab.table.num_rows == 0:
        if tab.skipped:
            raise InputDataError(
                f"file {path}: all {tab.skipped} rows are malformed and were skipped; nothing is left to "
                "ingest — fix the file"
            )
        raise InputDataError(
            f"file {path} has a header ({', '.join(tab.table.column_names[:10])}) but no rows; remove it "
            "from the input or add its data"
        )
    return tab


def profile_table(tab: _Table, split: str | None, domain_limit: int) -> FileProfile:
    """Per-column type and statistics of one file (what schema inference and type checks need)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, ColumnProfile] = {}
    for name in tab.table.column_names:
        arr = _plain(tab.table.column(name))
        kind = _arrow_kind(tab.path, name, arr.type)
        prof = ColumnProfile(kind=kind, rows=len(arr), nulls=arr.null_count)
        if kind == "bytes":
            textual = pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)
            values = arr if textual else arr.cast(pa.string())
            uniq = pc.unique(values.drop_null())
            if len(uniq) <= domain_limit:
                prof.uniques = {v if isinstance(v, bytes) else str(v).encode() for v in uniq.to_pylist()}
            if pa.types.is_string(values.type):
                is_num = pc.fill_null(pc.match_substring_regex(values, _NUMBER_RE), True)
                bad = np.flatnonzero(~np.asarray(is_num))
                if len(bad):
                    prof.example = (tab.line_of(int(bad[0])), str(values[int(bad[0])].as_py()))
        elif kind == "float":
            present = arr.drop_null()
            if len(present):
                prof.integral = bool(pc.all(pc.equal(pc.floor(present), present)).as_py())
        elif kind.endswith("_list"):
            lengths = pc.list_value_length(arr).drop_null()
            if len(lengths):
                prof.min_count = int(pc.min(lengths).as_py())
                prof.max_count = int(pc.max(lengths).as_py())
        columns[name] = prof
    return FileProfile(tab.path, split, tab.table.num_rows, tab.skipped, columns)


# ================================================================================ the plan (all files)
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


def make_plan(
    profiles: Sequence[FileProfile],
    *,
    split_names: Sequence[str],
    ratios: Sequence[float],
    partition_feature: str | None,
    label: str | None,
    previous_schema: Any,
    domain_limit: int,
) -> Plan:
    """Unify column types over every file, check them, and infer the schema."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    order: list[str] = []
    for p in profiles:
        order.extend(c for c in p.columns if c not in order)
    prev = _previous_kinds(previous_schema)
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


# =============================================================================== conform, split, encode
def conform(table: Any, plan: Plan) -> Any:
    """The table with the plan's columns, in order, cast to their final types (int64/float32/binary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target = {"int": pa.int64(), "float": pa.float32(), "bytes": pa.binary()}
    arrays = []
    for name in plan.columns:
        kind = plan.kinds[name]
        base = kind.removesuffix("_list")
        if name not in table.column_names:
            typ = pa.list_(target[base]) if kind.endswith("_list") else target[base]
            arrays.append(pa.nulls(table.num_rows, typ))
            continue
        arr = _plain(table.column(name))
        if kind.endswith("_list"):
            arrays.append(arr.cast(pa.list_(target[base])))
            continue
        if pa.types.is_null(arr.type):
            arr = pa.nulls(len(arr), target[base])
        elif base == "bytes" and not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)
                                      or pa.types.is_large_string(arr.type)
                                      or pa.types.is_large_binary(arr.type)):
            arr = arr.cast(pa.string())
        elif base == "int" and pa.types.is_floating(arr.type):
            arr = pc.cast(arr, pa.int64(), safe=True)
        elif base == "float" and pa.types.is_decimal(arr.type):
            arr = arr.cast(pa.float64())
        arrays.append(arr.cast(target[base]))
    return pa.table(arrays, names=list(plan.columns))


_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_GOLDEN = 0x9E3779B97F4A7C15
_NULL_HASH = 0x6A09E667F3BCC908


def _mix(x: Any) -> Any:
    import numpy as np

    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(_M1)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def _hash_bytes(value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "little")


def _column_hash(arr: Any, name: str) -> Any:
    """uint64 hash of each value of one conformed column (nulls hash to a constant)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(arr)
    salt = np.uint64(_hash_bytes(name.encode()))
    if pa.types.is_int64(arr.type):
        values = np.asarray(arr.fill_null(0)).view(np.uint64)
    elif pa.types.is_float32(arr.type):
        values = np.asarray(arr.fill_null(0)).view(np.uint32).astype(np.uint64)
    elif pa.types.is_binary(arr.type):
        encoded = pc.dictionary_encode(arr)
        hashes = [_hash_bytes(v) for v in encoded.dictionary.to_pylist()] or [0]
        dictionary = np.array(hashes, dtype=np.uint64)
        values = dictionary[np.asarray(encoded.indices.fill_null(0))]
    else:  # lists: rare (Parquet); hash each row's JSON form
        values = np.array([_hash_bytes(json.dumps(v, default=repr).encode()) for v in arr.to_pylist()],
                          dtype=np.uint64)
    hashed = _mix(values ^ salt)
    if arr.null_count:
        hashed = np.where(np.asarray(arr.is_valid()), hashed, np.uint64(_NULL_HASH) ^ salt)
    return hashed if len(hashed) == n else np.zeros(n, dtype=np.uint64)


def assign_splits(table: Any, plan: Plan) -> Any:
    """Split index (into ``plan.split_names``) of every row: a deterministic hash of its values."""
    import numpy as np

    with np.errstate(over="ignore"):
        names = [plan.partition_feature] if plan.partition_feature else sorted(plan.columns)
        h = np.full(table.num_rows, np.uint64(_GOLDEN), dtype=np.uint64)
        for name in names:
            h = _mix(h * np.uint64(31) + _column_hash(_plain(table.column(name)), name))
    total = float(sum(plan.ratios))
    bounds = np.array([round(_BUCKETS * sum(plan.ratios[: i + 1]) / total) for i in range(len(plan.ratios))],
                      dtype=np.uint64)
    bucket = h % np.uint64(_BUCKETS)
    return np.searchsorted(bounds, bucket, side="right").astype(np.int64)


def _list_array(arr: Any) -> Any:
    """A flat column as a list column (one value per row; null rows are null lists = missing features)."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return arr
    n = len(arr)
    if arr.null_count == 0:
        return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), arr)
    valid = np.asarray(arr.is_valid())
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), arr.drop_null(), mask=pa.array(~valid))


def encode_examples(table: Any, encoder: Any = None) -> list[bytes]:
    """Serialized tf.train.Example of every row of a conformed table (tfx_bsl's C++ encoder)."""
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    enc = encoder or example_coder.RecordBatchToExamplesEncoder()
    out: list[bytes] = []
    for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
        lists = [_list_array(batch.column(i)) for i in range(batch.num_columns)]
        out.extend(enc.encode(pa.RecordBatch.from_arrays(lists, names=batch.schema.names)))
    return out


# ======================================================================================= local engine
def _write_shard(table: Any, path: str) -> int:
    from tfx_bsl.coders import example_coder

    encoder = example_coder.RecordBatchToExamplesEncoder()
    with _data.GzipTFRecordWriter(path, level=_GZIP_LEVEL) as writer:
        for start in range(0, table.num_rows, _BATCH_ROWS):
            writer.write(encode_examples(table.slice(start, _BATCH_ROWS), encoder))
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


def _run_local(resolved: ResolvedInput, opts: ReadOptions, plan_args: dict[str, Any], examples_uri: str,
               domain_limit: int) -> tuple[Plan, dict[str, int]]:
    tabs: list[tuple[str | None, _Table]] = []
    profiles = []
    for split, files in resolved.files.items():
        for path in files:
            tab = read_file(path, split, opts)
            tabs.append((split, tab))
            profiles.append(profile_table(tab, split, domain_limit))
    plan = make_plan(profiles, domain_limit=domain_limit, **plan_args)
    by_split: dict[str, list[Any]] = {name: [] for name in plan.split_names}
    while tabs:
        split, tab = tabs.pop(0)  # drop each raw table once it is converted
        table = conform(tab.table, plan)
        if split is not None:
            by_split[split].append(table)
            continue
        assignment = assign_splits(table, plan)
        import pyarrow as pa

        for i, name in enumerate(plan.split_names):
            by_split[name].append(table.filter(pa.array(assignment == i)))
    return plan, _write_splits_local(by_split, examples_uri)


# ======================================================================================== Beam engine
def _beam_profile(element: tuple[str | None, str], opts: ReadOptions, domain_limit: int) -> FileProfile:
    split, path = element
    return profile_table(read_file(path, split, opts), split, domain_limit)


def _beam_plan(profiles: list[FileProfile], plan_args: dict[str, Any], domain_limit: int) -> Plan:
    args = dict(plan_args)
    order = {p: i for i, p in enumerate(args.pop("file_order"))}
    profiles = sorted(profiles, key=lambda p: order.get(p.path, len(order)))  # file order, as locally
    return make_plan(profiles, domain_limit=domain_limit, **args)


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
        records = encode_examples(table)
        Metrics.counter("headwater.ingest", f"examples/{split}").inc(len(records))
        for record in records:
            yield index, record
        return
    assignment = assign_splits(table, plan)
    records = encode_examples(table)
    for i, name in enumerate(plan.split_names):
        Metrics.counter("headwater.ingest", f"examples/{name}").inc(int((assignment == i).sum()))
    for index, record in zip(assignment.tolist(), records, strict=True):
        yield index, record


def _beam_write_schema(plan: Plan, schema_uri: str) -> None:
    _data.makedirs(schema_uri)
    with _data.open_file(_data.schema_path(schema_uri), "wb") as f:
        f.write(plan.schema_text.encode("utf-8"))


def _run_beam(resolved: ResolvedInput, opts: ReadOptions, plan_args: dict[str, Any], examples_uri: str,
              schema_uri: str, domain_limit: int, beam_args: Sequence[str]) -> tuple[Plan, dict[str, int]]:
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    elements = [(split, path) for split, files in resolved.files.items() for path in files]
    split_names = list(plan_args["split_names"])
    args = dict(plan_args, file_order=[p for _, p in elements])

    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    files = pipeline | "Files" >> beam.Create(elements) | "Reshuffle" >> beam.Reshuffle()
    plan = (
        files
        | "Profile" >> beam.Map(_beam_profile, opts, domain_limit)
        | "AllProfiles" >> beam.combiners.ToList()
        | "Plan" >> beam.Map(_beam_plan, args, domain_limit)
    )
    _ = plan | "WriteSchema" >> beam.Map(_beam_write_schema, schema_uri)
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
    return _plan_from_schema(_data.read_schema(schema_uri), plan_args, skipped), counts


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


def _plan_from_schema(schema: Any, plan_args: Mapping[str, Any], skipped: int) -> Plan:
    from google.protobuf import text_format

    kinds = {v: k for k, v in _KIND_NAMES.items()}
    from tensorflow_metadata.proto.v0 import schema_pb2

    out = {}
    for f in schema.feature:
        out[f.name] = kinds[schema_pb2.FeatureType.Name(f.type)]
    return Plan(tuple(out), out, text_format.MessageToString(schema), tuple(plan_args["split_names"]),
                tuple(plan_args["ratios"]), plan_args["partition_feature"], 0, skipped)


# ========================================================================================== executor
def _choose_engine(engine: str, beam_args: Sequence[str]) -> str:
    if engine not in ("auto", "local", "beam"):
        raise InputDataError(f"Ingest engine={engine!r} is unknown; use 'auto', 'local' or 'beam'")
    if engine != "auto":
        return engine
    for arg in beam_args:
        if arg.startswith("--runner"):
            runner = arg.split("=", 1)[1] if "=" in arg else ""
            if runner and runner.lower() not in ("direct", "directrunner", "prism", "prismrunner"):
                return "beam"
    return "local"


def run_ingest(
    examples: types.Examples,
    schema: types.Schema,
    *,
    input_base: str,
    pattern: str | None = None,
    splits: Mapping[str, str] | None = None,
    split_ratios: Mapping[str, float] | None = None,
    partition_feature: str | None = None,
    span: int | None = None,
    version: int | None = None,
    format: str = "auto",
    label: str | None = None,
    skip_malformed: bool = False,
    column_types: Mapping[str, str] | None = None,
    delimiter: str = ",",
    null_values: Sequence[str] | None = None,
    max_string_domain_size: int = 100,
    previous_schema: Any = None,
    engine: str = "auto",
    beam_args: Sequence[str] = (),
) -> None:
    """The Ingest executor as a plain function (what the component calls)."""
    for name, kind in (column_types or {}).items():
        if kind not in ("int", "float", "string"):
            raise InputDataError(
                f"column_types[{name!r}] = {kind!r} is unknown; use 'int', 'float' or 'string'"
            )
    resolved = resolve_input(input_base, pattern, splits, span, version)
    if splits:
        names = list(splits)
        ratios: list[float] = [1.0] * len(names)
        if split_ratios:
            raise InputDataError("Ingest got splits= (pre-split folders) and split_ratios=; use one of them")
    else:
        chosen = dict(split_ratios or DEFAULT_SPLIT_RATIOS)
        if not chosen or any((not isinstance(v, (int, float))) or v <= 0 for v in chosen.values()):
            raise InputDataError(
                f"split_ratios {chosen!r} is invalid: give each split a positive weight, e.g. "
                "{'train': 2, 'eval': 1}"
            )
        for name in chosen:
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                raise InputDataError(f"split name {name!r} is invalid: use letters, digits, '_' and '-'")
        names, ratios = list(chosen), [float(v) for v in chosen.values()]
    opts = ReadOptions(
        format=format,
        delimiter=delimiter,
        null_values=tuple(null_values) if null_values is not None else None,
        column_types=dict(column_types or {}),
        skip_malformed=skip_malformed,
    )
    for f in resolved.all_files():
        _format_of(f, format)
    plan_args = {
        "split_names": names,
        "ratios": ratios,
        "partition_feature": partition_feature,
        "label": label,
        "previous_schema": previous_schema,
    }
    chosen_engine = _choose_engine(engine, beam_args)
    if chosen_engine == "beam":
        plan, counts = _run_beam(resolved, opts, plan_args, examples.path, schema.path, max_string_domain_size,
                                 beam_args)
    else:
        plan, counts = _run_local(resolved, opts, plan_args, examples.path, max_string_domain_size)
        _beam_write_schema(plan, schema.path)
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
        "input_fingerprint": _fingerprint_resolved(resolved),
        "input_files": len(resolved.all_files()),
        "num_examples": {n: int(counts.get(n, 0)) for n in names},
        "engine": chosen_engine,
    })
    if skip_malformed:
        examples.custom_properties["skipped_rows"] = int(plan.skipped)
    schema.custom_properties["num_features"] = len(plan.columns) if plan.columns else 0


@component(
    version="1",
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
    engine: str = "auto",
    ctx: ExecutionContext,
) -> None:
    """Read CSV / Parquet files into split Examples (TFX layout) and infer their Schema."""
    previous = _data.read_schema(previous_schema) if previous_schema is not None else None
    run_ingest(
        examples,
        schema,
        input_base=input_base,
        pattern=pattern,
        splits=splits,
        split_ratios=split_ratios,
        partition_feature=partition_feature,
        span=span,
        version=version,
        format=format,
        label=label,
        skip_malformed=skip_malformed,
        column_types=column_types,
        delimiter=delimiter,
        null_values=null_values,
        max_string_domain_size=max_string_domain_size,
        previous_schema=previous,
        engine=engine,
        beam_args=ctx.beam_args,
    )
