"""The command line for Kubernetes: options of ``headwater run ... --runner kubernetes``, and ``headwater k8s``.

``headwater run`` calls :func:`add_run_options` (its Kubernetes options) and :func:`make_runner` (for
``--runner kubernetes``); :func:`configure` fills in the ``headwater k8s`` command group. Importing this
module does not import the ``kubernetes`` client; the runner does, when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.pipelines.cli import print_help
from headwater.pipelines.cli._args import add_env_options, key_values, secret_refs
from headwater.pipelines.cli.k8s_serving import add_serving_commands

__all__ = ["DetachedRun", "DetachedRunner", "add_run_options", "config_from_args", "configure", "default_resources",
           "make_runner"]


def add_run_options(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("Kubernetes runner (with --runner kubernetes)")
    group.add_argument("--namespace", metavar="NS", help="namespace for the Jobs (default: 'default')")
    group.add_argument("--image", metavar="IMAGE",
                       help="runtime image with headwater and your pipeline code, for the nodes that name none "
                            "(node.with_image, @component(image=...))")
    group.add_argument("--detach", action="store_true",
                       help="run the orchestrator itself as a Job in the cluster and return at once")
    group.add_argument("--run-id", metavar="RUN_ID",
                       help="re-attach to this run: wait for its running Jobs instead of starting them again")
    group.add_argument("--pipeline-root-claim", metavar="PVC",
                       help="ReadWriteMany PersistentVolumeClaim holding a local pipeline root (mounted at its "
                            "path); not for a root in an object store (s3://, gs://)")
    group.add_argument("--service-account", metavar="NAME", help="service account of the executor pods")
    group.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    group.add_argument("--context", metavar="NAME", help="kubeconfig context")
    group.add_argument("--max-parallel", type=int, metavar="N", help="at most N Jobs at once (default 16)")
    group.add_argument("--image-pull-policy", choices=("Always", "IfNotPresent", "Never"))
    group.add_argument("--node-selector", action="append", default=[], metavar="KEY=VALUE",
                       help="schedule executor pods on nodes with this label (repeatable)")
    add_env_options(group, "executor pods")
    group.add_argument("--env-from-secret", action="append", default=[], metavar="SECRET",
                       help="environment variables for executor pods from every key of this Secret, e.g. "
                            "object-store credentials (repeatable)")
    group.add_argument("--default-resource", action="append", default=[], metavar="KIND=QUANTITY",
                       help="requests and limits of executor pods whose node sets none, KIND one of cpu, "
                            "cpu-limit, memory, memory-limit (repeatable; default cpu=500m, cpu-limit=2, "
                            "memory=1Gi, memory-limit=4Gi; giving a kind's request or limit replaces that kind's "
                            "default, a limit not given is the request)")
    group.add_argument("--no-default-resources", action="store_true",
                       help="no default requests and limits: a node that sets none runs without (with "
                            "--default-resource: only what those give)")
    group.add_argument("--metadata-secret", metavar="SECRET",
                       help="--detach: Secret whose key 'uri' holds the metadata connection string "
                            "(default: headwater-metadata)")


def config_from_args(args: argparse.Namespace, base: Any = None) -> Any:
    """A :class:`~headwater.pipelines.kubernetes.KubernetesConfig` from ``headwater run`` options."""
    from headwater.pipelines.kubernetes.manifests import KubernetesConfig

    config = base or KubernetesConfig()
    changes: dict[str, Any] = {}
    for attr, name in (("namespace", "namespace"), ("image", "image"), ("pipeline_root_claim", "pipeline_root_claim"),
                       ("service_account", "service_account"), ("kubeconfig", "kubeconfig"),
                       ("context", "context"), ("max_parallel", "max_parallel"),
                       ("image_pull_policy", "image_pull_policy"), ("metadata_secret", "metadata_secret")):
        value = getattr(args, name, None)
        if value is not None:
            changes[attr] = value
    selectors = key_values(getattr(args, "node_selector", []) or [], "--node-selector")
    if selectors:
        changes["node_selector"] = selectors
    env = key_values(getattr(args, "env", []) or [], "--env")
    if env:
        changes["env"] = {**dict(config.env), **env}
    secret_env = secret_refs(getattr(args, "secret_env", []) or [])
    if secret_env:
        changes["secret_env"] = {**dict(config.secret_env), **secret_env}
    defaults = default_resources(getattr(args, "default_resource", []) or [],
                                 None if getattr(args, "no_default_resources", False) else config.default_resources)
    if defaults != config.default_resources:
        changes["default_resources"] = defaults
    secrets = getattr(args, "env_from_secret", []) or []
    if secrets:
        changes["env_from_secrets"] = tuple(secrets)
    if getattr(args, "quiet", False):
        changes["console_logs"] = False
    return config.with_options(**changes)


_RESOURCE_KINDS = {"cpu": ("cpu", "cpu"), "cpu-limit": ("cpu", "cpu_limit"), "memory": ("memory", "memory"),
                   "memory-limit": ("memory", "memory_limit")}


def default_resources(items: list[str], base: Any) -> Any:
    """``--default-resource KIND=QUANTITY`` options over ``base`` (a Resources, or None): each kind given
    (CPU, memory) replaces that kind of ``base``; a limit not given is the request."""
    from headwater.components.api import Resources
    from headwater.components.errors import ParameterError
    from headwater.pipelines.kubernetes.manifests import check_resources

    given = key_values(items, "--default-resource")
    if not given:
        return base
    unknown = sorted(set(given) - set(_RESOURCE_KINDS))
    if unknown:
        raise ParameterError(f"--default-resource: unknown kind {unknown[0]!r}; use cpu, cpu-limit, memory or "
                             "memory-limit, e.g. --default-resource memory=2Gi")
    fields = dict.fromkeys(("cpu", "cpu_limit", "memory", "memory_limit"))
    if base is not None:
        fields.update(cpu=base.cpu, cpu_limit=base.cpu_limit, memory=base.memory, memory_limit=base.memory_limit)
    for kind in {_RESOURCE_KINDS[key][0] for key in given}:
        fields[kind] = fields[f"{kind}_limit"] = None
    for key, value in given.items():
        fields[_RESOURCE_KINDS[key][1]] = value
    resources = Resources(**fields)
    try:
        check_resources(resources, "--default-resource")
    except Exception as exc:
        raise ParameterError(str(exc)) from None
    return resources


def make_runner(args: argparse.Namespace) -> Any:
    """The runner for ``--runner kubernetes``: a :class:`KubernetesRunner`, or with ``--detach`` a
    :class:`DetachedRunner` that submits the orchestrator as a Job."""
    config = config_from_args(args)
    if getattr(args, "detach", False):
        extra = []
        if getattr(args, "from_node", None):
            extra += ["--from", args.from_node]
        if getattr(args, "to_node", None):
            extra += ["--to", args.to_node]
        if getattr(args, "no_cache", False):
            extra.append("--no-cache")
        return DetachedRunner(config, pipeline_file=args.pipeline_file, run_id=getattr(args, "run_id", None),
                              extra_args=tuple(extra), quiet=getattr(args, "quiet", False))
    from headwater.pipelines.kubernetes.runner import KubernetesRunner

    return KubernetesRunner(config, metadata=getattr(args, "metadata", None), quiet=getattr(args, "quiet", False),
                            run_id=getattr(args, "run_id", None))


@dataclass(frozen=True)
class DetachedRun:
    """What ``--detach`` returns: the run id and the orchestrator Job that carries it out."""

    run_id: str
    pipeline: str
    job_name: str
    namespace: str
    nodes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return True

    @property
    def failed(self) -> list[str]:
        return []


class DetachedRunner:
    """Submits ``headwater run PIPELINE_FILE --runner kubernetes --run-id ...`` as a Job (the orchestrator
    runs in the cluster; this machine can disconnect). The pipeline file must be in the image at the
    same path (relative to the image's working directory)."""

    def __init__(self, config: Any, *, pipeline_file: str, run_id: str | None = None,
                 extra_args: tuple[str, ...] = (), quiet: bool = False, api_client: Any = None,
                 working_dir: str | None = None) -> None:
        self.config = config
        self.pipeline_file = pipeline_file
        self.run_id = run_id
        self.extra_args = extra_args
        self.quiet = quiet
        self.api_client = api_client
        self.working_dir = working_dir

    def manifest(self, pipeline: Any, params: Mapping[str, Any] | None, run_id: str) -> dict[str, Any]:
        from headwater.pipelines.kubernetes.manifests import orchestrator_job

        config = self.config
        if config.metadata_secret is None:
            config = config.with_options(metadata_secret="headwater-metadata")
        return orchestrator_job(
            config, pipeline_name=pipeline.name, pipeline_file=self.pipeline_file, pipeline_root=pipeline.root,
            run_id=run_id, params=params, extra_args=self.extra_args, working_dir=self.working_dir,
        )

    def run(self, pipeline: Any, params: Mapping[str, Any] | None = None, **kwargs: Any) -> DetachedRun:
        from headwater.components.errors import RunnerError
        from headwater.pipelines.kubernetes._api import load_api_client
        from headwater.pipelines.kubernetes.manifests import check_pipeline_root
        from headwater.pipelines.runner import new_run_id

        pipeline.resolve_params(params)  # refuse unknown or ill-typed parameters here, not in the cluster
        check_pipeline_root(pipeline.root, self.config)  # and a root the pods could not reach
        run_id = kwargs.get("run_id") or self.run_id or new_run_id()
        manifest = self.manifest(pipeline, params, run_id)
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self.api_client if self.api_client is not None else load_api_client(self.config)
        try:
            client.BatchV1Api(api).create_namespaced_job(self.config.namespace, manifest, _preload_content=False)
        except ApiException as exc:
            raise RunnerError(
                f"could not submit the orchestrator Job {manifest['metadata']['name']} in namespace "
                f"{self.config.namespace!r}: {exc.status} {exc.reason}; apply deploy/ first (ServiceAccount "
                "'headwater-runner' and its Role)", run_id=run_id,
            ) from exc
        finally:
            if self.api_client is None:
                api.close()
        name = manifest["metadata"]["name"]
        if not self.quiet:
            print(f"headwater: run {run_id} submitted as Job {name} in namespace {self.config.namespace!r}\n"
                  f"  follow it:   kubectl -n {self.config.namespace} logs -f job/{name}\n"
                  f"  progress:    headwater runs show {run_id}", file=sys.stderr, flush=True)
        return DetachedRun(run_id, pipeline.name, name, self.config.namespace)


# ------------------------------------------------------------------------------ headwater k8s
def configure(k8s: argparse.ArgumentParser) -> None:
    """``headwater k8s manifests``: print or write what a cluster needs (the content of deploy/);
    ``headwater k8s dockerfile``: a Dockerfile for a component image; ``headwater k8s rollout|promote|rollback|
    status``: TF Serving for a push destination, with a canary (see :mod:`.k8s_serving`)."""
    k8s.description = ("Kubernetes: the manifests a cluster needs, Dockerfiles of component images, and serving "
                       "pushed models with TF Serving (rollout with a canary, promote, rollback, status).")
    k8s_sub = k8s.add_subparsers(dest="k8s_command", metavar="SUBCOMMAND")
    manifests = k8s_sub.add_parser(
        "manifests", help="print the cluster manifests (namespace, RBAC, PVC, metadata database)",
        description="Print (or write) the manifests a cluster needs once: Namespace, ServiceAccounts, a Role "
                    "limited to what the runner does, its RoleBinding, a ReadWriteMany PVC for the pipeline "
                    "root (with --object-store: a Secret for S3 credentials instead), and optionally MariaDB "
                    "or PostgreSQL for ML Metadata.")
    manifests.add_argument("--namespace", default="headwater")
    manifests.add_argument("--database", choices=("mariadb", "postgresql", "none"), default="mariadb")
    manifests.add_argument("--storage-size", default="20Gi", help="size of the pipeline-root volume")
    manifests.add_argument("--storage-class", help="storage class offering ReadWriteMany (e.g. nfs-client)")
    manifests.add_argument("--object-store", action="store_true",
                           help="the pipeline root is in an object store (s3://): no PVC, but a Secret "
                                "'headwater-object-store' with placeholder S3 credentials to fill in (give it "
                                "to the pods with --env-from-secret headwater-object-store)")
    manifests.add_argument("--object-store-endpoint", metavar="URL",
                           help="with --object-store: AWS_ENDPOINT_URL of an S3-compatible store that is not "
                                "AWS, e.g. http://minio.storage:9000")
    manifests.add_argument("--database-only", action="store_true",
                           help="only the metadata database (Secret, Service, StatefulSet)")
    manifests.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    manifests.set_defaults(func=_cmd_manifests)
    _add_dockerfile(k8s_sub)
    add_serving_commands(k8s_sub)
    k8s.set_defaults(func=lambda a: print_help(k8s))


def _add_dockerfile(k8s_sub: Any) -> None:
    dockerfile = k8s_sub.add_parser(
        "dockerfile", help="write a Dockerfile for the image of a set of components (pinned dependencies)",
        description="Write a Dockerfile for a component image, built from the headwater source tree: headwater "
                    "with the extras the components need (core: the runners and metadata only; ml: TensorFlow, "
                    "tf.Transform, TFMA, Beam, pyarrow; ui: the dashboard), each dependency pinned to the version in "
                    "constraints.txt. "
                    "--cuda installs tensorflow[and-cuda] for GPU training.")
    dockerfile.add_argument("--component", action="append", default=[], metavar="NAME",
                            help="a component the image runs: a built-in (Ingest, Transform, Train, Evaluate, "
                                 "Push, ...) or MODULE:FUNCTION (repeatable); the extras follow from what it imports")
    from headwater.pipelines.kubernetes.dockerfile import EXTRAS

    dockerfile.add_argument("--extra", action="append", default=[], choices=EXTRAS,
                            help="headwater extras to install (repeatable; default: what --component needs, else ml)")
    dockerfile.add_argument("--package", action="append", default=[], metavar="NAME",
                            help="one more package, at its constraints.txt version (repeatable), e.g. pyarrow for "
                                 "a core image that reaches an object store")
    dockerfile.add_argument("--cuda", action="store_true",
                            help="GPU training: tensorflow[and-cuda] at the pinned TensorFlow version")
    dockerfile.add_argument("--base", metavar="IMAGE", help="base image (default python:3.11-slim)")
    dockerfile.add_argument("--source", metavar="DIR",
                            help="the headwater source tree (default: the current directory, else this installation's)")
    dockerfile.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    dockerfile.set_defaults(func=_cmd_dockerfile)


def _component_extras(names: list[str]) -> tuple[str, ...]:
    import importlib

    import headwater.components as builtins
    from headwater.components.api import Component
    from headwater.components.errors import RunnerError
    from headwater.pipelines.kubernetes.dockerfile import extras_for

    found = []
    for name in names:
        module, _, attr = name.rpartition(":")
        try:
            obj = getattr(importlib.import_module(module), attr) if module else getattr(builtins, attr, None)
        except ImportError as exc:
            raise RunnerError(f"--component {name!r}: module {module!r} cannot be imported ({exc})") from None
        if not isinstance(obj, Component):
            raise RunnerError(f"--component {name!r} is not a component; give a built-in name (Ingest, Train, "
                              "Push, ...) or MODULE:FUNCTION of an @component")
        found.append(obj.spec.warm_imports)
    return extras_for(found)


def _cmd_dockerfile(args: argparse.Namespace) -> int:
    from headwater.components.errors import RunnerError
    from headwater.pipelines.kubernetes.dockerfile import BASE_IMAGE, DockerfileSpec, render_dockerfile, source_tree

    try:
        extras = tuple(dict.fromkeys(args.extra or (_component_extras(args.component) if args.component else ("ml",))))
        if args.cuda and "ml" not in extras:
            raise RunnerError("--cuda installs TensorFlow for GPUs, which only the ml extra has: add --extra ml "
                              "(or a component that uses TensorFlow)")
        command = "headwater k8s dockerfile " + " ".join(
            [*(f"--component {c}" for c in args.component), *(f"--extra {e}" for e in extras),
             *(f"--package {p}" for p in args.package), *(["--cuda"] if args.cuda else []),
             *([f"--base {args.base}"] if args.base else [])])
        spec = DockerfileSpec(extras=extras, packages=tuple(args.package), cuda=args.cuda,
                              base=args.base or BASE_IMAGE, command=command)
        text = render_dockerfile(spec, source_tree(Path(args.source)) if args.source else None)
    except RunnerError as exc:
        print(f"headwater: error: {exc}", file=sys.stderr)
        return 2
    what = f"extras {', '.join(extras)}{' with CUDA' if args.cuda else ''}"
    if args.output:
        Path(args.output).write_text(text)
        print(f"headwater: wrote a Dockerfile ({what}) to {args.output}; build it from the headwater source "
              f"tree: docker build -f {args.output} -t REGISTRY/NAME:TAG .", file=sys.stderr)
    else:
        sys.stdout.write(text)
        print(f"headwater: wrote a Dockerfile ({what})", file=sys.stderr)
    return 0


def _cmd_manifests(args: argparse.Namespace) -> int:
    from headwater.pipelines.kubernetes.deploy import deploy_manifests, to_yaml

    options = {"storage_size": args.storage_size, "storage_class": args.storage_class,
               "object_store": args.object_store or bool(args.object_store_endpoint),
               "object_store_endpoint": args.object_store_endpoint}
    docs = deploy_manifests(args.namespace, database=None if args.database == "none" else args.database, **options)
    if args.database_only:
        docs = docs[len(deploy_manifests(args.namespace, database=None, **options)):]
    text = to_yaml(docs)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(docs)} manifests to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
