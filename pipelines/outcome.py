"""How a run came out, in a few lines: built from ML Metadata by one function for the end of ``headwater run``,
``headwater runs show`` (text and JSON) and :attr:`RunResult.outcome <headwater.pipelines.RunResult.outcome>`.

Per evaluated model: the headline metrics against the baseline and the verdict (the ModelBlessing's
``blessed`` and ``blessing_message``, the ModelEvaluation's ``metrics`` / ``baseline_metrics``); per push: where
the model went (the PushedModel's ``pushed_destination`` and ``pushed_version``) or why it did not; every node
that was skipped, blocked, failed, canceled or not run, and why; and the command that prints the logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from headwater.metadata.conventions import (
    A_BASELINE_METRICS,
    A_BLESSED,
    A_BLESSING_MESSAGE,
    A_METRICS,
    A_PUSH_SKIPPED,
    A_PUSHED,
    A_PUSHED_DESTINATION,
    A_PUSHED_VERSION,
    A_ROLLOUT_MESSAGE,
    EVENT_OUTPUT,
    TYPE_SERVING_ROLLOUT,
    NodeState,
)

if TYPE_CHECKING:
    from headwater.pipelines.history import NodeSummary, RunSummary

__all__ = ["EXIT_NOT_PUSHED", "ModelVerdict", "NodeNote", "PushOutcome", "RunOutcome", "run_outcome"]

#: ``headwater run --require-push``: the exit status of a run that succeeded but pushed no model.
EXIT_NOT_PUSHED = 3

#: Metrics shown first when an evaluation has them (the rest follow by name, up to :data:`_HEADLINE`).
_PREFERRED = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy", "auc",
              "auc_precision_recall", "mean_squared_error", "mean_absolute_error", "loss")
_HEADLINE = 4
_QUIET_STATES = frozenset({NodeState.DONE, NodeState.CACHED})


@dataclass(frozen=True)
class ModelVerdict:
    """What an evaluating node (one that wrote a ModelBlessing) decided about its candidate model."""

    node_id: str
    blessed: bool
    message: str  # the blessing's reason, e.g. the threshold that failed, in words
    metrics: Mapping[str, float]  # candidate, Overall slice
    baseline_metrics: Mapping[str, float]  # the baseline model's, when there was one

    def headline(self) -> str:
        """The first few metrics, each with the baseline's value when there is one."""
        names = [m for m in _PREFERRED if m in self.metrics]
        names += sorted(m for m in self.metrics if m not in names and m != "example_count")
        parts = []
        for name in names[:_HEADLINE]:
            text = f"{name} {_num(self.metrics[name])}"
            if name in self.baseline_metrics:
                text += f" (baseline {_num(self.baseline_metrics[name])})"
            parts.append(text)
        return ", ".join(parts)


@dataclass(frozen=True)
class PushOutcome:
    """What a pushing node (one that wrote a PushedModel, or was to) did."""

    node_id: str
    pushed: bool
    destination: str | None = None
    version: str | None = None
    reason: str | None = None  # not pushed: why (skipped by the blessing gate, failed, blocked, not run)


