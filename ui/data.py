"""What the dashboard's pages show, read from ML Metadata: runs, one run, its nodes.

Every page costs a fixed number of MLMD calls, whatever the number of rows it shows: runs are listed with
one filtered ``get_contexts`` (keyset pagination on the context id), and their executions, events and the
few artifacts the list needs are fetched for the whole page at once. Stores written by TFX (whose
executions do not name their run) cost one extra call per 100 executions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headwater.metadata.conventions import (
    A_BLESSED,
    A_PUSHED,
    CONTEXT_EXPERIMENT,
    CONTEXT_PIPELINE,
    CONTEXT_RUN,
    OUTPUT_EVENTS,
    P_CACHED_FROM,
    P_DURATION,
    P_ERROR,
    P_LOG,
    P_NODE,
    P_PEAK_RSS,
    P_RUN,
    P_SKIPPED,
    PARAM_PREFIX,
    RUN_EXPERIMENT,
    RUN_FINISHED,
    RUN_GRAPH,
    RUN_PIPELINE_NAME,
    RUN_STARTED,
    RUN_STATUS,
)
from headwater.metadata.errors import MetadataError
from headwater.metadata.lineage.query import contexts_of_executions, execution_node

__all__ = ["CountingStore", "Dashboard", "RunRow", "RunsQuery", "decode_props", "when"]

E_NODE, E_RUN, E_DURATION, E_ERROR, E_LOG, E_CACHED_FROM, E_SKIPPED = (
    P_NODE, P_RUN, P_DURATION, P_ERROR, P_LOG, P_CACHED_FROM, P_SKIPPED)
STATES = ("pending", "running", "complete", "cached", "skipped", "failed", "canceled", "not run")
MAX_PAGE = 200


class CountingStore:
    """The raw ``ml_metadata`` store, counting the calls made through it (each is one database round)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._raw, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


def when(ms_or_s: float | None, *, seconds: bool = False) -> str:
    if not ms_or_s:
        return "-"
    value = ms_or_s if seconds else ms_or_s / 1000
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def decode_props(proto: Any) -> dict[str, Any]:
    """Custom and plain properties of a context, decoded as the lineage queries decode them."""
    from headwater.metadata.lineage.query import decoded_properties

    return decoded_properties(proto)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class RunsQuery:
    """Filters and position of a runs page."""

    pipeline: str | None = None
    experiment: str | None = None
    status: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: int | None = None  # context id: rows older than this one
    after: int | None = None  # context id: rows newer than this one
    limit: int = 50

    def filter_query(self) -> str:
        parts = [f"type = {_quote(CONTEXT_RUN)}"]
        if self.pipeline:
            parts += [f"parent_contexts_a.name = {_quote(self.pipeline)}",
                      f"parent_contexts_a.type = {_quote(CONTEXT_PIPELINE)}"]
        if self.experiment:
            parts += [f"parent_contexts_b.name = {_quote(self.experiment)}",
                      f"parent_contexts_b.type = {_quote(CONTEXT_EXPERIMENT)}"]
        if self.status:
            parts.append(f"custom_properties.{RUN_STATUS}.string_value = {_quote(self.status)}")
        if self.since_ms:
            parts.append(f"create_time_since_epoch >= {int(self.since_ms)}")
        if self.until_ms:
            parts.append(f"create_time_since_epoch <= {int(self.until_ms)}")
        if self.before:
            parts.append(f"id < {int(self.before)}")
        if self.after:
            parts.append(f"id > {int(self.after)}")
        return " AND ".join(parts)


@dataclass
class RunRow:
    """One row of the runs page."""

    id: int
    run_id: str
    pipeline: str
    experiment: str
    status: str
    started_s: float
    duration: float | None
    params: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    blessed: bool | None = None
    pushed: bool | None = None
    graph: dict[str, Any] | None = None

    @property
    def started(self) -> str:
        return when(self.started_s, seconds=True)

    @property
    def duration_text(self) -> str:
        return "-" if self.duration is None else f"{self.duration:.1f}s"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "run_id": self.run_id, "pipeline": self.pipeline, "experiment": self.experiment,
                "status": self.status, "started": self.started, "duration": self.duration, "params": self.params,
                "counts": self.counts, "blessed": self.blessed, "pushed": self.pushed}


