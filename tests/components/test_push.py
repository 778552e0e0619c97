"""Push: the double gate, TF Serving layout, atomic never-overwriting versions, idempotence, errors —
on a local disk, and on S3 and GCS (a moto S3 server and a GCS emulator, reached over HTTP)."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
from headwater.components import push as push_module
from headwater.components import storage
from headwater.components.evaluate import EvalConfig, Evaluate, Metric, ValueThreshold
from headwater.components.push import CLAIMS_DIR, PUSH_RECORD, Push, model_fingerprint, push_model
from headwater.metadata import types
from headwater.metadata.errors import PushRefusedError, StorageError


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


# ---------------------------------------------------------------------------- object stores
def stored(destination: str) -> list[str]:
    """Every object under ``destination``, relative to it."""
    return [url[len(destination) + 1:] for url in storage.list_files(destination)]


def model_files(model: types.Model) -> list[str]:
    source = Path(model.uri, "Format-Serving")
    return sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real TensorFlow SavedModels, ``a`` (y = 2x) and ``b`` (y = 3x), each with a vocabulary asset,
    laid out as Train lays out a Model artifact."""
    tf = pytest.importorskip("tensorflow")

    class Scale(tf.Module):
        def __init__(self, scale: float, vocab: Path) -> None:
            super().__init__()
            self.scale = tf.Variable(scale)
            self.vocab = tf.saved_model.Asset(str(vocab))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {"y": x * self.scale}

    root = tmp_path_factory.mktemp("saved-models")
    for name, scale in (("a", 2.0), ("b", 3.0)):
        vocab = root / f"{name}-vocab.txt"
        vocab.write_text(f"{name}-first\n{name}-second\n")
        module = Scale(scale, vocab)
        tf.saved_model.save(module, str(root / name / "Format-Serving"),
                            signatures={"serving_default": module.serve})
    return root


@pytest.mark.ml
def test_push_to_an_object_store_layout_loads_versions_and_idempotence(object_root, saved_models, tmp_path):
    import tensorflow as tf

    destination = f"{object_root}/serving/penguin"
    a = types.Model(str(saved_models / "a"), id=1)
    b = types.Model(str(saved_models / "b"), id=2)
    first = push_model(a, make_blessing(tmp_path, "ba", a), destination)
    assert first == {"pushed": 1, "pushed_destination": f"{destination}/1", "pushed_version": "1",
                     "pushed_new_version": 1, "model_fingerprint": model_fingerprint(Path(a.uri, "Format-Serving"))}
    # TF Serving layout, the push record beside the SavedModel, no claim left behind.
    assert "saved_model.pb" in model_files(a) and "assets/a-vocab.txt" in model_files(a)
    assert stored(destination) == sorted(f"1/{f}" for f in [*model_files(a), PUSH_RECORD])
    record = json.loads(storage.read_bytes(f"{destination}/1/{PUSH_RECORD}"))
    assert record["fingerprint"] == first["model_fingerprint"] and record["model_uri"] == a.uri
    # What was pushed is the SavedModel: a downloaded copy loads and serves.
    storage.download(f"{destination}/1", str(tmp_path / "copy-1"))
    loaded = tf.saved_model.load(str(tmp_path / "copy-1"))
    assert loaded.signatures["serving_default"](x=tf.constant([1.5, -2.0]))["y"].numpy().tolist() == [3.0, -4.0]
    assert Path(loaded.vocab.asset_path.numpy().decode()).read_text() == "a-first\na-second\n"
    # The very same model again: no new version, nothing written.
    again = push_model(a, make_blessing(tmp_path, "ba2", a), destination)
    assert again["pushed_version"] == "1" and again["pushed_new_version"] == 0
    assert again["pushed_destination"] == f"{destination}/1"
    assert stored(destination) == sorted(f"1/{f}" for f in [*model_files(a), PUSH_RECORD])
    # Another model: the next version, and it serves its own weights.
    second = push_model(b, make_blessing(tmp_path, "bb", b), destination)
    assert second["pushed_version"] == "2" and second["pushed_new_version"] == 1
    storage.download(f"{destination}/2", str(tmp_path / "copy-2"))
    loaded = tf.saved_model.load(str(tmp_path / "copy-2"))
    assert loaded.signatures["serving_default"](x=tf.constant([1.5]))["y"].numpy().tolist() == [4.5]
    # Rolling back to model a is a new version, as on a local disk.
    back = push_model(a, make_blessing(tmp_path, "ba3", a), destination)
    assert back["pushed_version"] == "3" and back["pushed_new_version"] == 1
    assert {f.split("/")[0] for f in stored(destination)} == {"1", "2", "3"}


