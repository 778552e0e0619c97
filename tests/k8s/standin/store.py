"""The stand-in's object store: one resourceVersion counter, an event history for watches, 410 Gone.

Objects are plain JSON dictionaries, exactly what goes over the wire. Every write bumps the global
resourceVersion (like etcd's revision), records an event, and wakes the watchers. The history is bounded;
a watch that asks for a resourceVersion older than what is kept gets ``410 Gone`` ("Expired"), as a real
API server does after etcd compaction.
"""

from __future__ import annotations

import bisect
import builtins
import copy
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApiError", "Event", "ObjectStore", "now_rfc3339"]

Obj = dict[str, Any]


def now_rfc3339() -> str:
    """metav1.Time: seconds precision, UTC, ``Z`` suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# resource -> (group, kind, singular) as the API server names them in Status details and messages.
RESOURCE_INFO: dict[str, tuple[str, str]] = {
    "jobs": ("batch", "Job"),
    "pods": ("", "Pod"),
    "configmaps": ("", "ConfigMap"),
    "secrets": ("", "Secret"),
    "namespaces": ("", "Namespace"),
    "serviceaccounts": ("", "ServiceAccount"),
    "deployments": ("apps", "Deployment"),
    "replicasets": ("apps", "ReplicaSet"),
    "services": ("", "Service"),
    "endpoints": ("", "Endpoints"),
    "events": ("", "Event"),
}


def qualified(resource: str) -> str:
    """``jobs.batch`` / ``pods``: the resource as it appears in API server messages."""
    group = RESOURCE_INFO.get(resource, ("", ""))[0]
    return f"{resource}.{group}" if group else resource


@dataclass
class ApiError(Exception):
    """Becomes a ``Status`` body with this code, reason and message."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def not_found(cls, resource: str, name: str) -> ApiError:
        group = RESOURCE_INFO.get(resource, ("", ""))[0]
        return cls(404, "NotFound", f'{qualified(resource)} "{name}" not found',
                   {"name": name, "group": group, "kind": resource} if group else
                   {"name": name, "kind": resource})

    @classmethod
    def already_exists(cls, resource: str, name: str) -> ApiError:
        group = RESOURCE_INFO.get(resource, ("", ""))[0]
        details = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return cls(409, "AlreadyExists", f'{qualified(resource)} "{name}" already exists', details)

    @classmethod
    def gone(cls, requested: int, oldest: int) -> ApiError:
        return cls(410, "Expired", f"too old resource version: {requested} ({oldest})")


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    namespace: str
    old: Obj | None
    new: Obj
    wall: float = field(default_factory=time.time)


class ObjectStore:
    """Thread-safe object storage with watch history."""

    def __init__(self, history_limit: int = 20000) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._rv = 1000
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._history: list[Event] = []
        self._history_rvs: list[int] = []
        self._history_limit = history_limit
        self._compacted = self._rv  # events with rv <= this are no longer available
        self.closed = False

    # -- internals ---------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def _record(self, type_: str, resource: str, namespace: str, old: Obj | None, new: Obj) -> None:
        event = Event(self._rv, type_, resource, namespace, old, copy.deepcopy(new))
        self._history.append(event)
        self._history_rvs.append(event.rv)
        if len(self._history) > self._history_limit:
            drop = len(self._history) // 2
            self._compacted = self._history[drop - 1].rv
            del self._history[:drop]
            del self._history_rvs[:drop]
        self.cond.notify_all()

    def compact(self) -> None:
        """Forget the whole watch history (like etcd compaction): older resourceVersions answer 410."""
        with self.cond:
            self._compacted = self._rv
            self._history.clear()
            self._history_rvs.clear()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # -- CRUD --------------------------------------------------------------------------------------
    def create(self, resource: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        with self.cond:
            bucket = self._objects.setdefault(resource, {})
            if (ns, meta["name"]) in bucket:
                raise ApiError.already_exists(resource, meta["name"])
            self._rv += 1
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            meta["resourceVersion"] = str(self._rv)
            bucket[(ns, meta["name"])] = copy.deepcopy(obj)
            self._record("ADDED", resource, ns, None, obj)
            return copy.deepcopy(obj)

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self.cond:
            obj = self._objects.get(resource, {}).get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, resource: str, namespace: str | None = None, predicate: Callable[[Obj], bool] | None = None
    ) -> tuple[list[Obj], int]:
        with self.cond:
            items = [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._objects.get(resource, {}).items())
                if (namespace is None or ns == namespace) and (predicate is None or predicate(o))
            ]
            return items, self._rv

    def modify(self, resource: str, namespace: str, name: str, mutate: Callable[[Obj], None]) -> Obj | None:
        """Apply ``mutate`` to a copy; store it (new resourceVersion, MODIFIED event) if it changed."""
        with self.cond:
            current = self._objects.get(resource, {}).get((namespace, name))
            if current is None:
                return None
            new = copy.deepcopy(current)
            mutate(new)
            if new == current:
                return copy.deepcopy(current)
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[resource][(namespace, name)] = new
            self._record("MODIFIED", resource, namespace, current, new)
            return copy.deepcopy(new)

    def remove(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self.cond:
            current = self._objects.get(resource, {}).pop((namespace, name), None)
            if current is None:
                return None
            self._rv += 1
            final = copy.deepcopy(current)
            final["metadata"]["resourceVersion"] = str(self._rv)
            self._record("DELETED", resource, namespace, current, final)
            return final

    # -- watch -------------------------------------------------------------------------------------
    def events_after(self, rv: int, resource: str) -> builtins.list[Event]:
        """Events of ``resource`` newer than ``rv``; raises 410 when ``rv`` was compacted away."""
        with self.cond:
            if rv < self._compacted:
                raise ApiError.gone(rv, self._compacted + 1)
            start = bisect.bisect_right(self._history_rvs, rv)
            return [e for e in self._history[start:] if e.resource == resource]

    def wait(self, rv: int, timeout: float) -> None:
        """Block until something newer than ``rv`` was written, the store closes, or ``timeout``."""
        with self.cond:
            if self._rv <= rv and not self.closed:
                self.cond.wait(timeout)
