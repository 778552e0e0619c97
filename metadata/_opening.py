"""Opening an MLMD store safely: SQLite files created whole, schema creation safe under concurrency, and
every write guarded so that a failure ends with one clear message and a usable connection.

* **SQLite.** A missing store file is built beside its final name (WAL journaling, MLMD schema) and linked
  into place, which succeeds for exactly one of several concurrent first runs; a process killed meanwhile
  leaves no half-made store under the real name. An existing file that is empty (0 bytes) is refused:
  it is not a store, and taking it as a new one would hide a lost store.
* **MySQL/MariaDB, PostgreSQL.** MLMD creates its schema when a client first connects; two clients doing
  so at once collide (duplicate ``pg_type`` rows, ``MLMDEnv`` without a version). Opening retries those
  collisions with a random pause until the winner's schema is complete, and any error says whether the
  server could not be reached or the schema could not be made.
* **Writes.** :class:`GuardedMLMD` stands in for the raw store: every ``put_*`` call that fails (other than
  MLMD's ``AlreadyExistsError``, which callers handle) reopens the connection (MLMD leaves a failed
  COMMIT's transaction open, and every later call would fail with "Transaction already open") and raises
  :class:`~headwater.metadata.errors.MetadataWriteError` naming the write, the store and the OS error.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headwater.metadata.connection import ConnectionSpec, redact
from headwater.metadata.errors import MetadataError, MetadataWriteError

__all__ = ["GuardedMLMD", "open_mlmd", "prepare_sqlite"]

#: Messages MLMD gives while another client is creating the schema: worth another try.
_SCHEMA_RACES = (
    "duplicate key value",
    "already exists",
    "no schema_version can be found",
    "mlmdenv table exists",
    "deadlock",
    "lock wait timeout",
    "doesn't exist",  # MySQL: a table the winner has not made yet (a missing database is "Unknown database")
    "relation",  # PostgreSQL: 'relation "..." does not exist' (a missing database names the database)
    "desired table and columns don't exist",  # MLMD: some of the schema's tables are made, not all yet
)
#: Messages that say the server could not be reached at all.
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "can't connect",
    "could not translate host",
    "unknown mysql server host",
    "timeout expired",
    "no route to host",
    "name or service not known",
    "failed to connect",
)
#: How long opening keeps retrying a schema collision before giving up.
SCHEMA_WAIT_S = 60.0


def _raw_store(config: Any) -> Any:
    from ml_metadata.metadata_store import metadata_store

    return metadata_store.MetadataStore(config)


# ------------------------------------------------------------------------------------------ SQLite
def prepare_sqlite(path: Path, *, create: bool | None) -> None:
    """Make sure ``path`` can be opened as an MLMD store: create it whole when missing (unless ``create``
    is False); refuse an empty file (unless ``create`` is True)."""
    if path.exists():
        if path.stat().st_size == 0:
            if create is True:
                path.unlink()
            else:
                raise MetadataError(
                    f"metadata store file {path} is empty (0 bytes): it is not an ML Metadata store, and taking "
                    "it as a new one would lose the link to every artifact already under the pipeline root. "
                    "Restore the store from a backup, or delete the file if you really mean to start over"
                )
        else:
            # Only the size is looked at: opening the file here (with Python's own SQLite, or even
            # reading its header) and closing it would drop the POSIX locks that an MLMD connection of
            # this process holds on it, and let other processes write under it.
            return
    if create is False:
        raise MetadataError(f"metadata store {path} does not exist; run a pipeline first")
    _create_sqlite(path)


def _create_sqlite(path: Path) -> None:
    """Build a new store beside ``path`` and link it into place (exactly one concurrent creator wins)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.new"
    try:
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(temp)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        try:
            store = _raw_store(config)
        except Exception as exc:
            raise MetadataError(f"cannot create metadata store {path}: {exc}") from None
        del store
        gc.collect()  # closes MLMD's connection
        con = sqlite3.connect(temp)
        try:  # WAL: ~3x cheaper commits, and readers never block a run
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # a concurrent first run made it: use theirs
    except OSError as exc:
        raise MetadataError(
            f"cannot create metadata store {path}: {exc.strerror or exc}; check that the folder is writable "
            "and has free space"
        ) from None
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm"), Path(f"{temp}-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink()


