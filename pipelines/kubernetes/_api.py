"""Kubernetes API calls of the runner, through the official client, with retries.

Every call asks for the raw JSON (``_preload_content=False``): the runner reads plain dictionaries, as the
manifests it builds are. Answers 429/5xx and cut connections are retried with exponential back-off,
honouring ``Retry-After``; other errors reach the caller as the client's ``ApiException``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from headwater.components.errors import RunnerError
from headwater.pipelines.kubernetes.manifests import EXECUTOR_CONTAINER, KubernetesConfig

__all__ = ["KubeApi", "api_status", "load_api_client"]

Obj = dict[str, Any]
RETRYABLE = (429, 500, 502, 503, 504)


def load_api_client(config: KubernetesConfig) -> Any:
    """A ``kubernetes.client.ApiClient``: in-cluster credentials inside a pod (unless a kubeconfig is
    given), otherwise the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) and its current context."""
    from kubernetes import client
    from kubernetes import config as kconfig

    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not config.kubeconfig:
            kconfig.load_incluster_config(client_configuration=configuration)
        else:
            kconfig.load_kube_config(config_file=config.kubeconfig, context=config.context,
                                     client_configuration=configuration)
    except Exception as exc:
        raise RunnerError(
            f"cannot load Kubernetes credentials ({type(exc).__name__}: {exc}); set KUBECONFIG or pass "
            "--kubeconfig/--context, or run inside a cluster with a service account"
        ) from exc
    configuration.connection_pool_maxsize = max(32, 2 * config.max_parallel + 8)
    return client.ApiClient(configuration)


def api_status(exc: Any) -> tuple[str, str]:
    """(reason, message) from an ApiException's Status body."""
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("reason") or exc.reason), str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(getattr(exc, "reason", "")), str(getattr(exc, "reason", ""))


class KubeApi:
    """The Jobs, ConfigMaps and Pods of one namespace. ``calls`` counts the requests made (retries too).

    ``stop`` (set when the backend closes) ends retrying; ``note`` is told about each retry."""

    def __init__(self, api_client: Any, config: KubernetesConfig, stop: threading.Event,
                 note: Callable[[str], None]) -> None:
        from kubernetes import client

        self.config = config
        self.namespace = config.namespace
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self._stop = stop
        self._note = note
        self.calls = 0

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        """Call the API (raw JSON back); retry 429/5xx and broken connections with back-off."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        delay = self.config.api_backoff
        attempts = self.config.api_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                self.calls += 1
                resp = fn(*args, _preload_content=False, **kwargs)
                data = resp.data
                return json.loads(data) if data else {}
            except ApiException as exc:
                if exc.status not in RETRYABLE or attempt == attempts or self._stop.is_set():
                    raise
                wait = delay
                retry_after = (exc.headers or {}).get("Retry-After") if exc.headers else None
                if retry_after and str(retry_after).isdigit():
                    wait = max(wait, float(retry_after))
                self._retrying(what, f"{exc.status} {api_status(exc)[0]}", attempt, wait)
            except (HTTPError, OSError) as exc:
                if attempt == attempts or self._stop.is_set():
                    raise RunnerError(
                        f"the Kubernetes API did not answer {what} after {attempts} attempts "
                        f"({type(exc).__name__}: {exc}); check the cluster is reachable"
                    ) from exc
                wait = delay
                self._retrying(what, type(exc).__name__, attempt, wait)
            time.sleep(min(wait, 30.0))
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retrying(self, what: str, why: str, attempt: int, wait: float) -> None:
        self._note(f"headwater: Kubernetes API {what}: {why}; retrying in {wait:.1f}s (attempt {attempt})")

    # ------------------------------------------------------------------------------ named calls
    def create_job(self, name: str, manifest: Obj) -> Obj:
        return self.call(f"create Job {name}", self.batch.create_namespaced_job, self.namespace, manifest)

    def read_job(self, name: str) -> Obj:
        return self.call(f"get Job {name}", self.batch.read_namespaced_job, name, self.namespace)

    def delete_job(self, name: str) -> Obj:
        """Delete a Job and, in the background, its pods (and the ConfigMap it owns)."""
        return self.call(f"delete Job {name}", self.batch.delete_namespaced_job, name, self.namespace,
                         propagation_policy="Background")

    def create_configmap(self, name: str, manifest: Obj) -> Obj:
        return self.call(f"create ConfigMap {name}", self.core.create_namespaced_config_map, self.namespace,
                         manifest)

    def read_configmap(self, name: str) -> Obj:
        return self.call(f"get ConfigMap {name}", self.core.read_namespaced_config_map, name, self.namespace)

    def delete_configmap(self, name: str) -> Obj:
        return self.call(f"delete ConfigMap {name}", self.core.delete_namespaced_config_map, name, self.namespace)

    def list(self, kind: str, selector: str, what: str | None = None) -> Obj:
        """List ``jobs`` or ``pods`` matching a label selector."""
        return self.call(what or f"list {kind}", self._list_fn(kind), self.namespace, label_selector=selector)

    def watch(self, kind: str, selector: str, resource_version: str) -> Any:
        """An open watch stream of ``jobs`` or ``pods`` from ``resource_version`` (not retried: the watch
        loop resumes it)."""
        timeout = self.config.watch_timeout
        return self._list_fn(kind)(
            self.namespace, label_selector=selector, watch=True, resource_version=resource_version,
            allow_watch_bookmarks=True, timeout_seconds=timeout, _preload_content=False,
            _request_timeout=(10, timeout + 30),
        )

    def follow_log(self, pod: str) -> Any:
        """An open stream of the executor container's log (not retried: the follower resumes it)."""
        return self.core.read_namespaced_pod_log(
            pod, self.namespace, container=EXECUTOR_CONTAINER, follow=True,
            _preload_content=False, _request_timeout=(10, 300),
        )

    def _list_fn(self, kind: str) -> Callable[..., Any]:
        return self.batch.list_namespaced_job if kind == "jobs" else self.core.list_namespaced_pod
