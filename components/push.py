"""Push: copy a BLESSED model to a serving location in TF Serving layout, never overwriting a version.

::

    push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing,
                destination="/srv/models/penguin")          # or "s3://bucket/models/penguin", "gs://..."
    push.outputs.pushed_model    # PushedModel: pushed (1/0), pushed_destination, pushed_version

Layout: ``<destination>/<version>/`` holds the SavedModel (``saved_model.pb``, ``variables/``, ``assets/``),
``version`` an integer one above the highest existing version (1 for an empty destination), which is
what TF Serving's file-system source watches — on a local disk, or directly on S3 and GCS. A push:

* is gated twice (on InfraValidate's ``infra_blessing`` too, when wired: :mod:`.infra_validate`).
  The runner skips Push when the blessing's ``blessed`` property is not 1 (``skip_if``:
  the executor never starts, ``pushed=0`` is published); and the executor itself re-reads the blessing —
  its ``BLESSED``/``NOT_BLESSED`` marker file and its ``blessed`` property — and refuses
  (:class:`~headwater.metadata.errors.PushRefusedError`) anything not BLESSED, or blessed for another model;
* never replaces an existing version, and on a local file system is atomic: the model is copied into a
  hidden temporary sibling (``.push-tmp-*``, ignored by TF Serving) and renamed into place; a lock file
  serialises concurrent pushes to one destination; each push holds a lock on its temporary copy, and
  sweeps (under the destination's lock) the copies whose lock is free — those of killed pushes;
* never follows a link out of the destination: the lock file is opened ``O_NOFOLLOW``, only ASCII-digit
  names are versions, a number taken by anything (even a dangling link) is skipped, and a version that
  is (or holds) a link is never fingerprinted through;
* is idempotent per model content: when the newest version already holds a model with this content
  fingerprint, no new version is made; the PushedModel then records that version and
  ``pushed_new_version=0``.

Object stores (``s3://``, ``gs://``, any URL :mod:`headwater.components.storage` reads) have neither
rename nor locks, so a push there does the closest honest thing:

* **saved_model.pb last.** TF Serving's source aspires every child of the base path whose name is an
  integer, as soon as any object exists under it; its loader only loads a version directory holding
  ``saved_model.pb`` (else: "should have a file called saved_model.pb", retried ``--max_num_load_retries``
  times, default 5, one ``--load_retry_interval_micros`` apart, default a minute). Push uploads every other
  file first, then ``.headwater-push.json``, then ``saved_model.pb``; each object appears whole, and S3
  and GCS are strongly consistent, so a load that finds ``saved_model.pb`` finds the whole model.
  *Residual:* the version is visible (and loads of it fail) while it uploads; an upload that outlasts the
  server's load retries leaves that version given up (TF Serving keeps serving the previous one) until
  the server restarts or a newer version appears.
* **Claimed version numbers.** The next version is one above the highest numeric prefix and the highest
  claim. A pusher writes a claim object ``<destination>/.headwater-push-claims/<version>.<random>``
  (ignored by TF Serving: not a number), lists the claims again, and uploads only when its claim is
  the only one for that number and no object exists under ``<destination>/<version>/``; otherwise it
  withdraws the claim and tries again after a random pause (numbers lost this way may stay unused: TF
  Serving needs versions to be integers, not consecutive). On a store whose listings show every
  completed write (S3, GCS), two headwater pushers never both win a number. *Residual:* a writer
  that does not claim (another tool) can still create the same version between the check and the
  upload, and its objects and ours would mix — the storage API has no create-only write; on a store
  with eventually consistent listings two pushers can both win.
* **Idempotent against complete versions.** "Already pushed" means the highest version holds
  ``saved_model.pb`` and this fingerprint, and no higher claim is in flight. *Residual:* two concurrent
  pushes of the same model can both make a version.
* **Failures.** A failed upload deletes what it wrote and its claim. A pusher killed mid-upload leaves
  a version without ``saved_model.pb`` (never loadable; later pushes go above it) and a stale claim
  (its number is skipped).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.components import storage
from headwater.components._layout import (
    BLESSED_FILE,
    INFRA_BLESSED_FILE,
    INFRA_NOT_BLESSED_FILE,
    NOT_BLESSED_FILE,
    SAVED_MODEL_FILE,
    serving_model_path,
)
from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.components.errors import PushRefusedError
from headwater.metadata import types
from headwater.metadata.artifact import Artifact
from headwater.metadata.conventions import (
    A_BLESSED,
    A_BLESSING_MESSAGE,
    A_CURRENT_MODEL_ID,
    A_PUSH_SKIPPED,
    A_PUSHED,
    A_PUSHED_DESTINATION,
    A_PUSHED_VERSION,
)
from headwater.metadata.errors import StorageError

__all__ = ["CLAIMS_DIR", "PUSH_RECORD", "Push", "infra_blessing_verdict", "infra_skip_reason", "model_fingerprint",
           "push_model"]

#: Written inside each version directory: what was pushed, and its fingerprint (TF Serving ignores it).
PUSH_RECORD = ".headwater-push.json"
_LOCK = ".headwater-push.lock"
_TMP_PREFIX = ".push-tmp-"
#: Under an object-store destination: one small object per push in flight, naming the version it claims.
CLAIMS_DIR = ".headwater-push-claims"
#: How often a pusher that lost a version number to a concurrent one tries the next number.
_CLAIM_ATTEMPTS = 20


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
    """Every version number taken at ``base``: ASCII-digit names of any kind (folder, file, link)."""
    return sorted(n for n in (_number(name) for name in os.listdir(base)) if n is not None)


def _recorded_fingerprint(version_dir: Path) -> str | None:
    """The fingerprint of a pushed version, or None when it cannot be told without leaving ``version_dir``
    (a link, or a folder holding links: never followed, so never fingerprinted through)."""
    if version_dir.is_symlink() or not version_dir.is_dir():
        return None
    try:
        fd = os.open(version_dir / PUSH_RECORD, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as handle:
            return str(json.load(handle)["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if any(p.is_symlink() for p in version_dir.rglob("*")):
        return None
    return model_fingerprint(version_dir)  # pushed by something else: look at the files themselves


def _open_nofollow(path: Path) -> int:
    """Open (creating) ``path`` for locking, refusing a link planted there."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PushRefusedError(
                f"cannot push to {path.parent}: {path.name} is a link; Push only writes inside its destination. "
                "Remove the link (no push is running while it is there)", artifact_uri=str(path.parent),
            ) from None
        raise


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    fd = _open_nofollow(base / _LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _sweep_stale(base: Path) -> None:
    """Delete temporary copies left by dead pushes (held under the destination's lock).

    A push holds a shared lock on its temporary folder from creating it until it is renamed or removed;
    the kernel drops that lock when the process dies (Ctrl-C, SIGTERM, kill -9), so a folder whose lock
    can be taken belongs to nobody."""
    for entry in os.scandir(base):
        if not entry.name.startswith(_TMP_PREFIX) or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live push holds it
            os.close(fd)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)


