"""Compile a pipeline for Kubeflow Pipelines: a KFP v2 pipeline spec (the IR YAML KFP 2.x uploads).

::

    spec = compile_kfp(pipeline, image="registry.example/headwater:0.1.0",
                       pipeline_root="gs://bucket/headwater/penguin")
    compile_kfp_package(pipeline, image=...).write("pipeline.yaml")   # what `headwater compile` writes

Every node becomes a container task, in the node's image (``with_image``/``@component(image=)``, else
``image``), running the same entrypoint,
``python -m headwater.pipelines.kfp_task``, which runs the headwater launcher for that node (see
:mod:`headwater.pipelines.kfp.task` and docs/kfp.md). What the compiled spec holds:

* ``root.inputDefinitions.parameters``: the pipeline's runtime parameters, typed, with their defaults, so
  the KFP UI pre-fills them; every task receives all of them (they are recorded on the run);
* one task per node, ``dependentTasks`` following the DAG; one executor per distinct (image, placement,
  resources, deadline), shared by its tasks (:mod:`headwater.pipelines.kfp._executors`): the node id and
  output-parameter requests are task input parameters, the plan is the whole pipeline's; artifacts do not
  travel as KFP artifacts — they stay under headwater's pipeline root and in ML Metadata, and each task
  resolves its inputs there by run id (the KFP run's id, ``{{$.pipeline_job_uuid}}``);
* per-task resources (``resourceCpuRequest``/``Limit``, memory, ``nvidia.com/gpu`` accelerator), the
  retry policy from ``.with_retries()``, and ``cachingOptions.enableCache: false`` (KFP's cache cannot
  see headwater's cache key — input data fingerprints, code — so headwater's own cache decides, inside
  the task, and records CACHED executions as a local run does);
* a node gated on a model blessing (a component with a skip rule that takes a ``ModelBlessing`` input,
  such as Push) runs under ``triggerPolicy.condition`` on the producer's ``blessed`` output parameter; a
  twin task ``<node>-not-blessed`` runs on the opposite condition and records the skip (``pushed=0``),
  so ML Metadata tells the same story as a local run either way;
* data gates (Validate, :mod:`headwater.pipelines.gates`): the tasks consuming the data a gate checked,
  and every task after them, depend on the gate and run under a condition on its ``passed`` output
  parameter, so nothing after a blocking anomaly runs;
* a second YAML document (KFP's Kubernetes platform spec) takes the metadata connection from a Secret
  into ``HEADWATER_METADATA``, mounts the volume holding the pipeline root, if any, and places each task
  (node selector, tolerations, node-pool affinity: :mod:`headwater.pipelines.kfp._placement`);
* for a root in an object store, what the tasks need to reach it: ``env`` (e.g. ``AWS_ENDPOINT_URL`` of
  KFP's own MinIO) in the container spec, ``secret_env`` (the keys) as more ``secretAsEnv`` entries.

No part of the ``kfp`` SDK is needed: the output is plain data.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.components import storage
from headwater.components._contract import IMAGE_ENV, headwater_version
from headwater.components.api import Channel, Node
from headwater.components.placement import image_problem
from headwater.metadata.conventions import A_BLESSED
from headwater.metadata.errors import MetadataError
from headwater.pipelines.errors import PipelineDefinitionError
from headwater.pipelines.gates import GATE_PROPERTY, downstream_gates, gate_output
from headwater.pipelines.kfp._executors import ExecutorTable
from headwater.pipelines.kfp._placement import platform_placement
from headwater.pipelines.kfp._resources import container_resources
from headwater.pipelines.pipeline import Pipeline
from headwater.pipelines.plan import param_type_name, pipeline_to_plan

__all__ = [
    "DEFAULT_METADATA_SECRET",
    "DEFAULT_MOUNT_PATH",
    "KfpOptions",
    "KfpPackage",
    "blessing_gates",
    "compile_kfp",
    "compile_kfp_package",
]

SCHEMA_VERSION = "2.1.0"
TASK_MODULE = "headwater.pipelines.kfp_task"  # compiled specs hold it: a thin module there runs kfp/task.py
DEFAULT_METADATA_SECRET = "headwater-metadata"
DEFAULT_MOUNT_PATH = "/mnt/headwater"
RUN_ID_INPUT = "headwater-run-id"
RUN_NAME_INPUT = "headwater-run-name"
NODE_INPUT = "headwater-node"
OUTPUTS_INPUT = "headwater-output-parameters"
BLESSING_TYPE = "ModelBlessing"
#: Blessings that gate a node under KFP: the evaluation's, and InfraValidate's (same ``blessed`` property).
BLESSING_TYPES = (BLESSING_TYPE, "InfraBlessing")
NOT_BLESSED_SUFFIX = "-not-blessed"
#: Seconds a task's pod may run past the node's own timeout (MLMD work, image start) before Kubernetes
#: stops it: a backstop; the task enforces the node timeout on the executor itself.
DEADLINE_GRACE_S = 300

_KFP_TYPES = {"int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE", "str": "STRING", "bool": "BOOLEAN",
              "list": "LIST", "dict": "STRUCT"}
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


@dataclass(frozen=True)
class KfpOptions:
    """How to compile: the image every task runs, where artifacts and metadata live in the cluster.

    ``pipeline_root`` defaults to the pipeline's root. ``pipeline_root_claim`` names a ReadWriteMany
    PersistentVolumeClaim mounted in every task at ``pipeline_root_mount`` — by default the root's own
    path, as the Kubernetes runner does; a relative root is placed under ``/mnt/headwater``.
    ``metadata_secret`` names a Secret whose key ``metadata_secret_key`` holds the metadata connection
    string (``None``: no Secret; the tasks then use the pipeline's ``metadata`` or the SQLite file under the
    root). ``env`` (name → value) and ``secret_env`` (name → (Secret, key)) are environment variables of
    every task — and of its executor — e.g. the endpoint and credentials of an object-store root.
    """

    image: str
    pipeline_root: str | None = None
    metadata_secret: str | None = DEFAULT_METADATA_SECRET
    metadata_secret_key: str = "uri"
    pipeline_root_claim: str | None = None
    pipeline_root_mount: str | None = None
    image_pull_policy: str | None = None
    python: str = "python"
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class KfpPackage:
    """A compiled pipeline: the pipeline spec, the Kubernetes platform spec (or None) and notes."""

    pipeline_spec: dict[str, Any]
    platform_spec: dict[str, Any] | None
    warnings: tuple[str, ...] = ()
    header: str = ""
    task_names: Mapping[str, str] = field(default_factory=dict)

    def to_yaml(self) -> str:
        """The file KFP uploads: a header comment, the pipeline spec, then (``---``) the platform spec."""
        import yaml

        class Dumper(yaml.SafeDumper):
            def ignore_aliases(self, data: Any) -> bool:  # write every value out: no &anchors / *aliases
                return True

        def dump(doc: Mapping[str, Any]) -> str:
            # Keys sorted as KFP writes them; long strings (the plan) stay on one line.
            return str(yaml.dump(dict(doc), Dumper=Dumper, sort_keys=True, default_flow_style=False,
                                 width=1 << 30, allow_unicode=True))

        text = self.header + dump(self.pipeline_spec)
        if self.platform_spec:
            text += "---\n" + dump(self.platform_spec)
        return text

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_yaml())
        return target


def blessing_gates(pipeline: Pipeline) -> dict[str, list[tuple[str, str]]]:
    """Nodes gated on a blessing: ``{node: [(producer node, blessing output key), ...]}``.

    A node is gated when its component declares a skip rule (``skip_if``, as Push does) and it takes a
    ``ModelBlessing`` (or ``InfraBlessing``) input: the skip rule is what decides from the blessing, and
    under KFP the blessing's ``blessed`` property also decides, as a task condition, whether the task runs.
    """
    gates: dict[str, list[tuple[str, str]]] = {}
    for node_id in pipeline.topological_order():
        node = pipeline.node(node_id)
        comp = node.component
        if comp.skip_if is None or not _gated_by_blessing(node):
            continue
        for key, ispec in sorted(comp.spec.inputs.items()):
            if ispec.type.TYPE_NAME not in BLESSING_TYPES or key not in node.inputs:
                continue
            bound = node.inputs[key]
            for ch in bound if isinstance(bound, list) else [bound]:
                if isinstance(ch, Channel):
                    gates.setdefault(node_id, []).append((ch.producer, ch.key))
    return gates


def _gated_by_blessing(node: Node) -> bool:
    """Whether the node's skip rule would skip it for a blessing that does not bless, given the node's own
    parameters: asked of the rule itself, so a node that opens its gate (``BatchPredict(...,
    require_blessing=False)``) is not made conditional. A parameter given as a runtime ``Param`` is not
    known here: the node stays gated (a run can never use an unblessed model by a parameter KFP did not see)."""
    comp = node.component
    assert comp.skip_if is not None
    inputs = {key: [ispec.type(custom_properties={A_BLESSED: 0} if ispec.type.TYPE_NAME in BLESSING_TYPES else None)]
              for key, ispec in comp.spec.inputs.items() if key in node.inputs}
    try:
        return comp.skip_if(inputs, dict(node.parameters)) is not None
    except Exception:  # a rule that needs more than the probe gives: keep the gate
        return True


def task_name(node_id: str) -> str:
    """KFP task names: lowercase letters, digits and '-' (as the KFP SDK makes them)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", node_id.lower())).strip("-")


