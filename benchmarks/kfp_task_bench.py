"""What one compiled KFP task costs on top of its executor: ``python -m headwater.pipelines.kfp_task`` for a
node that does nothing, run as KFP's launcher runs it (a fresh process per task), on SQLite.

Prints medians of several runs: the whole task (process start → pipeline rebuilt from the plan → store
opened → execution registered → executor child process → published), the executor child's own duration,
and a task whose node is served from headwater's cache (no executor at all). Pod scheduling and image
start, which KFP adds, are not included.

    python benchmarks/kfp_task_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUPPORT = HERE.parent / "tests" / "support"
sys.path.insert(0, str(SUPPORT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    import hw_test_components as c
    from headwater.metadata import connect
    from headwater.pipelines import Pipeline
    from headwater.pipelines.kfp.compile import compile_kfp

    with tempfile.TemporaryDirectory(prefix="kfp-bench-") as tmp:
        uri = f"sqlite:///{tmp}/md.sqlite"
        env = {**os.environ, "PYTHONPATH": str(SUPPORT), "HEADWATER_METADATA": uri}

        def task_args(pipeline: Pipeline, run_id: str) -> list[str]:
            spec = compile_kfp(pipeline, image="bench", metadata_secret=None)
            [executor] = spec["deploymentSpec"]["executors"].values()
            return [a.replace("{{$.inputs.parameters['headwater-run-id']}}", run_id)
                    .replace("{{$.inputs.parameters['headwater-run-name']}}", run_id)
                    for a in executor["container"]["args"]]

        def timed(pipeline: Pipeline, run_id: str) -> float:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "headwater.pipelines.kfp_task", *task_args(pipeline, run_id)],
                           env=env, check=True, capture_output=True)
            return time.perf_counter() - started

        fresh = Pipeline(name="bench", root=f"{tmp}/root", nodes=[c.noop().with_id("n").with_caching(False)])
        cached = Pipeline(name="bench_cached", root=f"{tmp}/root", nodes=[c.noop().with_id("n")])
        timed(fresh, "warm-up")
        timed(cached, "warm-up-cached")  # fills the cache
        totals = [timed(fresh, f"run-{i}") for i in range(args.runs)]
        hits = [timed(cached, f"cached-{i}") for i in range(args.runs)]
        store = connect(uri)
        executor = []
        for i in range(args.runs):
            [proto] = store.executions_in_context("pipeline_run", f"run-{i}")
            executor.append(float(store.record(proto).properties["__duration_s__"]))
        python_start = statistics.median(
            [_wall([sys.executable, "-c", "import headwater.pipelines"]) for _ in range(args.runs)])
        print(json.dumps({"runs": args.runs}))
        print(f"task, node runs (no-op executor):   median {statistics.median(totals):.3f} s "
              f"(min {min(totals):.3f}, max {max(totals):.3f})")
        print(f"  the executor function itself:     median {statistics.median(executor):.3f} s")
        print(f"task, node served from the cache:   median {statistics.median(hits):.3f} s "
              f"(min {min(hits):.3f}, max {max(hits):.3f})")
        print(f"python -c 'import headwater.pipelines': median {python_start:.3f} s")


def _wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
