"""Push: copy a BLESSED model to a serving directory in TF Serving layout, atomically, never overwriting.

::

    push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing,
                destination="/srv/models/penguin")
    push.outputs.pushed_model    # PushedModel: pushed (1/0), pushed_destination, pushed_version

Layout: ``<destination>/<version>/`` holds the SavedModel (``saved_model.pb``, ``variables/``, ``assets/``),
``version`` an integer one above the highest existing version (1 for an empty destination), which is
what TF Serving's file-system source watches. A push:

* is gated twice. The runner skips Push when the blessing's ``blessed`` property is not 1 (``skip_if``:
  the executor never starts, ``pushed=0`` is published); and the executor itself re-reads the blessing —
  its ``BLESSED``/``NOT_BLESSED`` marker file and its ``blessed`` property — and refuses
  (:class:`~headwater.metadata.errors.PushRefusedError`) anything not BLESSED, or blessed for another model;
* is atomic: the model is copied into a hidden temporary sibling (``.push-tmp-*``, ignored by TF Serving)
  and renamed into place; a lock file serialises concurrent pushes to one destination, and an existing
  version directory is never replaced;
* is idempotent: when the latest version already holds this very model (same content fingerprint),
  no new version is made; the PushedModel then records that version and ``pushed_new_version=0``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.metadata import types
from headwater.metadata.artifact import Artifact
from headwater.metadata.errors import PushRefusedError

__all__ = ["PUSH_RECORD", "Push", "model_fingerprint", "push_model"]

#: Written inside each version directory: what was pushed, and its fingerprint (TF Serving ignores it).
PUSH_RECORD = ".headwater-push.json"
_LOCK = ".headwater-push.lock"
_TMP_PREFIX = ".push-tmp-"


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """sha256 over the relative paths and contents of every file of a SavedModel directory."""
    root = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != PUSH_RECORD):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _versions(base: Path) -> list[int]:
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def _recorded_fingerprint(version_dir: Path) -> str:
    try:
        return str(json.loads((version_dir / PUSH_RECORD).read_text())["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return model_fingerprint(version_dir)  # pushed by something else: look at the files themselves


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    with open(base / _LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _not_writable(base: str, why: str) -> PushRefusedError:
    return PushRefusedError(
        f"cannot push to {base}: {why}. Give Push a destination directory this process can create and "
        "write (check the path, its owner and permissions, and that the volume is mounted read-write)",
        artifact_uri=base,
    )


def _blessing_verdict(blessing: Artifact) -> tuple[bool, str]:
    """Re-read the blessing: marker file AND custom property must both say BLESSED."""
    from headwater.components.evaluate import BLESSED_FILE, NOT_BLESSED_FILE

    folder = Path(blessing.uri)
    blessed_file = (folder / BLESSED_FILE).exists()
    not_blessed_file = (folder / NOT_BLESSED_FILE).exists()
    prop = blessing.custom_properties.get("blessed")
    if not_blessed_file:
        return False, f"the blessing at {folder} holds a {NOT_BLESSED_FILE} file"
    if not blessed_file:
        return False, f"the blessing at {folder} holds no {BLESSED_FILE} file"
    if prop not in (1, True):
        return False, f"the blessing artifact's 'blessed' property is {prop!r}, not 1"
    return True, "BLESSED"


def push_model(
    model: Artifact, blessing: Artifact, destination: str, *, node: str = "Push"
) -> dict[str, Any]:
    """The Push executor as a plain function: returns the PushedModel's custom properties."""
    from headwater.components.train import serving_model_path

    blessed, why = _blessing_verdict(blessing)
    if not blessed:
        raise PushRefusedError(
            f"{node}: refusing to push model {model.uri}: {why}. Only a model that Evaluate BLESSED is pushed; "
            "look at the evaluation's metrics.md for the reason it was not", artifact_uri=blessing.uri,
        )
    current_id = blessing.custom_properties.get("current_model_id")
    if current_id is not None and model.id is not None and current_id != model.id:
        raise PushRefusedError(
            f"{node}: refusing to push model id {model.id}: the blessing at {blessing.uri} is for model id "
            f"{current_id}. Connect Push's blessing to the Evaluate node that evaluated this model",
            artifact_uri=blessing.uri,
        )
    source = Path(serving_model_path(model.uri))
    if not (source / "saved_model.pb").is_file():
        raise PushRefusedError(
            f"{node}: model {model.uri} has no SavedModel at {source}; push a Model produced by Train",
            artifact_uri=model.uri,
        )
    if "://" in destination and not destination.startswith("file://"):
        raise PushRefusedError(
            f"{node}: destination {destination!r} is not a local path; Push writes to a file system path "
            "(mount object storage, or use a volume shared with the server)"
        )
    base = Path(destination.removeprefix("file://")).absolute()
    if base.exists() and not base.is_dir():
        raise _not_writable(str(base), "it exists and is not a directory")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_writable(str(base), exc.strerror or str(exc)) from None
    if not os.access(base, os.W_OK | os.X_OK):
        raise _not_writable(str(base), "the directory is not writable")

    fingerprint = model_fingerprint(source)
    tmp = base / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        shutil.copytree(source, tmp)
        record = {"fingerprint": fingerprint, "model_uri": model.uri, "model_id": model.id,
                  "blessing_uri": blessing.uri, "pushed_at": time.time()}
        (tmp / PUSH_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        with _locked(base):
            versions = _versions(base)
            if versions and _recorded_fingerprint(base / str(versions[-1])) == fingerprint:
                version, new = versions[-1], False
            else:
                version, new = (versions[-1] + 1 if versions else 1), True
                while True:
                    target = base / str(version)
                    if target.exists():  # made by someone not holding the lock: take the next number
                        version += 1
                        continue
                    try:
                        os.rename(tmp, target)
                    except OSError as exc:  # appeared meanwhile (rename never replaces a non-empty dir)
                        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                            raise
                        version += 1
                        continue
                    break
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC):
            raise _not_writable(str(base), exc.strerror or str(exc)) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "pushed": 1,
        "pushed_destination": str(base / str(version)),
        "pushed_version": str(version),
        "pushed_new_version": 1 if new else 0,
        "model_fingerprint": fingerprint,
    }


