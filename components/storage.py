"""Where artifact files live: local folders or object stores, behind one small set of functions.

Every function takes a local path (``/data/root``, ``file:///data/root``) or a URL: ``s3://bucket/key``,
``gs://bucket/key`` — served by pyarrow's native S3 and GCS filesystems — or any other scheme fsspec knows
(``memory://``, ``az://`` with adlfs installed …). Object stores have no folders: an artifact "folder" is
every object under its URI as a prefix, so listing is always recursive and an empty folder does not exist.

Configuration comes from the environment, as the clouds' own tools read it:

* S3 and S3-compatible stores (MinIO, Ceph): the AWS credential chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, instance or pod roles), ``AWS_REGION`` (or
  ``AWS_DEFAULT_REGION``), and ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``) for a store that is not
  AWS, e.g. ``http://minio.storage:9000``.
* GCS: Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, workload identity), and
  ``STORAGE_EMULATOR_HOST`` (``http://host:port``) for an emulator, reached without credentials.

Executors see artifacts as local folders (:attr:`headwater.metadata.artifact.Artifact.path`): for an
object-store pipeline root the executor downloads inputs with :func:`download` before the component
runs and uploads outputs with :func:`upload` after it succeeded.

Nothing here imports pyarrow or fsspec until a URL needs them.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from headwater.metadata.errors import StorageError

__all__ = [
    "FileInfo",
    "download",
    "exists",
    "file_info",
    "glob",
    "is_url",
    "join",
    "list_files",
    "local_path",
    "makedirs",
    "open_input",
    "open_output",
    "read_bytes",
    "remove",
    "upload",
    "upload_file",
    "write_bytes",
]

_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: Parallel transfers for download/upload of a folder.
TRANSFER_THREADS = 8


def is_url(path: str) -> bool:
    """True for ``scheme://...`` (object stores, ``memory://``); ``file://`` counts as a local path."""
    return bool(_URL_RE.match(path)) and not path.startswith("file://")


def local_path(path: str) -> str:
    """A local path without its ``file://`` prefix."""
    return path[len("file://"):] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    """Join path parts with ``/``, for local paths and URLs alike."""
    out = base
    for part in parts:
        out = out.rstrip("/") + "/" + part.lstrip("/") if out else part
    return out


# ----------------------------------------------------------------------------------------- filesystems
def _pyarrow_fs() -> Any:
    try:
        import pyarrow.fs
    except ImportError:
        raise StorageError(
            "object-store paths and artifact staging need pyarrow, which is part of the ml extra: "
            "pip install 'headwater[ml]' (or pip install pyarrow)"
        ) from None
    return pyarrow.fs


_lock = threading.Lock()
_cache: dict[tuple[str, ...], tuple[Any, Any]] = {}