def test_object_store_upload_writes_saved_model_pb_last(object_root, tmp_path, monkeypatch):
    destination = f"{object_root}/serving"
    a = make_model(tmp_path, "a", "model a", 1)
    (tmp_path / "a" / "Format-Serving" / "assets").mkdir()
    (tmp_path / "a" / "Format-Serving" / "assets" / "vocab").write_text("x\ny\n")
    opened: list[str] = []
    real_open_output = storage.open_output

    def recording_open_output(path):  # the real upload, in the order Push asks for it
        opened.append(path[len(destination) + 1:])
        return real_open_output(path)

    monkeypatch.setattr(storage, "open_output", recording_open_output)
    push_model(a, make_blessing(tmp_path, "ba", a), destination)
    assert re.fullmatch(rf"{CLAIMS_DIR}/1\.[0-9a-f]{{32}}", opened[0])  # the version is claimed first
    assert sorted(opened[1:-2]) == ["1/assets/vocab", "1/variables/variables.index"]
    assert opened[-2:] == [f"1/{PUSH_RECORD}", "1/saved_model.pb"]  # what TF Serving's loader needs, last
    assert stored(destination) == ["1/.headwater-push.json", "1/assets/vocab", "1/saved_model.pb",
                                   "1/variables/variables.index"]


def test_object_store_failed_upload_leaves_no_version_and_no_claim(object_root, tmp_path, monkeypatch):
    destination = f"{object_root}/serving"
    a = make_model(tmp_path, "a", "model a", 1)
    real_open_output = storage.open_output

    def store_fails_on_saved_model(path):
        if path.endswith("/saved_model.pb"):
            raise StorageError(f"cannot write {path}: the connection dropped")
        return real_open_output(path)

    monkeypatch.setattr(storage, "open_output", store_fails_on_saved_model)
    with pytest.raises(StorageError, match="the connection dropped"):
        push_model(a, make_blessing(tmp_path, "ba", a), destination)
    assert stored(destination) == []
    monkeypatch.setattr(storage, "open_output", real_open_output)
    out = push_model(a, make_blessing(tmp_path, "ba2", a), destination)
    assert out["pushed_version"] == "1" and out["pushed_new_version"] == 1


def test_object_store_never_overwrites_and_recognises_versions_pushed_by_others(object_root, tmp_path):
    destination = f"{object_root}/serving"
    a = make_model(tmp_path, "a", "model a", 1)
    b = make_model(tmp_path, "b", "model b", 2)
    storage.write_bytes(f"{destination}/7/saved_model.pb", b"theirs")
    storage.write_bytes(f"{destination}/notes/readme.txt", b"not a version")
    out = push_model(a, make_blessing(tmp_path, "ba", a), destination)
    assert out["pushed_version"] == "8"
    assert storage.read_bytes(f"{destination}/7/saved_model.pb") == b"theirs"
    # A version copied there by another tool (no push record) holding model b: recognised by its files.
    storage.upload(str(tmp_path / "b" / "Format-Serving"), f"{destination}/9")
    out = push_model(b, make_blessing(tmp_path, "bb", b), destination)
    assert out["pushed_version"] == "9" and out["pushed_new_version"] == 0
    # A crashed push (a record, no saved_model.pb) and a stale claim: both numbers are skipped, and the
    # incomplete version does not count as model b being pushed already.
    crashed = {"fingerprint": out["model_fingerprint"]}
    storage.write_bytes(f"{destination}/10/{PUSH_RECORD}", json.dumps(crashed).encode())
    storage.write_bytes(f"{destination}/{CLAIMS_DIR}/11.0123abcd", b"{}")
    out = push_model(b, make_blessing(tmp_path, "bb2", b), destination)
    assert out["pushed_version"] == "12" and out["pushed_new_version"] == 1


