"""Kubernetes manifests, built as plain dictionaries (pure functions: no cluster, no client calls).

- :func:`execution_job` / :func:`execution_configmap`: what the Kubernetes runner creates per node — one
  ``batch/v1`` Job running ``python -m headwater.components.executor`` and one ConfigMap holding its
  execution spec (mounted read-only into the pod, owned by the Job so it is collected with it).
- :func:`orchestrator_job`: the runner itself as a Job (``headwater run ... --runner kubernetes --detach``).
- what a cluster needs once (Namespace, RBAC, volume, metadata database) is in
  :mod:`headwater.pipelines.kubernetes.deploy`.

The pipeline root is either a local path on a ReadWriteMany volume (``pipeline_root_claim``, mounted in
every pod at the root's own path) or an object-store URL (``s3://``, ``gs://``): then no volume is mounted
and the pods reach the store with what ``env`` / ``secret_env`` / ``env_from_secrets`` give them.

Result channel: each executor pod writes its executor result to
``<pipeline_root>/_results/<run_id>/<node_id>.<execution_id>.<pod name>.json`` on the shared pipeline
root — a file on the volume or an object in the store (one per pod, so a retried pod never leaves a stale
result behind); the orchestrator reads the one of the pod that finished last. Pods get no database
credentials and no API token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.components import storage
from headwater.components._contract import IMAGE_ENV
from headwater.components.api import Resources
from headwater.components.errors import RunnerError
from headwater.components.executor import ExecutionSpec
from headwater.components.placement import Placement

__all__ = [
    "DEFAULT_EXECUTOR_RESOURCES",
    "LABEL_EXECUTION",
    "LABEL_MANAGED_BY",
    "LABEL_NODE",
    "LABEL_PIPELINE",
    "LABEL_RUN",
    "SPEC_DIR",
    "KubernetesConfig",
    "check_pipeline_root",
    "check_resources",
    "effective_resources",
    "execution_configmap",
    "execution_job",
    "executor_pod_args",
    "job_name",
    "label_value",
    "labels_for",
    "orchestrator_job",
    "pod_spec",
    "resource_requirements",
    "result_path",
    "run_selector",
    "scheduling",
]

Manifest = dict[str, Any]

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PIPELINE = "headwater.dev/pipeline"
LABEL_RUN = "headwater.dev/run-id"
LABEL_NODE = "headwater.dev/node-id"
LABEL_EXECUTION = "headwater.dev/execution-id"
LABEL_ROLE = "headwater.dev/role"
ANNOTATION_PREFIX = "headwater.dev/"
SPEC_DIR = "/var/run/headwater/spec"
SPEC_KEY = "spec.json"
LAUNCHER_SPEC_KEY = "execution-spec.json"
POD_NAME_ENV = "HEADWATER_POD_NAME"
EXECUTOR_CONTAINER = "executor"
RUNNER_CONTAINER = "runner"

#: Requests and limits of an executor pod whose node sets none (``KubernetesConfig.default_resources``): a
#: node without them would otherwise run BestEffort — first to be evicted, and free to starve its neighbours.
DEFAULT_EXECUTOR_RESOURCES = Resources(cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="4Gi")

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class KubernetesConfig:
    """Everything the Kubernetes runner puts into the objects it creates. Immutable; copy with ``with_``.

    ``pipeline_root_claim`` names the ReadWriteMany PersistentVolumeClaim holding the pipeline root; it is
    mounted at ``pipeline_root_mount`` (default: the pipeline root's own path, so paths in execution specs
    mean the same thing to the orchestrator and to the pods). Without a claim the pipeline root must be an
    object-store URL (``s3://``, ``gs://``); the pods reach the store with the credentials and endpoint
    given by ``env`` (e.g. ``AWS_ENDPOINT_URL`` for MinIO), ``secret_env`` (one variable from a Secret key)
    and ``env_from_secrets`` (every key of a Secret), and so does the orchestrator Job of ``--detach``.

    ``default_resources`` gives executor pods the requests and limits their node does not set, per kind (a
    node that sets its CPU or its memory keeps those as they are); ``None`` sets none.
    """

    namespace: str = "default"
    image: str = "headwater:latest"
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    pipeline_root_claim: str | None = None
    pipeline_root_mount: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    env_from_secrets: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ttl_seconds_after_finished: int | None = 3600
    active_deadline_seconds: int | None = None
    read_only_root_filesystem: bool = True
    run_as_user: int = 1000
    run_as_group: int = 1000
    fs_group: int | None = 1000
    tmp_size_limit: str | None = None
    python: str = "python"
    max_parallel: int = 16
    default_resources: Resources | None = DEFAULT_EXECUTOR_RESOURCES
    unschedulable_timeout: float = 600.0
    image_pull_timeout: float = 300.0
    config_error_timeout: float = 120.0
    pending_timeout: float = 1800.0
    api_workers: int = 8
    api_retries: int = 6
    api_backoff: float = 0.5
    watch_timeout: int = 240
    console_logs: bool = True
    kubeconfig: str | None = None
    context: str | None = None
    # --detach: the orchestrator as a Job
    runner_service_account: str = "headwater-runner"
    metadata_secret: str | None = None
    metadata_secret_key: str = "uri"
    runner_backoff_limit: int = 3

    def with_options(self, **changes: Any) -> KubernetesConfig:
        """A copy with ``changes`` applied (``config.with_options(namespace="ml", image="...")``)."""
        return dataclasses.replace(self, **changes)

    def root_mount(self, pipeline_root: str) -> str:
        return self.pipeline_root_mount or storage.local_path(pipeline_root)


def check_pipeline_root(root: str, config: KubernetesConfig) -> None:
    """Refuse a pipeline root the pods cannot reach: a local path needs a ReadWriteMany claim (mounted at
    an absolute path); an object-store root needs none, and a claim given with it would go unused."""
    if storage.is_url(root):
        if config.pipeline_root_claim:
            raise RunnerError(
                f"pipeline root {root!r} is in an object store, so the volume claim "
                f"{config.pipeline_root_claim!r} (--pipeline-root-claim) would not be used: drop one of them. "
                "Pods reach the store with the credentials given by env / secret_env / env_from_secrets "
                "(--env, --secret-env, --env-from-secret)"
            )
        return
    if not config.pipeline_root_claim:
        raise RunnerError(
            f"pipeline root {root!r} is a local path, but executor pods cannot see this machine's disk: "
            "put the root on a ReadWriteMany volume (KubernetesConfig(pipeline_root_claim=...), CLI "
            "--pipeline-root-claim) mounted at the same path, or use an object-store root (gs://, s3://)"
        )
    if not posixpath.isabs(storage.local_path(root)):
        raise RunnerError(
            f"pipeline root {root!r} is relative; on Kubernetes it must be an absolute path (the volume "
            "is mounted there in every pod)"
        )


# ---------------------------------------------------------------------------------------------- names
def label_value(value: str) -> str:
    """``value`` as a valid label value: invalid characters replaced, at most 63 characters (with a hash
    suffix when anything had to change, so different inputs stay different)."""
    if _LABEL_VALUE.match(value) and len(value) <= 63:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:54].strip("-_.")
    return f"{cleaned}-{digest}" if cleaned else digest


def _dns_label(text: str, limit: int) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:limit].strip("-") or "x"


def job_name(spec: ExecutionSpec) -> str:
    """``<pipeline>-<node>-<execution id>-<hash>``: a DNS-1123 label of at most 63 characters (Jobs need
    that: the name becomes the ``job-name`` label of their pods)."""
    digest = hashlib.sha256(f"{spec.pipeline_name}|{spec.run_id}|{spec.node_id}|{spec.execution_id}".encode())
    tail = f"-{spec.execution_id}-{digest.hexdigest()[:5]}"
    head = f"{_dns_label(spec.pipeline_name, 20)}-{_dns_label(spec.node_id, 63)}"
    return head[: 63 - len(tail)].strip("-") + tail


def run_selector(pipeline_name: str, run_id: str) -> str:
    """The label selector of everything one run created."""
    return (f"{LABEL_MANAGED_BY}=headwater,{LABEL_PIPELINE}={label_value(pipeline_name)},"
            f"{LABEL_RUN}={label_value(run_id)}")


def labels_for(spec: ExecutionSpec, config: KubernetesConfig) -> dict[str, str]:
    return {
        **dict(config.labels),
        LABEL_MANAGED_BY: "headwater",
        LABEL_PIPELINE: label_value(spec.pipeline_name),
        LABEL_RUN: label_value(spec.run_id),
        LABEL_NODE: label_value(spec.node_id),
        LABEL_EXECUTION: str(spec.execution_id),
        LABEL_ROLE: "executor",
    }


def _annotations(spec: ExecutionSpec, config: KubernetesConfig) -> dict[str, str]:
    return {
        **dict(config.annotations),
        ANNOTATION_PREFIX + "pipeline": spec.pipeline_name,
        ANNOTATION_PREFIX + "run-id": spec.run_id,
        ANNOTATION_PREFIX + "node-id": spec.node_id,
        ANNOTATION_PREFIX + "component": f"{spec.component_module}.{spec.component_function}",
    }


def result_path(spec: ExecutionSpec, pod_name: str) -> str:
    """Where the pod ``pod_name`` writes the executor result of ``spec`` (on the shared pipeline root: a
    path on the volume, or a URL in the object store)."""
    return storage.join(spec.pipeline_root, "_results", spec.run_id,
                        f"{spec.node_id}.{spec.execution_id}.{pod_name}.json")


def pod_execution_spec(spec: ExecutionSpec) -> ExecutionSpec:
    """The spec as the pod receives it: output goes to the container's stdout (the orchestrator streams
    the pod's log into the node's log file), scratch space is the pod's own ``/tmp``."""
    return dataclasses.replace(
        spec, log_path=None, tmp_dir=posixpath.join("/tmp", "headwater", spec.run_id, str(spec.execution_id))
    )