def _endpoint(url: str, variable: str) -> tuple[str, str]:
    """(scheme, host:port) of an endpoint URL given in an environment variable."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number
        port_ok = False
    if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.path.strip("/")
            or parts.query or parts.fragment or any(c.isspace() for c in url)):
        raise StorageError(
            f"${variable}={url!r} is not an endpoint URL; set it like http://minio.storage:9000"
        )
    return parts.scheme, parts.netloc


def _s3() -> Any:
    pafs = _pyarrow_fs()

    options: dict[str, Any] = {}
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            options["scheme"], options["endpoint_override"] = _endpoint(os.environ[variable], variable)
            break
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options)


def _gcs() -> Any:
    pafs = _pyarrow_fs()

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        scheme, netloc = _endpoint(emulator, "STORAGE_EMULATOR_HOST")
        return pafs.GcsFileSystem(anonymous=True, scheme=scheme, endpoint_override=netloc)
    return pafs.GcsFileSystem()


def _fsspec(protocol: str) -> tuple[Any, Any]:
    pafs = _pyarrow_fs()

    try:
        import fsspec

        fs = fsspec.filesystem(protocol)
    except (ImportError, ValueError) as exc:
        raise StorageError(
            f"no filesystem for '{protocol}://' ({exc}); headwater reads s3:// and gs:// itself, other "
            "schemes through fsspec: install the scheme's fsspec implementation (adlfs for az://)"
        ) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), fs._strip_protocol


_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "STORAGE_EMULATOR_HOST")
_NATIVE = {"s3": _s3, "s3a": _s3, "gs": _gcs, "gcs": _gcs}


def _bucket_path(url: str) -> str:
    protocol, rest = url.split("://", 1)
    rest = rest.rstrip("/")
    if not rest or rest.startswith("/"):
        raise StorageError(f"{url!r} names no bucket; write it as {protocol}://bucket/path")
    return rest


def _resolve(path: str) -> tuple[Any, str]:
    """(pyarrow filesystem, the path as that filesystem names it) for a local path or URL."""
    if not is_url(path):
        pafs = _pyarrow_fs()

        return pafs.LocalFileSystem(), os.path.abspath(local_path(path))
    protocol = path.split("://", 1)[0].lower()
    key = (protocol, *(os.environ.get(v, "") for v in _ENV))
    with _lock:
        entry = _cache.get(key)
        if entry is None:
            native = _NATIVE.get(protocol)
            entry = _cache[key] = (native(), _bucket_path) if native else _fsspec(protocol)
    fs, strip = entry
    return fs, strip(path).rstrip("/")


def _error(exc: BaseException, action: str, path: str) -> StorageError:
    hint = ""
    if is_url(path):
        scheme = path.split("://", 1)[0].lower()
        if scheme.startswith("s3"):
            hint = ("; check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role), "
                    "AWS_REGION, and AWS_ENDPOINT_URL for a store that is not AWS")
        elif scheme.startswith("g"):
            hint = ("; check the Google credentials (GOOGLE_APPLICATION_CREDENTIALS or workload identity), "
                    "or STORAGE_EMULATOR_HOST for an emulator")
    return StorageError(f"cannot {action} {path}: {type(exc).__name__}: {exc}{hint}")


# ------------------------------------------------------------------------------------------ queries
def exists(path: str) -> bool:
    """True if ``path`` is a file, or a folder (for an object store: a prefix holding at least one object)."""
    if not is_url(path):
        return os.path.exists(local_path(path))
    pafs = _pyarrow_fs()

    fs, p = _resolve(path)
    try:
        if _info(fs, p).type != pafs.FileType.NotFound:
            return True
        return bool(_list(fs, p, limit=1, check_bucket=False))
    except OSError as exc:
        raise _error(exc, "look up", path) from exc


def _info(fs: Any, p: str) -> Any:
    """``fs.get_file_info(p)``, except that a path in a GCS bucket that does not exist is NotFound: pyarrow's
    GCS filesystem calls it a directory (it takes the failed listing for one)."""
    pafs = _pyarrow_fs()

    info = fs.get_file_info(p)
    if (info.type == pafs.FileType.Directory and fs.type_name == "gcs" and "/" in p
            and fs.get_file_info(p.split("/", 1)[0]).type == pafs.FileType.NotFound):
        return pafs.FileInfo(p, pafs.FileType.NotFound)
    return info


def _list(fs: Any, p: str, limit: int | None = None, *, check_bucket: bool = True) -> list[tuple[str, int]]:
    """(path, size) of every file under ``p``; nothing for a missing prefix, an error for a missing bucket."""
    pafs = _pyarrow_fs()

    try:
        infos = fs.get_file_info(pafs.FileSelector(p, recursive=True, allow_not_found=True))
    except (FileNotFoundError, NotADirectoryError):
        infos = []
    found = [(i.path, i.size or 0) for i in infos if i.type == pafs.FileType.File]
    if not found and check_bucket and fs.type_name in ("s3", "gcs"):
        # S3 and GCS list a bucket that does not exist as empty: say so instead of finding no files.
        bucket = p.split("/", 1)[0]
        if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"bucket {bucket!r} does not exist")
    return found[:limit] if limit else found


def list_files(path: str) -> list[str]:
    """Every file under the folder ``path`` (recursively), sorted, named as ``path`` is (URL or local)."""
    if not is_url(path):
        root = local_path(path)
        return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
    fs, p = _resolve(path)
    try:
        files = _list(fs, p)
    except OSError as exc:
        raise _error(exc, "list", path) from exc
    return sorted(join(path, f[len(p):].lstrip("/")) for f, _ in files)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        end = pattern.find("]", i + 2) if c == "[" else -1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif end > 0:
            body = pattern[i + 1:end]
            negate = body[0] in "!^"
            # Ranges (a-z) stay ranges; a negated class never matches the "/" between segments.
            chars = "".join("\\" + ch if ch in "\\[]^&~|" else ch for ch in (body[1:] if negate else body))
            out.append(f"[^/{chars}]" if negate else f"[{chars}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def glob(pattern: str) -> list[str]:
    """Files matching ``pattern`` (``*`` and ``?`` stay inside one path segment; ``[...]``), sorted."""
    if not is_url(pattern):
        import glob as _glob

        return sorted(p for p in _glob.glob(local_path(pattern)) if os.path.isfile(p))
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    if cut == len(pattern):
        return [pattern] if _is_file(pattern) else []
    base = pattern[: pattern.rfind("/", 0, cut)]
    if len(base) < pattern.index("://") + 3:
        raise StorageError(f"{pattern!r} has a wildcard in its bucket name; name the bucket, e.g. s3://bucket/*.csv")
    regex = _glob_regex(pattern[len(base) + 1:])
    return [f for f in list_files(base) if regex.match(f[len(base) + 1:])]


def _is_file(path: str) -> bool:
    pafs = _pyarrow_fs()

    fs, p = _resolve(path)
    try:
        return bool(fs.get_file_info(p).type == pafs.FileType.File)
    except OSError as exc:
        raise _error(exc, "look up", path) from exc


@dataclass(frozen=True)
class FileInfo:
    """What changes when a file changes: its size and its modification time."""

    path: str
    size: int
    version: str

    def fingerprint_line(self) -> str:
        return f"{self.path}\t{self.size}\t{self.version}"


def file_info(path: str) -> FileInfo:
    if not is_url(path):
        st = os.stat(local_path(path))
        # The inode tells apart a file replaced (as write_bytes does) within the clock's granularity.
        return FileInfo(path, st.st_size, f"mtime_ns={st.st_mtime_ns};ino={st.st_ino}")
    pafs = _pyarrow_fs()

    fs, p = _resolve(path)
    try:
        info = fs.get_file_info(p)
        if info.type != pafs.FileType.File:
            raise StorageError(f"{path} is not a file in the object store")
        tag = _object_tag(fs, p)
    except StorageError:
        raise
    except OSError as exc:
        raise _error(exc, "look up", path) from exc
    stamp = f"mtime_ns={info.mtime_ns}" if info.mtime_ns else ""
    return FileInfo(path, int(info.size or 0), ";".join(v for v in (stamp, tag) if v))


def _object_tag(fs: Any, p: str) -> str:
    """What the store says changes with every write: S3's ETag (and VersionId), GCS's generation, or for
    fsspec schemes fsspec's ``ukey``. Modification times alone miss a same-size rewrite within the store's
    timestamp resolution (one second on S3)."""
    pafs = _pyarrow_fs()

    if isinstance(fs, pafs.PyFileSystem):
        return f"ukey={fs.handler.fs.ukey(p)}"
    with fs.open_input_file(p) as f:
        meta = f.metadata()
    return ";".join(f"{k}={meta.get(k).decode()}" for k in ("ETag", "VersionId", "generation") if meta.get(k))


# ------------------------------------------------------------------------------------------- files
def makedirs(path: str) -> None:
    """Create a local folder (and its parents); object stores need none."""
    if not is_url(path):
        os.makedirs(local_path(path), exist_ok=True)


def open_input(path: str) -> IO[bytes]:
    """A local path or URL opened for binary reading."""
    if not is_url(path):
        return open(local_path(path), "rb")
    fs, p = _resolve(path)
    try:
        return fs.open_input_file(p)
    except OSError as exc:
        raise _error(exc, "read", path) from exc


def open_output(path: str) -> IO[bytes]:
    """A local path or URL opened for binary writing (local parent folders are created)."""
    if not is_url(path):
        target = local_path(path)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        return open(target, "wb")
    fs, p = _resolve(path)
    try:
        return fs.open_output_stream(p, compression=None)  # bytes as given, even for a name ending in .gz
    except OSError as exc:
        raise _error(exc, "write", path) from exc


def read_bytes(path: str) -> bytes:
    with open_input(path) as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file; a local file is replaced atomically, an object is (by the store's nature)."""
    if not is_url(path):
        target = local_path(path)
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        tmp = f"{target}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
        return
    out = open_output(path)  # raises its own StorageError
    try:
        with out:
            out.write(data)
    except OSError as exc:
        raise _error(exc, "write", path) from exc


