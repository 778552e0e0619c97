"""The InferenceResult viewer: what BatchPredict wrote, rendered from batch_predict.json (no server)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import jinja2
from headwater.ui.viewers import ViewContext, view_for

TEMPLATES = Path(__file__).resolve().parents[2] / "ui" / "templates"


def render(art: SimpleNamespace) -> str:
    view = view_for(ViewContext(artifact=art))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    return env.get_template(view.template).render(v=view.data)


def test_predictions_metrics_and_files_are_shown(tmp_path):
    (tmp_path / "batch_predict.json").write_text(json.dumps({
        "predicted": 35, "splits": ["holdout"], "signature": "classify_species", "task": "multiclass",
        "label_key": "species", "metrics": {"sparse_categorical_accuracy": 0.9714}, "pictures": ["evaluation/roc.png"],
        "prediction_logs": ["prediction_logs-00000-of-00001.gz"],
        "parquet": ["predictions/part-00000-of-00001.parquet"]}))
    html = render(SimpleNamespace(uri=str(tmp_path), type_name="InferenceResult", custom_properties={}))
    assert "<td>35</td>" in html and "classify_species, multiclass" in html
    assert "<th>sparse_categorical_accuracy</th><td>0.9714</td>" in html
    assert "predictions/part-00000-of-00001.parquet, prediction_logs-00000-of-00001.gz, evaluation/roc.png" in html


def test_a_refusal_says_why(tmp_path):
    reason = "refusing to predict with model 7: its ModelBlessing (id 9) says NOT BLESSED <thresholds>"
    (tmp_path / "batch_predict.json").write_text(json.dumps({"predicted": 0, "refused": reason}))
    html = render(SimpleNamespace(uri=str(tmp_path), type_name="InferenceResult", custom_properties={}))
    assert "says NOT BLESSED &lt;thresholds&gt;" in html and "<td>0</td>" in html
