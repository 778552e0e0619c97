"""Explain a push: which data, transform, training, evaluation and baseline led to a pushed model.

Steps are recognised by the artifact types they produce, not by component names, so stores written by
TFX (``tfx.components.trainer.component.Trainer``) and by headwater (``headwater.components.train.Train``)
read the same way:

=================  ===============================================================================
step               recognised as
=================  ===============================================================================
push               the execution with an ``OUTPUT`` event to the ``PushedModel``
evaluation         the producer of the push's ``ModelBlessing`` input (and its ``ModelEvaluation``)
training           the producer of the push's ``Model`` input (the first non-cached one)
transform          the producer of the ``TransformGraph`` the training consumed
data (ingest)      producers of ``Examples`` in the history of the model or of the examples the
                   evaluation read, that themselves consume no ``Examples`` (the baseline model's data
                   is not included)
=================  ===============================================================================

The *history* of an artifact is walked strictly upstream: the execution that made it (the first
non-cached producer), that execution's ``INPUT`` artifacts, the executions that made those, and so on.
Other executions with an ``OUTPUT`` event to an artifact are not walked through: cached executions
reuse it (listed as ``reused_by``), and resolvers select it — a later run's ``LatestBlessedModel``
records an ``OUTPUT`` event to the model it picked as that run's baseline and consumes that run's
candidate (``exclude``), which is not what the model was trained on. The explanation's ``graph`` is
that history: the production trace (:func:`~headwater.metadata.lineage.query.trace`), with the cached
re-uses by the push's own runs in ``graph.uses``.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headwater.metadata.conventions import (
    A_BASELINE_MODEL,
    A_BASELINE_MODEL_ID,
    A_BLESSED,
    A_CURRENT_MODEL,
    A_CURRENT_MODEL_ID,
    A_PUSHED,
    CONTEXT_NODE,
    CONTEXT_PIPELINE,
    CONTEXT_RUN,
    P_CODE,
    P_RUN,
)
from headwater.metadata.errors import ArtifactNotFoundError
from headwater.metadata.lineage.graph import ArtifactNode, ExecutionNode, LineageGraph
from headwater.metadata.lineage.query import (
    ArtifactRef,
    _pb,
    artifact_node,
    contexts_of_executions,
    raw_store,
    resolve_artifact,
    resolve_subject,
    trace,
)
from headwater.metadata.lineage.validation import validations_of

__all__ = [
    "DataSource",
    "EvaluationInfo",
    "PushExplanation",
    "PushInfo",
    "StepInfo",
    "Threshold",
    "explain_push",
    "recorded_thresholds",
]

#: Custom properties that are bookkeeping, not results (TFX writes these on every artifact).
_BOOKKEEPING = frozenset({"is_external", "tfx_version", "state", "name", "producer_component"})
_BLESSING_KEYS = frozenset({A_BLESSED, A_CURRENT_MODEL, A_CURRENT_MODEL_ID, A_BASELINE_MODEL, A_BASELINE_MODEL_ID})
_CODE_KEY = re.compile(r"module|code|(^|_)fn$|user_code|source_hash|wheel", re.IGNORECASE)
_WHEEL_HASH = re.compile(r"\+([0-9a-f]{64})-py3", re.IGNORECASE)


def _decode(value: Any) -> Any:
    """Execution properties hold JSON for structured parameters; decode them for reading."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[" or text == "null":
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


