"""ML Metadata for headwater: artifact types (TFX names), artifacts, the store, lineage.

Importing this package does not import ``ml_metadata``, TensorFlow or Beam; the store is opened with
:func:`connect`.
"""

from headwater.metadata import errors, types
from headwater.metadata.artifact import Artifact, ArtifactState, ArtifactType, BaseType
from headwater.metadata.connection import ENV_VAR, ConnectionSpec, parse_connection, redact
from headwater.metadata.store import ExecutionState, MetadataStore, connect

__all__ = [
    "ENV_VAR",
    "Artifact",
    "ArtifactState",
    "ArtifactType",
    "BaseType",
    "ConnectionSpec",
    "ExecutionState",
    "MetadataStore",
    "connect",
    "errors",
    "parse_connection",
    "redact",
    "types",
]
