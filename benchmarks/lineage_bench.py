"""Lineage at scale: trace times on a 100,000-artifact / 50,000-execution store, and CLI cold start.

    python benchmarks/lineage_bench.py              # builds the store once (cached in the temp dir)
    python benchmarks/lineage_bench.py --rebuild    # build it again
    python benchmarks/lineage_bench.py --runs 2000  # a smaller store (20,000 artifacts)

The generated store has many runs of a few pipelines, each run a TFX-shaped chain written with MLMD's
own batched calls (contexts pipeline / pipeline_run / node, events with [key, index] paths):

    Ingest    -> Examples, Schema, ExampleStatistics
    Transform -> TransformGraph, Examples (transformed)
    Train     -> Model, ModelRun
    Evaluate  -> ModelEvaluation, ModelBlessing   (baseline: the pipeline's latest blessed model)
    Push      -> PushedModel                      (pushed=1 when blessed)

10 artifacts and 5 executions per run: 10,000 runs give 100,000 artifacts and 50,000 executions.
Figures are medians (p50) over many repetitions; the cold start is the median of several fresh
``headwater lineage ID --explain`` processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PIPELINES = ("taxi", "penguin", "babyweight", "churn")
BATCH_RUNS = 400
SCHEMA_VERSION = 1  # bump when the generated shape changes, so cached stores are rebuilt


def _pb() -> Any:
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2


def _open(path: Path, *, readonly: bool) -> Any:
    from ml_metadata.metadata_store import metadata_store

    pb = _pb()
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = (
        pb.SqliteMetadataSourceConfig.READONLY if readonly else pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return metadata_store.MetadataStore(config)


class Generator:
    """Writes runs in batches: one transaction per MLMD call, a few calls per batch of runs."""

    def __init__(self, mlmd: Any, pipelines: tuple[str, ...], seed: int = 7) -> None:
        pb = _pb()
        self.pb = pb
        self.mlmd = mlmd
        self.rng = random.Random(seed)
        self.atype: dict[str, int] = {}
        for name in ("Examples", "ExampleStatistics"):
            t = pb.ArtifactType(name=name)
            t.properties["span"] = pb.INT
            t.properties["split_names"] = pb.STRING
            if name == "Examples":
                t.properties["version"] = pb.INT
            self.atype[name] = mlmd.put_artifact_type(t)
        for name in ("Schema", "TransformGraph", "Model", "ModelRun", "ModelEvaluation", "ModelBlessing",
                     "PushedModel"):
            self.atype[name] = mlmd.put_artifact_type(pb.ArtifactType(name=name))
        self.etype = {c: mlmd.put_execution_type(pb.ExecutionType(name=f"headwater.components.{c.lower()}.{c}"))
                      for c in ("Ingest", "Transform", "Train", "Evaluate", "Push")}
        self.ctype = {n: mlmd.put_context_type(pb.ContextType(name=n)) for n in ("pipeline", "pipeline_run", "node")}
        self.pipeline_ctx = dict(zip(pipelines, mlmd.put_contexts(
            [pb.Context(type_id=self.ctype["pipeline"], name=p) for p in pipelines]), strict=True))
        node_names = [(p, c) for p in pipelines for c in self.etype]
        ids = mlmd.put_contexts([pb.Context(type_id=self.ctype["node"], name=f"{p}.{c}") for p, c in node_names])
        self.node_ctx = dict(zip(node_names, ids, strict=True))
        self.pipelines = pipelines
        self.run_count = {p: 0 for p in pipelines}
        self.blessed_model: dict[str, int] = {}  # pipeline -> latest blessed Model id

    def _artifact(self, type_name: str, uri: str, props: dict[str, Any] | None = None,
                  custom: dict[str, Any] | None = None) -> Any:
        a = self.pb.Artifact(type_id=self.atype[type_name], uri=uri, state=self.pb.Artifact.LIVE)
        for target, values in ((a.properties, props or {}), (a.custom_properties, custom or {})):
            for k, v in values.items():
                if isinstance(v, bool | int):
                    target[k].int_value = int(v)
                elif isinstance(v, float):
                    target[k].double_value = v
                else:
                    target[k].string_value = v if isinstance(v, str) else json.dumps(v)
        return a

    def _execution(self, component: str, params: dict[str, Any]) -> Any:
        e = self.pb.Execution(type_id=self.etype[component], last_known_state=self.pb.Execution.COMPLETE)
        for k, v in params.items():
            if isinstance(v, int):
                e.custom_properties[k].int_value = v
            else:
                e.custom_properties[k].string_value = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        return e

    def batch(self, n_runs: int) -> None:
        """Write ``n_runs`` runs. Artifacts and executions first (ids), then events and attributions."""
        pb = self.pb
        plan = []
        for _ in range(n_runs):
            pipeline = self.pipelines[sum(self.run_count.values()) % len(self.pipelines)]
            k = self.run_count[pipeline]
            self.run_count[pipeline] += 1
            plan.append((pipeline, k, f"{pipeline}-run-{k:06d}"))
        run_ids = self.mlmd.put_contexts([pb.Context(type_id=self.ctype["pipeline_run"], name=n) for *_, n in plan])

        executions: list[Any] = []
        artifacts: list[Any] = []
        # (execution index, artifact index or existing artifact id, INPUT/OUTPUT, key)
        edges: list[tuple[int, int | None, int | None, int, str]] = []
        owners: list[tuple[str, str, int]] = []  # per execution: pipeline, component, run context
        art_owner: list[tuple[str, str, int]] = []
        blessed_pending: list[tuple[str, int]] = []  # (pipeline, model artifact index) in run order

        def out(ex: int, type_name: str, key: str, uri: str, props=None, custom=None) -> int:
            artifacts.append(self._artifact(type_name, uri, props, custom))
            art_owner.append(owners[ex])
            edges.append((ex, len(artifacts) - 1, None, pb.Event.OUTPUT, key))
            return len(artifacts) - 1

        def inp(ex: int, key: str, index: int | None = None, existing: int | None = None) -> None:
            edges.append((ex, index, existing, pb.Event.INPUT, key))

        def execution(component: str, pipeline: str, run_ctx: int, params: dict[str, Any]) -> int:
            executions.append(self._execution(component, params))
            owners.append((pipeline, component, run_ctx))
            return len(executions) - 1

        for (pipeline, k, _), run_ctx in zip(plan, run_ids, strict=True):
            root = f"/pipelines/{pipeline}/{k:06d}"
            span = k // 3  # new data every third run; retraining in between
            code = {"module_file": f"models/{pipeline}.py", "code_fingerprint": f"sha256:{k // 50:064x}"}
            ex = execution("Ingest", pipeline, run_ctx, {"input_base": f"/data/{pipeline}", "span": span,
                                                          "input_fingerprint": f"sha256:{span:064x}"})
            examples = out(ex, "Examples", "examples", f"{root}/Ingest/examples",
                           {"span": span, "version": 0, "split_names": '["train", "eval"]'})
            schema = out(ex, "Schema", "schema", f"{root}/Ingest/schema")
            out(ex, "ExampleStatistics", "statistics", f"{root}/Ingest/statistics",
                {"span": span, "split_names": '["train", "eval"]'})
            ex = execution("Transform", pipeline, run_ctx, {**code, "preprocessing_fn": "preprocessing_fn"})
            inp(ex, "examples", examples)
            inp(ex, "schema", schema)
            graph = out(ex, "TransformGraph", "transform_graph", f"{root}/Transform/transform_graph")
            transformed = out(ex, "Examples", "transformed_examples", f"{root}/Transform/transformed_examples",
                              {"split_names": '["train", "eval"]'})
            ex = execution("Train", pipeline, run_ctx, {**code, "run_fn": "run_fn", "train_steps": 1000 + k % 7,
                                                         "hyperparameters": {"learning_rate": 0.001 * (1 + k % 5)}})
            for key, idx in (("examples", transformed), ("transform_graph", graph), ("schema", schema)):
                inp(ex, key, idx)
            model = out(ex, "Model", "model", f"{root}/Train/model")
            out(ex, "ModelRun", "model_run", f"{root}/Train/model_run")
            ex = execution("Evaluate", pipeline, run_ctx, {"eval_config": {"metrics_specs": [{"metrics": [{
                "class_name": "BinaryAccuracy", "threshold": {"value_threshold": {"lower_bound": 0.7}}}]}]}})
            inp(ex, "examples", examples)
            inp(ex, "model", model)
            baseline = self._latest_blessed(pipeline, blessed_pending)
            if baseline is not None:
                inp(ex, "baseline_model", *baseline)
            blessed = self.rng.random() < 0.75
            out(ex, "ModelEvaluation", "evaluation", f"{root}/Evaluate/evaluation", None,
                {"binary_accuracy": round(0.6 + self.rng.random() * 0.3, 4)})
            blessing = out(ex, "ModelBlessing", "blessing", f"{root}/Evaluate/blessing", None,
                           {"blessed": int(blessed)})
            ex = execution("Push", pipeline, run_ctx, {"destination": f"/serving/{pipeline}"})
            inp(ex, "model", model)
            inp(ex, "blessing", blessing)
            out(ex, "PushedModel", "pushed_model", f"{root}/Push/pushed_model", None,
                {"pushed": int(blessed), **({"pushed_destination": f"/serving/{pipeline}/{k}",
                                             "pushed_version": str(k)} if blessed else {})})
            if blessed:
                blessed_pending.append((pipeline, model))

        execution_ids = self.mlmd.put_executions(executions)
        artifact_ids = self.mlmd.put_artifacts(artifacts)
        events = []
        for ex, index, existing, kind, key in edges:
            event = pb.Event(type=kind, execution_id=execution_ids[ex],
                             artifact_id=artifact_ids[index] if index is not None else existing)
            event.path.steps.add().key = key
            event.path.steps.add().index = 0
            events.append(event)
        self.mlmd.put_events(events)
        attributions, associations = [], []
        for aid, (pipeline, component, run_ctx) in zip(artifact_ids, art_owner, strict=True):
            for ctx in (self.pipeline_ctx[pipeline], run_ctx, self.node_ctx[(pipeline, component)]):
                attributions.append(pb.Attribution(artifact_id=aid, context_id=ctx))
        for eid, (pipeline, component, run_ctx) in zip(execution_ids, owners, strict=True):
            for ctx in (self.pipeline_ctx[pipeline], run_ctx, self.node_ctx[(pipeline, component)]):
                associations.append(pb.Association(execution_id=eid, context_id=ctx))
        self.mlmd.put_attributions_and_associations(attributions, associations)
        for pipeline, index in blessed_pending:
            self.blessed_model[pipeline] = artifact_ids[index]

    def _latest_blessed(self, pipeline: str, pending: list[tuple[str, int]]) -> tuple[int | None, int | None] | None:
        """(index in this batch, None) or (None, stored id) of the pipeline's latest blessed model."""
        for p, index in reversed(pending):
            if p == pipeline:
                return index, None
        stored = self.blessed_model.get(pipeline)
        return (None, stored) if stored is not None else None


