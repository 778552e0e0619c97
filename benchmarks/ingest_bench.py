"""Ingest throughput: a generated ~1 GB penguin-like CSV through Ingest vs a plain ``pyarrow.csv.read_csv``.

    python benchmarks/ingest_bench.py                 # 1024 MB, 3 runs each
    python benchmarks/ingest_bench.py --size-mb 200 --runs 5 --beam-mb 20

The CSV has the real penguin columns (a string label, two categorical columns, four measurements, a
year) with ~3 % missing values; it is generated once with a fixed seed and cached in the temp directory.
Printed figures are medians over ``--runs`` runs, each in a fresh process: MB/s of CSV input, rows/s, wall
and CPU seconds (with the writer processes'), and the peak resident memory of the whole process tree.
Beside Ingest, in the same run, the floors: ``pyarrow.csv.read_csv`` of the whole file and the chunked
``open_csv`` only parse; the per-step CPU of one process (Ingest's reader with its checks, conform and split;
tfx-bsl's encoder alone; TFRecord framing; gzip level 1; and writing Parquet instead) gives the best MB/s
each output could reach on this machine's cores. Ingest parses, infers and checks the schema, hash-splits,
encodes every row as a ``tf.train.Example`` and writes gzip TFRecords, with writer processes (default) and
in one process. ``--beam-mb`` also times the Beam engine (in-memory DirectRunner) on a smaller file, and the
real 344-row penguins file is timed in process.
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


# ------------------------------------------------------------------------- measured in a child process
def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def in_child(mode: str, data: Path, out: Path) -> dict:
    """Run one measurement in a fresh process; its wall and CPU (with its own children's) and the peak
    resident memory of the whole process tree, sampled every 20 ms."""
    import json
    import subprocess

    child = subprocess.Popen([sys.executable, __file__, "--child", mode, "--data", str(data), "--out", str(out)],
                             stdout=subprocess.PIPE, text=True)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss(child.pid))
        time.sleep(0.02)
    result = json.loads(child.stdout.read().strip().splitlines()[-1])
    if child.returncode:
        raise SystemExit(f"{mode} failed with exit code {child.returncode}")
    result["rss"] = peak
    return result


def child_main(mode: str, data: Path, out: Path) -> dict:
    import resource

    wall, cpu = time.perf_counter(), time.process_time()
    result: dict = {}
    csv_path = data / "penguins.csv"
    if mode == "read":
        import pyarrow.csv as pcsv

        result["rows"] = pcsv.read_csv(csv_path).num_rows
    elif mode == "stream":
        import pyarrow.csv as pcsv
        from headwater.components.ingest import _stream

        reader = pcsv.open_csv(csv_path, read_options=pcsv.ReadOptions(block_size=_stream.CHUNK_BYTES))
        result["rows"] = sum(batch.num_rows for batch in reader)
    elif mode == "floors":
        result.update(floors(csv_path, out))
    elif mode.startswith("ingest"):
        from headwater.components.ingest import _write

        # Writer processes from POOL_MIN_BYTES (64 MB) by default; forced either way here, at any size.
        _write.POOL_MIN_BYTES = 1 << 62 if mode == "ingest-1-writer" else 0
        result["counts"] = run_ingest_once(data, out)
        result["written"] = sum(p.stat().st_size for p in (out / "examples").rglob("*.gz"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + children.ru_utime + children.ru_stime
    result.update(wall=time.perf_counter() - wall, cpu=cpu)
    return result


def floors(csv_path: Path, out: Path) -> dict:
    """CPU seconds of each step over the whole file, one process: Ingest's streaming reader with its checks
    and conform/split (both passes), tfx-bsl's encoder alone, TFRecord framing, gzip level 1, and — for
    comparison only — writing the same conformed rows as Parquet (TFX's FORMAT_PARQUET payload)."""
    import io
    import zlib

    import pyarrow.parquet as pq
    from headwater.components import _data, _runtime
    from headwater.components.ingest._encode import assign_splits, conform
    from headwater.components.ingest._plan import PlanSettings, make_plan
    from headwater.components.ingest._read import ReadOptions
    from headwater.components.ingest._stream import checked_chunks, scan_file
    from tfx_bsl.coders import example_coder

    steps = dict.fromkeys(["read_check_conform_split", "encode", "frame", "gzip1", "parquet"], 0.0)
    opts = ReadOptions()
    t = time.process_time()
    scan = scan_file(str(csv_path), None, opts, 100)
    plan = make_plan([scan.profile], PlanSettings(("train", "eval"), (2.0, 1.0)))
    steps["read_check_conform_split"] += time.process_time() - t
    encoder = example_coder.RecordBatchToExamplesEncoder()
    gz = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunks = checked_chunks(scan, opts)
    while True:
        t = time.process_time()
        chunk = next(chunks, None)
        if chunk is None:
            break
        table = conform(chunk, plan)
        assign_splits(table, plan)
        steps["read_check_conform_split"] += time.process_time() - t
        t = time.process_time()
        records = _runtime.encode_examples(table, encoder)
        steps["encode"] += time.process_time() - t
        t = time.process_time()
        framed = _data.frame_records(records)
        steps["frame"] += time.process_time() - t
        t = time.process_time()
        gz.compress(framed)
        steps["gzip1"] += time.process_time() - t
        t = time.process_time()
        pq.write_table(table, io.BytesIO())
        steps["parquet"] += time.process_time() - t
    return {"steps": steps, "rows": scan.profile.rows}


def child_entry(argv: list[str]) -> int:
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--data")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    print(json.dumps(child_main(args.child, Path(args.data), Path(args.out))), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_entry(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beam-mb", type=int, default=0, help="also time the Beam engine on a file this big")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "headwater-ingest-bench"))
    args = parser.parse_args(argv)

    work = Path(args.workdir)
    data = work / f"csv-{args.size_mb}mb"
    data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    csv_path = generate(data / "penguins.csv", args.size_mb)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"input: {csv_path} ({size_mb:.0f} MB; ready in {time.perf_counter() - started:.1f} s); "
          f"{os.cpu_count()} cores; load average {os.getloadavg()} at the start", flush=True)

    out = work / "out"
    rows = 0

    def line(label: str, results: list[dict], extra: str = "") -> None:
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        rss = statistics.median(r["rss"] for r in results) / 2**20
        print(f"{label:<34} {size_mb / wall:7.1f} MB/s  {rows / wall / 1e6:5.2f} M rows/s  wall {wall:7.2f} s  "
              f"cpu {cpu:7.2f} s  peak RSS {rss:6.0f} MiB{extra}  (load {os.getloadavg()[0]:.1f})", flush=True)

    for mode, label in (("read", "pyarrow.csv.read_csv (whole file)"), ("stream", "pyarrow.csv.open_csv (chunks)")):
        results = [in_child(mode, data, out) for _ in range(args.runs)]
        rows = results[0]["rows"]
        line(label, results)
    results = [in_child("floors", data, out) for _ in range(args.runs)]
    rows = results[0]["rows"]
    print("CPU per row, one process (median):", flush=True)
    for step in results[0]["steps"]:
        cpu = statistics.median(r["steps"][step] for r in results)
        print(f"  {step:<26} {cpu / rows * 1e6:5.2f} us/row  {cpu:7.2f} s  -> on {os.cpu_count()} cores at best "
              f"{size_mb / (cpu / (os.cpu_count() or 1)):7.1f} MB/s", flush=True)
    steps = {s: statistics.median(r["steps"][s] for r in results) for s in results[0]["steps"]}
    for label, parts in (("gzip tf.Example (default)", ("read_check_conform_split", "encode", "frame", "gzip1")),
                         ("uncompressed tf.Example", ("read_check_conform_split", "encode", "frame")),
                         ("Parquet payload", ("read_check_conform_split", "parquet"))):
        cpu = sum(steps[p] for p in parts)
        print(f"  floor for {label:<26} {cpu:7.2f} CPU s -> on {os.cpu_count()} cores at best "
              f"{size_mb / (cpu / (os.cpu_count() or 1)):7.1f} MB/s", flush=True)
    for mode, label in (("ingest", "Ingest, writer processes"), ("ingest-1-writer", "Ingest, one process")):
        results = [in_child(mode, data, out) for _ in range(args.runs)]
        line(label, results, f"  -> {results[0]['written'] / 1e6:.0f} MB gzip TFRecords {results[0]['counts']}")

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
    print(f"load average {os.getloadavg()} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
