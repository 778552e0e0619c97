"""Whole pipelines of small test components through the LocalRunner, on real MLMD."""

from __future__ import annotations

import json
import time
from pathlib import Path

import hw_test_components as c
import pytest
from headwater.components import Param
from headwater.metadata import ArtifactState, connect
from headwater.pipelines import LocalRunner, Pipeline


def run(pipeline, **kwargs):
    runner_kwargs = {k: kwargs.pop(k) for k in ("metadata", "max_workers") if k in kwargs}
    return LocalRunner(quiet=True, **runner_kwargs).run(pipeline, **kwargs)


def diamond(root, metadata=None, delay=0.0):
    a = c.produce(seconds=Param("delay", default=delay), value="a").with_id("a")
    b = c.produce(value="b").with_id("b")
    j = c.join(a=a.outputs.data, b=b.outputs.data)
    return Pipeline(name="diamond", root=str(root), nodes=[a, b, j], metadata=metadata)


def test_end_to_end_on_every_backend(tmp_path, store_uri):
    p = diamond(tmp_path, store_uri)
    result = run(p, params={"delay": 0.1})
    assert result.ok, result
    [model] = result.outputs("join", "out")
    assert Path(model.uri) == tmp_path / "join" / "out" / str(result.nodes["join"].execution_id)
    assert (Path(model.uri) / "model.txt").read_text() == "ab"
    store = connect(store_uri)
    [stored] = store.get_artifacts([model.id])
    assert stored.state == ArtifactState.LIVE and stored.custom_properties["joined"] == "ab"
    # TFX conventions: contexts, events with [key, index] paths, parameters on the execution.
    eid = result.nodes["a"].execution_id
    ctx_names = {(store.mlmd.get_context_types_by_id([x.type_id])[0].name, x.name)
                 for x in store.mlmd.get_contexts_by_execution(eid)}
    assert {("pipeline", "diamond"), ("pipeline_run", result.run_id), ("node", "diamond.a")} <= ctx_names
    assert store.get_execution(eid).properties["seconds"] == 0.1
    events = store.events_by_execution([result.nodes["join"].execution_id])
    assert sorted(e[:3] for e in events[result.nodes["join"].execution_id]) == [
        ("INPUT", "a", 0), ("INPUT", "b", 0), ("OUTPUT", "out", 0)]
    run_ctx = store.mlmd.get_context_by_type_and_name("pipeline_run", result.run_id)
    assert run_ctx.custom_properties["param:delay"].double_value == 0.1
    # Second run: fully cached, pointing at the same artifacts.
    again = run(p, params={"delay": 0.1})
    assert {n.state for n in again.nodes.values()} == {"cached"}
    assert again.outputs("join", "out")[0].id == model.id
    assert store.get_execution(again.nodes["join"].execution_id).state == "CACHED"


def test_independent_nodes_run_in_parallel(tmp_path):
    # Each node waits for the other to start: run one after the other, the first would time out.
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    a = c.rendezvous(here=first, other=second, timeout=60.0).with_id("s1")
    b = c.rendezvous(here=second, other=first, timeout=60.0).with_id("s2")
    p = Pipeline(name="par", root=str(tmp_path / "root"), nodes=[a, b])
    result = run(p, max_workers=2)
    assert result.ok, result


CACHE_MATRIX = [
    ("nothing changed", {}, {"a": "cached", "b": "cached"}),
    ("parameter changed", {"value": "other"}, {"a": "done", "b": "done"}),
    ("downstream parameter changed", {"note": "!"}, {"a": "cached", "b": "done"}),
]


@pytest.mark.parametrize(("why", "change", "expected"), CACHE_MATRIX, ids=[m[0] for m in CACHE_MATRIX])
def test_cache_hit_miss_matrix(tmp_path, why, change, expected):
    def build(value="x", note=""):
        a = c.produce(value=value).with_id("a")
        b = c.consume(examples=a.outputs.data, note=note).with_id("b")
        return Pipeline(name="cache", root=str(tmp_path), nodes=[a, b])

    first = run(build())
    assert first.ok
    second = run(build(**change))
    assert {k: v.state for k, v in second.nodes.items()} == expected, why


def test_cache_misses_when_files_are_gone_or_opted_out(tmp_path):
    import shutil

    a = c.produce().with_id("a")
    p = Pipeline(name="gone", root=str(tmp_path), nodes=[a])
    first = run(p)
    shutil.rmtree(first.outputs("a", "data")[0].uri)
    assert run(p).nodes["a"].state == "done"  # output missing on disk -> recomputed
    assert run(p).nodes["a"].state == "cached"
    assert run(p, cache=False).nodes["a"].state == "done"  # per-run opt-out
    p2 = Pipeline(name="gone", root=str(tmp_path), nodes=[a.with_caching(False)])
    assert run(p2).nodes["a"].state == "done"  # per-node opt-out


