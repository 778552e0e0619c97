"""Warm workers that outlive a run: real daemon, real worker processes, a private pool folder per test.

Every test that starts a daemon stops it by its pid (the ``warm`` fixture of tests/conftest.py), and points
``HEADWATER_WORKERS_DIR`` at a folder of its own, so a user's real pool is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import hw_warm_components as w
import pytest
from headwater.metadata import connect
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.warm import WarmPool, WarmPoolError, keep_warm_seconds, pool_dirs, query
from headwater.pipelines.warm._paths import private_dir
from warm_helpers import alive as _alive

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def run(pipeline: Pipeline, **kwargs):
    runner = {k: kwargs.pop(k) for k in ("max_workers", "keep_warm") if k in kwargs}
    runner.setdefault("keep_warm", 120)
    return LocalRunner(quiet=True, **runner).run(pipeline, **kwargs)


def status(base: Path) -> dict:
    [folder] = list(pool_dirs(base))
    found = query(folder)
    assert found is not None
    return found


def read(result, node: str, name: str) -> dict:
    [art] = result.outputs(node, "out")
    return json.loads(Path(art.uri, name).read_text())


PIPELINE = '''
import os
from pathlib import Path
from headwater.components import component, Output
from headwater.metadata import types
from headwater.pipelines import Pipeline


@component
def who(out: Output[types.Examples]) -> None:
    import helper
    (Path(out.path) / "who.json").write_text(f'{{"pid": {os.getpid()}, "value": {helper.VALUE}}}')


pipeline = Pipeline(name="edit", root=str(Path(__file__).parent / "root"), nodes=[who()])
'''


def test_workers_outlive_a_run_and_run_the_code_as_it_is_now(tmp_path, warm):
    from headwater.pipelines.loader import load_pipeline

    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    first = run(load_pipeline(str(tmp_path / "pipeline.py")))
    assert first.ok, first
    daemon = status(warm)["pid"]
    (tmp_path / "helper.py").write_text("VALUE = 2\n")  # the component imports it: a cache miss, and warm
    second = run(load_pipeline(str(tmp_path / "pipeline.py")))
    assert second.nodes["who"].state == "done"
    assert read(first, "who", "who.json")["value"] == 1 and read(second, "who", "who.json")["value"] == 2
    assert read(second, "who", "who.json")["pid"] == read(first, "who", "who.json")["pid"]  # the same warm worker
    assert status(warm)["pid"] == daemon
    # The orchestrator records the code fingerprint, so a cold worker's run records the very same one.
    cold = run(load_pipeline(str(tmp_path / "pipeline.py")), keep_warm=False, cache=False)
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    codes = [store.get_execution(r.nodes["who"].execution_id).properties["__code_fingerprint__"]
             for r in (second, cold)]
    assert codes[0] == codes[1]
    assert read(cold, "who", "who.json")["pid"] != read(second, "who", "who.json")["pid"]


def test_no_state_leaks_from_one_execution_into_the_next(tmp_path, warm, monkeypatch):
    monkeypatch.setenv("HW_CLIENT_VAR", "first")
    a = w.probe(label="a").with_id("a")
    b = w.probe(label="b", after=a.outputs.out).with_id("b")
    first = run(Pipeline(name="leaks", root=str(tmp_path / "root"), nodes=[a, b]), max_workers=1)
    assert first.ok, first
    one, two = read(first, "a", "probe.json"), read(first, "b", "probe.json")
    assert one["pid"] == two["pid"]  # one worker ran both
    import random

    for record in (one, two):
        assert record["leak"] is None and not record["path_leak"] and record["counter"] == 1
        assert record["cwd"] == os.getcwd() and record["client_var"] == "first"
        assert record["random"] != random.Random(0).random()  # reseeded from the OS, as a fresh process
    assert two["handlers"] == one["handlers"]
    monkeypatch.setenv("HW_CLIENT_VAR", "second")  # the worker takes on the client's environment each time
    again = run(Pipeline(name="leaks", root=str(tmp_path / "root"), nodes=[a, b]), max_workers=1, cache=False)
    assert read(again, "a", "probe.json")["client_var"] == "second"
    assert read(again, "a", "probe.json")["pid"] == one["pid"] and read(again, "b", "probe.json")["counter"] == 1


def test_a_killed_worker_fails_only_its_execution_and_is_retried(tmp_path, warm):
    pid_file = tmp_path / "pid"
    p = Pipeline(name="kill", root=str(tmp_path / "root"), nodes=[w.hold(pid_file=str(pid_file))])
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=run(p)))
    thread.start()
    deadline = time.time() + 60
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    daemon = status(warm)["pid"]
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    thread.join(60)
    node = box["result"].nodes["hold"]
    assert node.state == "failed"
    assert "warm worker process running this node died (killed by signal 9" in node.error
    assert status(warm)["pid"] == daemon and _alive(daemon)  # the pool lives on
    flag = tmp_path / "flag"
    flag.write_text("")
    retried = run(Pipeline(name="retry", root=str(tmp_path / "root"),
                           nodes=[w.die_once(flag=str(flag)).with_retries(1)]))
    assert retried.ok, retried
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    assert store.get_execution(retried.nodes["die_once"].execution_id).properties["__attempts__"] == 2
    assert status(warm)["pid"] == daemon


def test_workers_are_recycled_after_n_executions_and_above_a_memory_limit(tmp_path, warm, monkeypatch):
    monkeypatch.setenv("HEADWATER_WORKER_MAX_EXECUTIONS", "2")
    a = w.probe(label="a").with_id("a")
    b = w.probe(label="b", after=a.outputs.out).with_id("b")
    c = w.probe(label="c", after=b.outputs.out).with_id("c")
    result = run(Pipeline(name="recycle", root=str(tmp_path / "root"), nodes=[a, b, c]), max_workers=1)
    pids = [read(result, n, "probe.json")["pid"] for n in "abc"]
    assert pids[0] == pids[1] != pids[2]
    assert not _alive(pids[0])
    monkeypatch.setenv("HEADWATER_WORKER_MAX_EXECUTIONS", "50")
    monkeypatch.setenv("HEADWATER_WORKER_MAX_RSS_MB", "1")  # every worker is above it after one execution
    again = run(Pipeline(name="recycle", root=str(tmp_path / "root"), nodes=[a, b]), max_workers=1, cache=False)
    assert read(again, "a", "probe.json")["pid"] != read(again, "b", "probe.json")["pid"]
    log = next(pool_dirs(warm)) / "daemon.log"
    assert "ran 2 executions (limit 2)" in log.read_text() and "MB resident (limit 1 MB)" in log.read_text()


CTRL_C_PIPELINE = '''
import os
from pathlib import Path
import hw_warm_components as w
from headwater.pipelines import Pipeline

pipeline = Pipeline(name="ctrlc", root=os.environ["HW_TEST_ROOT"],
                    nodes=[w.hold(pid_file=os.environ["HW_PID_FILE"], seconds=60)])
'''


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9-runner"])
def test_ctrl_c_stops_the_running_execution_and_the_pool_survives(tmp_path, warm, sig):
    (tmp_path / "pipeline.py").write_text(CTRL_C_PIPELINE)
    pid_file, root = tmp_path / "pid", tmp_path / "root"
    env = {**os.environ, "PYTHONPATH": str(SUPPORT), "HW_TEST_ROOT": str(root), "HW_PID_FILE": str(pid_file)}
    proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "run", str(tmp_path / "pipeline.py")],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while not pid_file.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert pid_file.exists(), proc.communicate()[0]
        daemon = status(warm)["pid"]
        os.killpg(proc.pid, sig)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (130 if sig == signal.SIGINT else -9), output
    worker = int(pid_file.read_text())
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)  # the execution's worker was stopped (a dead runner's connection closed)
    assert _alive(daemon) and status(warm)["pid"] == daemon  # the pool was not
    if sig == signal.SIGKILL:  # the next run marks the abandoned execution FAILED, as without warm workers
        return
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}")
    assert [e.last_known_state for e in store.mlmd.get_executions()] == [store.mlmd.get_executions()[0].CANCELED]
    assert not [a for a in store.mlmd.get_artifacts() if a.state == a.LIVE]


def test_cli_workers_status_and_stop(tmp_path, warm, capsys):
    from headwater.pipelines.cli import main

    assert run(Pipeline(name="cli", root=str(tmp_path / "root"), nodes=[w.probe()])).ok
    capsys.readouterr()
    assert main(["workers", "status", "--format", "json"]) == 0
    [pool] = json.loads(capsys.readouterr().out)
    assert pool["running"] and pool["current"] and pool["executions"] == 1 and len(pool["workers"]) >= 1
    assert main(["workers", "status"]) == 0
    assert f"daemon pid {pool['pid']}" in capsys.readouterr().out
    assert main(["workers", "stop"]) == 0
    assert f"stopped warm pool {Path(pool['dir']).name} (daemon pid {pool['pid']})" in capsys.readouterr().out
    assert not _alive(pool["pid"])
    assert all(not _alive(w["pid"]) for w in pool["workers"])
    assert main(["workers", "status"]) == 0
    assert "no warm pool is running for this Python environment" in capsys.readouterr().out


def test_private_folder_and_socket_and_a_dead_daemon_is_replaced(tmp_path, warm):
    pool = WarmPool(60)
    pool.prewarm(0, ())
    assert stat.S_IMODE(os.stat(warm).st_mode) == 0o700 and stat.S_IMODE(os.stat(pool.dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pool.dir / "sock").st_mode) == 0o600
    first = pool.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # leaves its socket and pid file behind
    deadline = time.time() + 10
    while _alive(first) and time.time() < deadline:
        time.sleep(0.05)
    assert (pool.dir / "sock").exists()
    assert run(Pipeline(name="stale", root=str(tmp_path / "root"), nodes=[w.probe()])).ok
    assert status(warm)["pid"] not in (None, first)


@pytest.mark.skipif(os.getuid() != 0, reason="handing a folder to another user needs root")
def test_a_pool_folder_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(WarmPoolError, match=r"is not a folder owned by uid 0; remove it or point \$HEADWATER_WORK"):
        private_dir(folder)


def test_keep_warm_settings(monkeypatch):
    monkeypatch.delenv("HEADWATER_KEEP_WARM", raising=False)
    assert keep_warm_seconds(None) == 600 and keep_warm_seconds(True) == 600
    assert keep_warm_seconds(False) is None and keep_warm_seconds(30) == 30 and keep_warm_seconds(0) is None
    for raw, expected in (("0", None), ("off", None), ("1", 600), ("45", 45)):
        monkeypatch.setenv("HEADWATER_KEEP_WARM", raw)
        assert keep_warm_seconds(None) == expected
    monkeypatch.setenv("HEADWATER_KEEP_WARM", "sometimes")
    with pytest.raises(WarmPoolError, match=r"HEADWATER_KEEP_WARM='sometimes' is not understood: use 0"):
        keep_warm_seconds(None)


def test_no_keep_warm_flag_runs_without_a_pool(tmp_path, warm, monkeypatch):
    from headwater.pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    assert main(["run", str(tmp_path / "pipeline.py"), "--no-keep-warm", "-q"]) == 0
    assert list(pool_dirs(warm)) == []


def test_pools_are_keyed_by_environment_and_start_up_variables(tmp_path):
    from headwater.pipelines.warm._paths import key_parts, pool_dir, pool_key

    base = {"PATH": "/usr/bin", "HOME": "/root"}
    same = pool_key(key_parts({**base, "HW_ANYTHING": "1"}))  # read at run time: the worker takes it per execution
    assert same == pool_key(key_parts(base))
    assert pool_key(key_parts({**base, "TF_CPP_MIN_LOG_LEVEL": "3"})) != same  # read when TensorFlow starts
    assert pool_key(key_parts({**base, "OMP_NUM_THREADS": "1"})) != same
    parts = key_parts(base)
    assert {"uid", "prefix", "executable", "headwater", "source"} <= set(parts)
    assert parts["uid"] == os.getuid() and parts["prefix"] == sys.prefix
    with pytest.raises(WarmPoolError, match="longer than a Unix socket allows"):
        pool_dir(same, tmp_path / ("x" * 120))
