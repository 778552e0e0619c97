"""The ML templates as a user runs them: copy, ``headwater run pipeline.py``, run again; prints medians.

    python benchmarks/templates_bench.py [--repeats 3] [--templates penguin babyweight]

Each repeat copies the template into a fresh folder (empty pipeline root and metadata store) and times, as
wall clock around the CLI process: the first ``headwater run pipeline.py`` (what a new user waits for), the
fully cached second run, and the project's own ``python -m pytest``. Per-node times are read from the first
run's status lines (the node's own time as the runner records it).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from headwater.templates import copy_template

_NODE = re.compile(r"^\[\s*[\d.]+s\]\s+(\S+)\s+(done|skipped)\s+\(([\d.]+)s\)")


def _timed(args: list[str], cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("HEADWATER_METADATA", None)
    started = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return elapsed, out.stderr


def bench(name: str, repeats: int) -> None:
    first, cached, tests = [], [], []
    nodes: dict[str, list[float]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / name
            copy_template(name, project)
            seconds, log = _timed([sys.executable, "-m", "headwater.pipelines.cli", "run", "pipeline.py"], project)
            first.append(seconds)
            for line in log.splitlines():
                match = _NODE.match(line)
                if match:
                    nodes.setdefault(match.group(1), []).append(float(match.group(3)))
            seconds, log = _timed([sys.executable, "-m", "headwater.pipelines.cli", "run", "pipeline.py"], project)
            cached.append(seconds)
            summary = [line for line in log.splitlines() if line.startswith("headwater: run ")]
            if summary and "cached" not in summary[-1]:
                print(f"  note: the second run was not served from the cache: {summary[-1]}")
            tests.append(_timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)[0])
    print(f"{name}: median of {repeats}")
    print(f"  first run (copy, empty store)   {statistics.median(first):7.2f} s   (runs: "
          f"{', '.join(f'{s:.1f}' for s in first)})")
    print(f"  second run (all cached)         {statistics.median(cached):7.2f} s")
    print(f"  project tests (python -m pytest) {statistics.median(tests):6.2f} s")
    for node, values in nodes.items():
        print(f"    {node:<12} {statistics.median(values):7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--templates", nargs="+", default=["penguin", "babyweight"])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for name in args.templates:
        bench(name, args.repeats)


if __name__ == "__main__":
    main()
