"""BatchPredict's conversions: PredictionLogs and their examples to Parquet rows and to TFMA's input.

A :class:`Plan` is worked out once in the driver from a sample of the examples and the model's answers
to it, then shipped to the Beam workers: the feature schema the examples are decoded with, which features
are single values (a Parquet column of scalars) or lists, which output holds the scores, the class names,
the task and the label. :func:`to_tables` turns one batch of ``(serialized example, PredictionLog)`` pairs
into a pyarrow Table (the Parquet rows) and, with a label, the serialized ``tf.Example``\\ s TFMA evaluates
(the label as a class id or a number, the prediction as floats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from headwater.components.errors import InputDataError

__all__ = ["LABEL_FEATURE", "PREDICTION_FEATURE", "TASKS", "Plan", "log_kind", "scores_of", "to_tables"]

#: The features of the examples BatchPredict hands TFMA: the label and the model's prediction.
LABEL_FEATURE = "__headwater_label"
PREDICTION_FEATURE = "__headwater_prediction"
TASKS = ("auto", "multiclass", "binary", "regression")


@dataclass(frozen=True)
class Plan:
    """How one batch of predictions becomes Parquet rows and TFMA examples (see the module docs)."""

    node: str
    feature_schema: bytes  # serialized tensorflow_metadata Schema the examples are decoded with
    scalar_features: tuple[str, ...]
    text_features: tuple[str, ...]
    output_key: str  # predict signatures: the output holding the scores / values
    task: str  # multiclass | binary | regression
    class_names: tuple[str, ...] = ()
    label_key: str | None = None
    label_is_text: bool = False


def log_kind(log: Any) -> str:
    """``classify``, ``regress``, ``predict`` or ``multi_inference``: what the signature answered."""
    return str(log.WhichOneof("log_type")).removesuffix("_log")


def _tensor_values(tensor: Any) -> Any:
    import numpy as np
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(tensor.dtype)
    if tensor.tensor_content and dtype != tf.string:
        return np.frombuffer(tensor.tensor_content, dtype=dtype.as_numpy_dtype)
    return tf.make_ndarray(tensor).reshape(-1)


def scores_of(log: Any, output_key: str) -> Any:
    """The model's numbers for one example as a flat float array: class scores or the regression value."""
    import numpy as np

    kind = log_kind(log)
    if kind == "classify":
        return np.array([c.score for c in log.classify_log.response.result.classifications[0].classes], np.float32)
    if kind == "regress":
        return np.array([log.regress_log.response.result.regressions[0].value], np.float32)
    return np.asarray(_tensor_values(log.predict_log.response.outputs[output_key]), np.float32)


def class_names_of(log: Any) -> list[str]:
    """Class names a classify answer or a predict answer's ``classes`` output carries (else none)."""
    kind = log_kind(log)
    if kind == "classify":
        return [c.label for c in log.classify_log.response.result.classifications[0].classes]
    if kind == "predict" and "classes" in log.predict_log.response.outputs:
        values = _tensor_values(log.predict_log.response.outputs["classes"])
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
    return []


def _scalar(column: Any) -> Any:
    """A list column whose rows hold at most one value, as a column of scalars (empty / missing: null)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = np.asarray(pc.fill_null(pc.list_value_length(column), 0))
    if lengths.size and lengths.max() > 1:
        return None
    valid = lengths == 1
    index = np.cumsum(valid) - 1
    return pc.take(column.flatten(), pa.array(index, mask=~valid))


def _features(plan: Plan, records: Sequence[bytes]) -> Any:
    """The examples' features as a pyarrow Table (single values flattened, bytes as text where planned)."""
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    batch = example_coder.ExamplesToRecordBatchDecoder(plan.feature_schema).DecodeBatch(list(records))
    columns, names = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if name in plan.scalar_features:
            flat = _scalar(column)
            if flat is None:
                raise InputDataError(
                    f"{plan.node}: feature {name!r} holds several values in some examples, but one value each in "
                    "the sample BatchPredict planned its Parquet columns from; give every example the same "
                    "number of values for it")
            column = flat
        if name in plan.text_features:
            column = column.cast(pa.large_string() if pa.types.is_large_binary(column.type) else pa.string()) \
                if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type) else column
        columns.append(column)
        names.append(feature_column(name))
    return pa.Table.from_arrays(columns, names=names)


