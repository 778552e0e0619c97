"""Artifacts and artifact types.

An artifact type is a subclass of :class:`Artifact` naming an MLMD ArtifactType and its typed
properties (``int``, ``float``, ``str``)::

    class Embeddings(Artifact):
        TYPE_NAME = "Embeddings"
        PROPERTIES = {"dim": int}

The standard types (``headwater.metadata.types.Examples`` …) are declared the same way, with TFX's names.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from headwater.metadata.errors import ArtifactPropertyError, StorageError

__all__ = [
    "Artifact",
    "ArtifactState",
    "ArtifactType",
    "BaseType",
    "CustomValue",
    "artifact_class",
]

PropertyValue = int | float | str
CustomValue = int | float | str | bool | list[Any] | dict[str, Any]
_PROPERTY_KINDS: dict[type, str] = {int: "INT", float: "DOUBLE", str: "STRING"}


class BaseType(enum.Enum):
    """MLMD's system base types (``mlmd.Dataset`` …), as TFX annotates its artifact types."""

    DATASET = "DATASET"
    MODEL = "MODEL"
    METRICS = "METRICS"
    STATISTICS = "STATISTICS"


class ArtifactState(enum.IntEnum):
    """MLMD artifact states (same numbers as ``metadata_store_pb2.Artifact.State``)."""

    UNKNOWN = 0
    PENDING = 1
    LIVE = 2
    MARKED_FOR_DELETION = 3
    DELETED = 4
    ABANDONED = 5
    REFERENCE = 6


@dataclass(frozen=True)
class ArtifactType:
    """The MLMD side of an artifact class: a name and typed properties."""

    name: str
    properties: Mapping[str, type] = field(default_factory=dict)
    base_type: BaseType | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace(".", "").isalnum():
            raise ArtifactPropertyError(
                f"artifact type name {self.name!r} is invalid: use letters, digits, '_' and '.' "
                "(for example 'Embeddings')"
            )
        for key, kind in self.properties.items():
            if kind not in _PROPERTY_KINDS:
                raise ArtifactPropertyError(
                    f"property {key!r} of artifact type {self.name!r} has type {kind!r}; "
                    "MLMD properties are int, float or str (put anything else in custom_properties)"
                )
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted((k, v.__name__) for k, v in self.properties.items()))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArtifactType):
            return NotImplemented
        return self.name == other.name and dict(self.properties) == dict(other.properties)

    def check_property(self, key: str, value: Any) -> PropertyValue:
        """Validate ``value`` for property ``key``; returns it coerced to the declared type."""
        if key not in self.properties:
            known = ", ".join(sorted(self.properties)) or "none"
            raise ArtifactPropertyError(
                f"artifact type {self.name!r} has no property {key!r} (declared: {known}); "
                "put free-form values in custom_properties instead"
            )
        kind = self.properties[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ArtifactPropertyError(
                f"property {key!r} of {self.name!r} must be {kind.__name__}, got {type(value).__name__} "
                f"{value!r}"
            )
        return value  # type: ignore[return-value]

    @staticmethod
    def property_kind(kind: type) -> str:
        """MLMD PropertyType name (``INT``/``DOUBLE``/``STRING``) of a Python property type."""
        return _PROPERTY_KINDS[kind]


class _Properties(MutableMapping[str, PropertyValue | None]):
    """Typed properties of one artifact: unset is ``None``, unknown keys and wrong types raise."""

    def __init__(self, artifact_type: ArtifactType, values: Mapping[str, PropertyValue] | None = None):
        self._type = artifact_type
        self._values: dict[str, PropertyValue] = {}
        for k, v in (values or {}).items():
            self[k] = v

    def __getitem__(self, key: str) -> PropertyValue | None:
        if key not in self._type.properties:
            self._type.check_property(key, None)  # raises, listing the declared properties
        return self._values.get(key)

    def __setitem__(self, key: str, value: PropertyValue | None) -> None:
        if value is None:
            self._values.pop(key, None)
            return
        self._values[key] = self._type.check_property(key, value)

    def __delitem__(self, key: str) -> None:
        self._values.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)


def _check_custom(key: str, value: Any) -> CustomValue:
    if not isinstance(key, str) or not key:
        raise ArtifactPropertyError(f"custom property names must be non-empty strings, got {key!r}")
    if value is None:
        raise ArtifactPropertyError(f"custom property {key!r} is None; delete the key instead")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ArtifactPropertyError(
            f"custom property {key!r} has value {value!r} of type {type(value).__name__}, which is not "
            "JSON-serialisable; use int, float, str, bool, or lists/dicts of those"
        ) from None
    return value