def _placeholder(name: str) -> str:
    return "{{$.inputs.parameters['" + name + "']}}"


def _resolve_root(pipeline: Pipeline, opts: KfpOptions, problems: list[str],
                  warnings: list[str]) -> tuple[str, str | None]:
    """The pipeline root as tasks see it, and where the root's volume is mounted (None: no volume)."""
    root = opts.pipeline_root or pipeline.root
    claim = opts.pipeline_root_claim
    if "://" in root and not root.startswith("file://"):
        if claim:
            problems.append(f"--pipeline-root-claim {claim!r} holds a local root, but the root {root!r} is an "
                            "object store; drop one of them")
        return root, None  # object store: every task reaches it
    path = root[len("file://"):] if root.startswith("file://") else root
    if not posixpath.isabs(path):
        if claim:
            mount = posixpath.normpath(opts.pipeline_root_mount or DEFAULT_MOUNT_PATH)
            return posixpath.normpath(posixpath.join(mount, path)), mount
        problems.append(
            f"pipeline root {root!r} is a relative local path; under KFP every task is a separate pod, so the "
            "root must be shared: pass --pipeline-root gs://bucket/path (or s3://...), or --pipeline-root-claim "
            "PVC to mount a ReadWriteMany volume that holds it"
        )
        return root, None
    if claim:
        mount = posixpath.normpath(opts.pipeline_root_mount or path)
        if path != mount and not path.startswith(mount.rstrip("/") + "/"):
            problems.append(
                f"pipeline root {root!r} is not under the volume mount path {mount!r}; use a root under it "
                "or change --pipeline-root-mount"
            )
        return path, mount
    warnings.append(
        f"pipeline root {root!r} is a local path and no volume is mounted (--pipeline-root-claim): every task "
        "must see the same directory there, or artifacts written by one task are missing in the next"
    )
    return path, None


