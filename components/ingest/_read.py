"""Reading options, column profiles and the row-level rules for malformed values, shared by both engines.

:mod:`._stream` reads each file chunk by chunk with them. Malformed rows (wrong number of fields, text in a
numeric column, non-UTF-8 text, non-finite numbers) are errors naming the file and line, or are dropped and
counted with ``skip_malformed``. The options are picklable for Beam.
"""

from __future__ import annotations

import contextlib
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.components import _data
from headwater.components.errors import InputDataError

__all__ = [
    "NUMERIC_TEXT_SHARE",
    "ColumnProfile",
    "FileProfile",
    "ReadOptions",
    "format_of",
    "plain",
    "profile_table",
]

_NUMBER_RE = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_INT_RE = r"^\s*[-+]?\d+\s*$"
#: A CSV column whose present values are numbers except for at most this share (at least one value, and at
#: least two numbers) is numeric: its other values are malformed rows. With more text it is a text column.
NUMERIC_TEXT_SHARE = 0.10


@dataclass(frozen=True)
class ReadOptions:
    """Parsing options, shared by both engines (picklable for Beam)."""

    format: str = "auto"
    delimiter: str = ","
    null_values: tuple[str, ...] | None = None
    column_types: Mapping[str, str] = field(default_factory=dict)
    skip_malformed: bool = False
    allow_non_finite: bool = False


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


def format_of(path: str, fmt: str) -> str:
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


def plain(arr: Any) -> Any:
    """A ChunkedArray as one Array, dictionaries decoded."""
    import pyarrow as pa
    import pyarrow.types as pat

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pat.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _drop_rows(tab: _Table, drop: Any) -> _Table:
    """``tab`` without the rows where the boolean numpy mask ``drop`` is set (counted as skipped)."""
    import numpy as np
    import pyarrow as pa

    kept = np.flatnonzero(~drop)
    old = tab.line_of
    return _Table(tab.path, tab.table.filter(pa.array(~drop)), tab.skipped + int(drop.sum()),
                  lambda index: old(int(kept[index])))


def _check_header(names: Sequence[str], path: str, where: str) -> None:
    """Every column has its own name (a duplicated name would silently lose one of the columns)."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i + 1)
    for name, positions in seen.items():
        if len(positions) > 1:
            raise InputDataError(
                f"file {path}{where}: the header names column {name!r} {len(positions)} times (columns "
                f"{', '.join(map(str, positions))}); every column needs its own name — rename or remove the "
                "duplicates"
            )


def _raw_field(path: str, opts: ReadOptions, line: int, column: int) -> str | None:
    """The text of one CSV field as written in the file (for messages), or None if it cannot be found."""
    import csv
    import gzip
    import io

    with contextlib.ExitStack() as stack:
        stream: Any = stack.enter_context(_data.open_file(path, "rb"))
        if path.lower().endswith(".gz"):
            stream = stack.enter_context(gzip.open(stream, "rb"))
        reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=""),
                            delimiter=_delimiter(path, opts))
        for row in reader:
            if reader.line_num == line:
                return row[column] if column < len(row) else None
            if reader.line_num > line:
                break
    return None


def _utf8_check(tab: _Table, opts: ReadOptions) -> _Table:
    """Text that is not UTF-8 (pyarrow reads such a CSV column as binary): malformed rows, or an error."""
    import numpy as np
    import pyarrow as pa

    drop = None
    binary = [n for n in tab.table.column_names if pa.types.is_binary(tab.table.schema.field(n).type)
              or pa.types.is_large_binary(tab.table.schema.field(n).type)]
    for name in binary:
        values = plain(tab.table.column(name)).to_pylist()
        bad = np.zeros(len(values), dtype=bool)
        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not opts.skip_malformed:
                    raise InputDataError(
                        f"file {tab.path}, line {tab.line_of(i)}: column {name!r} holds {value!r}, which is not "
                        f"UTF-8 text (byte {value[exc.start]:#04x} at position {exc.start}). Save the file as "
                        "UTF-8 (e.g. iconv -f latin1 -t utf-8), or pass skip_malformed=True to drop and count "
                        "such rows"
                    ) from None
                bad[i] = True
        drop = bad if drop is None else (drop | bad)
    if drop is None:
        return tab
    tab = _drop_rows(tab, drop)
    table = tab.table
    for name in binary:
        i = table.column_names.index(name)
        table = table.set_column(i, name, plain(table.column(name)).cast(pa.string()))
    return _Table(tab.path, table, tab.skipped, tab.line_of)


def profile_table(tab: _Table, split: str | None, domain_limit: int, known: Container[str] = ()) -> FileProfile:
    """Per-column type and statistics of one file or chunk (what schema inference and type checks need);
    columns in ``known`` already have their first non-numeric example (a chunk after the first)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, ColumnProfile] = {}
    for name in tab.table.column_names:
        arr = plain(tab.table.column(name))
        kind = _arrow_kind(tab.path, name, arr.type)
        prof = ColumnProfile(kind=kind, rows=len(arr), nulls=arr.null_count)
        if kind == "bytes":
            textual = pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)
            values = arr if textual else arr.cast(pa.string())
            uniq = pc.unique(values.drop_null())
            if len(uniq) <= domain_limit:
                prof.uniques = {v if isinstance(v, bytes) else str(v).encode() for v in uniq.to_pylist()}
            if pa.types.is_string(values.type) and name not in known:
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

