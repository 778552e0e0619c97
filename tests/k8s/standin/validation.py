"""Defaulting and validation on create, with the API server's field paths and messages.

Only the rules that matter for what the runner sends are implemented, but each one answers like the real
server: ``400 BadRequest`` when the body does not decode (bad quantities), ``422 Invalid`` with
``details.causes`` for field errors, defaults filled in (Job selector and pod-template labels, container
imagePullPolicy, termination message path, requests defaulted from limits, ...).
"""

from __future__ import annotations

import json
import random
import re
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .store import RESOURCE_INFO, ApiError

__all__ = ["apply_pod_defaults", "generate_name", "prepare_create"]

Obj = dict[str, Any]

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))


class _Errors:
    def __init__(self) -> None:
        self.causes: list[tuple[str, str, str]] = []  # (reason, field, message)

    def invalid(self, path: str, value: Any, detail: str) -> None:
        shown = json.dumps(value) if isinstance(value, str) else str(value)
        self.causes.append(("FieldValueInvalid", path, f"{path}: Invalid value: {shown}: {detail}"))

    def required(self, path: str, detail: str = "") -> None:
        msg = f"{path}: Required value" + (f": {detail}" if detail else "")
        self.causes.append(("FieldValueRequired", path, msg))

    def unsupported(self, path: str, value: str, supported: list[str]) -> None:
        values = ", ".join(json.dumps(s) for s in supported)
        message = f"{path}: Unsupported value: {json.dumps(value)}: supported values: {values}"
        self.causes.append(("FieldValueNotSupported", path, message))

    def not_found(self, path: str, value: str) -> None:
        self.causes.append(("FieldValueNotFound", path, f"{path}: Not found: {json.dumps(value)}"))

    def raise_if_any(self, resource: str, name: str) -> None:
        if not self.causes:
            return
        group, kind = RESOURCE_INFO[resource]
        qualified_kind = f"{kind}.{group}" if group else kind
        messages = [c[2] for c in self.causes]
        summary = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
        details: Obj = {
            "name": name,
            "kind": kind,
            "causes": [{"reason": r, "message": m.split(": ", 1)[1], "field": f} for r, f, m in self.causes],
        }
        if group:
            details["group"] = group
        raise ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {summary}', details)


