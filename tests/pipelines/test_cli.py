"""The command line: run, runs list/show, errors, help, and a start that imports nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from headwater.pipelines.cli import main

SUPPORT = Path(__file__).resolve().parents[1] / "support"
HELLO = Path(__file__).resolve().parents[2] / "templates" / "hello" / "pipeline.py"


def write_pipeline(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pipeline.py"
    path.write_text(body)
    return path


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(SUPPORT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


PIPELINE = """
import hw_test_components as c
from headwater.pipelines import Param, Pipeline

a = c.produce(value=Param("value", default="x")).with_id("a")
b = c.consume(examples=a.outputs.data).with_id("b")
pipeline = Pipeline(name="clidemo", root="runs/clidemo", nodes=[a, b])
"""


def test_run_list_show(tmp_path):
    path = write_pipeline(tmp_path, PIPELINE)
    first = cli("run", str(path), "--param", "value=hello", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "a" in first.stderr and "succeeded" in first.stderr
    listed = cli("runs", "list", "--format", "json", cwd=tmp_path)
    [run] = json.loads(listed.stdout)
    assert run["pipeline"] == "clidemo" and run["status"] == "succeeded" and run["params"] == {"value": "hello"}
    shown = cli("runs", "show", run["run_id"], cwd=tmp_path)
    assert shown.returncode == 0
    assert "a " in shown.stdout and "complete" in shown.stdout and "log:" in shown.stdout
    assert "data: Examples #1" in shown.stdout
    again = cli("run", str(path), "--param", "value=hello", cwd=tmp_path)
    assert "2 cached" in again.stderr
    assert "2 done" in cli("run", str(path), "--param", "value=hello", "--no-cache", cwd=tmp_path).stderr
    assert "1 done, 1 not_run" in cli("run", str(path), "--to", "a", "--no-cache", cwd=tmp_path).stderr


def test_failed_run_exits_nonzero_and_names_node(tmp_path):
    path = write_pipeline(tmp_path, PIPELINE.replace("c.consume(", "c.fail("))
    result = cli("run", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "node 'b' failed: component 'fail' (hw_test_components.fail) raised ValueError: boom" in result.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = 1\n", "defines no Pipeline at module level; assign one to a variable named 'pipeline'"),
        ("def broken(:\n", "pipeline.py:1: syntax error in pipeline file"),
        ("import hw_test_components\nraise RuntimeError('nope')\n",
         "pipeline.py:2: loading pipeline file .* raised RuntimeError: nope"),
    ],
)
def test_bad_pipeline_files(tmp_path, body, message):
    import re

    result = cli("run", str(write_pipeline(tmp_path, body)), cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(message, result.stderr), result.stderr


def test_bad_params_and_slices(tmp_path):
    path = write_pipeline(tmp_path, PIPELINE)
    bad = cli("run", str(path), "--param", "nope=1", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown runtime parameter(s) nope" in bad.stderr
    assert "expects KEY=VALUE" in cli("run", str(path), "--param", "oops", cwd=tmp_path).stderr
    assert "no node 'zz'" in cli("run", str(path), "--from", "zz", cwd=tmp_path).stderr
    workers = cli("run", str(path), "--workers", "-3", cwd=tmp_path)
    assert workers.returncode == 2 and "--workers must be 1 or more, got -3" in workers.stderr


def test_runs_without_store_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEADWATER_METADATA", raising=False)
    with pytest.raises(SystemExit, match="which metadata store"):
        main(["runs", "list"])
    assert main(["runs", "show", "nope", "--root", str(tmp_path)]) == 2
    assert "does not exist; run a pipeline first" in capsys.readouterr().err


def test_runs_show_unknown_run(tmp_path, capsys):
    path = write_pipeline(tmp_path, PIPELINE)
    assert cli("run", str(path), cwd=tmp_path).returncode == 0
    assert main(["runs", "show", "r-nope", "--root", str(tmp_path / "runs" / "clidemo")]) == 2
    assert "no run 'r-nope'" in capsys.readouterr().err


def test_help_and_version_start_without_heavy_imports(tmp_path):
    code = (
        "import sys; from headwater.pipelines.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
        "heavy = [m for m in ('tensorflow', 'apache_beam', 'tensorflow_model_analysis', 'tensorflow_transform',"
        " 'ml_metadata') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out and "run" in out and "runs" in out
    version = cli("--version", cwd=tmp_path)
    assert version.stdout.startswith("headwater ")


def test_hello_template_runs(tmp_path):
    import shutil

    shutil.copy(HELLO, tmp_path / "pipeline.py")
    result = cli("run", "pipeline.py", "--param", "greeting=hi you", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(next((tmp_path / "runs" / "count" / "summary").glob("*/summary.json")).read_text())
    assert summary == {"words": 6}
