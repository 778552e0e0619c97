"""The orchestrator killed mid-run and restarted (re-attach, no duplicate Jobs), and Ctrl-C deleting Jobs.

The orchestrator runs as ``headwater run ... --runner kubernetes`` in a subprocess; the stand-in (this
process) plays the cluster and outlives it, as a real cluster would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from headwater.metadata import connect
from headwater.pipelines.kubernetes.manifests import LABEL_NODE
from k8s_support import HERE, REPO, RUNTIME_IMAGE, K8sEnv, kill_when_running

NS = "headwater"


def orchestrator(k8s: K8sEnv, *extra: str, seconds: float = 3.0) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "support"), str(HERE)]),
        "HW_K8S_ROOT": str(k8s.root),
        "HW_K8S_SECONDS": str(seconds),
    }
    argv = [sys.executable, "-m", "headwater.pipelines.cli", "run", str(HERE / "k8s_pipeline_file.py"),
            "--runner", "kubernetes", "--namespace", NS, "--image", RUNTIME_IMAGE,
            "--pipeline-root-claim", "headwater-root", "--kubeconfig", k8s.kubeconfig,
            "--metadata", k8s.metadata, *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def running_pod(k8s: K8sEnv, node: str) -> bool:
    return any((p.get("status") or {}).get("phase") == "Running"
               for p in k8s.standin.objects("pods", NS, f"{LABEL_NODE}={node}"))


def job_done(k8s: K8sEnv, node: str) -> bool:
    return any(c["type"] == "Complete" for j in k8s.standin.objects("jobs", NS, f"{LABEL_NODE}={node}")
               for c in (j.get("status") or {}).get("conditions") or [])


def executions(k8s: K8sEnv) -> dict[str, list[str]]:
    store = connect(k8s.metadata)
    states: dict[str, list[str]] = {}
    for e in store.mlmd.get_executions():
        record = store.record(e)
        states.setdefault(str(record.properties.get("__node_id__")), []).append(record.state)
    return states


@pytest.mark.parametrize("finish_while_down", [False, True])
def test_killed_orchestrator_reattaches_without_duplicate_jobs(k8s: K8sEnv, finish_while_down: bool) -> None:
    run_id = "20260101T000000-kill" + ("ed" if finish_while_down else "01")
    first = orchestrator(k8s, "--run-id", run_id)
    kill_when_running(k8s, first, NS, "b")
    assert running_pod(k8s, "b") or job_done(k8s, "b")  # the cluster goes on without the orchestrator
    if finish_while_down:
        k8s.standin.wait_for(lambda: job_done(k8s, "b"), timeout=30)

    second = orchestrator(k8s, "--run-id", run_id)
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert f"re-attached to 1 Job(s) of run {run_id}: b" in output or "re-attached to 2 Job(s)" in output

    created = k8s.standin.created("jobs", NS)
    per_node = {}
    for job in created:
        per_node.setdefault(job["metadata"]["labels"][LABEL_NODE], []).append(job["metadata"]["name"])
    assert per_node["b"] and len(per_node["b"]) == 1, per_node  # b ran once, in the Job started first
    assert all(len(names) == 1 for names in per_node.values()), per_node
    states = executions(k8s)
    # b's first execution was published by the second orchestrator (then reused from the cache by its run).
    assert states["b"] == ["COMPLETE", "CACHED"], states
    assert "RUNNING" not in {s for v in states.values() for s in v}
    store = connect(k8s.metadata)
    [model] = [a for a in store.mlmd.get_artifacts() if "/j/out/" in a.uri]
    assert (Path(model.uri) / "model.txt").read_text() == "ab"


def test_ctrl_c_deletes_the_jobs(k8s: K8sEnv) -> None:
    proc = orchestrator(k8s, seconds=30)
    try:
        k8s.standin.wait_for(lambda: running_pod(k8s, "b"), timeout=30)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "deleted Job k8s-demo-b-" in output
    k8s.standin.wait_for(lambda: not k8s.standin.objects("jobs", NS, f"{LABEL_NODE}=b"))
    k8s.standin.wait_for(lambda: not k8s.standin.objects("pods", NS, f"{LABEL_NODE}=b"))
    delete = [r for r in k8s.standin.requests if r.verb == "delete" and r.resource == "jobs"]
    assert delete and all(r.query.get("propagationPolicy") == "Background" or r.code == 200 for r in delete)
    states = executions(k8s)
    assert states["b"] == ["CANCELED"], states