def _check_env(opts: KfpOptions, problems: list[str]) -> None:
    for name in [*opts.env, *opts.secret_env]:
        if name == "HEADWATER_METADATA":
            problems.append("the tasks get HEADWATER_METADATA from the metadata Secret: pass --metadata-secret "
                            "NAME[:KEY], not --env/--secret-env HEADWATER_METADATA")
        elif not _ENV_NAME.match(name):
            problems.append(f"{name!r} is not a valid environment variable name")
    for name, ref in opts.secret_env.items():
        if len(ref) != 2 or not all(ref):
            problems.append(f"secret_env {name!r}: {ref!r} is not (secret name, key)")


def _metadata(pipeline: Pipeline, opts: KfpOptions, problems: list[str], warnings: list[str],
              root: str = "") -> str | None:
    """The connection string the plan may carry (never one with a password)."""
    from headwater.metadata.connection import parse_connection, redact

    uri = pipeline.metadata
    if uri:
        try:
            has_password = parse_connection(uri).password is not None
        except MetadataError as exc:
            problems.append(str(exc))
            return None
        if has_password:
            if not opts.metadata_secret:
                problems.append(
                    f"the pipeline's metadata connection {redact(uri)!r} holds a password, which must not be "
                    "written into the compiled spec; put the connection string into a Kubernetes Secret and "
                    "pass --metadata-secret NAME"
                )
            return None
        return uri
    if not opts.metadata_secret and storage.is_url(root):
        warnings.append(
            f"no metadata Secret and no metadata connection in the pipeline, and the root {root!r} is in an "
            "object store, where no SQLite store can live: every task fails unless its pod gets "
            "HEADWATER_METADATA some other way; pass --metadata-secret NAME[:KEY]"
        )
    elif not opts.metadata_secret:
        warnings.append(
            "no metadata Secret and no metadata connection in the pipeline: tasks will use SQLite under the "
            "pipeline root; concurrent tasks on shared storage need MySQL/MariaDB or PostgreSQL"
        )
    return None


