"""headwater.components.storage for real: a local folder, S3 (moto's server), GCS (the emulator) and memory://.

Every backend runs the same tests through the public functions; the errors a user meets (no bucket in the
URL, a bucket that does not exist, a malformed endpoint variable, an unknown scheme) are pinned by their
message, and Ingest reads its input from s3:// and gs:// URLs.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from headwater.components import _data, storage
from headwater.components.storage import join
from headwater.metadata.errors import StorageError

BACKENDS = ["local", "s3", "gs", "memory"]


@pytest.fixture(autouse=True)
def _object_stores_need_pyarrow(request: pytest.FixtureRequest) -> None:
    """s3:// and gs:// are served by pyarrow (the ML extra): skip before a bucket is made without it."""
    if {"object_root", "s3_root"} & set(request.fixturenames):
        pytest.importorskip("pyarrow.fs")


@pytest.fixture(params=BACKENDS)
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty folder on each backend: a local path, ``s3://``/``gs://`` in a fresh bucket, ``memory://``."""
    kind = request.param
    if kind == "local":
        return str(tmp_path / "root")
    pytest.importorskip("pyarrow.fs")
    if kind == "memory":
        fsspec = pytest.importorskip("fsspec")
        bucket = f"hw-{secrets.token_hex(4)}"
        memory = fsspec.filesystem("memory")
        request.addfinalizer(lambda: memory.rm(f"/{bucket}", recursive=True) if memory.exists(f"/{bucket}") else None)
        return f"memory://{bucket}/root"
    return str(request.getfixturevalue(f"{kind}_root"))


