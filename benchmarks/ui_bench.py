"""Dashboard server time on a large store: the runs page, a run page and a ~200-node lineage graph.

    python benchmarks/ui_bench.py                    # 10,000 runs / 100,000 artifacts on SQLite (cached)
    python benchmarks/ui_bench.py --runs 2000        # a smaller store
    python benchmarks/ui_bench.py --postgresql postgresql://postgres@127.0.0.1:5432/ui_bench

The store is lineage_bench's generator (runs of Ingest -> Transform -> Train -> Evaluate -> Push, 10
artifacts each) written the way headwater's launcher writes runs: run contexts carry the pipeline's name,
start time, status, experiment and node graph, executions their node and run ids. Figures are server time
through the whole ASGI app (Starlette's TestClient, no network), p50/p95 over ``--repeat`` requests, and the
number of MLMD calls per page (each one database round trip) for pages of 20, 50 and 100 rows.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lineage_bench  # noqa: E402  (the generator of the lineage benchmark, reused)

OUTPUTS = {"Evaluate": {"evaluation": "ModelEvaluation", "blessing": "ModelBlessing"},
           "Push": {"pushed_model": "PushedModel"}}
GRAPH = {"nodes": [{"id": c, "component": f"headwater.components.{c.lower()}.{c}", "kind": "executor",
                    "outputs": OUTPUTS.get(c, {})} for c in ("Ingest", "Transform", "Train", "Evaluate", "Push")],
         "edges": [{"source": s, "target": t, "output": k, "input": k, "type": ty} for s, t, k, ty in (
             ("Ingest", "Transform", "examples", "Examples"), ("Transform", "Train", "transform_graph",
                                                               "TransformGraph"),
             ("Train", "Evaluate", "model", "Model"), ("Evaluate", "Push", "blessing", "ModelBlessing"))]}


class _HeadwaterShaped:
    """Wraps the raw store while generating: adds what headwater's launcher records on runs and executions."""

    def __init__(self, raw: Any, run_type_id: int) -> None:
        self._raw = raw
        self._run_type = run_type_id
        self._runs: dict[int, str] = {}
        self._executions: dict[int, Any] = {}
        self._clock = 1_700_000_000.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def put_contexts(self, contexts: list[Any]) -> list[int]:
        for c in contexts:
            if c.type_id == self._run_type:
                pipeline = c.name.split("-run-")[0]
                self._clock += 60
                c.custom_properties["pipeline_name"].string_value = pipeline
                c.custom_properties["started_s"].double_value = self._clock
                c.custom_properties["finished_s"].double_value = self._clock + 42.5
                c.custom_properties["status"].string_value = "succeeded"
                c.custom_properties["experiment"].string_value = pipeline
                c.custom_properties["pipeline_graph"].string_value = json.dumps(GRAPH)
                c.custom_properties["param:train_steps"].int_value = 1000 + len(self._runs) % 7
        ids = list(self._raw.put_contexts(contexts))
        for c, i in zip(contexts, ids, strict=True):
            if c.type_id == self._run_type:
                self._runs[i] = c.name
        return ids

    def put_executions(self, executions: list[Any]) -> list[int]:
        ids = list(self._raw.put_executions(executions))
        for e, i in zip(executions, ids, strict=True):
            e.id = i
            self._executions[i] = e
        return ids

    def put_attributions_and_associations(self, attributions: list[Any], associations: list[Any]) -> None:
        self._raw.put_attributions_and_associations(attributions, associations)
        tagged = []
        for a in associations:
            run = self._runs.get(a.context_id)
            e = self._executions.pop(a.execution_id, None) if run else None
            if e is not None:
                e.custom_properties["__run_id__"].string_value = run
                e.custom_properties["__node_id__"].string_value = e_type_name(e)
                e.custom_properties["__duration_s__"].double_value = 8.5
                tagged.append(e)
        if tagged:
            self._raw.put_executions(tagged)


_TYPE_NAMES: dict[int, str] = {}
LINEAGE_URL = ""  # set by measure(): the ~200-node lineage page


