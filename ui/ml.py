"""Readers that need the ML libraries (imported here, when a page first asks): TFMA plots, tf.Example rows,
and schemas. Without the ``ml`` extra they say what is missing instead of failing the page."""

from __future__ import annotations

import glob
import os
from typing import Any

from headwater.ui.files import FileRefused, safe_path

__all__ = ["evaluation_plots", "example_rows", "schema_features"]


def _missing(what: str, exc: Exception) -> str:
    return f"{what} needs the ML libraries (pip install 'headwater[ml]'): {exc}"


def schema_features(uri: str) -> tuple[list[dict[str, Any]], str | None]:
    """``[{name, type, presence, shape, domain}]`` from ``schema.pbtxt`` under ``uri``."""
    try:
        path = safe_path(uri, "schema.pbtxt")
    except FileRefused as exc:
        return [], str(exc)
    try:
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2
    except ImportError as exc:
        return [], _missing("reading a schema", exc)
    schema = text_format.Parse(path.read_text(), schema_pb2.Schema())
    out = []
    for f in schema.feature:
        presence = f.presence.min_fraction if f.HasField("presence") else None
        shape = [d.size for d in f.shape.dim] if f.HasField("shape") else None
        domain = f.domain or f.WhichOneof("domain_info") or ""
        out.append({"name": f.name, "type": schema_pb2.FeatureType.Name(f.type), "presence": presence,
                    "shape": shape, "domain": domain})
    return out, None


def evaluation_plots(uri: str) -> dict[str, Any]:
    """Confusion matrix, ROC and PR curves of the candidate on the Overall slice, from TFMA's plots."""
    if "://" in uri or not glob.glob(os.path.join(uri, "plots*")):
        return {"error": f"no TFMA plots under {uri}"}
    try:
        import tensorflow_model_analysis as tfma
    except ImportError as exc:
        return {"error": _missing("reading TFMA plots", exc)}
    confusion: dict[str, Any] | None = None
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    for record in tfma.load_plots(uri):
        if len(record.slice_key.single_slice_keys):
            continue  # Overall only
        for kv in record.plot_keys_and_values:
            if kv.key.model_name == "baseline":
                continue
            value = kv.value
            if value.HasField("multi_class_confusion_matrix_at_thresholds") and confusion is None:
                matrices = value.multi_class_confusion_matrix_at_thresholds.matrices
                if matrices:
                    entries = matrices[0].entries
                    n = 1 + max([max(e.actual_class_id, e.predicted_class_id) for e in entries] or [0])
                    grid = [[0.0] * n for _ in range(n)]
                    for e in entries:
                        if 0 <= e.actual_class_id < n and 0 <= e.predicted_class_id < n:
                            grid[e.actual_class_id][e.predicted_class_id] += e.num_weighted_examples
                    confusion = {"labels": [f"class {i}" for i in range(n)], "matrix": grid}
            if value.HasField("confusion_matrix_at_thresholds"):
                sub = kv.key.sub_key
                name = f"class {sub.class_id.value}" if sub.HasField("class_id") else "positive"
                rpts, ppts = set(), set()
                for m in value.confusion_matrix_at_thresholds.matrices:
                    pos, neg = m.true_positives + m.false_negatives, m.false_positives + m.true_negatives
                    if pos > 0 and neg > 0:
                        rpts.add((m.false_positives / neg, m.true_positives / pos))
                    if pos > 0 and m.true_positives + m.false_positives > 0:
                        ppts.add((m.true_positives / pos, m.true_positives / (m.true_positives + m.false_positives)))
                roc.append({"name": name, "points": sorted({*rpts, (0.0, 0.0), (1.0, 1.0)})})
                pr.append({"name": name, "points": sorted(ppts)})
    return {"confusion": confusion, "roc": sorted(roc, key=lambda s: s["name"]),
            "pr": sorted(pr, key=lambda s: s["name"])}


def example_rows(uri: str, split: str, limit: int = 5) -> dict[str, Any]:
    """The first ``limit`` tf.Examples of ``split`` (``Split-<split>/*``), decoded to plain values."""
    try:
        folder = safe_path(uri, f"Split-{split}")
    except FileRefused as exc:
        return {"error": str(exc), "rows": [], "columns": []}
    files = sorted(glob.glob(str(folder / "*")))
    if not files:
        return {"error": f"no files in split {split!r} of {uri}", "rows": [], "columns": []}
    try:
        import tensorflow as tf
    except ImportError as exc:
        return {"error": _missing("decoding examples", exc), "rows": [], "columns": []}
    compression = "GZIP" if files[0].endswith(".gz") else ""
    rows: list[dict[str, Any]] = []
    for raw in tf.data.TFRecordDataset(files[:1], compression_type=compression).take(limit):
        example = tf.train.Example.FromString(raw.numpy())
        row: dict[str, Any] = {}
        for name, feature in sorted(example.features.feature.items()):
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
            row[name] = values[0] if len(values) == 1 else values
        rows.append(row)
    columns = sorted({c for r in rows for c in r})
    return {"rows": [[r.get(c) for c in columns] for r in rows], "columns": columns, "split": split}