@dataclass(frozen=True)
class StepInfo:
    """One pipeline step (an execution) with its parameters, code and where it ran.

    ``parameters`` are the execution's properties (JSON decoded); ``code`` the ones that identify user
    code (module file/path, ``*_fn``, code fingerprints; TFX's wheel hash as ``<key>.sha256``);
    ``recorded`` what headwater's launcher adds as ``__name__`` properties (cache key, duration, log).
    """

    execution: ExecutionNode
    pipeline: str | None = None
    run: str | None = None
    node: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    code: Mapping[str, Any] = field(default_factory=dict, hash=False)
    inputs: tuple[tuple[str, ArtifactNode], ...] = ()
    outputs: tuple[tuple[str, ArtifactNode], ...] = ()
    reused_by: tuple[ExecutionNode, ...] = ()
    recorded: Mapping[str, Any] = field(default_factory=dict, hash=False)  # headwater's __bookkeeping__

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution": self.execution.to_dict(),
            "pipeline": self.pipeline,
            "run": self.run,
            "node": self.node,
            "parameters": dict(self.parameters),
            "code": dict(self.code),
            "recorded": dict(self.recorded),
            "inputs": [{"key": k, "artifact": a.key} for k, a in self.inputs],
            "outputs": [{"key": k, "artifact": a.key} for k, a in self.outputs],
            "reused_by": [e.key for e in self.reused_by],
        }


@dataclass(frozen=True)
class DataSource:
    """Ingested data: an ``Examples`` artifact with its span, version and input fingerprint."""

    examples: ArtifactNode
    span: int | None = None
    version: int | None = None
    split_names: tuple[str, ...] = ()
    fingerprint: str | None = None
    ingest: StepInfo | None = None
    used_for: tuple[str, ...] = ()  # "training" and/or "evaluation"
    validation: tuple[Mapping[str, Any], ...] = ()  # its Validate verdicts and drift/skew values

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples.key,
            "uri": self.examples.uri,
            "span": self.span,
            "version": self.version,
            "split_names": list(self.split_names),
            "fingerprint": self.fingerprint,
            "ingest": self.ingest.to_dict() if self.ingest else None,
            "used_for": list(self.used_for),
            "validation": [dict(v) for v in self.validation],
        }


@dataclass(frozen=True)
class Threshold:
    """One metric threshold of an evaluation config (TFMA shape: value and/or change threshold)."""

    metric: str
    value_threshold: Mapping[str, Any] | None = field(default=None, hash=False)
    change_threshold: Mapping[str, Any] | None = field(default=None, hash=False)

    def describe(self) -> str:
        parts = []
        if self.value_threshold:
            v = self.value_threshold
            if "lower_bound" in v:
                parts.append(f">= {v['lower_bound']}")
            if "upper_bound" in v:
                parts.append(f"<= {v['upper_bound']}")
            parts += [f"{k}={x}" for k, x in v.items() if k not in ("lower_bound", "upper_bound")]
        if self.change_threshold:
            c = self.change_threshold
            direction = str(c.get("direction", "")).replace("_IS_BETTER", "").lower()
            bits = [f"{k} {c[k]}" for k in ("absolute", "relative") if k in c]
            parts.append(f"change vs baseline ({direction or 'any direction'}" + (f", {', '.join(bits)})"
                                                                               if bits else ")"))
        return f"{self.metric}: " + ("; ".join(parts) or "(no bounds)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value_threshold": dict(self.value_threshold) if self.value_threshold else None,
            "change_threshold": dict(self.change_threshold) if self.change_threshold else None,
        }


@dataclass(frozen=True)
class EvaluationInfo:
    """The evaluation that blessed (or did not bless) the model, and the baseline it was compared to."""

    step: StepInfo | None
    blessing: ArtifactNode | None
    evaluation: ArtifactNode | None = None
    blessed: bool | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict, hash=False)
    thresholds: tuple[Threshold, ...] = ()
    candidate: ArtifactNode | None = None
    baseline: ArtifactNode | None = None
    baseline_uri: str | None = None
    message: str | None = None  # why it was (not) blessed, when the evaluator says

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution": self.step.to_dict() if self.step else None,
            "blessing": self.blessing.key if self.blessing else None,
            "evaluation": self.evaluation.key if self.evaluation else None,
            "evaluation_uri": self.evaluation.uri if self.evaluation else None,
            "blessed": self.blessed,
            "metrics": dict(self.metrics),
            "thresholds": [t.to_dict() for t in self.thresholds],
            "candidate": self.candidate.key if self.candidate else None,
            "baseline": self.baseline.key if self.baseline else None,
            "baseline_uri": self.baseline_uri,
            "message": self.message,
        }