@dataclass(frozen=True)
class _Light:
    """An execution as the runs page needs it: state, times and the launcher's own keys, nothing decoded else."""

    id: int
    type_name: str
    state: str
    custom_properties: dict[str, Any]
    create_time_ms: int
    update_time_ms: int

    @classmethod
    def of(cls, proto: Any) -> _Light:
        from ml_metadata.proto import metadata_store_pb2 as pb

        props = {}
        for key in (E_NODE, E_RUN, E_SKIPPED):
            if key in proto.custom_properties:
                v = proto.custom_properties[key]
                kind = v.WhichOneof("value")
                props[key] = getattr(v, kind) if kind in ("string_value", "int_value", "double_value",
                                                         "bool_value") else None
        return cls(proto.id, proto.type, pb.Execution.State.Name(proto.last_known_state), props,
                   proto.create_time_since_epoch, proto.last_update_time_since_epoch)


def node_state(execution: Any) -> str:
    state = str(execution.state).lower()
    if state == "complete" and execution.custom_properties.get(E_SKIPPED):
        return "skipped"
    return state if state in STATES else "running" if state == "new" else state


def node_id_of(execution: Any) -> str:
    nid = execution.custom_properties.get(E_NODE)
    return str(nid) if nid else execution.type_name.rsplit(".", 1)[-1]


