"""Data helpers shared by the built-in components (Ingest, Transform, Train, Evaluate).

Nothing here imports TensorFlow, Beam or tf.Transform at module import time; the heavy libraries
(``pyarrow``, ``tensorflow_metadata``, ``fsspec``) are imported inside the functions that need them.

What lives here:

* the on-disk layout of an ``Examples`` artifact (``Split-<name>/data_tfrecord-*.gz``) and of a
  ``Schema`` artifact (``schema.pbtxt``), with readers and writers;
* file access for local paths and object-store URLs (re-exported from
  :mod:`headwater.components.storage`);
* a gzip TFRecord writer/reader (the TFRecord framing: length, masked CRC32C of the length, payload,
  masked CRC32C of the payload) so that Ingest writes examples without importing TensorFlow;
* loading a user function from a module file path or a dotted module name;
* :func:`penguins_csv`, which writes the real Palmer penguins data shipped in the ``palmerpenguins``
  package.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from headwater.components import storage
from headwater.components._layout import EXAMPLES_FILE_PREFIX, EXAMPLES_FILE_SUFFIX, SCHEMA_FILE, split_dir
from headwater.components._loader import load_module_from_file
from headwater.components.errors import InputDataError, UserCodeError
from headwater.components.storage import FileInfo, file_info, is_url, join, makedirs
from headwater.components.storage import glob as glob_files
from headwater.metadata.artifact import Artifact

__all__ = [
    "EXAMPLES_FILE_PREFIX",
    "EXAMPLES_FILE_SUFFIX",
    "SCHEMA_FILE",
    "FileInfo",
    "GzipTFRecordWriter",
    "beam_dofn_spec_cache",
    "examples_batches",
    "examples_file_pattern",
    "examples_files",
    "file_info",
    "glob_files",
    "is_url",
    "join",
    "load_user_function",
    "makedirs",
    "open_file",
    "penguins_csv",
    "read_examples",
    "read_schema",
    "read_tfrecords",
    "record_chunks",
    "schema_path",
    "split_names",
    "split_uri",
    "write_schema",
]


def open_file(path: str, mode: str = "rb") -> IO[Any]:
    """Open a local path or an object-store URL in ``"rb"`` or ``"wb"`` mode."""
    if mode not in ("rb", "wb"):
        raise ValueError(f"open_file supports 'rb' and 'wb', not {mode!r}")
    return storage.open_input(path) if mode == "rb" else storage.open_output(path)


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def frame_records(records: Iterable[bytes]) -> bytes:
    """The TFRecord framing of ``records`` (uncompressed), as one bytes object."""
    import google_crc32c

    crc = google_crc32c.value
    pack32 = _U32.pack
    heads: dict[int, bytes] = {}
    parts: list[bytes] = []
    append = parts.append
    for record in records:
        n = len(record)
        head = heads.get(n)
        if head is None:
            length = _U64.pack(n)
            head = heads[n] = length + pack32(_masked_crc(length))
        append(head)
        append(record)
        c = crc(record)
        append(pack32((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF))
    return b"".join(parts)


class GzipTFRecordWriter:
    """Write a gzip-compressed TFRecord file (readable by ``tf.data.TFRecordDataset(..., "GZIP")``).

    ``level`` is the zlib compression level; 6 is zlib's (and TensorFlow's) default, lower is faster.
    ``write_framed`` takes bytes produced by :func:`frame_records` (so framing can run elsewhere).
    """

    def __init__(self, path: str, level: int = 6) -> None:
        self.path = path
        self._file = open_file(path, "wb")
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.records = 0

    def write(self, records: Sequence[bytes]) -> None:
        self.write_framed(frame_records(records), len(records))

    def write_framed(self, framed: bytes, count: int) -> None:
        self._file.write(self._zip.compress(framed))
        self.records += count

    def close(self) -> None:
        self._file.write(self._zip.flush())
        self._file.close()

    def __enter__(self) -> GzipTFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_tfrecords(path: str, *, verify: bool = True) -> Iterator[bytes]:
    """Records of one TFRecord file (gzip when the name ends in ``.gz``); checks the CRCs by default."""
    import gzip

    with open_file(path, "rb") as raw:
        stream: Any = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        offset = 0
        while True:
            head = stream.read(12)
            if not head:
                return
            if len(head) < 12:
                raise InputDataError(f"TFRecord file {path}: truncated record header at byte {offset}")
            (length,) = _U64.unpack(head[:8])
            if verify and _U32.unpack(head[8:])[0] != _masked_crc(head[:8]):
                raise InputDataError(f"TFRecord file {path}: corrupt length at byte {offset}")
            data = stream.read(length)
            tail = stream.read(4)
            if len(data) < length or len(tail) < 4:
                raise InputDataError(f"TFRecord file {path}: truncated record at byte {offset}")
            if verify and _U32.unpack(tail)[0] != _masked_crc(data):
                raise InputDataError(f"TFRecord file {path}: corrupt record at byte {offset}")
            offset += 16 + length
            yield data


def record_chunks(path: str, size: int, *, verify: bool = True) -> Iterator[list[bytes]]:
    """The records of one TFRecord file in lists of at most ``size``: memory bounded by ``size``, not the file."""
    chunk: list[bytes] = []
    for record in read_tfrecords(path, verify=verify):
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def examples_batches(examples: Artifact | str, split: str, schema: Any = None,
                     batch_size: int = 65536) -> Iterator[Any]:
    """One split as a stream of ``pyarrow.RecordBatch`` of list columns (tfx_bsl's decoder), ``batch_size``
    examples at most each: what reads a split in memory bounded by the batch, not by the split."""
    from tfx_bsl.coders import example_coder

    decoder = (example_coder.ExamplesToRecordBatchDecoder(schema.SerializeToString()) if schema is not None
               else example_coder.ExamplesToRecordBatchDecoder())
    for path in examples_files(examples, split):
        for chunk in record_chunks(path, batch_size):
            yield decoder.DecodeBatch(chunk)


# ---------------------------------------------------------------------------------- artifact layout
def split_uri(examples_uri: str, split: str) -> str:
    """``<uri>/Split-<split>``, TFX's folder for one split."""
    return join(examples_uri, split_dir(split))


def examples_file_pattern(examples_uri: str, split: str) -> str:
    """Glob of one split's data files: ``<uri>/Split-<split>/*.gz``."""
    return join(split_uri(examples_uri, split), "*" + EXAMPLES_FILE_SUFFIX)


def examples_files(examples: Artifact | str, split: str) -> list[str]:
    uri = examples if isinstance(examples, str) else examples.path
    files = glob_files(examples_file_pattern(uri, split))
    if not files:
        raise InputDataError(
            f"Examples artifact at {uri} has no data for split {split!r} (no {EXAMPLES_FILE_SUFFIX} files "
            f"under Split-{split}/); check the split name against the artifact's split_names"
        )
    return files


def split_names(examples: Artifact) -> list[str]:
    """The split names of an Examples artifact (its ``split_names`` property, a JSON list string)."""
    raw = examples.properties["split_names"]
    if raw is None:
        raise InputDataError(
            f"Examples artifact {examples.uri} has no split_names property; it should be a JSON list "
            "such as '[\"train\", \"eval\"]' (produce it with Ingest, or set it on your own Examples)"
        )
    names = json.loads(str(raw))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputDataError(
            f"Examples artifact {examples.uri}: split_names {raw!r} is not a JSON list of names"
        )
    return names


def schema_path(schema: Artifact | str) -> str:
    """Path of the schema file of a Schema artifact (``<uri>/schema.pbtxt``)."""
    uri = schema if isinstance(schema, str) else schema.path
    if uri.endswith(".pbtxt"):
        return uri
    return join(uri, SCHEMA_FILE)


def read_schema(schema: Artifact | str) -> Any:
    """The ``tensorflow_metadata`` Schema proto of a Schema artifact (or of a ``.pbtxt`` path)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = schema_path(schema)
    try:
        with open_file(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        raise InputDataError(
            f"schema file {path} does not exist; a Schema artifact holds {SCHEMA_FILE} (tensorflow-metadata "
            "Schema in text format)"
        ) from None
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as exc:
        raise InputDataError(f"schema file {path} is not a valid tensorflow-metadata Schema: {exc}") from None


def write_schema(schema_proto: Any, schema: Artifact | str) -> str:
    """Write ``schema_proto`` as ``schema.pbtxt`` under the artifact's URI; returns the file path."""
    from google.protobuf import text_format

    path = schema_path(schema)
    makedirs(path.rsplit("/", 1)[0])
    with open_file(path, "wb") as f:
        f.write(text_format.MessageToString(schema_proto).encode("utf-8"))
    return path


def read_examples(examples: Artifact | str, split: str, schema: Any = None) -> Any:
    """One split as a ``pyarrow.Table`` of list columns (decoded with tfx_bsl, no TensorFlow needed): the
    whole split in memory (for small data and tests; :func:`examples_batches` streams it)."""
    import pyarrow as pa

    batches = list(examples_batches(examples, split, schema))
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches) if len({b.schema for b in batches}) == 1 else pa.concat_tables(
        [pa.Table.from_batches([b]) for b in batches], promote=True)


