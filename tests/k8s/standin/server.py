"""A local Kubernetes API stand-in: the REST paths the Kubernetes runner uses, over real HTTP.

Start it, point the official ``kubernetes`` client at it with :meth:`ApiStandIn.kubeconfig`, and it
answers as an API server does: JSON objects with ``resourceVersion``, list + watch (chunked JSON lines;
synthetic ADDED events without a resourceVersion; ``410 Gone`` as an ERROR event for compacted ones),
``Status`` bodies for errors, Go's boolean query parsing, Orphan as the default propagation for Jobs.
Controllers and a subprocess kubelet (see ``cluster.py``) move pods through their phases.

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
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import updates
from .cluster import Cluster, Image, Node
from .faults import ApiFault, PodFault
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import RESOURCE_INFO, ApiError, ObjectStore
from .validation import prepare_create

__all__ = ["ApiStandIn", "RequestRecord"]

Obj = dict[str, Any]

_NAMESPACED = re.compile(
    r"^/(?:api/v1|apis/(?P<group>batch|apps)/v1)/namespaces/(?P<ns>[^/]+)/(?P<res>[a-z]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?/?$"
)
_CLUSTER_WIDE = re.compile(r"^/(?:api/v1|apis/(?P<group>batch|apps)/v1)/"
                           r"(?P<res>pods|configmaps|secrets|jobs|services|endpoints|events|deployments|replicasets)/?$")
_PROXY = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<res>services|pods)/(?P<name>[^/:]+)(?::(?P<port>[^/]+))?"
                    r"/proxy(?P<path>/.*)?$")
_NAMESPACES = re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+))?/?$")
_GROUP_OF = {"jobs": "batch", "pods": None, "configmaps": None, "secrets": None, "serviceaccounts": None,
             "deployments": "apps", "replicasets": "apps", "services": None, "endpoints": None, "events": None}
_LIST_KIND = {r: kind + "List" for r, (_g, kind) in RESOURCE_INFO.items()}


def parse_go_bool(value: str) -> bool:
    """``strconv.ParseBool``: 1 t T TRUE true True / 0 f F FALSE false False."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ApiError(400, "BadRequest", f'strconv.ParseBool: parsing "{value}": invalid syntax')