# ------------------------------------------------------------------------------------------ servers
def open_mlmd(spec: ConnectionSpec, display: str, *, wait_s: float = SCHEMA_WAIT_S) -> Any:
    """The raw MLMD store for ``spec``; retries schema-creation collisions for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return _raw_store(spec.to_mlmd_config())
        except Exception as exc:  # MLMD raises several unrelated types here
            text = redact(str(exc))
            lowered = text.lower()
            if any(m in lowered for m in _UNREACHABLE) or lowered.rstrip(" .:").endswith("source error"):
                # (MLMD's PostgreSQL client gives an empty message when it cannot connect at all)
                raise MetadataError(
                    f"cannot open metadata store {display}: {text}. Check that the server is running and "
                    "reachable, and that the database exists (or set a different connection with "
                    "HEADWATER_METADATA)"
                ) from None
            racing = spec.scheme in ("mysql", "postgresql") and any(m in lowered for m in _SCHEMA_RACES)
            if racing and time.monotonic() < deadline:
                time.sleep(random.uniform(0.05, 0.3) * min(attempt, 5))
                continue
            if racing:
                why = (f"the ML Metadata schema could not be created or read (after {attempt} attempts over "
                       f"{wait_s:.0f}s, another client may have left it half made)")
            elif spec.scheme == "sqlite":
                why = "the SQLite file could not be opened" + (
                    " (the disk holding it is full or failing: free space and run again)"
                    if any(m in lowered for m in ("disk i/o error", "disk is full", "no space")) else "")
            else:
                why = "the server answered, but the store could not be opened"
            raise MetadataError(
                f"cannot open metadata store {display}: {why}: {text}. If the database holds a store "
                "written by another ML Metadata version, or something other than ML Metadata, point "
                "headwater at an empty database or a different one"
            ) from None


# ------------------------------------------------------------------------------------------ writes
def _os_error(exc: BaseException) -> str:
    text = redact(str(exc))
    if "disk is full" in text.lower() or "no space" in text.lower():
        return f"{text} ({os.strerror(errno.ENOSPC)})"
    return text


class GuardedMLMD:
    """The raw MLMD store with every write guarded (see the module docs). Reads pass straight through."""

    def __init__(self, raw: Any, reopen: Callable[[], Any], display: str) -> None:
        self._raw = raw
        self._reopen = reopen
        self._display = display

    @property
    def raw(self) -> Any:
        return self._raw

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._raw, name)
        if not name.startswith("put_") or not callable(attr):
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            from ml_metadata import errors

            try:
                return getattr(self._raw, name)(*args, **kwargs)
            except errors.AlreadyExistsError:
                raise
            except Exception as exc:
                self._reset()
                raise MetadataWriteError(
                    f"writing to metadata store {self._display} failed ({name}): {_os_error(exc)}. Nothing "
                    "of this write was kept; free space or fix the store's access, then run again (the run "
                    "resumes from what was recorded)"
                ) from None

        return guarded

    def _reset(self) -> None:
        """Drop the connection (its transaction may still be open) and open a fresh one."""
        old, self._raw = self._raw, None
        del old
        gc.collect()
        try:
            self._raw = self._reopen()
        except MetadataError:
            self._raw = _Closed(self._display)


class _Closed:
    """Stands in for a connection that could not be reopened: every call says so."""

    def __init__(self, display: str) -> None:
        self._display = display

    def __getattr__(self, name: str) -> Any:
        raise MetadataWriteError(
            f"metadata store {self._display} is unusable after a failed write and could not be reopened; "
            "run again once the store is reachable and has free space"
        )
