"""The executor entrypoint checks the contract with the orchestrator that sent its spec: the headwater
release, the execution-spec ``api_version``, and that the component (and what it imports) is importable in
the image — failing the node with a message instead of a stack trace. Run as pods run it: a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hw_test_components as c
from headwater.components._contract import headwater_version, version_problem
from headwater.components.executor import ExecutionSpec, ExecutorResult

SUPPORT = Path(__file__).resolve().parents[1] / "support"
IMAGE = "registry.example/team/train:0.4"


def make_spec(tmp_path: Path, **overrides: object) -> dict:
    spec = c.produce.spec
    fields = dict(
        pipeline_name="p", pipeline_root=str(tmp_path), run_id="r1", node_id="train", execution_id=7,
        component_module=spec.module, component_function=spec.function, component_file=spec.source_file,
        inputs={}, outputs={"data": [c.produce.spec.outputs["data"].type(str(tmp_path / "out")).to_json()]},
        parameters={}, tmp_dir=str(tmp_path / "tmp"), log_path=None,
    )
    fields.update(overrides)
    return ExecutionSpec(**fields).to_json()  # type: ignore[arg-type]


def execute(tmp_path: Path, data: dict, *paths: Path) -> tuple[subprocess.CompletedProcess[str], ExecutorResult]:
    (tmp_path / "spec.json").write_text(json.dumps(data))
    env = {"PYTHONPATH": os.pathsep.join(map(str, [*paths, SUPPORT])), "PATH": "/usr/bin:/bin",
           "HEADWATER_IMAGE": IMAGE}
    proc = subprocess.run(
        [sys.executable, "-m", "headwater.components.executor", "--spec", str(tmp_path / "spec.json"),
         "--result", str(tmp_path / "result.json")], env=env, capture_output=True, text=True, timeout=120,
        cwd=tmp_path)  # as in a pod: not the source tree (whose headwater.egg-info names a version too)
    return proc, ExecutorResult.from_json(json.loads((tmp_path / "result.json").read_text()))


def test_spec_from_another_headwater_release_fails_the_node_clearly(tmp_path):
    data = make_spec(tmp_path)
    data["headwater_version"] = "9.4.0"
    proc, result = execute(tmp_path, data)
    assert proc.returncode == 1 and not result.succeeded and result.execution_id == 7
    assert result.error_type == "ExecutorContractError" and not result.user_error
    assert result.error_message == (
        f"node 'train' cannot run here: image {IMAGE} has headwater {headwater_version()}, the orchestrator that "
        f"sent this node runs headwater 9.4.0: the image and the orchestrator must run the same headwater release "
        f"(9.4.x). Rebuild the image with headwater==9.4.0 (headwater k8s dockerfile writes one), or run the "
        f"orchestrator with headwater {headwater_version()}")
    assert "Traceback" not in proc.stderr and "cannot run here" in proc.stderr
    assert not (tmp_path / "out").exists()  # the component never ran


def test_image_with_an_older_headwater_names_both_versions(tmp_path):
    """The image's own headwater is 0.0.1 (its distribution metadata first on the path, as installed there)."""
    _, result = execute(tmp_path, make_spec(tmp_path), SUPPORT / "old_image")
    assert not result.succeeded
    assert f"image {IMAGE} has headwater 0.0.1, the orchestrator that sent this node runs headwater " \
           f"{headwater_version()}" in (result.error_message or "")


def test_unknown_api_version_is_explained(tmp_path):
    data = make_spec(tmp_path)
    data["api_version"] = "headwater.dev/v2"
    _, result = execute(tmp_path, data)
    assert result.error_type == "ExecutorContractError"
    assert (f"image {IMAGE} (headwater {headwater_version()}) understands execution specs 'headwater.dev/v1', but "
            f"headwater {headwater_version()} sent 'headwater.dev/v2'") in (result.error_message or "")


def test_spec_of_an_older_orchestrator_without_the_version_still_runs(tmp_path):
    data = make_spec(tmp_path, parameters={"value": "old"})
    del data["headwater_version"]
    proc, result = execute(tmp_path, data)
    assert proc.returncode == 0 and result.succeeded, proc.stderr
    assert ExecutionSpec.from_json(data).headwater_version is None


def test_patch_releases_keep_the_contract():
    major, minor = headwater_version().split(".")[:2]
    assert version_problem(f"{major}.{minor}.99") is None
    assert version_problem(None) is None
    assert version_problem(f"{int(major) + 1}.{minor}.0") is not None


def test_module_missing_from_the_image_is_named(tmp_path):
    """hw_image_components imports hw_gpu_stack, which only the "GPU image" (gpu_image/ on its path) has."""
    sys.path.insert(0, str(SUPPORT / "gpu_image"))
    try:
        import hw_image_components as ic
    finally:
        sys.path.remove(str(SUPPORT / "gpu_image"))
    spec = ic.fit.spec
    data = make_spec(tmp_path, component_module=spec.module, component_function=spec.function,
                     component_file=spec.source_file, outputs={"model": [spec.outputs["model"].type(
                         str(tmp_path / "model")).to_json()]})
    _, result = execute(tmp_path, data)
    assert result.error_type == "ExecutorContractError" and not result.user_error, result.error_message
    assert ("component 'fit' cannot be loaded: its module 'hw_image_components' imports 'hw_gpu_stack', which "
            f"image {IMAGE} does not have") in (result.error_message or "")
    _, result = execute(tmp_path, data, SUPPORT / "gpu_image")  # the image that has it
    assert result.succeeded, result.error_message
    assert (tmp_path / "model" / "model.txt").read_text() == "gpu-stack"


def test_component_module_absent_from_the_image(tmp_path):
    data = make_spec(tmp_path, component_module="team_pipeline.components", component_function="produce",
                     component_file="/nowhere/team_pipeline/components.py")
    _, result = execute(tmp_path, data)
    assert result.error_type == "ExecutorContractError"
    assert ("its module 'team_pipeline.components' is not importable in image registry.example/team/train:0.4"
            in (result.error_message or ""))


def test_heavy_imports_a_component_declares_are_checked_before_it_runs(tmp_path):
    import hw_image_needs as hn

    spec = hn.needs_stack.spec
    data = make_spec(tmp_path, component_module=spec.module, component_function=spec.function,
                     component_file=spec.source_file, outputs={"out": [spec.outputs["out"].type(
                         str(tmp_path / "o")).to_json()]})
    _, result = execute(tmp_path, data)
    assert result.error_type == "ExecutorContractError"
    assert (f"component 'needs_stack' needs 'hw_gpu_stack', which image {IMAGE} does not have"
            in (result.error_message or ""))