def test_changed_module_file_is_a_cache_miss(tmp_path, monkeypatch):
    import shutil
    import sys

    src = Path(c.__file__)
    mod_dir = tmp_path / "mods"
    mod_dir.mkdir()
    shutil.copy(src, mod_dir / "hw_copy_components.py")
    monkeypatch.syspath_prepend(str(mod_dir))
    import hw_copy_components as cc

    p = Pipeline(name="code", root=str(tmp_path / "root"), nodes=[cc.produce()])
    assert run(p).nodes["produce"].state == "done"
    assert run(p).nodes["produce"].state == "cached"
    with open(mod_dir / "hw_copy_components.py", "a") as f:
        f.write("\n# a change\n")
    assert run(p).nodes["produce"].state == "done"
    sys.modules.pop("hw_copy_components", None)


def test_failure_stops_descendants_not_independent_branches(tmp_path):
    a = c.produce().with_id("a")
    bad = c.fail(examples=a.outputs.data, message="bad data").with_id("bad")
    child = c.use_model(model=bad.outputs.model).with_id("child")
    grandchild = c.consume(examples=child.outputs.out).with_id("grandchild")
    other = c.produce(seconds=0.3).with_id("other")
    after = c.consume(examples=other.outputs.data).with_id("after")
    p = Pipeline(name="fails", root=str(tmp_path), nodes=[a, bad, child, grandchild, other, after])
    result = run(p)
    assert not result.ok and result.failed == ["bad"]
    assert result.nodes["after"].state == "done" and result.nodes["other"].state == "done"
    assert result.nodes["child"].state == "blocked" and result.nodes["grandchild"].state == "blocked"
    assert result.nodes["child"].error == "upstream node 'bad' failed"
    err = result.nodes["bad"].error
    assert "component 'fail' (hw_test_components.fail) raised ValueError: bad data" in err
    log = Path(result.nodes["bad"].log_path).read_text()
    assert "about to fail" in log and "raise ValueError(message)" in log
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    record = store.get_execution(result.nodes["bad"].execution_id)
    assert record.state == "FAILED"
    assert record.properties["__user_error__"] is True
    assert "raise ValueError(message)" in record.properties["__traceback__"]
    assert record.properties["__log_path__"] == result.nodes["bad"].log_path
    # No LIVE output for the failed node, and its output directory is gone.
    assert not (tmp_path / "bad" / "model" / str(record.id)).exists()
    assert [e for e in store.events_by_execution([record.id])[record.id] if e[0] == "OUTPUT"] == []


