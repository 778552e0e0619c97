"""Data gates in the runner: a blocking verdict stops the consumers of the checked data and everything after
them (state ``blocked``, the reason in words), the rest of the pipeline runs, and the run does not complete."""

from __future__ import annotations

from pathlib import Path

import hw_data_gate as d
import pytest
from headwater.metadata import connect
from headwater.pipelines import LocalRunner
from headwater.pipelines.cli import main as cli
from headwater.pipelines.gates import data_gates, downstream_gates, gated_channels


def test_the_gate_guards_the_consumers_of_what_it_checked(tmp_path: Path) -> None:
    pipeline = d.data_gated_pipeline(tmp_path)
    assert gated_channels(pipeline, "validate") == {("ingest", "data")}
    assert data_gates(pipeline) == {"train": ["validate"]}
    assert downstream_gates(pipeline) == {"train": ["validate"], "push": ["validate"]}


def test_a_passing_gate_lets_everything_run(tmp_path: Path) -> None:
    result = LocalRunner(quiet=True).run(d.data_gated_pipeline(tmp_path))
    assert result.ok
    assert {n: r.state for n, r in result.nodes.items()} == dict.fromkeys(
        ["ingest", "validate", "train", "push", "other"], "done")


def test_a_blocking_gate_stops_its_consumers_and_what_follows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    result = LocalRunner().run(d.data_gated_pipeline(tmp_path, block=True))
    assert not result.ok and result.failed == []
    states = {n: r.state for n, r in result.nodes.items()}
    assert states == {"ingest": "done", "validate": "done", "train": "blocked", "push": "blocked", "other": "done"}
    assert result.nodes["train"].error == f"data validation 'validate' blocked the data: {d.REASON}"
    assert result.nodes["push"].error == "upstream node 'train' was blocked"
    err = capsys.readouterr().err
    assert "did not complete" in err and d.REASON in err
    # Nothing was recorded for the blocked nodes; the run context says the run failed.
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    run_ctx = store.mlmd.get_context_by_type_and_name("pipeline_run", result.run_id)
    assert run_ctx.custom_properties["status"].string_value == "failed"
    assert not (tmp_path / "train").exists() and not (tmp_path / "push").exists()
    # A cached verdict blocks the same way.
    again = LocalRunner(quiet=True).run(d.data_gated_pipeline(tmp_path, block=True))
    assert again.nodes["validate"].state == "cached" and again.nodes["train"].state == "blocked"


def test_headwater_run_says_the_run_did_not_complete(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "pipeline.py"
    file.write_text("import hw_data_gate as d\n"
                    f"pipeline = d.data_gated_pipeline({str(tmp_path / 'root')!r}, block=True)\n")
    assert cli(["run", str(file)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "did not complete" in text and d.REASON in text