def _new_temp(base: Path) -> tuple[Path, int]:
    """A temporary folder for one push, made and locked (shared) under the destination's lock."""
    with _locked(base):
        _sweep_stale(base)
        tmp = base / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir()
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        fcntl.flock(fd, fcntl.LOCK_SH)
    return tmp, fd


def _not_writable(base: str, why: str) -> PushRefusedError:
    return PushRefusedError(
        f"cannot push to {base}: {why}. Give Push a destination directory this process can create and "
        "write (check the path, its owner and permissions, and that the volume is mounted read-write)",
        artifact_uri=base,
    )


def _blessing_verdict(blessing: Artifact) -> tuple[bool, str]:
    """Re-read the blessing: marker file AND custom property must both say BLESSED."""
    folder = Path(blessing.path)
    blessed_file = (folder / BLESSED_FILE).exists()
    not_blessed_file = (folder / NOT_BLESSED_FILE).exists()
    prop = blessing.custom_properties.get(A_BLESSED)
    if not_blessed_file:
        return False, f"the blessing at {folder} holds a {NOT_BLESSED_FILE} file"
    if not blessed_file:
        return False, f"the blessing at {folder} holds no {BLESSED_FILE} file"
    if prop not in (1, True):
        return False, f"the blessing artifact's 'blessed' property is {prop!r}, not 1"
    return True, "BLESSED"


