"""One identity for a component, whether its pipeline file runs as a script or through ``headwater run``.

Before: ``python pipeline.py`` recorded execution types like ``__main__.join`` (and cache keys built on
them), so a following ``headwater run pipeline.py`` re-ran every node, and the other way round.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The README quick start, as a user saves it (components, pipeline and the script entry point in one file).
QUICK_START = textwrap.dedent('''
    from pathlib import Path
    from headwater.components import component, Input, Output
    from headwater.metadata import types
    from headwater.pipelines import Pipeline, Param, LocalRunner

    @component
    def produce(data: Output[types.Examples], seconds: float = 1.0) -> None:
        (Path(data.path) / "part-0.txt").write_text("...")
        data.custom_properties["rows"] = 1

    @component
    def join(a: Input[types.Examples], b: Input[types.Examples], out: Output[types.Model]) -> None:
        (Path(out.path) / "joined.txt").write_text(
            (Path(a.path) / "part-0.txt").read_text() + (Path(b.path) / "part-0.txt").read_text())

    a = produce(seconds=Param("delay", default=1.0)).with_id("a")
    b = produce().with_id("b")
    j = join(a=a.outputs.data, b=b.outputs.data)
    pipeline = Pipeline(name="demo", root="runs/demo", nodes=[a, b, j])

    if __name__ == "__main__":
        result = LocalRunner().run(pipeline, params={"delay": 0.5})
        print(result.run_id, {n: r.state for n, r in result.nodes.items()})
        raise SystemExit(0 if result.ok else 1)
''')


def _script(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "pipeline.py"], cwd=project, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HEADWATER_METADATA": ""})


def _cli(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", "run", "pipeline.py", "--param",
                           "delay=0.5"], cwd=project, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HEADWATER_METADATA": ""})


def _runs(project: Path) -> list[dict[str, tuple[str, str, str]]]:
    """Per run (oldest first): {node: (execution type, state, cache key)}."""
    from headwater.metadata import connect
    from headwater.metadata.conventions import P_CACHE_KEY, P_NODE, P_RUN
    from ml_metadata.proto import metadata_store_pb2 as pb

    store = connect(f"sqlite:///{project / 'runs' / 'demo' / 'metadata.sqlite'}", readonly=True)
    by_run: dict[str, dict[str, tuple[str, str, str]]] = {}
    for x in sorted(store.mlmd.get_executions(), key=lambda x: x.id):
        props = {**x.custom_properties, **x.properties}
        run, node = props[P_RUN].string_value, props[P_NODE].string_value
        by_run.setdefault(run, {})[node] = (x.type, pb.Execution.State.Name(x.last_known_state),
                                            props[P_CACHE_KEY].string_value)
    return list(by_run.values())


@pytest.mark.parametrize("order", ["script-then-cli", "cli-then-script"])
def test_script_and_cli_runs_share_types_and_cache(tmp_path: Path, order: str) -> None:
    (tmp_path / "pipeline.py").write_text(QUICK_START)
    first, second = (_script, _cli) if order == "script-then-cli" else (_cli, _script)
    done = first(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = second(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run1, run2 = _runs(tmp_path)
    assert {n: t for n, (t, _, _) in run1.items()} == {"a": "produce", "b": "produce", "join": "join"}
    assert {n: t for n, (t, _, _) in run2.items()} == {"a": "produce", "b": "produce", "join": "join"}
    assert {n: s for n, (_, s, _) in run1.items()} == {"a": "COMPLETE", "b": "COMPLETE", "join": "COMPLETE"}
    # the second run hit the cache for every node: same keys, CACHED executions
    assert {n: s for n, (_, s, _) in run2.items()} == {"a": "CACHED", "b": "CACHED", "join": "CACHED"}
    assert {n: k for n, (_, _, k) in run1.items()} == {n: k for n, (_, _, k) in run2.items()}


def test_a_script_run_executes_in_workers(tmp_path: Path) -> None:
    """Worker processes load a component of a script (``__main__``) from its file, by the same name."""
    (tmp_path / "pipeline.py").write_text(QUICK_START)
    done = _script(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = _runs(tmp_path)
    assert {s for _, s, _ in run.values()} == {"COMPLETE"}
    joined = list((tmp_path / "runs" / "demo").rglob("joined.txt"))
    assert [p.read_text() for p in joined] == ["......"]
