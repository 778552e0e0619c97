"""Reading one data file as a stream of checked chunks, in two passes, so memory follows the chunk size.

**Pass 1** (:func:`scan_file`) reads the file chunk by chunk (``pyarrow.csv.open_csv`` with a block size of
``chunk_bytes``; Parquet by ``iter_batches``) and keeps only what the plan needs: each column's type, its
per-column profile (:class:`~headwater.components.ingest._read.FileProfile`, merged over the chunks) and
the counts of the malformed-row rules. Types are those a whole-file ``pyarrow.csv.read_csv`` infers:
``open_csv`` infers them from the first block, and when a later block holds a value the type cannot take
(``1.5`` in an int64 column, text in a number column, non-UTF-8 bytes in a text column), the column is
loosened along Arrow's own inference order to the first type that takes the value and the pass starts over
(rare: only files whose first block is not representative pay a second read). Rules that need the whole
file (a text column that is numeric except for ≤ 10 % malformed values) are decided at the end of the
pass; with ``skip_malformed`` such a decision re-runs the profile with those rows dropped.

**Pass 2** (:func:`checked_chunks`) reads the file again with every column's type fixed and yields the
same checked chunks (malformed rows dropped as pass 1 counted them), ready to conform, split and encode.

Every error and its message is the one the whole-file reader gave (file, line, column, value, the fix).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from headwater.components import _data, storage
from headwater.components.errors import InputDataError
from headwater.components.ingest._read import (
    _INT_RE,
    _NUMBER_RE,
    NUMERIC_TEXT_SHARE,
    FileProfile,
    ReadOptions,
    _arrow_type,
    _check_header,
    _csv_header,
    _delimiter,
    _drop_rows,
    _line_mapper,
    _raw_field,
    _Table,
    _utf8_check,
    format_of,
    plain,
    profile_table,
)

__all__ = ["CHUNK_BYTES", "CHUNK_ROWS", "FileScan", "checked_chunks", "scan_file"]

#: CSV bytes parsed per chunk (``pyarrow.csv.ReadOptions.block_size``): what bounds Ingest's memory. Arrow's
#: streaming reader reads up to a few dozen blocks ahead while its consumer is slower (measured: ~790 MiB
#: resident at 16 MiB blocks, ~250 MiB at 4 MiB), so the block is kept small.
CHUNK_BYTES = 4 << 20
#: Parquet rows per chunk.
CHUNK_ROWS = 262_144

_CONVERSION_RE = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to ([\w\[\], ]+?): "
    r"(?:invalid value '(.*)'|(.*))$", re.S
)


@dataclass(frozen=True)
class FileScan:
    """What pass 1 learned about one file: its profile, and how pass 2 reads it (picklable for Beam)."""

    path: str
    split: str | None
    profile: FileProfile
    types: Mapping[str, Any] = field(default_factory=dict)  # CSV: every column's Arrow type
    numeric: Mapping[str, bool] = field(default_factory=dict)  # CSV text columns read as numbers -> integral
    threads: bool = True  # False once malformed rows need line numbers (single-threaded parsing knows them)


class _Restart(Exception):
    """Pass 1 starts over: a column is loosened, or parsing must be single-threaded to name lines."""


# ------------------------------------------------------------------------------------------- CSV chunks
def _loosen(current: Any, value: str | None) -> Any:
    """The next type after ``current`` in Arrow's CSV inference order that takes ``value``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    chain = [pa.null(), pa.int64(), pa.bool_(), pa.float64(), pa.date32(), pa.time32("s"), pa.timestamp("s"),
             pa.timestamp("ns"), pa.string(), pa.binary()]
    start = next((i + 1 for i, t in enumerate(chain) if t == current), len(chain) - 2)
    for candidate in chain[start:]:
        if value is None:
            return candidate
        try:
            pcsv.read_csv(pa.BufferReader(b"c\n" + value.encode("utf-8", "surrogateescape") + b"\n"),
                          convert_options=pcsv.ConvertOptions(column_types={"c": candidate}))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return candidate
    return pa.binary()