@dataclass(frozen=True)
class PushInfo:
    """Where and when the model was pushed."""

    pushed_model: ArtifactNode
    pushed: bool | None
    destination: str | None
    version: str | None
    time: datetime | None
    step: StepInfo | None
    skipped_because: str | None = None  # headwater's Push records why it did not push

    def to_dict(self) -> dict[str, Any]:
        return {
            "pushed_model": self.pushed_model.key,
            "skipped_because": self.skipped_because,
            "pushed": self.pushed,
            "destination": self.destination,
            "version": self.version,
            "time": self.time.isoformat() if self.time else None,
            "execution": self.step.to_dict() if self.step else None,
        }


@dataclass(frozen=True)
class PushExplanation:
    """The answer of :func:`explain_push`. ``notes`` says what the store could not tell."""

    push: PushInfo
    model: ArtifactNode | None
    training: StepInfo | None
    transform: StepInfo | None
    data: tuple[DataSource, ...]
    evaluation: EvaluationInfo | None
    graph: LineageGraph
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "push": self.push.to_dict(),
            "model": self.model.to_dict() if self.model else None,
            "training": self.training.to_dict() if self.training else None,
            "transform": self.transform.to_dict() if self.transform else None,
            "data": [d.to_dict() for d in self.data],
            "evaluation": self.evaluation.to_dict() if self.evaluation else None,
            "notes": list(self.notes),
            "graph": self.graph.to_dict(),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_text(self) -> str:
        from headwater.metadata.lineage.render import explanation_text

        return explanation_text(self)


# ---------------------------------------------------------------------------------------- internals
def _as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _first_producer(
    graph: LineageGraph, artifact: ArtifactNode
) -> tuple[ExecutionNode | None, tuple[ExecutionNode, ...]]:
    """The execution that produced ``artifact`` and the cached executions that re-used it.

    The graph is a production trace: an artifact's producers are the executions that made it (cached
    re-uses and resolver selections are kept apart in ``graph.uses``, see
    :mod:`headwater.metadata.lineage._uses`). The first one is the maker.
    """
    producers = sorted(graph.producers(artifact), key=lambda e: (e.create_time_ms or 0, e.id))
    reused = tuple(u.execution for u in graph.uses_of(artifact) if u.kind == "cached")
    return (producers[0] if producers else None), reused


def _history(graph: LineageGraph, start: ArtifactNode) -> tuple[ArtifactNode | ExecutionNode, ...]:
    """``start`` and what it was made from, strictly upstream: each artifact's maker (see
    :func:`_first_producer`), that execution's ``INPUT`` artifacts, their makers, and so on."""
    seen = {start.key}
    order: list[ArtifactNode | ExecutionNode] = [start]
    queue: deque[ArtifactNode | ExecutionNode] = deque([start])
    while queue:
        node = queue.popleft()
        if isinstance(node, ArtifactNode):
            maker, _ = _first_producer(graph, node)
            following: list[ArtifactNode | ExecutionNode] = [maker] if maker is not None else []
        else:
            following = [a for _, a in graph.inputs(node)]
        for nxt in following:
            if nxt.key not in seen:
                seen.add(nxt.key)
                order.append(nxt)
                queue.append(nxt)
    return tuple(order)