def e_type_name(e: Any) -> str:
    return _TYPE_NAMES.get(e.type_id, "node")


def build(uri: str, runs: int) -> None:
    from headwater.metadata.store import connect

    store = connect(uri)
    raw = store.mlmd
    from ml_metadata.proto import metadata_store_pb2 as pb

    run_type = raw.put_context_type(pb.ContextType(name="pipeline_run"))
    shaped = _HeadwaterShaped(raw, run_type)
    gen = lineage_bench.Generator(shaped, lineage_bench.PIPELINES)
    _TYPE_NAMES.update({v: k for k, v in gen.etype.items()})
    exp_type = raw.put_context_type(pb.ContextType(name="experiment"))
    experiments = dict(zip(lineage_bench.PIPELINES, raw.put_contexts(
        [pb.Context(type_id=exp_type, name=p) for p in lineage_bench.PIPELINES]), strict=True))
    start = time.perf_counter()
    done = 0
    while done < runs:
        n = min(lineage_bench.BATCH_RUNS, runs - done)
        before = set(shaped._runs)
        gen.batch(n)
        new = [i for i in shaped._runs if i not in before]
        parents = []
        for i in new:
            pipeline = shaped._runs[i].split("-run-")[0]
            parents += [pb.ParentContext(child_id=i, parent_id=gen.pipeline_ctx[pipeline]),
                        pb.ParentContext(child_id=i, parent_id=experiments[pipeline])]
        raw.put_parent_contexts(parents)
        done += n
        if done >= runs:
            add_wide_lineage(raw, gen)
        print(f"  {done}/{runs} runs written ({done / (time.perf_counter() - start):.0f} runs/s)", file=sys.stderr,
              flush=True)


