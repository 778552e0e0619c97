"""The stand-in kubelet's readiness probes (``httpGet`` and ``tcpSocket``) and the Events they record.

A container with a ``readinessProbe`` starts not ready; the probe runs after ``initialDelaySeconds``, every
``periodSeconds``, with ``timeoutSeconds``; ``successThreshold`` successes in a row make the pod Ready (the
``Ready``/``ContainersReady`` conditions, the container status's ``ready``), ``failureThreshold`` failures in
a row make it not ready again. An HTTP status from 200 to 399 is a success. Each failure is recorded as the
kubelet does, a ``Warning`` Event ``Unhealthy`` on the pod (``Readiness probe failed: HTTP probe failed with
statuscode: 404``), counted up while it repeats. The probe reaches the container through the port of this
machine the kubelet mapped its container port to.
"""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any

from .store import now_rfc3339

__all__ = ["Prober"]

Obj = dict[str, Any]


class Prober:
    """The readiness probe of one running container (``spec`` None: ready as soon as it runs)."""

    def __init__(self, runner: Any, spec: Obj | None) -> None:
        self.runner = runner
        self.spec = spec
        self.next_at = 0.0
        self.successes = 0
        self.failures = 0
        self.ready = False

    def tick(self, started: float) -> None:
        if self.spec is None:
            return
        now = time.monotonic()
        if now < started + self.spec.get("initialDelaySeconds", 0) or now < self.next_at:
            return
        self.next_at = now + self.spec.get("periodSeconds", 10)
        error = self._probe()
        if error is None:
            self.successes, self.failures = self.successes + 1, 0
            if not self.ready and self.successes >= self.spec.get("successThreshold", 1):
                self._set(True)
        else:
            self.successes, self.failures = 0, self.failures + 1
            self._event(f"Readiness probe failed: {error}")
            if self.ready and self.failures >= self.spec.get("failureThreshold", 3):
                self._set(False)

    def _target(self, port: Any) -> tuple[str, Any, int | None]:
        """(pod IP, the container port as a number, the port of this machine it is reached at)."""
        pod = self.runner.cluster.store.get("pods", self.runner.ns, self.runner.name) or {}
        ip = (pod.get("status") or {}).get("podIP", "")
        number = next((p["containerPort"] for p in self.runner.container.get("ports") or []
                       if p.get("name") == port), port)
        return ip, number, self.runner.cluster.host_port(pod, port) if pod else None

    def _probe(self) -> str | None:
        timeout = self.spec.get("timeoutSeconds", 1) if self.spec else 1
        if self.spec and "tcpSocket" in self.spec:
            ip, port, host_port = self._target(self.spec["tcpSocket"]["port"])
            try:
                if host_port is None:
                    raise ConnectionRefusedError
                socket.create_connection(("127.0.0.1", host_port), timeout).close()
                return None
            except OSError:
                return f"dial tcp {ip}:{port}: connect: connection refused"
        http_get = (self.spec or {}).get("httpGet") or {}
        path = http_get.get("path", "/")
        ip, port, host_port = self._target(http_get.get("port"))
        url = f"http://{ip}:{port}{path}"
        if host_port is None:
            return f'Get "{url}": dial tcp {ip}:{port}: connect: connection refused'
        conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"User-Agent": "kube-probe/1.31"})
            status = conn.getresponse().status
        except TimeoutError:
            return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        except OSError:
            return f'Get "{url}": dial tcp {ip}:{port}: connect: connection refused'
        finally:
            conn.close()
        return None if 200 <= status < 400 else f"HTTP probe failed with statuscode: {status}"

    def _set(self, ready: bool) -> None:
        self.ready = ready
        name = self.runner.container["name"]

        def mutate(s: Obj) -> None:
            for type_ in ("Ready", "ContainersReady"):
                for i, c in enumerate(s.get("conditions") or []):
                    if c["type"] == type_:
                        s["conditions"][i] = ({"type": type_, "status": "True", "lastProbeTime": None,
                                               "lastTransitionTime": now_rfc3339()} if ready else
                                              {"type": type_, "status": "False", "lastProbeTime": None,
                                               "lastTransitionTime": now_rfc3339(), "reason": "ContainersNotReady",
                                               "message": f"containers with unready status: [{name}]"})
            for cs in s.get("containerStatuses") or []:
                cs["ready"] = ready

        self.runner._status(mutate)

    def _event(self, message: str) -> None:
        store = self.runner.cluster.store
        ns, pod_name = self.runner.ns, self.runner.name
        name = f"{pod_name}.unhealthy"
        if store.get("events", ns, name) is None:
            now = now_rfc3339()
            store.create("events", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod_name, "uid": self.runner.uid,
                                   "apiVersion": "v1",
                                   "fieldPath": f"spec.containers{{{self.runner.container['name']}}}"},
                "reason": "Unhealthy", "message": message, "type": "Warning", "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": "kubelet", "host": self.runner.node.name},
            })
            return

        def repeat(e: Obj) -> None:
            e["count"] = e.get("count", 1) + 1
            e["message"] = message
            e["lastTimestamp"] = now_rfc3339()

        store.modify("events", ns, name, repeat)