# ----------------------------------------------------------------------------------------- user code
def load_user_function(module_file: str | None, function: str | None, *, what: str,
                       default_name: str | None = None) -> Callable[..., Any]:
    """Load a user function, TFX style.

    * ``module_file`` a path to a ``.py`` file and ``function`` its name (``default_name`` when None);
    * ``module_file`` a dotted module name (``pkg.mod``) and ``function`` its name;
    * no ``module_file`` and ``function`` a dotted path ``pkg.mod.fn``.

    Errors name the file or module, the function and what to do; an exception raised while importing
    the module is the user's (:class:`UserCodeError`).
    """
    import importlib

    name = function or default_name
    if not module_file:
        if not function or "." not in function:
            raise UserCodeError(
                f"{what}: give module_file (a .py path or dotted module) or a dotted function path such as "
                f"'mypkg.features.{default_name or 'fn'}'; got module_file={module_file!r}, "
                f"function={function!r}"
            )
        module_ref, _, name = function.rpartition(".")
    else:
        module_ref = module_file
    source = module_ref
    try:
        if module_ref.endswith(".py") or os.sep in module_ref or "/" in module_ref:
            if not os.path.isfile(module_ref):
                raise UserCodeError(
                    f"{what}: module file {module_ref!r} does not exist (looked from {os.getcwd()}); pass an "
                    "existing .py path (absolute, or relative to where the pipeline runs) or a dotted module"
                )
            module = load_module_from_file(module_ref)
        else:
            try:
                module = importlib.import_module(module_ref)
            except ModuleNotFoundError as exc:
                if exc.name and module_ref.startswith(exc.name):
                    raise UserCodeError(
                        f"{what}: cannot import module {module_ref!r} ({exc}); make it importable (on "
                        "PYTHONPATH, installed) or pass a .py file path as module_file"
                    ) from None
                raise
            source = getattr(module, "__file__", None) or module_ref
    except UserCodeError:
        raise
    except Exception as exc:
        import traceback

        raise UserCodeError(
            f"{what}: importing {module_ref!r} raised {type(exc).__name__}: {exc}",
            user_traceback=traceback.format_exc(),
        ) from exc
    fn = getattr(module, name or "", None)
    if not callable(fn):
        available = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)
        raise UserCodeError(
            f"{what}: {source} defines no function {name!r}; define it there or name the right one "
            f"(functions defined in it: {', '.join(available) or 'none'})"
        )
    return fn


