"""Each ML template copied into a fresh folder: its own tests pass there, and ``headwater run pipeline.py``
runs it end to end on the embedded default (SQLite metadata, local workers) — twice for babyweight, with a
new year of data the second time."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from headwater.templates import copy_template

pytestmark = [pytest.mark.ml, pytest.mark.slow]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HEADWATER_METADATA", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _headwater(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "headwater.pipelines.cli", *args], cwd)


def _only(folder: Path) -> Path:
    """The single artifact folder under ``runs/<node>/<key>/`` (one per execution)."""
    found = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    return found[-1]


@pytest.mark.parametrize("name", ["penguin", "babyweight"])
def test_the_copied_projects_own_tests_pass(tmp_path, name):
    project = tmp_path / name
    copy_template(name, project)
    out = _run([sys.executable, "-m", "pytest", "-q", "-W", "ignore::DeprecationWarning"], project)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout


def test_penguin_end_to_end(tmp_path):
    project = tmp_path / "penguins"
    copy_template("penguin", project, pipeline_name="my_penguins")
    first = _headwater("run", "pipeline.py", cwd=project)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "13 done" in first.stderr  # Ingest, Statistics, ImportSchema, PreviousStatistics, Validate, …
    # The run ends by saying how it came out; node logs say what each component did, without logging errors.
    outcome = first.stderr[first.stderr.index("outcome of run "):].splitlines()
    assert outcome[1].startswith("  Evaluate: BLESSED — sparse_categorical_accuracy "), outcome
    assert outcome[2].startswith("    verdict: every threshold passed"), outcome
    assert outcome[3:] == [f"  Push: pushed to {project / 'serving' / '1'} (version 1)",
                           f"  logs: headwater runs logs {outcome[0].split()[-1].rstrip(':')} [NODE]"]
    logs = {p.name.split(".")[0]: p.read_text() for p in (project / "runs" / "_logs").rglob("*.log")}
    assert not [n for n, text in logs.items() if "Logging error" in text or "closed file" in text]
    assert re.search(r"^Ingest: 344 rows from 1 file\(s\) into train \d+, eval \d+", logs["Ingest"], re.M)
    assert re.search(r"^Train: \d+ train steps, \d+ eval steps in [\d.]+s; final loss [\d.e-]+", logs["Train"], re.M)
    assert re.search(r"^Push: model .* pushed to .*serving/1 \(version 1\)$", logs["Push"], re.M)
    anomalies = _only(project / "runs" / "Validate" / "anomalies")
    assert json.loads((anomalies / "validation.json").read_text())["passed"] is True
    assert (anomalies / "report.html").is_file()

    runs = project / "runs"
    metrics = json.loads((_only(runs / "Evaluate" / "evaluation") / "metrics.json").read_text())
    overall = metrics["slices"]["Overall"]
    assert overall["sparse_categorical_accuracy"]["candidate"] >= 0.9, overall
    assert overall["example_count"]["candidate"] >= 100  # the real data: about a third of 344 penguins
    assert metrics["blessed"] is True
    assert (_only(runs / "Evaluate" / "blessing") / "BLESSED").exists()
    assert (project / "serving" / "1" / "saved_model.pb").is_file()
    assert "Island=Biscoe" in json.dumps(metrics).replace("island", "Island")  # sliced per island

    # The pushed model serves raw examples, missing values included: the 4th penguin has no measurements.
    code = r"""
