"""Data validation cost: Statistics vs TFDV's own ``generate_statistics_from_csv``, and the penguin
pipeline's total time with and without validation.

    python benchmarks/validation_bench.py                      # 100 MB CSV, 1 run each
    python benchmarks/validation_bench.py --size-mb 1024 --runs 3 --pipeline-runs 3

The CSV is the ingest benchmark's generated penguin-like file (``benchmarks/ingest_bench.py``), at
``--size-mb``. Printed figures are medians over the runs (wall and CPU seconds of this process; Beam's
direct runner works in this process too):

* ``tfdv.generate_statistics_from_csv`` on the CSV — the bare library, on Beam (DirectRunner);
* ``Statistics`` on the same data after Ingest (its gzip TFRecord Examples; Ingest's own time is not
  counted), with the Beam engine (TFDV's ``GenerateStatistics`` over tfx_bsl's TFRecord source, the
  in-memory DirectRunner) and the local engine (TFDV's in-memory statistics, no pipeline);
* the penguin template end to end (a fresh root, nothing cached) with its Statistics → Validate nodes and
  without them, through the LocalRunner with its default workers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_bench import generate, run_ingest_once


def timed(fn, runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def statistics_once(examples: Path, out: Path, engine: str) -> None:
    from headwater.components.validation._stats import compute_statistics, compute_statistics_local

    shutil.rmtree(out, ignore_errors=True)
    for split in ("train", "eval"):
        (out / f"Split-{split}").mkdir(parents=True)
    if engine == "beam":
        compute_statistics(str(examples), ["train", "eval"], str(out))
    else:
        compute_statistics_local(str(examples), ["train", "eval"], str(out))


def penguin_once(work: Path, validated: bool) -> float:
    from headwater.pipelines import LocalRunner, Pipeline
    from headwater.pipelines.loader import load_pipeline
    from headwater.templates import copy_template

    project = work / ("penguin-validated" if validated else "penguin-plain")
    shutil.rmtree(project, ignore_errors=True)
    copy_template("penguin", project)
    template = load_pipeline(project / "pipeline.py")
    skip = set() if validated else {"Statistics", "ImportSchema", "PreviousStatistics", "Validate"}
    nodes = [n for n in template.nodes if n.id not in skip]
    pipeline = Pipeline(template.name, template.root, nodes, params=template.params)
    started = time.perf_counter()
    result = LocalRunner(quiet=True).run(pipeline)
    took = time.perf_counter() - started
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pipeline-runs", type=int, default=1)
    parser.add_argument("--only-pipeline", action="store_true", help="only the penguin pipeline comparison")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "headwater-validation-bench"))
    args = parser.parse_args(argv)

    work = Path(args.workdir)
    if args.only_pipeline:
        return pipeline_comparison(work, args.pipeline_runs)
    data = work / f"csv-{args.size_mb}mb"
    data.mkdir(parents=True, exist_ok=True)
    csv_path = generate(data / "penguins.csv", args.size_mb)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"input: {csv_path} ({size_mb:.0f} MB); {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}",
          flush=True)
    started = time.perf_counter()
    import tensorflow_data_validation as tfdv

    print(f"import tensorflow_data_validation: {time.perf_counter() - started:.1f} s", flush=True)

    wall, cpu = timed(lambda: tfdv.generate_statistics_from_csv(str(csv_path)), args.runs)
    bare = wall
    print(f"tfdv.generate_statistics_from_csv (Beam)   wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
          f"{size_mb / wall:6.1f} MB/s", flush=True)

    out = work / "ingested"
    run_ingest_once(data, out)
    examples = out / "examples"
    for engine in ("beam", "local"):
        wall, cpu = timed(lambda e=engine: statistics_once(examples, work / f"stats-{e}", e), args.runs)
        print(f"Statistics ({engine:5} engine, on Examples)  wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
              f"{size_mb / wall:6.1f} MB/s  ({wall / bare:.2f}x the bare library)", flush=True)

    return pipeline_comparison(work, args.pipeline_runs)


def pipeline_comparison(work: Path, runs: int) -> int:
    """The penguin template with and without validation, alternating (so load changes hit both alike)."""
    walls: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for validated in (False, True):
            walls[validated].append(penguin_once(work, validated))
    for validated in (False, True):
        label = "with validation   " if validated else "without validation"
        print(f"penguin pipeline {label}  wall {statistics.median(walls[validated]):7.2f} s  (runs: "
              + ", ".join(f"{w:.1f}" for w in walls[validated]) + ")", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