def _step(contexts: Mapping[int, Mapping[str, list[str]]], graph: LineageGraph,
          execution: ExecutionNode | None, reused_by: Iterable[ExecutionNode] = (), *,
          data_step: bool = False) -> StepInfo | None:
    if execution is None:
        return None
    names = contexts.get(execution.id, {})
    params: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    for key, value in execution.parameters.items():
        if key.startswith("__") and key.endswith("__") and len(key) > 4:
            recorded[key.strip("_")] = _decode(value)
        else:
            params[key] = _decode(value)
    code: dict[str, Any] = {}
    for key, value in params.items():
        if _CODE_KEY.search(key) or ("fingerprint" in key and not data_step):
            code[key] = value
            match = _WHEEL_HASH.search(str(value))
            if match:
                code[f"{key}.sha256"] = match.group(1)
    fingerprint, run_id = P_CODE.strip("_"), P_RUN.strip("_")  # recorded under their names without "__"
    if fingerprint in recorded and fingerprint not in code:
        code[fingerprint] = recorded.pop(fingerprint)

    def first(kind: str) -> str | None:
        found = names.get(kind) or []
        return found[0] if found else None

    return StepInfo(
        execution=execution,
        pipeline=first(CONTEXT_PIPELINE),
        run=first(CONTEXT_RUN) or (str(recorded[run_id]) if run_id in recorded else None),
        node=first(CONTEXT_NODE),
        parameters=params,
        code=code,
        inputs=graph.inputs(execution),
        outputs=graph.outputs(execution) if execution.key in graph else (),
        reused_by=tuple(reused_by),
        recorded=recorded,
    )


