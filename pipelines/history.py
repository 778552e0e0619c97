"""Runs as recorded in ML Metadata: what ``headwater runs list`` and ``headwater runs show`` print."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.metadata.conventions import (
    CONTEXT_RUN,
    OUTPUT_EVENTS,
    P_CACHED_FROM,
    P_DURATION,
    P_ERROR,
    P_ERROR_TYPE,
    P_LOG,
    P_NODE,
    P_PEAK_RSS,
    P_PEAK_RSS_CHILDREN,
    P_SKIPPED,
    P_TRACEBACK,
    P_USER_ERROR,
    PARAM_PREFIX,
    RUN_FINISHED,
    RUN_NODE_NOTES,
    RUN_NODES,
    RUN_PIPELINE_NAME,
    RUN_PIPELINE_ROOT,
    RUN_STARTED,
    RUN_STATUS,
    ExecutionState,
    NodeState,
    RunStatus,
)
from headwater.metadata.errors import MetadataError
from headwater.metadata.store import MetadataStore, from_value

if TYPE_CHECKING:
    from headwater.pipelines.outcome import RunOutcome

__all__ = ["NodeSummary", "RunDetail", "RunSummary", "list_runs", "resolve_run_id", "show_run"]


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    pipeline: str
    status: str
    started: str
    node_count: int
    duration: float | None
    params: dict[str, Any]
    #: nodes per state (each pipeline node counted once, by its last execution); they add up to node_count
    counts: dict[str, int] = field(default_factory=dict)
    blessed: bool | None = None  # None: nothing was evaluated
    pushed: bool | None = None  # None: nothing was to be pushed

    @property
    def counts_text(self) -> str:
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(self.counts.items()))

    @property
    def duration_text(self) -> str:
        return f"{self.duration:.2f}s" if self.duration is not None else "-"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NodeSummary:
    """One node of a run. ``state`` is a :class:`NodeState` value (done, cached, skipped, failed, canceled,
    running, blocked, queued, not_run); ``reason`` says why it was skipped, blocked or not run."""

    node_id: str
    state: str
    execution_id: int | None
    duration: float | None
    log_path: str | None
    error: str | None
    cached_from: int | None
    outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    inputs: dict[str, list[int]] = field(default_factory=dict)
    error_type: str | None = None
    user_error: bool | None = None
    traceback: str | None = None
    reason: str | None = None
    #: peak resident memory of the execution (MiB), and of it the processes the execution started
    peak_rss_mib: float | None = None
    peak_rss_children_mib: float | None = None

    @property
    def peak_rss_text(self) -> str:
        if self.peak_rss_mib is None:
            return "-"
        return f"{self.peak_rss_mib / 1024:.2f} GiB" if self.peak_rss_mib >= 1024 else f"{self.peak_rss_mib:.0f} MiB"


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    nodes: list[NodeSummary]
    outcome: RunOutcome | None = None

    @property
    def status(self) -> str:
        return self.summary.status

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.summary.to_dict(), "nodes": [asdict(n) for n in self.nodes],
                "outcome": self.outcome.to_dict() if self.outcome else None}

    def to_text(self) -> str:
        s = self.summary
        lines = [
            f"run {s.run_id}  pipeline {s.pipeline}  status {s.status}  started {s.started} UTC  "
            f"duration {s.duration_text}",
        ]
        if s.params:
            lines.append("parameters: " + ", ".join(f"{k}={v!r}" for k, v in sorted(s.params.items())))
        if s.counts:
            lines.append(f"nodes: {s.node_count} ({s.counts_text})")
        lines.append("")
        lines.append(f"{'NODE':<24} {'STATE':<9} {'EXEC':>6} {'DURATION':>9} {'PEAK RSS':>9}  ARTIFACTS / LOG")
        for n in self.nodes:
            took = f"{n.duration:.2f}s" if n.duration is not None else "-"
            extra = f" (from execution {n.cached_from})" if n.cached_from else ""
            eid = str(n.execution_id) if n.execution_id is not None else "-"
            lines.append(f"{n.node_id:<24} {n.state:<9} {eid:>6} {took:>9} {n.peak_rss_text:>9}{extra}")
            if n.reason:
                lines.append(f"{'':<24}   {n.state.replace('_', ' ')}: {n.reason}")
            for key, arts in n.outputs.items():
                for a in arts:
                    lines.append(f"{'':<24}   {key}: {a['type']} #{a['id']} {a['uri']}")
            if n.log_path:
                lines.append(f"{'':<24}   log: {n.log_path}")
            if n.error and n.state != NodeState.BLOCKED:
                lines.append(f"{'':<24}   error: {n.error.splitlines()[0][:200]}")
        if self.outcome is not None:
            lines.append("")
            lines.extend(self.outcome.lines())
        return "\n".join(lines)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _run_contexts(store: MetadataStore) -> list[Any]:
    return list(store.mlmd.get_contexts_by_type(CONTEXT_RUN))


def _context_props(ctx: Any) -> dict[str, Any]:
    props = {k: from_value(v) for k, v in ctx.custom_properties.items()}
    return props | {k: from_value(v) for k, v in ctx.properties.items()}


def _json(value: Any, default: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value if value is not None else default


def _param(value: Any) -> Any:
    """A runtime parameter as recorded: lists, dicts and ``None`` are kept as JSON text (``param:…``)."""
    if isinstance(value, str) and value[:1] in ("[", "{", "n"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if decoded is None or isinstance(decoded, list | dict) else value
    return value


def _header(store: MetadataStore, ctx: Any, executions: list[Any] | None = None) -> dict[str, Any]:
    props = _context_props(ctx)
    started = props.get(RUN_STARTED) or ctx.create_time_since_epoch / 1000
    finished = props.get(RUN_FINISHED)
    status = str(props.get(RUN_STATUS) or (RunStatus.RUNNING if executions else RunStatus.EMPTY))
    pipeline = str(props.get(RUN_PIPELINE_NAME) or "")
    if not pipeline:  # a run written by another tool (e.g. TFX): find the parent pipeline context
        parents = store.mlmd.get_parent_contexts_by_context(ctx.id)
        pipeline = parents[0].name if parents else "?"
    params = {k[len(PARAM_PREFIX):]: _param(v) for k, v in props.items() if k.startswith(PARAM_PREFIX)}
    return {"run_id": ctx.name, "pipeline": pipeline, "status": status, "started": _when(started),
            "duration": finished - started if finished and started else None, "params": params,
            "node_ids": [str(n) for n in _json(props.get(RUN_NODES), [])],
            "root": str(props.get(RUN_PIPELINE_ROOT) or ""),
            "notes": _json(props.get(RUN_NODE_NOTES), {})}


_EXEC_STATES = {
    ExecutionState.COMPLETE: NodeState.DONE, ExecutionState.CACHED: NodeState.CACHED,
    ExecutionState.FAILED: NodeState.FAILED, ExecutionState.CANCELED: NodeState.CANCELED,
    ExecutionState.RUNNING: NodeState.RUNNING, ExecutionState.NEW: NodeState.QUEUED,
}


def _node_state(mlmd_state: str, props: dict[str, Any]) -> str:
    if props.get(P_SKIPPED):
        return str(NodeState.SKIPPED)
    state = _EXEC_STATES.get(ExecutionState[mlmd_state])
    return str(state) if state else mlmd_state.lower()


def _nodes(store: MetadataStore, executions: list[Any], header: dict[str, Any]) -> list[NodeSummary]:
    events = store.events_by_execution([e.id for e in executions])
    art_ids = sorted({aid for evs in events.values() for *_, aid in evs})
    arts = {a.id: a for a in store.get_artifacts(art_ids)} if art_ids else {}
    nodes: list[NodeSummary] = []
    for e in executions:
        rec = store.record(e)
        p = rec.properties
        outputs: dict[str, list[dict[str, Any]]] = {}
        inputs: dict[str, list[int]] = {}
        for kind, key, _, aid in sorted(events[e.id], key=lambda t: (t[1], t[2])):
            if kind in OUTPUT_EVENTS:
                a = arts[aid]
                outputs.setdefault(key, []).append(
                    {"id": aid, "type": a.type_name, "uri": a.uri, "state": a.state.name,
                     "custom_properties": dict(a.custom_properties), "event": kind})
            else:
                inputs.setdefault(key, []).append(aid)
        node_id = str(p.get(P_NODE) or rec.type.rsplit(".", 1)[-1])
        duration = p.get(P_DURATION)
        skipped = p.get(P_SKIPPED)
        state = _node_state(rec.state, p)
        log = p.get(P_LOG) or (_live_log(header, node_id, e.id) if state == NodeState.RUNNING else None)
        nodes.append(NodeSummary(
            node_id, state, e.id, float(duration) if duration is not None else None,
            log, p.get(P_ERROR), p.get(P_CACHED_FROM), outputs, inputs,
            p.get(P_ERROR_TYPE), p.get(P_USER_ERROR), p.get(P_TRACEBACK),
            str(skipped) if skipped else None,
            _float(p.get(P_PEAK_RSS)), _float(p.get(P_PEAK_RSS_CHILDREN)),
        ))
    # Every node of the pipeline, in its order; the ones that ran no execution say why.
    seen = {n.node_id for n in nodes}
    running = header["status"] == RunStatus.RUNNING
    for nid in header["node_ids"]:
        if nid in seen:
            continue
        note = header["notes"].get(nid) or {}
        state = str(note.get("state") or (NodeState.QUEUED if running else NodeState.NOT_RUN))
        reason = note.get("reason") or (None if running else "the run ended before this node started")
        nodes.append(NodeSummary(nid, state, None, None, None, None, None, reason=reason))
    order = {nid: i for i, nid in enumerate(header["node_ids"])}
    nodes.sort(key=lambda n: (order.get(n.node_id, len(order)), n.execution_id or 0))
    return nodes


def _live_log(header: dict[str, Any], node_id: str, execution_id: int) -> str | None:
    """Where a running node's executor writes its log (the launcher's layout, local roots only)."""
    from headwater.components import storage

    root = header["root"]
    if not root or storage.is_url(root):
        return None
    return str(Path(root, "_logs", header["run_id"], f"{node_id}.{execution_id}.log"))


def _counts(nodes: list[NodeSummary]) -> dict[str, int]:
    last: dict[str, str] = {}
    for n in nodes:  # sorted by node, then execution: the last one counts
        last[n.node_id] = n.state
    counts: dict[str, int] = {}
    for state in last.values():
        counts[state] = counts.get(state, 0) + 1
    return counts


def _detail(store: MetadataStore, ctx: Any) -> RunDetail:
    from headwater.pipelines.outcome import run_outcome

    executions = sorted(store.mlmd.get_executions_by_context(ctx.id), key=lambda e: e.id)
    header = _header(store, ctx, executions)
    nodes = _nodes(store, executions, header)
    counts = _counts(nodes)
    summary = RunSummary(header["run_id"], header["pipeline"], header["status"], header["started"],
                         sum(counts.values()), header["duration"], header["params"], counts)
    outcome = run_outcome(summary, nodes)
    summary = RunSummary(summary.run_id, summary.pipeline, summary.status, summary.started, summary.node_count,
                         summary.duration, summary.params, counts, outcome.blessed, outcome.pushed)
    return RunDetail(summary, nodes, outcome)


def list_runs(store: MetadataStore, *, pipeline: str | None = None, limit: int = 50) -> list[RunSummary]:
    """The runs in ``store``, newest first; each with its node counts and whether it blessed and pushed."""
    contexts = _run_contexts(store)
    if pipeline:
        contexts = [c for c in contexts if _header(store, c)["pipeline"] == pipeline]
    contexts.sort(key=lambda c: (_context_props(c).get(RUN_STARTED) or c.create_time_since_epoch / 1000),
                  reverse=True)
    return [_detail(store, c).summary for c in contexts[:limit]]


def resolve_run_id(store: MetadataStore, run_id: str) -> str:
    """The full id of the run ``run_id`` names: a whole id, a unique prefix of one, or ``latest`` (the newest
    run). An unknown id or an ambiguous prefix is a :class:`MetadataError` listing the candidates."""
    if run_id != "latest" and store.mlmd.get_context_by_type_and_name(CONTEXT_RUN, run_id) is not None:
        return run_id
    contexts = _run_contexts(store)
    started = {c.name: _context_props(c).get(RUN_STARTED) or c.create_time_since_epoch / 1000 for c in contexts}
    newest = sorted(started, key=lambda n: started[n], reverse=True)
    if run_id == "latest":
        if not newest:
            raise MetadataError(f"no runs in {store.display}, so there is no 'latest' run; run a pipeline first")
        return newest[0]
    matches = [n for n in newest if n.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:10]) + (f" and {len(matches) - 10} more" if len(matches) > 10 else "")
        raise MetadataError(f"run id prefix {run_id!r} is ambiguous in {store.display}: it matches {shown}; "
                            "give more characters")
    recent = ", ".join(newest[:5]) or "none"
    raise MetadataError(f"no run {run_id!r} in {store.display}; recent runs: {recent} (or use 'latest')")


def show_run(store: MetadataStore, run_id: str) -> RunDetail:
    """One run: every node of its pipeline with its state, artifacts and log, and how the run came out.
    ``run_id`` may be a unique prefix or ``latest`` (see :func:`resolve_run_id`)."""
    ctx = store.mlmd.get_context_by_type_and_name(CONTEXT_RUN, resolve_run_id(store, run_id))
    assert ctx is not None
    return _detail(store, ctx)