@dataclass
class RequestRecord:
    """One request as the stand-in saw it (for assertions: counts, order, who asked). ``code`` is 0 while
    the request is still being answered (an open watch or log stream)."""

    monotonic: float
    method: str
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    code: int
    user: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    wall: float = field(default_factory=time.time)


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-apiserver/1.31"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def standin(self) -> ApiStandIn:
        return self.server.standin  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- plumbing ------------------------------------------------------------------------------------
    def _send_json(self, code: int, obj: Obj, headers: dict[str, str] | None = None) -> None:
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        record = RequestRecord(time.monotonic(), method, "", "", None, None, 0, "anonymous", query)
        try:
            record.code = self._handle(method, parts.path, query, raw, record)
        except ApiError as err:
            record.code = err.code
            self._send_json(err.code, err.status(), err.headers)
        except (BrokenPipeError, ConnectionResetError):
            record.code = 499
        except Exception as exc:  # a bug in the stand-in: answer 500 with the error, visibly
            record.code = 500
            bug = ApiError(500, "InternalError", f"stand-in bug: {exc!r}")
            try:
                self._send_json(500, bug.status())
            except OSError:
                pass

    def _handle(self, method: str, path: str, query: dict[str, str], raw: bytes, record: RequestRecord) -> int:
        standin = self.standin
        if path in ("/version", "/version/"):
            self._send_json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-standin",
                                  "platform": "linux/amd64"})
            return 200
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return 200
        namespace: str | None
        name: str | None
        sub: str | None = None
        if m := _PROXY.match(path):
            return self._proxy(m, method, raw, record)
        if m := _NAMESPACES.match(path):
            resource, namespace, name, group = "namespaces", None, m.group("name"), ""
        elif m := _NAMESPACED.match(path):
            resource, namespace, name, sub = m.group("res"), m.group("ns"), m.group("name"), m.group("sub")
            group = m.group("group") or ""
        elif m := _CLUSTER_WIDE.match(path):
            resource, namespace, name, group = m.group("res"), None, None, m.group("group") or ""
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource not in RESOURCE_INFO or (_GROUP_OF.get(resource) or "") != group or (
            sub not in (None, "log") or (sub == "log" and resource != "pods")
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

        watching = parse_go_bool(query["watch"]) if "watch" in query else False
        if method == "GET":
            verb = "get" if name else ("watch" if watching else "list")
        elif method == "POST":
            verb = "create"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        elif method == "PUT":
            verb = "update"
        else:
            verb = "patch"
        full_resource = f"{resource}/{sub}" if sub else resource
        record.verb, record.resource, record.namespace, record.name = verb, full_resource, namespace, name
        standin.requests.append(record)

        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        user = standin._tokens.get(token)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        record.user = user
        standin._authorize(user, verb, full_resource, group, namespace)
        standin._api_fault(verb, full_resource, name)

        if sub == "log":
            assert namespace is not None and name is not None
            return self._logs(namespace, name, query)
        if verb == "create":
            if namespace is None and resource != "namespaces":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError(400, "BadRequest", f"couldn't get version/kind; json parse error: {exc}") from None
            record.body = json.loads(raw or b"{}")  # what the client sent, before defaulting
            if resource == "namespaces":
                obj = prepare_create("namespaces", body, "")
                obj["status"] = {"phase": "Active"}
                created = standin.store.create("namespaces", obj)
            else:
                assert namespace is not None
                created = standin.create(resource, namespace, body)
            standin._api_fault(verb, full_resource, created["metadata"]["name"], after_commit=True)
            self._send_json(201, created)
            return 201
        if verb in ("update", "patch"):
            if namespace is None or name is None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                                                        "resource")
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError(400, "BadRequest", f"couldn't get version/kind; json parse error: {exc}") from None
            record.body = json.loads(raw or b"{}")
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if verb == "patch" and content_type not in ("application/merge-patch+json",
                                                        "application/strategic-merge-patch+json"):
                raise ApiError(415, "UnsupportedMediaType", f"the stand-in applies merge patches only, not "
                                                            f"{content_type or 'no content type'}")
            updated = standin.update(resource, namespace, name, body, patch=content_type if verb == "patch" else None)
            self._send_json(200, updated)
            return 200
        if verb == "get":
            found = standin.store.get(resource, namespace or "", name or "")
            if found is None:
                raise ApiError.not_found(resource, name or "")
            self._send_json(200, found)
            return 200
        if verb in ("delete", "deletecollection"):
            options: Obj = json.loads(raw) if raw.strip() else {}
            for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
                if key in query and key not in options:
                    options[key] = (parse_go_bool(query[key]) if key == "orphanDependents"
                                    else int(query[key]) if key == "gracePeriodSeconds" else query[key])
            if verb == "delete":
                assert namespace is not None and name is not None
                code, result = standin.delete(resource, namespace, name, options)
                self._send_json(code, result)
                return code
            items = self._select(resource, namespace, query)
            deleted = []
            for item in items:
                try:
                    deleted.append(standin.delete(resource, item["metadata"]["namespace"],
                                                  item["metadata"]["name"], options)[1])
                except ApiError:
                    continue
            self._send_json(200, {"kind": _LIST_KIND[resource], "apiVersion": f"{group}/v1" if group else "v1",
                                  "metadata": {"resourceVersion": str(standin.store.resource_version)},
                                  "items": [i for i in deleted if i.get("kind") != "Status"]})
            return 200
        if verb == "list":
            items = self._select(resource, namespace, query)
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
            self._send_json(200, {
                "kind": _LIST_KIND[resource],
                "apiVersion": f"{group}/v1" if group else "v1",
                "metadata": {"resourceVersion": str(standin.store.resource_version)},
                "items": items,
            })
            return 200
        if verb == "watch":
            timeout = float(query.get("timeoutSeconds") or 1800)
            try:
                stream, events = standin.watch(resource, namespace, query.get("labelSelector"),
                                               query.get("fieldSelector"), query.get("resourceVersion"), timeout)
            except SelectorError as exc:
                raise ApiError(400, "BadRequest", str(exc)) from None
            self._start_chunked("application/json")
            for data in events:
                self._chunk(data)
            if stream.drop == "abrupt":
                self._abort()
            else:
                self._end_chunked()
            return 200
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _proxy(self, m: re.Match[str], method: str, raw: bytes, record: RequestRecord) -> int:
        standin = self.standin
        resource, namespace, name = m.group("res"), m.group("ns"), m.group("name")
        verb = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, "patch")
        record.verb, record.resource, record.namespace, record.name = verb, f"{resource}/proxy", namespace, name
        standin.requests.append(record)
        auth = self.headers.get("Authorization", "")
        user = standin._tokens.get(auth[7:] if auth.startswith("Bearer ") else "")
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        record.user = user
        standin._authorize(user, verb, f"{resource}/proxy", "", namespace)
        query = urlsplit(self.path).query
        code, headers, data = standin.proxy(resource, namespace, name, m.group("port"), m.group("path") or "/",
                                            method, query, raw, dict(self.headers.items()))
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return code

    def _select(self, resource: str, namespace: str | None, query: dict[str, str]) -> list[Obj]:
        try:
            label_pred = parse_label_selector(query.get("labelSelector"))
            field_pred = parse_field_selector(query.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        if namespace is not None and resource != "namespaces":
            self.standin._ensure_namespace(namespace)
        items, _ = self.standin.store.list(
            resource, namespace if resource != "namespaces" else None,
            lambda o: label_pred(o["metadata"].get("labels") or {}) and field_pred(o),
        )
        return items

    def _logs(self, namespace: str, name: str, query: dict[str, str]) -> int:
        follow = parse_go_bool(query["follow"]) if "follow" in query else False
        timestamps = parse_go_bool(query["timestamps"]) if "timestamps" in query else False
        tail = int(query["tailLines"]) if "tailLines" in query else None
        since = int(query["sinceSeconds"]) if "sinceSeconds" in query else None
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        lines = self.standin.cluster.log_lines(
            namespace, name, query.get("container"), follow=follow, tail=tail, timestamps=timestamps,
            since=since, should_stop=self.standin._stopping.is_set,
        )
        if not follow:
            data = b"".join(lines)
            if limit is not None:
                data = data[:limit]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return 200
        self._start_chunked("text/plain")
        sent = 0
        for chunk in lines:
            if limit is not None and sent + len(chunk) > limit:
                chunk = chunk[: limit - sent]
            if chunk:
                self._chunk(chunk)
                sent += len(chunk)
            if limit is not None and sent >= limit:
                break
        self._end_chunked()
        return 200