def push_model(
    model: Artifact, blessing: Artifact, destination: str, *, node: str = "Push",
    infra_blessing: Artifact | None = None,
) -> dict[str, Any]:
    """The Push executor as a plain function: returns the PushedModel's custom properties."""
    blessed, why = _blessing_verdict(blessing)
    if not blessed:
        raise PushRefusedError(
            f"{node}: refusing to push model {model.uri}: {why}. Only a model that Evaluate BLESSED is pushed; "
            "look at the evaluation's metrics.md for the reason it was not", artifact_uri=blessing.uri,
        )
    current_id = blessing.custom_properties.get(A_CURRENT_MODEL_ID)
    if current_id is not None and model.id is not None and current_id != model.id:
        raise PushRefusedError(
            f"{node}: refusing to push model id {model.id}: the blessing at {blessing.uri} is for model id "
            f"{current_id}. Connect Push's blessing to the Evaluate node that evaluated this model",
            artifact_uri=blessing.uri,
        )
    _check_infra_blessing(model, infra_blessing, node)
    source = Path(serving_model_path(model.path))
    if not (source / SAVED_MODEL_FILE).is_file():
        raise PushRefusedError(
            f"{node}: model {model.uri} has no SavedModel at {source}; push a Model produced by Train",
            artifact_uri=model.uri,
        )

    def make_record() -> dict[str, Any]:
        """What each version directory records about its push (computed once the destination is usable)."""
        return {"fingerprint": model_fingerprint(source), "model_uri": model.uri, "model_id": model.id,
                "blessing_uri": blessing.uri, "pushed_at": time.time()}

    if storage.is_url(destination):
        base = destination.rstrip("/")
        version, new, record = _push_to_object_store(source, base, make_record)
        where = storage.join(base, str(version))
    else:
        version, new, where, record = _push_local(source, destination, make_record)
    return {
        A_PUSHED: 1,
        A_PUSHED_DESTINATION: where,
        A_PUSHED_VERSION: str(version),
        "pushed_new_version": 1 if new else 0,
        "model_fingerprint": record["fingerprint"],
    }


def infra_blessing_verdict(infra_blessing: Artifact, model: Artifact) -> tuple[bool, str]:
    """Re-read an InfraBlessing for Push: marker file AND ``blessed`` property, for this very model."""
    folder = Path(infra_blessing.path)
    prop = infra_blessing.custom_properties.get(A_BLESSED)
    message = infra_blessing.custom_properties.get(A_BLESSING_MESSAGE)
    if (folder / INFRA_NOT_BLESSED_FILE).exists():
        return False, f"the infra blessing at {folder} holds {INFRA_NOT_BLESSED_FILE}" + (
            f": {message}" if message else "")
    if not (folder / INFRA_BLESSED_FILE).exists():
        return False, f"the infra blessing at {folder} holds no {INFRA_BLESSED_FILE} file"
    if prop not in (1, True):
        return False, f"the infra blessing's 'blessed' property is {prop!r}, not 1"
    current = infra_blessing.custom_properties.get(A_CURRENT_MODEL_ID)
    if current is not None and model.id is not None and current != model.id:
        return False, (f"the infra blessing at {infra_blessing.uri} is for model id {current}, not {model.id}; "
                       "connect Push's infra_blessing to the InfraValidate node that validated this model")
    return True, "INFRA_BLESSED"


def infra_skip_reason(inputs: dict[str, list[Artifact]]) -> str | None:
    """Runner-side gate: a reason to skip Push when an InfraBlessing is wired and does not say blessed."""
    if "infra_blessing" not in inputs:
        return None  # not wired
    found = inputs["infra_blessing"]
    if not found:
        return "no infra blessing: InfraValidate produced none"
    value = found[0].custom_properties.get(A_BLESSED)
    if value in (1, True):
        return None
    message = found[0].custom_properties.get(A_BLESSING_MESSAGE)
    return f"model not infra-blessed (blessed={value!r})" + (f": {message}" if message else "")


def _check_infra_blessing(model: Artifact, infra_blessing: Artifact | None, node: str) -> None:
    """The executor's second gate on InfraValidate: refuse unless a wired InfraBlessing says blessed."""
    if infra_blessing is None:
        return
    ok, why = infra_blessing_verdict(infra_blessing, model)
    if not ok:
        raise PushRefusedError(
            f"{node}: refusing to push model {model.uri}: {why}. With an infra blessing wired, only a model that "
            "InfraValidate blessed is pushed; its infra_validation.json and .log say what failed",
            artifact_uri=infra_blessing.uri)


