import pytest
from headwater.metadata import Artifact, ArtifactState, types
from headwater.metadata.errors import ArtifactPropertyError


def test_unset_property_is_none_never_empty():
    ex = types.Examples("/x")
    assert ex.span is None
    assert ex.properties["split_names"] is None
    ex.properties["span"] = 3
    assert ex.span == 3


def test_unknown_and_ill_typed_properties_raise():
    ex = types.Examples("/x")
    with pytest.raises(ArtifactPropertyError, match="has no property 'spam'.*declared: span, split_names, version"):
        ex.properties["spam"] = 1
    with pytest.raises(ArtifactPropertyError, match="'span' of 'Examples' must be int, got str"):
        ex.properties["span"] = "1"
    with pytest.raises(AttributeError, match="has no attribute 'spam'"):
        _ = ex.spam


def test_custom_properties_must_be_json():
    m = types.Model("/m")
    m.custom_properties["metrics"] = {"accuracy": 0.9, "labels": [1, 2]}
    with pytest.raises(ArtifactPropertyError, match="not JSON-serialisable"):
        m.custom_properties["bad"] = object()


def test_user_declared_type_and_json_round_trip():
    class Embeddings(Artifact):
        TYPE_NAME = "TestEmbeddings"
        PROPERTIES = {"dim": int}

    e = Embeddings("/e", properties={"dim": 8}, custom_properties={"k": "v"}, state=ArtifactState.LIVE)
    back = Artifact.from_json(e.to_json())
    assert isinstance(back, Embeddings)
    assert back.dim == 8 and back.custom_properties == {"k": "v"} and back.state is ArtifactState.LIVE


def test_conflicting_redeclaration_rejected():
    with pytest.raises(ArtifactPropertyError, match="already declared"):
        class Examples2(Artifact):
            TYPE_NAME = "Examples"
            PROPERTIES = {"other": int}


def test_property_types_limited_to_mlmd_kinds():
    with pytest.raises(ArtifactPropertyError, match="MLMD properties are int, float or str"):
        class Bad(Artifact):
            TYPE_NAME = "BadType"
            PROPERTIES = {"x": list}