class _CsvPass:
    """One streaming read of a CSV file with the given column types; yields (table, line_of) chunks."""

    def __init__(self, path: str, opts: ReadOptions, types: Mapping[str, Any], threads: bool,
                 chunk_bytes: int) -> None:
        self.path, self.opts, self.types, self.threads, self.chunk_bytes = path, opts, dict(types), threads, chunk_bytes
        self.bad: list[Any] = []
        self.names: list[str] = []

    def _open(self) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        if _data.is_url(self.path):
            stream = pa.PythonFile(_data.open_file(self.path, "rb"), mode="r")
            source: Any = pa.CompressedInputStream(stream, "gzip") if self.path.lower().endswith(".gz") else stream
        else:
            source = storage.local_path(self.path)

        def on_invalid(row: Any) -> str:
            self.bad.append(row)
            return "skip"

        convert = pcsv.ConvertOptions(
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            column_types=self.types,
            **({"null_values": list(self.opts.null_values)} if self.opts.null_values is not None else {}),
        )
        return pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(use_threads=self.threads, block_size=self.chunk_bytes),
            parse_options=pcsv.ParseOptions(delimiter=_delimiter(self.path, self.opts), invalid_row_handler=on_invalid),
            convert_options=convert,
        )

    def line_of(self, index: int) -> int:
        return int(_line_mapper([r.number for r in self.bad if r.number is not None])(index))

    def chunks(self) -> Iterator[_Table]:
        import pyarrow as pa

        try:
            reader = self._open()
            self.names = list(reader.schema.names)
            self.types = {**{f.name: f.type for f in reader.schema}, **self.types}
            _check_header(self.names, self.path, ", line 1")
            done = 0
            for batch in reader:
                self._check_bad()
                base = done
                done += batch.num_rows
                if batch.num_rows:
                    yield _Table(self.path, pa.Table.from_batches([batch]), 0,
                                 lambda i, base=base: self.line_of(base + int(i)))
            self._check_bad()
        except pa.ArrowInvalid as exc:
            raise self._error(exc) from None

    def _check_bad(self) -> None:
        if not self.bad:
            return
        if self.threads and any(r.number is None for r in self.bad):
            raise _Restart("threads")
        if not self.opts.skip_malformed:
            row = self.bad[0]
            raise InputDataError(
                f"file {self.path}, line {row.number}: malformed row: expected {row.expected_columns} fields as "
                f"in the header, found {row.actual_columns}: {row.text[:200]!r}. Fix the row (quote fields that "
                f"contain the delimiter {_delimiter(self.path, self.opts)!r}), or pass skip_malformed=True to "
                "drop and count such rows"
            )

    def _error(self, exc: Exception) -> Exception:
        text = str(exc)
        if "Empty CSV file" in text:
            return InputDataError(
                f"file {self.path} has no header and no rows; remove it from the input or write its data"
            )
        m = _CONVERSION_RE.search(text)
        if m:
            col, row, kind, value = int(m.group(1)), m.group(2), m.group(3), m.group(4)
            names = self.names or _csv_header(self.path, self.opts)
            name = names[col] if col < len(names) else f"#{col}"
            if name not in self.opts.column_types and name in self.types:
                self.types[name] = _loosen(self.types[name], value)
                return _Restart("loosen")
            if value is not None:
                if row is None and self.threads:
                    return _Restart("threads")  # single-threaded parsing names the row
                where = f"line {row}" if row else "a row"
                return InputDataError(
                    f"file {self.path}, {where}: column {name!r} holds {value!r}, which is not {kind} as "
                    f"column_types requires; fix the value or change column_types[{name!r}]"
                )
        return InputDataError(f"file {self.path} cannot be parsed as CSV: {text}")


def _numeric_scan(tab: _Table, opts: ReadOptions, counts: dict[str, list[Any]]) -> None:
    """Count, per text column, present values, numbers and integers, and note its first non-number."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in tab.table.column_names:
        if name in opts.column_types:
            continue
        col = plain(tab.table.column(name))
        if not pa.types.is_string(col.type):
            continue
        # Each distinct value is matched once (text columns repeat their values: categories, codes).
        encoded = pc.dictionary_encode(col)
        is_num = np.asarray(pc.match_substring_regex(encoded.dictionary, _NUMBER_RE), dtype=bool)
        seen = np.bincount(np.asarray(encoded.indices.drop_null()), minlength=len(is_num))
        numbers = int(seen[is_num].sum())
        present = int(seen.sum())
        entry = counts.setdefault(name, [0, 0, 0, None])
        entry[0] += present
        entry[1] += numbers
        if numbers:
            is_int = np.asarray(pc.match_substring_regex(encoded.dictionary, _INT_RE), dtype=bool)
            entry[2] += int(seen[is_int].sum())
        if entry[3] is None and present > numbers:
            valid = np.asarray(col.is_valid())
            row_is_num = is_num[np.asarray(encoded.indices.fill_null(0))] if len(is_num) else valid
            first = int(np.flatnonzero(valid & ~row_is_num)[0])
            entry[3] = (tab.line_of(first), col[first].as_py())


def _numeric_decisions(path: str, opts: ReadOptions, counts: Mapping[str, list[Any]]) -> dict[str, bool]:
    """The text columns that are numbers with a few malformed values (an error unless ``skip_malformed``)."""
    out: dict[str, bool] = {}
    for name, (present, numbers, integers, first) in counts.items():
        bad = present - numbers
        if present < 2 or bad == 0 or numbers < 2 or bad > max(1, int(present * NUMERIC_TEXT_SHARE)):
            continue
        if not opts.skip_malformed:
            raise InputDataError(
                f"file {path}, line {first[0]}: malformed row: column {name!r} holds {first[1]!r}, which is not "
                f"a number, while {numbers} other values of the column are numbers"
                f"{f' ({bad} values are not)' if bad > 1 else ''}. Fix the value, declare the column as text "
                f"with column_types={{{name!r}: 'string'}}, or pass skip_malformed=True to drop and count such rows"
            )
        out[name] = integers == numbers
    return out


def _apply_numeric(tab: _Table, numeric: Mapping[str, bool]) -> _Table:
    """Drop the rows whose value in a numeric text column is not a number, and read those columns as numbers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not numeric:
        return tab
    drop = np.zeros(tab.table.num_rows, dtype=bool)
    for name in numeric:
        col = plain(tab.table.column(name))
        if pa.types.is_string(col.type):
            drop |= np.asarray(pc.fill_null(pc.invert(pc.match_substring_regex(col, _NUMBER_RE)), False))
    if drop.any():
        tab = _drop_rows(tab, drop)
    table = tab.table
    for name, integral in numeric.items():
        i = table.column_names.index(name)
        col = plain(table.column(name))
        if pa.types.is_string(col.type):
            typ = pa.int64() if integral else pa.float64()
            table = table.set_column(i, name, pc.utf8_trim_whitespace(col).cast(typ))
    return _Table(tab.path, table, tab.skipped, tab.line_of)