# ------------------------------------------------------------------------------------- local disk
def _push_local(
    source: Path, destination: str, make_record: Callable[[], dict[str, Any]]
) -> tuple[int, bool, str, dict[str, Any]]:
    """Copy into a hidden sibling, then rename to the next free version under a lock file."""
    base = Path(destination.removeprefix("file://")).absolute()
    if base.exists() and not base.is_dir():
        raise _not_writable(str(base), "it exists and is not a directory")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_writable(str(base), exc.strerror or str(exc)) from None
    if not os.access(base, os.W_OK | os.X_OK):
        raise _not_writable(str(base), "the directory is not writable")

    record = make_record()
    fingerprint = record["fingerprint"]
    tmp: Path | None = None
    fd = -1
    try:
        tmp, fd = _new_temp(base)
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        record["pushed_at"] = time.time()
        (tmp / PUSH_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        with _locked(base):
            version, new = _place(base, tmp, fingerprint)
    except shutil.Error as exc:  # copytree gathers the errors of each file: report the first
        first = exc.args[0][0] if exc.args and isinstance(exc.args[0], list) and exc.args[0] else exc
        why = first[2] if isinstance(first, tuple) and len(first) == 3 else str(first)
        raise _not_writable(str(base), f"copying the model failed ({why})") from None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise _not_writable(str(base), exc.strerror or str(exc)) from None
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if fd >= 0:
            os.close(fd)
    return version, new, str(base / str(version)), record


def _place(base: Path, tmp: Path, fingerprint: str) -> tuple[int, bool]:
    """Under the lock: the newest version if it holds this very model, else rename ``tmp`` to the next
    free number (a number taken by anything, even a dangling link, is skipped)."""
    versions = _versions(base)
    if versions and _recorded_fingerprint(base / str(versions[-1])) == fingerprint:
        return versions[-1], False
    version = versions[-1] + 1 if versions else 1
    while True:
        target = base / str(version)
        if os.path.lexists(target):  # made by someone not holding the lock: take the next number
            version += 1
            continue
        try:
            os.rename(tmp, target)
        except OSError as exc:  # appeared meanwhile (rename never replaces a non-empty dir)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise
            version += 1
            continue
        return version, True


# ----------------------------------------------------------------------------------- object stores
@dataclass
class _Survey:
    """What a listing of an object-store destination shows."""

    versions: dict[int, set[str]] = field(default_factory=dict)  # version -> its files, relative to it
    claims: dict[int, set[str]] = field(default_factory=dict)  # version -> tokens of pushes claiming it


def _number(name: str) -> int | None:
    return int(name) if name.isascii() and name.isdigit() else None


def _parse_claims(names: list[str], survey: _Survey) -> None:
    for name in names:
        number, _, token = name.partition(".")
        version = _number(number)
        if version is not None and token and "/" not in token:
            survey.claims.setdefault(version, set()).add(token)


def _survey(base: str) -> _Survey:
    survey = _Survey()
    claims: list[str] = []
    for url in storage.list_files(base):
        head, _, rest = url[len(base) + 1:].partition("/")
        version = _number(head)
        if version is not None and rest:
            survey.versions.setdefault(version, set()).add(rest)
        elif head == CLAIMS_DIR:
            claims.append(rest)
    _parse_claims(claims, survey)
    return survey


def _claims(base: str) -> dict[int, set[str]]:
    folder = storage.join(base, CLAIMS_DIR)
    survey = _Survey()
    _parse_claims([url[len(folder) + 1:] for url in storage.list_files(folder)], survey)
    return survey.claims


def _remote_fingerprint(version_url: str, files: set[str]) -> str:
    """The fingerprint of a pushed version: its record, or (pushed by something else) its files."""
    if PUSH_RECORD in files:
        try:
            return str(json.loads(storage.read_bytes(storage.join(version_url, PUSH_RECORD)))["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    digest = hashlib.sha256()  # as model_fingerprint: files in path order, by path components
    for rel in sorted((f for f in files if f.rsplit("/", 1)[-1] != PUSH_RECORD), key=lambda f: f.split("/")):
        digest.update(rel.encode() + b"\0")
        with storage.open_input(storage.join(version_url, rel)) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _store_refused(base: str, exc: Exception) -> PushRefusedError:
    return PushRefusedError(
        f"cannot push to {base}: {exc}. Give Push a destination in a bucket that exists and that this "
        "process's credentials may list and write (check the bucket name, the credentials and the "
        "endpoint settings)",
        artifact_uri=base,
    )


def _upload_version(source: Path, target: str, record: dict[str, Any]) -> None:
    """Every file but saved_model.pb (in parallel), then the push record, then saved_model.pb."""
    storage.upload(str(source), target, skip={SAVED_MODEL_FILE, PUSH_RECORD})
    storage.write_bytes(storage.join(target, PUSH_RECORD), (json.dumps(record, indent=2) + "\n").encode())
    storage.upload_file(str(source / SAVED_MODEL_FILE), storage.join(target, SAVED_MODEL_FILE))


def _push_to_object_store(
    source: Path, base: str, make_record: Callable[[], dict[str, Any]]
) -> tuple[int, bool, dict[str, Any]]:
    """Claim the next version number, then upload into it saved_model.pb last (see the module docs)."""
    try:
        survey = _survey(base)
    except StorageError as exc:
        raise _store_refused(base, exc) from None
    record = make_record()
    for attempt in range(_CLAIM_ATTEMPTS):
        latest = max(survey.versions, default=0)
        if (latest and SAVED_MODEL_FILE in survey.versions[latest]
                and not any(n > latest for n in survey.claims)
                and _remote_fingerprint(storage.join(base, str(latest)), survey.versions[latest])
                == record["fingerprint"]):
            return latest, False, record
        version = max(latest, *survey.claims, 0) + 1
        token = uuid.uuid4().hex
        claim = storage.join(base, CLAIMS_DIR, f"{version}.{token}")
        try:
            storage.write_bytes(claim, (json.dumps(record) + "\n").encode())
        except StorageError as exc:
            raise _store_refused(base, exc) from None
        if _claims(base).get(version, set()) == {token} and not storage.exists(storage.join(base, str(version))):
            break
        storage.remove(claim)  # lost the number to a concurrent push: withdraw, pause, look again
        time.sleep(random.uniform(0.02, 0.2) * (attempt + 1))
        survey = _survey(base)
    else:
        raise PushRefusedError(
            f"cannot push to {base}: concurrent pushes took every version number tried in "
            f"{_CLAIM_ATTEMPTS} attempts; run the push again", artifact_uri=base)
    target = storage.join(base, str(version))
    try:
        _upload_version(source, target, record)
    except BaseException:
        with contextlib.suppress(OSError):
            storage.remove(target)  # ours alone: the claim kept every other headwater push out
        raise
    finally:
        with contextlib.suppress(OSError):
            storage.remove(claim)
    return version, True, record


def _skip_unless_blessed(inputs: dict[str, list[Artifact]], parameters: dict[str, Any]) -> str | None:
    """Runner-side gate: skip the executor unless the blessing artifact says blessed=1."""
    del parameters
    blessings = inputs.get("blessing") or []
    if not blessings:
        return "no blessing: Evaluate produced none"
    value = blessings[0].custom_properties.get(A_BLESSED)
    if value in (1, True):
        return _skip_unless_infra_blessed(inputs)
    message = blessings[0].custom_properties.get(A_BLESSING_MESSAGE)
    return f"model not blessed (blessed={value!r})" + (f": {message}" if message else "")


def _skip_unless_infra_blessed(inputs: dict[str, list[Artifact]]) -> str | None:
    return infra_skip_reason(inputs)


def _on_skip(outputs: dict[str, Artifact], reason: str) -> None:
    pushed = outputs["pushed_model"]
    pushed.custom_properties[A_PUSHED] = 0
    pushed.custom_properties[A_PUSH_SKIPPED] = reason
    Path(pushed.path, "push.json").write_text(json.dumps({"pushed": 0, "reason": reason}, indent=2) + "\n")


@component(version="1", skip_if=_skip_unless_blessed, on_skip=_on_skip)
def Push(
    *,
    model: Input[types.Model],
    blessing: Input[types.ModelBlessing],
    pushed_model: Output[types.PushedModel],
    destination: str,
    ctx: ExecutionContext,
    infra_blessing: Input[types.InfraBlessing] | None = None,
) -> None:
    """Push ``model`` to ``destination/<version>/`` if ``blessing`` (and ``infra_blessing``, when wired) is
    BLESSED (see the module docs)."""
    props = push_model(model, blessing, destination, node=f"node {ctx.node_id!r}", infra_blessing=infra_blessing)
    print(f"Push: model {model.uri} pushed to {props.get(A_PUSHED_DESTINATION)} "
          f"(version {props.get(A_PUSHED_VERSION)})", flush=True)
    pushed_model.custom_properties.update(props)
    Path(pushed_model.path, "push.json").write_text(json.dumps(props, indent=2) + "\n")
