"""The stand-in API server's writes other than create and delete: PUT, PATCH, orphaning, and its proxy.

- PUT replaces an object (409 Conflict on a stale ``metadata.resourceVersion``; ``generation`` grows when the
  spec changes; status, uid and owner references are kept) after the same defaulting and validation as a
  create; a Deployment's or ReplicaSet's selector is immutable.
- PATCH applies a JSON merge patch (RFC 7386). A strategic merge patch is applied the same way, which is exact
  for maps and replaces lists.
- The proxy (``/api/v1/namespaces/NS/{services|pods}/NAME[:PORT]/proxy/PATH``) forwards a request to one ready
  endpoint of the Service (in turn) or to the pod, through the port of this machine the kubelet gave the
  container port, and answers 503 ``no endpoints available for service`` when none is ready.
"""

from __future__ import annotations

import copy
import http.client
import json
from typing import Any

from .store import RESOURCE_INFO, ApiError
from .validation import prepare_create

__all__ = ["UPDATABLE", "merge_patch", "orphan", "proxy", "update"]

Obj = dict[str, Any]
UPDATABLE = ("deployments", "replicasets", "services", "endpoints", "configmaps")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def orphan(standin: Any, namespace: str, uid: str) -> None:
    """Drop the owner references to ``uid`` (deletion with propagation Orphan)."""
    for resource in ("replicasets", "pods"):
        items, _ = standin.store.list(resource, namespace)
        for item in items:
            if any(r.get("uid") == uid for r in item["metadata"].get("ownerReferences") or []):
                def drop(o: Obj) -> None:
                    refs = [r for r in o["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                    o["metadata"]["ownerReferences"] = refs
                    if not refs:
                        o["metadata"].pop("ownerReferences")

                standin.store.modify(resource, namespace, item["metadata"]["name"], drop)

def update(standin: Any, resource: str, namespace: str, name: str, body: Obj, *, patch: str | None = None) -> Obj:
    """PUT (``patch`` None) or PATCH (a merge patch) of an object: validated like a create."""
    if resource not in UPDATABLE:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    current = standin.store.get(resource, namespace, name)
    if current is None:
        raise ApiError.not_found(resource, name)
    if patch is not None:
        if not isinstance(body, dict):
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: "
                           f"application/merge-patch+json, application/strategic-merge-patch+json ({patch})")
        body = merge_patch(copy.deepcopy(current), body)
    meta = body.setdefault("metadata", {})
    if meta.get("name", name) != name:
        raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on "
                                          f"the URL ({name})")
    sent_rv = meta.get("resourceVersion")
    if patch is None and sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
        group = RESOURCE_INFO[resource][0]
        shown = f"{resource}.{group}" if group else resource
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {shown} '
                                        f'"{name}": the object has been modified; please apply your changes to the '
                                        "latest version and try again",
                       {"name": name, "kind": resource, **({"group": group} if group else {})})
    meta["name"] = name
    prepared = prepare_create(resource, copy.deepcopy(body), namespace)
    if resource in ("deployments", "replicasets") and prepared["spec"].get("selector") != current["spec"].get(
            "selector"):
        raise ApiError(422, "Invalid", f'{RESOURCE_INFO[resource][1]}.apps "{name}" is invalid: spec.selector: '
                                       f"Invalid value: {json.dumps(prepared['spec'].get('selector'))}: field is "
                                       "immutable")
    if resource == "services" and body.get("spec", {}).get("clusterIP") in (None, ""):
        prepared["spec"]["clusterIP"] = current["spec"]["clusterIP"]
        prepared["spec"]["clusterIPs"] = current["spec"]["clusterIPs"]

    def replace(obj: Obj) -> None:
        keep = {k: obj["metadata"][k] for k in ("uid", "creationTimestamp", "namespace", "generation",
                                                 "ownerReferences") if k in obj["metadata"]}
        spec_changed = obj.get("spec") != prepared.get("spec")
        status = obj.get("status")
        obj.clear()
        obj.update(copy.deepcopy(prepared))
        obj["metadata"].update({k: v for k, v in keep.items() if k != "ownerReferences"})
        if "ownerReferences" in keep and "ownerReferences" not in (body.get("metadata") or {}):
            obj["metadata"]["ownerReferences"] = keep["ownerReferences"]
        if "generation" in keep:
            obj["metadata"]["generation"] = keep["generation"] + (1 if spec_changed else 0)
        if status is not None and resource != "endpoints":
            obj["status"] = status

    updated = standin.store.modify(resource, namespace, name, replace)
    assert updated is not None
    return updated

def proxy(standin: Any, resource: str, namespace: str, name: str, port: str | None, path: str, method: str,
          query: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """The API server's proxy to a Service (one ready endpoint, in turn) or a pod."""
    standin._ensure_namespace(namespace)
    if resource == "services":
        service = standin.store.get("services", namespace, name)
        if service is None:
            raise ApiError.not_found("services", name)
        ports = service["spec"].get("ports") or []
        chosen = next((p for p in ports if port in (None, str(p["port"]), p.get("name"))), None)
        if chosen is None:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        endpoints = standin.store.get("endpoints", namespace, name) or {}
        pods = [a["targetRef"]["name"] for subset in endpoints.get("subsets") or []
                for a in subset.get("addresses") or [] if a.get("targetRef")]
        if not pods:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        with standin._lock:
            standin._turn = getattr(standin, "_turn", -1) + 1
            target_pod = pods[standin._turn % len(pods)]
        target = chosen.get("targetPort", chosen["port"])
    else:
        target_pod, target = name, port
    pod = standin.store.get("pods", namespace, target_pod)
    if pod is None:
        raise ApiError.not_found("pods", target_pod)
    host_port = standin.cluster.host_port(pod, target)
    if host_port is None:
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp "
                                                  f"{(pod.get('status') or {}).get('podIP')}:{target}: connect: "
                                                  "connection refused")
    conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=60)
    try:
        forward = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
        conn.request(method, path + (f"?{query}" if query else ""), body=body or None, headers=forward)
        resp = conn.getresponse()
        data = resp.read()
        kept = {k: v for k, v in resp.getheaders() if k.lower() == "content-type"}
        kept["X-Standin-Pod"] = target_pod  # which pod answered: for tests counting the share
        return resp.status, kept, data
    except OSError as exc:
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {exc}") from None
    finally:
        conn.close()
