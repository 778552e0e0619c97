"""The stand-in's Deployments, ReplicaSets, Services/Endpoints, readiness probes, restarts and proxy, through
the official client, with small real HTTP servers as containers (no TensorFlow: these are fast)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from k8s_support import RUNTIME_IMAGE, proxy_request
from standin import ApiStandIn

NS = "default"
# A container serving HTTP on the port the stand-in gave its container port 8080; /ready answers 200 when
# READY_FILE exists or no file is named, every other path 404 (http.server's file serving is not used).
SERVER = (
    "import http.server, os, socketserver\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        ok = self.path == '/ready' or self.path == '/' + os.environ.get('VERSION', '')\n"
    "        body = os.environ.get('VERSION', '').encode()\n"
    "        self.send_response(200 if ok else 404); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['STANDIN_HOST_PORT_8080'])), H)"
    ".serve_forever()\n"
)


def deployment(name: str, version: str, *, replicas: int = 2, probe_path: str = "/ready",
               command: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "version": version}},
                "spec": {"containers": [{
                    "name": "web", "image": RUNTIME_IMAGE,
                    "command": command or ["python", "-c", SERVER],
                    "env": [{"name": "VERSION", "value": version}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": probe_path, "port": "http"}, "periodSeconds": 1},
                }]},
            },
            **spec,
        },
    }


@pytest.fixture
def apps(standin: ApiStandIn, kube: Any) -> Iterator[tuple[Any, Any]]:
    from kubernetes import client

    yield client.AppsV1Api(kube), client.CoreV1Api(kube)


def _conditions(standin: ApiStandIn, name: str) -> dict[str, dict[str, Any]]:
    dep = standin.store.get("deployments", NS, name) or {}
    return {c["type"]: c for c in (dep.get("status") or {}).get("conditions") or []}


def _rolled_out(standin: ApiStandIn, name: str, replicas: int) -> bool:
    dep = standin.store.get("deployments", NS, name) or {}
    status = dep.get("status") or {}
    return (status.get("observedGeneration") == dep["metadata"]["generation"]
            and status.get("updatedReplicas") == status.get("readyReplicas") == status.get("replicas") == replicas
            and _conditions(standin, name).get("Progressing", {}).get("reason") == "NewReplicaSetAvailable")


def test_deployment_rolls_out_behind_a_service_and_rolls_over_to_a_new_template(standin: ApiStandIn, kube: Any,
                                                                                apps: tuple[Any, Any]) -> None:
    appsv1, core = apps
    appsv1.create_namespaced_deployment(NS, deployment("web", "v1"))
    core.create_namespaced_service(NS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                                        "spec": {"selector": {"app": "web"},
                                                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    standin.wait_for(lambda: _rolled_out(standin, "web", 2), timeout=30)
    [rs] = standin.objects("replicasets", NS)
    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{template_hash}"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": template_hash}
    assert _conditions(standin, "web")["Available"]["reason"] == "MinimumReplicasAvailable"
    endpoints = core.read_namespaced_endpoints("web", NS)
    assert len(endpoints.subsets[0].addresses) == 2 and endpoints.subsets[0].ports[0].port == 8080

    def get(path: str) -> tuple[int, str, str]:
        status, data, headers = proxy_request(kube, "GET", f"/api/v1/namespaces/{NS}/services/web:http/proxy{path}")
        return status, data.decode(), headers["X-Standin-Pod"]

    answers = [get("/v1") for _ in range(4)]
    assert {a[:2] for a in answers} == {(200, "v1")}
    assert len({a[2] for a in answers}) == 2  # both ready pods take requests in turn

    current = appsv1.read_namespaced_deployment("web", NS)
    current.spec.template.metadata.labels["version"] = "v2"
    current.spec.template.spec.containers[0].env[0].value = "v2"
    appsv1.replace_namespaced_deployment("web", NS, current)
    standin.wait_for(lambda: standin.store.get("deployments", NS, "web")["metadata"]["generation"] == 2, timeout=5)
    standin.wait_for(lambda: _rolled_out(standin, "web", 2), timeout=30)
    revisions = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
                 for rs in standin.objects("replicasets", NS)}
    assert revisions == {"1": 0, "2": 2}
    standin.wait_for(lambda: len(standin.objects("pods", NS)) == 2, timeout=20)
    assert {get("/v2")[:2] for _ in range(4)} == {(200, "v2")}
    # Never fewer ready pods than replicas - maxUnavailable (25% of 2 rounds down to 0) during the update.
    for event in standin.history("deployments"):
        if event.new["metadata"].get("generation") == 2 and event.new.get("status", {}).get("observedGeneration") == 2:
            assert event.new["status"].get("availableReplicas", 0) >= 2

    with pytest.raises(Exception) as stale:  # a replace with an old resourceVersion is a conflict
        appsv1.replace_namespaced_deployment("web", NS, current)
    assert stale.value.status == 409 and "the object has been modified" in json.loads(stale.value.body)["message"]

    appsv1.delete_namespaced_deployment("web", NS)  # Background: the ReplicaSets and pods follow
    standin.wait_for(lambda: not standin.objects("replicasets", NS) and not standin.objects("pods", NS), timeout=20)
    standin.wait_for(lambda: not (standin.store.get("endpoints", NS, "web") or {}).get("subsets"), timeout=10)


def test_a_template_that_never_gets_ready_exceeds_its_progress_deadline(standin: ApiStandIn,
                                                                        apps: tuple[Any, Any]) -> None:
    appsv1, core = apps
    appsv1.create_namespaced_deployment(NS, deployment("slow", "v1", replicas=1, probe_path="/missing",
                                                       progressDeadlineSeconds=2))
    standin.wait_for(lambda: _conditions(standin, "slow").get("Progressing", {}).get("status") == "False",
                     timeout=30)
    progressing = _conditions(standin, "slow")["Progressing"]
    [rs] = standin.objects("replicasets", NS)
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    assert progressing["message"] == f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.'
    assert _conditions(standin, "slow")["Available"]["status"] == "False"
    [pod] = standin.objects("pods", NS)
    events = core.list_namespaced_event(NS).items
    assert [(e.reason, e.type, e.involved_object.name) for e in events] == [
        ("Unhealthy", "Warning", pod["metadata"]["name"])]
    assert events[0].message == "Readiness probe failed: HTTP probe failed with statuscode: 404"


def test_a_container_that_exits_is_restarted_with_back_off(standin: ApiStandIn, apps: tuple[Any, Any]) -> None:
    appsv1, _ = apps
    appsv1.create_namespaced_deployment(NS, deployment("crash", "v1", replicas=1,
                                                       command=["python", "-c", "raise SystemExit(3)"]))

    def restarted() -> dict[str, Any] | None:
        for pod in standin.objects("pods", NS):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if cs.get("restartCount", 0) >= 2:
                    return cs
        return None

    status = standin.wait_for(restarted, timeout=30)
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert len(standin.objects("pods", NS)) == 1  # the same pod: restarted, not replaced
    pod = standin.objects("pods", NS)[0]
    assert pod["status"]["phase"] == "Running"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["spec"]["selector"]["matchLabels"].update(app="other"),
     "spec.template.metadata.labels: Invalid value: "),
    (lambda d: d["spec"]["template"]["spec"].update(restartPolicy="Never"),
     'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(port="web"),
     "readinessProbe.httpGet.port: Invalid value: \"web\": must match the name of a container port"),
])
def test_invalid_deployments_are_refused_like_the_api_server(standin: ApiStandIn, apps: tuple[Any, Any],
                                                             change: Any, message: str) -> None:
    appsv1, _ = apps
    body = deployment("bad", "v1")
    change(body)
    with pytest.raises(Exception) as caught:
        appsv1.create_namespaced_deployment(NS, body)
    assert caught.value.status == 422
    assert message in json.loads(caught.value.body)["message"]


def test_a_merge_patch_scales_a_deployment(standin: ApiStandIn, apps: tuple[Any, Any]) -> None:
    appsv1, _ = apps
    appsv1.create_namespaced_deployment(NS, deployment("scaled", "v1", replicas=1))
    standin.wait_for(lambda: _rolled_out(standin, "scaled", 1), timeout=30)
    patched = appsv1.patch_namespaced_deployment("scaled", NS, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3 and patched.metadata.generation == 2
    standin.wait_for(lambda: _rolled_out(standin, "scaled", 3), timeout=30)
    [rs] = standin.objects("replicasets", NS)  # the same template: the same ReplicaSet, scaled
    assert rs["spec"]["replicas"] == 3
