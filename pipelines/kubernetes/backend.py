"""The Kubernetes executor backend: one ``batch/v1`` Job per execution, created through the official client.

:class:`KubernetesBackend` implements the executor-backend interface (launch / poll / cancel / close) the
generic :class:`~headwater.pipelines.runner.Runner` schedules on. The orchestrator stays the only ML
Metadata writer: a pod receives its execution spec in a ConfigMap, writes outputs under the shared
pipeline root — a ReadWriteMany volume or an object store (``s3://``, ``gs://``) — and returns its
executor result as a file (or object) next to them (see :mod:`headwater.pipelines.kubernetes.manifests`
for every object it creates).

The backend watches the run's Jobs and Pods (:mod:`._watch`) and explains what it sees
(:mod:`._diagnose`): Pending because unschedulable (and which resource), image pull failures, missing
Secrets/ConfigMaps, OOMKilled, evicted, deadline exceeded. Each pod's log is streamed into the node's log
file and the console. API calls answered 429/5xx (or cut connections) are retried with back-off,
honouring ``Retry-After`` (:mod:`._api`). ``cancel`` deletes the Jobs it created (their pods and
ConfigMaps go with them). :meth:`KubernetesBackend.adopt` finds the Jobs of a run that a previous
orchestrator started, so a restarted orchestrator re-attaches to them instead of starting duplicates.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from headwater.components import storage
from headwater.components.errors import RunnerError
from headwater.components.executor import ExecutionSpec, ExecutorResult
from headwater.metadata.errors import StorageError
from headwater.pipelines.backend import NodeOptions
from headwater.pipelines.kubernetes import _diagnose as diagnose
from headwater.pipelines.kubernetes._api import KubeApi, api_status, load_api_client
from headwater.pipelines.kubernetes._watch import Watches, follow_log
from headwater.pipelines.kubernetes.manifests import (
    LABEL_EXECUTION,
    LABEL_ROLE,
    LAUNCHER_SPEC_KEY,
    KubernetesConfig,
    check_pipeline_root,
    check_resources,
    effective_resources,
    execution_configmap,
    execution_job,
    job_name,
    result_path,
    run_selector,
)

__all__ = ["KubernetesBackend"]

Obj = dict[str, Any]


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
        self.config = config or KubernetesConfig()
        for name in list(self.config.env) + list(self.config.secret_env):
            if name == "HEADWATER_METADATA":
                raise RunnerError(
                    "KubernetesConfig gives executor pods HEADWATER_METADATA; pods never get database "
                    "credentials (the orchestrator is the only metadata writer): remove it from env/secret_env"
                )
        if self.config.default_resources is not None:
            check_resources(self.config.default_resources, "KubernetesConfig.default_resources")
        from headwater.components.placement import image_problem

        if image_problem(self.config.image):
            raise RunnerError(f"KubernetesConfig.image (--image): {image_problem(self.config.image)}")
        self.capacity = max(1, self.config.max_parallel)
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.reporter = reporter
        self._patience = diagnose.Patience(self.config.unschedulable_timeout, self.config.image_pull_timeout,
                                           self.config.config_error_timeout, self.config.pending_timeout)
        self._client = api_client if api_client is not None else load_api_client(self.config)
        self._owns_client = api_client is None
        self._stop = threading.Event()
        self._api = KubeApi(self._client, self.config, self._stop, self._say)
        self._lock = threading.Condition(threading.RLock())
        self._executions: dict[int, _Execution] = {}
        self._done: list[ExecutorResult] = []
        self._dirty = False
        self._acked: list[_Execution] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.config.api_workers),
                                        thread_name_prefix="headwater-k8s-api")
        self._selector: str | None = None
        self._watches = Watches(self._api, self._stop, on_list=self._sync, on_event=self._apply, note=self._say)
        self._print_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        """Requests made to the API server so far (retries included)."""
        return self._api.calls

    # ------------------------------------------------------------------------------ console
    def _print(self, text: str) -> None:
        with self._print_lock:
            print(text, file=self.stream, flush=True)

    def _say(self, text: str) -> None:
        if not self.quiet:
            self._print(text)

    def _report(self, ex: _Execution, key: str, note: str) -> None:
        """Tell the user about a pod condition once per (pod, condition)."""
        if key in ex.reported:
            return
        ex.reported.add(key)
        if self.reporter is not None:
            self.reporter(ex.node_id, note)
        else:
            self._say(f"headwater: node {ex.node_id!r}: {note}")

    # ------------------------------------------------------------------------------ interface
    def launch(self, spec: ExecutionSpec, options: NodeOptions) -> None:
        # What the pod gets (the node's resources, the defaults for what it leaves unset) is what messages name.
        options = replace(options, resources=effective_resources(options.resources, self.config.default_resources))
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
                                 timeout_seconds=options.timeout_seconds, image=options.image,
                                 placement=options.placement)
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
                created = self._api.create_job(name, manifest)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # A create retried after a lost answer finds its own Job: adopt it, never a stranger's.
                created = self._api.read_job(name)
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
                self._api.create_configmap(name, configmap)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                existing = self._api.read_configmap(name)
                if existing.get("data") != configmap["data"]:
                    raise
        except ApiException as exc:
            reason, message = api_status(exc)
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
            self._say(f"headwater: node {ex.node_id!r}: deleted Job {ex.job_name}")

    def close(self) -> None:
        self.cancel()
        self._release_acked(wait=True)
        self._stop.set()
        self._watches.close()
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()

    def adopt(self, pipeline_name: str, run_id: str) -> list[ExecutionSpec]:
        """The executions of run ``run_id`` whose Jobs exist (running or finished, not yet collected).

        Their specs come from the Jobs' ConfigMaps; from now on they are watched and reported by
        :meth:`poll` like executions launched here. Jobs whose spec is gone are left alone."""
        listed = self._api.list("jobs", run_selector(pipeline_name, run_id), "list Jobs")
        specs: list[ExecutionSpec] = []
        for job in listed.get("items", []):
            labels = job["metadata"].get("labels") or {}
            if labels.get(LABEL_ROLE) != "executor" or job["metadata"].get("deletionTimestamp"):
                continue
            name = job["metadata"]["name"]
            try:
                configmap = self._api.read_configmap(name)
                spec = ExecutionSpec.from_json(json.loads(configmap["data"][LAUNCHER_SPEC_KEY]))
            except Exception as exc:  # missing or unreadable spec: cannot publish it, leave it be
                self._say(f"headwater: Job {name} has no usable execution spec ({exc}); not re-attached")
                continue
            containers = job["spec"]["template"]["spec"].get("containers") or [{}]
            options = NodeOptions(spec.node_id, retries=int(job["spec"].get("backoffLimit", 0)),
                                  timeout_seconds=job["spec"].get("activeDeadlineSeconds"),
                                  image=containers[0].get("image"))
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

    def check_root(self, root: str) -> None:
        """Refuse a pipeline root the pods cannot reach (a local path without a shared volume)."""
        check_pipeline_root(root, self.config)

    # ------------------------------------------------------------------------------ what the watches see
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
        self._watches.start(selector)

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
        log_path = ex.spec.log_path
        if pod in ex.followers or not log_path:
            return
        state = diagnose.container_state(obj)
        if "running" in state or "terminated" in state:
            echo = self._echo(ex.node_id) if self.config.console_logs and not self.quiet else None

            def gone() -> bool:
                with self._lock:
                    return bool(ex.pods.get(pod, {}).get("_deleted"))

            thread = threading.Thread(
                target=follow_log, args=(self._api, pod, log_path),
                kwargs={"attempt": ex.pod_order.index(pod) + 1, "stop": self._stop, "echo": echo, "gone": gone},
                daemon=True, name=f"headwater-log-{pod}",
            )
            ex.followers[pod] = thread
            thread.start()

    def _echo(self, node_id: str) -> Callable[[str], None]:
        def echo(line: str) -> None:
            self._print(f"[{node_id}] {line}")

        return echo

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
        conditions = diagnose.job_conditions(job)
        finished = "Complete" in conditions or "Failed" in conditions
        if finished:
            pods = self._settled_pods(ex, pods, complete="Complete" in conditions)
        for number, pod in enumerate(pods, 1):
            self._inspect_pod(ex, pod, number)
        if finished:
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
        if diagnose.settled(pods, complete=complete):
            return pods
        try:
            listed = self._api.list("pods", f"job-name={ex.job_name}", f"list pods of Job {ex.job_name}")
        except Exception:
            return pods
        for pod in sorted(listed.get("items", []), key=lambda p: p["metadata"].get("creationTimestamp", "")):
            self._apply("pods", "MODIFIED", pod)
        with self._lock:
            return [ex.pods[name] for name in ex.pod_order]

    def _inspect_pod(self, ex: _Execution, pod: Obj, attempt: int) -> None:
        """Report what ``pod`` shows, once per condition, and start the clock of conditions that can last."""
        for issue in diagnose.pod_issues(pod, attempt=attempt, retries=ex.options.retries,
                                         image=ex.options.image or self.config.image,
                                         resources=ex.options.resources):
            if issue.kind != "failed":
                ex.issue_since.setdefault(issue.key, time.monotonic())
            self._report(ex, issue.key, issue.note)

    def _stuck(self, ex: _Execution, pods: list[Obj]) -> ExecutorResult | None:
        """Fail a node whose pod cannot make progress for longer than the configured patience."""
        if not pods:
            return None
        now = time.monotonic()
        current = pods[-1]
        if diagnose.is_pending(current):
            ex.issue_since.setdefault(f"pending:{current['metadata']['name']}", now)
        failure = diagnose.stuck_failure(current, ex.issue_since, now, patience=self._patience,
                                         node_id=ex.node_id, image=ex.options.image or self.config.image,
                                         resources=ex.options.resources, namespace=self.config.namespace)
        if failure is None:
            return None
        self._delete_job(ex)
        return self._result(ex, failure.error_type, failure.message)

    def _succeeded(self, ex: _Execution, pods: list[Obj]) -> ExecutorResult:
        self._wait_for_logs(ex)
        winner = next((p for p in reversed(pods) if (p.get("status") or {}).get("phase") == "Succeeded"), None)
        candidates = [winner["metadata"]["name"]] if winner else []
        result = self._read_result(ex, candidates)
        if result is not None:
            return result
        failure = diagnose.missing_result(
            node_id=ex.node_id, job_name=ex.job_name, object_store=storage.is_url(ex.spec.pipeline_root),
            where=result_path(ex.spec, candidates[0] if candidates else "<pod>"),
        )
        return self._result(ex, failure.error_type, failure.message)

    def _failed(self, ex: _Execution, condition: Obj, pods: list[Obj]) -> ExecutorResult:
        self._wait_for_logs(ex)
        failure = diagnose.job_failure(ex.job, condition, pods, node_id=ex.node_id, job_name=ex.job_name,
                                       resources=ex.options.resources)
        if failure is None:
            result = self._read_result(ex, [pods[-1]["metadata"]["name"]])
            if result is not None and not result.succeeded:
                return result
            failure = diagnose.container_failure(condition, pods, node_id=ex.node_id)
        return self._result(ex, failure.error_type, failure.message)

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
            self._api.delete_job(ex.job_name)
        except ApiException as exc:
            if exc.status != 404:
                self._say(f"headwater: could not delete Job {ex.job_name}: {exc.status} {api_status(exc)[1]}")
        except RunnerError as exc:
            self._say(f"headwater: could not delete Job {ex.job_name}: {exc}")

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
            self._api.delete_configmap(name)
        except (ApiException, RunnerError):
            pass