# ------------------------------------------------------------------------------------------ resources
def effective_resources(resources: Resources | None, defaults: Resources | None) -> Resources:
    """A node's resources with ``defaults`` filling in what it leaves unset, per kind: a node that sets a
    CPU request or limit keeps its CPU settings as they are, and likewise memory. GPUs are never defaulted."""
    res = resources or Resources()
    if defaults is None:
        return res
    changes: dict[str, Any] = {}
    if not (res.cpu or res.cpu_limit):
        changes.update(cpu=defaults.cpu, cpu_limit=defaults.cpu_limit)
    if not (res.memory or res.memory_limit):
        changes.update(memory=defaults.memory, memory_limit=defaults.memory_limit)
    return dataclasses.replace(res, **changes) if changes else res


def check_resources(resources: Resources, what: str) -> None:
    """Refuse quantities Kubernetes would reject: not a quantity, or a limit below its request."""
    from headwater.pipelines.kfp._resources import parse_quantity

    values = {}
    for field_name in ("cpu", "cpu_limit", "memory", "memory_limit"):
        text = getattr(resources, field_name)
        if text is None:
            continue
        try:
            values[field_name] = parse_quantity(str(text))
        except ValueError:
            raise RunnerError(f"{what}: {field_name}={text!r} is not a Kubernetes quantity (e.g. 500m or 2 for "
                              "CPU, 512Mi or 4Gi for memory)") from None
    for kind in ("cpu", "memory"):
        request, limit = values.get(kind), values.get(f"{kind}_limit")
        if request is not None and limit is not None and limit < request:
            raise RunnerError(f"{what}: the {kind} limit {getattr(resources, kind + '_limit')} is below the "
                              f"{kind} request {getattr(resources, kind)}; Kubernetes requires limit >= request")