def put(base: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        storage.write_bytes(join(base, rel), data)


def rels(base: str, paths: list[str]) -> list[str]:
    """``paths`` relative to ``base``, checking that each is named under ``base`` exactly as it was given."""
    assert all(p.startswith(base.rstrip("/") + "/") for p in paths), (base, paths)
    return [p[len(base.rstrip("/")) + 1:] for p in paths]


def bucket_hint(url: str) -> str:
    return "AWS_ENDPOINT_URL" if url.startswith("s3") else "STORAGE_EMULATOR_HOST"


# --------------------------------------------------------------------------------------- plain paths
def test_join() -> None:
    assert join("s3://bucket", "a", "b.csv") == "s3://bucket/a/b.csv"
    assert join("s3://bucket/", "/a/", "b") == "s3://bucket/a/b"
    assert join("gs://bucket/root") == "gs://bucket/root"
    assert join("/data/root", "x/y") == "/data/root/x/y"
    assert join("relative", "x") == "relative/x"
    assert join("", "x") == "x"
    assert join("memory://b/r", "Split-train", "data.gz") == "memory://b/r/Split-train/data.gz"


def test_is_url_and_local_path() -> None:
    for url in ("s3://bucket/key", "gs://bucket", "memory://b/x", "az://container/blob", "s3a://b/k"):
        assert storage.is_url(url), url
    for path in ("/data/root", "relative/x", "file:///data/root", "C:\\data", "s3:/not-a-url", ""):
        assert not storage.is_url(path), path
    assert storage.local_path("file:///data/root") == "/data/root"
    assert storage.local_path("/data/root") == "/data/root"
    assert storage.local_path("relative/x") == "relative/x"
    # The re-exports Ingest and the other components use are the same functions.
    assert _data.is_url is storage.is_url and _data.join is storage.join and _data.glob_files is storage.glob
    assert _data.file_info is storage.file_info and _data.makedirs is storage.makedirs


def test_file_urls_are_local_paths(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/data/a.bin"
    storage.write_bytes(url, b"local")
    assert (tmp_path / "data" / "a.bin").read_bytes() == b"local"
    assert storage.read_bytes(url) == b"local"
    assert storage.exists(url) and storage.exists(f"file://{tmp_path}/data")
    assert storage.file_info(url).size == 5
    plain = [str(tmp_path / "data" / "a.bin")]
    assert [storage.local_path(p) for p in storage.list_files(f"file://{tmp_path}/data")] == plain
    assert [storage.local_path(p) for p in storage.glob(f"file://{tmp_path}/data/*.bin")] == plain
    storage.makedirs(f"file://{tmp_path}/made/here")
    assert (tmp_path / "made" / "here").is_dir()
    storage.remove(url)
    assert not (tmp_path / "data" / "a.bin").exists()


def test_import_and_local_use_load_neither_pyarrow_nor_fsspec(tmp_path: Path) -> None:
    code = f"""
import sys
from headwater.components import storage as s
heavy = lambda: sorted(m for m in sys.modules if m.split(".")[0] in ("pyarrow", "fsspec"))
print("import", heavy())
base = {str(tmp_path)!r}
s.write_bytes(s.join(base, "d/a.csv"), b"x,y")
assert s.read_bytes(s.join(base, "d/a.csv")) == b"x,y"
assert s.exists(base) and s.list_files(base) and s.glob(s.join(base, "d/*.csv"))
s.file_info(s.join(base, "d/a.csv"))
s.makedirs(s.join(base, "e"))
s.remove(s.join(base, "d"))
print("local", heavy())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["import []", "local []"]


# ---------------------------------------------------------------------------------- every backend
def test_write_and_read_bytes(root: str) -> None:
    path = join(root, "a", "b", "c.bin")
    data = bytes(range(256)) * 64
    storage.write_bytes(path, data)
    assert storage.read_bytes(path) == data
    storage.write_bytes(path, b"short")  # a rewrite replaces the whole file
    assert storage.read_bytes(path) == b"short"
    packed = gzip.compress(b"a,b\n1,2\n" * 100)  # stored as given: not compressed again for its name
    storage.write_bytes(join(root, "data.csv.gz"), packed)
    assert storage.read_bytes(join(root, "data.csv.gz")) == packed
    assert storage.file_info(join(root, "data.csv.gz")).size == len(packed)
    storage.write_bytes(join(root, "empty"), b"")
    assert storage.read_bytes(join(root, "empty")) == b""
    assert storage.exists(join(root, "empty")) and storage.file_info(join(root, "empty")).size == 0

    with storage.open_output(join(root, "stream.txt")) as f:
        f.write(b"abc")
        f.write(b"def")
    with storage.open_input(join(root, "stream.txt")) as f:
        assert f.read(2) == b"ab"
        assert f.read() == b"cdef"
    with _data.open_file(join(root, "via-data.txt"), "wb") as f:
        f.write(b"through _data")
    with _data.open_file(join(root, "via-data.txt")) as f:
        assert f.read() == b"through _data"
    with pytest.raises(ValueError, match="open_file supports 'rb' and 'wb'"):
        _data.open_file(join(root, "via-data.txt"), "r")


def test_exists_for_files_prefixes_and_missing_paths(root: str) -> None:
    put(root, {"data/a.csv": b"1", "data/sub/b.csv": b"2"})
    for present in ("", "data", "data/", "data/sub", "data/a.csv", "data/sub/b.csv"):
        assert storage.exists(join(root, present) if present else root), present
    for missing in ("nope", "data/missing.csv", "data/a.cs", "dat", "data/sub/b", "data/a.csv/x"):
        assert not storage.exists(join(root, missing)), missing
    assert not storage.exists(root + "-sibling")


def test_list_files_is_recursive_sorted_and_named_as_given(root: str) -> None:
    files = ["z.txt", "a/y.txt", "a/b/x.txt", "m.txt", "a/b/c/w.txt", "name with spaces.txt", "a-b/v.txt"]
    put(root, {rel: rel.encode() for rel in files})
    listed = storage.list_files(root)
    assert listed == sorted(listed)
    assert sorted(rels(root, listed)) == sorted(files)
    assert listed == [join(root, rel) for rel in sorted(files)]
    assert storage.list_files(root + "/") == listed
    assert rels(join(root, "a"), storage.list_files(join(root, "a"))) == ["b/c/w.txt", "b/x.txt", "y.txt"]
    assert storage.list_files(join(root, "missing")) == []
    assert storage.list_files(join(root, "z.txt")) == []  # a file is not a folder
    for path in listed:
        assert storage.read_bytes(path) == path[len(root) + 1:].encode()


GLOB_FILES = ["a.csv", "b.csv", "ab.csv", "c.txt", "x1.csv", "sub/d.csv", "sub/deep/e.csv", "sub_d.csv"]
GLOB_CASES = {
    "*.csv": ["a.csv", "ab.csv", "b.csv", "sub_d.csv", "x1.csv"],  # '*' does not cross '/'
    "*": ["a.csv", "ab.csv", "b.csv", "c.txt", "sub_d.csv", "x1.csv"],  # files only, not the folder
    "*/*.csv": ["sub/d.csv"],
    "sub/*": ["sub/d.csv"],
    "*/*/*": ["sub/deep/e.csv"],
    "sub/*/e.csv": ["sub/deep/e.csv"],
    "?.csv": ["a.csv", "b.csv"],
    "??.csv": ["ab.csv", "x1.csv"],
    "sub?d.csv": ["sub_d.csv"],  # '?' does not match '/'
    "[ab].csv": ["a.csv", "b.csv"],
    "[!a].csv": ["b.csv"],
    "[a-b]*.csv": ["a.csv", "ab.csv", "b.csv"],  # a range, not the three characters 'a', '-', 'b'
    "x[0-9].csv": ["x1.csv"],
    "sub[!x]d.csv": ["sub_d.csv"],  # a negated class does not match '/' either
    "[!ax]*.csv": ["b.csv", "sub_d.csv"],
    "c.txt": ["c.txt"],  # no wildcard: the file itself
    "nope.csv": [],
    "sub": [],  # no wildcard, a folder: not a file
    "*.parquet": [],
    "missing/*.csv": [],
}


def test_glob(root: str) -> None:
    put(root, {rel: b"x" for rel in GLOB_FILES})
    wrong = {}
    for pattern, expected in GLOB_CASES.items():
        got = storage.glob(join(root, pattern))
        if got != [join(root, rel) for rel in expected]:
            wrong[pattern] = got
    assert not wrong


def test_download_and_upload_a_tree(root: str, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.fs")
    src = tmp_path / "src"
    files = {f"d{i % 4}/e{i % 3}/f{i:02d}.txt": f"small file {i}\n".encode() * (i + 1) for i in range(48)}
    files["big/model.bin"] = os.urandom(9 * 1024 * 1024 + 123)  # more than one 8 MB copy chunk
    files["empty.txt"] = b""
    files["Split-train/data_tfrecord-00000-of-00001.gz"] = gzip.compress(os.urandom(4096) * 8)
    files["plain.gz"] = b"not gzip at all"  # a name is not a format: no (de)compression on the way
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    total = sum(len(d) for d in files.values())

    art = join(root, "artifact")
    assert storage.upload(str(src), art) == total
    assert sorted(rels(art, storage.list_files(art))) == sorted(files)
    for rel in ("big/model.bin", "Split-train/data_tfrecord-00000-of-00001.gz", "plain.gz"):
        assert storage.file_info(join(art, rel)).size == len(files[rel]), rel
        assert storage.read_bytes(join(art, rel)) == files[rel], rel

    dest = tmp_path / "dest"
    assert storage.download(art, str(dest)) == total
    got = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert got.keys() == files.keys()
    assert all(got[rel] == data for rel, data in files.items())

    one = tmp_path / "one"  # a single file is copied under its own name
    assert storage.download(join(art, "d1/e1/f01.txt"), str(one)) == len(files["d1/e1/f01.txt"])
    assert [p.name for p in one.iterdir()] == ["f01.txt"]
    assert (one / "f01.txt").read_bytes() == files["d1/e1/f01.txt"]

    assert storage.download(join(root, "missing"), str(tmp_path / "none")) == 0  # an empty artifact folder
    assert (tmp_path / "none").is_dir() and not list((tmp_path / "none").iterdir())
    assert storage.upload(str(tmp_path / "no-such-dir"), join(root, "nothing")) == 0
    assert not storage.exists(join(root, "nothing"))

    (src / "d0" / "e0" / "f00.txt").write_bytes(b"changed")  # uploading again overwrites
    storage.upload(str(src), art)
    assert storage.read_bytes(join(art, "d0/e0/f00.txt")) == b"changed"


def test_remove(root: str) -> None:
    put(root, {rel: b"x" for rel in ("art/a.txt", "art/sub/b.txt", "art/sub/deeper/c.txt", "artifact.txt",
                                     "art2/x.txt", "keep.txt")})
    storage.remove(join(root, "art/sub/b.txt"))  # a single file
    assert rels(root, storage.list_files(join(root, "art"))) == ["art/a.txt", "art/sub/deeper/c.txt"]
    storage.remove(join(root, "art"))  # a tree; "artifact.txt" and "art2/" share the prefix and stay
    assert rels(root, storage.list_files(root)) == ["art2/x.txt", "artifact.txt", "keep.txt"]
    assert not storage.exists(join(root, "art"))
    storage.remove(join(root, "art"))  # missing now: fine
    storage.remove(join(root, "never/was/here"))
    storage.remove(join(root, "art2/"))
    assert rels(root, storage.list_files(root)) == ["artifact.txt", "keep.txt"]
    storage.remove(root)
    assert storage.list_files(root) == [] and not storage.exists(root)


@pytest.mark.timeout(120, method="thread")  # pyarrow's GCS retries for minutes on what the emulator refuses
def test_removing_a_whole_bucket_empties_it_and_keeps_it(object_root: str) -> None:
    bucket = object_root.rsplit("/", 1)[0]
    put(bucket, {"top.txt": b"1", "root/a.txt": b"2", "root/sub/b.txt": b"3"})
    storage.remove(join(bucket, "root/sub/b.txt"))  # S3: pyarrow leaves a folder marker behind here
    storage.remove(bucket)
    assert storage.list_files(bucket) == []
    assert not storage.exists(join(bucket, "root")) and not storage.exists(join(bucket, "root/sub"))
    storage.write_bytes(join(bucket, "again.txt"), b"4")  # the bucket is still there
    assert storage.list_files(bucket) == [join(bucket, "again.txt")]


def test_file_info_size_and_version(root: str) -> None:
    path = join(root, "data", "f.csv")
    storage.write_bytes(path, b"a,b\n1,2\n")
    info = storage.file_info(path)
    assert (info.path, info.size) == (path, 8) and info.version
    assert storage.file_info(path) == info  # nothing changed: the same version
    assert info.fingerprint_line() == f"{path}\t8\t{info.version}"
    storage.write_bytes(path, b"a,b\n3,4\n")  # the same size, at once (object stores: the same second)
    changed = storage.file_info(path)
    assert changed.size == 8 and changed.version != info.version
    with pytest.raises(OSError):  # StorageError (an OSError) for a URL, FileNotFoundError for a local path
        storage.file_info(join(root, "data", "missing.csv"))
    if storage.is_url(root):
        with pytest.raises(StorageError, match=re.escape(f"{join(root, 'data')} is not a file")):
            storage.file_info(join(root, "data"))


def test_filesystems_follow_the_environment(s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL; a changed variable is a new filesystem."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    storage.write_bytes(join(s3_root, "x"), b"1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not an endpoint")
    assert storage.read_bytes(join(s3_root, "x")) == b"1"
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    with pytest.raises(StorageError, match="AWS_ENDPOINT_URL='not an endpoint' is not an endpoint URL"):
        storage.read_bytes(join(s3_root, "x"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint + "/")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_REGION")
    assert storage.read_bytes(join(s3_root, "x")) == b"1"


# ------------------------------------------------------------------------------------------- errors
def _calls(tmp_path: Path) -> dict[str, Callable[[str], Any]]:
    (tmp_path / "up").mkdir(exist_ok=True)
    (tmp_path / "up" / "f.txt").write_bytes(b"x")
    return {
        "exists": storage.exists,
        "read_bytes": storage.read_bytes,
        "write_bytes": lambda url: storage.write_bytes(url, b"x"),
        "list_files": storage.list_files,
        "glob": lambda url: storage.glob(url + "/*.csv"),
        "file_info": storage.file_info,
        "remove": storage.remove,
        "download": lambda url: storage.download(url, str(tmp_path / "down")),
        "upload": lambda url: storage.upload(str(tmp_path / "up"), url),
    }


def test_url_without_bucket(object_root: str, tmp_path: Path) -> None:
    scheme = object_root.split("://")[0]
    for name, call in _calls(tmp_path).items():
        for url in (f"{scheme}:///x", f"{scheme}://", f"{scheme}:///"):
            with pytest.raises(StorageError) as err:
                call(url)
            assert f"{url!r} names no bucket; write it as {scheme}://bucket/path" in str(err.value), name


def test_bucket_that_does_not_exist(object_root: str, tmp_path: Path) -> None:
    scheme = object_root.split("://")[0]
    bucket = f"hw-missing-{secrets.token_hex(4)}"
    folder = f"{scheme}://{bucket}/data"
    url = f"{folder}/file.csv"
    hint = bucket_hint(url)

    with pytest.raises(StorageError) as err:
        storage.read_bytes(url)
    assert f"cannot read {url}: " in str(err.value) and hint in str(err.value) and "credentials" in str(err.value)

    with pytest.raises(StorageError) as err:
        storage.write_bytes(url, b"x")
    message = str(err.value)
    assert f"cannot write {url}: " in message and hint in message
    assert message.count("cannot write") == 1 and message.count(hint) == 1  # one message, not one in another

    # Listing a missing bucket is an error, not an empty folder (which would download nothing, silently).
    for what, call in (("list", lambda: storage.list_files(folder)),
                       ("list", lambda: storage.glob(f"{folder}/*.csv")),
                       ("download", lambda: storage.download(folder, str(tmp_path / "down")))):
        with pytest.raises(StorageError) as err:
            call()
        assert f"cannot {what} {folder}: FileNotFoundError: bucket '{bucket}' does not exist" in str(err.value)
        assert hint in str(err.value)
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "f.txt").write_bytes(b"x")
    with pytest.raises(StorageError, match=re.escape(f"cannot upload to {folder}: ") + f".*{hint}"):
        storage.upload(str(tmp_path / "up"), folder)

    assert not storage.exists(url) and not storage.exists(folder)  # a question, not a failure
    storage.remove(folder)  # nothing there to delete: fine


@pytest.mark.parametrize("value", ["ftp://minio:9000", "http://", "minio storage:9000", "http://minio:port",
                                   "http://:9000", "http://minio:9000/bucket", "http://minio:99999"])
def test_malformed_endpoint_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow.fs")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", value)
    expected = f"$AWS_ENDPOINT_URL={value!r} is not an endpoint URL; set it like http://minio.storage:9000"
    with pytest.raises(StorageError, match=re.escape(expected)):
        storage.exists("s3://bucket/x")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", value)
    with pytest.raises(StorageError, match=re.escape(expected.replace("_URL=", "_URL_S3="))):
        storage.read_bytes("s3://bucket/x")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", value)
    with pytest.raises(StorageError, match=re.escape(f"$STORAGE_EMULATOR_HOST={value!r} is not an endpoint URL")):
        storage.list_files("gs://bucket/x")


def test_unknown_scheme(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.fs")
    pytest.importorskip("fsspec")
    for name, call in _calls(tmp_path).items():
        with pytest.raises(StorageError) as err:
            call("nosuch://bucket/x")
        message = str(err.value)
        assert "no filesystem for 'nosuch://'" in message, name
        assert "install the scheme's fsspec implementation" in message, name


def test_wildcard_in_bucket_name() -> None:
    with pytest.raises(StorageError, match=re.escape("'s3://hw-*/a.csv' has a wildcard in its bucket name")):
        storage.glob("s3://hw-*/a.csv")


# ------------------------------------------------------------------------------------------- Ingest
def _ingest(tmp_path: Path, **params: Any) -> Any:
    from headwater.components.ingest import run_ingest
    from headwater.metadata import types

    examples = types.Examples(str(tmp_path / "out" / "examples"))
    schema = types.Schema(str(tmp_path / "out" / "schema"))
    run_ingest(examples, schema, **params)
    return examples


@pytest.mark.ml
def test_ingest_reads_csv_from_an_object_store(object_root: str, tmp_path: Path) -> None:
    pytest.importorskip("tfx_bsl")
    from headwater.components.ingest import ingest_input_fingerprint

    source = _data.penguins_csv(tmp_path / "penguins.csv").read_bytes()
    data = join(object_root, "data")
    storage.write_bytes(join(data, "span-1", "penguins.csv"), source.replace(b"Torgersen", b"Torgerzen"))
    storage.write_bytes(join(data, "span-2", "penguins.csv"), source)
    params = {"input_base": data, "pattern": "span-{SPAN}/*.csv"}

    examples = _ingest(tmp_path, label="species", **params)
    assert examples.properties["span"] == 2
    assert sum(examples.custom_properties["num_examples"].values()) == 344
    rows = [r for split in ("train", "eval") for r in _data.read_examples(examples, split).to_pylist()]
    assert {r["island"][0] for r in rows} == {b"Biscoe", b"Dream", b"Torgersen"}

    first = ingest_input_fingerprint(params)
    assert examples.custom_properties["input_fingerprint"] == first
    assert ingest_input_fingerprint(dict(params)) == first  # nothing changed: the same cache key
    rewritten = source.replace(b"Torgersen", b"Torgerzen")
    assert len(rewritten) == len(source)
    storage.write_bytes(join(data, "span-2", "penguins.csv"), rewritten)  # same size, within the second
    assert ingest_input_fingerprint(params) != first
    assert ingest_input_fingerprint({**params, "span": 1}) != first


@pytest.mark.ml
def test_ingest_reads_gzipped_csv_and_parquet_from_an_object_store(object_root: str, tmp_path: Path) -> None:
    pytest.importorskip("tfx_bsl")
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    source = _data.penguins_csv(tmp_path / "penguins.csv").read_bytes()
    table = pcsv.read_csv(io.BytesIO(source), convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    half = table.num_rows // 2
    parquet = io.BytesIO()
    pq.write_table(table.slice(half), parquet)
    head = b"\n".join(source.splitlines()[: half + 1]) + b"\n"
    storage.write_bytes(join(object_root, "mixed", "a.csv.gz"), gzip.compress(head))
    storage.write_bytes(join(object_root, "mixed", "b.parquet"), parquet.getvalue())

    examples = _ingest(tmp_path, input_base=join(object_root, "mixed"), label="species")
    assert examples.custom_properties["input_files"] == 2
    assert sum(examples.custom_properties["num_examples"].values()) == 344


@pytest.mark.ml
def test_ingest_names_a_missing_bucket(object_root: str) -> None:
    from headwater.components.ingest import resolve_input

    base = f"{object_root.split('://')[0]}://hw-missing-{secrets.token_hex(4)}/data"
    with pytest.raises(StorageError, match=re.escape(f"cannot list {base}: ") + ".*does not exist"):
        resolve_input(base, "*.csv")
