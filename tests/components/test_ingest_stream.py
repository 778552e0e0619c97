"""Ingest streams its input: memory follows the chunk size, chunked reading gives the whole-file result
(types, schema, examples, errors), and writer processes write the same examples as the reader alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from headwater.components import _data
from headwater.components.ingest import _engines, _stream, _write, run_ingest
from headwater.metadata import types
from headwater.metadata.errors import InputDataError

pytestmark = pytest.mark.ml

pa = pytest.importorskip("pyarrow")
pytest.importorskip("tfx_bsl")

WHOLE_FILE = 1 << 30  # one chunk holds every test file: what reading the whole file gives


def penguin_like(path: Path, rows: int, *, tail: list[str] | None = None) -> Path:
    """A CSV of ``rows`` penguin-like rows (deterministic), then the ``tail`` lines."""
    species = ["Adelie", "Chinstrap", "Gentoo"]
    lines = ["species,island,bill_length_mm,flipper_length_mm,sex,note"]
    for i in range(rows):
        bill = "" if i % 31 == 0 else f"{30 + (i * 7919) % 300 / 10:.1f}"
        lines.append(f"{species[i % 3]},{['Biscoe', 'Dream'][i % 2]},{bill},{170 + i % 60},"
                     f"{['male', 'female', ''][i % 3]},")
    lines.extend(tail or [])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run(tmp_path: Path, name: str, monkeypatch, chunk_bytes: int, **params):
    """Ingest with ``chunk_bytes``; returns (examples, schema text, engine stats)."""
    monkeypatch.setattr(_stream, "CHUNK_BYTES", chunk_bytes)
    stats: dict = {}
    original = _engines.run_local
    monkeypatch.setattr("headwater.components.ingest._component.run_local",
                        lambda *a: original(*a, stats=stats))
    out = tmp_path / name
    examples = types.Examples(str(out / "examples"))
    schema = types.Schema(str(out / "schema"))
    run_ingest(examples, schema, **params)
    return examples, Path(_data.schema_path(schema)).read_text(), stats


def decoded(examples) -> dict[str, list[str]]:
    return {split: sorted(json.dumps(r, sort_keys=True, default=lambda b: b.decode())
                          for r in _data.read_examples(examples, split).to_pylist())
            for split in _data.split_names(examples)}


def error_of(fn) -> str:
    with pytest.raises(InputDataError) as info:
        fn()
    return str(info.value)


def test_memory_is_bounded_by_the_chunk_not_the_file(tmp_path, monkeypatch):
    data = tmp_path / "data"
    csv_path = penguin_like(data / "p.csv", 40_000)
    shortest = min(len(line) + 1 for line in csv_path.read_text().splitlines()[1:])
    chunk = 64 << 10
    small, small_schema, stats = run(tmp_path, "small", monkeypatch, chunk, input_base=str(data))
    # Never more rows at once than one chunk of the file can hold, in the reader and in the writers.
    assert stats["largest_chunk_rows"] <= chunk // shortest + 1
    assert stats["chunks"] >= csv_path.stat().st_size // chunk
    whole, whole_schema, whole_stats = run(tmp_path, "whole", monkeypatch, WHOLE_FILE, input_base=str(data))
    assert whole_stats["chunks"] == 1 and whole_stats["largest_chunk_rows"] == 40_000
    # The same schema and the same examples in the same splits as reading the file whole.
    assert small_schema == whole_schema
    assert decoded(small) == decoded(whole)
    assert small.custom_properties["num_examples"] == whole.custom_properties["num_examples"]


@pytest.mark.parametrize("case", ["int_then_float", "null_then_values", "number_then_text", "text_then_bad_utf8"])
def test_a_late_value_changes_the_type_as_in_a_whole_file_read(tmp_path, monkeypatch, case):
    """open_csv infers types from the first chunk; a later value that does not fit loosens the column."""
    data = tmp_path / "data"
    base = penguin_like(data / "p.csv", 3000)
    text = base.read_text()
    if case == "int_then_float":
        text += "Adelie,Dream,40.1,181.5,male,\n"  # flipper_length_mm: INT so far, FLOAT now
    elif case == "null_then_values":
        text += "Adelie,Dream,40.1,181,male,late note\n"  # note: empty so far
    elif case == "number_then_text":
        text += "".join(f"Adelie,Dream,40.1,unknown{i},male,\n" for i in range(400))  # > 10%: a text column
    base.write_text(text)
    if case == "text_then_bad_utf8":
        base.write_bytes(base.read_bytes() + "Gentoo,Dr\xe9am,40.1,181,male,\n".encode("latin-1"))
        with_chunks = error_of(lambda: run(tmp_path, "a", monkeypatch, 16 << 10, input_base=str(data)))
        whole = error_of(lambda: run(tmp_path, "b", monkeypatch, WHOLE_FILE, input_base=str(data)))
        assert with_chunks == whole
        assert f"line {3002}: column 'island' holds b'Dr\\xe9am', which is not UTF-8 text" in whole
        small, small_schema, _ = run(tmp_path, "c", monkeypatch, 16 << 10, input_base=str(data), skip_malformed=True)
        big, big_schema, _ = run(tmp_path, "d", monkeypatch, WHOLE_FILE, input_base=str(data), skip_malformed=True)
    else:
        small, small_schema, stats = run(tmp_path, "c", monkeypatch, 16 << 10, input_base=str(data))
        assert stats["chunks"] > 3
        big, big_schema, _ = run(tmp_path, "d", monkeypatch, WHOLE_FILE, input_base=str(data))
    assert small_schema == big_schema
    assert decoded(small) == decoded(big)
    assert small.custom_properties.get("skipped_rows") == big.custom_properties.get("skipped_rows")


def test_malformed_values_late_in_the_file_name_their_line_as_a_whole_file_read(tmp_path, monkeypatch):
    data = tmp_path / "data"
    base = penguin_like(data / "p.csv", 3000)
    base.write_text(base.read_text() + "Adelie,Dream,40.1,lots,male,\n" + "Adelie,Dream,inf,181,male,\n"
                    + "Adelie,Dream,40.1,181,male,,extra\n")
    # A wrong number of fields is reported first, then the text in a number column, then the non-finite value.
    errors = []
    for skip_fields in (False, True):
        if skip_fields:
            base.write_text(base.read_text().replace("Adelie,Dream,40.1,181,male,,extra\n", ""))
        with_chunks = error_of(lambda: run(tmp_path, "a", monkeypatch, 16 << 10, input_base=str(data)))
        whole = error_of(lambda: run(tmp_path, "b", monkeypatch, WHOLE_FILE, input_base=str(data)))
        assert with_chunks == whole
        errors.append(whole)
    assert "line 3004: malformed row: expected 6 fields as in the header, found 7" in errors[0]
    assert "line 3002: malformed row: column 'flipper_length_mm' holds 'lots', which is not a number" in errors[1]
    small, small_schema, _ = run(tmp_path, "c", monkeypatch, 16 << 10, input_base=str(data), skip_malformed=True)
    big, big_schema, _ = run(tmp_path, "d", monkeypatch, WHOLE_FILE, input_base=str(data), skip_malformed=True)
    assert small.custom_properties["skipped_rows"] == big.custom_properties["skipped_rows"] == 2
    assert small_schema == big_schema and decoded(small) == decoded(big)
    base.write_text(base.read_text().replace("Adelie,Dream,40.1,lots,male,\n", ""))
    with_chunks = error_of(lambda: run(tmp_path, "e", monkeypatch, 16 << 10, input_base=str(data)))
    assert with_chunks == error_of(lambda: run(tmp_path, "f", monkeypatch, WHOLE_FILE, input_base=str(data)))
    assert "line 3002: column 'bill_length_mm' holds 'inf', which is not a finite number" in with_chunks


def test_writer_processes_write_what_the_reader_alone_writes(tmp_path, monkeypatch):
    data = tmp_path / "data"
    penguin_like(data / "a.csv", 20_000)
    penguin_like(data / "b.csv", 7_000)
    alone, alone_schema, alone_stats = run(tmp_path, "alone", monkeypatch, 64 << 10, input_base=str(data))
    assert alone_stats["writers"] == 1
    monkeypatch.setattr(_write, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(_write, "writer_count", lambda: 2)
    monkeypatch.setattr(_write, "ROWS_PER_SHARD", 5_000)
    pooled, pooled_schema, stats = run(tmp_path, "pooled", monkeypatch, 64 << 10, input_base=str(data))
    assert stats["writers"] == 2
    assert stats["shards"] == {"train": 4, "eval": 2}  # ~18k and ~9k rows: a multiple of the writer count
    assert pooled_schema == alone_schema
    assert decoded(pooled) == decoded(alone)
    for split, n in stats["shards"].items():
        names = sorted(Path(p).name for p in _data.examples_files(pooled, split))
        assert names == [f"data_tfrecord-{k:05d}-of-{n:05d}.gz" for k in range(n)]
    assert pooled.custom_properties["num_examples"] == alone.custom_properties["num_examples"]


def test_a_writer_process_that_fails_is_an_error_naming_it(tmp_path, monkeypatch):
    data = tmp_path / "data"
    penguin_like(data / "a.csv", 5_000)
    monkeypatch.setattr(_write, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(_write, "writer_count", lambda: 2)
    (tmp_path / "blocked").write_text("a file where the examples folder should be")
    monkeypatch.setattr(_stream, "CHUNK_BYTES", 64 << 10)
    examples = types.Examples(str(tmp_path / "blocked" / "examples"))
    with pytest.raises(InputDataError, match=r"Ingest writer process \d \(pid \d+\) failed with exit code 1:\n"
                                             r"(?s:.*)NotADirectoryError"):
        run_ingest(examples, types.Schema(str(tmp_path / "schema")), input_base=str(data))
