"""The execution spec / executor result contract and its command-line entrypoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hw_test_components as c
import pytest
from headwater.components.executor import API_VERSION, ExecutionSpec, ExecutorResult, run_execution
from headwater.metadata import types
from headwater.metadata.errors import ExecutorContractError

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def make_spec(tmp_path: Path, component, **overrides) -> ExecutionSpec:
    spec = component.spec
    outputs = {k: [o.type(str(tmp_path / "out" / k)).to_json()] for k, o in spec.outputs.items()}
    fields = dict(
        pipeline_name="p", pipeline_root=str(tmp_path), run_id="r1", node_id="n", execution_id=7,
        component_module=spec.module, component_function=spec.function, component_file=spec.source_file,
        inputs={}, outputs=outputs, parameters={}, tmp_dir=str(tmp_path / "tmp"),
        log_path=str(tmp_path / "n.log"),
    )
    fields.update(overrides)
    return ExecutionSpec(**fields)


def test_round_trip_and_success(tmp_path):
    spec = make_spec(tmp_path, c.produce, parameters={"value": "hi"})
    assert ExecutionSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    result = run_execution(spec)
    assert result.succeeded and result.execution_id == 7
    [out] = result.outputs["data"]
    assert out["custom_properties"] == {"value": "hi"} and out["properties"] == {"span": 1}
    assert (tmp_path / "out" / "data" / "data.txt").read_text() == "hi"
    assert "execution 7 succeeded" in (tmp_path / "n.log").read_text()
    assert ExecutorResult.from_json(result.to_json()) == result


def test_user_error_is_reported_as_the_users(tmp_path):
    examples = types.Examples(str(tmp_path / "ex"))
    spec = make_spec(tmp_path, c.fail, inputs={"examples": [examples.to_json()]}, parameters={"message": "nope"})
    result = run_execution(spec)
    assert not result.succeeded and result.user_error
    assert result.error_message == "component 'fail' (hw_test_components.fail) raised ValueError: nope"
    assert "raise ValueError(message)" in result.error_traceback
    assert "headwater/components/executor.py" not in result.error_traceback.split("\n")[1]


def test_version_mismatch_refused(tmp_path):
    data = make_spec(tmp_path, c.produce).to_json()
    data["api_version"] = "headwater.dev/v0"
    with pytest.raises(ExecutorContractError, match="understands 'headwater.dev/v1'.*same headwater version"):
        ExecutionSpec.from_json(data)
    assert API_VERSION == "headwater.dev/v1"


def test_missing_component_is_a_clear_failure(tmp_path):
    spec = make_spec(tmp_path, c.produce, component_function="does_not_exist")
    result = run_execution(spec)
    assert not result.succeeded and not result.user_error
    assert "component 'does_not_exist' not found in module 'hw_test_components'" in result.error_message


def test_command_line_entrypoint(tmp_path):
    spec = make_spec(tmp_path, c.produce, parameters={"value": "cli"})
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec.to_json()))
    proc = subprocess.run(
        [sys.executable, "-m", "headwater.components.executor", "--spec", str(spec_file), "--result",
         str(tmp_path / "result.json")],
        env={"PYTHONPATH": str(SUPPORT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    result = ExecutorResult.from_json(json.loads((tmp_path / "result.json").read_text()))
    assert result.succeeded and result.outputs["data"][0]["custom_properties"] == {"value": "cli"}


def test_module_entrypoint_runs_without_a_runpy_warning():
    # The executor module must not be imported by `headwater.components` before runpy executes it.
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "headwater.components.executor",
                           "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr


def test_a_handler_bound_during_an_execution_outlives_it_without_logging_errors(tmp_path):
    """Regression: a logging handler created on sys.stderr inside an execution (TensorFlow's, absl's) wrote to
    the node's closed log file afterwards: '--- Logging error --- … I/O operation on closed file.'"""
    script = f"""
import logging, sys
sys.path.insert(0, {str(SUPPORT)!r})
import hw_test_components as c
from headwater.components.executor import ExecutionSpec, run_execution
from pathlib import Path
root = Path({str(tmp_path)!r})
for i in (1, 2):
    spec = ExecutionSpec(pipeline_name="p", pipeline_root=str(root), run_id="r", node_id="n", execution_id=i,
        component_module="hw_test_components", component_function="logs_via_handler",
        component_file=c.logs_via_handler.spec.source_file, inputs={{}},
        outputs={{"out": [{{"type": "Examples", "uri": str(root / "out" / str(i))}}]}},
        parameters={{"message": f"run {{i}}"}}, tmp_dir=str(root / "tmp"), log_path=str(root / f"n.{{i}}.log"))
    assert run_execution(spec).succeeded
logging.getLogger("hw_bound_handler").info("after the executions")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Logging error" not in done.stderr and "closed file" not in done.stderr, done.stderr
    assert "after the executions" in done.stderr
    assert "bound handler says run 1" in (tmp_path / "n.1.log").read_text()
    second = (tmp_path / "n.2.log").read_text()
    assert "bound handler says run 2" in second and "run 1" not in second
