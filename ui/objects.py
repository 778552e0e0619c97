"""Artifacts, lineage graphs, run comparisons and pushed models, read from ML Metadata for the pages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from headwater.metadata.conventions import A_BLESSED, A_PUSHED, A_PUSHED_DESTINATION, A_PUSHED_VERSION, CONTEXT_RUN
from headwater.metadata.errors import ArtifactNotFoundError, MetadataError
from headwater.metadata.lineage.graph import LineageGraph
from headwater.metadata.lineage.query import artifact_node, contexts_of_executions, execution_node, trace
from headwater.ui.data import Dashboard, _is_output, _is_produced, _key, node_id_of, when

__all__ = ["artifact_detail", "compare_runs", "elements", "lineage", "models", "run_metrics"]

MAX_COMPARE = 10
#: The models page shows the newest pushes only (every version of each destination up to this many in all).
MAX_PUSHES = 200


def artifact_detail(dash: Dashboard, artifact_id: int) -> dict[str, Any]:
    """The artifact, its producer and consumers (with their runs)."""
    found = dash.raw.get_artifacts_by_id([artifact_id])
    if not found:
        raise ArtifactNotFoundError(f"artifact {artifact_id} not found in {dash.display}; pick one from a run page")
    art = artifact_node(found[0])
    events = list(dash.raw.get_events_by_artifact_ids([artifact_id]))
    exec_ids = sorted({ev.execution_id for ev in events})
    execs = {e.id: e for e in dash.executions(dash.raw.get_executions_by_id(exec_ids))} if exec_ids else {}
    runs = contexts_of_executions(dash.raw, exec_ids) if exec_ids else {}
    producer = None
    consumers = []
    for ev in sorted(events, key=lambda v: v.execution_id):
        e = execs.get(ev.execution_id)
        if e is None:
            continue
        item = {"execution_id": e.id, "node": node_id_of(e), "state": e.state.lower(), "key": _key(ev),
                "run": (runs.get(e.id, {}).get(CONTEXT_RUN) or [None])[0]}
        if _is_produced(ev):
            producer = producer or item
        else:
            if _is_output(ev):
                item["key"] += " (picked by a resolver)"
            consumers.append(item)
    return {"artifact": art, "producer": producer, "consumers": consumers, "created": when(art.create_time_ms)}


# ---------------------------------------------------------------------- lineage
def _start_artifacts(dash: Dashboard, key: str) -> list[int]:
    kind, _, raw_id = key.partition(":")
    if not raw_id.isdigit() or kind not in ("artifact", "execution"):
        raise MetadataError(f"lineage start {key!r} is not 'artifact:ID' or 'execution:ID'")
    if kind == "artifact":
        return [int(raw_id)]
    events = dash.events([int(raw_id)])
    if not events and not dash.raw.get_executions_by_id([int(raw_id)]):
        raise MetadataError(f"execution {raw_id} not found in {dash.display}")
    return sorted({ev.artifact_id for ev in events})


def lineage(dash: Dashboard, key: str, *, direction: str = "both", depth: int | None = 2) -> dict[str, Any]:
    """Cytoscape elements of the lineage around an artifact or execution (``artifact:ID``/``execution:ID``)."""
    if direction not in ("upstream", "downstream", "both"):
        raise MetadataError(f"direction must be upstream, downstream or both, got {direction!r}")
    graphs: list[LineageGraph] = []
    starts = _start_artifacts(dash, key)
    for aid in starts[:20]:
        graphs.append(trace(dash.raw, aid, direction=direction, depth=depth))
    if not starts:  # an execution without artifacts: just itself
        e = dash.executions(dash.raw.get_executions_by_id([int(key.split(":")[1])]))
        return {"elements": elements([], e, []), "root": key, "frontier": []}
    arts: dict[int, Any] = {}
    execs: dict[int, Any] = {}
    edges: dict[tuple[int, int, str], Any] = {}
    frontier: set[str] = set()
    for g in graphs:
        arts.update((a.id, a) for a in g.artifacts)
        execs.update((x.id, x) for x in g.executions)
        edges.update(((x.artifact_id, x.execution_id, x.event_type), x) for x in g.edges)
        frontier.update(g.frontier)
    return {"elements": elements(list(arts.values()), list(execs.values()), list(edges.values()), frontier),
            "root": key, "frontier": sorted(frontier)}


def elements(arts: Sequence[Any], execs: Sequence[Any], edges: Sequence[Any],
             frontier: set[str] | None = None) -> list[dict[str, Any]]:
    """Nodes and edges as Cytoscape reads them; every label is data (the page escapes nothing itself)."""
    out: list[dict[str, Any]] = []
    front = frontier or set()
    for a in arts:
        out.append({"group": "nodes", "data": {"id": a.key, "label": f"{a.type_name} #{a.id}", "kind": "artifact",
                                               "state": a.state.lower(), "href": f"/artifacts/{a.id}",
                                               "more": a.key in front}})
    for x in execs:
        out.append({"group": "nodes", "data": {"id": x.key, "label": f"{node_id_of(x)} #{x.id}",
                                               "kind": "execution", "state": x.state.lower(),
                                               "href": f"/executions/{x.id}", "more": x.key in front}})
    keys = {n["data"]["id"] for n in out}
    for e in edges:
        src, dst = e.source, e.target
        if src in keys and dst in keys:
            out.append({"group": "edges", "data": {"id": f"{src}>{dst}", "source": src, "target": dst,
                                                   "label": ",".join(e.keys)}})
    return out


# ---------------------------------------------------------------------- runs' metrics, compare, models
def _evaluation_ids(dash: Dashboard, exec_ids: Sequence[int]) -> dict[int, int]:
    """``{execution id: ModelEvaluation artifact id}`` among the outputs of ``exec_ids``."""
    out = {}
    for ev in dash.events(list(exec_ids)):
        if _is_produced(ev) and _key(ev) == "evaluation":
            out[ev.execution_id] = ev.artifact_id
    return out


def run_metrics(dash: Dashboard, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{run id: {"evaluation": artifact id, "metrics": {name: value}}}`` from each run's evaluation."""
    from headwater.ui.files import overall_metrics

    result: dict[str, dict[str, Any]] = {}
    for rid in run_ids:
        ctx = dash.run_context(rid)
        execs = dash.executions(dash.raw.get_executions_by_context(ctx.id))
        evals = _evaluation_ids(dash, [e.id for e in execs])
        metrics: dict[str, Any] = {}
        evaluation = None
        if evals:
            evaluation = evals[max(evals)]
            [proto] = dash.raw.get_artifacts_by_id([evaluation])
            art = artifact_node(proto)
            metrics = overall_metrics(art.uri) or dict(art.custom_properties.get("metrics") or {})
        result[rid] = {"evaluation": evaluation, "metrics": metrics}
    return result