def test_object_store_concurrent_pushes_get_distinct_versions(object_root, tmp_path):
    destination = f"{object_root}/serving"
    models = [make_model(tmp_path, f"m{i}", f"model {i}" * 1000, i) for i in range(1, 5)]
    blessings = {m.id: make_blessing(tmp_path, f"b{m.id}", m) for m in models}
    results: list[dict] = []
    errors: list[BaseException] = []

    def push(model):
        try:
            results.append(push_model(model, blessings[model.id], destination))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Distinct versions, each holding its own model whole; numbers lost to a collision may stay unused.
    versions = sorted(int(r["pushed_version"]) for r in results)
    assert len(set(versions)) == 4 and versions[0] >= 1
    for r in results:
        folder = r["pushed_destination"]
        index = storage.read_bytes(f"{folder}/variables/variables.index")
        assert index == storage.read_bytes(f"{folder}/saved_model.pb") * 2
        record = json.loads(storage.read_bytes(f"{folder}/{PUSH_RECORD}"))
        assert record["fingerprint"] == r["model_fingerprint"]
    assert {f.split("/")[0] for f in stored(destination)} == {str(v) for v in versions}  # no claim left


def test_object_store_push_refuses_anything_not_blessed_and_writes_nothing(object_root, tmp_path):
    destination = f"{object_root}/serving"
    a = make_model(tmp_path, "a", "model a", 1)
    with pytest.raises(PushRefusedError, match=rf"refusing to push model {a.uri}: the blessing at .* holds a "
                                               "NOT_BLESSED file"):
        push_model(a, make_blessing(tmp_path, "b", a, marker="NOT_BLESSED", blessed=0), destination)
    with pytest.raises(PushRefusedError, match="the blessing artifact's 'blessed' property is 0, not 1"):
        push_model(a, make_blessing(tmp_path, "b0", a, blessed=0), destination)
    assert storage.list_files(object_root) == []


def test_object_store_destination_not_writable_is_a_clear_refusal(object_root, tmp_path):
    a = make_model(tmp_path, "a", "model a", 1)
    blessing = make_blessing(tmp_path, "ba", a)
    scheme = object_root.split("://")[0]
    missing = f"{scheme}://hw-no-such-bucket/serving"
    advice = (r"\. Give Push a destination in a bucket that exists and that this process's credentials may "
              r"list and write \(check the bucket name, the credentials and the endpoint settings\)$")
    with pytest.raises(PushRefusedError, match=(
            rf"^cannot push to {re.escape(missing)}: cannot list {re.escape(missing)}: .*bucket "
            rf"'hw-no-such-bucket' does not exist.*{advice}")) as refused:
        push_model(a, blessing, missing)
    assert refused.value.artifact_uri == missing
    with pytest.raises(PushRefusedError, match=(
            rf"^cannot push to {scheme}:///serving: '{scheme}:///serving' names no bucket; write it as "
            rf"{scheme}://bucket/path{advice}")):
        push_model(a, blessing, f"{scheme}:///serving")


def test_s3_credentials_the_store_rejects_are_a_clear_refusal(s3_root, s3_server, tmp_path):
    """The S3 server checks credentials (moto's own switch for IAM authentication): the test's access key
    is then unknown to it, as a missing or wrong key is to AWS."""
    import urllib.request

    def enforce_auth_after(count: bytes) -> bytes:
        request = urllib.request.Request(f"{s3_server}/moto-api/reset-auth", data=count, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request) as response:
            return bytes(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"].encode())

    destination = f"{s3_root}/serving"
    a = make_model(tmp_path, "a", "model a", 1)
    previous = enforce_auth_after(b"0")
    try:
        with pytest.raises(PushRefusedError, match=(
                rf"^cannot push to {re.escape(destination)}: cannot list {re.escape(destination)}: .*"
                r"INVALID_ACCESS_KEY_ID.*; check the AWS credentials .*\. Give Push a destination in a bucket "
                r"that exists and that this process's credentials may list and write")):
            push_model(a, make_blessing(tmp_path, "ba", a), destination)
    finally:
        enforce_auth_after(previous)
    assert storage.list_files(s3_root) == []


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
        {"name": "SparseCategoricalAccuracy", "threshold": {"upper": 0.01}}]})  # no useful model is that bad
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