def _finite_scan(tab: _Table, opts: ReadOptions, found: dict[str, list[Any]]) -> _Table:
    """Infinite / NaN numbers: dropped (``skip_malformed``) or noted per column (count, first index) for
    the error raised once the whole file has been read (``allow_non_finite`` keeps them)."""
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
        if not opts.skip_malformed:
            entry = found.setdefault(name, [0, None])
            if entry[1] is None:
                first = int(np.flatnonzero(bad)[0])
                entry[1] = (index, tab.line_of(first), str(col[first].as_py()))
            entry[0] += int(bad.sum())
            continue
        drop = bad if drop is None else (drop | bad)
    return tab if drop is None else _drop_rows(tab, drop)


def _finite_error(path: str, opts: ReadOptions, found: Mapping[str, list[Any]], columns: list[str],
                  csv_file: bool) -> None:
    for name in columns:
        if name not in found:
            continue
        count, (index, line, shown) = found[name]
        value = (_raw_field(path, opts, line, index) if csv_file else None) or shown
        where = f"line {line}" if csv_file else f"row {line}"
        raise InputDataError(
            f"file {path}, {where}: column {name!r} holds {value!r}, which is not a finite number"
            f"{f' ({count} values are not)' if count > 1 else ''}. Fix the value, pass "
            "allow_non_finite=True to keep infinite and NaN values, or skip_malformed=True to drop and "
            "count such rows"
        )