def remove(path: str) -> None:
    """Delete a file or a whole folder (every object under the prefix); a missing path is fine."""
    if not is_url(path):
        target = local_path(path)
        if os.path.isdir(target):
            shutil.rmtree(target, ignore_errors=True)
        elif os.path.lexists(target):
            os.remove(target)
        return
    pafs = _pyarrow_fs()

    fs, p = _resolve(path)
    try:
        info = _info(fs, p)
        if info.type == pafs.FileType.File:
            fs.delete_file(p)
            return
        if info.type == pafs.FileType.NotFound:
            return
        files = [f for f, _ in _list(fs, p)]
        _parallel(fs.delete_file, files)
        if fs.type_name in ("s3", "gcs") and "/" not in p:
            # A whole bucket is emptied, never deleted (pyarrow's delete_dir would delete the bucket itself).
            if fs.type_name == "s3":
                fs.delete_dir_contents(p)  # the folder marker objects pyarrow's S3 leaves on deleting files
        elif fs.get_file_info(p).type == pafs.FileType.Directory:
            try:
                fs.delete_dir(p)  # a folder marker object some stores keep
            except FileNotFoundError:
                pass
    except OSError as exc:
        raise _error(exc, "delete", path) from exc


def _parallel(fn: Any, items: list[Any]) -> None:
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(min(TRANSFER_THREADS, len(items))) as pool:
        for _ in pool.map(fn, items):
            pass


