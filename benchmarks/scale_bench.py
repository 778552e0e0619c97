"""The scale curve: the babyweight template end to end at growing row counts, time and peak memory per node.

    python benchmarks/scale_bench.py [--rows 100000 1000000] [--repeats 3] [--timeout 3600] [--json out.json]

For each row count: the template is copied with ``headwater template copy`` into a fresh folder, its seeded
generator (``data/generate.py``) writes ``natality-2005.csv`` with that many rows (once per row count; each
repeat gets a fresh copy of the project and of the file, so no run sees another's cache or blessed model),
and ``headwater run pipeline.py --no-keep-warm`` runs the whole pipeline with the template's settings: Ingest,
Statistics, Validate, Transform, Tune, Train, Evaluate, Push. Components that run Beam pipelines run them on
the DirectRunner (no ``beam_args`` are given); the others take their local engines, the defaults.

Per node the figures are what headwater records on the execution in ML Metadata: its time (``__duration_s__``)
and its peak resident memory (``__peak_rss_mib__``: the worker's high-water mark, reset for the execution,
plus the peaks of the processes it started; ``__peak_rss_children_mib__`` of which). ``total`` is the wall
time of ``headwater run``; the load average is read before and after each run. A run that passes
``--timeout`` is stopped (its process group); what finished by then is printed, and the node that was
running is marked ``(running when stopped)``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEADWATER = str(Path(sys.executable).with_name("headwater"))


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


def generate(rows: int, cache: Path) -> Path:
    """``natality-2005.csv`` with ``rows`` rows from the template's generator (kept in ``cache``)."""
    folder = cache / f"data-{rows}"
    csv = folder / "natality-2005.csv"
    if csv.exists():
        return csv
    project = cache / "template"
    if not project.exists():
        subprocess.run([HEADWATER, "template", "copy", "babyweight", str(project)], check=True,
                       stdout=subprocess.DEVNULL)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    subprocess.run([sys.executable, str(project / "data" / "generate.py"), "2005", "--rows", str(rows),
                    "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
    print(f"generated {rows:,} rows ({csv.stat().st_size / 1e6:.0f} MB) in {time.time() - started:.1f}s",
          flush=True)
    return csv


def nodes_of_run(root: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """The latest run's nodes as MLMD recorded them (state, seconds, peak MiB)."""
    from headwater.metadata import connect
    from headwater.pipelines.history import show_run

    db = root / "metadata.sqlite"
    if not db.exists():
        return None, []
    store = connect(f"sqlite:///{db}")
    try:
        detail = show_run(store, "latest")
    except Exception as exc:
        print(f"  (could not read the run: {exc})")
        return None, []
    return detail.summary.run_id, [
        {"node": n.node_id, "state": n.state, "seconds": n.duration, "peak_rss_mib": n.peak_rss_mib,
         "children_mib": n.peak_rss_children_mib}
        for n in detail.nodes
    ]


def run_once(rows: int, csv: Path, work: Path, timeout: float, extra: list[str]) -> dict[str, Any]:
    project = work / f"bw-{rows}-{time.time_ns()}"
    subprocess.run([HEADWATER, "template", "copy", "babyweight", str(project)], check=True, stdout=subprocess.DEVNULL)
    for old in (project / "data").glob("natality-*.csv"):
        old.unlink()
    try:
        os.link(csv, project / "data" / csv.name)  # read only: one file serves every repeat
    except OSError:
        shutil.copy(csv, project / "data" / csv.name)
    env = {**os.environ, "HEADWATER_KEEP_WARM": "0"}
    load_before = _load()
    started = time.time()
    log = (project / "run.log").open("w")
    child = subprocess.Popen([HEADWATER, "run", "pipeline.py", "--no-keep-warm", *extra], cwd=project, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stopped = False
    try:
        code = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            code = child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            code = child.wait()
        stopped = True
    finally:
        log.close()
    total = time.time() - started
    run_id, nodes = nodes_of_run(project / "runs")
    return {"rows": rows, "run_id": run_id, "exit_code": code, "stopped_after_s": timeout if stopped else None,
            "total_s": round(total, 2), "load_before": load_before, "load_after": _load(), "nodes": nodes,
            "project": str(project), "csv_bytes": csv.stat().st_size}


def summarize(results: list[dict[str, Any]]) -> None:
    rows = results[0]["rows"]
    ok = [r for r in results if r["exit_code"] == 0]
    totals = [r["total_s"] for r in ok]
    loads = [x for r in results for x in (r["load_before"][0], r["load_after"][0])]
    median = f"total median {statistics.median(totals):.1f}s (runs: {', '.join(f'{t:.1f}' for t in totals)})" \
        if totals else "no run finished"
    print(f"\n== {rows:,} rows ({results[0]['csv_bytes'] / 1e6:.0f} MB CSV): {len(ok)}/{len(results)} runs "
          f"finished; {median}; load average (1 min) {min(loads):.1f}-{max(loads):.1f}")
    names = [n["node"] for n in results[0]["nodes"]]
    print(f"{'node':<20} {'state':<10} {'seconds (median)':>17} {'peak RSS MiB (max)':>19} {'of it children':>15}")
    for name in names:
        found = [n for r in results for n in r["nodes"] if n["node"] == name]
        secs = [n["seconds"] for n in found if n["seconds"] is not None and n["state"] in ("done", "skipped")]
        peaks = [n["peak_rss_mib"] for n in found if n["peak_rss_mib"] is not None]
        kids = [n["children_mib"] for n in found if n["children_mib"] is not None]
        states = sorted({n["state"] for n in found})
        state = "/".join(states)
        if any(r["stopped_after_s"] for r in results) and "running" in states:
            state += " (running when stopped)"
        print(f"{name:<20} {state:<10} {statistics.median(secs) if secs else float('nan'):>17.2f} "
              f"{max(peaks) if peaks else float('nan'):>19.0f} {max(kids) if kids else float('nan'):>15.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one run may take (then stopped)")
    parser.add_argument("--work", type=Path, default=None, help="folder for data and projects (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the projects (their runs, logs and data)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    parser.add_argument("--run-arg", action="append", default=[], help="extra argument for 'headwater run'")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hw-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"scale bench: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"work folder {work}; load average {' '.join(f'{x:.2f}' for x in _load())}", flush=True)
    everything: list[dict[str, Any]] = []
    try:
        for rows in args.rows:
            csv = generate(rows, work)
            results = []
            for i in range(args.repeats):
                result = run_once(rows, csv, work, args.timeout, list(args.run_arg))
                state = "ok" if result["exit_code"] == 0 else (
                    f"stopped after {args.timeout:.0f}s" if result["stopped_after_s"] else
                    f"FAILED (exit {result['exit_code']}, see {result['project']}/run.log)")
                print(f"  {rows:,} rows, run {i + 1}/{args.repeats}: {result['total_s']:.1f}s {state}, load "
                      f"{result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f}", flush=True)
                results.append(result)
                everything.append(result)
                if args.json:
                    args.json.write_text(json.dumps(everything, indent=1))
                if not args.keep and result["exit_code"] == 0:
                    shutil.rmtree(result["project"], ignore_errors=True)
            summarize(results)
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nscale bench done: {len(everything)} runs" + (f"; figures in {args.json}" if args.json else ""))


if __name__ == "__main__":
    main()