def build(path: Path, runs: int, pipelines: tuple[str, ...]) -> None:
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    mlmd = _open(tmp, readonly=False)
    gen = Generator(mlmd, pipelines)
    start = time.perf_counter()
    done = 0
    while done < runs:
        n = min(BATCH_RUNS, runs - done)
        gen.batch(n)
        done += n
        rate = done / (time.perf_counter() - start)
        print(f"  {done}/{runs} runs written ({rate:.0f} runs/s)", file=sys.stderr, flush=True)
    del mlmd
    tmp.rename(path)
    print(f"built {path} in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="pipeline runs to generate (10 artifacts each)")
    parser.add_argument("--pipelines", type=int, default=len(PIPELINES), choices=range(1, len(PIPELINES) + 1))
    parser.add_argument("--repeat", type=int, default=100, help="repetitions per trace target")
    parser.add_argument("--targets", type=int, default=8, help="distinct artifacts traced per measurement")
    parser.add_argument("--cold", type=int, default=7, help="cold-start processes to time")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "headwater-lineage-bench")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the store even if cached")
    args = parser.parse_args(argv)

    pipelines = PIPELINES[: args.pipelines]
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = args.cache_dir / f"lineage-v{SCHEMA_VERSION}-{args.runs}runs-{len(pipelines)}p.sqlite"
    if args.rebuild or not path.exists():
        build(path, args.runs, pipelines)

    from headwater.metadata.lineage import downstream, explain_push, list_artifacts, upstream
    from headwater.metadata.store import connect

    store = connect(f"sqlite:///{path.resolve()}", readonly=True)
    mlmd = store.mlmd
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        n_artifacts, n_executions, n_events = (
            con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("Artifact", "Execution", "Event")
        )
    rng = random.Random(11)
    pushed = [a for a in list_artifacts(store, type="PushedModel") if a.get("pushed") == 1]
    pushed_targets = [pushed[-1], *rng.sample(pushed, args.targets - 1)]
    raw_examples = [a for a in mlmd.get_artifacts_by_type("Examples") if a.properties["span"].HasField("int_value")]
    examples_targets = rng.sample(raw_examples, args.targets)

    def over(targets: list[Any], fn: Callable[[Any], Any]) -> tuple[float, float, list[Any]]:
        samples, results = [], []
        per_target = max(1, args.repeat // len(targets))
        for target in targets:
            fn(target.id)
            for _ in range(per_target):
                t = time.perf_counter()
                results.append(fn(target.id))
                samples.append((time.perf_counter() - t) * 1000)
        p50, p90 = _percentiles(samples)
        return p50, p90, results

    print(f"store: {path} ({path.stat().st_size / 1e6:.0f} MB): {n_artifacts:,} artifacts, {n_executions:,} "
          f"executions, {n_events:,} events; {len(pipelines)} pipelines, {args.runs:,} runs")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    up50, up90, ups = over(pushed_targets, lambda i: upstream(store, i))
    sizes = sorted(len(g) for g in ups)
    print(f"upstream trace of a PushedModel (all depths): p50 {up50:.1f} ms, p90 {up90:.1f} ms "
          f"[{sizes[len(sizes) // 2]} nodes]")
    down50, down90, downs = over(examples_targets, lambda i: downstream(store, i))
    sizes = sorted(len(g) for g in downs)
    print(f"downstream trace of an Examples artifact (all depths): p50 {down50:.1f} ms, p90 {down90:.1f} ms "
          f"[median {sizes[len(sizes) // 2]} nodes, max {sizes[-1]}]")
    d3, d3_90, _ = over(pushed_targets, lambda i: upstream(store, i, depth=3))
    print(f"upstream trace, --depth 3: p50 {d3:.1f} ms, p90 {d3_90:.1f} ms")
    ex50, ex90, _ = over(pushed_targets, lambda i: explain_push(store, i))
    print(f"explain_push by id (in process): p50 {ex50:.1f} ms, p90 {ex90:.1f} ms")
    by_path = {a.id: a.get("pushed_destination") for a in pushed_targets}
    sp50, sp90, _ = over(pushed_targets, lambda i: explain_push(store, by_path[i]))
    print(f"explain_push by serving path (in process): p50 {sp50:.1f} ms, p90 {sp90:.1f} ms")

    exe = shutil.which("headwater") or str(Path(sys.executable).with_name("headwater"))
    target = str(pushed_targets[0].id)
    cmd = [exe, "lineage", target, "--explain", "--metadata", f"sqlite:///{path.resolve()}"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # compile bytecode once
    walls = []
    for _ in range(args.cold):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"headwater lineage failed: {done.stderr}")
    bare = []
    for _ in range(args.cold):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t)
    print(f"`headwater lineage {target} --explain` cold start: median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f}; bare python {statistics.median(bare):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