def _decode_quantities(resource: str, containers: list[Obj]) -> None:
    kind = RESOURCE_INFO[resource][1]
    for c in containers:
        for section in ("requests", "limits"):
            for value in ((c.get("resources") or {}).get(section) or {}).values():
                if not isinstance(value, str | int | float) or not _QUANTITY.match(str(value)):
                    raise ApiError(
                        400,
                        "BadRequest",
                        f'{kind} in version "v1" cannot be handled as a {kind}: quantities must match the '
                        "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )


def _validate_name(errors: _Errors, meta: Obj) -> None:
    name = meta.get("name", "")
    if not name:
        errors.required("metadata.name", "name or generateName is required")
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        errors.invalid("metadata.name", name, SUBDOMAIN_MSG)


def _validate_labels(errors: _Errors, path: str, labels: dict[str, str]) -> None:
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if not _QUALIFIED_NAME.match(name) or len(name) > 63 or (prefix and not _DNS1123_SUBDOMAIN.match(prefix)):
            errors.invalid(path, key, "name part must consist of alphanumeric characters, '-', '_' or '.'")
        if not isinstance(value, str):
            errors.invalid(path, value, LABEL_VALUE_MSG)
        elif len(value) > 63:
            errors.invalid(path, value, "must be no more than 63 characters")
        elif not _LABEL_VALUE.match(value):
            errors.invalid(path, value, LABEL_VALUE_MSG)


def apply_pod_defaults(spec: Obj) -> None:
    """Core/v1 PodSpec defaulting (the subset that shows in objects the runner reads)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        image = c.get("image", "")
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        latest = image.endswith(":latest") or not tagged
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        resources = c.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for k, v in limits.items():
                requests.setdefault(k, v)
    for v in spec.get("volumes", []):
        if "configMap" in v:
            v["configMap"].setdefault("defaultMode", 420)
        if "secret" in v:
            v["secret"].setdefault("defaultMode", 420)


def _validate_pod_spec(errors: _Errors, path: str, spec: Obj, *, in_job: bool) -> None:
    containers = spec.get("containers") or []
    if not containers:
        errors.required(f"{path}.containers")
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    for i, v in enumerate(spec.get("volumes") or []):
        if not _DNS1123_LABEL.match(v.get("name", "")):
            errors.invalid(f"{path}.volumes[{i}].name", v.get("name", ""), LABEL_MSG)
    for i, c in enumerate(containers):
        cpath = f"{path}.containers[{i}]"
        if not _DNS1123_LABEL.match(c.get("name", "")):
            errors.invalid(f"{cpath}.name", c.get("name", ""), LABEL_MSG)
        if not c.get("image"):
            errors.required(f"{cpath}.image")
        for j, env in enumerate(c.get("env") or []):
            if not _ENV_NAME.match(env.get("name", "")):
                errors.invalid(
                    f"{cpath}.env[{j}].name",
                    env.get("name", ""),
                    "a valid environment variable name must consist of alphabetic characters, digits, '_', "
                    "'-', or '.', and must not start with a digit",
                )
        for j, m in enumerate(c.get("volumeMounts") or []):
            if m.get("name") not in volumes:
                errors.not_found(f"{cpath}.volumeMounts[{j}].name", m.get("name", ""))
            if not m.get("mountPath"):
                errors.required(f"{cpath}.volumeMounts[{j}].mountPath")
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for key, value in requests.items():
            if key not in _STANDARD_RESOURCES:
                if key not in limits:
                    errors.required(f"{cpath}.resources.limits", "Limit must be set for non overcommitable resources")
                elif parse_quantity(value) != parse_quantity(limits[key]):
                    errors.invalid(f"{cpath}.resources.requests[{key}]", str(value),
                                   f"must be equal to {key} limit of {limits[key]}")
            elif key in limits and parse_quantity(value) > parse_quantity(limits[key]):
                errors.invalid(f"{cpath}.resources.requests", str(value),
                               f"must be less than or equal to {key} limit of {limits[key]}")
        for key, value in {**requests, **limits}.items():
            if key not in _STANDARD_RESOURCES and parse_quantity(value) != parse_quantity(value).to_integral_value():
                errors.invalid(f"{cpath}.resources.requests[{key}]", str(value), "must be an integer")
            if parse_quantity(value) < Decimal(0):
                errors.invalid(f"{cpath}.resources.requests[{key}]", str(value), "must be greater than or equal to 0")
    policy = spec.get("restartPolicy", "Always")
    allowed = ["OnFailure", "Never"] if in_job else ["Always", "OnFailure", "Never"]
    if policy not in allowed:
        errors.unsupported(f"{path}.restartPolicy", policy, allowed)


def prepare_create(resource: str, obj: Obj, namespace: str) -> Obj:
    """Default and validate a body POSTed to ``resource`` in ``namespace``; raise ApiError if invalid."""
    kind_expected = RESOURCE_INFO[resource][1]
    if not isinstance(obj, dict) or obj.get("kind", kind_expected) != kind_expected:
        raise ApiError(400, "BadRequest", f"the body of the request was not a {kind_expected}")
    meta = obj.setdefault("metadata", {})
    body_ns = meta.get("namespace")
    if body_ns and body_ns != namespace:
        raise ApiError(
            400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"
        )
    if resource != "namespaces":
        meta["namespace"] = namespace
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(meta["generateName"])
    obj["kind"] = kind_expected
    group = RESOURCE_INFO[resource][0]
    obj["apiVersion"] = f"{group}/v1" if group else "v1"
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
        meta.pop(key, None)

    errors = _Errors()
    _validate_name(errors, meta)
    _validate_labels(errors, "metadata.labels", meta.get("labels") or {})
    name = meta.get("name", "")

    if resource == "jobs":
        spec = obj.setdefault("spec", {})
        template = spec.setdefault("template", {})
        pod_spec = template.setdefault("spec", {})
        _decode_quantities(resource, pod_spec.get("containers") or [])
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        apply_pod_defaults(pod_spec)
        for key in ("backoffLimit", "ttlSecondsAfterFinished"):
            if key in spec and (not isinstance(spec[key], int) or spec[key] < 0):
                errors.invalid(f"spec.{key}", spec[key], "must be greater than or equal to 0")
        if "activeDeadlineSeconds" in spec and (
            not isinstance(spec["activeDeadlineSeconds"], int) or spec["activeDeadlineSeconds"] < 1
        ):
            errors.invalid("spec.activeDeadlineSeconds", spec["activeDeadlineSeconds"],
                           "must be greater than or equal to 1")
        _validate_pod_spec(errors, "spec.template.spec", pod_spec, in_job=True)
        template_labels = template.setdefault("metadata", {}).setdefault("labels", {})
        _validate_labels(errors, "spec.template.metadata.labels", dict(template_labels))
        obj["status"] = {}
        # The job-name label is added after the uid is known (see ApiStandIn); its length is checked here.
        if name and len(name) > 63:
            errors.invalid("spec.template.labels", name, "must be no more than 63 characters")
    elif resource == "pods":
        spec = obj.setdefault("spec", {})
        _decode_quantities(resource, spec.get("containers") or [])
        apply_pod_defaults(spec)
        _validate_pod_spec(errors, "spec", spec, in_job=False)
        obj["status"] = {"phase": "Pending"}
    elif resource in ("deployments", "replicasets"):
        _prepare_workload(errors, resource, obj)
    elif resource == "services":
        _prepare_service(errors, obj)
    elif resource in ("configmaps", "secrets"):
        size = 0
        for section in ("data", "binaryData", "stringData"):
            for key, value in (obj.get(section) or {}).items():
                if not _CONFIG_KEY.match(key):
                    errors.invalid(
                        f"{section}[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                        "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    )
                size += len(key) + len(str(value))
        if size > 1048576:
            errors.causes.append(("FieldValueTooLong", "", "[]: Too long: must have at most 1048576 bytes"))
        if resource == "secrets":
            import base64

            data = obj.setdefault("data", {})
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(value.encode()).decode()
            obj.setdefault("type", "Opaque")
    errors.raise_if_any(resource, name)
    return obj


def _selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}.get(op, False):
            return False
    return True


def _validate_probe(errors: _Errors, path: str, probe: Obj, container: Obj) -> None:
    handlers = [k for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in probe]
    if len(handlers) != 1:
        errors.required(path, "must specify a handler type")
        return
    for key in ("periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
        if key in probe and (not isinstance(probe[key], int) or probe[key] < 1):
            errors.invalid(f"{path}.{key}", probe[key], "must be greater than or equal to 1")
    http = probe.get("httpGet")
    if http is not None:
        port = http.get("port")
        named = {p.get("name") for p in container.get("ports") or []}
        if isinstance(port, int):
            if not 1 <= port <= 65535:
                errors.invalid(f"{path}.httpGet.port", port, "must be between 1 and 65535, inclusive")
        elif port not in named:
            errors.invalid(f"{path}.httpGet.port", port or "", "must contain at least one letter or number (a-z, "
                           "0-9)" if not port else "must match the name of a container port")
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)


def _prepare_workload(errors: _Errors, resource: str, obj: Obj) -> None:
    """apps/v1 Deployment and ReplicaSet: defaults and the validation that matters for serving."""
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    pod_spec = template.setdefault("spec", {})
    _decode_quantities(resource, pod_spec.get("containers") or [])
    spec.setdefault("replicas", 1)
    if resource == "deployments":
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        elif strategy["type"] != "Recreate":
            errors.unsupported("spec.strategy.type", strategy["type"], ["Recreate", "RollingUpdate"])
        elif "rollingUpdate" in strategy:
            errors.invalid("spec.strategy.rollingUpdate", "", "may not be specified when strategy `type` is "
                           "'Recreate'")
        deadline = spec["progressDeadlineSeconds"]
        if not isinstance(deadline, int) or deadline <= spec.get("minReadySeconds", 0):
            errors.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
    obj["metadata"]["generation"] = 1
    if not isinstance(spec["replicas"], int) or spec["replicas"] < 0:
        errors.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")
    apply_pod_defaults(pod_spec)
    selector = spec.get("selector")
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errors.required("spec.selector")
    elif not _selector_matches(selector, labels):
        errors.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    _validate_labels(errors, "spec.template.metadata.labels", dict(labels))
    _validate_pod_spec(errors, "spec.template.spec", pod_spec, in_job=False)
    policy = pod_spec.get("restartPolicy", "Always")
    if policy != "Always":
        errors.unsupported("spec.template.spec.restartPolicy", policy, ["Always"])
    for i, c in enumerate(pod_spec.get("containers") or []):
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            if kind in c:
                _validate_probe(errors, f"spec.template.spec.containers[{i}].{kind}", c[kind], c)
    obj["status"] = {}


def _prepare_service(errors: _Errors, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        errors.unsupported("spec.type", spec["type"], ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
    if spec.get("clusterIP") in (None, ""):
        spec["clusterIP"] = f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
    spec["clusterIPs"] = [spec["clusterIP"]]
    ports = spec.get("ports") or []
    if not ports and spec["type"] != "ExternalName":
        errors.required("spec.ports")
    names = set()
    for i, port in enumerate(ports):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if len(ports) > 1 and not port.get("name"):
            errors.required(f"spec.ports[{i}].name")
        if port.get("name"):
            if port["name"] in names:
                errors.causes.append(("FieldValueDuplicate", f"spec.ports[{i}].name",
                                      f"spec.ports[{i}].name: Duplicate value: {json.dumps(port['name'])}"))
            names.add(port["name"])
        if not isinstance(port.get("port"), int) or not 1 <= port["port"] <= 65535:
            errors.invalid(f"spec.ports[{i}].port", port.get("port"), "must be between 1 and 65535, inclusive")
    _validate_labels(errors, "spec.selector", spec.get("selector") or {})
    obj["status"] = {"loadBalancer": {}}
