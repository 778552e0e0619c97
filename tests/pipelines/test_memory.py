"""Per-execution peak memory: measured by the worker, reset between executions of one warm worker, children
included; recorded on the execution in MLMD and shown by ``runs show``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hw_warm_components as w
import pytest
from headwater.metadata import connect
from headwater.metadata.conventions import P_PEAK_RSS, P_PEAK_RSS_CHILDREN
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.history import show_run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory is measured on Linux")


def _peaks(tmp_path: Path, result, node: str) -> tuple[float, float, int]:
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    props = store.get_execution(result.nodes[node].execution_id).properties
    [art] = result.outputs(node, "out")
    pid = json.loads(Path(art.uri, "allocated.json").read_text())["pid"]
    return float(props[P_PEAK_RSS]), float(props[P_PEAK_RSS_CHILDREN]), pid


def test_a_warm_worker_records_each_executions_own_peak(tmp_path, warm):
    big = w.allocate(mib=300).with_id("big")
    small = w.allocate(mib=5, after=big.outputs.out).with_id("small")
    pipeline = Pipeline(name="memory", root=str(tmp_path / "root"), nodes=[big, small])
    result = LocalRunner(quiet=True, max_workers=1, keep_warm=120).run(pipeline)
    assert result.ok, result
    big_peak, big_children, big_pid = _peaks(tmp_path, result, "big")
    small_peak, _, small_pid = _peaks(tmp_path, result, "small")
    assert big_pid == small_pid  # one warm worker ran both: its lifetime peak would say 300 MiB twice
    assert big_peak >= 300 and big_children == 0
    assert small_peak < big_peak - 250, (big_peak, small_peak)
    detail = show_run(connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}"), result.run_id)
    assert "PEAK RSS" in detail.to_text()
    [row] = [n for n in detail.nodes if n.node_id == "big"]
    assert row.peak_rss_mib == big_peak and f"{big_peak:.0f} MiB" in detail.to_text()


def test_processes_an_execution_starts_are_counted(tmp_path):
    # Children living longer than the sampling interval, each counted with its own peak; the second is the
    # smaller one, which a lifetime maximum (RUSAGE_CHILDREN) could not show.
    first = w.allocate(mib=0, child_mib=250, child_hold_s=1.0).with_id("first")
    second = w.allocate(mib=0, child_mib=150, child_hold_s=1.0, after=first.outputs.out).with_id("second")
    # A trivial child of a worker holding 300 MiB: Linux charges it (in RUSAGE_CHILDREN) with the memory it
    # was forked from; the figure recorded is its own.
    third = w.allocate(mib=300, child_mib=0, child_hold_s=1.0, after=second.outputs.out).with_id("third")
    pipeline = Pipeline(name="children", root=str(tmp_path / "root"), nodes=[first, second, third])
    result = LocalRunner(quiet=True, max_workers=1, keep_warm=False).run(pipeline)
    assert result.ok, result
    peak, children, first_pid = _peaks(tmp_path, result, "first")
    assert children >= 250 and peak >= children + 20  # the worker itself holds the interpreter and headwater
    peak, children, second_pid = _peaks(tmp_path, result, "second")
    assert second_pid == first_pid
    assert 150 <= children < 240 and peak >= children + 20
    peak, children, _ = _peaks(tmp_path, result, "third")
    assert peak >= 300 and children < 100


def test_runs_show_prints_the_peak(tmp_path):
    pipeline = Pipeline(name="show", root=str(tmp_path / "root"), nodes=[w.allocate(mib=120)])
    result = LocalRunner(quiet=True, keep_warm=False).run(pipeline)
    assert result.ok, result
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("headwater")), "runs", "show", result.run_id,
         "--root", str(tmp_path / "root")],
        capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("allocate"))
    mib = float(line.split("MiB")[0].split()[-1])
    assert mib >= 120, line
