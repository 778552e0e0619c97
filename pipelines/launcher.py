"""The launcher: one node's lifecycle, shared by every runner, and the only code that writes MLMD.

resolve inputs → cache key → cache lookup → register the execution RUNNING with INPUT events →
allocate output URIs ``<root>/<node_id>/<output_key>/<execution_id>/`` → (the runner's backend runs
the executor) → publish COMPLETE (outputs LIVE + OUTPUT events, one transaction) | FAILED | CACHED.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.components import storage
from headwater.components._fingerprint import code_fingerprint_parts
from headwater.components.api import Component, Node, Param, ResolverContext
from headwater.components.errors import ExecutionError
from headwater.components.executor import ExecutionSpec, ExecutorResult
from headwater.metadata.artifact import Artifact, ArtifactState
from headwater.metadata.conventions import (
    CONTEXT_CACHE,
    CONTEXT_NODE,
    CONTEXT_PIPELINE,
    CONTEXT_RUN,
    EVENT_INPUT,
    EVENT_INTERNAL_OUTPUT,
    EVENT_OUTPUT,
    P_ATTEMPTS,
    P_CACHE_KEY,
    P_CACHED_FROM,
    P_CODE,
    P_CODE_FALLBACK,
    P_DURATION,
    P_ERROR,
    P_ERROR_TYPE,
    P_LOG,
    P_NODE,
    P_OWNER,
    P_PEAK_RSS,
    P_PEAK_RSS_CHILDREN,
    P_RESOLVER_INPUTS,
    P_RUN,
    P_SKIPPED,
    P_TRACEBACK,
    P_USER_ERROR,
    RUN_FINISHED,
    RUN_NODE_NOTES,
    RUN_NODES,
    RUN_OWNER,
    RUN_PIPELINE_NAME,
    RUN_PIPELINE_ROOT,
    RUN_STARTED,
    RUN_STATUS,
    ExecutionState,
    NodeState,
    RunStatus,
    node_context_name,
    param_key,
)
from headwater.metadata.errors import HeadwaterError, MetadataError, StorageError
from headwater.metadata.store import MetadataStore, published_order, to_value
from headwater.pipelines.ownership import claim_root, owner_alive, process_owner
from headwater.pipelines.pipeline import Pipeline
from headwater.pipelines.run_graph import record_run_start

__all__ = ["Launcher", "Outcome", "is_local_path", "memory_properties", "process_owner", "under"]

def is_local_path(uri: str) -> bool:
    return not storage.is_url(uri)


def under(root: str, *parts: str) -> str:
    """A path below the pipeline root: a local path, or a URL for an object-store root."""
    return storage.join(root, *parts) if storage.is_url(root) else str(Path(root, *parts))


@dataclass
class Outcome:
    """What ``prepare`` decided, or what ``publish`` recorded, for one node."""

    node_id: str
    state: NodeState  # LAUNCH, CACHED, DONE, FAILED, SKIPPED or CANCELED
    execution_id: int | None = None
    spec: ExecutionSpec | None = None
    outputs: dict[str, list[Artifact]] = field(default_factory=dict)
    error: str | None = None
    duration: float = 0.0
    log_path: str | None = None
    cached_from: int | None = None
    started: float = field(default_factory=time.time)
    error_type: str | None = None  # on failures: the exception's class name
    user_error: bool = False  # on failures: whether the user's code raised
    traceback: str | None = None  # on failures: the user's traceback


def memory_properties(result: ExecutorResult) -> dict[str, float]:
    """The execution properties recording an executor's peak resident memory (MiB), when it measured it."""
    if result.peak_rss_bytes is None:
        return {}
    return {P_PEAK_RSS: round(result.peak_rss_bytes / 2**20, 1),
            P_PEAK_RSS_CHILDREN: round((result.peak_rss_children_bytes or 0) / 2**20, 1)}


