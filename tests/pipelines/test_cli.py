"""The command line: run, runs list/show, errors, help, and a start that imports nothing heavy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
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
    assert "a " in shown.stdout and "done" in shown.stdout and "log:" in shown.stdout
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


# ---------------------------------------------------------------------------------------------- the command table
def test_every_command_in_the_table_is_in_help(capsys):
    from headwater.pipelines.cli import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command.name}" in out and "unavailable" not in out
    assert [c.name for c in COMMANDS] == ["run", "runs", "lineage", "artifacts", "template", "compile", "k8s", "schema",
                                          "ui", "completion", "workers", "serve"]


def test_a_command_needing_a_missing_extra_is_listed_and_says_what_to_install(tmp_path, monkeypatch, capsys):
    from headwater.pipelines import cli as cli_package

    # A command whose module needs a library that is not installed (as a 'ui' command needing its web stack).
    (tmp_path / "hw_ui_command.py").write_text("import hw_web_stack_not_installed\n\ndef configure(parser): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ui = cli_package.Command("ui", "hw_ui_command:configure", "browse runs and lineage in a browser", extra="ui")
    others = tuple(c for c in cli_package.COMMANDS if c.name != "ui")
    monkeypatch.setattr(cli_package, "COMMANDS", (*others, ui))
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "browse runs and lineage in a browser [unavailable: pip install 'headwater[ui]']" in " ".join(out.split())
    assert "    run " in out and "    k8s " in out  # the others are there as always
    for argv in (["ui"], ["ui", "--port", "8080"], ["ui", "--help"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("headwater: error: headwater ui needs the 'ui' extra: pip install 'headwater[ui]' "
                              "(missing module 'hw_web_stack_not_installed'; importing hw_ui_command failed: "
                              "ModuleNotFoundError: No module named 'hw_web_stack_not_installed')"), err
    assert main(["runs", "show", "r", "--root", str(tmp_path)]) == 2  # other commands still run
    assert "does not exist; run a pipeline first" in capsys.readouterr().err


def test_a_builtin_command_that_fails_to_import_names_its_module(monkeypatch, capsys):
    import sys

    monkeypatch.delitem(sys.modules, "headwater.pipelines.cli.templates", raising=False)
    monkeypatch.setitem(sys.modules, "headwater.pipelines.cli.templates", None)  # importing it raises ImportError
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "[unavailable: run 'headwater template' to see why]" in " ".join(capsys.readouterr().out.split())
    assert main(["template", "list"]) == 2
    assert re.match(r"headwater: error: headwater template is unavailable: module 'headwater\.pipelines\.cli\."
                    r"templates' is missing \(importing headwater\.pipelines\.cli\.templates failed: "
                    r"ModuleNotFoundError: .*\); reinstall headwater with its dependencies: pip install "
                    r"--force-reinstall headwater$", capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------- KEY=VALUE
def test_key_value_options_one_parser_one_message():
    from headwater.metadata.errors import ParameterError
    from headwater.pipelines.cli._args import key_values, secret_refs

    assert key_values(["a=1", "b=x=y", " c =", "a=2"], "--param") == {"a": "2", "b": "x=y", "c": ""}
    for bad in ("oops", "=1", " =1", ""):
        with pytest.raises(ParameterError, match=f"^--env expects KEY=VALUE, got {re.escape(repr(bad))}$"):
            key_values([bad], "--env")
    assert secret_refs(["AWS_KEY=creds:access:key"]) == {"AWS_KEY": ("creds", "access:key")}
    for bad in ("AWS_KEY", "AWS_KEY=creds", "AWS_KEY=:key", "AWS_KEY=creds:", "=creds:key"):
        with pytest.raises(ParameterError, match=f"^--secret-env expects VAR=SECRET:KEY, got {re.escape(repr(bad))}$"):
            secret_refs([bad])


def test_bad_param_has_the_same_message_in_run_and_in_a_kfp_task(tmp_path, capsys):
    from headwater.pipelines.kfp.task import main as task_main

    path = write_pipeline(tmp_path, PIPELINE)
    result = cli("run", str(path), "--param", "value", cwd=tmp_path)
    assert result.returncode == 2
    assert "headwater: error: --param expects KEY=VALUE, got 'value'" in result.stderr
    assert task_main(["--plan", "{}", "--node", "a", "--run-id", "r", "--param", "value"]) == 2
    assert capsys.readouterr().err == "headwater: error: --param expects KEY=VALUE, got 'value'\n"


def test_shell_completion_snippet_and_completions(tmp_path):
    for shell in ("bash", "zsh"):
        snippet = cli("completion", shell, cwd=tmp_path)
        assert snippet.returncode == 0 and "headwater" in snippet.stdout and "_ARGCOMPLETE" in snippet.stdout
    out = tmp_path / "completions.txt"
    env = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": "headwater run p.py --req",
           "COMP_POINT": "24", "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    done = cli(cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert out.read_text().split() == ["--require-push"]


def test_quiet_run_prints_the_run_id_and_outcome_and_logs_take_latest(tmp_path):
    path = write_pipeline(tmp_path, PIPELINE)
    run = cli("run", str(path), "-q", cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == ""
    first, second, *_ = run.stdout.splitlines()
    run_id = re.fullmatch(r"run (\S+) succeeded in [\d.]+s", first).group(1)
    assert second == f"outcome of run {run_id}:"
    assert run.stdout.splitlines()[-1] == f"  logs: headwater runs logs {run_id} [NODE]"
    logs = cli("runs", "logs", "latest", "a", cwd=tmp_path)
    assert logs.returncode == 0 and "execution 1 started" in logs.stdout
    # A reader that went away (`runs logs RUN | head`): the command ends quietly, without a traceback.
    script = ("import os, sys\n"
              "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
              "from headwater.pipelines.cli import main\n"
              f"code = main(['runs', 'logs', {run_id[:12]!r}])\n"
              "sys.stderr.write(f'exit {code}\\n')\n"
              "sys.exit(code)\n")
    piped = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONPATH": str(SUPPORT)})
    assert piped.stderr == "exit 141\n" and piped.returncode == 141


def test_runs_logs_follows_a_running_node(tmp_path):
    marker = tmp_path / "started"
    path = write_pipeline(tmp_path, f"""
import hw_test_components as c
from headwater.pipelines import Pipeline

s = c.sleeper(seconds=4.0, marker={str(marker)!r}).with_id("s")
pipeline = Pipeline(name="follow", root="runs/follow", nodes=[s])
""")
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    run = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "run", str(path), "-q"], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the node never started"
        followed = cli("runs", "logs", "latest", "s", "--follow", "--root", "runs/follow", cwd=tmp_path)
        assert followed.returncode == 0, followed.stderr
        lines = followed.stdout.splitlines()
        assert "headwater: node 's' execution 1 started" in lines
        assert lines[-1] == "==> s ended: done <=="
        assert "(no log" not in followed.stdout
    finally:
        _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