import csv, sys
import tensorflow as tf
rows = list(csv.DictReader(open("data/penguins.csv")))
def example(r):
    f = {}
    for k in ("bill_length_mm", "bill_depth_mm"):
        if r[k] != "NA": f[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(r[k])]))
    for k in ("flipper_length_mm", "body_mass_g"):
        if r[k] != "NA": f[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(r[k])]))
    for k in ("island", "sex"):
        if r[k] != "NA": f[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[r[k].encode()]))
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()
model = tf.saved_model.load("serving/1")
out = model.signatures["serving_default"](examples=tf.constant([example(r) for r in rows[:5]]))
probs = list(out.values())[0].numpy()
print(probs.shape, [round(float(sum(p)), 4) for p in probs])
"""
    served = _run([sys.executable, "-c", code], project)
    assert served.returncode == 0, served.stderr[-3000:]
    assert "(5, 3) [1.0, 1.0, 1.0, 1.0, 1.0]" in served.stdout

    infra = _only(runs / "InfraValidate" / "blessing")
    assert (infra / "INFRA_BLESSED").exists(), (infra / "infra_validation.json").read_text()
    _serve_as_the_readme_says(project)

    # BatchPredict: the blessed model over the holdout penguins (a second Ingest), with metrics and pictures.
    assert re.search(r"^BatchPredict: predicted 35 examples of splits holdout with model \d+ .*; "
                     r"sparse_categorical_accuracy [\d.]+ against label 'species'", logs["BatchPredict"], re.M)
    predicted = _only(runs / "BatchPredict" / "inference_result")
    summary = json.loads((predicted / "batch_predict.json").read_text())
    assert summary["predicted"] == 35 and sorted(summary["class_names"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert summary["metrics"]["sparse_categorical_accuracy"] >= 0.85, summary
    assert all((predicted / "evaluation" / name).is_file() for name in ("confusion_matrix.png", "roc.png", "pr.png"))
    assert list(predicted.glob("prediction_logs-*.gz")) and list((predicted / "predictions").glob("*.parquet"))

    again = _headwater("run", "pipeline.py", cwd=project)
    assert again.returncode == 0 and "11 cached, 2 done" in again.stderr, again.stderr[-2000:]
    listed = _headwater("runs", "list", "--format", "json", cwd=project)
    assert [r["pipeline"] for r in json.loads(listed.stdout)] == ["my_penguins", "my_penguins"]


def _serve_as_the_readme_says(project: Path) -> None:
    """``headwater serve serving/ --web web/`` answers the README's curl request and serves the page."""
    import re
    import signal
    import socket
    import time
    import urllib.request

    readme = (project / "README.md").read_text()
    body = re.search(r"curl -s -X POST http://127.0.0.1:8501/v1/models/penguin:predict -d '([^']+)'", readme)[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "serve", "serving/", "--model-name",
                             "penguin", "--web", "web/", "--port", str(port)], cwd=project, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/v1/models/penguin", timeout=5)
                break
            except OSError:
                time.sleep(0.2)
        request = urllib.request.Request(f"{url}/v1/models/penguin:predict", data=body.encode())
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        (prediction,) = answer["predictions"]
        assert sorted(prediction["classes"]) == ["Adelie", "Chinstrap", "Gentoo"]
        assert prediction["classes"][prediction["scores"].index(max(prediction["scores"]))] == "Adelie"
        page = urllib.request.urlopen(f"{url}/", timeout=30).read().decode()
        assert "penguin.js" in page
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_babyweight_end_to_end_and_retraining_on_a_new_year(tmp_path):
    project = tmp_path / "bw"
    copy_template("babyweight", project)
    first = _headwater("run", "pipeline.py", cwd=project)
    assert first.returncode == 0, first.stderr[-4000:]
    runs = project / "runs"

    results = json.loads((_only(runs / "Tune" / "tuner_results") / "tuner_results.json").read_text())
    assert len(results["trials"]) == 3 and all(t["status"] == "COMPLETED" for t in results["trials"])
    best = json.loads((_only(runs / "Tune" / "best_hyperparameters") / "best_hyperparameters.txt").read_text())
    assert best["values"] == min(results["trials"], key=lambda t: t["score"])["hyperparameters"]
    train_log = next((runs / "_logs").rglob("Train.*.log")).read_text()
    assert f"training with {({**_model_defaults(project), **best['values']})}" in train_log

    metrics = json.loads((_only(runs / "Evaluate" / "evaluation") / "metrics.json").read_text())
    rmse = metrics["slices"]["Overall"]["root_mean_squared_error"]["candidate"]
    assert rmse <= 1.1 and metrics["blessed"] is True, metrics
    assert (project / "serving" / "1" / "saved_model.pb").is_file()
    first_examples = _only(runs / "Ingest" / "examples")

    # A new year arrives: a new span. The model is retrained on it and compared with the one serving.
    made = _run([sys.executable, "data/generate.py", "2006"], project)
    assert made.returncode == 0 and (project / "data" / "natality-2006.csv").is_file(), made.stderr
    second = _headwater("run", "pipeline.py", cwd=project)
    assert second.returncode == 0, second.stderr[-4000:]
    assert _only(runs / "Ingest" / "examples") != first_examples
    assert len(json.loads(_headwater("runs", "list", "--format", "json", cwd=project).stdout)) == 2
    assert _spans(runs) == [2005, 2006]  # the year is the span

    evaluation = _only(runs / "Evaluate" / "evaluation")
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["baseline_model_id"] is not None  # the 2005 model, blessed in the first run
    rmse = metrics["slices"]["Overall"]["root_mean_squared_error"]
    # The gate, recomputed from the metrics: RMSE <= 1.1 and at most 0.02 worse than the baseline.
    should_bless = rmse["candidate"] <= 1.1 and rmse["candidate"] - rmse["baseline"] <= 0.02
    assert metrics["blessed"] is should_bless, metrics
    assert (project / "serving" / "2").is_dir() is should_bless
    with (project / "data" / "natality-2006.csv").open() as f:
        assert sum(1 for _ in csv.reader(f)) == 2001


def _spans(runs: Path) -> list[int]:
    from headwater.metadata import connect

    store = connect(f"sqlite:///{runs / 'metadata.sqlite'}", readonly=True)
    examples = store.mlmd.get_artifacts_by_type("Examples")
    return sorted(a.properties["span"].int_value for a in examples if "Ingest" in a.uri)


def _model_defaults(project: Path) -> dict[str, object]:
    import yaml

    defaults = {"hidden_units": 32, "num_layers": 2, "learning_rate": 0.01, "batch_size": 64}
    config = yaml.safe_load((project / "configs" / "training.yaml").read_text())
    return {**defaults, **config["model"]}
