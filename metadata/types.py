"""Standard artifact types, with TFX's names and property declarations.

TFX tools can read headwater stores and headwater reads TFX's, because the names and properties match::

    from headwater.metadata import types
    types.Examples          # properties: span (int), version (int), split_names (JSON list as str)

Declare your own as a subclass of :class:`~headwater.metadata.Artifact`::

    class Embeddings(Artifact):
        TYPE_NAME = "Embeddings"
        PROPERTIES = {"dim": int}
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from headwater.metadata.artifact import Artifact, ArtifactType, BaseType

__all__ = [
    "STANDARD_TYPES",
    "Artifact",
    "ArtifactType",
    "ExampleAnomalies",
    "ExampleStatistics",
    "Examples",
    "HyperParameters",
    "InferenceResult",
    "InfraBlessing",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "ModelRun",
    "PushedModel",
    "Schema",
    "TransformCache",
    "TransformGraph",
    "TunerResults",
]


class Examples(Artifact):
    """Split example data: ``Split-<name>/data_tfrecord-*.gz`` (gzip TFRecord of tf.train.Example)."""

    PROPERTIES = {"span": int, "version": int, "split_names": str}
    BASE_TYPE = BaseType.DATASET
    __slots__ = ()


class ExampleStatistics(Artifact):
    PROPERTIES = {"span": int, "split_names": str}
    BASE_TYPE = BaseType.STATISTICS
    __slots__ = ()


class ExampleAnomalies(Artifact):
    PROPERTIES = {"span": int, "split_names": str}
    __slots__ = ()


class Schema(Artifact):
    """A tensorflow-metadata ``Schema`` in text format (``schema.pbtxt``)."""

    __slots__ = ()


class TransformGraph(Artifact):
    """tf.Transform output: ``transform_fn/``, ``transformed_metadata/`` …"""

    __slots__ = ()


class TransformCache(Artifact):
    __slots__ = ()


class Model(Artifact):
    """A trained model; the SavedModel is under ``Format-Serving/``."""

    BASE_TYPE = BaseType.MODEL
    __slots__ = ()


class ModelRun(Artifact):
    """Training logs and TensorBoard files."""

    __slots__ = ()


class ModelEvaluation(Artifact):
    """TFMA evaluation results, plots and readable per-slice metrics."""

    BASE_TYPE = BaseType.METRICS
    __slots__ = ()


class ModelBlessing(Artifact):
    """The verdict on a model: custom properties ``blessed`` (1/0), ``current_model(_id)``, ``baseline_model(_id)``."""

    __slots__ = ()


class InfraBlessing(Artifact):
    __slots__ = ()


class InferenceResult(Artifact):
    """Batch predictions: ``prediction_logs-*.gz`` (gzip TFRecord of tensorflow-serving ``PredictionLog``, as
    TFX's BulkInferrer writes them) and ``predictions/*.parquet`` (one row per example)."""

    __slots__ = ()


class PushedModel(Artifact):
    """A push: custom properties ``pushed`` (1/0), ``pushed_destination``, ``pushed_version``."""

    BASE_TYPE = BaseType.MODEL
    __slots__ = ()


class HyperParameters(Artifact):
    """The best hyperparameters of a search (``best_hyperparameters.txt``, JSON)."""

    __slots__ = ()


class TunerResults(Artifact):
    """Every trial of a hyperparameter search."""

    __slots__ = ()


STANDARD_TYPES: Mapping[str, type[Artifact]] = MappingProxyType(
    {
        cls.TYPE_NAME: cls
        for cls in (
            Examples, ExampleStatistics, ExampleAnomalies, Schema, TransformGraph, TransformCache, Model,
            ModelRun, ModelEvaluation, ModelBlessing, InfraBlessing, InferenceResult, PushedModel, HyperParameters,
            TunerResults,
        )
    }
)
