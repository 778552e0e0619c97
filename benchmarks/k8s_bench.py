"""Kubernetes runner: orchestration overhead per node through the local API stand-in; prints medians.

    python benchmarks/k8s_bench.py [--widths 1,10,100] [--repeats 3]

A pipeline of N independent no-op nodes runs through the KubernetesRunner against the stand-in
(tests/k8s/standin: real HTTP, the official client, a Job controller, a subprocess kubelet; in its own
process, as an API server would be), all N at once (max_parallel = N). Per node:

    overhead = (execution published in MLMD) - (Job created) - (the executor's own time)

split into: Job created -> pod Running (API, Job controller, scheduler, kubelet); pod Running -> executor
started (the container's Python start and imports); executor finished -> published (container exit,
watch events, result file, MLMD transaction). Medians over all nodes of all repeats. The last column is
the orchestrator process's CPU time divided by the number of nodes (the runner's own cost, whatever
else competes for the machine's cores).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests" / "k8s"), str(REPO / "tests" / "support")]

from headwater.metadata import connect  # noqa: E402
from headwater.pipelines.kubernetes import KubernetesRunner  # noqa: E402
from headwater.pipelines.kubernetes.manifests import LABEL_EXECUTION, KubernetesConfig  # noqa: E402
from k8s_pipelines import fan_out  # noqa: E402


def serve(workdir: str, root: str, conn: Connection) -> None:
    """The stand-in in its own process (as an API server is): serves until told to stop, then sends back
    when each Job was created and each pod started running (wall clock, same machine)."""
    sys.path[:0] = [str(REPO / "tests" / "k8s"), str(REPO / "tests" / "support")]
    from k8s_support import images
    from standin import ApiStandIn, Node

    nodes = [Node(f"node-{i}", cpu="64", memory="256Gi") for i in range(1, 4)]
    with ApiStandIn(workdir, namespaces=("headwater",), images=images(), nodes=nodes,
                    claims={"root": root}) as standin:
        conn.send(standin.kubeconfig(namespace="headwater"))
        conn.recv()
        created = {r.body["metadata"]["labels"][LABEL_EXECUTION]: r.wall for r in standin.requests
                   if r.verb == "create" and r.resource == "jobs" and r.code == 201}
        running: dict[str, float] = {}
        for event in standin.history("pods"):
            eid = event.new["metadata"]["labels"][LABEL_EXECUTION]
            if (event.new.get("status") or {}).get("phase") == "Running" and eid not in running:
                running[eid] = event.wall
        complete: dict[str, float] = {}
        for event in standin.history("jobs"):
            eid = event.new["metadata"]["labels"][LABEL_EXECUTION]
            conditions = (event.new.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Complete" for c in conditions) and eid not in complete:
                complete[eid] = event.wall
        conn.send((created, running, complete))


def one_run(width: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="hw-k8s-bench-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        metadata = f"sqlite:///{tmp}/metadata.sqlite"
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        server = ctx.Process(target=serve, args=(str(Path(tmp) / "cluster"), str(root), child), daemon=True)
        server.start()
        try:
            if not parent.poll(120):
                raise RuntimeError("the API stand-in process did not start")
            kubeconfig = parent.recv()
            config = KubernetesConfig(namespace="headwater", image="headwater:test", pipeline_root_claim="root",
                                      kubeconfig=kubeconfig, max_parallel=width, console_logs=False)
            t0, cpu0 = time.time(), time.process_time()
            result = KubernetesRunner(config, metadata=metadata, quiet=True).run(fan_out(root, width))
            wall, cpu = time.time() - t0, time.process_time() - cpu0
            parent.send("stop")
            created, running, complete = parent.recv()
        finally:
            server.join(30)
            if server.is_alive():
                server.kill()
        assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
        store = connect(metadata)
        out: dict[str, list[float]] = {k: [] for k in ("overhead", "to_running", "container_start",
                                                       "to_published", "to_complete", "executor")}
        out["wall"] = [wall]
        out["cpu"] = [cpu / width]
        for node in result.nodes.values():
            eid = str(node.execution_id)
            [execution] = store.mlmd.get_executions_by_id([node.execution_id])
            published = execution.last_update_time_since_epoch / 1000.0
            [result_file] = (root / "_results" / result.run_id).glob(f"{node.node_id}.{eid}.*.json")
            res = json.loads(result_file.read_text())
            executor = res["finished_at"] - res["started_at"]
            out["executor"].append(executor)
            out["overhead"].append(published - created[eid] - executor)
            out["to_running"].append(running[eid] - created[eid])
            out["container_start"].append(res["started_at"] - running[eid])
            out["to_published"].append(published - res["finished_at"])
            out["to_complete"].append(complete[eid] - res["finished_at"])
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="1,10,100")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| parallel nodes | overhead per node (median) | created -> Running | Running -> executor start "
          "| executor end -> published (of which: -> Job Complete) | executor itself | whole run (median) "
          "| orchestrator CPU per node |")
    print("|---|---|---|---|---|---|---|---|")
    for width in [int(w) for w in args.widths.split(",")]:
        merged: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for key, values in one_run(width).items():
                merged.setdefault(key, []).extend(values)
        m = {k: statistics.median(v) for k, v in merged.items()}
        print(f"| {width} | **{m['overhead']:.2f} s** | {m['to_running']:.2f} s | {m['container_start']:.2f} s "
              f"| {m['to_published']:.2f} s ({m['to_complete']:.2f} s) | {m['executor'] * 1000:.0f} ms "
              f"| {m['wall']:.2f} s "
              f"| {m['cpu'] * 1000:.0f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
