"""The store over real MLMD, on SQLite, MariaDB and PostgreSQL."""

import pytest
from headwater.metadata import Artifact, ArtifactState, connect, types
from headwater.metadata.errors import MetadataError
from headwater.metadata.store import ExecutionState


def test_round_trip_on_every_backend(store_uri):
    store = connect(store_uri)
    ctx = store.context("pipeline", "p")
    ex = types.Examples("/data/1", properties={"span": 2, "split_names": '["train", "eval"]'},
                        custom_properties={"rows": 10, "ratio": 0.5, "ok": True, "meta": {"a": [1, 2]}},
                        state=ArtifactState.LIVE)
    execution = store.execution_proto("t.Comp", ExecutionState.COMPLETE, {"steps": 3, "cfg": {"x": 1}})
    eid, [aid] = store.put_execution(execution, [(ex, "OUTPUT", "examples", 0)], [ctx])
    assert ex.id == aid
    [back] = store.get_artifacts([aid])
    assert back.type_name == "Examples" and back.span == 2 and back.version is None
    assert back.custom_properties == {"rows": 10, "ratio": 0.5, "ok": True, "meta": {"a": [1, 2]}}
    record = store.get_execution(eid)
    assert record.state == "COMPLETE"
    assert record.properties["steps"] == 3 and record.properties["cfg"] == '{"x": 1}'
    assert store.events_by_execution([eid])[eid] == [("OUTPUT", "examples", 0, aid)]


def test_standard_type_names_match_tfx(tfx_store_path):
    store = connect(f"sqlite:///{tfx_store_path}", readonly=True)
    for name in ("Examples", "Model", "ModelBlessing", "PushedModel", "TransformGraph", "Schema"):
        proto = store.mlmd.get_artifact_type(name)
        ours = types.STANDARD_TYPES[name].artifact_type
        assert set(proto.properties) == set(ours.properties), name
    # Reading TFX's artifacts gives our classes.
    arts = store.get_artifacts([1, 16])
    assert isinstance(arts[0], types.Examples) and isinstance(arts[1], types.PushedModel)
    assert arts[1].custom_properties["pushed"] == 1


def test_incompatible_type_redeclaration_is_explained(tmp_path):
    store = connect(f"sqlite:///{tmp_path / 'm.sqlite'}")

    class Thing(Artifact):
        TYPE_NAME = "ThingA"
        PROPERTIES = {"n": int}

    store.artifact_type_id(Thing)
    other = connect(f"sqlite:///{tmp_path / 'm.sqlite'}")
    from headwater.metadata.artifact import ArtifactType

    with pytest.raises(MetadataError, match="already registered"):
        other.artifact_type_id(ArtifactType("ThingA", {"n": str}))


def test_missing_store_read_only(tmp_path):
    with pytest.raises(MetadataError, match="does not exist"):
        connect(f"sqlite:///{tmp_path / 'absent.sqlite'}", readonly=True)


def test_unknown_artifact_id(tmp_path):
    store = connect(f"sqlite:///{tmp_path / 'm.sqlite'}")
    with pytest.raises(MetadataError, match=r"artifact id\(s\) \[42\] not found"):
        store.get_artifacts([42])
