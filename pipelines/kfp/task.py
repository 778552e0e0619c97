"""The entrypoint of every task of a pipeline compiled for Kubeflow Pipelines (KFP).

::

    python -m headwater.pipelines.kfp_task --node train --run-id RUN --plan PLAN_JSON \\
        [--run-name NAME] [--param KEY=VALUE ...] \\
        [--output-parameters '{"NAME": "OUTPUT.PROPERTY"}' --executor-input EXECUTOR_INPUT_JSON]
        [--output-parameter NAME OUTPUT.PROPERTY FILE ...]

(``headwater.pipelines.kfp_task``, the name compiled specs hold, runs this module.) Compiled specs give
every task of one image the same command: the node, the run id and the output-parameter requests come
from the task's input parameters, the plan is the whole pipeline's (the task keeps its node and the
node's ancestors), and the output parameter files are read from KFP's executor input (``{{$}}``).
Specs compiled by older versions — the node's own plan, ``--output-parameter NAME OUTPUT.PROPERTY FILE``
— still run.

Each KFP task runs the headwater launcher for its one node, in *task mode*: it rebuilds the pipeline from
the plan, takes the inputs produced by upstream nodes **in this run** (the run id is the KFP run's id)
from ML Metadata, looks up the cache, registers the execution, runs the executor — the same
``python -m headwater.components.executor`` a Kubernetes pod runs, as a child process whose output goes
to the pod log and to the node's log file — and publishes the outcome. MLMD therefore holds the same
executions, artifacts, events and contexts as a LocalRunner run. The task process is the MLMD writer for
its node: unlike KubernetesRunner pods, a KFP task needs the database connection (``HEADWATER_METADATA``,
from a Kubernetes Secret). See docs/kfp.md.

Output parameters (``--output-parameter blessed blessing.blessed FILE``) publish an output artifact's
custom property as a KFP output parameter, which is how a KFP condition can gate a later task.
Exit status: 0 when the node is done, cached or skipped; 1 when it failed (KFP retries per the task's
retry policy); 2 when the task could not even start (bad plan or arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from headwater.components.errors import ExecutionError
from headwater.components.executor import ExecutionSpec, ExecutorResult
from headwater.metadata.artifact import Artifact
from headwater.metadata.conventions import (
    A_BLESSED,
    CONTEXT_RUN,
    P_ERROR,
    P_KFP_RUN_NAME,
    P_NODE,
    ExecutionState,
    NodeState,
    RunStatus,
)
from headwater.metadata.errors import HeadwaterError
from headwater.metadata.store import MetadataStore, published_order, to_value
from headwater.pipelines.cli._args import key_values
from headwater.pipelines.gates import validation_gate_blocks
from headwater.pipelines.launcher import Launcher, Outcome, is_local_path
from headwater.pipelines.pipeline import Pipeline
from headwater.pipelines.plan import pipeline_from_plan, restrict_plan

__all__ = ["main", "outputs_in_run", "run_task"]

_OK_STATES = (NodeState.DONE, NodeState.CACHED, NodeState.SKIPPED)


def _node_of(execution: Any) -> str | None:
    value = execution.custom_properties.get(P_NODE)
    return value.string_value if value is not None else None


def outputs_in_run(store: MetadataStore, run_id: str, node_id: str) -> dict[str, list[Artifact]] | None:
    """Outputs of the latest successful execution of ``node_id`` in run ``run_id`` (``None``: none yet)."""
    found = [
        e for e in store.executions_in_context(CONTEXT_RUN, run_id)
        if e.last_known_state in ExecutionState.SUCCESS and _node_of(e) == node_id
    ]
    if not found:
        return None
    return store.execution_outputs(max(found, key=published_order).id)


def _abandon_earlier_attempts(store: MetadataStore, run_id: str, node_id: str) -> list[int]:
    """Mark executions of ``node_id`` left RUNNING in this run as FAILED.

    KFP starts a retry only after the previous pod of the task has ended, so a RUNNING execution of the
    same node in the same run belongs to an attempt that died (evicted, OOM-killed) without publishing.
    """
    marked = []
    for proto in store.executions_in_context(CONTEXT_RUN, run_id):
        if proto.last_known_state == ExecutionState.RUNNING and _node_of(proto) == node_id:
            proto.last_known_state = ExecutionState.FAILED
            proto.custom_properties[P_ERROR].string_value = (
                "abandoned: the KFP task attempt that started it ended without publishing a result "
                "(pod killed or evicted); a later attempt took over"
            )
            store.mlmd.put_executions([proto])
            marked.append(proto.id)
    return marked


class _Tee:
    """Copy a child's output, line by line, to our stdout (the pod log) and to the node's log file."""

    def __init__(self, source: Any, sink: TextIO, log_path: str | None) -> None:
        self.source = source
        self.sink = sink
        self.log = None
        if log_path and is_local_path(log_path):
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            self.log = open(log_path, "ab")  # noqa: SIM115 - closed by the reader thread
        self.thread = threading.Thread(target=self._pump, daemon=True, name="headwater-tee")
        self.thread.start()

    def _pump(self) -> None:
        try:
            for line in iter(self.source.readline, b""):
                if self.log is not None:
                    self.log.write(line)
                    self.log.flush()
                buffer = getattr(self.sink, "buffer", None)
                if buffer is not None:
                    self.sink.flush()
                    buffer.write(line)
                    buffer.flush()
                else:
                    self.sink.write(line.decode(errors="replace"))
                    self.sink.flush()
        finally:
            if self.log is not None:
                self.log.close()

    def join(self) -> None:
        self.thread.join(timeout=10)
        self.source.close()


def _execute(spec: ExecutionSpec, timeout: int | None, stream: TextIO) -> ExecutorResult:
    """Run the executor entrypoint as a child process; its output goes to ``stream`` and the log file.

    A child keeps the MLMD writer alive when the executor dies (``os._exit``, a crash, the kernel's OOM
    killer), so the execution is still recorded as FAILED with what happened.
    """
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="headwater-task-") as tmp:
        spec_file, result_file = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        # The child prints to its stdout; the tee writes the node's log file (executor output only).
        spec_file.write_text(json.dumps(replace(spec, log_path=None).to_json()))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("HEADWATER_METADATA", None)  # the executor never touches MLMD: do not hand it the credentials
        child = subprocess.Popen(
            # (-W: runpy warns that headwater.components imported the executor module before running it.)
            [sys.executable, "-W", "ignore::RuntimeWarning:runpy", "-m", "headwater.components.executor",
             "--spec", str(spec_file),
             "--result", str(result_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        )
        tee = _Tee(child.stdout, stream, spec.log_path)
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:  # KFP/Argo stops the pod: stop the executor first
            child.terminate()
            raise KeyboardInterrupt

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_term)
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            tee.join()
            return ExecutorResult.failure(
                spec.execution_id, "TimeoutError",
                f"node {spec.node_id!r} did not finish within its timeout of {timeout} s (set with "
                ".with_timeout()); the executor was killed", started_at=started)
        except KeyboardInterrupt:
            child.kill()
            child.wait()
            tee.join()
            raise
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
        tee.join()
        if result_file.exists():
            try:
                return ExecutorResult.from_json(json.loads(result_file.read_text()))
            except (ValueError, TypeError, HeadwaterError) as exc:
                return ExecutorResult.failure(spec.execution_id, "ExecutorContractError",
                                              f"unreadable executor result: {exc}", started_at=started)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        hint = " (SIGKILL: often the out-of-memory killer; raise the node's memory)" if code == -9 else ""
        return ExecutorResult.failure(
            spec.execution_id, "ExecutorCrashed",
            f"the executor of node {spec.node_id!r} {how}{hint} without writing a result; see the task log",
            started_at=started)


def _write_output_parameters(outcome: Outcome, requests: Sequence[tuple[str, str, str]], stream: TextIO) -> None:
    """Publish ``output.property`` of the node's outputs as KFP output parameter files (booleans).

    A missing artifact or property is written as ``false``: a gate fails closed.
    """
    for name, source, path in requests:
        key, _, prop = source.partition(".")
        arts = outcome.outputs.get(key) or []
        value = arts[0].custom_properties.get(prop) if arts else None
        if value is None:
            print(f"headwater: output parameter {name!r}: output {key!r} has no property {prop!r}; writing false",
                  file=stream)
        flag = bool(value) and str(value).lower() not in ("0", "false")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("true" if flag else "false")


def _update_run_status(launcher: Launcher, plan: Mapping[str, Any], outcome: Outcome) -> str | None:
    """Record the run's status when this task decides it: failed now, or succeeded when nothing is left.

    Nothing is left when every node that can still run in this run has succeeded; a node gated on a
    blessing that came out false (and everything downstream of it) will not run under KFP.
    """
    if outcome.state not in _OK_STATES:
        launcher.finish(RunStatus.FAILED)
        return RunStatus.FAILED
    graph = plan.get("graph") or {}
    upstream: Mapping[str, list[str]] = graph.get("nodes") or {}
    gates: Mapping[str, list[list[str]]] = graph.get("gates") or {}
    if not upstream:
        return None
    store, run_id = launcher.store, launcher.run_id
    outputs: dict[str, dict[str, list[Artifact]] | None] = {}

    def done(node_id: str) -> dict[str, list[Artifact]] | None:
        if node_id not in outputs:
            outputs[node_id] = outputs_in_run(store, run_id, node_id)
        return outputs[node_id]

    closed: set[str] = set()  # nodes that will never run in this run
    order = list(upstream)
    data_gates: Mapping[str, list[str]] = graph.get("data_gates") or {}
    for node_id in order:
        if any(u in closed for u in upstream[node_id]):
            closed.add(node_id)
            continue
        for gate in data_gates.get(node_id, []):
            produced = done(gate)
            if produced is None:
                return None  # the gate is not decided yet
            if validation_gate_blocks(produced):
                closed.add(node_id)
        if node_id in closed:
            continue
        for producer, key in gates.get(node_id, []):
            produced = done(producer)
            if produced is None:
                return None  # the gate is not decided yet
            blessing = (produced.get(key) or [None])[0]
            if blessing is None or not blessing.custom_properties.get(A_BLESSED):
                # The "not blessed" branch still runs this node (the launcher records it skipped); its
                # descendants depend on the blessed branch only.
                closed.update(d for d in order if _descends(d, node_id, upstream))
    for node_id in order:
        if node_id not in closed and done(node_id) is None:
            return None
    status = RunStatus.FAILED if any(n in closed for n in data_gates) else RunStatus.SUCCEEDED  # a data gate blocked
    launcher.finish(status)
    return status


def _descends(node_id: str, ancestor: str, upstream: Mapping[str, list[str]]) -> bool:
    todo, seen = list(upstream.get(node_id, [])), set()
    while todo:
        nid = todo.pop()
        if nid == ancestor:
            return True
        if nid not in seen:
            seen.add(nid)
            todo.extend(upstream.get(nid, []))
    return False


def _note_run_name(launcher: Launcher, run_name: str | None) -> None:
    ctx = launcher.run_ctx
    if not run_name or P_KFP_RUN_NAME in ctx.custom_properties:
        return
    to_value(run_name, ctx.custom_properties[P_KFP_RUN_NAME])
    launcher.store.mlmd.put_contexts([ctx])


def run_task(
    plan: Mapping[str, Any],
    node_id: str,
    run_id: str,
    params: Mapping[str, str] | None = None,
    *,
    run_name: str | None = None,
    output_parameters: Sequence[tuple[str, str, str]] = (),
    metadata: str | None = None,
    stream: TextIO | None = None,
) -> Outcome:
    """Run one node of the plan's pipeline in run ``run_id``, as a KFP task does; return its outcome.

    ``metadata`` (else ``$HEADWATER_METADATA``, else the plan's connection, else the SQLite file under the
    pipeline root) is the store this task writes.
    """
    from headwater.pipelines.runner import open_store

    out = stream or sys.stdout
    pipeline: Pipeline = pipeline_from_plan(restrict_plan(plan, node_id))
    node = pipeline.node(node_id)
    values = pipeline.resolve_params(dict(params or {}))
    store = open_store(pipeline, metadata or os.environ.get("HEADWATER_METADATA"))
    launcher = Launcher(store, pipeline, run_id, values)
    _note_run_name(launcher, run_name)
    abandoned = _abandon_earlier_attempts(store, run_id, node_id)
    if abandoned:
        print(f"headwater: marked execution(s) {abandoned} of node {node_id!r} abandoned by an earlier attempt "
              "as FAILED", file=out)
    for producer in sorted(pipeline.upstream(node_id)):
        produced = outputs_in_run(store, run_id, producer)
        if produced is None:
            raise ExecutionError(
                f"node {node_id!r} needs the outputs of node {producer!r}, which has no successful execution in "
                f"run {run_id!r} of pipeline {pipeline.name!r} in {store.display}. Did KFP reuse a cached task "
                "(headwater compiles every task with caching off; do not enable KFP caching for the run), or do "
                "the tasks write to different metadata stores?",
                node_id=node_id, run_id=run_id,
            )
        launcher.outputs[producer] = produced
    print(f"headwater: pipeline {pipeline.name!r} run {run_id} node {node_id!r} (metadata {store.display})",
          file=out, flush=True)
    try:
        outcome = launcher.prepare(node, beam_args=tuple(pipeline.beam_args))
    except HeadwaterError:  # e.g. a resolver that failed: nothing was recorded for the node, the run failed
        launcher.finish(RunStatus.FAILED)
        raise
    if outcome.state == NodeState.LAUNCH:
        assert outcome.spec is not None
        try:
            result = _execute(outcome.spec, node.timeout_seconds, out)
        except KeyboardInterrupt:
            launcher.fail(node, outcome, "canceled: the KFP task was stopped", state=ExecutionState.CANCELED)
            launcher.finish(RunStatus.CANCELED)
            raise
        outcome = launcher.publish(node, outcome, result)
    if outcome.state in _OK_STATES:
        _write_output_parameters(outcome, output_parameters, out)
    status = _update_run_status(launcher, plan, outcome)
    extra = f"; run {status}" if status else ""
    if outcome.state in _OK_STATES:
        print(f"headwater: node {node_id!r} {outcome.state} (execution {outcome.execution_id}){extra}", file=out)
    else:
        print(f"headwater: node {node_id!r} FAILED (execution {outcome.execution_id}): {outcome.error}\n"
              f"  log: {outcome.log_path}{extra}", file=out)
    return outcome


def _output_parameter_files(requests: str | None, executor_input: str | None) -> list[tuple[str, str, str]]:
    """``(name, output.property, file)`` for each requested output parameter, its file from KFP's executor
    input (``outputs.parameters[name].outputFile``, as KFP's driver wrote it)."""
    wanted = json.loads(requests) if requests else {}
    if not isinstance(wanted, dict):
        raise ValueError(f"--output-parameters: {requests!r} is not a JSON object {{name: output.property}}")
    if not wanted:
        return []
    if not executor_input:
        raise ValueError(f"--output-parameters {requests} needs --executor-input (KFP's {{{{$}}}}), which names "
                         "the output parameter files")
    declared = (json.loads(executor_input).get("outputs") or {}).get("parameters") or {}
    out = []
    for name, source in sorted(wanted.items()):
        entry = declared.get(name) or {}
        path = entry.get("outputFile") or entry.get("output_file")
        if not path:
            raise ValueError(f"output parameter {name!r} is not among the task's outputs in --executor-input "
                             f"({sorted(declared) or 'none'}); recompile the pipeline")
        out.append((str(name), str(source), str(path)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m headwater.pipelines.kfp_task",
        description="Run one node of a headwater pipeline as a Kubeflow Pipelines task (the launcher in task "
                    "mode: this process writes the node's records to ML Metadata).",
    )
    parser.add_argument("--plan", required=True, help="the pipeline plan (JSON text, or @FILE)")
    parser.add_argument("--node", required=True, help="the node to run")
    parser.add_argument("--run-id", required=True, help="the run id (the KFP run's id)")
    parser.add_argument("--run-name", help="the KFP run's display name, recorded on the run")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="runtime parameter")
    parser.add_argument("--output-parameter", action="append", nargs=3, default=[],
                        metavar=("NAME", "OUTPUT.PROPERTY", "FILE"),
                        help="write an output artifact's custom property to a KFP output parameter file")
    parser.add_argument("--output-parameters", metavar="JSON",
                        help='output parameters to write, {"NAME": "OUTPUT.PROPERTY"}; their files are named by '
                             "--executor-input")
    parser.add_argument("--executor-input", metavar="JSON",
                        help="KFP's executor input (the {{$}} placeholder): where output parameters go")
    parser.add_argument("--metadata", help="metadata connection (default: $HEADWATER_METADATA)")
    args = parser.parse_args(argv)
    try:
        text = Path(args.plan[1:]).read_text() if args.plan.startswith("@") else args.plan
        plan = json.loads(text)
        requests = [tuple(x) for x in args.output_parameter]
        requests += _output_parameter_files(args.output_parameters, args.executor_input)
        outcome = run_task(
            plan, args.node, args.run_id, key_values(args.param, "--param"), run_name=args.run_name,
            output_parameters=requests, metadata=args.metadata,
        )
    except KeyboardInterrupt:
        print("headwater: task stopped", file=sys.stderr)
        return 143
    except (HeadwaterError, ValueError) as exc:
        print(f"headwater: error: {exc}", file=sys.stderr)
        return 2
    return 0 if outcome.state in _OK_STATES else 1


if __name__ == "__main__":
    raise SystemExit(main())