def compare_runs(dash: Dashboard, run_ids: Sequence[str]) -> dict[str, Any]:
    """Parameters (differences first), every metric of every run in one table, and the evaluations to overlay."""
    ids = list(dict.fromkeys(r for r in run_ids if r))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise MetadataError(f"compare takes 2 to {MAX_COMPARE} runs, got {len(ids)}; tick them on the runs page")
    runs = {rid: dash.run(rid)["run"] for rid in ids}
    metrics = run_metrics(dash, ids)
    names = sorted({k for r in runs.values() for k in r["params"]})
    params = [{"name": n, "values": [runs[r]["params"].get(n) for r in ids],
               "differs": len({json.dumps(runs[r]["params"].get(n), sort_keys=True, default=str) for r in ids}) > 1}
              for n in names]
    params.sort(key=lambda p: (not p["differs"], p["name"]))
    metric_names = sorted({k for m in metrics.values() for k in m["metrics"]})
    table = [{"name": n, "values": [metrics[r]["metrics"].get(n) for r in ids]} for n in metric_names]
    return {"runs": [runs[r] for r in ids], "params": params, "metrics": table,
            "evaluations": {r: metrics[r]["evaluation"] for r in ids}}


def models(dash: Dashboard) -> list[dict[str, Any]]:
    """Per push destination, every version pushed (newest first; the newest ``MAX_PUSHES`` pushes in all) with
    its blessing and headline metrics."""
    from ml_metadata.metadata_store import metadata_store

    options = metadata_store.ListOptions(limit=MAX_PUSHES, order_by=metadata_store.OrderByField.ID, is_asc=False,
                                         filter_query="type = 'PushedModel'")
    pushed = [artifact_node(p) for p in dash.raw.get_artifacts(list_options=options)]
    if not pushed:
        return []
    events = list(dash.raw.get_events_by_artifact_ids([p.id for p in pushed]))
    pusher = {ev.artifact_id: ev.execution_id for ev in events if _is_produced(ev)}
    pusher_events = dash.events(sorted(set(pusher.values())))
    blessing_of = {ev.execution_id: ev.artifact_id for ev in pusher_events
                   if not _is_output(ev) and _key(ev) == "blessing"}
    model_of = {ev.execution_id: ev.artifact_id for ev in pusher_events if not _is_output(ev) and _key(ev) == "model"}
    blessing_ids = sorted(set(blessing_of.values()))
    blessings = {a.id: artifact_node(a) for a in dash.raw.get_artifacts_by_id(blessing_ids)} if blessing_ids else {}
    # the evaluation next to each blessing: the same evaluator's "evaluation" output
    b_events = list(dash.raw.get_events_by_artifact_ids(blessing_ids)) if blessing_ids else []
    evaluator = {ev.artifact_id: ev.execution_id for ev in b_events if _is_produced(ev)}
    evals = _evaluation_ids(dash, sorted(set(evaluator.values())))
    eval_arts = {a.id: artifact_node(a) for a in dash.raw.get_artifacts_by_id(sorted(set(evals.values())))} if (
        evals) else {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in pushed:
        props = p.custom_properties
        dest = str(props.get(A_PUSHED_DESTINATION) or p.uri)
        base = dest.rstrip("/").rsplit("/", 1)[0] if props.get(A_PUSHED_VERSION) else dest
        eid = pusher.get(p.id)
        bid = blessing_of.get(eid) if eid else None
        blessing = blessings.get(bid) if bid else None
        ev_art = eval_arts.get(evals.get(evaluator.get(bid or -1, -1), -1))
        metrics = dict(ev_art.custom_properties.get("metrics") or {}) if ev_art else {}
        groups.setdefault(base, []).append({
            "artifact": p, "version": props.get(A_PUSHED_VERSION), "destination": dest,
            "pushed": bool(props.get(A_PUSHED)), "created": when(p.create_time_ms),
            "blessing": blessing, "blessed": bool(blessing.custom_properties.get(A_BLESSED)) if blessing else None,
            "model_id": model_of.get(eid) if eid else None, "metrics": metrics,
            "evaluation_id": ev_art.id if ev_art else None})
    out = []
    for base, versions in sorted(groups.items()):
        versions.sort(key=lambda v: (v["artifact"].create_time_ms or 0, v["artifact"].id), reverse=True)
        serving = next((v for v in versions if v["pushed"] and v["artifact"].state == "LIVE"), None)
        out.append({"destination": base, "versions": versions,
                    "serving": serving["artifact"].id if serving else None})
    return out


def execution_detail(dash: Dashboard, execution_id: int) -> dict[str, Any]:
    """One execution: its node, run, state, parameters, inputs and outputs."""
    found = dash.raw.get_executions_by_id([execution_id])
    if not found:
        raise MetadataError(f"execution {execution_id} not found in {dash.display}")
    e = execution_node(found[0])
    events = dash.events([execution_id])
    ids = sorted({ev.artifact_id for ev in events})
    arts = {a.id: artifact_node(a) for a in dash.raw.get_artifacts_by_id(ids)} if ids else {}
    ctx = contexts_of_executions(dash.raw, [execution_id]).get(execution_id, {})
    io: dict[str, list[tuple[str, Any]]] = {"inputs": [], "outputs": []}
    for ev in events:
        if ev.artifact_id in arts:
            io["outputs" if _is_output(ev) else "inputs"].append((_key(ev), arts[ev.artifact_id]))
    params = {k: v for k, v in {**e.properties, **e.custom_properties}.items() if not k.startswith("__")}
    return {"execution": e, "node": node_id_of(e), "run": (ctx.get(CONTEXT_RUN) or [None])[0],
            "contexts": ctx, "parameters": params, "created": when(e.create_time_ms), **io,
            "internal": {k: v for k, v in e.custom_properties.items() if k.startswith("__")}}
