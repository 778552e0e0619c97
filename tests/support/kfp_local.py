"""Run a compiled KFP pipeline spec's tasks on this machine the way the KFP backend would (a test harness).

What KFP's driver and launcher do for a container task, reproduced for the subset headwater emits:

* task order from ``dependentTasks``; a task runs only when every task it depends on succeeded;
* inputs: ``componentInputParameter`` from the run's parameters (root defaults, overridden),
  ``runtimeValue.constant`` with the ``{{$.pipeline_job_*}}`` placeholders substituted (as the driver does),
  ``taskOutputParameter`` from the producer's output parameter file, read as its declared type;
* ``triggerPolicy.condition`` evaluated with a real CEL implementation (``celpy``) over
  ``inputs.parameter_values``, as KFP's driver evaluates it with cel-go;
* placeholders in command and args replaced as KFP's launcher formats values (numbers without a trailing
  ``.0``, booleans ``true``/``false``, lists and structs as JSON); ``{{$}}`` is the executor input as JSON
  (``inputs.parameterValues``, ``outputs.parameters[name].outputFile``, ``outputs.outputFile``), checked
  against KFP's ``ExecutorInput`` proto;
* output parameters read as the launcher reads them: from the executor output file when it lists them,
  else from each output parameter's file;
* the retry policy (``maxRetryCount``) re-runs a failed container; the container's ``env`` is set and the
  Kubernetes platform spec's ``secretAsEnv`` is applied from ``secrets``. Tasks inherit this process's
  environment (the "image"), except the variables named in ``drop_env``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass
class TaskRun:
    name: str
    state: str  # succeeded | failed | skipped (condition false) | not_run (upstream did not succeed)
    attempts: int = 0
    args: list[str] = field(default_factory=list)
    output: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


def kfp_text(value: Any) -> str:
    """A parameter value as KFP's launcher writes it into a placeholder."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = format(Decimal(repr(float(value))), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _from_text(text: str, kind: str) -> Any:
    if kind == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "t", "f"):
            raise ValueError(f"not a boolean: {text!r}")
        return lowered in ("true", "1", "t")
    if kind in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        return float(text)
    if kind in ("LIST", "STRUCT"):
        return json.loads(text)
    return text


def resolve_command(container: Mapping[str, Any], component: Mapping[str, Any], values: Mapping[str, Any],
                    outdir: Path) -> tuple[list[str], list[str], dict[str, str], str]:
    """The container's command and args with KFP's placeholders replaced, as the launcher replaces them.

    Returns (command, args, output parameter files by name, executor output file); the files' directory
    is created, as the launcher's ``prepareOutputFolders`` does.
    """
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb

    out_files = {
        key: str(outdir / "outputs" / key)
        for key in component.get("outputDefinitions", {}).get("parameters", {})
    }
    output_file = str(outdir / "kfp_outputs" / "output_metadata.json")
    executor_input = {"inputs": {"parameterValues": dict(values)},
                      "outputs": {"parameters": {k: {"outputFile": p} for k, p in out_files.items()},
                                  "outputFile": output_file}}
    # What the driver hands the launcher must be a valid ExecutorInput; {{$}} is its JSON.
    message = json_format.ParseDict(executor_input, pb.ExecutorInput(), ignore_unknown_fields=False)
    replacements = {"{{$}}": json.dumps(json_format.MessageToDict(message), separators=(",", ":"))}
    replacements |= {"{{$.inputs.parameters['" + k + "']}}": kfp_text(v) for k, v in values.items()}
    replacements |= {"{{$.outputs.parameters['" + k + "'].output_file}}": p for k, p in out_files.items()}

    def substitute(text: str) -> str:
        for placeholder, value in replacements.items():
            text = text.replace(placeholder, value)
        return text

    command = [substitute(a) for a in container["command"]]
    args = [substitute(a) for a in container["args"]]
    assert "{{$" not in " ".join(command + args), "unresolved placeholder"
    for path in [*out_files.values(), output_file]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return command, args, out_files, output_file


def _order(tasks: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    while len(order) < len(tasks):
        ready = [t for t in sorted(tasks) if t not in order and set(tasks[t].get("dependentTasks", [])) <= set(order)]
        assert ready, "cycle in dependentTasks"
        order.extend(ready)
    return order


def run_compiled(
    spec: Mapping[str, Any],
    platform: Mapping[str, Any] | None,
    *,
    run_id: str,
    run_name: str,
    params: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    drop_env: tuple[str, ...] = (),
) -> dict[str, TaskRun]:
    import celpy

    cel = celpy.Environment()
    root_values = {
        name: pdef.get("defaultValue")
        for name, pdef in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }
    root_values.update(params or {})
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    platform_execs = (platform or {}).get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}) \
        .get("executors", {})
    runs: dict[str, TaskRun] = {}
    outdir = Path(tempfile.mkdtemp(prefix="kfp-outputs-"))
    for name in _order(tasks):
        task = tasks[name]
        if any(runs[d].state != "succeeded" for d in task.get("dependentTasks", [])):
            runs[name] = TaskRun(name, "not_run")
            continue
        component = spec["components"][task["componentRef"]["name"]]
        input_types = {k: v["parameterType"] for k, v in
                       component.get("inputDefinitions", {}).get("parameters", {}).items()}
        values: dict[str, Any] = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                values[key] = root_values[source["componentInputParameter"]]
            elif "runtimeValue" in source:
                constant = source["runtimeValue"]["constant"]
                values[key] = {"{{$.pipeline_job_uuid}}": run_id, "{{$.pipeline_job_name}}": run_name}.get(
                    constant, constant)
            elif "taskOutputParameter" in source:
                ref = source["taskOutputParameter"]
                values[key] = runs[ref["producerTask"]].outputs[ref["outputParameterKey"]]
            else:  # pragma: no cover - not emitted by headwater
                raise AssertionError(f"unsupported input {source}")
        assert set(values) == set(input_types), (name, sorted(values), sorted(input_types))
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition:
            program = cel.program(cel.compile(condition))
            verdict = program.evaluate({"inputs": celpy.json_to_cel({"parameter_values": values})})
            if not bool(verdict):
                runs[name] = TaskRun(name, "skipped")
                continue
        exec_label = component["executorLabel"]
        container = executors[exec_label]["container"]
        command, args, out_files, output_file = resolve_command(container, component, values, outdir / name)
        if command[0] == "python":
            command[0] = sys.executable
        task_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop_env}
        task_env.pop("HEADWATER_METADATA", None)
        task_env.update({item["name"]: item["value"] for item in container.get("env", [])})
        for item in platform_execs.get(exec_label, {}).get("secretAsEnv", []):
            secret = (secrets or {})[item["secretName"]]
            for mapping in item["keyToEnv"]:
                task_env[mapping["envVar"]] = secret[mapping["secretKey"]]
        retries = int(task.get("retryPolicy", {}).get("maxRetryCount", 0))
        run = TaskRun(name, "failed", args=args)
        for _attempt in range(retries + 1):
            run.attempts += 1
            proc = subprocess.run(command + args, capture_output=True, text=True, env=task_env, cwd=workdir)
            run.output += proc.stdout + proc.stderr
            if proc.returncode == 0:
                run.state = "succeeded"
                break
        if run.state == "succeeded":
            out_types = component.get("outputDefinitions", {}).get("parameters", {})
            written = json.loads(Path(output_file).read_text()).get("parameterValues", {}) \
                if Path(output_file).exists() else {}
            for key, path in out_files.items():
                run.outputs[key] = written[key] if key in written else \
                    _from_text(Path(path).read_text(), out_types[key]["parameterType"])
        runs[name] = run
    return runs
