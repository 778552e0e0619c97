"""Push: the double gate, TF Serving layout, atomic never-overwriting versions, idempotence, errors."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from headwater.components import push as push_module
from headwater.components.evaluate import EvalConfig, Evaluate, Metric, ValueThreshold
from headwater.components.push import PUSH_RECORD, Push, model_fingerprint, push_model
from headwater.metadata import types
from headwater.metadata.errors import PushRefusedError


def make_model(root: Path, name: str, content: str, model_id: int) -> types.Model:
    serving = root / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_text(content)
    (serving / "variables" / "variables.index").write_text(content * 2)
    return types.Model(str(root / name), id=model_id)


def make_blessing(root: Path, name: str, model: types.Model, *, marker: str = "BLESSED",
                  blessed: int = 1) -> types.ModelBlessing:
    folder = root / name
    folder.mkdir(parents=True)
    if marker:
        (folder / marker).write_bytes(b"")
    return types.ModelBlessing(str(folder), custom_properties={"blessed": blessed, "current_model_id": model.id,
                                                               "current_model": model.uri})


def test_versions_are_increasing_integers_and_pushes_are_idempotent(tmp_path):
    base = tmp_path / "serving"
    a = make_model(tmp_path, "a", "model a", 1)
    b = make_model(tmp_path, "b", "model b", 2)
    first = push_model(a, make_blessing(tmp_path, "ba", a), str(base))
    assert first["pushed"] == 1 and first["pushed_version"] == "1" and first["pushed_new_version"] == 1
    assert first["pushed_destination"] == str(base / "1")
    assert (base / "1" / "saved_model.pb").read_text() == "model a"
    assert (base / "1" / "variables" / "variables.index").read_text() == "model amodel a"
    record = json.loads((base / "1" / PUSH_RECORD).read_text())
    assert record["model_id"] == 1 and record["fingerprint"] == model_fingerprint(Path(a.uri, "Format-Serving"))
    # The very same model again: no new version, and the result says so.
    again = push_model(a, make_blessing(tmp_path, "ba2", a), str(base))
    assert again["pushed_version"] == "1" and again["pushed_new_version"] == 0
    second = push_model(b, make_blessing(tmp_path, "bb", b), str(base))
    assert second["pushed_version"] == "2" and second["pushed_new_version"] == 1
    # Rolling back to model a is a new version: TF Serving serves the highest one.
    back = push_model(a, make_blessing(tmp_path, "ba3", a), str(base))
    assert back["pushed_version"] == "3" and (base / "3" / "saved_model.pb").read_text() == "model a"
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == ["1", "2", "3"]
    assert not list(base.glob(".push-tmp-*"))


def test_never_overwrites_a_version_made_by_someone_else(tmp_path):
    base = tmp_path / "serving"
    (base / "7").mkdir(parents=True)
    (base / "7" / "saved_model.pb").write_text("theirs")
    (base / "notes").mkdir()  # not a version: ignored
    a = make_model(tmp_path, "a", "model a", 1)
    out = push_model(a, make_blessing(tmp_path, "ba", a), str(base))
    assert out["pushed_version"] == "8"
    assert (base / "7" / "saved_model.pb").read_text() == "theirs"


def test_a_failure_before_the_rename_leaves_no_version_and_no_temporary_files(tmp_path, monkeypatch):
    base = tmp_path / "serving"
    a = make_model(tmp_path, "a", "model a", 1)

    def rename_fails(src, dst):
        raise OSError(5, "Input/output error")  # the disk failed after the copy, before the rename

    monkeypatch.setattr(push_module.os, "rename", rename_fails)
    with pytest.raises(OSError, match="Input/output error"):
        push_model(a, make_blessing(tmp_path, "ba", a), str(base))
    assert [p.name for p in base.iterdir() if not p.name.startswith(".headwater")] == []


def test_concurrent_pushes_get_distinct_versions(tmp_path):
    base = tmp_path / "serving"
    models = [make_model(tmp_path, f"m{i}", f"model {i}" * 1000, i) for i in range(1, 5)]
    results: list[dict] = []

    def push(model):
        results.append(push_model(model, make_blessing(tmp_path, f"b{model.id}", model), str(base)))

    threads = [threading.Thread(target=push, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["pushed_version"] for r in results) == ["1", "2", "3", "4"]
    contents = sorted((base / r["pushed_version"] / "saved_model.pb").read_text()[:7] for r in results)
    assert contents == ["model 1", "model 2", "model 3", "model 4"]


@pytest.mark.parametrize(
    ("marker", "blessed", "reason"),
    [
        ("NOT_BLESSED", 0, r"the blessing at .* holds a NOT_BLESSED file"),
        ("", 1, r"the blessing at .* holds no BLESSED file"),
        ("BLESSED", 0, r"the blessing artifact's 'blessed' property is 0, not 1"),
    ],
)
def test_executor_refuses_anything_not_blessed(tmp_path, marker, blessed, reason):
    a = make_model(tmp_path, "a", "model a", 1)
    blessing = make_blessing(tmp_path, "b", a, marker=marker, blessed=blessed)
    with pytest.raises(PushRefusedError, match=rf"refusing to push model {a.uri}: {reason}\. Only a model that "
                                               "Evaluate BLESSED is pushed"):
        push_model(a, blessing, str(tmp_path / "serving"))
    assert not (tmp_path / "serving").exists() or not any((tmp_path / "serving").iterdir())


def test_executor_refuses_a_blessing_for_another_model(tmp_path):
    a = make_model(tmp_path, "a", "model a", 1)
    b = make_model(tmp_path, "b", "model b", 2)
    with pytest.raises(PushRefusedError, match=r"refusing to push model id 2: the blessing at .* is for model id 1"):
        push_model(b, make_blessing(tmp_path, "ba", a), str(tmp_path / "serving"))


def test_destination_not_writable_is_a_clear_refusal(tmp_path):
    a = make_model(tmp_path, "a", "model a", 1)
    blessing = make_blessing(tmp_path, "ba", a)
    occupied = tmp_path / "a-file"
    occupied.write_text("x")
    with pytest.raises(PushRefusedError, match=(
            rf"cannot push to {occupied}/serving: Not a directory\. Give Push a destination directory this "
            "process can create and write")):
        push_model(a, blessing, str(occupied / "serving"))
    with pytest.raises(PushRefusedError, match=rf"cannot push to {occupied}: it exists and is not a directory"):
        push_model(a, blessing, str(occupied))
    with pytest.raises(PushRefusedError, match=r"destination 'gs://bucket/models' is not a local path"):
        push_model(a, blessing, "gs://bucket/models")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs, where nobody may mkdir")
def test_destination_on_a_file_system_that_refuses_writes(tmp_path):
    a = make_model(tmp_path, "a", "model a", 1)
    with pytest.raises(PushRefusedError, match=r"cannot push to /sys/headwater-serving: Operation not permitted\. "
                                               "Give Push a destination directory"):
        push_model(a, make_blessing(tmp_path, "ba", a), "/sys/headwater-serving")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_destination_is_a_clear_refusal(tmp_path):
    a = make_model(tmp_path, "a", "model a", 1)
    base = tmp_path / "serving"
    base.mkdir()
    base.chmod(0o555)
    try:
        with pytest.raises(PushRefusedError, match=rf"cannot push to {base}: the directory is not writable"):
            push_model(a, make_blessing(tmp_path, "ba", a), str(base))
    finally:
        base.chmod(0o755)


# ---------------------------------------------------------------------------- in a pipeline
@pytest.mark.ml
def test_push_in_a_pipeline_gated_twice_cached_and_servable(penguins, trained, tmp_path):
    from ml_helpers import raw_eval_examples, serve

    destination = tmp_path / "serving"
    ingest, transform, train = penguins.upstream()
    bar = EvalConfig(label_key="species_xf", preprocessing_signatures=("transform_features",),
                     metrics=(Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9)),),
                     plots=False)
    unreachable = EvalConfig.from_dict({**bar.to_dict(), "metrics": [
        {"name": "SparseCategoricalAccuracy", "threshold": {"lower": 1.5}}]})
    good = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model, eval_config=bar)
    bad = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                   eval_config=unreachable).with_id("EvaluateUnreachable")
    push = Push(model=train.outputs.model, blessing=good.outputs.blessing, destination=str(destination))
    gated = Push(model=train.outputs.model, blessing=bad.outputs.blessing,
                 destination=str(tmp_path / "never")).with_id("PushGated")
    nodes = [ingest, transform, train, good, bad, push, gated]
    result = penguins.run("push", nodes)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    [pushed] = result.outputs("Push", "pushed_model")
    [model] = result.outputs("Train", "model")
    assert pushed.custom_properties["pushed"] == 1
    assert pushed.custom_properties["pushed_destination"] == str(destination / "1")
    assert pushed.custom_properties["pushed_version"] == "1"
    # The pushed SavedModel serves predictions from raw features.
    records, labels = raw_eval_examples(result.outputs("Ingest", "examples")[0].uri)
    probabilities = serve(str(destination / "1"), records)
    vocab = Path(model.uri, "Format-Serving", "assets", "species").read_text().split()
    assert sum(vocab[p.argmax()] == y for p, y in zip(probabilities, labels, strict=True)) / len(labels) >= 0.9
    # NOT_BLESSED: the runner skipped the executor and published pushed=0; nothing was written.
    node = result.nodes["PushGated"]
    assert node.state == "skipped"
    [skipped] = result.outputs("PushGated", "pushed_model")
    assert skipped.custom_properties["pushed"] == 0
    assert skipped.custom_properties["push_skipped"].startswith("model not blessed (blessed=0): thresholds failed")
    store = penguins.store()
    assert store.get_execution(node.execution_id).properties["__skipped__"].startswith("model not blessed")
    assert not (tmp_path / "never").exists()
    # Nothing changed: fully cached, no new version.
    again = penguins.run("push", nodes)
    assert {n.state for n in again.nodes.values()} <= {"cached", "skipped"}
    assert again.nodes["Push"].state == "cached"
    assert sorted(p.name for p in destination.iterdir() if not p.name.startswith(".")) == ["1"]
    # Without the cache, pushing the same model again is a no-op recorded on the PushedModel.
    uncached = penguins.run("push", [ingest, transform, train, good, push.with_caching(False)])
    [repeat] = uncached.outputs("Push", "pushed_model")
    assert repeat.custom_properties["pushed_version"] == "1"
    assert repeat.custom_properties["pushed_new_version"] == 0
    assert sorted(p.name for p in destination.iterdir() if not p.name.startswith(".")) == ["1"]
