"""The penguin pipeline end to end on the real Palmer penguins data: prints medians of several runs.

    python benchmarks/penguin_bench.py [--repeats 3] [--train-steps 100] [--only library|cli]

``library`` (below) times ``LocalRunner`` in this process; ``cli`` times what a user types, ``headwater run``
on a copy of the penguin template, with warm workers (a private pool folder, stopped at the end): the first
run in a fresh shell (no pool: the daemon and its workers start cold), ``--no-cache`` with warm workers, the
edit loop (a change to ``models/model.py``, then a re-run: Train, Evaluate and Push re-run) and the fully
cached re-run — beside the floors of importing TensorFlow, tf.Transform and TFMA in a fresh interpreter.

Ingest → Transform → Train (100 steps) → LatestBlessedModel → Evaluate (TFMA, accuracy >= 0.9, not worse
than the blessed model) → Push. Each timed run starts from an empty pipeline root and metadata store, with
new worker processes (what a user's first ``headwater run`` pays); then the fully cached re-run of the same
pipeline. Per-node figures are the node's own time as the runner records it (executor time for executed
nodes); ``total`` is the pipeline wall time from ``LocalRunner.run`` to its return.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from headwater.components._data import penguins_csv
from headwater.components.evaluate import ChangeThreshold, EvalConfig, Evaluate, Metric, ValueThreshold
from headwater.components.ingest import Ingest
from headwater.components.push import Push
from headwater.components.resolvers import LatestBlessedModel
from headwater.components.train import Train
from headwater.components.transform import Transform
from headwater.pipelines import LocalRunner, Pipeline

MODULE = Path(__file__).resolve().parent.parent / "tests" / "components" / "testdata" / "penguin_module.py"

EVAL_CONFIG = EvalConfig(
    label_key="species_xf",
    preprocessing_signatures=("transform_features",),
    metrics=(
        Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9),
               change=ChangeThreshold(absolute=-1e-10)),
        Metric("ExampleCount"),
    ),
)


def penguin_pipeline(root: Path, data: Path, train_steps: int) -> Pipeline:
    ingest = Ingest(input_base=str(data), label="species")
    transform = Transform(examples=ingest.outputs.examples, schema=ingest.outputs.schema, module_file=str(MODULE))
    train = Train(examples=transform.outputs.transformed_examples, transform_graph=transform.outputs.transform_graph,
                  schema=ingest.outputs.schema, module_file=str(MODULE), train_steps=train_steps, eval_steps=5,
                  seed=1)
    latest = LatestBlessedModel(exclude=train.outputs.model)
    evaluate = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                        baseline_model=latest.outputs.model, eval_config=EVAL_CONFIG)
    push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing, destination=str(root / "serving"))
    return Pipeline(name="penguin", root=str(root / "pipeline"),
                    nodes=[ingest, transform, train, latest, evaluate, push])


def timed(pipeline: Pipeline) -> tuple[float, dict[str, float], dict[str, str]]:
    started = time.perf_counter()
    result = LocalRunner(quiet=True, keep_warm=False).run(pipeline)
    wall = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"run failed: { {n: r.error for n, r in result.nodes.items() if r.error} }")
    return wall, {n: r.duration for n, r in result.nodes.items()}, {n: r.state for n, r in result.nodes.items()}


def _headwater(project: Path, env: dict[str, str], *args: str) -> tuple[float, float, dict[str, str]]:
    """Wall time of ``headwater run pipeline.py ARGS`` in ``project``, the run's own time, node states."""
    started = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).with_name("headwater")), "run", "pipeline.py", "--quiet", *args],
                         cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"headwater run failed:\n{out.stdout}\n{out.stderr}")
    shown = subprocess.run([str(Path(sys.executable).with_name("headwater")), "runs", "list", "--format", "json",
                            "--limit", "1"], cwd=project, env=env, capture_output=True, text=True, check=True)
    [last] = json.loads(shown.stdout)
    detail = subprocess.run([str(Path(sys.executable).with_name("headwater")), "runs", "show", last["run_id"],
                             "--format", "json"], cwd=project, env=env, capture_output=True, text=True, check=True)
    nodes = {n["node_id"]: n["state"] for n in json.loads(detail.stdout)["nodes"]}
    return wall, float(last.get("duration") or 0.0), nodes


