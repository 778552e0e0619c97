"""Reading one data file (CSV with pyarrow.csv, Parquet) into an Arrow table, and profiling its columns.

Malformed rows (wrong number of fields, text in a numeric column) are errors naming the file and line, or
are dropped and counted with ``skip_malformed``. Shared by both engines (the options are picklable for Beam).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.components import _data, storage
from headwater.components.errors import InputDataError

__all__ = [
    "NUMERIC_TEXT_SHARE",
    "ColumnProfile",
    "FileProfile",
    "ReadOptions",
    "format_of",
    "plain",
    "profile_table",
    "read_file",
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
    _check_header(table.column_names, path, "")
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


def plain(arr: Any) -> Any:
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
        col = plain(table.column(name))
        if not pa.types.is_string(col.type):
            continue
        present = len(col) - col.null_count
        if present < 2:
            continue
        is_num = pc.match_substring_regex(col, _NUMBER_RE)
        numbers = pc.sum(is_num).as_py() or 0
        bad = present - numbers
        if bad == 0 or numbers < 2 or bad > max(1, int(present * NUMERIC_TEXT_SHARE)):
            continue
        bad_mask = np.asarray(pc.fill_null(pc.invert(is_num), False))
        first = int(np.flatnonzero(bad_mask)[0])
        if not opts.skip_malformed:
            raise InputDataError(
                f"file {tab.path}, line {tab.line_of(first)}: malformed row: column {name!r} holds "
                f"{col[first].as_py()!r}, which is not a number, while {numbers} other values of the column "
                f"are numbers{f' ({bad} values are not)' if bad > 1 else ''}. Fix the value, declare the column "
                f"as text with column_types={{{name!r}: 'string'}}, or pass skip_malformed=True to drop and "
                "count such rows"
            )
        drop = bad_mask if drop is None else (drop | bad_mask)
        numeric_cols[name] = (pc.sum(pc.match_substring_regex(col, _INT_RE)).as_py() or 0) == numbers
    if drop is None:
        return tab
    tab = _drop_rows(tab, drop)
    table = tab.table
    for name, integral in numeric_cols.items():
        i = table.column_names.index(name)
        col = pc.utf8_trim_whitespace(plain(table.column(name)))
        table = table.set_column(i, name, col.cast(pa.int64() if integral else pa.float64()))
    return _Table(tab.path, table, tab.skipped, tab.line_of)


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


def _finite_check(tab: _Table, opts: ReadOptions, csv_file: bool) -> _Table:
    """Infinite or NaN numbers (``inf``, ``-inf``, ``Infinity``, ``1e309``) are malformed rows or an error,
    unless ``allow_non_finite``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if opts.allow_non_finite:
        return tab
    drop = None
    for index, name in enumerate(tab.table.column_names):
        col = plain(tab.table.column(name))
        if not pa.types.is_floating(col.type):
            continue
        bad = np.asarray(pc.fill_null(pc.invert(pc.is_finite(col)), False))
        if not bad.any():
            continue
        first = int(np.flatnonzero(bad)[0])
        if not opts.skip_malformed:
            line = tab.line_of(first)
            value = (_raw_field(tab.path, opts, line, index) if csv_file else None) or str(col[first].as_py())
            where = f"line {line}" if csv_file else f"row {line}"
            raise InputDataError(
                f"file {tab.path}, {where}: column {name!r} holds {value!r}, which is not a finite number"
                f"{f' ({int(bad.sum())} values are not)' if bad.sum() > 1 else ''}. Fix the value, pass "
                "allow_non_finite=True to keep infinite and NaN values, or skip_malformed=True to drop and "
                "count such rows"
            )
        drop = bad if drop is None else (drop | bad)
    return tab if drop is None else _drop_rows(tab, drop)


def read_file(path: str, split: str | None, opts: ReadOptions) -> _Table:
    """Read one file into an Arrow table, checking for emptiness and malformed rows."""
    if format_of(path, opts.format) == "parquet":
        tab = _finite_check(_read_parquet(path, opts), opts, csv_file=False)
    else:
        tab = _read_csv(path, opts)
        _check_header(tab.table.column_names, path, ", line 1")
        tab = _finite_check(_numeric_check(_utf8_check(tab, opts), opts), opts, csv_file=True)
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
        arr = plain(tab.table.column(name))
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