@dataclass(frozen=True)
class NodeNote:
    """A node that did not simply run or come from the cache: skipped, blocked, failed, canceled or not run."""

    node_id: str
    state: str
    reason: str
    log_path: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How a run came out. :meth:`lines` is what ``headwater run`` prints at the end and ``runs show`` too."""

    run_id: str
    status: str
    verdicts: tuple[ModelVerdict, ...] = ()
    pushes: tuple[PushOutcome, ...] = ()
    notes: tuple[NodeNote, ...] = ()
    #: (node id, message) of each step that rolled a pushed model out to serving (``RolloutServing``)
    rollouts: tuple[tuple[str, str], ...] = ()

    @property
    def blessed(self) -> bool | None:
        """True when every evaluated model was blessed; None when no node evaluated a model."""
        return all(v.blessed for v in self.verdicts) if self.verdicts else None

    @property
    def pushed(self) -> bool | None:
        """True when some pushing node pushed a model; None when the pipeline pushes nothing."""
        return any(p.pushed for p in self.pushes) if self.pushes else None

    @property
    def logs_command(self) -> str:
        return f"headwater runs logs {self.run_id}"

    def lines(self) -> list[str]:
        """A few lines: verdicts, pushes, nodes skipped / blocked / failed and why, where the logs are."""
        out = []
        for v in self.verdicts:
            verdict = "BLESSED" if v.blessed else "NOT BLESSED"
            metrics = v.headline()
            out.append(f"  {v.node_id}: {verdict}" + (f" — {metrics}" if metrics else ""))
            if v.message:
                out.append(f"    {'why' if not v.blessed else 'verdict'}: {v.message}")
        pushed_nodes = {p.node_id for p in self.pushes}
        for p in self.pushes:
            if p.pushed:
                where = p.destination or "?"
                out.append(f"  {p.node_id}: pushed to {where}" + (f" (version {p.version})" if p.version else ""))
            else:
                reason = p.reason or "no reason recorded"
                for v in self.verdicts:  # the blessing's message is printed above: don't repeat it
                    if v.message and reason.endswith(f": {v.message}"):
                        reason = f"{reason[: -len(v.message) - 2]} (see {v.node_id} above)"
                out.append(f"  {p.node_id}: not pushed — {reason}")
        out.extend(f"  {node_id}: {message}" for node_id, message in self.rollouts)
        for n in self.notes:
            if n.node_id in pushed_nodes and n.state == NodeState.SKIPPED:
                continue  # already said above
            out.append(f"  node {n.node_id!r} {n.state.replace('_', ' ')}: {n.reason}")
            if n.log_path:
                out.append(f"    log: {n.log_path}")
        out.append(f"  logs: {self.logs_command} [NODE]")
        return [f"outcome of run {self.run_id}:", *out]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(blessed=self.blessed, pushed=self.pushed, logs=self.logs_command)
        return data


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _floats(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _last_per_node(nodes: Sequence[NodeSummary]) -> list[NodeSummary]:
    last: dict[str, NodeSummary] = {}
    for n in nodes:
        last[n.node_id] = n
    return list(last.values())


def _artifacts(node: NodeSummary, type_name: str) -> list[dict[str, Any]]:
    """What ``node`` produced of ``type_name`` (OUTPUT events: a resolver's picks are not its products)."""
    return [a for arts in node.outputs.values() for a in arts
            if a["type"] == type_name and a.get("event", EVENT_OUTPUT) == EVENT_OUTPUT]


def run_outcome(summary: RunSummary, nodes: Sequence[NodeSummary]) -> RunOutcome:
    """The outcome of the run ``summary`` describes, from its ``nodes`` as :func:`~headwater.pipelines.history.
    show_run` reads them from ML Metadata (the last execution of each node counts)."""
    verdicts: list[ModelVerdict] = []
    pushes: list[PushOutcome] = []
    notes: list[NodeNote] = []
    rollouts: list[tuple[str, str]] = []
    for n in _last_per_node(nodes):
        if n.state not in _QUIET_STATES:
            reason = n.reason or ((n.error or "").splitlines() or [""])[0][:300]
            if n.state not in (NodeState.RUNNING, NodeState.QUEUED):
                log = n.log_path if n.state in (NodeState.FAILED, NodeState.CANCELED) else None
                notes.append(NodeNote(n.node_id, n.state, reason or "no reason recorded", log))
        evaluations = _artifacts(n, "ModelEvaluation")
        for blessing in _artifacts(n, "ModelBlessing"):
            props = blessing["custom_properties"]
            if A_BLESSED not in props:
                continue
            evaluation = evaluations[0]["custom_properties"] if evaluations else {}
            verdicts.append(ModelVerdict(
                n.node_id, bool(props[A_BLESSED]) and props[A_BLESSED] not in (0, "0"),
                str(props.get(A_BLESSING_MESSAGE) or ""),
                _floats(evaluation.get(A_METRICS)), _floats(evaluation.get(A_BASELINE_METRICS)),
            ))
        for pushed in _artifacts(n, "PushedModel"):
            props = pushed["custom_properties"]
            ok = props.get(A_PUSHED) in (1, True) and n.state != NodeState.SKIPPED
            version = props.get(A_PUSHED_VERSION)
            reason = None if ok else str(n.reason or props.get(A_PUSH_SKIPPED) or "the push recorded pushed=0")
            pushes.append(PushOutcome(n.node_id, ok, props.get(A_PUSHED_DESTINATION) if ok else None,
                                      str(version) if ok and version is not None else None, reason))
        if n.state != NodeState.SKIPPED:
            rollouts.extend((n.node_id, str(r["custom_properties"][A_ROLLOUT_MESSAGE]))
                            for r in _artifacts(n, TYPE_SERVING_ROLLOUT) if A_ROLLOUT_MESSAGE in r["custom_properties"])
    return RunOutcome(summary.run_id, summary.status, tuple(verdicts), tuple(pushes), tuple(notes), tuple(rollouts))