class Launcher:
    """Runs the MLMD side of one pipeline run; the runner drives it and the backend executes."""

    #: Why the last code fingerprint covers a whole folder ("" when every import was resolved).
    _code_fallback: str = ""

    def __init__(
        self,
        store: MetadataStore,
        pipeline: Pipeline,
        run_id: str,
        params: Mapping[str, Any],
        *,
        cache: bool = True,
        experiment: str | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.run_id = run_id
        self.params = dict(params)
        self.cache = cache
        self.owner = process_owner()
        self.root = pipeline.root
        self.outputs: dict[str, dict[str, list[Artifact]]] = {}
        self.scratch: set[str] = set()  # executions' scratch folders, removed when the run ends
        claim_root(store, pipeline.root)  # one store per root: no two stores hand out the same paths
        self.pipeline_ctx = store.context(CONTEXT_PIPELINE, pipeline.name)
        self.run_ctx = store.context(
            CONTEXT_RUN,
            run_id,
            {
                **{param_key(k): v for k, v in self.params.items()},
                RUN_PIPELINE_NAME: pipeline.name,
                RUN_PIPELINE_ROOT: pipeline.root,
                RUN_OWNER: self.owner,
                RUN_STARTED: round(time.time(), 3),
                RUN_NODES: list(pipeline.node_ids),
            },
        )
        self._link_parent(self.run_ctx, self.pipeline_ctx)
        self.experiment_ctx = record_run_start(store, self.run_ctx, pipeline, experiment, self._link_parent)
        self._node_ctx: dict[str, Any] = {}

    def _link_parent(self, child: Any, parent: Any) -> None:
        from ml_metadata import errors as mlmd_errors
        from ml_metadata.proto import metadata_store_pb2 as pb

        # Any other failure is the store's write guard's MetadataWriteError, naming the write and the store.
        with contextlib.suppress(mlmd_errors.AlreadyExistsError):  # already linked (a re-attached run)
            self.store.mlmd.put_parent_contexts([pb.ParentContext(child_id=child.id, parent_id=parent.id)])

    def node_context(self, node_id: str) -> Any:
        if node_id not in self._node_ctx:
            ctx = self.store.context(CONTEXT_NODE, node_context_name(self.pipeline.name, node_id))
            self._link_parent(ctx, self.pipeline_ctx)
            self._node_ctx[node_id] = ctx
        return self._node_ctx[node_id]

    def contexts(self, node_id: str) -> list[Any]:
        return [self.pipeline_ctx, self.run_ctx, self.node_context(node_id), self.experiment_ctx]

    def log_path(self, node_id: str, execution_id: int) -> str:
        """Where the executor's log is written: under the root, or for an object-store root a local folder
        (the log is uploaded under the root when the node ends: see :meth:`keep_log`)."""
        return under(self._local_root, "_logs", self.run_id, f"{node_id}.{execution_id}.log")

    @property
    def _local_root(self) -> str:
        """The root itself, or for an object-store root a local scratch folder standing in for it."""
        if is_local_path(self.root):
            return self.root
        return os.path.join(tempfile.gettempdir(), "headwater", self.pipeline.name)

    def keep_log(self, log_path: str | None) -> str | None:
        """The log's lasting location: for an object-store root it is uploaded to ``<root>/_logs/…``."""
        if not log_path or is_local_path(self.root) or not os.path.exists(log_path):
            return log_path
        target = under(self.root, "_logs", *Path(log_path).parts[-2:])
        try:
            storage.write_bytes(target, Path(log_path).read_bytes())
        except StorageError as exc:
            print(f"headwater: warning: log {log_path} stays local: {exc}", file=sys.stderr)
            return log_path
        os.remove(log_path)  # uploaded; a later attempt with the same ids must not append to it
        return target

    # ------------------------------------------------------------------ recovery
    def recover(self) -> list[int]:
        """Mark executions left RUNNING by a runner that died as FAILED, and delete their orphan files."""
        recovered = []
        for proto in self.store.executions_in_context(CONTEXT_PIPELINE, self.pipeline.name):
            if proto.last_known_state != ExecutionState.RUNNING:
                continue
            record = self.store.record(proto)
            owner = str(record.properties.get(P_OWNER, ""))
            if owner_alive(owner) is not False:
                continue
            node_id = str(record.properties.get(P_NODE, ""))
            proto.last_known_state = ExecutionState.FAILED
            to_value(f"abandoned: the runner that started it ({owner}) is gone", proto.custom_properties[P_ERROR])
            self.store.mlmd.put_executions([proto])
            if node_id in self.pipeline.node_ids:
                self._remove_outputs(
                    under(self.root, node_id, key, str(proto.id))
                    for key in self.pipeline.node(node_id).component.spec.outputs
                )
            self.scratch.add(self.scratch_dir(proto.id))
            recovered.append(proto.id)
        self._stale_scratch()
        return recovered

    # ------------------------------------------------------------------ inputs
    def latest_outputs(self, node_id: str) -> dict[str, list[Artifact]]:
        """Outputs of the latest successful execution of ``node_id`` in this pipeline (any run)."""
        execs = [
            e for e in self.store.executions_in_context(CONTEXT_NODE, node_context_name(self.pipeline.name, node_id))
            if e.last_known_state in ExecutionState.SUCCESS
        ]
        if not execs:
            return {}
        return self.store.execution_outputs(max(execs, key=published_order).id)

    def resolve_inputs(self, node: Node) -> dict[str, list[Artifact]]:
        resolved: dict[str, list[Artifact]] = {}
        for key, bound in node.inputs.items():
            channels = bound if isinstance(bound, list) else [bound]
            arts: list[Artifact] = []
            for ch in channels:
                if ch.producer not in self.outputs:
                    self.outputs[ch.producer] = self.latest_outputs(ch.producer)
                    if not self.outputs[ch.producer]:
                        del self.outputs[ch.producer]
                        raise ExecutionError(
                            f"node {node.id!r} needs {ch.producer}.outputs.{ch.key}, but node {ch.producer!r} "
                            f"has never succeeded in pipeline {self.pipeline.name!r}; run it first (drop --from, "
                            "or start the slice earlier)",
                            node_id=node.id, run_id=self.run_id,
                        )
                arts.extend(self.outputs[ch.producer].get(ch.key, []))
            ispec = node.component.spec.inputs[key]
            if len(arts) > 1 and not ispec.is_list:
                sources = ", ".join(f"{c.producer}.outputs.{c.key}" for c in channels)
                raise ExecutionError(
                    f"node {node.id!r}: input {key!r} takes one {ispec.type.TYPE_NAME} but {sources} gave "
                    f"{len(arts)}; declare it as Input[list[{ispec.type.TYPE_NAME}]] to take them all",
                    node_id=node.id, run_id=self.run_id,
                )
            resolved[key] = arts
        return resolved

    def parameter_values(self, node: Node) -> dict[str, Any]:
        values = {}
        for name, pspec in node.component.spec.parameters.items():
            if name in node.parameters:
                v = node.parameters[name]
                values[name] = self.params[v.name] if isinstance(v, Param) else v
            elif not pspec.required:
                values[name] = pspec.default
        return values

    # ------------------------------------------------------------------ cache
    def code_fingerprint(self, comp: Component, params: Mapping[str, Any]) -> str:
        parts, self._code_fallback = code_fingerprint_parts(comp, params)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def cache_key(self, node: Node, inputs: Mapping[str, list[Artifact]], params: Mapping[str, Any],
                  code: str) -> str:
        comp = node.component
        extra = comp.input_fingerprint(dict(params)) if comp.input_fingerprint else ""
        doc = {
            "pipeline": self.pipeline.name,
            "node": node.id,
            "component": comp.spec.qualified_name,
            "version": comp.spec.version,
            "code": code,
            "parameters": params,
            "inputs": {k: [a.id for a in v] for k, v in sorted(inputs.items())},
            "input_fingerprint": extra,
            "outputs": {k: o.type.TYPE_NAME for k, o in sorted(comp.spec.outputs.items())},
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

    def lookup_cache(self, key: str) -> tuple[int, dict[str, list[Artifact]]] | None:
        ctx = self.store.context(CONTEXT_CACHE, key, create=False)
        if ctx is None:
            return None
        candidates = sorted(
            (e for e in self.store.mlmd.get_executions_by_context(ctx.id)
             if e.last_known_state == ExecutionState.COMPLETE),
            key=published_order, reverse=True,  # the result published last first
        )
        for execution in candidates:
            outputs = self.store.execution_outputs(execution.id)
            arts = [a for group in outputs.values() for a in group]
            # An empty output folder in an object store does not exist: such an entry is not a hit.
            if arts and all(a.state == ArtifactState.LIVE and storage.exists(a.uri) for a in arts):
                return execution.id, outputs
        return None

    # ------------------------------------------------------------------ lifecycle
    def _events(self, inputs: Mapping[str, list[Artifact]], kind: str) -> list[tuple[Artifact, str, str, int]]:
        return [(a, kind, key, i) for key, arts in inputs.items() for i, a in enumerate(arts)]

    def _base_properties(self, node: Node, params: Mapping[str, Any], code: str, key: str) -> dict[str, Any]:
        props = {**params, P_CACHE_KEY: key, P_CODE: code, P_NODE: node.id, P_RUN: self.run_id,
                 P_OWNER: self.owner}
        if self._code_fallback:  # of the code fingerprint just computed
            props[P_CODE_FALLBACK] = self._code_fallback
        return props

    def prepare(self, node: Node, *, cache: bool = True, beam_args: tuple[str, ...] = ()) -> Outcome:
        """Decide and record what happens to ``node``: cached, resolved, skipped, or to be launched."""
        started = time.time()
        comp = node.component
        inputs = self.resolve_inputs(node)
        params = self.parameter_values(node)
        type_name = comp.spec.qualified_name
        if comp.spec.kind == "resolver":
            return self._run_resolver(node, inputs, params, started)
        code = self.code_fingerprint(comp, params)
        key = self.cache_key(node, inputs, params, code)
        props = self._base_properties(node, params, code, key)
        if cache and node.caching and self.cache:
            hit = self.lookup_cache(key)
            if hit is not None:
                source_id, outputs = hit
                props[P_CACHED_FROM] = source_id
                execution = self.store.execution_proto(type_name, ExecutionState.CACHED, props)
                cache_ctx = self.store.context(CONTEXT_CACHE, key)
                eid, _ = self.store.put_execution(
                    execution,
                    self._events(inputs, EVENT_INPUT) + self._events(outputs, EVENT_OUTPUT),
                    [*self.contexts(node.id), cache_ctx],
                )
                self.outputs[node.id] = outputs
                return Outcome(node.id, NodeState.CACHED, eid, outputs=outputs, cached_from=source_id, started=started,
                               duration=time.time() - started)
        if comp.skip_if is not None:
            reason = comp.skip_if(inputs, params)
            if reason:
                return self._skip(node, inputs, params, props, reason, started)
        execution = self.store.execution_proto(type_name, ExecutionState.RUNNING, props)
        eid, _ = self.store.put_execution(execution, self._events(inputs, EVENT_INPUT), self.contexts(node.id))
        log_path = self.log_path(node.id, eid)
        outputs = {
            k: [o.type(under(self.root, node.id, k, str(eid)), state=ArtifactState.PENDING)]
            for k, o in comp.spec.outputs.items()
        }
        spec = ExecutionSpec(
            pipeline_name=self.pipeline.name,
            pipeline_root=self.root,
            run_id=self.run_id,
            node_id=node.id,
            execution_id=eid,
            component_module=comp.spec.module,
            component_function=comp.spec.function,
            component_file=comp.spec.source_file,
            inputs={k: [a.to_json() for a in v] for k, v in inputs.items()},
            outputs={k: [a.to_json() for a in v] for k, v in outputs.items()},
            parameters=params,
            tmp_dir=self.scratch_dir(eid),
            log_path=log_path,
            beam_args=tuple(beam_args),
        )
        self._check_fresh(node, eid, outputs)
        return Outcome(node.id, NodeState.LAUNCH, eid, spec=spec, log_path=log_path, started=started)

    def _skip(self, node: Node, inputs: dict[str, list[Artifact]], params: dict[str, Any],
              props: dict[str, Any], reason: str, started: float) -> Outcome:
        comp = node.component
        execution = self.store.execution_proto(comp.spec.qualified_name, ExecutionState.RUNNING, props)
        eid, _ = self.store.put_execution(execution, self._events(inputs, EVENT_INPUT), self.contexts(node.id))
        outputs = {}
        staging = self.scratch_dir(eid)
        for k, o in comp.spec.outputs.items():
            art = o.type(under(self.root, node.id, k, str(eid)))
            if storage.is_url(art.uri):
                art.path = os.path.join(staging, k)
            Path(art.path).mkdir(parents=True, exist_ok=True)
            outputs[k] = art
        if comp.on_skip is not None:
            comp.on_skip(outputs, reason)
        for art in outputs.values():
            if storage.is_url(art.uri):
                storage.upload(art.path, art.uri)
        shutil.rmtree(staging, ignore_errors=True)
        done = {k: [a] for k, a in outputs.items()}
        props[P_SKIPPED] = reason
        return self._complete(node, eid, inputs, done, props, started, state=NodeState.SKIPPED)

    def _run_resolver(self, node: Node, inputs: dict[str, list[Artifact]], params: dict[str, Any],
                      started: float) -> Outcome:
        comp = node.component
        ctx = ResolverContext(self.store, self.pipeline.name, self.run_id, node.id)
        kwargs: dict[str, Any] = dict(params)
        for key, ispec in comp.spec.inputs.items():
            arts = inputs.get(key, [])
            kwargs[key] = arts if ispec.is_list else (arts[0] if arts else None)
        kwargs[comp.spec.context_arg or "ctx"] = ctx
        try:
            resolved = comp.fn(**kwargs) or {}
        except HeadwaterError:
            raise
        except Exception as exc:
            raise ExecutionError(
                f"resolver node {node.id!r} ({comp.spec.qualified_name}) failed: {type(exc).__name__}: {exc}",
                node_id=node.id, run_id=self.run_id,
            ) from exc
        outputs = {k: list(resolved.get(k, [])) for k in comp.spec.outputs}
        # As TFX records a resolver: its picks are INTERNAL_OUTPUT events and what it was given is a property,
        # not INPUT events, so lineage never runs from a picked model back through the resolver's inputs.
        props = {**params, P_NODE: node.id, P_RUN: self.run_id, P_OWNER: self.owner,
                 P_RESOLVER_INPUTS: {k: [a.id for a in v] for k, v in inputs.items()}}
        execution = self.store.execution_proto(comp.spec.qualified_name, ExecutionState.COMPLETE, props)
        events = self._events(outputs, EVENT_INTERNAL_OUTPUT)
        eid, _ = self.store.put_execution(execution, events, self.contexts(node.id))
        self.outputs[node.id] = outputs
        return Outcome(node.id, NodeState.DONE, eid, outputs=outputs, started=started, duration=time.time() - started)

    def _complete(self, node: Node, eid: int, inputs: Mapping[str, list[Artifact]],
                  outputs: dict[str, list[Artifact]], props: dict[str, Any], started: float,
                  state: NodeState = NodeState.DONE, duration: float | None = None) -> Outcome:
        for arts in outputs.values():
            for a in arts:
                a.state = ArtifactState.LIVE
        duration = time.time() - started if duration is None else duration
        props[P_DURATION] = round(duration, 4)
        key = str(props.get(P_CACHE_KEY, ""))
        contexts = self.contexts(node.id)
        if key and not props.get(P_SKIPPED):
            contexts.append(self.store.context(CONTEXT_CACHE, key))
        execution = self.store.execution_proto(
            node.component.spec.qualified_name, ExecutionState.COMPLETE, props, execution_id=eid
        )
        # One transaction: execution COMPLETE, outputs created LIVE, OUTPUT events, attributions.
        self.store.put_execution(execution, self._events(outputs, EVENT_OUTPUT), contexts)
        self.outputs[node.id] = outputs
        log_path = props.get(P_LOG) or self.log_path(node.id, eid)
        return Outcome(node.id, state, eid, outputs=outputs, duration=duration, log_path=log_path, started=started)

    def publish(self, node: Node, outcome: Outcome, result: ExecutorResult) -> Outcome:
        """Record an executor result: COMPLETE with LIVE outputs, or FAILED with the error."""
        assert outcome.spec is not None and outcome.execution_id is not None
        spec = outcome.spec
        eid = outcome.execution_id
        params = dict(spec.parameters)
        code = self.code_fingerprint(node.component, params)
        inputs = {k: [Artifact.from_json(a) for a in v] for k, v in spec.inputs.items()}
        props = self._base_properties(node, params, code, self.cache_key(node, inputs, params, code))
        props[P_ATTEMPTS] = spec.attempt
        memory = memory_properties(result)
        props.update(memory)
        if result.succeeded:
            try:
                outputs = self._check_outputs(node, spec, result)
            except ExecutionError as exc:
                result = ExecutorResult.failure(eid, type(exc).__name__, str(exc), started_at=result.started_at)
            else:
                props[P_LOG] = self.keep_log(spec.log_path)
                return self._complete(node, eid, inputs, outputs, props, outcome.started, duration=result.duration)
        return self.fail(node, outcome, result.error_message or "failed", error_type=result.error_type,
                         traceback=result.error_traceback, user=result.user_error, duration=result.duration,
                         memory=memory)

    def _check_outputs(self, node: Node, spec: ExecutionSpec, result: ExecutorResult) -> dict[str, list[Artifact]]:
        outputs: dict[str, list[Artifact]] = {}
        for key, planned in spec.outputs.items():
            returned = result.outputs.get(key)
            if returned is None or len(returned) != len(planned):
                raise ExecutionError(
                    f"node {node.id!r}: the executor result has no artifact for output {key!r}",
                    node_id=node.id, run_id=self.run_id,
                )
            arts = []
            for plan, got in zip(planned, returned, strict=True):
                art = Artifact.from_json(got)
                if art.uri != plan["uri"]:
                    raise ExecutionError(
                        f"node {node.id!r}: output {key!r} moved from {plan['uri']} to {art.uri}; executors must "
                        "write under the URI they were given", node_id=node.id, run_id=self.run_id,
                    )
                if is_local_path(art.uri) and not os.path.isdir(art.uri):
                    raise ExecutionError(
                        f"node {node.id!r}: output {key!r} directory {art.uri} is missing after the executor "
                        "finished", node_id=node.id, run_id=self.run_id, artifact_uri=art.uri,
                    )
                arts.append(art)
            outputs[key] = arts
        return outputs

    def fail(self, node: Node, outcome: Outcome, message: str, *, error_type: str | None = None,
             traceback: str | None = None, user: bool = False, duration: float | None = None,
             state: ExecutionState = ExecutionState.FAILED, memory: Mapping[str, float] | None = None) -> Outcome:
        """Record a FAILED (or CANCELED) execution; its output directories are deleted, logs kept."""
        eid = outcome.execution_id
        assert eid is not None and outcome.spec is not None
        props: dict[str, Any] = {
            **outcome.spec.parameters, P_NODE: node.id, P_RUN: self.run_id, P_OWNER: self.owner,
            P_ERROR: message[:4000], P_LOG: self.keep_log(outcome.spec.log_path),
            P_DURATION: round(time.time() - outcome.started if duration is None else duration, 4),
            P_ATTEMPTS: outcome.spec.attempt, **(memory or {}),
        }
        if error_type:
            props[P_ERROR_TYPE] = error_type
        if traceback:
            props[P_TRACEBACK] = traceback[-8000:]
        props[P_USER_ERROR] = user
        execution = self.store.execution_proto(node.component.spec.qualified_name, state, props, execution_id=eid)
        try:
            self.store.put_execution(execution, [], self.contexts(node.id))
        except MetadataError:
            raise
        self._remove_outputs(a["uri"] for arts in outcome.spec.outputs.values() for a in arts)
        shutil.rmtree(outcome.spec.tmp_dir, ignore_errors=True)
        name = NodeState.FAILED if state == ExecutionState.FAILED else NodeState.CANCELED
        return Outcome(node.id, name, eid, error=message, log_path=props[P_LOG],
                       duration=props[P_DURATION], started=outcome.started, error_type=error_type, user_error=user,
                       traceback=traceback)

    @staticmethod
    def _remove_outputs(uris: Iterable[str]) -> None:
        """Delete the files of outputs that will never be LIVE (failed or abandoned executions)."""
        for uri in uris:
            try:
                storage.remove(uri)
            except StorageError as exc:
                print(f"headwater: warning: could not delete {uri}: {exc}", file=sys.stderr)

    def finish(self, status: RunStatus, node_notes: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Record the run's end on its context (``node_notes``: the nodes that ran no execution, and why), and
        remove the run's scratch folders."""
        self.remove_scratch()
        ctx = self.run_ctx
        to_value(str(status), ctx.custom_properties[RUN_STATUS])
        if node_notes:
            to_value(dict(node_notes), ctx.custom_properties[RUN_NODE_NOTES], json_strings=True)
        to_value(round(time.time(), 3), ctx.custom_properties[RUN_FINISHED])
        self.store.mlmd.put_contexts([ctx])

    # ------------------------------------------------------------------ scratch and fresh paths
    def scratch_dir(self, execution_id: int) -> str:
        """``<root>/_tmp/<execution id>`` (a local folder for an object-store root); removed at the run's end."""
        path = under(self._local_root, "_tmp", str(execution_id))
        self.scratch.add(path)
        return path

    def remove_scratch(self) -> None:
        """Remove the scratch folders of this run's executions (and ``_tmp`` itself once empty)."""
        for path in sorted(self.scratch):
            shutil.rmtree(path, ignore_errors=True)
        self.scratch.clear()
        with contextlib.suppress(OSError):
            os.rmdir(under(self._local_root, "_tmp"))

    def _stale_scratch(self) -> None:
        """Queue for removal the scratch folders of a local root whose executions are over (left by a run
        that was killed before it could remove them). Only for a local root: it belongs to this store, so
        the folder names are this store's execution ids."""
        if not is_local_path(self.root):
            return
        folder = Path(self.root, "_tmp")
        ids = [int(p.name) for p in folder.iterdir() if p.name.isascii() and p.name.isdigit()] \
            if folder.is_dir() else []
        if not ids:
            return
        found = {e.id: e for e in self.store.mlmd.get_executions_by_id(ids)}
        for eid in ids:
            proto = found.get(eid)
            if proto is not None and proto.last_known_state == ExecutionState.RUNNING:
                owner = str(self.store.record(proto).properties.get(P_OWNER, ""))
                if owner_alive(owner) is not False:
                    continue  # running (here or elsewhere): not ours to touch
            self.scratch.add(str(folder / str(eid)))

    def _check_fresh(self, node: Node, eid: int, outputs: Mapping[str, list[Artifact]]) -> None:
        """Refuse output paths that already hold files: this store never made them, so they are not ours to
        overwrite, nor (when the execution fails) to delete. The execution is recorded FAILED."""
        taken = [a.uri for arts in outputs.values() for a in arts if storage.exists(a.uri)]
        if not taken:
            return
        message = (
            f"node {node.id!r}: output path {taken[0]} already holds files that execution {eid} of "
            f"{self.store.display} did not write (another metadata store over the same pipeline root, or "
            "files copied in); they are left as they are. Move them away, or use a new pipeline root"
        )
        proto = self.store.execution_proto(node.component.spec.qualified_name, ExecutionState.FAILED,
                                           {P_NODE: node.id, P_RUN: self.run_id, P_ERROR: message},
                                           execution_id=eid)
        self.store.put_execution(proto, [], self.contexts(node.id))
        raise ExecutionError(message, node_id=node.id, run_id=self.run_id, artifact_uri=taken[0])