#: The Parquet columns BatchPredict adds after the features.
PREDICTION_COLUMNS = frozenset({"split", "prediction", "score", "scores", "predicted_class", "predicted_score"})


def feature_column(name: str) -> str:
    """The Parquet column of feature ``name``: its own name, or ``feature.<name>`` when BatchPredict's own
    columns (:data:`PREDICTION_COLUMNS`) use it, so a feature called ``split`` or ``scores`` is kept too."""
    return f"feature.{name}" if name in PREDICTION_COLUMNS else name


def _label_ids(plan: Plan, features: Any) -> Any:
    """The label of every example as TFMA needs it: a class id (text labels through ``class_names``) or a
    number."""
    import numpy as np
    import pyarrow as pa

    assert plan.label_key is not None  # called only when the node measures against a label
    column = features.column(feature_column(plan.label_key))
    if column.null_count:
        raise InputDataError(
            f"{plan.node}: {column.null_count} example(s) have no value for the label {plan.label_key!r}; every "
            "example BatchPredict measures needs one (or set label_key=None to only predict)")
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        raise InputDataError(f"{plan.node}: the label {plan.label_key!r} holds several values per example; it "
                             "must be one value each")
    values = column.to_pylist()
    if plan.label_is_text:
        index = {name: i for i, name in enumerate(plan.class_names)}
        unknown = sorted({v for v in values if v not in index})
        if unknown:
            raise InputDataError(
                f"{plan.node}: label {plan.label_key!r} value {unknown[0]!r} is not one of the model's classes "
                f"{list(plan.class_names)}; give class_names= in the model's class order if these are wrong")
        return np.array([index[v] for v in values], np.int64)
    if plan.task == "regression":
        return np.array(values, np.float32)
    return np.array(values, np.int64)


def to_tables(plan: Plan, pairs: Sequence[tuple[bytes, Any]], split: str) -> tuple[Any, list[bytes]]:
    """``(Parquet rows, TFMA examples)`` of a batch of ``(serialized example, PredictionLog)`` pairs."""
    import numpy as np
    import pyarrow as pa
    from headwater.components._runtime import encode_examples

    table = _features(plan, [r for r, _ in pairs])
    scores = [scores_of(log, plan.output_key) for _, log in pairs]
    widths = {len(s) for s in scores}
    if len(widths) > 1:
        raise InputDataError(f"{plan.node}: the model answered with {sorted(widths)} values per example; "
                             "BatchPredict needs the same number for every example")
    matrix = np.stack(scores) if scores else np.zeros((0, 1), np.float32)
    columns: dict[str, Any] = {"split": pa.array([split] * len(pairs), pa.string())}
    if plan.task == "regression":
        columns["prediction"] = pa.array(matrix[:, 0])
    elif matrix.shape[1] == 1:  # binary: one probability of the positive class
        columns["score"] = pa.array(matrix[:, 0])
        columns["predicted_class"] = pa.array((matrix[:, 0] >= 0.5).astype(np.int64))
    else:
        best = matrix.argmax(axis=1)
        columns["scores"] = pa.array(list(matrix), pa.list_(pa.float32()))
        columns["predicted_class"] = (pa.array([plan.class_names[i] for i in best], pa.string())
                                      if plan.class_names else pa.array(best.astype(np.int64)))
        columns["predicted_score"] = pa.array(matrix[np.arange(len(best)), best])
    for name, column in columns.items():
        table = table.append_column(name, column)
    tfma_examples: list[bytes] = []
    if plan.label_key:
        labels = _label_ids(plan, table)
        tfma_table = pa.table({LABEL_FEATURE: pa.array(labels),
                               PREDICTION_FEATURE: pa.array(list(matrix), pa.list_(pa.float32()))})
        tfma_examples = encode_examples(tfma_table)
    return table, tfma_examples
