"""Ingest throughput: a generated ~1 GB penguin-like CSV through Ingest vs a plain ``pyarrow.csv.read_csv``.

    python benchmarks/ingest_bench.py                 # 1024 MB, 3 runs each
    python benchmarks/ingest_bench.py --size-mb 200 --runs 5 --beam-mb 20

The CSV has the real penguin columns (a string label, two categorical columns, four measurements, a
year) with ~3 % missing values; it is generated once with a fixed seed and cached in the temp directory.
Printed figures are medians over ``--runs`` runs: MB/s of CSV input, rows/s, wall and CPU seconds.
``pyarrow.csv.read_csv`` only parses; Ingest parses, infers and checks the schema, hash-splits, encodes
every row as a ``tf.train.Example`` and writes gzip TFRecords. ``--beam-mb`` also times the Beam engine
(in-memory DirectRunner) on a smaller file, and the real 344-row penguins file is timed in process.
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


def generate(path: Path, size_mb: int, seed: int = 0) -> Path:
    """A penguin-like CSV of about ``size_mb`` MB (cached: generated once per size and seed)."""
    import numpy as np

    if path.exists() and path.stat().st_size >= size_mb * 1e6:
        return path
    tmp = path.with_suffix(".partial")
    rng = np.random.default_rng(seed)
    species = np.array(["Adelie", "Chinstrap", "Gentoo"])
    islands = np.array(["Biscoe", "Dream", "Torgersen"])
    sexes = np.array(["male", "female", ""])
    n = max(10_000, min(500_000, size_mb * 20_000))
    written = 0
    with tmp.open("w") as f:
        f.write("species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n")
        while written < size_mb * 1e6:
            numeric = [np.round(rng.normal(44, 5, n), 1).astype(str), np.round(rng.normal(17, 2, n), 1).astype(str),
                       rng.integers(170, 232, n).astype(str), rng.integers(2700, 6300, n).astype(str)]
            for col in numeric:
                col[rng.random(n) < 0.03] = ""
            cols = [species[rng.integers(0, 3, n)], islands[rng.integers(0, 3, n)], *numeric,
                    rng.choice(sexes, n, p=[0.485, 0.485, 0.03]),
                    rng.integers(2007, 2010, n).astype(str)]
            text = "\n".join(",".join(row) for row in zip(*cols, strict=True)) + "\n"
            f.write(text)
            written += len(text)
    tmp.replace(path)
    return path


def timed(fn, runs: int) -> tuple[float, float, object]:
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def run_ingest_once(data_dir: Path, out: Path, engine: str = "local") -> dict:
    from headwater.components.ingest import run_ingest
    from headwater.metadata import types

    shutil.rmtree(out, ignore_errors=True)
    examples = types.Examples(str(out / "examples"))
    run_ingest(examples, types.Schema(str(out / "schema")), input_base=str(data_dir), engine=engine)
    return dict(examples.custom_properties["num_examples"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beam-mb", type=int, default=0, help="also time the Beam engine on a file this big")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "headwater-ingest-bench"))
    args = parser.parse_args(argv)

    import pyarrow.csv as pcsv

    work = Path(args.workdir)
    data = work / f"csv-{args.size_mb}mb"
    data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    csv_path = generate(data / "penguins.csv", args.size_mb)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"input: {csv_path} ({size_mb:.0f} MB; ready in {time.perf_counter() - started:.1f} s); "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)

    wall, cpu, table = timed(lambda: pcsv.read_csv(csv_path), args.runs)
    rows = table.num_rows  # type: ignore[attr-defined]
    del table
    print(f"pyarrow.csv.read_csv  {size_mb / wall:7.1f} MB/s  {rows / wall / 1e6:5.2f} M rows/s  "
          f"wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)

    out = work / "out"
    wall, cpu, counts = timed(lambda: run_ingest_once(data, out), args.runs)
    written = sum(p.stat().st_size for p in (out / "examples").rglob("*.gz")) / 1e6
    print(f"Ingest (local engine) {size_mb / wall:7.1f} MB/s  {rows / wall / 1e6:5.2f} M rows/s  "
          f"wall {wall:6.2f} s  cpu {cpu:6.2f} s  -> {written:.0f} MB gzip TFRecords {counts}", flush=True)

    if args.beam_mb:
        small = work / f"csv-{args.beam_mb}mb"
        small.mkdir(parents=True, exist_ok=True)
        small_mb = generate(small / "penguins.csv", args.beam_mb).stat().st_size / 1e6
        for engine in ("local", "beam"):
            wall, cpu, _ = timed(lambda e=engine: run_ingest_once(small, work / f"out-{e}", e), args.runs)
            print(f"Ingest ({engine} engine, {small_mb:.0f} MB) {small_mb / wall:7.1f} MB/s  wall {wall:6.2f} s  "
                  f"cpu {cpu:6.2f} s", flush=True)

    from headwater.components import _data

    penguins = work / "penguins"
    _data.penguins_csv(penguins / "penguins.csv")
    run_ingest_once(penguins, work / "out-penguins")  # first call pays for lazy imports
    wall, cpu, _ = timed(lambda: run_ingest_once(penguins, work / "out-penguins"), max(5, args.runs))
    print(f"Ingest of the real penguins CSV (344 rows), in process: wall {wall * 1000:.0f} ms  "
          f"cpu {cpu * 1000:.0f} ms", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