def _skip_unless_blessed(inputs: dict[str, list[Artifact]], parameters: dict[str, Any]) -> str | None:
    """Runner-side gate: skip the executor unless the blessing artifact says blessed=1."""
    del parameters
    blessings = inputs.get("blessing") or []
    if not blessings:
        return "no blessing: Evaluate produced none"
    value = blessings[0].custom_properties.get("blessed")
    if value in (1, True):
        return None
    message = blessings[0].custom_properties.get("blessing_message")
    return f"model not blessed (blessed={value!r})" + (f": {message}" if message else "")


def _on_skip(outputs: dict[str, Artifact], reason: str) -> None:
    pushed = outputs["pushed_model"]
    pushed.custom_properties["pushed"] = 0
    pushed.custom_properties["push_skipped"] = reason
    Path(pushed.uri, "push.json").write_text(json.dumps({"pushed": 0, "reason": reason}, indent=2) + "\n")


@component(version="1", skip_if=_skip_unless_blessed, on_skip=_on_skip)
def Push(
    *,
    model: Input[types.Model],
    blessing: Input[types.ModelBlessing],
    pushed_model: Output[types.PushedModel],
    destination: str,
    ctx: ExecutionContext,
) -> None:
    """Push ``model`` to ``destination/<version>/`` if ``blessing`` is BLESSED (see the module docs)."""
    props = push_model(model, blessing, destination, node=f"node {ctx.node_id!r}")
    pushed_model.custom_properties.update(props)
    Path(pushed_model.uri, "push.json").write_text(json.dumps(props, indent=2) + "\n")