def add_wide_lineage(raw: Any, gen: Any, fan_out: int = 100) -> int:
    """One dataset read by ``fan_out`` training runs: a lineage graph of 2 * fan_out + 1 nodes around it."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    [data] = raw.put_artifacts([gen._artifact("Examples", "/data/shared/wide", {"span": 0, "version": 0})])
    [stored] = raw.get_artifacts_by_id([data])
    for i in range(fan_out):
        e = gen._execution("Train", {"train_steps": 100 + i})
        read = pb.Event(type=pb.Event.INPUT, artifact_id=data)
        read.path.steps.add().key = "examples"
        wrote = pb.Event(type=pb.Event.OUTPUT)
        wrote.path.steps.add().key = "model"
        raw.put_execution(e, [(stored, read),
                              (gen._artifact("Model", f"/models/wide/{i}"), wrote)], [])
    return int(data)


def _pcts(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(uri: str, repeat: int) -> list[tuple[str, float, float, int, str]]:
    from headwater.metadata.store import connect
    from headwater.ui.app import create_app
    from headwater.ui.objects import lineage
    from starlette.testclient import TestClient

    app = create_app(connect(uri, readonly=True))
    dash = app.app.state.dashboard
    client = TestClient(app, base_url="http://127.0.0.1")
    rng = random.Random(3)
    runs = client.get("/api/runs", params={"limit": 200}).json()["runs"]
    older = client.get("/api/runs", params={"limit": 200, "before": runs[-1]["id"]}).json()["runs"]
    run_ids = [r["run_id"] for r in runs + older]
    [wide] = [a.id for a in dash.raw.get_artifacts_by_uri("/data/shared/wide")]
    target, depth = wide, 1
    size = sum(1 for e in lineage(dash, f"artifact:{target}", direction="downstream", depth=depth)["elements"]
               if e["group"] == "nodes")
    results = []

    def timed(name: str, make_url: Callable[[], str], note: str = "") -> None:
        samples, calls = [], []
        for _ in range(repeat):
            url = make_url()
            before = dash.raw.calls
            t = time.perf_counter()
            r = client.get(url)
            samples.append((time.perf_counter() - t) * 1000)
            calls.append(dash.raw.calls - before)
            assert r.status_code == 200, (url, r.text[:300])
        p50, p95 = _pcts(samples)
        results.append((name, p50, p95, max(calls), note))

    for rows in (20, 50, 100):
        timed(f"runs page, {rows} rows", lambda rows=rows: f"/?limit={rows}")
    timed("runs page, 50 rows, older page", lambda: f"/?limit=50&before={rng.choice(runs + older)['id']}")
    timed("runs page, 50 rows, pipeline filter", lambda: "/?limit=50&pipeline=penguin")
    timed("run page", lambda: f"/runs/{rng.choice(run_ids)}")
    timed("run page JSON (live poll)", lambda: f"/api/runs/{rng.choice(run_ids)}")
    global LINEAGE_URL
    LINEAGE_URL = f"/lineage?start=artifact:{target}&direction=downstream&depth={depth}"
    timed("lineage JSON", lambda: f"/api/lineage?start=artifact:{target}&direction=downstream&depth={depth}",
          f"{size} nodes")
    timed("lineage page", lambda: f"/lineage?start=artifact:{target}&direction=downstream&depth={depth}",
          f"{size} nodes")
    timed("models page", lambda: "/models")
    return results


def browser_render(uri: str, repeat: int, lineage_url: str) -> dict[str, tuple[float, float]] | None:
    """Headless Chromium: ms from navigation start to the graph drawn (p50, p95), run page and lineage page."""
    import os
    import urllib.request

    sys.path.insert(0, str(HERE.parent / "tests" / "support"))
    from ui_servers import CHROMEDRIVER, CHROMIUM, start_server

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    server = start_server(uri, Path(tempfile.mkdtemp()) / "server.log")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        with urllib.request.urlopen(server.url + "/api/runs?limit=100") as r:
            run_ids = [x["run_id"] for x in json.load(r)["runs"]]
        out = {}
        for name, urls, ready in (
                ("run page, browser: DAG drawn", [f"/runs/{r}" for r in run_ids], "window.hwRun"),
                ("lineage page, browser: graph drawn", [lineage_url], "window.hwLineage")):
            samples = []
            for i in range(repeat):
                driver.get(server.url + urls[i % len(urls)])
                ms = driver.execute_async_script(
                    "const done = arguments[0]; (function wait() {"
                    f" if ({ready} && {ready}.cy.nodes().length) {{ done(performance.now()); }}"
                    " else { setTimeout(wait, 5); } })();")
                samples.append(float(ms))
            out[name] = _pcts(samples)
        return out
    finally:
        driver.quit()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="runs to generate (10 artifacts each)")
    parser.add_argument("--repeat", type=int, default=30, help="requests per page measured")
    parser.add_argument("--postgresql", metavar="URI", help="also build and measure on this (empty) database")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "headwater-ui-bench")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--browser", action="store_true", help="also time the run page's first render in "
                        "headless Chromium (Debian's chromium and chromium-driver)")
    args = parser.parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = args.cache_dir / f"ui-v3-{args.runs}runs.sqlite"
    if args.rebuild or not path.exists():
        path.unlink(missing_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build(f"sqlite:///{partial}", args.runs)
        partial.rename(path)
    targets = [("SQLite", f"sqlite:///{path}")]
    if args.postgresql:
        build(args.postgresql, args.runs)
        targets.append(("PostgreSQL", args.postgresql))
    print(f"store: {args.runs} runs, {args.runs * 10} artifacts, {args.runs * 5} executions; "
          f"{args.repeat} requests per page")
    for label, uri in targets:
        print(f"\n{label}")
        print(f"  {'page':<38} {'p50 ms':>8} {'p95 ms':>8} {'MLMD calls':>10}")
        for name, p50, p95, calls, note in measure(uri, args.repeat):
            print(f"  {name:<38} {p50:>8.1f} {p95:>8.1f} {calls:>10}  {note}")
        if args.browser:
            shown = browser_render(uri, args.repeat, LINEAGE_URL)
            if shown is None:
                print("  (no chromium/chromedriver: browser render not measured)")
            for name, (p50, p95) in (shown or {}).items():
                print(f"  {name:<38} {p50:>8.1f} {p95:>8.1f}             (from navigation start)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
