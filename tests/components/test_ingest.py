"""Ingest on the real Palmer penguins data: files and spans, splits, schema, engines, fingerprints, bad input."""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path

import pytest
from headwater.components import _data
from headwater.components.ingest import Ingest, ingest_input_fingerprint, resolve_input, run_ingest
from headwater.metadata import types
from headwater.metadata.errors import InputDataError

pytestmark = pytest.mark.ml

pa = pytest.importorskip("pyarrow")
pytest.importorskip("tfx_bsl")


# ------------------------------------------------------------------------------------------ helpers
def ingest(tmp_path: Path, **params):
    out = tmp_path / "out"
    examples = types.Examples(str(out / "examples"))
    schema = types.Schema(str(out / "schema"))
    run_ingest(examples, schema, **params)
    return examples, schema


def rows(examples: types.Examples, split: str) -> list[dict]:
    """Decoded examples of one split (tfx_bsl decoder, no TensorFlow)."""
    return _data.read_examples(examples, split).to_pylist()


def all_rows(examples: types.Examples) -> list[dict]:
    return [r for s in _data.split_names(examples) for r in rows(examples, s)]


def key(row: dict) -> str:
    return json.dumps(row, sort_keys=True, default=lambda b: b.decode())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def penguin_rows(tmp_path: Path) -> list[list[str]]:
    return list(csv.reader(_data.penguins_csv(tmp_path / "source.csv").read_text().splitlines()))


def feature(schema_proto, name):
    return next(f for f in schema_proto.feature if f.name == name)


# ------------------------------------------------------------------------------------ the real data
def test_penguins_csv_is_the_real_data_with_its_hard_columns(tmp_path):
    path = _data.penguins_csv(tmp_path / "penguins.csv")
    table = list(csv.DictReader(path.read_text().splitlines()))
    assert len(table) == 344
    assert {r["species"] for r in table} == {"Adelie", "Chinstrap", "Gentoo"}
    assert {r["island"] for r in table} == {"Biscoe", "Dream", "Torgersen"}
    assert sum(r["sex"] == "" for r in table) == 11
    assert sum(r["bill_length_mm"] == "" for r in table) == 2
    assert {r["year"] for r in table} == {"2007", "2008", "2009"}
    only = list(csv.DictReader(_data.penguins_csv(tmp_path / "y.csv", years=[2008]).read_text().splitlines()))
    assert {r["year"] for r in only} == {"2008"} and 0 < len(only) < 344


def test_penguins_become_split_examples_and_a_schema(tmp_path):
    _data.penguins_csv(tmp_path / "data" / "penguins.csv")
    examples, schema = ingest(tmp_path, input_base=str(tmp_path / "data"), label="species")

    assert json.loads(examples.properties["split_names"]) == ["train", "eval"]
    assert examples.properties["span"] == 0 and examples.properties["version"] is None
    counts = examples.custom_properties["num_examples"]
    assert counts["train"] + counts["eval"] == 344
    assert 0.58 < counts["train"] / 344 < 0.75  # 2:1 by hash
    for split in ("train", "eval"):
        files = sorted(p.name for p in (Path(examples.uri) / f"Split-{split}").iterdir())
        assert files == ["data_tfrecord-00000-of-00001.gz"]
    assert examples.custom_properties["file_format"] == "tfrecords_gzip"
    assert examples.custom_properties["payload_format"] == "FORMAT_TF_EXAMPLE"

    decoded = all_rows(examples)
    assert len(decoded) == 344
    first = next(r for r in decoded if r["bill_length_mm"] is None)  # the row with every measurement missing
    assert first["island"] == [b"Torgersen"] and first["sex"] is None and first["year"] == [2007]
    assert sum(r["sex"] is None for r in decoded) == 11
    some = next(r for r in decoded if r["bill_length_mm"] == [pytest.approx(39.1)] and r["body_mass_g"] == [3750])
    assert some["species"] == [b"Adelie"] and some["flipper_length_mm"] == [181]

    proto = _data.read_schema(schema)
    assert Path(schema.uri, "schema.pbtxt").is_file()
    from tensorflow_metadata.proto.v0 import schema_pb2

    kinds = {f.name: schema_pb2.FeatureType.Name(f.type) for f in proto.feature}
    assert kinds == {"species": "BYTES", "island": "BYTES", "bill_length_mm": "FLOAT", "bill_depth_mm": "FLOAT",
                     "flipper_length_mm": "INT", "body_mass_g": "INT", "sex": "BYTES", "year": "INT"}
    species = feature(proto, "species")
    assert species.presence.min_fraction == 1.0 and [d.size for d in species.shape.dim] == [1]
    sex = feature(proto, "sex")
    assert sex.presence.min_fraction == 0.0 and sex.presence.min_count == 1
    assert not sex.HasField("shape") and (sex.value_count.min, sex.value_count.max) == (1, 1)
    domains = {d.name: list(d.value) for d in proto.string_domain}
    assert domains == {"species": ["Adelie", "Chinstrap", "Gentoo"], "island": ["Biscoe", "Dream", "Torgersen"],
                       "sex": ["female", "male"]}
    assert sex.domain == "sex"


