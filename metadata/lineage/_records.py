"""Reading MLMD records into lineage nodes: the raw store behind a wrapper, artifacts, executions, events.

Shared by the lineage queries, explanations and the re-use collector; property values are decoded the
way headwater and TFX write them (JSON structs, TFX's ``mlmd-struct::`` strings).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from headwater.metadata.conventions import TFX_STRUCT_VALUE
from headwater.metadata.lineage.graph import ArtifactNode, ExecutionNode, LineageEdge

if TYPE_CHECKING:
    from ml_metadata.metadata_store.metadata_store import MetadataStore as RawStore

__all__: list[str] = []

#: ml_metadata's generated protos have no type stubs; to the type checker they are ``Any``.
Proto = Any


def _pb() -> Any:
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2



# ---------------------------------------------------------------------------------------- store access
def raw_store(store: Any) -> RawStore:
    """The ``ml_metadata`` store behind ``store`` (headwater's wrapper keeps it as ``.mlmd``)."""
    raw = getattr(store, "mlmd", store)
    if not hasattr(raw, "get_lineage_subgraph"):
        raise TypeError(
            f"expected an ml_metadata MetadataStore or headwater's MetadataStore, "
            f"got {type(store).__name__}; "
            "open one with headwater.metadata.connect('sqlite:///path/metadata.sqlite')"
        )
    return raw


def store_name(store: Any) -> str:
    """How messages name the store: its connection string without secrets, if known."""
    display = getattr(store, "display", None)
    return f"metadata store {display}" if display else "the metadata store"


# ---------------------------------------------------------------------------------------- conversion
_STRUCT_PREFIX = "mlmd-struct::"


def _decode_value(value: Proto) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "struct_value":
        from google.protobuf import json_format

        data = json_format.MessageToDict(value.struct_value)
        # headwater wraps non-dict values as {"v": ...}; TFX as {"__value__": "<json>"}.
        return data["v"] if set(data) == {"v"} else data
    if kind == "proto_value":
        return {"@type": value.proto_value.type_url}
    raw = getattr(value, kind)
    if kind == "string_value" and raw.startswith(_STRUCT_PREFIX):
        return _decode_tfx_struct(raw)
    return raw


def _decode_tfx_struct(raw: str) -> Any:
    """TFX stores JSON values of custom properties as ``mlmd-struct::<base64 Struct>``."""
    from google.protobuf import json_format, struct_pb2

    try:
        struct = struct_pb2.Struct()
        struct.ParseFromString(base64.b64decode(raw[len(_STRUCT_PREFIX) :]))
        data = json_format.MessageToDict(struct)
    except Exception:  # an undecodable value is shown as stored rather than dropped
        return raw
    if set(data) == {TFX_STRUCT_VALUE} and isinstance(data[TFX_STRUCT_VALUE], str):
        try:
            return json.loads(data[TFX_STRUCT_VALUE])
        except ValueError:
            return data[TFX_STRUCT_VALUE]
    return data


def decoded_properties(proto: Proto) -> dict[str, Any]:
    """The plain and custom properties of an MLMD record (context, execution, artifact), decoded."""
    return {**_props(proto.custom_properties), **_props(proto.properties)}


def _props(mapping: Mapping[str, Proto]) -> dict[str, Any]:
    out = {k: _decode_value(v) for k, v in sorted(mapping.items())}
    return {k: v for k, v in out.items() if v is not None}


def artifact_node(proto: Proto, type_name: str | None = None) -> ArtifactNode:
    """An :class:`ArtifactNode` from an MLMD ``Artifact`` proto."""
    pb = _pb()

    return ArtifactNode(
        id=proto.id,
        type_name=type_name or proto.type or f"type#{proto.type_id}",
        uri=proto.uri,
        state=pb.Artifact.State.Name(proto.state),
        name=proto.name or None,
        properties=_props(proto.properties),
        custom_properties=_props(proto.custom_properties),
        create_time_ms=proto.create_time_since_epoch or None,
        update_time_ms=proto.last_update_time_since_epoch or None,
    )


def execution_node(proto: Proto, type_name: str | None = None) -> ExecutionNode:
    """An :class:`ExecutionNode` from an MLMD ``Execution`` proto."""
    pb = _pb()

    return ExecutionNode(
        id=proto.id,
        type_name=type_name or proto.type or f"type#{proto.type_id}",
        state=pb.Execution.State.Name(proto.last_known_state),
        name=proto.name or None,
        properties=_props(proto.properties),
        custom_properties=_props(proto.custom_properties),
        create_time_ms=proto.create_time_since_epoch or None,
        update_time_ms=proto.last_update_time_since_epoch or None,
    )


def _edge(event: Proto) -> LineageEdge:
    pb = _pb()

    pairs: list[tuple[str, int]] = []
    for step in event.path.steps:
        if step.HasField("key"):
            pairs.append((step.key, 0))
        elif step.HasField("index"):
            if pairs and pairs[-1][1] == 0:
                pairs[-1] = (pairs[-1][0], step.index)
            else:
                pairs.append(("", step.index))
    return LineageEdge(
        artifact_id=event.artifact_id,
        execution_id=event.execution_id,
        event_type=pb.Event.Type.Name(event.type),
        path=tuple(pairs),
        time_ms=event.milliseconds_since_epoch or None,
    )


def _type_names(raw: RawStore, protos: Sequence[Any], kind: str) -> dict[int, str]:
    """Type names for protos whose ``type`` field the server left empty (older servers)."""
    missing = {p.type_id for p in protos if not p.type}
    if not missing:
        return {}
    getter = raw.get_artifact_types_by_id if kind == "artifact" else raw.get_execution_types_by_id
    return {t.id: t.name for t in getter(sorted(missing))}


def _artifact_nodes(raw: RawStore, protos: Sequence[Proto]) -> list[ArtifactNode]:
    names = _type_names(raw, protos, "artifact")
    return [artifact_node(p, names.get(p.type_id)) for p in protos]


def _execution_nodes(raw: RawStore, protos: Sequence[Proto]) -> list[ExecutionNode]:
    names = _type_names(raw, protos, "execution")
    return [execution_node(p, names.get(p.type_id)) for p in protos]
