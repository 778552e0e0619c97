"""Run pipelines on Kubernetes: one ``batch/v1`` Job per node, created through the official client.

:class:`KubernetesBackend` implements the executor-backend interface (launch / poll / cancel / close) the
generic :class:`~headwater.pipelines.runner.Runner` schedules on; :class:`KubernetesRunner` is that runner
with this backend. The orchestrator stays the only ML Metadata writer: a pod receives its execution spec
in a ConfigMap, writes outputs under the shared pipeline root — a ReadWriteMany volume or an object store
(``s3://``, ``gs://``) — and returns its executor result as a file (or object) next to them (see
:mod:`headwater.pipelines.k8s_manifests` for every object it creates).

The backend watches the run's Jobs and Pods (list, then watch from the list's resourceVersion; a dropped
watch resumes from the last resourceVersion seen, a ``410 Gone`` relists) and explains what it sees:
Pending because unschedulable (and which resource), image pull failures, missing Secrets/ConfigMaps,
OOMKilled, evicted, deadline exceeded. Each pod's log is streamed into the node's log file and the
console. API calls answered 429/5xx (or cut connections) are retried with back-off, honouring
``Retry-After``. ``cancel`` deletes the Jobs it created (their pods and ConfigMaps go with them).
:meth:`KubernetesBackend.adopt` finds the Jobs of a run that a previous orchestrator started, so a
restarted orchestrator re-attaches to them instead of starting duplicates.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from headwater.components import storage
from headwater.components.executor import ExecutionSpec, ExecutorResult
from headwater.metadata.errors import RunnerError, StorageError
from headwater.pipelines.backend import NodeOptions
from headwater.pipelines.k8s_manifests import (
    EXECUTOR_CONTAINER,
    LABEL_EXECUTION,
    LABEL_ROLE,
    LAUNCHER_SPEC_KEY,
    KubernetesConfig,
    check_pipeline_root,
    execution_configmap,
    execution_job,
    job_name,
    result_path,
    run_selector,
)
from headwater.pipelines.runner import Runner

__all__ = ["KubernetesBackend", "KubernetesConfig", "KubernetesRunner", "load_api_client"]

Obj = dict[str, Any]
_RETRYABLE = (429, 500, 502, 503, 504)
_PULL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CONFIG_WAITING = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


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


def _status(exc: Any) -> tuple[str, str]:
    """(reason, message) from an ApiException's Status body."""
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("reason") or exc.reason), str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(getattr(exc, "reason", "")), str(getattr(exc, "reason", ""))


@dataclass
class _Execution:
    spec: ExecutionSpec
    options: NodeOptions
    job_name: str
    job: Obj | None = None
    job_deleted: bool = False
    job_seen: bool = False
    pods: dict[str, Obj] = field(default_factory=dict)
    pod_order: list[str] = field(default_factory=list)
    followers: dict[str, threading.Thread] = field(default_factory=dict)
    issue_since: dict[str, float] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)
    canceled: bool = False
    adopted: bool = False
    launched: float = field(default_factory=time.time)

    @property
    def node_id(self) -> str:
        return self.spec.node_id


