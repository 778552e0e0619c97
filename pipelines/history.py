"""Runs as recorded in ML Metadata: what ``headwater runs list`` and ``headwater runs show`` print."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from headwater.metadata.conventions import (
    CONTEXT_RUN,
    OUTPUT_EVENTS,
    P_CACHED_FROM,
    P_DURATION,
    P_ERROR,
    P_ERROR_TYPE,
    P_LOG,
    P_NODE,
    P_TRACEBACK,
    P_USER_ERROR,
    PARAM_PREFIX,
    RUN_FINISHED,
    RUN_PIPELINE_NAME,
    RUN_STARTED,
    RUN_STATUS,
    RunStatus,
)
from headwater.metadata.errors import MetadataError
from headwater.metadata.store import MetadataStore, from_value

__all__ = ["NodeSummary", "RunDetail", "RunSummary", "list_runs", "show_run"]


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

    @property
    def duration_text(self) -> str:
        return f"{self.duration:.2f}s" if self.duration is not None else "-"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NodeSummary:
    node_id: str
    state: str
    execution_id: int
    duration: float | None
    log_path: str | None
    error: str | None
    cached_from: int | None
    outputs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    inputs: dict[str, list[int]] = field(default_factory=dict)
    error_type: str | None = None
    user_error: bool | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    nodes: list[NodeSummary]

    @property
    def status(self) -> str:
        return self.summary.status

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.summary.to_dict(), "nodes": [asdict(n) for n in self.nodes]}

    def to_text(self) -> str:
        s = self.summary
        lines = [
            f"run {s.run_id}  pipeline {s.pipeline}  status {s.status}  started {s.started} UTC  "
            f"duration {s.duration_text}",
        ]
        if s.params:
            lines.append("parameters: " + ", ".join(f"{k}={v!r}" for k, v in sorted(s.params.items())))
        lines.append("")
        lines.append(f"{'NODE':<24} {'STATE':<9} {'EXEC':>6} {'DURATION':>9}  ARTIFACTS / LOG")
        for n in self.nodes:
            took = f"{n.duration:.2f}s" if n.duration is not None else "-"
            extra = f" (from execution {n.cached_from})" if n.cached_from else ""
            lines.append(f"{n.node_id:<24} {n.state:<9} {n.execution_id:>6} {took:>9}{extra}")
            for key, arts in n.outputs.items():
                for a in arts:
                    lines.append(f"{'':<24}   {key}: {a['type']} #{a['id']} {a['uri']}")
            if n.log_path:
                lines.append(f"{'':<24}   log: {n.log_path}")
            if n.error:
                lines.append(f"{'':<24}   error: {n.error.splitlines()[0][:200]}")
        return "\n".join(lines)


def _run_contexts(store: MetadataStore) -> list[Any]:
    return list(store.mlmd.get_contexts_by_type(CONTEXT_RUN))


def _summary(store: MetadataStore, ctx: Any, executions: list[Any] | None = None) -> RunSummary:
    props = {k: from_value(v) for k, v in ctx.custom_properties.items()}
    props |= {k: from_value(v) for k, v in ctx.properties.items()}
    if executions is None:
        executions = list(store.mlmd.get_executions_by_context(ctx.id))
    started = props.get(RUN_STARTED) or ctx.create_time_since_epoch / 1000
    finished = props.get(RUN_FINISHED)
    status = str(props.get(RUN_STATUS) or (RunStatus.RUNNING if executions else RunStatus.EMPTY))
    pipeline = str(props.get(RUN_PIPELINE_NAME) or "")
    if not pipeline:  # a run written by another tool (e.g. TFX): find the parent pipeline context
        parents = store.mlmd.get_parent_contexts_by_context(ctx.id)
        pipeline = parents[0].name if parents else "?"
    params = {k[len(PARAM_PREFIX):]: v for k, v in props.items() if k.startswith(PARAM_PREFIX)}
    node_ids = {from_value(e.custom_properties[P_NODE]) for e in executions if P_NODE in e.custom_properties}
    return RunSummary(ctx.name, pipeline, status, _when(started), len(node_ids) or len(executions),
                      finished - started if finished and started else None, params)


def list_runs(store: MetadataStore, *, pipeline: str | None = None, limit: int = 50) -> list[RunSummary]:
    runs = [_summary(store, c) for c in _run_contexts(store)]
    if pipeline:
        runs = [r for r in runs if r.pipeline == pipeline]
    runs.sort(key=lambda r: r.started, reverse=True)
    return runs[:limit]


def show_run(store: MetadataStore, run_id: str) -> RunDetail:
    ctx = store.mlmd.get_context_by_type_and_name(CONTEXT_RUN, run_id)
    if ctx is None:
        recent = ", ".join(r.run_id for r in list_runs(store, limit=5)) or "none"
        raise MetadataError(f"no run {run_id!r} in {store.display}; recent runs: {recent}")
    executions = sorted(store.mlmd.get_executions_by_context(ctx.id), key=lambda e: e.id)
    events = store.events_by_execution([e.id for e in executions])
    art_ids = sorted({aid for evs in events.values() for *_, aid in evs})
    arts = {a.id: a for a in store.get_artifacts(art_ids)} if art_ids else {}
    nodes = []
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
                     "custom_properties": dict(a.custom_properties)})
            else:
                inputs.setdefault(key, []).append(aid)
        node_id = str(p.get(P_NODE) or rec.type.rsplit(".", 1)[-1])
        duration = p.get(P_DURATION)
        nodes.append(NodeSummary(
            node_id, rec.state.lower(), e.id, float(duration) if duration is not None else None,
            p.get(P_LOG), p.get(P_ERROR), p.get(P_CACHED_FROM), outputs, inputs,
            p.get(P_ERROR_TYPE), p.get(P_USER_ERROR), p.get(P_TRACEBACK),
        ))
    return RunDetail(_summary(store, ctx, executions), nodes)