# ------------------------------------------------------------------------------------------ Parquet chunks
def _parquet_chunks(path: str, opts: ReadOptions, chunk_rows: int) -> Iterator[_Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _data.file_info(path).size == 0:
        raise InputDataError(f"file {path} is empty (0 bytes); remove it from the input or write its data")
    source: Any = _data.open_file(path, "rb") if _data.is_url(path) else storage.local_path(path)
    try:
        reader = pq.ParquetFile(source)
        _check_header(reader.schema_arrow.names, path, "")
        done = 0
        for batch in reader.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            for name, kind in opts.column_types.items():
                if name in table.column_names:
                    try:
                        table = table.set_column(table.column_names.index(name), name,
                                                 table.column(name).cast(_arrow_type(kind)))
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise InputDataError(
                            f"file {path}: column {name!r} cannot be read as {kind} as column_types requires: {exc}"
                        ) from None
            base = done
            done += table.num_rows
            yield _Table(path, table, 0, lambda i, base=base: base + int(i) + 1)
        if done == 0:
            yield _Table(path, reader.schema_arrow.empty_table(), 0, lambda i: int(i) + 1)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputDataError(f"file {path} cannot be read as Parquet: {exc}") from None
    finally:
        if not isinstance(source, str):
            source.close()


# ---------------------------------------------------------------------------------------------- passes
def _merge(into: FileProfile | None, part: FileProfile, domain_limit: int) -> FileProfile:
    if into is None:
        return part
    into.rows += part.rows
    into.skipped += part.skipped
    for name, c in part.columns.items():
        have = into.columns.get(name)
        if have is None:
            into.columns[name] = c
            continue
        have.rows += c.rows
        have.nulls += c.nulls
        have.integral = have.integral and c.integral
        if have.uniques is not None:
            have.uniques = None if c.uniques is None else (have.uniques | c.uniques)
            if have.uniques is not None and len(have.uniques) > domain_limit:
                have.uniques = None
        have.example = have.example or c.example
        if c.min_count is not None:
            have.min_count = c.min_count if have.min_count is None else min(have.min_count, c.min_count)
            have.max_count = c.max_count if have.max_count is None else max(have.max_count or 0, c.max_count or 0)
    return into


def _empty_checks(path: str, profile: FileProfile | None, names: list[str]) -> FileProfile:
    if not names:
        raise InputDataError(f"file {path} has no columns; write a header line and rows")
    if profile is None or profile.rows == 0:
        skipped = profile.skipped if profile is not None else 0
        if skipped:
            raise InputDataError(
                f"file {path}: all {skipped} rows are malformed and were skipped; nothing is left to "
                "ingest — fix the file"
            )
        raise InputDataError(
            f"file {path} has a header ({', '.join(names[:10])}) but no rows; remove it "
            "from the input or add its data"
        )
    return profile


def _checked(tab: _Table, opts: ReadOptions, numeric: Mapping[str, bool], finite: dict[str, list[Any]],
             counts: dict[str, list[Any]] | None = None) -> _Table:
    """One CSV chunk through the malformed-row rules, in the whole-file order: UTF-8, numbers, finite."""
    tab = _utf8_check(tab, opts)
    if counts is not None:
        _numeric_scan(tab, opts, counts)
    return _finite_scan(_apply_numeric(tab, numeric), opts, finite)


def scan_file(path: str, split: str | None, opts: ReadOptions, domain_limit: int,
              chunk_bytes: int | None = None, chunk_rows: int | None = None) -> FileScan:
    """Pass 1 over one file: its profile and the column types pass 2 reads it with (see the module doc).
    ``chunk_bytes`` / ``chunk_rows`` default to :data:`CHUNK_BYTES` / :data:`CHUNK_ROWS`."""
    chunk_bytes, chunk_rows = chunk_bytes or CHUNK_BYTES, chunk_rows or CHUNK_ROWS
    if format_of(path, opts.format) == "parquet":
        profile = None
        finite: dict[str, list[Any]] = {}
        names: list[str] = []
        for tab in _parquet_chunks(path, opts, chunk_rows):
            names = tab.table.column_names
            profile = _merge(profile, profile_table(_finite_scan(tab, opts, finite), split, domain_limit),
                             domain_limit)
        _finite_error(path, opts, finite, names, csv_file=False)
        return FileScan(path, split, _empty_checks(path, profile, names))
    if _data.file_info(path).size == 0:
        raise InputDataError(
            f"file {path} is empty (0 bytes); remove it from the input or write its data (a header line "
            "and at least one row)"
        )
    types = {k: _arrow_type(v) for k, v in opts.column_types.items()}
    threads = True
    numeric: dict[str, bool] = {}
    while True:
        reader = _CsvPass(path, opts, types, threads, chunk_bytes)
        try:
            profile = None
            counts: dict[str, list[Any]] = {}
            finite = {}
            for tab in reader.chunks():
                tab = _checked(tab, opts, numeric, finite, None if numeric else counts)
                known: set[str] = {n for n, c in profile.columns.items() if c.example} if profile else set()
                profile = _merge(profile, profile_table(tab, split, domain_limit, known), domain_limit)
            if not numeric:
                numeric = _numeric_decisions(path, opts, counts)
                if numeric:  # skip_malformed: profile again with those rows dropped and the columns as numbers
                    types = reader.types
                    continue
            _finite_error(path, opts, finite, reader.names, csv_file=True)
        except _Restart as restart:
            types = reader.types
            threads = threads and str(restart) != "threads"
            continue
        skipped = len(reader.bad)
        if profile is not None:
            profile.skipped += skipped
        elif skipped:
            profile = FileProfile(path, split, 0, skipped, {})
        return FileScan(path, split, _empty_checks(path, profile, reader.names), reader.types, numeric, threads)


def checked_chunks(scan: FileScan, opts: ReadOptions, chunk_bytes: int | None = None,
                   chunk_rows: int | None = None) -> Iterator[Any]:
    """Pass 2: the file's rows as checked Arrow tables of one chunk each (malformed rows dropped)."""
    chunk_bytes, chunk_rows = chunk_bytes or CHUNK_BYTES, chunk_rows or CHUNK_ROWS
    if format_of(scan.path, opts.format) == "parquet":
        for tab in _parquet_chunks(scan.path, opts, chunk_rows):
            tab = _finite_scan(tab, opts, {})
            if tab.table.num_rows:
                yield tab.table
        return
    reader = _CsvPass(scan.path, opts, scan.types, scan.threads, chunk_bytes)
    for tab in reader.chunks():
        tab = _checked(tab, opts, scan.numeric, {})
        if tab.table.num_rows:
            yield tab.table