def _copy_stream(src: IO[bytes], dst: IO[bytes]) -> None:
    shutil.copyfileobj(src, dst, 8 * 1024 * 1024)


def download(url: str, local_dir: str) -> int:
    """Copy every file under ``url`` into ``local_dir`` (same relative paths); returns the bytes copied.

    A single file URL is copied into ``local_dir`` under its own name."""
    fs, p = _resolve(url)
    try:
        files = _list(fs, p)
        if not files:
            pafs = _pyarrow_fs()

            info = fs.get_file_info(p)
            if info.type == pafs.FileType.File:
                files = [(p, info.size or 0)]
                p = p.rsplit("/", 1)[0]

        def fetch(item: tuple[str, int]) -> None:
            target = os.path.join(local_dir, *item[0][len(p):].lstrip("/").split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with fs.open_input_stream(item[0], compression=None) as src, open(target, "wb") as dst:
                _copy_stream(src, dst)

        os.makedirs(local_dir, exist_ok=True)
        _parallel(fetch, files)
    except OSError as exc:
        raise _error(exc, "download", url) from exc
    return sum(size for _, size in files)


def _walk(local_dir: str) -> Iterator[str]:
    for d, _, files in os.walk(local_dir):
        for f in files:
            yield os.path.join(d, f)


def upload_file(local: str, url: str) -> int:
    """Copy one local file to ``url`` (a path or URL); returns the bytes copied."""
    try:
        with open(local, "rb") as src, open_output(url) as dst:
            _copy_stream(src, dst)
    except StorageError:
        raise
    except OSError as exc:
        raise _error(exc, "upload to", url) from exc
    return os.path.getsize(local)


def upload(local_dir: str, url: str, *, skip: Collection[str] = ()) -> int:
    """Copy every file under ``local_dir`` to ``url`` (same relative paths), except those whose relative path
    is in ``skip``; returns the bytes copied."""
    if is_url(url):
        _resolve(url)  # a URL that names no bucket is refused as such, not as a bucket named by a file
    rels = [rel for rel in (os.path.relpath(f, local_dir).replace(os.sep, "/") for f in sorted(_walk(local_dir)))
            if rel not in skip]
    try:
        _parallel(lambda rel: upload_file(os.path.join(local_dir, rel), join(url, rel)), rels)
    except StorageError as exc:
        raise StorageError(f"cannot upload to {url}: {exc}") from exc
    return sum(os.path.getsize(os.path.join(local_dir, rel)) for rel in rels)