class _CustomProperties(dict[str, CustomValue]):
    def __setitem__(self, key: str, value: CustomValue) -> None:
        super().__setitem__(key, _check_custom(key, value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v


_REGISTRY: dict[str, type[Artifact]] = {}


class Artifact:
    """One artifact: ``id``, ``uri``, ``state``, typed ``properties``, ``custom_properties``.

    ``id`` is ``None`` until the artifact is published. Reading a declared property that was never set
    gives ``None`` (never ``''`` or ``0``); reading or writing an undeclared one raises
    :class:`~headwater.metadata.errors.ArtifactPropertyError`. Declared properties are also attributes
    (``examples.span``).
    """

    TYPE_NAME: ClassVar[str] = ""
    PROPERTIES: ClassVar[Mapping[str, type]] = {}
    BASE_TYPE: ClassVar[BaseType | None] = None
    artifact_type: ClassVar[ArtifactType]

    __slots__ = ("_local_path", "create_time_ms", "custom_properties", "id", "name", "properties", "state", "uri")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("TYPE_NAME") or cls.__name__
        cls.artifact_type = ArtifactType(name, dict(cls.PROPERTIES), cls.BASE_TYPE)
        cls.TYPE_NAME = name
        if not cls.__dict__.get("_REGISTER", True):
            return
        known = _REGISTRY.get(name)
        if known is not None and known.artifact_type != cls.artifact_type:
            raise ArtifactPropertyError(
                f"artifact type {name!r} is already declared with properties "
                f"{dict(known.artifact_type.properties)} ({known.__module__}); pick another TYPE_NAME"
            )
        _REGISTRY.setdefault(name, cls)

    def __init__(
        self,
        uri: str = "",
        *,
        id: int | None = None,
        state: ArtifactState = ArtifactState.UNKNOWN,
        properties: Mapping[str, PropertyValue] | None = None,
        custom_properties: Mapping[str, CustomValue] | None = None,
        name: str | None = None,
        create_time_ms: int | None = None,
    ) -> None:
        if type(self) is Artifact:
            raise ArtifactPropertyError(
                "Artifact is abstract: use a type such as types.Examples, or declare a subclass with "
                "TYPE_NAME and PROPERTIES"
            )
        self.uri = uri
        self._local_path: str | None = None
        self.id = id
        self.state = ArtifactState(state)
        self.properties = _Properties(self.artifact_type, properties)
        self.custom_properties: dict[str, CustomValue] = _CustomProperties()
        self.custom_properties.update(custom_properties or {})
        self.name = name
        self.create_time_ms = create_time_ms

    @property
    def type(self) -> ArtifactType:
        return self.artifact_type

    @property
    def type_name(self) -> str:
        return self.artifact_type.name

    @property
    def path(self) -> str:
        """The local folder holding this artifact's files — read and write them here.

        For a local pipeline root it is the URI itself. For an object-store root (``s3://``, ``gs://``) it
        is the executor's staged copy: inputs are downloaded there before the component runs, outputs
        uploaded from there after it succeeded. ``uri`` stays the artifact's identity (what MLMD records).
        """
        if self._local_path is not None:
            return self._local_path
        uri = self.uri[len("file://"):] if self.uri.startswith("file://") else self.uri
        if "://" in uri:
            raise StorageError(
                f"{self.artifact_type.name} artifact {self.uri} lives in an object store and has no local copy "
                "here; executors get one in .path, elsewhere read it with headwater.components.storage"
            )
        return uri

    @path.setter
    def path(self, local: str | None) -> None:
        self._local_path = local

    def __getattr__(self, key: str) -> Any:
        # Only reached for names that are not slots or class attributes: expose declared properties.
        if key in self.artifact_type.properties:
            return object.__getattribute__(self, "properties")[key]
        raise AttributeError(
            f"{self.artifact_type.name} artifact has no attribute {key!r}; declared properties: "
            f"{', '.join(sorted(self.artifact_type.properties)) or 'none'}; custom values are in "
            ".custom_properties"
        )

    def __repr__(self) -> str:
        return f"{self.artifact_type.name}(id={self.id}, uri={self.uri!r}, state={self.state.name})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Artifact):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    # The JSON form is part of the execution spec / executor result contract.
    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.artifact_type.name,
            "type_properties": {k: v.__name__ for k, v in self.artifact_type.properties.items()},
            "uri": self.uri,
            "state": self.state.name,
            "properties": dict(self.properties),
            "custom_properties": dict(self.custom_properties),
            "name": self.name,
            "create_time_ms": self.create_time_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        kinds = {"int": int, "float": float, "str": str}
        declared = data.get("type_properties")
        atype = ArtifactType(data["type"], {k: kinds[v] for k, v in (declared or {}).items()})
        return artifact_class(atype)(
            data.get("uri", ""),
            id=data.get("id"),
            state=ArtifactState[data.get("state", "UNKNOWN")],
            properties=data.get("properties") or {},
            custom_properties=data.get("custom_properties") or {},
            name=data.get("name"),
            create_time_ms=data.get("create_time_ms"),
        )


def artifact_class(artifact_type: ArtifactType) -> type[Artifact]:
    """The class for ``artifact_type``: the declared one, or one made on the fly (types read from a store)."""
    known = _REGISTRY.get(artifact_type.name)
    if known is not None and set(known.artifact_type.properties) >= set(artifact_type.properties):
        return known
    made = type(
        artifact_type.name.replace(".", "_"),
        (Artifact,),
        {"__slots__": (), "_REGISTER": False, "TYPE_NAME": artifact_type.name,
         "PROPERTIES": dict(artifact_type.properties), "BASE_TYPE": artifact_type.base_type,
         "__module__": __name__},
    )
    if known is None:
        _REGISTRY[artifact_type.name] = made
    return made
