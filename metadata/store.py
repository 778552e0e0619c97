"""A thin, typed layer over the real ``ml-metadata`` store, with TFX's conventions.

Only the orchestrating process writes (the one-writer rule); executors never import this module.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.metadata._opening import GuardedMLMD, open_mlmd, prepare_sqlite
from headwater.metadata.artifact import Artifact, ArtifactState, ArtifactType, BaseType, artifact_class
from headwater.metadata.connection import ConnectionSpec, parse_connection, redact
from headwater.metadata.conventions import (
    CONTEXT_CACHE as CONTEXT_CACHE,  # re-exported: the names live in conventions
)
from headwater.metadata.conventions import (
    CONTEXT_NODE,
    CONTEXT_PIPELINE,
    CONTEXT_RUN,
    OUTPUT_EVENTS,
    ExecutionState,
)
from headwater.metadata.errors import ArtifactNotFoundError, MetadataError
from headwater.metadata.types import STANDARD_TYPES

if TYPE_CHECKING:
    from ml_metadata.proto import metadata_store_pb2 as pb

__all__ = [
    "CONTEXT_NODE",
    "CONTEXT_PIPELINE",
    "CONTEXT_RUN",
    "ExecutionRecord",
    "ExecutionState",
    "MetadataStore",
    "connect",
    "published_order",
]


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution as read back from the store."""

    id: int
    type: str
    state: str
    properties: dict[str, Any]
    create_time_ms: int
    update_time_ms: int


def published_order(execution: pb.Execution) -> tuple[int, int]:
    """Sort key putting executions in the order they were *published* (last update, then id).

    Not the id or the creation time: those follow registration, and under concurrent runs an execution
    registered first may finish last — "the newest result" is the one published last."""
    return execution.last_update_time_since_epoch, execution.id


def to_value(value: Any, target: Any, *, json_strings: bool = False) -> None:
    """Write a Python value into an MLMD ``Value``; lists/dicts become structs (or JSON strings)."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -(2**31) <= value < 2**31:
            target.int_value = value
        else:  # MLMD's MySQL schema stores int_value as a 32-bit INT
            target.double_value = float(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif json_strings:
        target.string_value = json.dumps(value, sort_keys=True)
    else:
        from google.protobuf import json_format

        json_format.ParseDict({"v": value}, target.struct_value)


def from_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        data = _ints(json_format.MessageToDict(value.struct_value))
        return data.get("v", data) if set(data) == {"v"} else data
    if kind is None:
        return None
    if kind == "proto_value":
        return str(value.proto_value)
    return getattr(value, kind)


def _ints(value: Any) -> Any:
    """Structs store every number as a double; give integral ones back as ``int``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return value


def _mlmd_errors():  # imported lazily: ml_metadata is not needed to parse a connection string
    from ml_metadata import errors

    return errors


