"""kill -9 of the runner, Ctrl-C, and two runs at once: MLMD stays consistent and the next run recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from headwater.metadata import ArtifactState, connect
from headwater.metadata.store import ExecutionState

SUPPORT = Path(__file__).resolve().parents[1] / "support"
PIPELINE = SUPPORT / "crash_pipeline.py"


def start(root: Path, workdir: Path, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "HW_TEST_ROOT": str(root), "PYTHONPATH": str(SUPPORT), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "headwater.pipelines.cli", "run", str(PIPELINE), "--workers", "2"],
        cwd=workdir, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"runner exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        if time.time() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def check_consistent(root: Path) -> dict[str, list[str]]:
    """No LIVE artifact without its files; returns node -> execution states."""
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}")
    for proto in store.mlmd.get_artifacts():
        if proto.state == ArtifactState.LIVE:
            assert Path(proto.uri).is_dir(), f"LIVE artifact {proto.id} has no files at {proto.uri}"
    states: dict[str, list[str]] = {}
    for e in store.mlmd.get_executions():
        rec = store.record(e)
        states.setdefault(str(rec.properties.get("__node_id__")), []).append(rec.state)
    return states


@pytest.mark.parametrize("victim", ["first", "second"])
def test_kill_9_then_rerun_recovers(tmp_path, victim):
    """Kill the runner while ``victim`` runs (for 'second', after 'first' and others were published)."""
    root = tmp_path / "root"
    env = {}
    for node in ("first", "second"):
        seconds = tmp_path / f"{node}.seconds"
        seconds.write_text("30" if node == victim else "0.1")
        env[f"HW_{node.upper()}_SECONDS_FILE"] = str(seconds)
    marker = tmp_path / f"{victim}.started"
    env[f"HW_{victim.upper()}_MARKER"] = str(marker)
    if victim == "second":  # let the other nodes finish and be published first
        env["HW_SECOND_MARKER"] = str(marker)
    proc = start(root, tmp_path, **env)
    wait_for(marker, proc)
    if victim == "second":
        time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)  # the runner only: its workers must die with it
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()
    worker_pid = int(marker.read_text())
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the worker outlived the killed runner")
    states = check_consistent(root)
    assert states[victim] == ["RUNNING"]
    # The next run recovers: the abandoned execution becomes FAILED, every node completes exactly once.
    (tmp_path / f"{victim}.seconds").write_text("0.1")
    rerun = start(root, tmp_path, **env)
    out, _ = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, out
    states = check_consistent(root)
    for node, seen in states.items():
        assert "RUNNING" not in seen, (node, seen)
        assert seen.count("COMPLETE") == 1, (node, seen)
    assert states[victim] == ["FAILED", "COMPLETE"]
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}")
    failed = [store.record(e) for e in store.mlmd.get_executions() if e.last_known_state == ExecutionState.FAILED]
    assert failed and all("abandoned: the runner that started it" in str(f.properties["__error__"]) for f in failed)


@pytest.mark.parametrize(("stop", "code", "said"), [
    (lambda pid: os.killpg(pid, signal.SIGINT), 130, "headwater: run canceled\n"),  # a terminal's Ctrl-C
    # Regression: `kill PID` (or a container stop) left the running execution RUNNING until the next run.
    (lambda pid: os.kill(pid, signal.SIGTERM), 143, "headwater: run canceled (SIGTERM)\n"),
], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_cancels_cleanly(tmp_path, stop, code, said):
    root = tmp_path / "root"
    marker = tmp_path / "first.started"
    seconds = tmp_path / "seconds"
    seconds.write_text("30")
    proc = start(root, tmp_path, HW_FIRST_SECONDS_FILE=str(seconds), HW_FIRST_MARKER=str(marker))
    wait_for(marker, proc)
    stop(proc.pid)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == code, out
    assert out.endswith(said), out
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}")
    first = [store.record(e) for e in store.mlmd.get_executions()
             if store.record(e).properties.get("__node_id__") == "first"]
    assert [f.state for f in first] == ["CANCELED"]
    assert not (root / "first" / "out" / str(first[0].id)).exists()  # partial output removed
    check_consistent(root)


def test_two_runs_at_once_on_one_sqlite_store(tmp_path):
    root = tmp_path / "root"
    procs = [start(root, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=90)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    states = check_consistent(root)
    assert set(states) == {"first", "second", "source", "after"}
    for node, seen in states.items():
        assert set(seen) <= {"COMPLETE", "CACHED"} and len(seen) == 2, (node, seen)


def test_linking_contexts_ignores_only_an_existing_link(tmp_path):
    # Regression: linking a context to its parent swallowed every exception ("already linked"), database
    # errors included. Re-linking is still fine; any other failure now surfaces as a MetadataError.
    from headwater.metadata.errors import MetadataError
    from headwater.pipelines import Pipeline
    from headwater.pipelines.launcher import Launcher
    from hw_test_components import produce

    pipeline = Pipeline(name="links", root=str(tmp_path), nodes=[produce().with_id("a")])
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    launcher = Launcher(store, pipeline, "r1", {})
    launcher._link_parent(launcher.run_ctx, launcher.pipeline_ctx)  # linked already by the constructor
    again = Launcher(store, pipeline, "r1", {})  # a re-attached run links the same contexts again
    assert again.run_ctx.id == launcher.run_ctx.id
    parents = store.mlmd.get_parent_contexts_by_context(launcher.run_ctx.id)
    # The pipeline and the experiment (the pipeline's name by default), each linked once.
    assert sorted(p.type_id for p in parents) == sorted({p.type_id for p in parents})
    assert launcher.pipeline_ctx.id in {p.id for p in parents}
    gone = type(launcher.pipeline_ctx)(id=987654, name="missing")
    with pytest.raises(MetadataError, match=r"failed \(put_parent_contexts\): Given parent / child id"):
        launcher._link_parent(launcher.run_ctx, gone)
