"""Object-store pipeline roots: what staging costs. Prints medians of several runs.

    python benchmarks/object_store_bench.py [--repeats 3] [--nodes 10] [--megabytes 200]

Needs the dev extra (``pip install -e '.[dev]'``): the S3 side is a moto S3 server and the GCS side the
gcp-storage-emulator, both on loopback in this process — real protocols, but Python servers sharing the
machine's cores, so transfer rates say more about them than about S3 or GCS. What the figures show is
headwater's own cost per node (staging, upload, existence checks, log upload) against a local root:

* a chain of nodes that each read the upstream artifact (64 KB) and write one: per-node time, local root
  vs s3:// vs gs://;
* ``storage.upload`` / ``storage.download`` of a folder of 10 MB files vs a local copy.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "support"))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

import bench_components as bc  # noqa: E402
from headwater.components import storage  # noqa: E402
from headwater.pipelines import LocalRunner, Pipeline  # noqa: E402


def chain(n: int, root: str, metadata: str) -> Pipeline:
    nodes = [bc.write_kb().with_id("n0")]
    for i in range(1, n):
        nodes.append(bc.copy_kb(upstream=nodes[-1].outputs.out).with_id(f"n{i}"))
    return Pipeline(name=f"chain{n}", root=root, nodes=nodes, metadata=metadata)


def start_servers() -> dict[str, str]:
    """Start both servers; returns {scheme: bucket URL} with this process's environment pointing at them."""
    import object_stores as stores  # the test suite's server helpers

    roots = {}
    for kind, start in (("s3", stores.start_s3_server), ("gs", stores.start_gcs_server)):
        endpoint, _ = start()
        os.environ.update(stores.object_store_env(kind, endpoint))
        roots[kind] = f"{kind}://{stores.make_bucket(kind, endpoint, 'bench')}"
    return roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    roots = start_servers()
    work = Path(tempfile.mkdtemp(prefix="hw-osbench-"))
    try:
        print(f"\nchain of {args.nodes} nodes, 64 KB artifacts, fresh SQLite store per run, no cache "
              f"(medians of {args.repeats})")
        print(f"{'root':<8}{'total':>10}{'per node':>12}")
        for kind in ("local", "s3", "gs"):
            times = []
            for i in range(args.repeats):
                root = str(work / f"local{i}") if kind == "local" else f"{roots[kind]}/chain{i}"
                p = chain(args.nodes, root, f"sqlite:///{work / f'{kind}{i}.sqlite'}")
                started = time.perf_counter()
                result = LocalRunner(quiet=True).run(p, cache=False)
                times.append(time.perf_counter() - started)
                assert result.ok, result.failed
            total = statistics.median(times)
            print(f"{kind:<8}{total:>9.2f}s{total / args.nodes * 1000:>10.0f}ms")

        folder = work / "payload"
        folder.mkdir()
        for i in range(max(1, args.megabytes // 10)):
            (folder / f"part-{i:03d}.bin").write_bytes(os.urandom(10 * 1024 * 1024))
        size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        print(f"\nfolder of {size:.0f} MB in 10 MB files (medians of {args.repeats}); MB/s")
        print(f"{'store':<8}{'upload':>10}{'download':>10}")
        for kind in ("local", "s3", "gs"):
            up, down = [], []
            for i in range(args.repeats):
                target = str(work / f"copy{i}") if kind == "local" else f"{roots[kind]}/payload{i}"
                started = time.perf_counter()
                storage.upload(str(folder), target)
                up.append(time.perf_counter() - started)
                back = work / f"back-{kind}-{i}"
                started = time.perf_counter()
                storage.download(target, str(back))
                down.append(time.perf_counter() - started)
                storage.remove(target)
                shutil.rmtree(back)
            print(f"{kind:<8}{size / statistics.median(up):>10.0f}{size / statistics.median(down):>10.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