def _import_floor(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def cli_scenarios(repeats: int, train_steps: int) -> None:
    from headwater.pipelines.warm import pool_dirs, stop_pool
    from headwater.templates import copy_template

    with tempfile.TemporaryDirectory(prefix="hwb-") as tmp:
        pools = Path(tmp, "w")
        env = {**os.environ, "HEADWATER_WORKERS_DIR": str(pools), "HEADWATER_KEEP_WARM": "600"}
        figures: dict[str, list[float]] = {}

        def record(name: str, wall: float, nodes: dict[str, str]) -> None:
            figures.setdefault(name, []).append(wall)
            print(f"  {name:<34} {wall:6.2f} s  " + " ".join(f"{n}={s}" for n, s in nodes.items()), flush=True)

        def stop_all() -> None:
            for folder in pool_dirs(pools):
                stop_pool(folder)

        for i in range(repeats):  # a fresh shell: no pool running, a new project (nothing cached)
            stop_all()
            project = Path(tmp, f"penguin{i}")
            copy_template("penguin", project)
            wall, _, nodes = _headwater(project, env, "--param", f"train_steps={train_steps}")
            record("first run, cold workers", wall, nodes)
        assert project is not None
        for _ in range(repeats):
            wall, _, nodes = _headwater(project, env, "--no-cache", "--param", f"train_steps={train_steps}")
            record("--no-cache, warm workers", wall, nodes)
        model = project / "models" / "model.py"
        for i in range(repeats):
            with model.open("a") as f:
                f.write(f"# edit {i}\n")
            wall, _, nodes = _headwater(project, env, "--param", f"train_steps={train_steps}")
            assert nodes.get("Transform") == "cached", nodes
            record("edit loop (model.py changed)", wall, nodes)
        for _ in range(repeats):
            wall, _, nodes = _headwater(project, env, "--param", f"train_steps={train_steps}")
            record("fully cached re-run", wall, nodes)
        stop_all()
        for module in ("tensorflow", "tensorflow_transform", "tensorflow_model_analysis"):
            for _ in range(repeats):
                figures.setdefault(f"floor: import {module}", []).append(_import_floor(module))
    print(f"\nmedians of {repeats} (headwater run wall time, CLI start-up included; train_steps={train_steps}):")
    for name, values in figures.items():
        print(f"  {name:<44} {statistics.median(values):6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--only", choices=("library", "cli"), help="one part only (default: both)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.only != "library":
        cli_scenarios(args.repeats, args.train_steps)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.only == "cli":
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "data")
        penguins_csv(data / "penguins.csv")
        walls: list[float] = []
        per_node: dict[str, list[float]] = {}
        pipeline = None
        for i in range(args.repeats):
            pipeline = penguin_pipeline(Path(tmp, f"run{i}"), data, args.train_steps)
            wall, nodes, states = timed(pipeline)
            walls.append(wall)
            for node, seconds in nodes.items():
                per_node.setdefault(node, []).append(seconds)
            print(f"  run {i + 1}: {wall:.2f} s  " + ", ".join(f"{n} {s:.2f}" for n, s in nodes.items()), flush=True)
        assert pipeline is not None
        cached = []
        for _ in range(args.repeats):
            wall, _, states = timed(pipeline)
            assert set(states.values()) <= {"cached", "done"}, states  # the resolver runs; the rest is cached
            cached.append(wall)
    print(f"\nmedians of {args.repeats} cold runs (fresh root, store and workers each):")
    for node, values in per_node.items():
        print(f"  {node:<20} {statistics.median(values):6.2f} s")
    print(f"  {'pipeline wall time':<20} {statistics.median(walls):6.2f} s   (target <= 8 s)")
    print(f"fully cached re-run: {statistics.median(cached):.2f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