def test_examples_read_back_with_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    _data.penguins_csv(tmp_path / "data" / "penguins.csv")
    examples, _ = ingest(tmp_path, input_base=str(tmp_path / "data"))
    pattern = _data.examples_file_pattern(examples.uri, "train")
    records = list(tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP").as_numpy_iterator())
    assert len(records) == examples.custom_properties["num_examples"]["train"]
    parsed = [tf.train.Example.FromString(r) for r in records]
    missing = [p for p in parsed if not p.features.feature["sex"].bytes_list.value]
    assert missing and all(p.features.feature["island"].bytes_list.value for p in parsed)


def test_split_is_deterministic(tmp_path):
    _data.penguins_csv(tmp_path / "data" / "penguins.csv")
    a, _ = ingest(tmp_path / "a", input_base=str(tmp_path / "data"))
    b, _ = ingest(tmp_path / "b", input_base=str(tmp_path / "data"))
    for split in ("train", "eval"):
        # (Not byte-identical: protobuf serializes the features map in a randomized order.)
        assert list(map(key, rows(a, split))) == list(map(key, rows(b, split)))
    # Row order in the file does not decide the split: reversed data splits the same way.
    lines = (tmp_path / "data" / "penguins.csv").read_text().splitlines()
    write(tmp_path / "rev" / "penguins.csv", "\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    c, _ = ingest(tmp_path / "c", input_base=str(tmp_path / "rev"))
    assert sorted(map(key, rows(a, "eval"))) == sorted(map(key, rows(c, "eval")))


def test_custom_ratios_and_partition_feature(tmp_path):
    _data.penguins_csv(tmp_path / "data" / "penguins.csv")
    examples, _ = ingest(tmp_path, input_base=str(tmp_path / "data"),
                         split_ratios={"train": 8, "eval": 1, "test": 1})
    counts = examples.custom_properties["num_examples"]
    assert list(counts) == ["train", "eval", "test"] and sum(counts.values()) == 344
    assert counts["train"] > 230 and counts["eval"] > 15 and counts["test"] > 15
    assert json.loads(examples.properties["split_names"]) == ["train", "eval", "test"]

    by_mass, _ = ingest(tmp_path / "p", input_base=str(tmp_path / "data"), partition_feature="body_mass_g")
    masses = {s: [r["body_mass_g"][0] for r in rows(by_mass, s) if r["body_mass_g"]] for s in ("train", "eval")}
    shared = set(masses["train"]) & set(masses["eval"])
    assert not shared  # penguins of the same body mass always land in the same split
    assert len(masses["train"]) > len(set(masses["train"]))  # (and there are such penguins)


def test_local_and_beam_engines_write_the_same_examples(tmp_path):
    pytest.importorskip("apache_beam")
    _data.penguins_csv(tmp_path / "data" / "a" / "penguins.csv", years=[2007, 2008])
    _data.penguins_csv(tmp_path / "data" / "b" / "penguins.csv", years=[2009])
    params = {"input_base": str(tmp_path / "data"), "pattern": "*/*.csv", "label": "species"}
    local, local_schema = ingest(tmp_path / "l", engine="local", **params)
    beam, beam_schema = ingest(tmp_path / "b", engine="beam", **params)
    assert beam.custom_properties["engine"] == "beam" and local.custom_properties["engine"] == "local"
    assert beam.custom_properties["num_examples"] == local.custom_properties["num_examples"]
    for split in ("train", "eval"):
        assert sorted(map(key, rows(local, split))) == sorted(map(key, rows(beam, split)))
        assert [Path(p).name for p in _data.examples_files(beam, split)] == ["data_tfrecord-00000-of-00001.gz"]
    assert _data.read_schema(local_schema) == _data.read_schema(beam_schema)


def test_beam_engine_reports_bad_input_as_input_data_error(tmp_path):
    pytest.importorskip("apache_beam")
    write(tmp_path / "data" / "a.csv", "x,y\n1,2\n3,4\n")
    write(tmp_path / "data" / "b.csv", "x,y\n1,2\n")
    write(tmp_path / "data" / "c.csv", "x,y\n")
    with pytest.raises(InputDataError, match=r"file .*c\.csv has a header \(x, y\) but no rows"):
        ingest(tmp_path, input_base=str(tmp_path / "data"), engine="beam")


def test_auto_engine_follows_the_beam_runner():
    from headwater.components._runtime import choose_engine

    def _choose_engine(engine, beam_args):
        return choose_engine(engine, beam_args, component="Ingest")

    assert _choose_engine("auto", ()) == "local"
    assert _choose_engine("auto", ("--runner=DirectRunner",)) == "local"
    assert _choose_engine("auto", ("--runner=FlinkRunner", "--flink_master=x:8081")) == "beam"
    assert _choose_engine("local", ("--runner=DataflowRunner",)) == "local"
    with pytest.raises(InputDataError, match="engine='spark' is unknown; use 'auto', 'local' or 'beam'"):
        _choose_engine("spark", ())


# ------------------------------------------------------------------------------ files, spans, formats
def test_latest_span_by_default_or_the_given_one(tmp_path):
    for span, year in ((1, 2007), (2, 2008), (3, 2009)):
        _data.penguins_csv(tmp_path / "data" / f"span-{span}" / "penguins.csv", years=[year])
    latest, _ = ingest(tmp_path / "a", input_base=str(tmp_path / "data"), pattern="span-{SPAN}/*.csv")
    assert latest.properties["span"] == 3
    assert {r["year"][0] for r in all_rows(latest)} == {2009}
    first, _ = ingest(tmp_path / "b", input_base=str(tmp_path / "data"), pattern="span-{SPAN}/*.csv", span=1)
    assert first.properties["span"] == 1
    assert {r["year"][0] for r in all_rows(first)} == {2007}
    with pytest.raises(InputDataError, match=r"span 7 not found under .* \(available spans: \[1, 2, 3\]\)"):
        ingest(tmp_path / "c", input_base=str(tmp_path / "data"), pattern="span-{SPAN}/*.csv", span=7)


def test_versions_and_dates(tmp_path):
    write(tmp_path / "v" / "span-2" / "ver-1" / "d.csv", "a,b\n1,x\n2,y\n3,z\n4,w\n5,v\n6,u\n")
    write(tmp_path / "v" / "span-2" / "ver-3" / "d.csv", "a,b\n9,x\n8,y\n7,z\n6,w\n5,v\n4,u\n")
    write(tmp_path / "v" / "span-1" / "ver-9" / "d.csv", "a,b\n0,x\n")
    examples, _ = ingest(tmp_path / "o1", input_base=str(tmp_path / "v"), pattern="span-{SPAN}/ver-{VERSION}/*.csv")
    assert (examples.properties["span"], examples.properties["version"]) == (2, 3)
    assert sorted(r["a"][0] for r in all_rows(examples)) == [4, 5, 6, 7, 8, 9]
    older, _ = ingest(tmp_path / "o2", input_base=str(tmp_path / "v"), pattern="span-{SPAN}/ver-{VERSION}/*.csv",
                      version=1)
    assert older.properties["version"] == 1

    write(tmp_path / "d" / "2024-01-31.csv", "a\n1\n2\n3\n4\n5\n6\n")
    write(tmp_path / "d" / "2024-02-01.csv", "a\n1\n2\n3\n4\n5\n6\n")
    dated, _ = ingest(tmp_path / "o3", input_base=str(tmp_path / "d"), pattern="{YYYY}-{MM}-{DD}.csv")
    assert dated.properties["span"] == 19754  # days from 1970-01-01 to 2024-02-01, as TFX numbers date spans
    with pytest.raises(InputDataError, match=r"holds both \{SPAN\} and a date; the date is the span"):
        resolve_input(str(tmp_path / "d"), "{SPAN}-{YYYY}{MM}{DD}.csv")
    with pytest.raises(InputDataError, match=r"holds \{VERSION\} without \{SPAN\} or a date"):
        resolve_input(str(tmp_path / "d"), "v{VERSION}.csv")


def test_pre_split_folders(tmp_path):
    data = penguin_rows(tmp_path)
    header, body = data[0], data[1:]
    train = "\n".join(",".join(r) for r in [header, *body[:300]]) + "\n"
    evals = "\n".join(",".join(r) for r in [header, *body[300:]]) + "\n"
    write(tmp_path / "in" / "train" / "part-0.csv", train)
    write(tmp_path / "in" / "eval" / "part-0.csv", evals)
    examples, _ = ingest(tmp_path, input_base=str(tmp_path / "in"),
                         splits={"train": "train/*.csv", "eval": "eval/*.csv"})
    assert examples.custom_properties["num_examples"] == {"train": 300, "eval": 44}
    assert json.loads(examples.properties["split_names"]) == ["train", "eval"]
    with pytest.raises(InputDataError, match="got splits= .* and split_ratios=; use one of them"):
        ingest(tmp_path / "x", input_base=str(tmp_path / "in"), splits={"train": "train/*.csv"},
               split_ratios={"train": 1})


def test_parquet_matches_csv(tmp_path):
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    csv_path = _data.penguins_csv(tmp_path / "csv" / "penguins.csv")
    table = pcsv.read_csv(csv_path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    (tmp_path / "pq").mkdir()
    pq.write_table(table, tmp_path / "pq" / "penguins.parquet")
    from_csv, csv_schema = ingest(tmp_path / "a", input_base=str(tmp_path / "csv"))
    from_pq, pq_schema = ingest(tmp_path / "b", input_base=str(tmp_path / "pq"))
    assert _data.read_schema(csv_schema) == _data.read_schema(pq_schema)
    for split in ("train", "eval"):
        assert sorted(map(key, rows(from_csv, split))) == sorted(map(key, rows(from_pq, split)))


def test_gzipped_csv_and_object_store_paths(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    source = _data.penguins_csv(tmp_path / "penguins.csv").read_bytes()
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "penguins.csv.gz").write_bytes(gzip.compress(source))
    zipped, _ = ingest(tmp_path / "a", input_base=str(tmp_path / "gz"))
    assert sum(zipped.custom_properties["num_examples"].values()) == 344

    memory = fsspec.filesystem("memory")
    base = f"memory://hw-test-{os.getpid()}"
    memory.pipe(f"{base}/span-1/penguins.csv", source)
    memory.pipe(f"{base}/span-2/penguins.csv", source.replace(b"Torgersen", b"Torgersen Island"))
    try:
        remote, _ = ingest(tmp_path / "b", input_base=base, pattern="span-{SPAN}/*.csv")
        assert remote.properties["span"] == 2
        assert any(r["island"] == [b"Torgersen Island"] for r in all_rows(remote))
        first = ingest_input_fingerprint({"input_base": base, "pattern": "span-{SPAN}/*.csv"})
        memory.pipe(f"{base}/span-2/penguins.csv", source)  # re-written in place: new fingerprint
        assert ingest_input_fingerprint({"input_base": base, "pattern": "span-{SPAN}/*.csv"}) != first
    finally:
        memory.rm(base, recursive=True)


def test_input_fingerprint_follows_the_files(tmp_path):
    data = tmp_path / "data"
    path = _data.penguins_csv(data / "span-1" / "penguins.csv", years=[2007])
    params = {"input_base": str(data), "pattern": "span-{SPAN}/*.csv"}
    first = ingest_input_fingerprint(params)
    assert ingest_input_fingerprint(dict(params)) == first  # nothing changed: same key
    path.write_text(path.read_text() + "Adelie,Dream,40.0,18.0,190,3800,male,2007\n")
    changed = ingest_input_fingerprint(params)
    assert changed != first
    _data.penguins_csv(data / "span-2" / "penguins.csv", years=[2008])
    assert ingest_input_fingerprint(params) not in (first, changed)  # a new span arrived
    assert ingest_input_fingerprint({**params, "span": 1}) == changed  # pinned span: unaffected
    examples, _ = ingest(tmp_path / "o", **params)
    assert examples.custom_properties["input_fingerprint"] == ingest_input_fingerprint(params)


def test_column_types_and_null_values(tmp_path):
    write(tmp_path / "d" / "a.csv", "zip,v\n01234,1\n02345,?\n03456,3\n04567,4\n05678,5\n06789,6\n")
    examples, schema = ingest(tmp_path, input_base=str(tmp_path / "d"), column_types={"zip": "string"},
                              null_values=["?"])
    decoded = all_rows(examples)
    assert sorted(r["zip"][0] for r in decoded)[0] == b"01234"
    assert sum(r["v"] is None for r in decoded) == 1
    from tensorflow_metadata.proto.v0 import schema_pb2

    assert feature(_data.read_schema(schema), "zip").type == schema_pb2.BYTES
    with pytest.raises(InputDataError, match=r"column_types\['zip'\] = 'text' is unknown"):
        ingest(tmp_path / "x", input_base=str(tmp_path / "d"), column_types={"zip": "text"})
    write(tmp_path / "e" / "a.csv", "zip,v\n1,1\n2,2\n3,3\n4,4\nA5,5\n6,6\n")
    with pytest.raises(InputDataError, match=r"file .*a\.csv, line 6: column 'zip' holds 'A5', which is not int64 "
                                             r"as column_types requires; fix the value or change column_types"):
        ingest(tmp_path / "y", input_base=str(tmp_path / "e"), column_types={"zip": "int"})


def test_tab_separated_files(tmp_path):
    rows = [line.split(",") for line in _data.penguins_csv(tmp_path / "p.csv").read_text().splitlines()]
    write(tmp_path / "d" / "penguins.tsv", "\n".join("\t".join(r) for r in rows) + "\n")
    examples, _ = ingest(tmp_path, input_base=str(tmp_path / "d"), label="species")
    assert sum(examples.custom_properties["num_examples"].values()) == 344


# ------------------------------------------------------------------------------------------ bad input
def test_empty_file(tmp_path):
    _data.penguins_csv(tmp_path / "d" / "a.csv")
    write(tmp_path / "d" / "b.csv", "")
    with pytest.raises(InputDataError, match=r"file .*b\.csv is empty \(0 bytes\); remove it from the input"):
        ingest(tmp_path, input_base=str(tmp_path / "d"))


def test_header_only_file(tmp_path):
    write(tmp_path / "d" / "a.csv", "species,island,year\n")
    with pytest.raises(InputDataError,
                       match=r"file .*a\.csv has a header \(species, island, year\) but no rows; remove it"):
        ingest(tmp_path, input_base=str(tmp_path / "d"))


def test_malformed_row_names_file_and_line(tmp_path):
    lines = _data.penguins_csv(tmp_path / "p.csv").read_text().splitlines()
    lines[5] = lines[5] + ",extra"  # line 6 of the file
    write(tmp_path / "d" / "penguins.csv", "\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=r"file .*penguins\.csv, line 6: malformed row: expected 8 fields "
                                             r"as in the header, found 9: .*skip_malformed=True"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
    examples, _ = ingest(tmp_path / "b", input_base=str(tmp_path / "d"), skip_malformed=True)
    assert examples.custom_properties["skipped_rows"] == 1
    assert sum(examples.custom_properties["num_examples"].values()) == 343


def test_text_in_a_numeric_column_is_a_malformed_row(tmp_path):
    lines = _data.penguins_csv(tmp_path / "p.csv").read_text().splitlines()
    fields = lines[10].split(",")
    fields[5] = "3750g"  # body_mass_g, line 11
    lines[10] = ",".join(fields)
    write(tmp_path / "d" / "penguins.csv", "\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=r"file .*penguins\.csv, line 11: malformed row: column 'body_mass_g' "
                                             r"holds '3750g', which is not a number, while 341 other values"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
    examples, schema = ingest(tmp_path / "b", input_base=str(tmp_path / "d"), skip_malformed=True)
    assert examples.custom_properties["skipped_rows"] == 1
    from tensorflow_metadata.proto.v0 import schema_pb2

    assert feature(_data.read_schema(schema), "body_mass_g").type == schema_pb2.INT


def test_column_type_change_between_files(tmp_path):
    _data.penguins_csv(tmp_path / "d" / "span-1" / "a.csv", years=[2007])
    text = _data.penguins_csv(tmp_path / "p.csv", years=[2008]).read_text()
    lines = text.splitlines()
    changed = [lines[0]] + [",".join([*r.split(",")[:5], r.split(",")[5] + " g", *r.split(",")[6:]])
                            for r in lines[1:]]
    write(tmp_path / "d" / "span-1" / "b.csv", "\n".join(changed) + "\n")
    with pytest.raises(InputDataError, match=r"column 'body_mass_g' changes type between files: numbers \(INT\) "
                                             r"in .*a\.csv but text \(BYTES\) in .*b\.csv, e\.g\. line 2: '\d+ g'"):
        ingest(tmp_path / "x", input_base=str(tmp_path / "d"), pattern="span-{SPAN}/*.csv")


def test_column_type_change_against_the_previous_span_schema(tmp_path):
    _data.penguins_csv(tmp_path / "d" / "span-1" / "p.csv", years=[2007])
    _, schema1 = ingest(tmp_path / "s1", input_base=str(tmp_path / "d"), pattern="span-{SPAN}/*.csv")
    lines = _data.penguins_csv(tmp_path / "p.csv", years=[2008]).read_text().splitlines()
    changed = [lines[0]] + [r.replace(",male,", ",M,").replace(",female,", ",F,") for r in lines[1:]]
    changed = [lines[0]] + [",".join(["x" + f if i == 4 and f else f for i, f in enumerate(r.split(","))])
                            for r in changed[1:]]
    write(tmp_path / "d" / "span-2" / "p.csv", "\n".join(changed) + "\n")
    previous = _data.read_schema(schema1)
    with pytest.raises(InputDataError, match=r"column 'flipper_length_mm' was INT in the previous schema but is "
                                             r"BYTES in .*span-2.*p\.csv \(line 2: 'x\d+'\)\. A feature keeps its "
                                             r"type across spans"):
        ingest(tmp_path / "s2", input_base=str(tmp_path / "d"), pattern="span-{SPAN}/*.csv",
               previous_schema=previous)
    # Integral floats in a column that was INT stay INT; an INT column that now has fractions is FLOAT.
    write(tmp_path / "e" / "span-1" / "a.csv", "n,f\n1,1.5\n2,2.5\n3,3.5\n4,4.5\n5,5.5\n6,6.5\n")
    _, s1 = ingest(tmp_path / "e1", input_base=str(tmp_path / "e"), pattern="span-{SPAN}/*.csv")
    write(tmp_path / "e" / "span-2" / "a.csv", "n,f\n1.0,1\n2.0,2\n3.0,3\n4.0,4\n5.0,5\n6.0,6\n")
    examples, s2 = ingest(tmp_path / "e2", input_base=str(tmp_path / "e"), pattern="span-{SPAN}/*.csv",
                          previous_schema=_data.read_schema(s1))
    assert _data.read_schema(s1) == _data.read_schema(s2)
    assert sorted(r["n"][0] for r in all_rows(examples)) == [1, 2, 3, 4, 5, 6]
    write(tmp_path / "e" / "span-3" / "a.csv", "n,f\n1.5,1\n2,2\n3,3\n4,4\n5,5\n6,6\n")
    with pytest.raises(InputDataError, match=r"column 'n' was INT in the previous schema but is FLOAT in "
                                             r".*span-3.*a\.csv \(it now has fractional values\)"):
        ingest(tmp_path / "e3", input_base=str(tmp_path / "e"), pattern="span-{SPAN}/*.csv",
               previous_schema=_data.read_schema(s1))


def test_all_missing_label(tmp_path):
    lines = _data.penguins_csv(tmp_path / "p.csv").read_text().splitlines()
    blank = [lines[0]] + ["," + r.split(",", 1)[1] for r in lines[1:]]
    write(tmp_path / "d" / "penguins.csv", "\n".join(blank) + "\n")
    with pytest.raises(InputDataError, match=r"file .*penguins\.csv: label column 'species' has no values \(all "
                                             r"344 rows are missing it\); every example needs a label"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"), label="species")
    with pytest.raises(InputDataError, match=r"label column 'kind' is not in the input .*; its columns are "
                                             r"\['species', 'island'"):
        ingest(tmp_path / "b", input_base=str(tmp_path / "d"), label="kind")


def test_no_matching_files_and_empty_splits(tmp_path):
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "notes.txt", "not data")
    with pytest.raises(InputDataError, match=r"no input files match .*; Ingest reads .csv, .csv.gz, .tsv, .tsv.gz, "
                                             r".parquet files"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
    write(tmp_path / "d" / "one.csv", "a\n1\n")
    with pytest.raises(InputDataError, match=r"split '(train|eval)' received no examples out of 1 rows"):
        ingest(tmp_path / "b", input_base=str(tmp_path / "d"))


# ----------------------------------------------------------------------------- through the runner
def test_ingest_node_in_a_pipeline_is_cached_until_the_data_changes(tmp_path):
    from headwater.metadata import connect
    from headwater.pipelines import LocalRunner, Pipeline

    data = tmp_path / "data"
    _data.penguins_csv(data / "span-1" / "penguins.csv", years=[2007])
    node = Ingest(input_base=str(data), pattern="span-{SPAN}/*.csv", label="species")
    pipeline = Pipeline(name="ingest", root=str(tmp_path / "root"), nodes=[node])
    first = LocalRunner(quiet=True, max_workers=1).run(pipeline)
    assert first.ok, first
    [examples] = first.outputs("Ingest", "examples")
    [schema] = first.outputs("Ingest", "schema")
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    [stored] = store.get_artifacts([examples.id])
    assert stored.properties["span"] == 1 and stored.properties["split_names"] == '["train", "eval"]'
    assert (Path(examples.uri) / "Split-train").is_dir() and (Path(schema.uri) / "schema.pbtxt").is_file()

    again = LocalRunner(quiet=True, max_workers=1).run(pipeline)
    assert again.nodes["Ingest"].state == "cached"
    _data.penguins_csv(data / "span-2" / "penguins.csv", years=[2008])
    third = LocalRunner(quiet=True, max_workers=1).run(pipeline)
    assert third.nodes["Ingest"].state != "cached" and third.ok
    [newer] = third.outputs("Ingest", "examples")
    assert store.get_artifacts([newer.id])[0].properties["span"] == 2


def test_bad_input_fails_the_node_and_publishes_nothing(tmp_path):
    from headwater.metadata import connect
    from headwater.pipelines import LocalRunner, Pipeline

    write(tmp_path / "data" / "a.csv", "species,island\n")
    pipeline = Pipeline(name="bad", root=str(tmp_path / "root"), nodes=[Ingest(input_base=str(tmp_path / "data"))])
    result = LocalRunner(quiet=True, max_workers=1).run(pipeline)
    assert not result.ok
    node = result.nodes["Ingest"]
    assert node.state == "failed" and "has a header (species, island) but no rows" in (node.error or "")
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    assert not [a for a in store.mlmd.get_artifacts() if a.state == 2]  # nothing LIVE


# ------------------------------------------------------------------------------ bad values (issue 15)
def _penguin_lines(tmp_path):
    return _data.penguins_csv(tmp_path / "p.csv").read_text().splitlines()


def test_a_few_text_values_in_a_numeric_column_are_malformed_rows_not_a_text_column(tmp_path):
    # 8 of 344 values (2%): before, the column silently became text and Transform failed much later.
    lines = _penguin_lines(tmp_path)
    bad_lines = [10, 40, 80, 120, 160, 200, 240, 280]
    for n in bad_lines:
        fields = lines[n - 1].split(",")
        fields[5] = "abc"  # body_mass_g
        lines[n - 1] = ",".join(fields)
    write(tmp_path / "d" / "penguins.csv", "\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=r"file .*penguins\.csv, line 10: malformed row: column 'body_mass_g' "
                                             r"holds 'abc', which is not a number, while \d+ other values of the "
                                             r"column are numbers \(8 values are not\)"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
    examples, schema = ingest(tmp_path / "b", input_base=str(tmp_path / "d"), skip_malformed=True)
    assert examples.custom_properties["skipped_rows"] == 8
    from tensorflow_metadata.proto.v0 import schema_pb2

    assert feature(_data.read_schema(schema), "body_mass_g").type == schema_pb2.INT
    # Past the documented share (10%) the column is text, as a column of labels with a few numbers is.
    from headwater.components.ingest._read import NUMERIC_TEXT_SHARE

    assert NUMERIC_TEXT_SHARE == 0.10
    write(tmp_path / "e" / "t.csv", "code\n" + "".join(f"{i}\n" for i in range(8)) + "x\ny\n")
    _, schema = ingest(tmp_path / "c", input_base=str(tmp_path / "e"))
    assert feature(_data.read_schema(schema), "code").type == schema_pb2.BYTES


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e309"])
def test_non_finite_numbers_are_rejected_unless_allowed(tmp_path, value):
    rows = [f"{i + 0.5},{i}" for i in range(1, 13)]
    rows[2] = f"{value},3"  # line 4 of the file
    write(tmp_path / "d" / "v.csv", "x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputDataError, match=rf"file .*v\.csv, line 4: column 'x' holds '{value}', which is "
                                             r"not a finite number\. Fix the value, pass allow_non_finite=True"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
    examples, _ = ingest(tmp_path / "b", input_base=str(tmp_path / "d"), allow_non_finite=True)
    xs = sorted(r["x"][0] for r in all_rows(examples))
    assert [x for x in xs if abs(x) == float("inf")] == [float("-inf") if value == "-inf" else float("inf")]
    examples, _ = ingest(tmp_path / "c", input_base=str(tmp_path / "d"), skip_malformed=True)
    assert examples.custom_properties["skipped_rows"] == 1
    assert sum(examples.custom_properties["num_examples"].values()) == 11


def test_non_finite_numbers_in_parquet_name_the_row(tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"x": [1.0, 2.0, float("inf"), 4.0], "y": [1, 2, 3, 4]}), tmp_path / "d" / "v.parquet")
    with pytest.raises(InputDataError, match=r"file .*v\.parquet, row 3: column 'x' holds 'inf', which is not a "
                                             r"finite number"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))


def test_text_that_is_not_utf8_names_file_line_column_and_value(tmp_path):
    (tmp_path / "d").mkdir()
    good = b"".join(b"%d,%s\n" % (i, name) for i, name in enumerate([b"Adelie", b"Chinstrap"] * 6, start=3))
    (tmp_path / "d" / "t.csv").write_bytes(b"x,name\n1,Adelie\n2,G\xe9ntoo\n" + good)
    with pytest.raises(InputDataError, match=r"file .*t\.csv, line 3: column 'name' holds b'G\\xe9ntoo', which is "
                                             r"not UTF-8 text \(byte 0xe9 at position 1\)\. Save the file as UTF-8"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
    examples, _ = ingest(tmp_path / "b", input_base=str(tmp_path / "d"), skip_malformed=True)
    assert examples.custom_properties["skipped_rows"] == 1
    assert sorted({r["name"][0] for r in all_rows(examples)}) == [b"Adelie", b"Chinstrap"]
    assert sum(examples.custom_properties["num_examples"].values()) == 13


def test_a_duplicated_header_is_an_error_naming_the_columns(tmp_path):
    # Before: KeyError: 'Field "a" exists 2 times in table schema'.
    write(tmp_path / "d" / "dup.csv", "a,b,a\n1,2,3\n4,5,6\n")
    with pytest.raises(InputDataError, match=r"file .*dup\.csv, line 1: the header names column 'a' 2 times "
                                             r"\(columns 1, 3\); every column needs its own name"):
        ingest(tmp_path / "a", input_base=str(tmp_path / "d"))