def compile_kfp_package(
    pipeline: Pipeline,
    *,
    image: str,
    pipeline_root: str | None = None,
    metadata_secret: str | None = DEFAULT_METADATA_SECRET,
    metadata_secret_key: str = "uri",
    pipeline_root_claim: str | None = None,
    pipeline_root_mount: str | None = None,
    image_pull_policy: str | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, tuple[str, str]] | None = None,
) -> KfpPackage:
    """Compile ``pipeline`` for KFP; see the module docstring. Raises PipelineDefinitionError listing every
    reason the pipeline cannot be compiled (bad resources, a root tasks cannot share, ...)."""
    opts = KfpOptions(image, pipeline_root, metadata_secret, metadata_secret_key, pipeline_root_claim,
                      pipeline_root_mount, image_pull_policy, env=dict(env or {}), secret_env=dict(secret_env or {}))
    return _Compiler(pipeline, opts).build()


def compile_kfp(
    pipeline: Pipeline,
    *,
    image: str,
    pipeline_root: str | None = None,
    metadata_secret: str | None = DEFAULT_METADATA_SECRET,
    metadata_secret_key: str = "uri",
    pipeline_root_claim: str | None = None,
    pipeline_root_mount: str | None = None,
    image_pull_policy: str | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The KFP v2 pipeline spec of ``pipeline`` (the PipelineSpec proto as a dict, as KFP's YAML holds it).

    The Kubernetes platform spec (metadata Secret, volume) is in :func:`compile_kfp_package`.
    """
    return compile_kfp_package(
        pipeline, image=image, pipeline_root=pipeline_root, metadata_secret=metadata_secret,
        metadata_secret_key=metadata_secret_key, pipeline_root_claim=pipeline_root_claim,
        pipeline_root_mount=pipeline_root_mount,
        image_pull_policy=image_pull_policy, env=env, secret_env=secret_env,
    ).pipeline_spec


class _Compiler:
    def __init__(self, pipeline: Pipeline, opts: KfpOptions) -> None:
        self.pipeline = pipeline
        self.opts = opts
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.mount: str | None = None

    def build(self) -> KfpPackage:
        pipeline, opts = self.pipeline, self.opts
        problems = self.problems
        if not opts.image:
            problems.append("no image: pass the runtime image every task runs (--image REGISTRY/headwater:TAG)")
        elif image_problem(opts.image):
            problems.append(f"--image: {image_problem(opts.image)}")
        if opts.image_pull_policy and opts.image_pull_policy not in _PULL_POLICIES:
            problems.append(f"image pull policy {opts.image_pull_policy!r} is not one of {', '.join(_PULL_POLICIES)}")
        root, self.mount = _resolve_root(pipeline, opts, problems, self.warnings)
        metadata = _metadata(pipeline, opts, problems, self.warnings, root)
        _check_env(opts, problems)
        params = self._root_parameters()
        order = pipeline.topological_order()
        names = self._task_names(order)
        gates = blessing_gates(pipeline)
        gate_params = self._gate_parameters(gates)
        data = downstream_gates(pipeline)  # data gates (Validate): their consumers and what follows them
        graph = {
            "nodes": {n: sorted(pipeline.upstream(n)) for n in order},
            "gates": {n: [list(g) for g in gs] for n, gs in gates.items()},
        }
        if data:
            graph["data_gates"] = data
        for node_id in order:
            container_resources(node_id, pipeline.node(node_id).resources, problems)
        self._check_local_paths(order)
        if problems:
            raise PipelineDefinitionError(pipeline.name, [f"cannot compile for Kubeflow Pipelines: {p}"
                                                          for p in problems])
        components: dict[str, Any] = {}
        table = ExecutorTable()
        tasks: dict[str, Any] = {}
        # One command for every task: what differs per task is in its input parameters; the plan is the
        # whole pipeline's (a task keeps its node and the node's ancestors).
        plan = pipeline_to_plan(pipeline, root=root, metadata=metadata)
        plan["graph"] = graph
        args = ["--node", _placeholder(NODE_INPUT), "--run-id", _placeholder(RUN_ID_INPUT),
                "--run-name", _placeholder(RUN_NAME_INPUT)]
        for pname in params:
            args += ["--param", f"{pname}={_placeholder(pname)}"]
        args += ["--output-parameters", _placeholder(OUTPUTS_INPUT), "--executor-input", "{{$}}",
                 "--plan", json.dumps(plan, separators=(",", ":"))]
        for node_id in order:
            node = pipeline.node(node_id)
            name = names[node_id]
            comp_name = f"comp-{name}"
            inputs: dict[str, Any] = {
                NODE_INPUT: {"parameterType": "STRING", "description": "the node this task runs"},
                RUN_ID_INPUT: {"parameterType": "STRING", "description": "the run id (the KFP run's id)"},
                RUN_NAME_INPUT: {"parameterType": "STRING", "description": "the KFP run's display name"},
                OUTPUTS_INPUT: {"parameterType": "STRING",
                                "description": "output parameters to write: JSON {name: output.property}"},
            }
            # Output parameters this task writes: {name: "output.property"} (blessings, and a data gate's verdict).
            outputs = {pname: f"{key}.blessed" for (producer, key), pname in gate_params.items() if producer == node_id}
            if any(node_id in gs for gs in data.values()):
                outputs[GATE_PROPERTY] = f"{gate_output(pipeline, node_id)}.{GATE_PROPERTY}"
            task_inputs: dict[str, Any] = {
                NODE_INPUT: {"runtimeValue": {"constant": node_id}},
                RUN_ID_INPUT: {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}},
                RUN_NAME_INPUT: {"runtimeValue": {"constant": "{{$.pipeline_job_name}}"}},
                OUTPUTS_INPUT: {"runtimeValue": {"constant": json.dumps(dict(sorted(outputs.items())),
                                                                    separators=(",", ":"))}},
            }
            for pname, pdef in params.items():
                inputs[pname] = {"parameterType": pdef["parameterType"]}
                task_inputs[pname] = {"componentInputParameter": pname}
            component: dict[str, Any] = {"inputDefinitions": {"parameters": inputs}}
            if outputs:
                component["outputDefinitions"] = {
                    "parameters": {pname: {"parameterType": "BOOLEAN"} for pname in sorted(outputs)}
                }
            passed = []
            for gate in data.get(node_id, []):
                channel = f"pipelinechannel--{names[gate]}-{GATE_PROPERTY}"
                inputs[channel] = {"parameterType": "BOOLEAN"}
                task_inputs[channel] = {"taskOutputParameter": {"producerTask": names[gate],
                                                                "outputParameterKey": GATE_PROPERTY}}
                passed.append(f"inputs.parameter_values['{channel}'] == true")
            conditions = []
            for producer, key in gates.get(node_id, []):
                pname = gate_params[(producer, key)]
                channel = f"pipelinechannel--{names[producer]}-{pname}"
                inputs[channel] = {"parameterType": "BOOLEAN"}
                task_inputs[channel] = {"taskOutputParameter": {"producerTask": names[producer],
                                                                "outputParameterKey": pname}}
                conditions.append(f"inputs.parameter_values['{channel}'] == true")
            image = node.effective_image or opts.image
            container: dict[str, Any] = {
                "image": image,
                "command": [opts.python, "-m", TASK_MODULE],
                "args": list(args),
                "env": [{"name": k, "value": str(v)} for k, v in sorted({**opts.env, IMAGE_ENV: image}.items())],
            }
            resources = container_resources(node_id, node.resources, [])
            if resources:
                container["resources"] = resources
            config = {**self._platform_config(node.timeout_seconds), **platform_placement(node, self.warnings)}
            component["executorLabel"] = table.label(container, config)
            components[comp_name] = component
            task: dict[str, Any] = {
                "taskInfo": {"name": name},
                "componentRef": {"name": comp_name},
                "cachingOptions": {"enableCache": False},
                "inputs": {"parameters": task_inputs},
            }
            deps = sorted({names[u] for u in pipeline.upstream(node_id)} | {names[g] for g in data.get(node_id, [])})
            if deps:
                task["dependentTasks"] = deps
            if node.retries:
                task["retryPolicy"] = {"maxRetryCount": node.retries, "backoffDuration": "0s",
                                       "backoffFactor": 2.0, "backoffMaxDuration": "3600s"}
            if conditions:
                condition = " && ".join(conditions)
                tasks[name] = {**task, "triggerPolicy": {"condition": " && ".join([*passed, condition])}}
                twin = f"{name}{NOT_BLESSED_SUFFIX}"
                tasks[twin] = {**copy.deepcopy(task), "taskInfo": {"name": twin},
                               "triggerPolicy": {"condition": " && ".join([*passed, f"!({condition})"])}}
            elif passed:
                tasks[name] = {**task, "triggerPolicy": {"condition": " && ".join(passed)}}
            else:
                tasks[name] = task
        spec: dict[str, Any] = {
            "pipelineInfo": {"name": task_name(pipeline.name) or "pipeline"},
            "root": {"dag": {"tasks": tasks}},
            "components": components,
            "deploymentSpec": {"executors": table.executors},
            "schemaVersion": SCHEMA_VERSION,
            "sdkVersion": f"headwater-{headwater_version()}",
        }
        if pipeline.description:
            spec["pipelineInfo"]["description"] = pipeline.description
        if params:
            spec["root"]["inputDefinitions"] = {"parameters": params}
        platform = table.platform
        platform_spec = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": platform}}}} if platform else None
        return KfpPackage(spec, platform_spec, tuple(self.warnings), self._header(params, root), names)

    # ------------------------------------------------------------------ pieces
    def _root_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for p in self.pipeline.runtime_parameters.values():
            kind = param_type_name(p)
            if not _PARAM_NAME.match(p.name):
                self.problems.append(
                    f"runtime parameter {p.name!r}: KFP parameter names are letters, digits, '_' and '.', "
                    "starting with a letter or '_'; rename it"
                )
                continue
            if kind is None:
                self.problems.append(
                    f"runtime parameter {p.name!r} has no usable type ({p.type!r}); give it a default or "
                    "type=int|float|str|bool|list|dict"
                )
                continue
            entry: dict[str, Any] = {"parameterType": _KFP_TYPES[kind]}
            if p.default is not None:
                entry["defaultValue"] = p.default
                entry["isOptional"] = True
            if p.description:
                entry["description"] = p.description
            params[p.name] = entry
        return params

    def _task_names(self, order: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        taken: dict[str, str] = {}
        for node_id in order:
            name = task_name(node_id)
            for candidate in (name, f"{name}{NOT_BLESSED_SUFFIX}"):
                if candidate in taken:
                    self.problems.append(
                        f"nodes {taken[candidate]!r} and {node_id!r} both become KFP task {candidate!r} (task names "
                        "are lowercase, '_' becomes '-'); give one of them another id with .with_id()"
                    )
            taken[name] = node_id
            taken[f"{name}{NOT_BLESSED_SUFFIX}"] = node_id
            names[node_id] = name
        return names

    def _gate_parameters(self, gates: Mapping[str, list[tuple[str, str]]]) -> dict[tuple[str, str], str]:
        """The output parameter name of each gating blessing: ``blessed`` (``<output>-blessed`` if several)."""
        keys: dict[str, set[str]] = {}
        for gs in gates.values():
            for producer, key in gs:
                keys.setdefault(producer, set()).add(key)
        return {
            (producer, key): "blessed" if len(ks) == 1 else f"{key}-blessed"
            for producer, ks in keys.items() for key in sorted(ks)
        }

    def _check_local_paths(self, order: list[str]) -> None:
        """Warn about parameters naming files of this machine: tasks read them inside the image or volume."""
        mount = self.mount
        for node_id in order:
            for pname, value in sorted(self.pipeline.node(node_id).parameters.items()):
                if not isinstance(value, str) or not posixpath.isabs(value) or not os.path.exists(value):
                    continue
                if mount and (value == mount or value.startswith(mount + "/")):
                    continue
                self.warnings.append(
                    f"node {node_id!r}: parameter {pname!r} is the local path {value!r}; every task reads it "
                    "inside its container, so the image (or a mounted volume) must hold it at that very path"
                )

    def _platform_config(self, timeout: int | None) -> dict[str, Any]:
        opts = self.opts
        config: dict[str, Any] = {}
        secrets: dict[str, list[dict[str, str]]] = {}
        if opts.metadata_secret:
            secrets[opts.metadata_secret] = [{"secretKey": opts.metadata_secret_key, "envVar": "HEADWATER_METADATA"}]
        for var, (secret, key) in sorted(opts.secret_env.items()):
            secrets.setdefault(secret, []).append({"secretKey": key, "envVar": var})
        if secrets:
            config["secretAsEnv"] = [{"secretName": name, "keyToEnv": keys} for name, keys in secrets.items()]
        if opts.pipeline_root_claim and self.mount:
            config["pvcMount"] = [{"constant": opts.pipeline_root_claim, "mountPath": self.mount}]
        if opts.image_pull_policy:
            config["imagePullPolicy"] = opts.image_pull_policy
        if timeout:
            config["activeDeadlineSeconds"] = str(int(timeout) + DEADLINE_GRACE_S)
        return config

    def _header(self, params: Mapping[str, Any], root: str) -> str:
        lines = ["# PIPELINE DEFINITION", f"# Name: {task_name(self.pipeline.name) or 'pipeline'}"]
        if self.pipeline.description:
            lines.append(f"# Description: {self.pipeline.description.splitlines()[0]}")
        if params:
            lines.append("# Inputs:")
            for pname, pdef in params.items():
                kind = next(k for k, v in _KFP_TYPES.items() if v == pdef["parameterType"])
                default = f" [Default: {pdef['defaultValue']!r}]" if "defaultValue" in pdef else ""
                lines.append(f"#    {pname}: {kind}{default}")
        lines.append(f"# Compiled by headwater {headwater_version()} from pipeline {self.pipeline.name!r}; "
                     f"pipeline root {root}")
        lines.append(f"# Every task runs `python -m {TASK_MODULE}` (the headwater launcher for one node).")
        return "\n".join(lines) + "\n"
