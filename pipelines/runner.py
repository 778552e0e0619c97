"""Runners: one scheduling loop over an executor backend. LocalRunner runs on this machine."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from headwater.components.errors import ExecutionError, ParameterError
from headwater.metadata.artifact import Artifact
from headwater.metadata.connection import ENV_VAR
from headwater.metadata.conventions import ExecutionState, NodeState, RunStatus
from headwater.metadata.errors import HeadwaterError, MetadataError, MetadataWriteError
from headwater.metadata.store import MetadataStore, connect
from headwater.pipelines.backend import ExecutorBackend, LocalBackend, NodeOptions
from headwater.pipelines.gates import check_gates, data_gates, gate_reason
from headwater.pipelines.launcher import Launcher, Outcome, is_local_path
from headwater.pipelines.outcome import EXIT_NOT_PUSHED, RunOutcome
from headwater.pipelines.pipeline import Pipeline
from headwater.pipelines.status import StatusDisplay
from headwater.pipelines.warm import warm_pool

__all__ = ["LocalRunner", "NodeResult", "RunResult", "Runner", "new_run_id", "open_store"]


@dataclass(frozen=True)
class NodeResult:
    """What happened to one node in a run."""

    node_id: str
    state: NodeState  # DONE, CACHED, SKIPPED, FAILED, CANCELED, BLOCKED or NOT_RUN
    execution_id: int | None = None
    duration: float = 0.0
    outputs: Mapping[str, list[Artifact]] = field(default_factory=dict)
    log_path: str | None = None
    error: str | None = None
    cached_from: int | None = None
    error_type: str | None = None  # failed nodes: the exception's class name (e.g. "ValueError")
    user_error: bool = False  # failed nodes: True when the user's code raised, False for headwater's side
    traceback: str | None = None  # failed nodes: the user's traceback (headwater frames trimmed)


_OK_STATES = frozenset({NodeState.DONE, NodeState.CACHED, NodeState.SKIPPED, NodeState.NOT_RUN})
_STOPPING_STATES = frozenset({NodeState.FAILED, NodeState.CANCELED, NodeState.BLOCKED})


@dataclass(frozen=True)
class RunResult:
    """A run: its id, the state of every node, the artifacts they produced, and how it came out.

    ``outcome`` (read back from ML Metadata when the run ends, as ``headwater runs show`` reads it) holds each
    evaluated model's verdict and headline metrics, what was pushed where or why not, and every node skipped,
    blocked, failed or not run with the reason; :meth:`summary` gives it as the lines ``headwater run`` prints.
    """

    run_id: str
    pipeline: str
    nodes: Mapping[str, NodeResult]
    params: Mapping[str, Any]
    duration: float
    metadata: str
    outcome: RunOutcome | None = None

    @property
    def blessed(self) -> bool | None:
        """Whether every evaluated model was blessed (None: nothing was evaluated)."""
        return self.outcome.blessed if self.outcome else None

    @property
    def pushed(self) -> bool:
        """Whether a model was pushed in this run."""
        return bool(self.outcome and self.outcome.pushed)

    def summary(self) -> str:
        """How the run came out, in a few lines (what ``headwater run`` prints at the end)."""
        return "\n".join(self.outcome.lines()) if self.outcome else f"run {self.run_id}: no outcome recorded"

    @property
    def ok(self) -> bool:
        return all(n.state in _OK_STATES for n in self.nodes.values())

    @property
    def failed(self) -> list[str]:
        return [n.node_id for n in self.nodes.values() if n.state == NodeState.FAILED]

    def outputs(self, node_id: str, key: str) -> list[Artifact]:
        return list(self.nodes[node_id].outputs.get(key, []))

    def exit_code(self, *, require_push: bool = False) -> int:
        """``headwater run``'s exit status: 0 succeeded, 1 a node failed, was canceled or blocked; with
        ``require_push``, 3 (:data:`~headwater.pipelines.outcome.EXIT_NOT_PUSHED`) when the run succeeded
        but pushed no model (not blessed, or the pipeline pushes nothing)."""
        if not self.ok:
            return 1
        return EXIT_NOT_PUSHED if require_push and not self.pushed else 0

    def raise_for_status(self, *, require_push: bool = False) -> RunResult:
        """Raise :class:`ExecutionError` if a node failed, or with ``require_push`` if no model was pushed."""
        if not self.ok:
            details = "; ".join(f"{n}: {self.nodes[n].error}" for n in self.failed)
            raise ExecutionError(f"run {self.run_id} failed: {details}", run_id=self.run_id)
        if require_push and not self.pushed:
            why = "; ".join(f"{p.node_id}: {p.reason}" for p in self.outcome.pushes) if self.outcome else ""
            raise ExecutionError(f"run {self.run_id} pushed no model" + (f": {why}" if why else
                                 " (no node pushes a model)"), run_id=self.run_id)
        return self


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def open_store(pipeline: Pipeline, metadata: str | None = None) -> MetadataStore:
    """The run's store: ``metadata``, the pipeline's, ``$HEADWATER_METADATA``, or SQLite under a local root."""
    uri = metadata or pipeline.metadata or os.environ.get(ENV_VAR)
    if not uri and not is_local_path(pipeline.root):
        raise MetadataError(
            f"pipeline {pipeline.name!r} has its root in an object store ({pipeline.root}), where an SQLite "
            "store cannot live: give a metadata connection (--metadata mysql://… or postgresql://…, "
            f"Pipeline(metadata=...), or ${ENV_VAR}); sqlite:///local/path.sqlite works for one machine"
        )
    return connect(uri, default_sqlite=pipeline.metadata_default() if not uri else None)


class Runner:
    """Runs a pipeline on an executor backend: ready nodes are launched as soon as their inputs exist.

    A failed node stops its descendants (state ``blocked``) while independent branches go on. Ctrl-C
    cancels everything in flight (executions CANCELED, no LIVE output) and re-raises KeyboardInterrupt.
    """

    def __init__(
        self,
        backend_factory: Callable[[Pipeline, list[str]], ExecutorBackend],
        *,
        metadata: str | None = None,
        cache: bool = True,
        quiet: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self._backend_factory = backend_factory
        self.metadata = metadata
        self.cache = cache
        self.quiet = quiet
        self.stream = stream

    def run(
        self,
        pipeline: Pipeline,
        params: Mapping[str, Any] | None = None,
        *,
        from_node: str | None = None,
        to_node: str | None = None,
        cache: bool | None = None,
        run_id: str | None = None,
        experiment: str | None = None,
    ) -> RunResult:
        values = pipeline.resolve_params(params)
        selected = pipeline.select(from_node, to_node)
        check_gates(pipeline)
        backend = self._backend_factory(pipeline, selected)  # local workers start while the store opens
        try:
            store = open_store(pipeline, self.metadata)
        except BaseException:
            backend.close()
            raise
        run_id = run_id or new_run_id()
        use_cache = self.cache if cache is None else cache
        try:
            launcher = Launcher(store, pipeline, run_id, values, cache=use_cache, experiment=experiment)
            launcher.recover()
        except BaseException:
            backend.close()
            raise
        title = f"headwater: running pipeline {pipeline.name!r} (run {run_id}, metadata {store.display})"
        note = self._header_note(pipeline, selected)
        display = StatusDisplay(selected, self.stream, quiet=self.quiet, title=f"{title}\n{note}" if note else title)
        started = time.time()
        results: dict[str, NodeResult] = {}
        try:
            self._loop(pipeline, selected, launcher, backend, display, results)
        except KeyboardInterrupt:
            display.close("headwater: interrupted — cancelled running nodes")
            launcher.finish(RunStatus.CANCELED)
            raise
        except MetadataWriteError:
            display.close("headwater: stopped — the metadata store could not be written")
            raise
        finally:
            backend.close()
            launcher.remove_scratch()
        for nid in pipeline.node_ids:
            if nid not in selected:
                results[nid] = NodeResult(nid, NodeState.NOT_RUN)
        result = RunResult(run_id, pipeline.name, {n: results[n] for n in pipeline.node_ids}, values,
                           time.time() - started, store.display)
        launcher.finish(RunStatus.SUCCEEDED if result.ok else RunStatus.FAILED, _node_notes(result))
        result = replace(result, outcome=_read_outcome(store, run_id))
        counts: dict[str, int] = {}
        for n in result.nodes.values():
            counts[n.state] = counts.get(n.state, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        verdict = "succeeded" if result.ok else "FAILED" if result.failed else "did not complete"
        display.close(f"headwater: run {run_id} {verdict} in "
                      f"{result.duration:.2f}s ({summary})")
        if not self.quiet:
            print(result.summary(), file=display.stream, flush=True)
        return result

    def _header_note(self, pipeline: Pipeline, selected: list[str]) -> str:
        """A line the run header adds (what this runner does differently from others), or ""."""
        return ""

    def _loop(self, pipeline: Pipeline, selected: list[str], launcher: Launcher, backend: ExecutorBackend,
              display: StatusDisplay, results: dict[str, NodeResult], *, adopted: Sequence[Outcome] = ()) -> None:
        """Launch ``selected`` as their inputs become ready, and publish what finishes. ``adopted``: executions
        already running on ``backend`` (launched by an earlier orchestrator) to wait for and publish too."""
        waiting = list(selected)
        # execution id -> (node, outcome, attempt)
        in_flight: dict[int, tuple[str, Outcome, int]] = {o.execution_id: (o.node_id, o, 1) for o in adopted
                                                           if o.execution_id is not None}
        finished: set[str] = set()
        sel = set(selected)
        gates = data_gates(pipeline)  # consumers wait for the data gates (Validate) of what they read
        gate_blocks: dict[str, str] = {}

        def record(outcome: Outcome) -> None:
            results[outcome.node_id] = NodeResult(
                outcome.node_id, outcome.state, outcome.execution_id, outcome.duration, outcome.outputs,
                outcome.log_path, outcome.error, outcome.cached_from, outcome.error_type, outcome.user_error,
                outcome.traceback,
            )
            finished.add(outcome.node_id)
            reason = gate_reason(pipeline.node(outcome.node_id), outcome.state, outcome.outputs)
            if reason:
                gate_blocks[outcome.node_id] = reason
            display.update(outcome.node_id, outcome.state, duration=outcome.duration,
                           note=(outcome.error or "").splitlines()[0][:100] if outcome.error else "")

        try:
            while waiting or in_flight:
                progressed = False
                for nid in list(waiting):
                    ups = (pipeline.upstream(nid) | set(gates.get(nid, ()))) & sel
                    bad = [u for u in ups if u in finished and results[u].state in _STOPPING_STATES]
                    gated = [gate_blocks[u] for u in ups if u in gate_blocks]
                    if bad or gated:
                        waiting.remove(nid)
                        why = gated[0] if gated else f"upstream node {bad[0]!r} {_verb(results[bad[0]].state)}"
                        results[nid] = NodeResult(nid, NodeState.BLOCKED, error=why)
                        finished.add(nid)
                        display.update(nid, NodeState.BLOCKED, note=why.splitlines()[0][:100])
                        progressed = True
                        continue
                    if not ups <= finished:
                        continue
                    if len(in_flight) >= backend.capacity:
                        break
                    waiting.remove(nid)
                    progressed = True
                    node = pipeline.node(nid)
                    try:
                        outcome = launcher.prepare(node, beam_args=pipeline.beam_args)
                    except MetadataWriteError:
                        raise
                    except HeadwaterError as exc:
                        record(Outcome(nid, NodeState.FAILED, error=str(exc), error_type=type(exc).__name__))
                        continue
                    if outcome.state == NodeState.LAUNCH:
                        assert outcome.spec is not None and outcome.execution_id is not None
                        backend.launch(outcome.spec, _options(node))
                        in_flight[outcome.execution_id] = (nid, outcome, 1)
                        display.update(nid, NodeState.RUNNING)
                    else:
                        record(outcome)
                if not in_flight:
                    if not progressed and waiting:  # pragma: no cover - defensive
                        raise ExecutionError(f"nodes {waiting} can never run", run_id=launcher.run_id)
                    continue
                for res in backend.poll(0.2):
                    if res.execution_id not in in_flight:
                        continue
                    nid, outcome, attempt = in_flight.pop(res.execution_id)
                    node = pipeline.node(nid)
                    # A backend that retries itself (Kubernetes: Job backoffLimit) reports the last attempt.
                    if not res.succeeded and attempt <= node.retries and not backend.handles_retries:
                        assert outcome.spec is not None
                        note = f"retry {attempt}/{node.retries}: {res.error_message}"
                        display.update(nid, NodeState.RUNNING, note=note)
                        retry = replace(outcome.spec, attempt=attempt + 1)
                        outcome.spec = retry
                        backend.launch(retry, _options(node))
                        in_flight[res.execution_id] = (nid, outcome, attempt + 1)
                        continue
                    record(launcher.publish(node, outcome, res))
                display.refresh()
        except MetadataWriteError:
            # The store cannot record anything more: stop what runs (its executions stay RUNNING in the
            # store and the next run recovers them: FAILED, their files deleted) and end the run.
            backend.cancel(list(in_flight))
            raise
        except KeyboardInterrupt:
            backend.cancel(list(in_flight))
            for nid, outcome, _ in in_flight.values():
                node = pipeline.node(nid)
                record(launcher.fail(node, outcome, "canceled by the user (Ctrl-C)", state=ExecutionState.CANCELED))
            for nid in waiting:
                results[nid] = NodeResult(nid, NodeState.CANCELED, error="run canceled before this node started")
                display.update(nid, NodeState.CANCELED)
            raise


def _node_notes(result: RunResult) -> dict[str, dict[str, str]]:
    """The nodes that ran no execution (blocked, not selected, failed before launch), for the run context."""
    notes = {}
    for n in result.nodes.values():
        if n.execution_id is None:
            reason = n.error or ("not selected (--from/--to)" if n.state == NodeState.NOT_RUN else "")
            notes[n.node_id] = {"state": str(n.state), "reason": reason}
    return notes


def _read_outcome(store: MetadataStore, run_id: str) -> RunOutcome | None:
    from headwater.pipelines.history import show_run

    try:
        return show_run(store, run_id).outcome
    except HeadwaterError as exc:  # the run itself is done; say why its outcome cannot be shown
        print(f"headwater: warning: cannot read the outcome of run {run_id}: {exc}", file=sys.stderr)
        return None


def _verb(state: str) -> str:
    return {"blocked": "was blocked", "canceled": "was canceled"}.get(state, "failed")


def _options(node: Any) -> NodeOptions:
    return NodeOptions(node.id, node.resources, node.retries, node.timeout_seconds, image=node.effective_image,
                       placement=node.effective_placement)


class LocalRunner(Runner):
    """Runs nodes in worker processes on this machine; independent nodes in parallel.

    ``max_workers`` bounds the parallelism (default: the number of cores). ``keep_warm`` keeps the worker
    processes warm between runs (see :mod:`headwater.pipelines.warm`): ``None`` follows
    ``$HEADWATER_KEEP_WARM`` (on by default, 600 s idle), ``False`` starts workers for this run only, a
    number is the idle timeout in seconds.
    """

    def __init__(self, max_workers: int | None = None, *, metadata: str | None = None, cache: bool = True,
                 quiet: bool = False, stream: TextIO | None = None, keep_warm: bool | float | None = None) -> None:
        super().__init__(self._backend, metadata=metadata, cache=cache, quiet=quiet, stream=stream)
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                        or max_workers < 1):
            raise ParameterError(f"LocalRunner: max_workers is {max_workers!r}; give a number of worker processes, "
                                 "1 or more (or None for one per core)")
        self.max_workers = max_workers
        self.keep_warm = keep_warm

    def _backend(self, pipeline: Pipeline, selected: list[str]) -> LocalBackend:
        nodes = [pipeline.node(n) for n in selected]
        executors = [n for n in nodes if n.component.spec.kind == "executor"]
        warm: list[str] = []
        for n in executors:
            warm += [m for m in n.component.spec.warm_imports if m not in warm]
        return LocalBackend(self.max_workers, prewarm=len(executors), warm_imports=tuple(warm),
                            pool=warm_pool(self.keep_warm) if executors else None)

    def _header_note(self, pipeline: Pipeline, selected: list[str]) -> str:
        imaged = [n for n in selected if pipeline.node(n).effective_image]
        if not imaged:
            return ""
        return (f"headwater: {len(imaged)} node(s) name a container image ({', '.join(imaged)}); the local runner "
                "ignores images and placement and runs every node in this Python environment")