class Dashboard:
    """Read-only queries over one store, for the web pages (one lock: MLMD connections are not shared)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.display = getattr(store, "display", "metadata store")
        self.raw = CountingStore(getattr(store, "mlmd", store))
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ helpers
    def executions(self, protos: Iterable[Any]) -> list[Any]:
        return [execution_node(p) for p in protos]

    def events(self, execution_ids: Sequence[int]) -> list[Any]:
        return list(self.raw.get_events_by_execution_ids(list(execution_ids))) if execution_ids else []

    def contexts_named(self, type_name: str) -> list[str]:
        return sorted(c.name for c in self.raw.get_contexts_by_type(type_name))

    # ------------------------------------------------------------------ runs page
    def runs(self, query: RunsQuery) -> tuple[list[RunRow], bool]:
        """Rows of one page, newest first, and whether older rows exist."""
        from ml_metadata.metadata_store import metadata_store

        limit = max(1, min(query.limit, MAX_PAGE))
        options = metadata_store.ListOptions(
            limit=limit + 1, order_by=metadata_store.OrderByField.ID, is_asc=bool(query.after),
            filter_query=query.filter_query())
        try:
            ctxs = list(self.raw.get_contexts(list_options=options))
        except Exception as exc:  # a filter MLMD cannot run: say which
            raise MetadataError(f"cannot list runs with filter {query.filter_query()!r}: {exc}") from None
        more = len(ctxs) > limit
        ctxs = ctxs[:limit]
        if query.after:
            ctxs.reverse()
            more = True
        return self._rows(ctxs), more

    def _rows(self, ctxs: Sequence[Any]) -> list[RunRow]:
        if not ctxs:
            return []
        ids = ", ".join(str(c.id) for c in ctxs)
        from ml_metadata.metadata_store import metadata_store

        protos = list(self.raw.get_executions(
            list_options=metadata_store.ListOptions(filter_query=f"contexts_a.id IN ({ids})")))
        execs = [_Light.of(p) for p in protos]
        by_run: dict[str, list[Any]] = {c.name: [] for c in ctxs}
        unnamed = [e for e in execs if str(e.custom_properties.get(E_RUN, "")) not in by_run]
        for e in execs:
            rid = str(e.custom_properties.get(E_RUN, ""))
            if rid in by_run:
                by_run[rid].append(e)
        pipeline_of: dict[str, str] = {}
        if unnamed:  # executions written by another tool (TFX): their run is their pipeline_run context
            runs_of = contexts_of_executions(self.raw, [e.id for e in unnamed])
            for e in unnamed:
                for name in runs_of.get(e.id, {}).get(CONTEXT_RUN, [])[:1]:
                    by_run.setdefault(name, []).append(e)
                    for p in runs_of[e.id].get(CONTEXT_PIPELINE, [])[:1]:
                        pipeline_of[name] = p
        # blessed/pushed: only executions of nodes that output a blessing or a pushed model (from the recorded
        # graph; every execution of a run without one)
        outcome_nodes: dict[str, set[str] | None] = {}
        props_of = {c.id: decode_props(c) for c in ctxs}
        graphs = {c.id: _graph(props_of[c.id]) for c in ctxs}
        for c in ctxs:
            graph = graphs[c.id]
            outcome_nodes[c.name] = None if graph is None else {
                n["id"] for n in graph["nodes"] if {"blessing", "pushed_model"} & set(n.get("outputs") or {})}
        asked = [e.id for run, es in by_run.items() for e in es
                 if outcome_nodes.get(run) is None or node_id_of(e) in (outcome_nodes[run] or ())]
        wanted: dict[int, tuple[int, str]] = {}  # artifact id -> (producing execution id, output key)
        for ev in self.events(asked):
            key = _key(ev)
            if _is_output(ev) and key in ("blessing", "pushed_model"):
                wanted[ev.artifact_id] = (ev.execution_id, key)
        flags: dict[int, tuple[str, bool]] = {}
        for a in self.raw.get_artifacts_by_id(sorted(wanted)) if wanted else []:
            eid, key = wanted[a.id]
            flags[eid] = (key, bool(decode_props(a).get(A_BLESSED if key == "blessing" else A_PUSHED)))
        rows = []
        for c in ctxs:
            props = props_of[c.id]
            run_execs = by_run.get(c.name, [])
            rows.append(self._row(c, props, run_execs, flags, pipeline_of.get(c.name, ""), graphs[c.id]))
        return rows

    def _row(self, ctx: Any, props: Mapping[str, Any], execs: Sequence[Any],
             flags: Mapping[int, tuple[str, bool]], pipeline: str, graph: dict[str, Any] | None) -> RunRow:
        latest: dict[str, Any] = {}
        for e in sorted(execs, key=lambda x: x.id):
            latest[node_id_of(e)] = e
        status = str(props.get(RUN_STATUS) or "")
        if not status:
            states = {node_state(e) for e in latest.values()}
            status = ("failed" if "failed" in states else "running" if "running" in states
                      else "succeeded" if states else "empty")
        counts: dict[str, int] = {}
        for e in latest.values():
            s = node_state(e)
            counts[s] = counts.get(s, 0) + 1
        if graph:
            missing = len([n for n in graph["nodes"] if n["id"] not in latest])
            if missing:
                counts["pending" if status == "running" else "not run"] = missing
        blessed = pushed = None
        for e in latest.values():
            kind, value = flags.get(e.id, ("", False))
            if kind == "blessing":
                blessed = value
            elif kind == "pushed_model":
                pushed = value
        started = props.get(RUN_STARTED) or ctx.create_time_since_epoch / 1000
        finished = props.get(RUN_FINISHED)
        if not finished and execs and status not in ("running",):
            finished = max((e.update_time_ms or 0) for e in execs) / 1000 or None
        pipeline = str(props.get(RUN_PIPELINE_NAME) or pipeline)
        if not pipeline:
            parents = self.raw.get_parent_contexts_by_context(ctx.id)
            pipeline = next((p.name for p in parents if p.type == CONTEXT_PIPELINE), "?")
        params = {k[len(PARAM_PREFIX):]: v for k, v in props.items() if k.startswith(PARAM_PREFIX)}
        return RunRow(ctx.id, ctx.name, pipeline, str(props.get(RUN_EXPERIMENT) or pipeline), status,
                      float(started), float(finished) - float(started) if finished else None, params, counts,
                      blessed, pushed, graph)

    # ------------------------------------------------------------------ one run
    def run_context(self, run_id: str) -> Any:
        ctx = self.raw.get_context_by_type_and_name(CONTEXT_RUN, run_id)
        if ctx is None:
            raise MetadataError(f"no run {run_id!r} in {self.display}; see the runs page for the runs it holds")
        return ctx

    def run(self, run_id: str) -> dict[str, Any]:
        """The run, its nodes (from the recorded graph, then from the executions) and its edges."""
        ctx = self.run_context(run_id)
        props = decode_props(ctx)
        execs = self.executions(self.raw.get_executions_by_context(ctx.id))
        events = self.events([e.id for e in execs])
        art_ids = sorted({ev.artifact_id for ev in events})
        arts = {a.id: a for a in self.raw.get_artifacts_by_id(art_ids)} if art_ids else {}
        flags: dict[int, tuple[str, bool]] = {}
        for ev in events:
            key = _key(ev)
            if _is_output(ev) and key in ("blessing", "pushed_model") and ev.artifact_id in arts:
                p = decode_props(arts[ev.artifact_id])
                flags[ev.execution_id] = (key, bool(p.get(A_BLESSED if key == "blessing" else A_PUSHED)))
        row = self._row(ctx, props, execs, flags, "", _graph(props))
        latest: dict[str, Any] = {}
        for e in sorted(execs, key=lambda x: x.id):
            latest[node_id_of(e)] = e
        graph = row.graph or {"nodes": [], "edges": []}
        order = [n["id"] for n in graph["nodes"]] + [n for n in latest if n not in {x["id"] for x in graph["nodes"]}]
        components = {n["id"]: n.get("component", "") for n in graph["nodes"]}
        ios: dict[int, dict[str, list[dict[str, Any]]]] = {e.id: {"inputs": [], "outputs": []} for e in execs}
        producer_node: dict[int, str] = {}
        for ev in sorted(events, key=lambda v: (v.execution_id, _key(v))):
            a = arts.get(ev.artifact_id)
            if a is None:
                continue
            item = {"id": a.id, "key": _key(ev), "type": a.type, "uri": a.uri,
                    "state": _artifact_state(a.state)}
            ios[ev.execution_id]["outputs" if _is_output(ev) else "inputs"].append(item)
        id_to_node = {e.id: node_id_of(e) for e in execs}
        for ev in events:
            if _is_output(ev) and ev.execution_id in id_to_node:
                producer_node.setdefault(ev.artifact_id, id_to_node[ev.execution_id])
        nodes = []
        for nid in order:
            e = latest.get(nid)
            if e is None:
                nodes.append({"id": nid, "component": components.get(nid, ""),
                              "state": "pending" if row.status == "running" else "not run"})
                continue
            p = e.custom_properties
            nodes.append({
                "id": nid, "component": components.get(nid) or e.type_name, "state": node_state(e),
                "execution_id": e.id, "duration": p.get(E_DURATION), "error": p.get(E_ERROR),
                "peak_rss_mib": p.get(P_PEAK_RSS),
                "log": bool(p.get(E_LOG)), "cached_from": p.get(E_CACHED_FROM),
                "started": when(e.create_time_ms), "updated": when(e.update_time_ms),
                "parameters": {k: v for k, v in {**e.properties, **p}.items() if not k.startswith("__")},
                **ios.get(e.id, {"inputs": [], "outputs": []}),
            })
        edges = [{"source": x["source"], "target": x["target"], "label": x["output"]} for x in graph["edges"]]
        if not edges:  # no recorded graph (TFX, older runs): edges from the artifacts passed within the run
            seen = set()
            for ev in events:
                if _is_output(ev) or ev.execution_id not in id_to_node:
                    continue
                src = producer_node.get(ev.artifact_id)
                if src and src != id_to_node[ev.execution_id]:
                    edge = (src, id_to_node[ev.execution_id], _key(ev))
                    if edge not in seen:
                        seen.add(edge)
                        edges.append({"source": edge[0], "target": edge[1], "label": edge[2]})
        summary = row.to_dict()
        summary["finished"] = row.status not in ("running",)
        summary["calls"] = self.raw.calls
        return {"run": summary, "nodes": nodes, "edges": edges, "time": time.time()}

    def log_path(self, run_id: str, node_id: str) -> str | None:
        ctx = self.run_context(run_id)
        for e in sorted(self.executions(self.raw.get_executions_by_context(ctx.id)), key=lambda x: -x.id):
            if node_id_of(e) == node_id:
                path = e.custom_properties.get(E_LOG)
                return str(path) if path else None
        raise MetadataError(f"run {run_id!r} has no node {node_id!r} with an execution")


def _key(ev: Any) -> str:
    return next((s.key for s in ev.path.steps if s.HasField("key")), "")


def _is_output(ev: Any) -> bool:
    from ml_metadata.proto import metadata_store_pb2 as pb

    return pb.Event.Type.Name(ev.type) in OUTPUT_EVENTS


def _is_produced(ev: Any) -> bool:
    """An OUTPUT event: the execution made the artifact (a resolver's pick is INTERNAL_OUTPUT)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    return bool(ev.type == pb.Event.OUTPUT)


def _artifact_state(state: int) -> str:
    from ml_metadata.proto import metadata_store_pb2 as pb

    return str(pb.Artifact.State.Name(state))


def _graph(props: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = props.get(RUN_GRAPH)
    if not raw:
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return data if isinstance(data, dict) and "nodes" in data else None