def test_resume_recomputes_only_failed_and_downstream(tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("1")
    a = c.produce().with_id("a")
    b = c.fail_if_file(examples=a.outputs.data, flag=str(flag)).with_id("b")
    side = c.produce(value="s").with_id("side")
    d = c.consume(examples=side.outputs.data).with_id("d")
    p = Pipeline(name="resume", root=str(tmp_path / "root"), nodes=[a, b, side, d])
    first = run(p)
    assert first.failed == ["b"]
    flag.unlink()
    second = run(p)
    assert {k: v.state for k, v in second.nodes.items()} == {
        "a": "cached", "b": "done", "side": "cached", "d": "cached"}


def test_from_and_to_slices_use_latest_upstream_outputs(tmp_path):
    a = c.produce(value="v1").with_id("a")
    b = c.consume(examples=a.outputs.data).with_id("b")
    p = Pipeline(name="slice", root=str(tmp_path), nodes=[a, b])
    with pytest.raises(Exception, match="node 'a' has never succeeded"):
        run(p, from_node="b").raise_for_status()
    only_a = run(p, to_node="a")
    assert only_a.nodes["a"].state == "done" and only_a.nodes["b"].state == "not_run"
    only_b = run(p, from_node="b")
    assert only_b.nodes["a"].state == "not_run" and only_b.nodes["b"].state == "done"
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    eid = only_b.nodes["b"].execution_id
    [(_, key, _, aid)] = [e for e in store.events_by_execution([eid])[eid] if e[0] == "INPUT"]
    assert key == "examples" and aid == only_a.outputs("a", "data")[0].id


def test_parameters_lists_dicts_and_context(tmp_path):
    n = c.describe(values=[1, 2], options={"lr": 0.1}, flag=Param("flag", default=False))
    p = Pipeline(name="params", root=str(tmp_path), nodes=[n])
    res = run(p, params={"flag": "true"})
    data = json.loads((Path(res.outputs("describe", "out")[0].uri) / "ctx.json").read_text())
    assert data == {"node": "describe", "run": res.run_id, "execution": res.nodes["describe"].execution_id,
                    "values": [1, 2], "options": {"lr": 0.1}, "flag": True}
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    props = store.get_execution(res.nodes["describe"].execution_id).properties
    assert props["values"] == "[1, 2]" and props["flag"] is True


def test_retries(tmp_path):
    counter = tmp_path / "count"
    p = Pipeline(name="retry", root=str(tmp_path / "r"),
                 nodes=[c.flaky(counter=str(counter), failures=2).with_retries(2)])
    res = run(p)
    assert res.ok and counter.read_text() == "3"
    counter.unlink()
    p2 = Pipeline(name="retry2", root=str(tmp_path / "r2"),
                  nodes=[c.flaky(counter=str(counter), failures=2).with_retries(1)])
    assert run(p2).nodes["flaky"].state == "failed"


def test_worker_death_and_timeout_are_failures(tmp_path):
    p = Pipeline(name="die", root=str(tmp_path), nodes=[
        c.die().with_id("dies"), c.sleeper(seconds=30).with_timeout(1).with_id("slow")])
    started = time.perf_counter()
    res = run(p)
    assert time.perf_counter() - started < 25  # the 30 s sleeper was stopped after 1 s
    assert "worker process running this node died (exit code 3)" in res.nodes["dies"].error
    assert "ran longer than its timeout of 1s" in res.nodes["slow"].error


def test_executor_that_removes_its_output_fails(tmp_path):
    res = run(Pipeline(name="nodir", root=str(tmp_path), nodes=[c.no_output_dir()]))
    assert "output 'out' directory" in res.nodes["no_output_dir"].error


def test_optional_input(tmp_path):
    a = c.produce().with_id("a")
    m = c.maybe(examples=a.outputs.data)
    res = run(Pipeline(name="opt", root=str(tmp_path), nodes=[a, m]))
    assert res.outputs("maybe", "model")[0].custom_properties["had_schema"] is False


def test_resolver_outputs_feed_list_inputs_and_not_single_ones(tmp_path):
    root = str(tmp_path)
    a = c.produce(value=Param("v", default="1")).with_id("a")
    everything = c.all_produced(node="a").with_id("everything")
    counted = c.count_examples(examples=everything.outputs.examples).with_id("counted")
    p = Pipeline(name="resolve", root=root, nodes=[a, everything, counted])
    assert run(p, to_node="a", params={"v": "1"}).ok
    assert run(p, to_node="a", params={"v": "2"}).ok
    res = run(p, params={"v": "2"})
    assert res.ok and res.outputs("counted", "out")[0].custom_properties["count"] == 2
    single = c.consume(examples=everything.outputs.examples).with_id("single")
    res = run(Pipeline(name="resolve", root=root, nodes=[a, everything, single]), params={"v": "2"})
    assert res.nodes["single"].state == "failed"
    assert ("input 'examples' takes one Examples but everything.outputs.examples gave 2; declare it as "
            "Input[list[Examples]]") in res.nodes["single"].error


def test_list_of_channels_into_a_single_input_is_a_validation_error(tmp_path):
    from headwater.metadata.errors import PipelineDefinitionError

    a = c.produce().with_id("a")
    b = c.produce().with_id("b")
    with pytest.raises(PipelineDefinitionError, match="input 'examples' takes one Examples but is given 2 channels"):
        Pipeline(name="p", root=str(tmp_path), nodes=[a, b, c.consume(examples=[a.outputs.data, b.outputs.data])])


def test_editing_a_helper_next_to_the_module_file_is_a_cache_miss(tmp_path):
    from headwater.components.api import fingerprint_code_ref

    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    (models / "model.py").write_text("from features import X\n")
    (models / "features.py").write_text("X = 1\n")
    (models / "sub" / "__init__.py").write_text("")
    before = fingerprint_code_ref(str(models / "model.py"))
    (models / "features.py").write_text("X = 2\n")
    after = fingerprint_code_ref(str(models / "model.py"))
    (models / "sub" / "__init__.py").write_text("Y = 1\n")  # not imported by model.py: not part of its code
    assert before != after == fingerprint_code_ref(str(models / "model.py"))
    assert fingerprint_code_ref("hw_test_components") != "" and fingerprint_code_ref("no.such.module") == ""
