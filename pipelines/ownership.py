"""Who owns what: a pipeline root belongs to one metadata store; a RUNNING execution to one process.

Output paths are ``<root>/<node>/<key>/<execution id>/`` and every store numbers its executions from 1,
so two stores writing under one root would hand out the same paths: a failed execution of one would
delete the other's LIVE artifact, and a fresh store would publish an old run's files as its own. To
rule that out, every store carries an identity (a random id, recorded once in the store as the context
``headwater_store``/``identity``), and the first run under a root records that identity in
``<root>/.headwater-store.json``. A run whose store has another identity is refused before it writes
anything, with an error naming both stores. The marker is written create-only on a local disk (one of
several concurrent first runs wins; the others compare); on an object store, written then read back.

A RUNNING execution records its owner as ``host:pid:start time`` (:func:`process_owner`); a later run
finding it RUNNING asks :func:`owner_alive` whether that process is gone, so the execution was abandoned.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from headwater.components import storage
from headwater.metadata.errors import MetadataError, StorageError

__all__ = ["ROOT_MARKER", "claim_root", "owner_alive", "process_owner", "store_identity"]

#: The file in a pipeline root naming the store that owns it.
ROOT_MARKER = ".headwater-store.json"
_CONTEXT_TYPE = "headwater_store"
_CONTEXT_NAME = "identity"
_ID_KEY = "store_id"


def store_identity(store: Any) -> str:
    """The store's identity: a random id recorded in it on first use (concurrent first uses agree)."""
    cached = getattr(store, "_headwater_identity", None)
    if cached:
        return str(cached)
    ctx = store.context(_CONTEXT_TYPE, _CONTEXT_NAME, {_ID_KEY: uuid.uuid4().hex})
    value = ctx.custom_properties[_ID_KEY].string_value
    if not value:
        raise MetadataError(f"metadata store {store.display} holds a {_CONTEXT_TYPE} context without an id")
    store._headwater_identity = value
    return str(value)


def _marker_path(root: str) -> str:
    return storage.join(root, ROOT_MARKER) if storage.is_url(root) else os.path.join(root, ROOT_MARKER)


def _read(marker: str) -> dict[str, Any] | None:
    try:
        if storage.is_url(marker):
            if not storage.exists(marker):
                return None
            text = storage.read_bytes(marker).decode()
        else:
            text = Path(marker).read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"cannot read {marker}: {exc}; check the pipeline root's permissions") from None
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get(_ID_KEY), str):
            return data
    except ValueError:
        pass
    if not text.strip():  # a run killed while writing it: nothing was recorded yet
        return None
    raise MetadataError(
        f"{marker} is damaged (it should name the metadata store that owns this pipeline root); restore it, "
        "or delete it if you are sure which store the root's artifacts belong to"
    )


def _write(marker: str, data: dict[str, Any]) -> None:
    payload = (json.dumps(data, indent=2) + "\n").encode()
    if storage.is_url(marker):
        storage.write_bytes(marker, payload)
        return
    Path(marker).parent.mkdir(parents=True, exist_ok=True)
    temp = f"{marker}.{uuid.uuid4().hex}.new"
    try:
        with open(temp, "wb") as handle:
            handle.write(payload)
        with contextlib.suppress(FileExistsError):  # create-only: a concurrent first run may have won
            os.link(temp, marker)
    finally:
        with contextlib.suppress(OSError):
            os.remove(temp)


def claim_root(store: Any, root: str) -> None:
    """Record ``store`` as the owner of ``root``, or refuse when another store owns it."""
    identity = store_identity(store)
    marker = _marker_path(root)
    found = _read(marker)
    if found is None:
        try:
            _write(marker, {_ID_KEY: identity, "store": store.display, "claimed_s": round(time.time(), 3)})
        except OSError as exc:
            raise StorageError(f"cannot write {marker}: {exc}; check that the pipeline root is writable") from None
        found = _read(marker) or {_ID_KEY: identity}
    if found[_ID_KEY] != identity:
        raise MetadataError(
            f"pipeline root {root} belongs to metadata store {found.get('store', '?')} (store id "
            f"{found[_ID_KEY]}), not to {store.display} (store id {identity}). Output paths are numbered by "
            "each store's execution ids, so two stores over one root would overwrite and delete each other's "
            "artifacts. Run with that store (--metadata, Pipeline(metadata=...) or HEADWATER_METADATA), or give "
            f"this store a pipeline root of its own (see {marker})"
        )


# ------------------------------------------------------------------ executions and their processes
def process_owner() -> str:
    """``host:pid:start`` of this process, to tell later whether a RUNNING execution was abandoned."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it ran elsewhere (cannot tell)."""
    try:
        host, pid, start = owner.rsplit(":", 2)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return start == "?" or _start_time(int(pid)) == start
