"""The stand-in's HTTP layer: parses each request, routes it to :class:`~.server.ApiStandIn` and writes the
answer as an API server does (JSON objects and lists, ``Status`` bodies, chunked watch streams, pod logs, the
proxy). The paths are listed in ``server.py``."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import RESOURCE_INFO, ApiError
from .validation import prepare_create

if TYPE_CHECKING:
    from .server import ApiStandIn

__all__ = ["RequestRecord", "parse_go_bool"]

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