class KubernetesBackend:
    """Executor backend running each execution as a Kubernetes Job. ``capacity`` = ``max_parallel``."""

    name = "kubernetes"
    #: Job ``backoffLimit`` carries out the node's retries; the runner must not retry on top.
    handles_retries = True

    def __init__(
        self,
        config: KubernetesConfig | None = None,
        *,
        api_client: Any = None,
        stream: TextIO | None = None,
        quiet: bool = False,
        reporter: Callable[[str, str], None] | None = None,
    ) -> None:
        from kubernetes import client

        self.config = config or KubernetesConfig()
        for name in list(self.config.env) + list(self.config.secret_env):
            if name == "HEADWATER_METADATA":
                raise RunnerError(
                    "KubernetesConfig gives executor pods HEADWATER_METADATA; pods never get database "
                    "credentials (the orchestrator is the only metadata writer): remove it from env/secret_env"
                )
        self.capacity = max(1, self.config.max_parallel)
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.reporter = reporter
        self._api = api_client if api_client is not None else load_api_client(self.config)
        self._owns_api = api_client is None
        self._batch = client.BatchV1Api(self._api)
        self._core = client.CoreV1Api(self._api)
        self._lock = threading.Condition(threading.RLock())
        self._executions: dict[int, _Execution] = {}
        self._done: list[ExecutorResult] = []
        self._dirty = False
        self._acked: list[_Execution] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.config.api_workers),
                                        thread_name_prefix="headwater-k8s-api")
        self._selector: str | None = None
        self._watchers: list[threading.Thread] = []
        self._responses: dict[str, Any] = {}
        self._stop = threading.Event()
        self._print_lock = threading.Lock()
        self.api_calls = 0

    # ------------------------------------------------------------------------------ API plumbing
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        """Call the API (raw JSON back); retry 429/5xx and broken connections with back-off."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        delay = self.config.api_backoff
        attempts = self.config.api_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                self.api_calls += 1
                resp = fn(*args, _preload_content=False, **kwargs)
                data = resp.data
                return json.loads(data) if data else {}
            except ApiException as exc:
                if exc.status not in _RETRYABLE or attempt == attempts or self._stop.is_set():
                    raise
                wait = delay
                retry_after = (exc.headers or {}).get("Retry-After") if exc.headers else None
                if retry_after and str(retry_after).isdigit():
                    wait = max(wait, float(retry_after))
                self._note_api_retry(what, f"{exc.status} {_status(exc)[0]}", attempt, wait)
            except (HTTPError, OSError) as exc:
                if attempt == attempts or self._stop.is_set():
                    raise RunnerError(
                        f"the Kubernetes API did not answer {what} after {attempts} attempts "
                        f"({type(exc).__name__}: {exc}); check the cluster is reachable"
                    ) from exc
                wait = delay
                self._note_api_retry(what, type(exc).__name__, attempt, wait)
            time.sleep(min(wait, 30.0))
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_api_retry(self, what: str, why: str, attempt: int, wait: float) -> None:
        if not self.quiet:
            self._print(f"headwater: Kubernetes API {what}: {why}; retrying in {wait:.1f}s (attempt {attempt})")

    def _print(self, text: str) -> None:
        with self._print_lock:
            print(text, file=self.stream, flush=True)

    def _report(self, ex: _Execution, key: str, note: str) -> None:
        """Tell the user about a pod condition once per (pod, condition)."""
        if key in ex.reported:
            return
        ex.reported.add(key)
        if self.reporter is not None:
            self.reporter(ex.node_id, note)
        elif not self.quiet:
            self._print(f"headwater: node {ex.node_id!r}: {note}")

    # ------------------------------------------------------------------------------ interface
    def launch(self, spec: ExecutionSpec, options: NodeOptions) -> None:

        name = job_name(spec)
        ex = _Execution(spec, options, name)
        try:
            self.check_root(spec.pipeline_root)
        except RunnerError as exc:
            self._fail_now(ex, "RunnerError", str(exc))
            return
        self._ensure_watching(spec.pipeline_name, spec.run_id)
        with self._lock:
            self._executions[spec.execution_id] = ex
        if spec.log_path:
            Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        manifest = execution_job(spec, self.config, resources=options.resources, retries=options.retries,
                                 timeout_seconds=options.timeout_seconds)
        # Created by a small pool of API workers: the scheduling loop goes on (launching other nodes,
        # publishing finished ones) while the API answers.
        self._pool.submit(self._create, ex, manifest)

    def _create(self, ex: _Execution, manifest: Obj) -> None:
        from kubernetes.client.exceptions import ApiException

        spec, name, ns = ex.spec, ex.job_name, self.config.namespace
        if ex.canceled:
            return
        try:
            try:
                created = self._call(f"create Job {name}", self._batch.create_namespaced_job, ns, manifest)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # A create retried after a lost answer finds its own Job: adopt it, never a stranger's.
                created = self._call(f"get Job {name}", self._batch.read_namespaced_job, name, ns)
                labels = created["metadata"].get("labels") or {}
                if labels.get(LABEL_EXECUTION) != str(spec.execution_id):
                    raise
            with self._lock:
                if ex.job is None:
                    ex.job = created
            if ex.canceled:  # canceled while the create was under way: do not leave the Job behind
                self._delete_job(ex)
                return
            configmap = execution_configmap(spec, self.config, owner=created)
            try:
                self._call(f"create ConfigMap {name}", self._core.create_namespaced_config_map, ns, configmap)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                existing = self._call(f"get ConfigMap {name}", self._core.read_namespaced_config_map, name, ns)
                if existing.get("data") != configmap["data"]:
                    raise
        except ApiException as exc:
            reason, message = _status(exc)
            hint = {
                401: "the credentials were refused; check your kubeconfig",
                403: f"the service account lacks a permission; apply deploy/ (Role 'headwater-runner') in "
                     f"namespace {ns!r}",
                404: f"does namespace {ns!r} exist? apply deploy/ or pass --namespace",
                422: "the cluster rejected the manifest",
            }.get(exc.status or 0, "see the message")
            self._fail_now(ex, "KubernetesApiError",
                           f"node {spec.node_id!r}: creating Job {name} failed: {exc.status} {reason}: {message} "
                           f"({hint})")
        except RunnerError as exc:
            self._fail_now(ex, "KubernetesApiError", f"node {spec.node_id!r}: {exc}")

    def _fail_now(self, ex: _Execution, error_type: str, message: str) -> None:
        with self._lock:
            self._executions.pop(ex.spec.execution_id, None)
            self._done.append(ExecutorResult.failure(ex.spec.execution_id, error_type, message,
                                                     started_at=ex.launched))
            self._lock.notify_all()
        if ex.job is not None:
            self._delete_job(ex)

    def poll(self, timeout: float) -> list[ExecutorResult]:
        self._release_acked()
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._dirty and not self._done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(min(remaining, 0.5))
            self._dirty = False
            results, self._done = self._done, []
            executions = list(self._executions.values())
        for ex in executions:
            result = self._evaluate(ex)
            if result is not None:
                with self._lock:
                    self._executions.pop(ex.spec.execution_id, None)
                    self._acked.append(ex)
                results.append(result)
        return results

    def cancel(self, execution_ids: Sequence[int] | None = None) -> None:
        with self._lock:
            ids = list(self._executions) if execution_ids is None else list(execution_ids)
            targets = [self._executions.pop(i) for i in ids if i in self._executions]
        for ex in targets:
            ex.canceled = True
            if ex.job is not None:  # otherwise its create, when it returns, deletes it
                self._delete_job(ex)
            if not self.quiet:
                self._print(f"headwater: node {ex.node_id!r}: deleted Job {ex.job_name}")

    def close(self) -> None:
        self.cancel()
        self._release_acked(wait=True)
        self._stop.set()
        for resp in list(self._responses.values()):
            with contextlib.suppress(Exception):
                resp.shutdown()
        for thread in self._watchers:
            thread.join(5)
        if self._owns_api:
            with contextlib.suppress(Exception):
                self._api.close()

    def adopt(self, pipeline_name: str, run_id: str) -> list[ExecutionSpec]:
        """The executions of run ``run_id`` whose Jobs exist (running or finished, not yet collected).

        Their specs come from the Jobs' ConfigMaps; from now on they are watched and reported by
        :meth:`poll` like executions launched here. Jobs whose spec is gone are left alone."""
        selector = run_selector(pipeline_name, run_id)
        ns = self.config.namespace
        listed = self._call("list Jobs", self._batch.list_namespaced_job, ns, label_selector=selector)
        specs: list[ExecutionSpec] = []
        for job in listed.get("items", []):
            labels = job["metadata"].get("labels") or {}
            if labels.get(LABEL_ROLE) != "executor" or job["metadata"].get("deletionTimestamp"):
                continue
            name = job["metadata"]["name"]
            try:
                configmap = self._call(f"get ConfigMap {name}", self._core.read_namespaced_config_map, name, ns)
                spec = ExecutionSpec.from_json(json.loads(configmap["data"][LAUNCHER_SPEC_KEY]))
            except Exception as exc:  # missing or unreadable spec: cannot publish it, leave it be
                if not self.quiet:
                    self._print(f"headwater: Job {name} has no usable execution spec ({exc}); not re-attached")
                continue
            options = NodeOptions(spec.node_id, retries=int(job["spec"].get("backoffLimit", 0)),
                                  timeout_seconds=job["spec"].get("activeDeadlineSeconds"))
            ex = _Execution(spec, options, name, job=job, adopted=True)
            if spec.log_path:  # local scratch of an earlier orchestrator (object-store root): make it here
                Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._executions[spec.execution_id] = ex
            specs.append(spec)
        self._ensure_watching(pipeline_name, run_id)
        return specs

    def release(self, execution_ids: Sequence[int]) -> None:
        """Stop tracking adopted executions the runner will not wait for (already published)."""
        with self._lock:
            for eid in execution_ids:
                self._executions.pop(eid, None)

    # ------------------------------------------------------------------------------ checks
    def check_root(self, root: str) -> None:
        """Refuse a pipeline root the pods cannot reach (a local path without a shared volume)."""
        check_pipeline_root(root, self.config)

    # ------------------------------------------------------------------------------ watching
    def _ensure_watching(self, pipeline_name: str, run_id: str) -> None:
        selector = run_selector(pipeline_name, run_id)
        with self._lock:
            if self._selector == selector:
                return
            if self._selector is not None:
                raise RunnerError(
                    f"this Kubernetes backend already serves {self._selector!r}; use one backend per run"
                )
            self._selector = selector
        for kind in ("jobs", "pods"):
            thread = threading.Thread(target=self._watch_loop, args=(kind, selector), daemon=True,
                                      name=f"headwater-watch-{kind}")
            self._watchers.append(thread)
            thread.start()

    def _watch_loop(self, kind: str, selector: str) -> None:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        ns = self.config.namespace
        list_fn = self._batch.list_namespaced_job if kind == "jobs" else self._core.list_namespaced_pod
        rv: str | None = None
        failures = 0
        while not self._stop.is_set():
            resp = None
            try:
                if rv is None:
                    listed = self._call(f"list {kind}", list_fn, ns, label_selector=selector)
                    self._sync(kind, listed.get("items", []))
                    rv = str(listed["metadata"]["resourceVersion"])
                resp = list_fn(ns, label_selector=selector, watch=True, resource_version=rv,
                               allow_watch_bookmarks=True, timeout_seconds=self.config.watch_timeout,
                               _preload_content=False,
                               _request_timeout=(10, self.config.watch_timeout + 30))
                self._responses[kind] = resp
                if self._stop.is_set():  # close() ran while this request was being made
                    break
                for line in iter_resp_lines(resp):
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:  # our resourceVersion was compacted away: relist
                            rv = None
                            break
                        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                    rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                    if event.get("type") != "BOOKMARK":
                        self._apply(kind, str(event.get("type")), obj)
                    if self._stop.is_set():
                        break
                failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                failures += 1
                self._watch_trouble(kind, f"{exc.status} {exc.reason}", failures)
            except Exception as exc:  # dropped stream, connection refused, cut chunk: resume from rv
                if self._stop.is_set():
                    break
                failures += 1
                self._watch_trouble(kind, type(exc).__name__, failures)
            finally:
                if resp is not None:
                    with contextlib.suppress(Exception):
                        resp.release_conn()

    def _watch_trouble(self, kind: str, why: str, failures: int) -> None:
        if failures >= 3 and not self.quiet:
            self._print(f"headwater: watching {kind} failed {failures} times in a row ({why}); retrying")
        self._stop.wait(min(0.1 * 2 ** min(failures, 8), 10.0))

    def _execution_of(self, obj: Obj) -> _Execution | None:
        labels = obj.get("metadata", {}).get("labels") or {}
        try:
            return self._executions.get(int(labels.get(LABEL_EXECUTION, "")))
        except ValueError:
            return None

    def _sync(self, kind: str, items: list[Obj]) -> None:
        """Apply a full list: what it holds, and what disappeared while we were not watching."""
        with self._lock:
            seen = set()
            for obj in items:
                seen.add(obj["metadata"]["name"])
                self._apply(kind, "ADDED", obj)
            for ex in self._executions.values():
                if kind == "jobs":
                    # Only a Job the watch has seen can have disappeared; a newer one is not in this list yet.
                    if ex.job_seen and ex.job_name not in seen:
                        ex.job_deleted = True
                else:
                    for name in list(ex.pods):
                        if name not in seen:
                            ex.pods[name].setdefault("_deleted", True)
            self._dirty = True
            self._lock.notify_all()

    def _apply(self, kind: str, type_: str, obj: Obj) -> None:
        with self._lock:
            ex = self._execution_of(obj)
            if ex is None:
                return
            name = obj["metadata"]["name"]
            if kind == "jobs":
                if name != ex.job_name:
                    return
                ex.job_seen = True
                if type_ == "DELETED":
                    ex.job_deleted = True
                else:
                    ex.job = obj
            else:
                if name not in ex.pods:
                    ex.pod_order.append(name)
                if type_ == "DELETED":
                    obj = {**obj, "_deleted": True}
                ex.pods[name] = obj
                self._maybe_follow(ex, name, obj)
            self._dirty = True
            self._lock.notify_all()

    # ------------------------------------------------------------------------------ logs
    def _maybe_follow(self, ex: _Execution, pod: str, obj: Obj) -> None:
        if pod in ex.followers or not ex.spec.log_path:
            return
        state = _container_state(obj)
        if "running" in state or "terminated" in state:
            attempt = ex.pod_order.index(pod) + 1
            thread = threading.Thread(target=self._follow, args=(ex, pod, attempt), daemon=True,
                                      name=f"headwater-log-{pod}")
            ex.followers[pod] = thread
            thread.start()

    def _follow(self, ex: _Execution, pod: str, attempt: int) -> None:
        """Stream the pod's log into the node's log file (and the console) until the container ends."""
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        assert ex.spec.log_path is not None
        written = 0
        tries = 0
        Path(ex.spec.log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(ex.spec.log_path, "a", encoding="utf-8") as log:
            if attempt > 1:
                log.write(f"--- attempt {attempt}: pod {pod} ---\n")
            while not self._stop.is_set() and tries < 20:
                tries += 1
                resp = None
                try:
                    resp = self._core.read_namespaced_pod_log(
                        pod, self.config.namespace, container=EXECUTOR_CONTAINER, follow=True,
                        _preload_content=False, _request_timeout=(10, 300),
                    )
                    index = 0
                    for line in iter_resp_lines(resp):
                        index += 1
                        if index <= written:  # a resumed stream starts from the beginning again
                            continue
                        written = index
                        log.write(line + "\n")
                        log.flush()
                        if self.config.console_logs and not self.quiet:
                            self._print(f"[{ex.node_id}] {line}")
                    return
                except ApiException as exc:
                    if exc.status == 404:
                        return
                    if exc.status == 400:  # not started yet / waiting: try again shortly
                        self._stop.wait(0.2)
                        continue
                    self._stop.wait(0.2 * tries)
                except Exception:
                    if self._pod_gone(ex, pod):
                        return
                    self._stop.wait(0.2 * tries)
                finally:
                    if resp is not None:
                        with contextlib.suppress(Exception):
                            resp.release_conn()

    def _pod_gone(self, ex: _Execution, pod: str) -> bool:
        with self._lock:
            return bool(ex.pods.get(pod, {}).get("_deleted"))

    def _wait_for_logs(self, ex: _Execution, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(ex.followers.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------------------ decisions
    def _evaluate(self, ex: _Execution) -> ExecutorResult | None:
        with self._lock:
            job = ex.job
            pods = [ex.pods[name] for name in ex.pod_order]
            deleted = ex.job_deleted
        if ex.canceled:
            return None
        conditions = {c["type"]: c for c in ((job or {}).get("status") or {}).get("conditions") or []
                      if c.get("status") == "True"}
        if "Complete" in conditions or "Failed" in conditions:
            pods = self._settled_pods(ex, pods, complete="Complete" in conditions)
        for pod in pods:
            self._inspect_pod(ex, pod)
        if "Complete" in conditions or "Failed" in conditions:
            if "Complete" in conditions:
                return self._succeeded(ex, pods)
            return self._failed(ex, conditions["Failed"], pods)
        if deleted:
            return self._result(ex, "JobDeleted", f"node {ex.node_id!r}: Job {ex.job_name} was deleted before it "
                                f"finished (by someone else, or a cluster policy); run the pipeline again")
        return self._stuck(ex, pods)

    def _settled_pods(self, ex: _Execution, pods: list[Obj], *, complete: bool) -> list[Obj]:
        """The Job's pods in their final state. The Job and Pod watches are separate streams, so the Job's
        verdict can arrive before its pod's last update: then ask the API for the pods directly."""
        def settled(items: list[Obj]) -> bool:
            phases = [(p.get("status") or {}).get("phase") for p in items]
            return bool(items) and ("Succeeded" in phases if complete else phases[-1] in ("Failed", "Succeeded"))

        if settled(pods):
            return pods
        try:
            listed = self._call(f"list pods of Job {ex.job_name}", self._core.list_namespaced_pod,
                                self.config.namespace, label_selector=f"job-name={ex.job_name}")
        except Exception:
            return pods
        for pod in sorted(listed.get("items", []), key=lambda p: p["metadata"].get("creationTimestamp", "")):
            self._apply("pods", "MODIFIED", pod)
        with self._lock:
            return [ex.pods[name] for name in ex.pod_order]

    def _inspect_pod(self, ex: _Execution, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            ex.issue_since.setdefault(f"unschedulable:{name}", time.monotonic())
            self._report(ex, f"unschedulable:{name}",
                         f"Pending: cannot be scheduled: {scheduled.get('message', '')}{self._asks(ex)}")
        waiting = _container_state(pod).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in _PULL_WAITING:
            ex.issue_since.setdefault(f"pull:{name}", time.monotonic())
            self._report(ex, f"pull:{name}", f"Pending: image {self.config.image!r} cannot be pulled "
                         f"({reason}): {waiting.get('message', '')}")
        elif reason in _CONFIG_WAITING:
            ex.issue_since.setdefault(f"config:{name}", time.monotonic())
            self._report(ex, f"config:{name}", f"Pending: container cannot be created ({reason}): "
                         f"{waiting.get('message', '')}")
        terminated = _container_state(pod).get("terminated") or {}
        if status.get("phase") == "Failed":
            attempt = ex.pod_order.index(name) + 1
            if status.get("reason") == "Evicted":
                what = f"evicted: {status.get('message', '').strip()}"
            elif terminated.get("reason") == "OOMKilled":
                what = f"OOMKilled (memory limit {self._limit(ex, 'memory')})"
            else:
                what = f"failed (exit code {terminated.get('exitCode')}, {terminated.get('reason', 'Error')})"
            left = ex.options.retries - (attempt - 1)
            tail = f"; retrying ({left} retr{'y' if left == 1 else 'ies'} left)" if left > 0 else ""
            self._report(ex, f"failed:{name}", f"attempt {attempt} (pod {name}) {what}{tail}")

    def _asks(self, ex: _Execution) -> str:
        res = ex.options.resources
        parts = [f"{k}={v}" for k, v in (("cpu", res.cpu), ("memory", res.memory)) if v]
        if res.gpu:
            parts.append(f"nvidia.com/gpu={res.gpu}")
        return f" (the node requests {', '.join(parts)})" if parts else ""

    def _limit(self, ex: _Execution, key: str) -> str:
        res = ex.options.resources
        value = (res.memory_limit or res.memory) if key == "memory" else (res.cpu_limit or res.cpu)
        return str(value) if value else "not set"

    def _stuck(self, ex: _Execution, pods: list[Obj]) -> ExecutorResult | None:
        """Fail a node whose pod cannot make progress for longer than the configured patience."""
        now = time.monotonic()
        current = pods[-1] if pods else None
        if current is None:
            return None
        name = current["metadata"]["name"]
        status = current.get("status") or {}
        if status.get("phase") not in (None, "Pending"):
            return None
        scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        since = ex.issue_since.get(f"unschedulable:{name}")
        if (since is not None and scheduled and scheduled.get("status") == "False"
                and now - since >= self.config.unschedulable_timeout):
            message = scheduled.get("message", "")
            short = sorted({m.rstrip(".") for m in re.findall(r"Insufficient ([\w./-]+)", message)})
            which = (f"not enough {', '.join(short)} on any node" if short
                     else "no node fits its node selector, tolerations or volumes")
            self._delete_job(ex)
            return self._result(
                ex, "Unschedulable",
                f"node {ex.node_id!r} could not be scheduled for {self.config.unschedulable_timeout:g}s: "
                f"{which}{self._asks(ex)}. Scheduler: {message} Lower .with_resources(...), or add capacity "
                "to the cluster",
            )
        waiting = _container_state(current).get("waiting") or {}
        reason = waiting.get("reason")
        since = ex.issue_since.get(f"pull:{name}")
        if since is not None and reason in _PULL_WAITING and (
            reason == "InvalidImageName" or now - since >= self.config.image_pull_timeout
        ):
            self._delete_job(ex)
            return self._result(
                ex, "ImagePullError",
                f"node {ex.node_id!r}: image {self.config.image!r} cannot be pulled ({reason}): "
                f"{waiting.get('message', '')}. Check the image name and tag (--image), that it was pushed "
                "or loaded into the cluster, and the pull secrets",
            )
        since = ex.issue_since.get(f"config:{name}")
        if since is not None and reason in _CONFIG_WAITING and now - since >= self.config.config_error_timeout:
            self._delete_job(ex)
            return self._result(
                ex, "ContainerConfigError",
                f"node {ex.node_id!r}: the container cannot be created ({reason}): {waiting.get('message', '')}. "
                "Create the missing Secret/ConfigMap or fix the volume configuration",
            )
        since = ex.issue_since.setdefault(f"pending:{name}", now)
        if now - since >= self.config.pending_timeout:
            self._delete_job(ex)
            return self._result(
                ex, "PodPending",
                f"node {ex.node_id!r}: pod {name} stayed Pending for {self.config.pending_timeout:g}s "
                f"({reason or 'not started'}: {waiting.get('message', '') or 'no message'}); check "
                f"'kubectl -n {self.config.namespace} describe pod {name}' for its events",
            )
        return None

    def _succeeded(self, ex: _Execution, pods: list[Obj]) -> ExecutorResult:
        self._wait_for_logs(ex)
        winner = next((p for p in reversed(pods) if (p.get("status") or {}).get("phase") == "Succeeded"), None)
        candidates = [winner["metadata"]["name"]] if winner else []
        result = self._read_result(ex, candidates)
        if result is not None:
            return result
        where = result_path(ex.spec, candidates[0] if candidates else "<pod>")
        if storage.is_url(ex.spec.pipeline_root):
            hint = ("the orchestrator and the pods must reach the same object store: give the pods the endpoint "
                    "and credentials the orchestrator uses (AWS_ENDPOINT_URL / STORAGE_EMULATOR_HOST, keys "
                    "through env, secret_env or env_from_secrets)")
        else:
            hint = "the orchestrator and the pods must see the same pipeline root (mount the volume at the same path)"
        return self._result(
            ex, "ExecutorContractError",
            f"node {ex.node_id!r}: Job {ex.job_name} completed but no executor result was found at {where}; {hint}",
        )

    def _failed(self, ex: _Execution, condition: Obj, pods: list[Obj]) -> ExecutorResult:
        self._wait_for_logs(ex)
        reason = condition.get("reason", "")
        attempts = len(pods)
        if reason == "DeadlineExceeded":
            deadline = ((ex.job or {}).get("spec") or {}).get("activeDeadlineSeconds")
            return self._result(
                ex, "DeadlineExceeded",
                f"node {ex.node_id!r} ran longer than its deadline of {deadline}s (Job activeDeadlineSeconds) "
                "and was stopped; raise it with .with_timeout(seconds)",
            )
        last = pods[-1] if pods else None
        if last is None:
            return self._result(ex, "JobFailed", f"node {ex.node_id!r}: Job {ex.job_name} failed ({reason}: "
                                f"{condition.get('message', '')}) before any pod ran")
        name = last["metadata"]["name"]
        status = last.get("status") or {}
        terminated = _container_state(last).get("terminated") or {}
        after = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts > 1 else ""
        if status.get("reason") == "Evicted":
            return self._result(ex, "Evicted", f"node {ex.node_id!r}: pod {name} was evicted{after}: "
                                f"{status.get('message', '').strip()}")
        if terminated.get("reason") == "OOMKilled":
            return self._result(
                ex, "OOMKilled",
                f"node {ex.node_id!r}: pod {name} was OOMKilled{after}: the container used more memory than its "
                f"limit ({self._limit(ex, 'memory')}); raise it with .with_resources(memory=...)",
            )
        result = self._read_result(ex, [name])
        if result is not None and not result.succeeded:
            return result
        code = terminated.get("exitCode")
        tail = (terminated.get("message") or "").strip().splitlines()[-5:]
        shown = ("; last output: " + " | ".join(tail)) if tail else ""
        return self._result(
            ex, "ContainerFailed",
            f"node {ex.node_id!r}: the container in pod {name} exited with code {code} "
            f"({terminated.get('reason', reason)}){after} without an executor result{shown}",
        )

    def _read_result(self, ex: _Execution, pod_names: list[str]) -> ExecutorResult | None:
        """The executor result a pod wrote on the pipeline root (a file on the volume, or an object)."""
        for pod in pod_names:
            path = result_path(ex.spec, pod)
            try:
                if not storage.exists(path):
                    continue
                data = storage.read_bytes(path)
            except (StorageError, OSError) as exc:
                return self._result(ex, "StorageError",
                                    f"node {ex.node_id!r}: cannot read the executor result {path}: {exc}")
            try:
                result = ExecutorResult.from_json(json.loads(data))
            except Exception as exc:
                return self._result(ex, "ExecutorContractError",
                                    f"node {ex.node_id!r}: unreadable executor result {path}: {exc}")
            if result.execution_id != ex.spec.execution_id:
                return self._result(
                    ex, "ExecutorContractError",
                    f"node {ex.node_id!r}: executor result {path} is for execution {result.execution_id}, "
                    f"not {ex.spec.execution_id}",
                )
            return result
        return None

    def _result(self, ex: _Execution, error_type: str, message: str) -> ExecutorResult:
        return ExecutorResult.failure(ex.spec.execution_id, error_type, message, started_at=ex.launched)

    # ------------------------------------------------------------------------------ cleanup
    def _delete_job(self, ex: _Execution) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._call(f"delete Job {ex.job_name}", self._batch.delete_namespaced_job, ex.job_name,
                       self.config.namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404 and not self.quiet:
                self._print(f"headwater: could not delete Job {ex.job_name}: {exc.status} {_status(exc)[1]}")
        except RunnerError as exc:
            if not self.quiet:
                self._print(f"headwater: could not delete Job {ex.job_name}: {exc}")

    def _release_acked(self, *, wait: bool = False) -> None:
        """Results handed out by the previous poll are published by now: drop their ConfigMaps (the Jobs
        stay until ``ttlSecondsAfterFinished`` so that ``kubectl logs`` keeps working). Deleting happens in
        a background thread, off the scheduling loop; ``wait`` finishes it (on close)."""
        with self._lock:
            acked, self._acked = self._acked, []
        for ex in acked:
            self._pool.submit(self._delete_configmap, ex.job_name)
        if wait:
            self._pool.shutdown(wait=True)

    def _delete_configmap(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._call(f"delete ConfigMap {name}", self._core.delete_namespaced_config_map, name,
                       self.config.namespace)
        except (ApiException, RunnerError):
            pass


def _container_state(pod: Obj) -> Obj:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == EXECUTOR_CONTAINER:
            return dict(cs.get("state") or {})
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return dict(statuses[0].get("state") or {}) if statuses else {}


class KubernetesRunner(Runner):
    """Runs each node as a Kubernetes Job; independent nodes concurrently (at most ``max_parallel``).

    Given the ``run_id`` of an earlier run of the same pipeline (constructor or :meth:`run`), it first
    re-attaches to that run's Jobs: those still running are waited for (not started again), those that
    finished meanwhile are published; then the run goes on, reusing what is done.
    """

    def __init__(
        self,
        config: KubernetesConfig | None = None,
        *,
        metadata: str | None = None,
        cache: bool = True,
        quiet: bool = False,
        stream: TextIO | None = None,
        api_client: Any = None,
        run_id: str | None = None,
    ) -> None:
        self.config = config or KubernetesConfig()
        self.default_run_id = run_id
        self._api_client = api_client

        def factory(pipeline: Any = None, selected: Any = None) -> KubernetesBackend:
            backend = self.backend()
            if pipeline is not None:
                try:
                    backend.check_root(pipeline.root)
                except RunnerError:
                    backend.close()
                    raise
            return backend

        super().__init__(factory, metadata=metadata, cache=cache, quiet=quiet, stream=stream)

    def backend(self) -> KubernetesBackend:
        return KubernetesBackend(self.config, api_client=self._api_client, stream=self.stream, quiet=self.quiet)

    def run(self, pipeline: Any, params: Any = None, *, run_id: str | None = None, **kwargs: Any) -> Any:
        run_id = run_id or self.default_run_id
        if run_id is not None:
            self.reattach(pipeline, run_id, params)
        return super().run(pipeline, params, run_id=run_id, **kwargs)

    def reattach(self, pipeline: Any, run_id: str, params: Any = None) -> dict[str, str]:
        """Wait for and publish the executions of ``run_id`` whose Jobs a previous orchestrator started.

        Returns ``{node_id: state}`` for the executions it re-attached to (empty when there were none)."""
        from headwater.metadata.store import ExecutionState
        from headwater.pipelines.launcher import Launcher, Outcome
        from headwater.pipelines.runner import open_store

        out = self.stream or sys.stderr
        backend = self.backend()
        states: dict[str, str] = {}
        try:
            specs = backend.adopt(pipeline.name, run_id)
            if not specs:
                return states
            store = open_store(pipeline, self.metadata)
            launcher = Launcher(store, pipeline, run_id, pipeline.resolve_params(params), cache=self.cache)
            ids = [s.execution_id for s in specs]
            running = {e.id for e in store.mlmd.get_executions_by_id(ids)
                       if e.last_known_state == ExecutionState.RUNNING}
            keep = [s for s in specs if s.execution_id in running and s.node_id in pipeline.node_ids]
            backend.release([s.execution_id for s in specs if s not in keep])
            if not keep:
                return states
            if not self.quiet:
                names = ", ".join(sorted(s.node_id for s in keep))
                print(f"headwater: re-attached to {len(keep)} Job(s) of run {run_id}: {names}", file=out, flush=True)
            pending = {s.execution_id: (pipeline.node(s.node_id), Outcome(s.node_id, "launch", s.execution_id,
                                                                          spec=s, log_path=s.log_path))
                       for s in keep}
            try:
                while pending:
                    for result in backend.poll(0.5):
                        if result.execution_id not in pending:
                            continue
                        node, outcome = pending.pop(result.execution_id)
                        published = launcher.publish(node, outcome, result)
                        states[node.id] = published.state
                        if not self.quiet:
                            note = f": {published.error}" if published.error else ""
                            print(f"headwater: re-attached node {node.id!r} {published.state}{note}", file=out,
                                  flush=True)
            except KeyboardInterrupt:
                backend.cancel(list(pending))
                for node, outcome in pending.values():
                    launcher.fail(node, outcome, "canceled by the user (Ctrl-C)", state=ExecutionState.CANCELED)
                raise
            return states
        finally:
            backend.close()