def resource_requirements(resources: Resources) -> Manifest:
    """Requests and limits from a node's resources: limits default to the requests; GPUs as
    ``nvidia.com/gpu`` (an extended resource: request = limit)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu:
        requests["cpu"] = str(resources.cpu)
    if resources.memory:
        requests["memory"] = str(resources.memory)
    cpu_limit = resources.cpu_limit or resources.cpu
    memory_limit = resources.memory_limit or resources.memory
    if cpu_limit:
        limits["cpu"] = str(cpu_limit)
    if memory_limit:
        limits["memory"] = str(memory_limit)
    if resources.gpu:
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(int(resources.gpu))
    out: Manifest = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


# ------------------------------------------------------------------------------------------- pods
def _security(config: KubernetesConfig) -> tuple[Manifest, Manifest]:
    pod: Manifest = {
        "runAsNonRoot": True,
        "runAsUser": config.run_as_user,
        "runAsGroup": config.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if config.fs_group is not None:
        pod["fsGroup"] = config.fs_group
    container: Manifest = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": config.read_only_root_filesystem,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return pod, container


def _env(config: KubernetesConfig, extra: Sequence[Manifest] = ()) -> list[Manifest]:
    env: list[Manifest] = [
        {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        *extra,
    ]
    env += [{"name": k, "value": str(v)} for k, v in sorted(config.env.items())]
    env += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for k, (secret, key) in sorted(config.secret_env.items())
    ]
    return env


def _volumes(config: KubernetesConfig, pipeline_root: str) -> tuple[list[Manifest], list[Manifest]]:
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {"sizeLimit": config.tmp_size_limit}
                                if config.tmp_size_limit else {}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]
    if config.pipeline_root_claim and not storage.is_url(pipeline_root):  # an object store needs no volume
        volumes.append({"name": "pipeline-root",
                        "persistentVolumeClaim": {"claimName": config.pipeline_root_claim}})
        mounts.append({"name": "pipeline-root", "mountPath": config.root_mount(pipeline_root)})
    return volumes, mounts


def pod_spec(
    config: KubernetesConfig,
    *,
    container: Manifest,
    pipeline_root: str,
    extra_volumes: Sequence[Manifest] = (),
    extra_mounts: Sequence[Manifest] = (),
    service_account: str | None = None,
    api_access: bool = False,
) -> Manifest:
    """A Job pod template's spec with headwater's security settings, volumes and scheduling options."""
    pod_security, container_security = _security(config)
    volumes, mounts = _volumes(config, pipeline_root)
    full = {
        **container,
        "securityContext": container_security,
        "volumeMounts": [*extra_mounts, *mounts],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if config.image_pull_policy:
        full["imagePullPolicy"] = config.image_pull_policy
    spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": api_access,
        "securityContext": pod_security,
        "containers": [full],
        "volumes": [*extra_volumes, *volumes],
    }
    spec.update(scheduling(config, service_account))
    return spec


def scheduling(config: KubernetesConfig, service_account: str | None) -> Manifest:
    """The pod spec fields that place a pod and let it pull: service account, node selector, tolerations,
    image pull secrets (only those the configuration sets)."""
    fields: Manifest = {}
    if service_account:
        fields["serviceAccountName"] = service_account
    if config.node_selector:
        fields["nodeSelector"] = dict(config.node_selector)
    if config.tolerations:
        fields["tolerations"] = [dict(t) for t in config.tolerations]
    if config.image_pull_secrets:
        fields["imagePullSecrets"] = [{"name": s} for s in config.image_pull_secrets]
    return fields


# ------------------------------------------------------------------------------- per-node objects
def execution_configmap(spec: ExecutionSpec, config: KubernetesConfig, owner: Manifest | None = None) -> Manifest:
    """The ConfigMap carrying the execution spec: ``spec.json`` (what the pod reads) and
    ``execution-spec.json`` (the launcher's original, for re-attaching after an orchestrator restart).
    ``owner`` (the created Job) makes it garbage-collected with the Job."""
    meta: Manifest = {
        "name": job_name(spec),
        "namespace": config.namespace,
        "labels": labels_for(spec, config),
        "annotations": _annotations(spec, config),
    }
    if owner is not None:
        meta["ownerReferences"] = [{
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {
            SPEC_KEY: json.dumps(pod_execution_spec(spec).to_json(), indent=1, sort_keys=True),
            LAUNCHER_SPEC_KEY: json.dumps(spec.to_json(), indent=1, sort_keys=True),
        },
    }


def execution_job(
    spec: ExecutionSpec,
    config: KubernetesConfig,
    *,
    resources: Resources | None = None,
    retries: int = 0,
    timeout_seconds: int | None = None,
    image: str | None = None,
    placement: Placement | None = None,
) -> Manifest:
    """The ``batch/v1`` Job running one execution: ``backoffLimit`` = the node's retries,
    ``activeDeadlineSeconds`` = its timeout (or the configured default), in the node's ``image`` (else the
    config's) and with its ``placement`` on top of the config's scheduling options."""
    from headwater.pipelines.kubernetes._placement import apply_placement

    name = job_name(spec)
    labels = labels_for(spec, config)
    image = image or config.image
    container: Manifest = {
        "name": EXECUTOR_CONTAINER,
        "image": image,
        "command": [config.python, "-m", "headwater.components.executor"],
        "args": ["--spec", posixpath.join(SPEC_DIR, SPEC_KEY),
                 "--result", result_path(spec, f"$({POD_NAME_ENV})")],
        "env": _env(config, [{"name": "HEADWATER_EXECUTION_ID", "value": str(spec.execution_id)},
                             {"name": IMAGE_ENV, "value": image}]),
    }
    if config.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in config.env_from_secrets]
    requirements = resource_requirements(effective_resources(resources, config.default_resources))
    if requirements:
        container["resources"] = requirements
    spec_volume = {"name": "execution-spec",
                   "configMap": {"name": name, "items": [{"key": SPEC_KEY, "path": SPEC_KEY}]}}
    template_spec = pod_spec(
        config, container=container, pipeline_root=spec.pipeline_root, extra_volumes=[spec_volume],
        extra_mounts=[{"name": "execution-spec", "mountPath": SPEC_DIR, "readOnly": True}],
        service_account=config.service_account,
    )
    apply_placement(template_spec, placement, resources)
    job_spec: Manifest = {
        "backoffLimit": max(0, int(retries)),
        "template": {
            "metadata": {"labels": labels, "annotations": _annotations(spec, config)},
            "spec": template_spec,
        },
    }
    deadline = timeout_seconds or config.active_deadline_seconds
    if deadline:
        job_spec["activeDeadlineSeconds"] = int(deadline)
    if config.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = int(config.ttl_seconds_after_finished)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": config.namespace, "labels": labels,
                     "annotations": _annotations(spec, config)},
        "spec": job_spec,
    }


# ------------------------------------------------------------------------------------ --detach
def executor_pod_args(config: KubernetesConfig) -> list[str]:
    """``headwater run`` options that give executor pods what ``config`` gives them (beyond namespace,
    image, claim and service account): environment, Secrets, node selector, pull policy, parallelism,
    default resources."""
    args: list[str] = []
    for key, value in sorted(config.env.items()):
        args += ["--env", f"{key}={value}"]
    for key, (secret, secret_key) in sorted(config.secret_env.items()):
        args += ["--secret-env", f"{key}={secret}:{secret_key}"]
    for secret in config.env_from_secrets:
        args += ["--env-from-secret", secret]
    for key, value in sorted(config.node_selector.items()):
        args += ["--node-selector", f"{key}={value}"]
    if config.image_pull_policy:
        args += ["--image-pull-policy", config.image_pull_policy]
    if config.max_parallel != KubernetesConfig.max_parallel:
        args += ["--max-parallel", str(config.max_parallel)]
    if config.default_resources != KubernetesConfig.default_resources:
        args.append("--no-default-resources")
        res = config.default_resources or Resources()
        for key, value in (("cpu", res.cpu), ("cpu-limit", res.cpu_limit), ("memory", res.memory),
                           ("memory-limit", res.memory_limit)):
            if value is not None:
                args += ["--default-resource", f"{key}={value}"]
    return args


def orchestrator_job(
    config: KubernetesConfig,
    *,
    pipeline_name: str,
    pipeline_file: str,
    pipeline_root: str,
    run_id: str,
    params: Mapping[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    resources: Resources | None = None,
    working_dir: str | None = None,
) -> Manifest:
    """The orchestrator as a Job: ``headwater run PIPELINE_FILE --runner kubernetes --run-id RUN_ID`` in
    the image, with the runner's ServiceAccount (API access limited by its Role) and the metadata
    connection from a Secret. A restarted orchestrator pod re-attaches to the run's Jobs.

    The options of the executor pods (environment, Secrets, node selector, ...) are passed on as command
    line options, and the orchestrator gets the same environment and Secrets itself: with an object-store
    root it reads the executors' results from the store, uploads the logs and deletes failed outputs."""
    name = f"hw-run-{_dns_label(pipeline_name, 30)}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
    labels = {
        **dict(config.labels),
        LABEL_MANAGED_BY: "headwater",
        LABEL_PIPELINE: label_value(pipeline_name),
        LABEL_RUN: label_value(run_id),
        LABEL_ROLE: "orchestrator",
    }
    annotations = {**dict(config.annotations), ANNOTATION_PREFIX + "pipeline": pipeline_name,
                   ANNOTATION_PREFIX + "run-id": run_id}
    args = ["run", pipeline_file, "--runner", "kubernetes", "--namespace", config.namespace, "--image",
            config.image, "--run-id", run_id]
    if config.pipeline_root_claim:
        args += ["--pipeline-root-claim", config.pipeline_root_claim]
    if config.service_account:
        args += ["--service-account", config.service_account]
    args += executor_pod_args(config)
    for key, value in sorted((params or {}).items()):
        args += ["--param", f"{key}={value}"]
    args += list(extra_args)
    extra_env: list[Manifest] = []
    if config.metadata_secret:
        extra_env.append({"name": "HEADWATER_METADATA", "valueFrom": {"secretKeyRef": {
            "name": config.metadata_secret, "key": config.metadata_secret_key}}})
    container: Manifest = {
        "name": RUNNER_CONTAINER,
        "image": config.image,
        "command": [config.python, "-m", "headwater.pipelines.cli"],
        "args": args,
        "env": _env(config, extra_env),
    }
    if config.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in config.env_from_secrets]
    if working_dir:
        container["workingDir"] = working_dir
    requirements = resource_requirements(resources or Resources(cpu="500m", memory="1Gi"))
    container["resources"] = requirements
    spec: Manifest = {
        "backoffLimit": config.runner_backoff_limit,
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": pod_spec(config, container=container, pipeline_root=pipeline_root,
                             service_account=config.runner_service_account, api_access=True),
        },
    }
    if config.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = int(config.ttl_seconds_after_finished)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": config.namespace, "labels": labels, "annotations": annotations},
        "spec": spec,
    }
