"""Framework overhead of the spine: prints medians of several runs.

    python benchmarks/spine_bench.py [--repeats 3] [--sizes 1,10,100,1000]

* per-node overhead of no-op nodes in chain and wide DAGs (MLMD publish included, SQLite on disk);
* two independent nodes that each sleep 1 s;
* a fully cached re-run of a 10-node pipeline;
* `headwater --help` and `headwater runs list` start time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "support"))

import bench_components as bc  # noqa: E402
from headwater.pipelines import LocalRunner, Pipeline  # noqa: E402


def chain(n: int, root: str) -> Pipeline:
    nodes = [bc.noop().with_id("n0")]
    for i in range(1, n):
        nodes.append(bc.noop_after(upstream=nodes[-1].outputs.out).with_id(f"n{i}"))
    return Pipeline(name=f"chain{n}", root=root, nodes=nodes)


def wide(n: int, root: str) -> Pipeline:
    return Pipeline(name=f"wide{n}", root=root, nodes=[bc.noop().with_id(f"n{i}") for i in range(n)])


def timed_run(pipeline: Pipeline, **kwargs: object) -> float:
    started = time.perf_counter()
    result = LocalRunner(quiet=True).run(pipeline, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert result.ok, result.failed
    return elapsed


def median_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1,10,100,1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"medians of {args.repeats} runs; fresh SQLite store on disk per run; no cache\n")
    print(f"{'DAG':<8} {'nodes':>6} {'total s':>9} {'ms/node':>9}")
    for shape, build in (("chain", chain), ("wide", wide)):
        for n in sizes:
            def once(build=build, n=n) -> float:  # type: ignore[no-untyped-def]
                with tempfile.TemporaryDirectory() as tmp:
                    return timed_run(build(n, tmp))
            t = median_of(once, args.repeats)
            print(f"{shape:<8} {n:>6} {t:>9.2f} {1000 * t / n:>9.1f}", flush=True)

    def sleepers() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            p = Pipeline(name="sleep2", root=tmp, nodes=[bc.sleep(seconds=1.0).with_id(f"s{i}") for i in range(2)])
            return timed_run(p)
    print(f"\ntwo independent 1 s sleeps: {median_of(sleepers, args.repeats):.2f} s (target <= 1.3 s)")

    with tempfile.TemporaryDirectory() as tmp:
        p = chain(10, tmp)
        timed_run(p)
        cached = median_of(lambda: timed_run(p), args.repeats)
    print(f"fully cached re-run, 10 nodes: {cached:.3f} s (target <= 1 s)")

    with tempfile.TemporaryDirectory() as tmp:
        timed_run(chain(3, tmp))
        exe = [sys.executable, "-m", "headwater.pipelines.cli"]
        for label, argv in (("headwater --help", ["--help"]),
                            ("headwater runs list", ["runs", "list", "--root", tmp])):
            def start(argv=argv) -> float:  # type: ignore[no-untyped-def]
                t0 = time.perf_counter()
                subprocess.run(exe + argv, check=True, capture_output=True)
                return time.perf_counter() - t0
            print(f"{label} start: {median_of(start, max(5, args.repeats)):.3f} s (target <= 0.5 s)")


if __name__ == "__main__":
    main()