class MetadataStore:
    """A connection to an MLMD store plus type/context caches and headwater's conventions.

    The raw ``ml_metadata`` store is ``.mlmd`` for anything this class does not wrap.
    """

    def __init__(self, spec: ConnectionSpec, *, readonly: bool = False, create: bool | None = None) -> None:
        """``create``: None (default) makes a missing SQLite file when writing; True also replaces an empty
        (0-byte) one; False never creates. Readers never create."""
        self.spec = spec
        self.display = spec.display
        self.readonly = readonly
        if spec.scheme == "sqlite" and spec.path:
            prepare_sqlite(Path(spec.path), create=False if readonly else create)
        if readonly and spec.scheme == "sqlite" and spec.path:
            spec = ConnectionSpec("sqlite", path=spec.path, options={**spec.options, "mode": "ro"})
        opened = spec
        self.mlmd = GuardedMLMD(open_mlmd(opened, self.display), lambda: open_mlmd(opened, self.display),
                                self.display)
        self._lock = threading.RLock()
        self._artifact_types: dict[str, int] = {}
        self._artifact_types_by_id: dict[int, ArtifactType] = {}
        self._execution_types: dict[str, int] = {}
        self._context_types: dict[str, int] = {}
        self._contexts: dict[tuple[str, str], pb.Context] = {}

    def __repr__(self) -> str:
        return f"MetadataStore({self.display})"

    # ---------------------------------------------------------------- types
    def artifact_type_id(self, artifact_type: ArtifactType | type[Artifact]) -> int:
        if not isinstance(artifact_type, ArtifactType):
            artifact_type = artifact_type.artifact_type
        with self._lock:
            if artifact_type.name in self._artifact_types:
                return self._artifact_types[artifact_type.name]
            from ml_metadata.proto import metadata_store_pb2 as pb

            proto = pb.ArtifactType(name=artifact_type.name)
            for key, kind in artifact_type.properties.items():
                proto.properties[key] = getattr(pb, ArtifactType.property_kind(kind))
            if artifact_type.base_type is not None:
                proto.base_type = getattr(pb.ArtifactType, artifact_type.base_type.value)
            errors = _mlmd_errors()
            try:
                type_id = self.mlmd.put_artifact_type(proto, can_add_fields=True, can_omit_fields=True)
            except errors.AlreadyExistsError:
                stored = self.mlmd.get_artifact_type(artifact_type.name)
                raise MetadataError(
                    f"artifact type {artifact_type.name!r} is already registered in {self.display} with "
                    f"properties {dict(stored.properties)}, incompatible with {dict(artifact_type.properties)};"
                    " give your type a different name"
                ) from None
            self._artifact_types[artifact_type.name] = type_id
            return type_id

    def artifact_type_by_id(self, type_id: int) -> ArtifactType:
        with self._lock:
            if type_id not in self._artifact_types_by_id:
                from ml_metadata.proto import metadata_store_pb2 as pb

                [proto] = self.mlmd.get_artifact_types_by_id([type_id])
                kinds = {pb.INT: int, pb.DOUBLE: float, pb.STRING: str}
                props = {k: kinds[v] for k, v in proto.properties.items() if v in kinds}
                std = STANDARD_TYPES.get(proto.name)
                if std is not None and set(std.artifact_type.properties) == set(props):
                    self._artifact_types_by_id[type_id] = std.artifact_type
                else:
                    base = None
                    if proto.HasField("base_type"):
                        name = pb.ArtifactType.SystemDefinedBaseType.Name(proto.base_type)
                        base = BaseType.__members__.get(name)
                    self._artifact_types_by_id[type_id] = ArtifactType(proto.name, props, base)
            return self._artifact_types_by_id[type_id]

    def execution_type_id(self, name: str) -> int:
        with self._lock:
            if name not in self._execution_types:
                from ml_metadata.proto import metadata_store_pb2 as pb

                self._execution_types[name] = self.mlmd.put_execution_type(
                    pb.ExecutionType(name=name), can_add_fields=True, can_omit_fields=True
                )
            return self._execution_types[name]

    def context_type_id(self, name: str) -> int:
        with self._lock:
            if name not in self._context_types:
                from ml_metadata.proto import metadata_store_pb2 as pb

                self._context_types[name] = self.mlmd.put_context_type(
                    pb.ContextType(name=name), can_add_fields=True, can_omit_fields=True
                )
            return self._context_types[name]

    # ---------------------------------------------------------------- contexts
    def context(
        self, type_name: str, name: str, properties: Mapping[str, Any] | None = None, *, create: bool = True
    ) -> pb.Context | None:
        """Get (or create) the context ``type_name``/``name``; returns ``None`` if absent and not created."""
        with self._lock:
            key = (type_name, name)
            if key in self._contexts:
                return self._contexts[key]
            found = self.mlmd.get_context_by_type_and_name(type_name, name)
            if found is None and create:
                from ml_metadata.proto import metadata_store_pb2 as pb

                ctx = pb.Context(type_id=self.context_type_id(type_name), name=name)
                for k, v in (properties or {}).items():
                    to_value(v, ctx.custom_properties[k], json_strings=True)
                errors = _mlmd_errors()
                try:
                    [ctx.id] = self.mlmd.put_contexts([ctx])
                except errors.AlreadyExistsError:  # another runner created it first
                    ctx = self.mlmd.get_context_by_type_and_name(type_name, name)
                found = ctx
            if found is not None:
                self._contexts[key] = found
            return found

    # ---------------------------------------------------------------- artifacts
    def to_proto(self, artifact: Artifact) -> pb.Artifact:
        from ml_metadata.proto import metadata_store_pb2 as pb

        proto = pb.Artifact(type_id=self.artifact_type_id(artifact.type), uri=artifact.uri)
        if artifact.id is not None:
            proto.id = artifact.id
        proto.state = int(artifact.state)
        if artifact.name:
            proto.name = artifact.name
        for k, v in artifact.properties.items():
            to_value(v, proto.properties[k])
        for k, v in artifact.custom_properties.items():
            to_value(v, proto.custom_properties[k])
        return proto

    def from_proto(self, proto: pb.Artifact) -> Artifact:
        artifact_type = self.artifact_type_by_id(proto.type_id)
        props = {k: from_value(v) for k, v in proto.properties.items()}
        props = {k: v for k, v in props.items() if k in artifact_type.properties and v is not None}
        return artifact_class(artifact_type)(
            proto.uri,
            id=proto.id if proto.HasField("id") else None,
            state=ArtifactState(proto.state),
            properties=props,
            custom_properties={
                k: v for k, v in ((k, from_value(v)) for k, v in proto.custom_properties.items()) if v is not None
            },
            name=proto.name or None,
            create_time_ms=proto.create_time_since_epoch,
        )

    def get_artifacts(self, ids: Sequence[int]) -> list[Artifact]:
        if not ids:
            return []
        protos = {p.id: p for p in self.mlmd.get_artifacts_by_id(list(ids))}
        missing = [i for i in ids if i not in protos]
        if missing:
            raise ArtifactNotFoundError(
                f"artifact id(s) {missing} not found in {self.display}; list artifacts with "
                "`headwater artifacts list`"
            )
        return [self.from_proto(protos[i]) for i in ids]

    def update_artifacts(self, artifacts: Iterable[Artifact]) -> None:
        self.mlmd.put_artifacts([self.to_proto(a) for a in artifacts])

    # ---------------------------------------------------------------- executions
    def execution_proto(
        self,
        type_name: str,
        state: int,
        properties: Mapping[str, Any] | None = None,
        *,
        execution_id: int | None = None,
    ) -> pb.Execution:
        from ml_metadata.proto import metadata_store_pb2 as pb

        proto = pb.Execution(type_id=self.execution_type_id(type_name), last_known_state=state)
        if execution_id is not None:
            proto.id = execution_id
        for k, v in (properties or {}).items():
            if v is not None:
                to_value(v, proto.custom_properties[k], json_strings=True)
        return proto

    def put_execution(
        self,
        execution: pb.Execution,
        artifacts_and_events: Sequence[tuple[Artifact, str, str, int]],
        contexts: Sequence[pb.Context],
    ) -> tuple[int, list[int]]:
        """Write one execution with its events and attributions in **one** transaction.

        ``artifacts_and_events`` holds ``(artifact, "INPUT"|"OUTPUT", key, index)``. Artifacts without an
        id are created; the ids are written back into the ``Artifact`` objects.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        pairs = []
        for artifact, kind, key, index in artifacts_and_events:
            event = pb.Event(type=getattr(pb.Event, kind))
            event.path.steps.add().key = key
            event.path.steps.add().index = index
            pairs.append((self.to_proto(artifact), event))
        try:
            execution_id, artifact_ids, _ = self.mlmd.put_execution(
                execution, pairs, list(contexts), reuse_context_if_already_exist=True
            )
        except MetadataError:
            raise
        except Exception as exc:
            raise MetadataError(f"writing to {self.display} failed: {redact(str(exc))}") from exc
        for (artifact, *_), artifact_id in zip(artifacts_and_events, artifact_ids, strict=True):
            artifact.id = artifact_id
        return execution_id, list(artifact_ids)

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        found = self.mlmd.get_executions_by_id([execution_id])
        if not found:
            raise MetadataError(f"execution {execution_id} not found in {self.display}")
        return self.record(found[0])

    def record(self, proto: pb.Execution) -> ExecutionRecord:
        return ExecutionRecord(
            id=proto.id,
            type=self._execution_type_name(proto.type_id),
            state=ExecutionState(proto.last_known_state).name,
            properties={k: from_value(v) for k, v in proto.custom_properties.items()}
            | {k: from_value(v) for k, v in proto.properties.items()},
            create_time_ms=proto.create_time_since_epoch,
            update_time_ms=proto.last_update_time_since_epoch,
        )

    def _execution_type_name(self, type_id: int) -> str:
        for name, tid in self._execution_types.items():
            if tid == type_id:
                return name
        [proto] = self.mlmd.get_execution_types_by_id([type_id])
        self._execution_types[proto.name] = type_id
        return str(proto.name)

    def events_by_execution(self, execution_ids: Sequence[int]) -> dict[int, list[tuple[str, str, int, int]]]:
        """``{execution_id: [(INPUT|OUTPUT, key, index, artifact_id), ...]}``."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        out: dict[int, list[tuple[str, str, int, int]]] = {i: [] for i in execution_ids}
        if not execution_ids:
            return out
        for ev in self.mlmd.get_events_by_execution_ids(list(execution_ids)):
            key = next((s.key for s in ev.path.steps if s.HasField("key")), "")
            index = next((s.index for s in ev.path.steps if s.HasField("index")), 0)
            kind = pb.Event.Type.Name(ev.type)
            out[ev.execution_id].append((kind, key, index, ev.artifact_id))
        return out

    def execution_outputs(self, execution_id: int) -> dict[str, list[Artifact]]:
        """``{output key: [artifacts in index order]}`` of one execution (a resolver's picks included)."""
        events = self.events_by_execution([execution_id])[execution_id]
        outs = sorted((key, index, aid) for kind, key, index, aid in events if kind in OUTPUT_EVENTS)
        result: dict[str, list[Artifact]] = {}
        for (key, _, _), artifact in zip(outs, self.get_artifacts([aid for *_, aid in outs]), strict=True):
            result.setdefault(key, []).append(artifact)
        return result

    def executions_in_context(self, type_name: str, name: str) -> list[pb.Execution]:
        ctx = self.context(type_name, name, create=False)
        return [] if ctx is None else list(self.mlmd.get_executions_by_context(ctx.id))


def connect(
    uri: str | None = None, *, readonly: bool = False, default_sqlite: str | os.PathLike[str] | None = None,
    create: bool | None = None,
) -> MetadataStore:
    """Open a store from a connection string (or ``$HEADWATER_METADATA``, or ``default_sqlite``).

    A writer creates a missing SQLite store; ``create=True`` also replaces an empty (0-byte) file,
    ``create=False`` never creates (see :class:`MetadataStore`)."""
    return MetadataStore(
        parse_connection(uri, default_sqlite=Path(default_sqlite) if default_sqlite else None),
        readonly=readonly, create=create,
    )