# ------------------------------------------------------------------------------------- Beam, locally
@contextlib.contextmanager
def beam_dofn_spec_cache() -> Iterator[None]:
    """Memoize Beam's DoFn state/timer introspection while a pipeline is built and run in this process.

    ``apache_beam.transforms.userstate.get_dofn_specs(dofn)`` inspects the signature of every method of a
    DoFn each time Beam builds a DoFn signature: about 2,000 times (60,000 ``inspect.signature`` calls) for
    a tf.Transform analysis of a handful of features, ~0.7 s of CPU on the in-memory DirectRunner. The answer
    depends only on the DoFn's class and on bound methods stored on the instance, so it is cached under
    exactly that key. Beam's own function is restored on exit; nested use is a no-op.
    """
    import types as pytypes

    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    if getattr(original, "_headwater_cache", False):
        yield
        return
    cache: dict[Any, tuple[set[Any], set[Any]]] = {}

    def get_dofn_specs(dofn: Any) -> tuple[set[Any], set[Any]]:
        try:
            bound = tuple(sorted(
                ((k, v.__func__) for k, v in vars(dofn).items() if isinstance(v, pytypes.MethodType)),
                key=lambda kv: kv[0],
            ))
            key = (type(dofn), bound)
            hit = cache.get(key)
        except TypeError:  # no __dict__, or an unhashable function: ask Beam every time
            return original(dofn)
        if hit is None:
            hit = cache[key] = original(dofn)
        return set(hit[0]), set(hit[1])

    get_dofn_specs._headwater_cache = True  # type: ignore[attr-defined]
    userstate.get_dofn_specs = get_dofn_specs
    try:
        yield
    finally:
        userstate.get_dofn_specs = original


# -------------------------------------------------------------------------------- Palmer penguins
PENGUIN_COLUMNS = ("species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                   "body_mass_g", "sex", "year")


def penguins_csv(path: str | Path, *, years: Iterable[int] | None = None, missing: str = "") -> Path:
    """Write the real Palmer penguins data (344 rows, from the ``palmerpenguins`` package) as CSV.

    Nothing is dropped or cleaned: ``species`` (the label, 3 classes), categorical ``island`` and
    ``sex``, numeric measurements with missing values, and ``year`` (2007 to 2009). Missing values are
    written as ``missing`` (an empty field by default). ``years`` keeps only those years (e.g. one
    span per year). Reads the CSV shipped inside the package: no network.
    """
    import importlib.resources

    keep = {int(y) for y in years} if years is not None else None
    source = importlib.resources.files("palmerpenguins") / "data" / "penguins.csv"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = source.read_text(encoding="utf-8")
    with out.open("w", encoding="utf-8", newline="") as dst:
        reader = csv.reader(text.splitlines())
        header = next(reader)
        if tuple(header) != PENGUIN_COLUMNS:
            raise InputDataError(
                f"palmerpenguins data has columns {header}, expected {list(PENGUIN_COLUMNS)}"
            )
        writer = csv.writer(dst, lineterminator="\n")
        writer.writerow(header)
        year_col = header.index("year")
        for row in reader:
            if keep is not None and int(row[year_col]) not in keep:
                continue
            writer.writerow([missing if v == "NA" else v for v in row])
    return out


if __name__ == "__main__":  # pragma: no cover - ``python -m headwater.components._data penguins.csv``
    target = sys.argv[1] if len(sys.argv) > 1 else "penguins.csv"
    print(penguins_csv(target))
