"""``headwater serve`` on the penguin model: requests/s and latency, beside a bare in-process SavedModel call.

    python benchmarks/serve_bench.py [--seconds 5] [--clients 2] [--repeats 3] [--model DIR]

Trains the penguin model once (Ingest → Transform → Train, 100 steps, the tests' module) unless ``--model``
gives a SavedModel folder. Then:

* InfraValidate wall time (``LOAD_AND_QUERY``, 8 real eval examples, sandboxed child process): median of
  ``--repeats`` runs;
* ``headwater serve`` as its own process (uvicorn, 127.0.0.1, a free port): for 1 and 64 instances per
  ``:predict`` request, ``--clients`` client threads each send requests one after the other over a
  keep-alive connection for ``--seconds`` (bounded load: at most ``--clients`` requests in flight);
  requests/s, instances/s, p50 and p99 latency;
* the floor: the same batches through ``signatures["serving_default"]`` in this process, one after the
  other, for ``--seconds``.

The clients run on the same machine as the server: on 2 cores they compete with it for CPU.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MODULE = Path(__file__).resolve().parent.parent / "tests" / "components" / "testdata" / "penguin_module.py"


def train(root: Path) -> tuple[Path, str]:
    """(the SavedModel folder, the Examples URI) of one penguin training run."""
    from headwater.components._data import penguins_csv
    from headwater.components.ingest import Ingest
    from headwater.components.train import Train, serving_model_path
    from headwater.components.transform import Transform
    from headwater.pipelines import LocalRunner, Pipeline

    data = root / "data"
    data.mkdir()
    penguins_csv(data / "penguins.csv")
    ingest = Ingest(input_base=str(data), label="species")
    transform = Transform(examples=ingest.outputs.examples, schema=ingest.outputs.schema, module_file=str(MODULE))
    train = Train(examples=transform.outputs.transformed_examples, transform_graph=transform.outputs.transform_graph,
                  schema=ingest.outputs.schema, module_file=str(MODULE), train_steps=100, eval_steps=5, seed=1)
    result = LocalRunner(quiet=True).run(Pipeline(name="serve_bench", root=str(root / "runs"),
                                                  nodes=[ingest, transform, train]))
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    (model,) = result.nodes["Train"].outputs["model"]
    (examples,) = result.nodes["Ingest"].outputs["examples"]
    return Path(serving_model_path(model.uri)), examples.uri


def eval_records(examples_uri: str, count: int) -> list[bytes]:
    from headwater.components._data import examples_files, read_tfrecords

    records: list[bytes] = []
    for path in examples_files(examples_uri, "eval"):
        records.extend(read_tfrecords(path))
    return (records * (count // len(records) + 1))[:count]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load(port: int, model: str, body: bytes, clients: int, seconds: float) -> list[float]:
    """Latencies (s) of every request sent by ``clients`` threads in ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while time.perf_counter() < stop:
            began = time.perf_counter()
            conn.request("POST", f"/v1/models/{model}:predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            mine.append(time.perf_counter() - began)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def floor(model_dir: Path, records: list[bytes], seconds: float) -> list[float]:
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    batch = tf.constant(records)
    fn(examples=batch)  # warm up
    latencies = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        began = time.perf_counter()
        outputs = fn(examples=tf.constant(records))
        next(iter(outputs.values())).numpy()
        latencies.append(time.perf_counter() - began)
    del batch
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="a penguin SavedModel folder (skips training)")
    parser.add_argument("--examples", help="an Examples artifact URI (with --model)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        root = Path(tmp)
        if args.model:
            model_dir, examples_uri = args.model, args.examples
        else:
            began = time.perf_counter()
            model_dir, examples_uri = train(root)
            print(f"trained the penguin model in {time.perf_counter() - began:.1f} s")
        records = eval_records(examples_uri, 64)

        from headwater.components.infra_validate import validate_model

        walls = []
        for i in range(args.repeats):
            work = root / f"infra-{i}"
            work.mkdir()
            out = validate_model(str(model_dir), mode="LOAD_AND_QUERY", records=records[:8],
                                 signature_names=["serving_default"], timeout_seconds=600, memory_limit_mb=2048,
                                 work_dir=work)
            assert out["blessed"], out["message"]
            walls.append(out["seconds"])
        print(f"InfraValidate (LOAD_AND_QUERY, 8 examples, sandboxed): median {statistics.median(walls):.2f} s "
              f"wall of {args.repeats} ({', '.join(f'{w:.2f}' for w in walls)}); model load inside it "
              f"{out['load_seconds']:.2f} s")

        serving = root / "serving"
        serving.mkdir()
        os.symlink(model_dir, serving / "1")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = open(root / "serve.log", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "serve", str(serving),
                                 "--model-name", "penguin", "--port", str(port)], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/v1/models/penguin")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    time.sleep(0.3)
            print(f"\n{'case':<44} {'requests/s':>10} {'instances/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
            for size in (1, 64):
                body = json.dumps({"instances": [{"b64": base64.b64encode(r).decode()}
                                                 for r in records[:size]]}).encode()
                load(port, "penguin", body, args.clients, 1.0)  # warm up
                lat = load(port, "penguin", body, args.clients, args.seconds)
                rps = len(lat) / args.seconds
                print(f"{f'headwater serve, {size} instance(s), {args.clients} clients':<44} {rps:>10.1f} "
                      f"{rps * size:>12.0f} {1000 * percentile(lat, 0.5):>8.2f} {1000 * percentile(lat, 0.99):>8.2f}")
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            log.close()
        for size in (1, 64):
            lat = floor(model_dir, records[:size], args.seconds)
            rps = len(lat) / args.seconds
            print(f"{f'bare saved_model call, {size} instance(s)':<44} {rps:>10.1f} {rps * size:>12.0f} "
                  f"{1000 * percentile(lat, 0.5):>8.2f} {1000 * percentile(lat, 0.99):>8.2f}")


if __name__ == "__main__":
    main()