def _thresholds(obj: Any, metric: str | None, out: list[Threshold]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _thresholds(item, metric, out)
        return
    if not isinstance(obj, dict):
        return
    if "value_threshold" in obj or "change_threshold" in obj:
        out.append(Threshold(metric or "?", obj.get("value_threshold"), obj.get("change_threshold")))
        return
    if isinstance(obj.get("name"), str) and (_bounds(obj.get("threshold")) or isinstance(obj.get("change"), dict)):
        # headwater's EvalConfig: {"name": ..., "threshold": {"lower", "upper"}, "change": {...}}
        value = _bounds(obj.get("threshold"))
        change = obj.get("change")
        if isinstance(change, dict):
            change = {k: (str(v).upper() if k == "direction" else v) for k, v in change.items() if v is not None}
        out.append(Threshold(obj["name"], value, change if isinstance(change, dict) else None))
        return
    name = next((obj[k] for k in ("class_name", "metric_name", "metric", "name")
                 if isinstance(obj.get(k), str)), metric)
    for key, value in obj.items():
        by_metric = isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
        if key == "thresholds" and by_metric:
            for metric_name, threshold in value.items():
                _thresholds(threshold, metric_name, out)
        else:
            _thresholds(value, name, out)


def _bounds(threshold: Any) -> dict[str, Any] | None:
    """``{"lower": a, "upper": b}`` (headwater) as TFMA's ``{"lower_bound": a, "upper_bound": b}``."""
    if not isinstance(threshold, dict) or not ({"lower", "upper"} & set(threshold)):
        return None
    names = {"lower": "lower_bound", "upper": "upper_bound"}
    return {names.get(str(k), str(k)): v for k, v in threshold.items() if v is not None}


def recorded_thresholds(parameters: Mapping[str, Any]) -> tuple[Threshold, ...]:
    """The thresholds of an Evaluate execution's recorded parameters (values as MLMD holds them)."""
    return _parse_thresholds({key: _decode(value) for key, value in parameters.items()})


def _parse_thresholds(parameters: Mapping[str, Any]) -> tuple[Threshold, ...]:
    found: list[Threshold] = []
    for value in parameters.values():
        _thresholds(value, None, found)
    return tuple(dict.fromkeys(found))


def _metrics(evaluation: ArtifactNode | None) -> dict[str, Any]:
    """Metric values recorded on the ModelEvaluation: headwater's ``metrics`` dict, else numeric props."""
    if evaluation is None:
        return {}
    recorded = evaluation.custom_properties.get("metrics")
    if isinstance(recorded, dict):
        return dict(recorded)
    return {
        k: v
        for k, v in evaluation.custom_properties.items()
        if k not in _BOOKKEEPING and k not in _BLESSING_KEYS and k != "seconds"
        and isinstance(v, int | float) and not isinstance(v, bool)
    }


def _message(blessing: ArtifactNode) -> str | None:
    value = blessing.get("blessing_message")
    return None if value is None else str(value)


def _lookup(store: Any, graph: LineageGraph, artifact_id: Any) -> ArtifactNode | None:
    aid = _as_int(artifact_id)
    if aid is None:
        return None
    if f"artifact:{aid}" in graph:
        return graph.artifact(aid)
    try:
        return resolve_artifact(store, aid)
    except ArtifactNotFoundError:
        return None


# ---------------------------------------------------------------------------------------- explain
def explain_push(store: Any, pushed_model: ArtifactRef | str) -> PushExplanation:
    """Explain a push, given the ``PushedModel`` (id, URI, object) or the serving path it was pushed to.

    Raises :class:`~headwater.metadata.errors.ArtifactNotFoundError` when nothing matches, naming what
    was given and how to find the right reference.
    """
    raw_store(store)  # fail early on a wrong store argument
    root = resolve_subject(store, pushed_model)
    if root.type_name != "PushedModel":
        raise ArtifactNotFoundError(
            f"{root.label} ({root.uri}) is a {root.type_name}, not a PushedModel; explain a push by its "
            f"PushedModel (see `headwater lineage {root.id} --down` or `headwater artifacts list --type "
            "PushedModel`) or by the serving path it was pushed to",
            artifact_uri=root.uri,
        )
    # the production trace is the push's history: a later run's resolver selecting the model as its
    # baseline (and that run's candidate it excluded) is not walked; cached re-uses of this push's runs are
    graph = trace(store, root, direction="upstream", depth=None, show_cached=True)
    notes: list[str] = []

    # -- find the steps by the artifact types they produced
    pusher, _ = _first_producer(graph, root)
    pusher_inputs = graph.inputs(pusher) if pusher else ()
    model = next((a for _, a in pusher_inputs if a.type_name == "Model"), None)
    blessing = next((a for _, a in pusher_inputs if a.type_name == "ModelBlessing"), None)
    trainer, train_reused = _first_producer(graph, model) if model is not None else (None, ())
    graph_input = next((a for _, a in graph.inputs(trainer) if a.type_name == "TransformGraph"), None) if (
        trainer is not None) else None
    transformer, transform_reused = _first_producer(graph, graph_input) if graph_input else (None, ())
    evaluator, eval_reused = _first_producer(graph, blessing) if blessing is not None else (None, ())
    # data: ingested Examples (their producer consumed no Examples) behind the model and the evaluation;
    # not those behind the baseline model, which share the graph but not the pushed model's history
    roles: dict[int, list[str]] = {}
    if model is not None:
        for node in _history(graph, model):
            if isinstance(node, ArtifactNode) and node.type_name == "Examples":
                roles.setdefault(node.id, []).append("training")
    if evaluator is not None:
        for key, examples in graph.inputs(evaluator):
            if examples.type_name != "Examples" or "baseline" in key:
                continue
            for node in _history(graph, examples):
                if isinstance(node, ArtifactNode) and node.type_name == "Examples":
                    roles.setdefault(node.id, [])
                    if "evaluation" not in roles[node.id]:
                        roles[node.id].append("evaluation")
    ingests: dict[int, tuple[ExecutionNode | None, tuple[ExecutionNode, ...]]] = {}
    for examples_id in roles:
        producer, reused = _first_producer(graph, graph.artifact(examples_id))
        if producer is None or not any(a.type_name == "Examples" for _, a in graph.inputs(producer)):
            ingests[examples_id] = (producer, reused)  # (else: derived examples, e.g. transformed)
    steps = [pusher, trainer, transformer, evaluator, *(p for p, _ in ingests.values())]
    contexts = contexts_of_executions(store, sorted({x.id for x in steps if x is not None}))

    def step(execution: ExecutionNode | None, reused: Iterable[ExecutionNode] = (), *,
             data_step: bool = False) -> StepInfo | None:
        return _step(contexts, graph, execution, reused, data_step=data_step)

    # -- push
    push = PushInfo(
        pushed_model=root,
        pushed=_as_bool(root.get(A_PUSHED)),
        destination=root.get("pushed_destination"),
        version=None if root.get("pushed_version") is None else str(root.get("pushed_version")),
        time=root.create_time,
        step=step(pusher),
        skipped_because=None if root.get("push_skipped") is None else str(root.get("push_skipped")),
    )
    if pusher is None:
        notes.append(f"no execution recorded an OUTPUT event for {root.label}; its history is unknown")

    # -- model, training, transform
    training = step(trainer, train_reused)
    if model is None:
        if pusher is not None:
            notes.append(f"{pusher.label} has no Model input; cannot tell which model was pushed")
    elif trainer is None:
        notes.append(f"no execution recorded producing {model.label}; it was imported or written outside a "
                     "pipeline")
    transform = step(transformer, transform_reused)
    if trainer is not None and graph_input is None:
        notes.append(f"{trainer.label} consumed no TransformGraph: no transform step")

    # -- data
    data: list[DataSource] = []
    for examples_id, (producer, reused) in ingests.items():
        examples = graph.artifact(examples_id)
        ingest = step(producer, reused, data_step=True)
        fingerprint = examples.get("input_fingerprint")
        if fingerprint is None and ingest is not None:
            fingerprint = ingest.parameters.get("input_fingerprint")
        split_names = _decode(examples.get("split_names"))
        data.append(DataSource(
            examples=examples,
            span=_as_int(examples.get("span")),
            version=_as_int(examples.get("version")),
            split_names=tuple(split_names) if isinstance(split_names, list) else (),
            fingerprint=None if fingerprint is None else str(fingerprint),
            ingest=ingest,
            used_for=tuple(roles[examples_id]),
            validation=validations_of(store, examples_id),
        ))
    data.sort(key=lambda d: (d.span if d.span is not None else -1, d.examples.id))
    if not data:
        notes.append("no ingested Examples found upstream of the pushed model or its evaluation")

    # -- evaluation and baseline
    evaluation: EvaluationInfo | None = None
    if blessing is None:
        if pusher is not None:
            notes.append(f"{pusher.label} had no ModelBlessing input: no evaluation gated the push")
    else:
        eval_step = step(evaluator, eval_reused)
        eval_outputs = _evaluator_outputs(store, evaluator)
        evaluation_artifact = next((a for a in eval_outputs if a.type_name == "ModelEvaluation"), None)
        baseline = _lookup(store, graph, blessing.get("baseline_model_id"))
        if baseline is None and eval_step is not None:
            baseline = next((a for k, a in eval_step.inputs if "baseline" in k.lower()), None)
        candidate = _lookup(store, graph, blessing.get("current_model_id")) or model
        evaluation = EvaluationInfo(
            step=eval_step,
            blessing=blessing,
            evaluation=evaluation_artifact,
            blessed=_as_bool(blessing.get("blessed")),
            metrics=_metrics(evaluation_artifact),
            message=_message(blessing),
            thresholds=_parse_thresholds(eval_step.parameters) if eval_step else (),
            candidate=candidate,
            baseline=baseline,
            baseline_uri=blessing.get("baseline_model") or (baseline.uri if baseline else None),
        )
        if evaluation_artifact is not None and not evaluation.metrics:
            notes.append(
                f"metric values are not recorded in the store; they are in the files of "
                f"{evaluation_artifact.label} at {evaluation_artifact.uri}"
            )
        if model is not None and candidate is not None and candidate.id != model.id:
            notes.append(f"the blessing evaluated {candidate.label}, but {model.label} was pushed")
    return PushExplanation(
        push=push,
        model=model,
        training=training,
        transform=transform,
        data=tuple(data),
        evaluation=evaluation,
        graph=graph,
        notes=tuple(notes),
    )


def _evaluator_outputs(store: Any, evaluator: ExecutionNode | None) -> list[ArtifactNode]:
    """All outputs of the evaluator (its ModelEvaluation is a sibling of the blessing, not upstream)."""
    if evaluator is None:
        return []
    raw = raw_store(store)
    output = _pb().Event.OUTPUT
    ids = sorted({e.artifact_id for e in raw.get_events_by_execution_ids([evaluator.id]) if e.type == output})
    return [artifact_node(a) for a in raw.get_artifacts_by_id(ids)] if ids else []

