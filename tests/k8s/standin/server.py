"""A local Kubernetes API stand-in: the REST paths the Kubernetes runner uses, over real HTTP.

Start it, point the official ``kubernetes`` client at it with :meth:`ApiStandIn.kubeconfig`, and it
answers as an API server does: JSON objects with ``resourceVersion``, list + watch (chunked JSON lines;
synthetic ADDED events without a resourceVersion; ``410 Gone`` as an ERROR event for compacted ones),
``Status`` bodies for errors, Go's boolean query parsing, Orphan as the default propagation for Jobs.
Controllers and a subprocess kubelet (see ``cluster.py``) move pods through their phases; ``handler.py``
parses the HTTP requests and routes them to :class:`ApiStandIn`.

Paths::

    /api/v1/namespaces[/{ns}]
    /api/v1/namespaces/{ns}/{pods|configmaps|secrets|serviceaccounts}[/{name}]   (+ /pods/{name}/log)
    /apis/batch/v1/namespaces/{ns}/jobs[/{name}]
    /apis/apps/v1/namespaces/{ns}/{deployments|replicasets}[/{name}]              (PUT, PATCH too)
    /api/v1/namespaces/{ns}/{services|endpoints}[/{name}]                         (PUT, PATCH too)
    /api/v1/namespaces/{ns}/events                                                 (the kubelet's probe events)
    /api/v1/namespaces/{ns}/{services|pods}/{name}[:{port}]/proxy/{path}          (the API server's proxy)
    /api/v1/{pods|configmaps|secrets|services|endpoints}, /apis/batch/v1/jobs, /apis/apps/v1/{deployments|
    replicasets}                                                                   (all namespaces)

PUT replaces an object (409 Conflict on a stale ``metadata.resourceVersion``; ``generation`` grows when the
spec changes; status is kept); PATCH takes a JSON merge patch (``application/merge-patch+json``; a strategic
merge patch is applied the same way, which is exact for maps and replaces lists). The proxy forwards a request
to one ready endpoint of the Service (chosen in turn), or to the pod, through the port the kubelet gave it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import updates
from .cluster import Cluster, Image, Node
from .faults import ApiFault, PodFault
from .handler import RequestRecord, _Handler, parse_go_bool
from .selectors import parse_field_selector, parse_label_selector
from .store import RESOURCE_INFO, ApiError, ObjectStore
from .validation import prepare_create

__all__ = ["ApiStandIn", "RequestRecord", "parse_go_bool"]

Obj = dict[str, Any]

class _WatchStream:
    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.drop: str | None = None  # "abrupt" | "clean"


class ApiStandIn:
    """The stand-in API server. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    ADMIN_TOKEN = "standin-admin-token"

    def __init__(
        self,
        workdir: str | Path,
        *,
        namespaces: Iterable[str] = ("default",),
        nodes: list[Node] | None = None,
        images: dict[str, Image] | None = None,
        claims: dict[str, str] | None = None,
        history_limit: int = 20000,
        backoff_base: float = 0.05,
        grace_cap: float = 2.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store = ObjectStore(history_limit=history_limit)
        self.cluster = Cluster(
            self.store,
            self.workdir,
            nodes=nodes if nodes is not None else [Node(f"node-{i}") for i in range(1, 4)],
            images=images,
            claims=claims or {},
            backoff_base=backoff_base,
            grace_cap=grace_cap,
            kubeconfig_for=self._service_account_kubeconfig,
        )
        self.requests: list[RequestRecord] = []
        self.api_faults: list[ApiFault] = []
        self.roles: dict[str, list[Obj]] = {}  # user -> RBAC rules (enforced only for users listed)
        self._tokens: dict[str, str] = {self.ADMIN_TOKEN: "admin"}
        self._streams: set[_WatchStream] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        for ns in namespaces:
            self.create_namespace(ns)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="standin-http", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiStandIn:
        self._thread.start()
        self.cluster.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.cluster.stop()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------------------
    def create_namespace(self, name: str) -> None:
        self.store.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                                         "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def kubeconfig(self, path: str | Path | None = None, *, namespace: str = "default",
                   token: str | None = None) -> str:
        """Write a kubeconfig for this server (admin unless ``token``) and return its path."""
        target = Path(path) if path is not None else self.workdir / f"kubeconfig-{uuid.uuid4().hex[:8]}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": {"token": token or self.ADMIN_TOKEN}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin",
                                                           "namespace": namespace}}],
            "current-context": "standin",
        }
        target.write_text(json.dumps(config, indent=2))
        return str(target)

    def service_account_token(self, namespace: str, name: str) -> str:
        token = f"sa-{namespace}-{name}-{uuid.uuid5(uuid.NAMESPACE_URL, self.url + namespace + name).hex[:12]}"
        self._tokens[token] = f"system:serviceaccount:{namespace}:{name}"
        return token

    def _service_account_kubeconfig(self, namespace: str, name: str) -> str:
        token = self.service_account_token(namespace, name)
        path = self.workdir / "serviceaccounts" / f"{namespace}-{name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            self.kubeconfig(path, namespace=namespace, token=token)
        return str(path)

    def bind_role(self, namespace: str, service_account: str, rules: list[Obj]) -> None:
        """Enforce RBAC for this service account: only what ``rules`` (a Role's rules) allow."""
        self.roles[f"system:serviceaccount:{namespace}:{service_account}"] = rules

    # -- faults --------------------------------------------------------------------------------------
    def inject(self, fault: PodFault | ApiFault) -> None:
        if isinstance(fault, PodFault):
            with self.cluster._faults_lock:
                self.cluster.pod_faults.append(fault)
        else:
            with self._lock:
                self.api_faults.append(fault)

    def drop_watches(self, resource: str | None = None, *, abrupt: bool = True) -> int:
        """End the open watch streams (of ``resource``): abruptly (no final chunk) or cleanly."""
        with self._lock:
            streams = [s for s in self._streams if resource is None or s.resource == resource]
            for s in streams:
                s.drop = "abrupt" if abrupt else "clean"
        self.store.cond.acquire()
        self.store.cond.notify_all()
        self.store.cond.release()
        return len(streams)

    def compact(self) -> None:
        """Forget watch history: watches resuming from an older resourceVersion get 410 Gone."""
        self.store.compact()

    def open_watches(self, resource: str | None = None) -> int:
        with self._lock:
            return sum(1 for s in self._streams if resource is None or s.resource == resource)

    # -- queries for tests ---------------------------------------------------------------------------
    def count(self, verb: str, resource: str, *, code: int | None = None) -> int:
        return sum(1 for r in list(self.requests)
                   if r.verb == verb and r.resource == resource and (code is None or r.code == code))

    def objects(self, resource: str, namespace: str | None = None, selector: str | None = None) -> list[Obj]:
        pred = parse_label_selector(selector)
        items, _ = self.store.list(resource, namespace, lambda o: pred(o["metadata"].get("labels") or {}))
        return items

    def history(self, resource: str) -> list[Any]:
        """The watch history of ``resource`` (events with ``type``, ``old``, ``new``, ``wall`` time)."""
        with self.store.cond:
            return self.store.events_after(self.store._compacted, resource)

    def created(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Every object of ``resource`` as it was created (from the watch history), deleted ones included."""
        with self.store.cond:
            events = self.store.events_after(self.store._compacted, resource)
        return [e.new for e in events if e.type == "ADDED" and (namespace is None or e.namespace == namespace)]

    def wait_for(self, predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"condition not met within {timeout}s")

    # -- request handling (called by the handler) ----------------------------------------------------
    def _authorize(self, user: str, verb: str, resource: str, group: str, namespace: str | None) -> None:
        rules = self.roles.get(user)
        if rules is None:
            return
        for rule in rules:
            if (
                (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
                and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
                and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
            ):
                return
        base, _, sub = resource.partition("/")
        qualified = f"{base}.{group}" if group else base
        shown = f'resource "{base}"' + (f' in API group "{group}"' if group else ' in API group ""')
        if sub:
            shown = f'resource "{base}/{sub}"' + f' in API group "{group}"'
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        raise ApiError(
            403, "Forbidden",
            f'{qualified}{"/" + sub if sub else ""} is forbidden: User "{user}" cannot {verb} {shown}{where}',
            {"kind": base, **({"group": group} if group else {})},
        )

    def _api_fault(self, verb: str, resource: str, name: str | None, *, after_commit: bool = False) -> None:
        with self._lock:
            faults = list(self.api_faults)
        for fault in faults:
            if not fault.take(verb, resource, name, after_commit):
                continue
            if fault.code == 429:
                raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                               {"retryAfterSeconds": fault.retry_after}, {"Retry-After": str(fault.retry_after)})
            if fault.code == 409:
                raise ApiError.already_exists(resource, name or "")
            if fault.code == 500:
                raise ApiError(500, "InternalError", "Internal error occurred: etcdserver: request timed out",
                               {"causes": [{"message": "etcdserver: request timed out"}]})
            if fault.code == 503:
                raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
            raise ApiError(fault.code, "InternalError", f"stand-in fault {fault.code}")

    def _ensure_namespace(self, namespace: str) -> None:
        if self.store.get("namespaces", "", namespace) is None:
            raise ApiError.not_found("namespaces", namespace)

    def create(self, resource: str, namespace: str, body: Obj) -> Obj:
        self._ensure_namespace(namespace)
        obj = prepare_create(resource, body, namespace)
        meta = obj["metadata"]
        if resource == "jobs":
            uid = str(uuid.uuid4())
            meta["uid"] = uid
            meta["generation"] = 1
            template_labels = obj["spec"]["template"]["metadata"]["labels"]
            if not meta.get("labels"):
                meta["labels"] = dict(template_labels)
            if not obj["spec"].get("manualSelector"):
                obj["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                template_labels.update({
                    "batch.kubernetes.io/controller-uid": uid,
                    "batch.kubernetes.io/job-name": meta["name"],
                    "controller-uid": uid,
                    "job-name": meta["name"],
                })
        return self.store.create(resource, obj)

    def delete(self, resource: str, namespace: str, name: str, options: Obj) -> tuple[int, Obj]:
        current = self.store.get(resource, namespace, name)
        if current is None:
            raise ApiError.not_found(resource, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
            raise ApiError(409, "Conflict",
                           f"Operation cannot be fulfilled on {resource} \"{name}\": Precondition failed: "
                           f"UID in precondition: {pre['uid']}, UID in object meta: {current['metadata']['uid']}")
        if resource == "jobs":
            policy = options.get("propagationPolicy")
            if policy is None:
                orphan = options.get("orphanDependents")
                policy = "Background" if orphan is False else "Orphan"
            if policy not in ("Orphan", "Background", "Foreground"):
                raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                               f'Unsupported value: "{policy}": supported values: "Foreground", '
                                               '"Background", "Orphan", "nil"')
            result = self.cluster.delete_job(namespace, name, policy)
            return 200, result
        if resource in ("deployments", "replicasets"):
            policy = options.get("propagationPolicy") or (
                "Orphan" if options.get("orphanDependents") is True else "Background")
            removed = self.store.remove(resource, namespace, name)
            assert removed is not None
            if policy == "Orphan":
                updates.orphan(self, namespace, removed["metadata"]["uid"])
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": name, "group": "apps", "kind": resource,
                                     "uid": removed["metadata"]["uid"]}}
        if resource == "pods":
            grace = options.get("gracePeriodSeconds")
            deleted = self.cluster.delete_pod(namespace, name, int(grace) if grace is not None else None)
            return 200, deleted if deleted is not None else current
        removed = self.store.remove(resource, namespace, name)
        assert removed is not None
        group = RESOURCE_INFO[resource][0]
        details = {"name": name, "kind": resource, "uid": removed["metadata"]["uid"]}
        if group:
            details["group"] = group
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def update(self, resource: str, namespace: str, name: str, body: Obj, *, patch: str | None = None) -> Obj:
        return updates.update(self, resource, namespace, name, body, patch=patch)

    def proxy(self, resource: str, namespace: str, name: str, port: str | None, path: str, method: str,
              query: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return updates.proxy(self, resource, namespace, name, port, path, method, query, body, headers)

    def watch(
        self, resource: str, namespace: str | None, labels: str | None, fields: str | None,
        resource_version: str | None, timeout: float,
    ) -> tuple[_WatchStream, Iterator[bytes]]:
        label_pred = parse_label_selector(labels)
        field_pred = parse_field_selector(fields)

        def match(o: Obj | None) -> bool:
            return (
                o is not None
                and (namespace is None or o["metadata"].get("namespace") == namespace)
                and label_pred(o["metadata"].get("labels") or {})
                and field_pred(o)
            )

        stream = _WatchStream(resource)
        with self._lock:
            self._streams.add(stream)

        def line(type_: str, obj: Obj) -> bytes:
            return (json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n").encode()

        def events() -> Iterator[bytes]:
            try:
                deadline = time.monotonic() + timeout
                if resource_version in (None, "", "0"):
                    items, rv = self.store.list(resource, namespace, match)
                    for item in items:
                        yield line("ADDED", item)
                else:
                    try:
                        rv = int(resource_version)
                    except ValueError:
                        raise ApiError(400, "BadRequest",
                                       f'invalid resource version "{resource_version}"') from None
                while not self._stopping.is_set():
                    with self.store.cond:
                        try:
                            batch = self.store.events_after(rv, resource)
                        except ApiError as gone:
                            yield line("ERROR", gone.status())
                            return
                        rv = max([rv, self.store.resource_version])
                    for e in batch:
                        old, new = match(e.old), match(e.new)
                        if e.type == "ADDED" and new:
                            yield line("ADDED", e.new)
                        elif e.type == "MODIFIED":
                            if old and new:
                                yield line("MODIFIED", e.new)
                            elif new:
                                yield line("ADDED", e.new)
                            elif old:
                                yield line("DELETED", e.new)
                        elif e.type == "DELETED" and old:
                            yield line("DELETED", e.new)
                    if stream.drop is not None or time.monotonic() >= deadline:
                        return
                    self.store.wait(rv, min(0.25, max(0.0, deadline - time.monotonic())))
            finally:
                with self._lock:
                    self._streams.discard(stream)

        return stream, events()
