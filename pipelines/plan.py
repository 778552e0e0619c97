"""A pipeline as a JSON document (a *plan*), and back: how a pipeline travels to a process that has no
pipeline file.

A compiled Kubeflow Pipelines task carries the plan of the nodes it needs (itself and its ancestors) so its
entrypoint can rebuild the very same :class:`~headwater.pipelines.Pipeline` — same node ids, components,
bindings and runtime parameters, validated again — and run the launcher for one node. Components are
referred to by module and qualified name (they must be importable where the plan is loaded, as for any
executor); a component defined in a pipeline file also records that file's path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from headwater.components._contract import headwater_version, import_problem, version_problem
from headwater.components._typing import TYPE_NAMES, simple_type_name
from headwater.components.api import Channel, Component, Node, Param, load_component
from headwater.pipelines.errors import PipelineDefinitionError
from headwater.pipelines.pipeline import Pipeline

__all__ = ["PLAN_VERSION", "param_type_name", "pipeline_from_plan", "pipeline_to_plan"]

PLAN_VERSION = "headwater.dev/v1"

def param_type_name(param: Param) -> str | None:
    """``int``/``float``/``str``/``bool``/``list``/``dict`` for a runtime parameter, ``None`` if unknown."""
    return simple_type_name(param.type)


def _needs_file(module: str) -> bool:
    return module == "__main__" or module.startswith("headwater_pipeline_")


def _portable_path(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (how an image usually holds it)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _component_ref(comp: Component) -> dict[str, Any]:
    spec = comp.spec
    ref: dict[str, Any] = {"module": spec.module, "function": spec.function}
    if _needs_file(spec.module) and spec.source_file:
        ref["file"] = _portable_path(spec.source_file)
    return ref


def _node_entry(node: Node) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for key, bound in sorted(node.inputs.items()):
        channels = bound if isinstance(bound, list) else [bound]
        inputs[key] = {
            "channels": [[ch.producer, ch.key] for ch in channels],
            "list": isinstance(bound, list),
        }
    parameters: dict[str, Any] = {}
    for name, value in sorted(node.parameters.items()):
        parameters[name] = {"param": value.name} if isinstance(value, Param) else {"value": value}
    entry: dict[str, Any] = {
        "id": node.id,
        "component": _component_ref(node.component),
        "inputs": inputs,
        "parameters": parameters,
        "caching": node.caching,
    }
    if node.timeout_seconds:
        entry["timeout_seconds"] = node.timeout_seconds
    return entry


def pipeline_to_plan(
    pipeline: Pipeline,
    nodes: Iterable[str] | None = None,
    *,
    root: str | None = None,
    metadata: str | None = None,
) -> dict[str, Any]:
    """The plan of ``pipeline`` restricted to ``nodes`` and their ancestors (default: every node).

    Every runtime parameter of the pipeline is declared, used by the selected nodes or not, so that any
    process holding a plan records the same run parameters. ``root`` overrides the pipeline root.
    """
    wanted: set[str] = set()
    todo = list(pipeline.node_ids if nodes is None else nodes)
    while todo:
        nid = todo.pop()
        if nid not in wanted:
            wanted.add(nid)
            todo.extend(pipeline.upstream(nid))
    params = []
    for p in pipeline.runtime_parameters.values():
        kind = param_type_name(p)
        if kind is None:
            raise PipelineDefinitionError(pipeline.name, [
                f"runtime parameter {p.name!r} has no usable type ({p.type!r}); give it a default or "
                "type=int|float|str|bool|list|dict"
            ])
        params.append({"name": p.name, "type": kind, "default": p.default, "description": p.description})
    return {
        "apiVersion": PLAN_VERSION,
        "kind": "PipelinePlan",
        "headwater_version": headwater_version(),
        "name": pipeline.name,
        "root": root or pipeline.root,
        "metadata": metadata,
        "beam_args": list(pipeline.beam_args),
        "params": params,
        "nodes": [_node_entry(pipeline.node(n)) for n in pipeline.topological_order(wanted)],
    }


def pipeline_from_plan(plan: Mapping[str, Any]) -> Pipeline:
    """Rebuild the pipeline a plan describes (components are imported; the pipeline is validated)."""
    from headwater.components.errors import ExecutorContractError

    if plan.get("apiVersion") != PLAN_VERSION or plan.get("kind") != "PipelinePlan":
        raise ExecutorContractError(
            f"pipeline plan has apiVersion {plan.get('apiVersion')!r} kind {plan.get('kind')!r}; this headwater "
            f"reads {PLAN_VERSION!r} PipelinePlan. Compile the pipeline with the headwater version in the image"
        )
    problem = version_problem(plan.get("headwater_version"))
    if problem:
        raise ExecutorContractError(f"pipeline {plan.get('name')!r}: {problem}")
    params = {
        p["name"]: Param(p["name"], default=p.get("default"), type=TYPE_NAMES[p["type"]],
                         description=p.get("description", ""))
        for p in plan.get("params", [])
    }
    built: dict[str, Node] = {}
    for entry in plan["nodes"]:
        ref = entry["component"]
        source = ref.get("file")
        if source and not os.path.isabs(source):
            source = str(Path.cwd() / source)
        try:
            comp = load_component(ref["module"], ref["function"], source)
        except ImportError as exc:  # the module, or something it imports, is not in this image
            raise ExecutorContractError(f"plan node {entry['id']!r}: "
                                        + import_problem(exc, ref["function"], ref["module"])) from exc
        kwargs: dict[str, Any] = {}
        for key, binding in entry.get("inputs", {}).items():
            channels = []
            for producer, out_key in binding["channels"]:
                upstream = built.get(producer)
                if upstream is None:
                    raise PipelineDefinitionError(plan["name"], [
                        f"plan node {entry['id']!r}: input {key!r} comes from {producer!r}, which the plan does "
                        "not list before it; recompile the pipeline"
                    ])
                channels.append(Channel(producer, out_key, upstream.component.spec.outputs[out_key].type))
            kwargs[key] = channels if binding.get("list") else channels[0]
        for name, value in entry.get("parameters", {}).items():
            kwargs[name] = params[value["param"]] if "param" in value else value["value"]
        node = comp(**kwargs).with_id(entry["id"]).with_caching(bool(entry.get("caching", True)))
        if entry.get("timeout_seconds"):
            node = node.with_timeout(int(entry["timeout_seconds"]))
        built[node.id] = node
    return Pipeline(
        name=plan["name"],
        root=plan["root"],
        nodes=list(built.values()),
        params=list(params.values()),
        metadata=plan.get("metadata"),
        beam_args=plan.get("beam_args", ()),
    )
