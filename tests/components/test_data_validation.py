"""Data validation on the real Palmer penguins data: Statistics, ImportSchema, Validate, and the gate.

Spans arrive one after another (one year each). A clean span passes and its consumers run; a span whose
body mass drifted (kilograms instead of grams) is blocked: the consumer and everything after it do not
run, with a reason naming the feature, the rule and the value. Drift values are recorded whether or not
they cross the threshold.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import hw_test_components as c
import pytest
from headwater.components._data import penguins_csv
from headwater.components.errors import ParameterError
from headwater.components.ingest import Ingest
from headwater.components.validation import (
    Bounds,
    Drift,
    ImportSchema,
    PreviousStatistics,
    SchemaCheck,
    Skew,
    Statistics,
    Validate,
    render_html,
)
from headwater.metadata import connect
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.cli import main as cli
from headwater.pipelines.errors import PipelineDefinitionError

pytestmark = pytest.mark.ml

RULES = [Drift("island", linf=0.3), Drift("body_mass_g", jensen_shannon=0.3), Drift("sex", linf=0.3, severity="warn"),
         Bounds("flipper_length_mm", min=150, max=250)]


def corrupt(path: Path, *, kilograms: bool = False, island: str | None = None) -> None:
    """Rewrite a penguins CSV the way a broken export would: body mass in kg, or an island renamed."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if kilograms and row["body_mass_g"]:
            row["body_mass_g"] = str(round(int(row["body_mass_g"]) / 1000))
        if island and row["island"] == "Biscoe":
            row["island"] = island
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def gated(root: Path, schema_file: Path | None, rules: list[Any] = RULES) -> Pipeline:
    ingest = Ingest(input_base=str(root / "data"), pattern="penguins-{SPAN}.csv", label="species")
    stats = Statistics(examples=ingest.outputs.examples)
    nodes: list[Any] = [ingest, stats]
    if schema_file is not None:
        schema = ImportSchema(schema_file=str(schema_file))
        previous = PreviousStatistics(statistics=stats.outputs.statistics)
        validate = Validate(statistics=stats.outputs.statistics, schema=schema.outputs.schema,
                            previous_statistics=previous.outputs.statistics, rules=rules)
        train = c.list_splits(examples=ingest.outputs.examples).with_id("train")
        push = c.publish(model=train.outputs.model).with_id("push")
        nodes += [schema, previous, validate, train, push]
    return Pipeline(name="gated", root=str(root / "runs"), nodes=nodes, metadata=store_uri(root))


def store_uri(root: Path) -> str:
    return f"sqlite:///{root / 'runs' / 'metadata.sqlite'}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Span 1 (2007) ingested, its statistics turned into the curated schema with `headwater schema infer`."""
    root = tmp_path_factory.mktemp("gated")
    penguins_csv(root / "data" / "penguins-1.csv", years=[2007])
    first = LocalRunner(max_workers=1, quiet=True).run(gated(root, None))
    assert first.ok, {n: r.error for n, r in first.nodes.items() if r.error}
    [stats] = first.outputs("Statistics", "statistics")
    [examples] = first.outputs("Ingest", "examples")
    schema_file = root / "schema" / "schema.pbtxt"
    assert cli(["schema", "infer", stats.uri, "-o", str(schema_file)]) == 0
    return {"root": root, "schema": schema_file, "stats": stats, "examples": examples}


def test_statistics_follow_tfx_layout_and_render_offline(project: dict[str, Any]) -> None:
    stats = project["stats"]
    assert json.loads(stats.properties["split_names"]) == ["train", "eval"]
    for split in ("train", "eval"):
        assert (Path(stats.uri) / f"Split-{split}" / "FeatureStats.pb").stat().st_size > 0
    page = render_html(stats.uri)
    assert page == (Path(stats.uri) / "report.html").read_text()
    assert "body_mass_g" in page and "<svg" in page and "http" not in page.replace("http-equiv", "")


def test_clean_span_passes_then_drifted_span_is_blocked(project: dict[str, Any], capsys: Any) -> None:
    root, schema = project["root"], project["schema"]
    penguins_csv(root / "data" / "penguins-2.csv", years=[2008])
    clean = LocalRunner(max_workers=1).run(gated(root, schema))
    assert clean.ok, {n: r.error for n, r in clean.nodes.items() if r.error}
    assert [clean.nodes[n].state for n in ("Validate", "train", "push")] == ["done", "done", "done"]
    store = connect(store_uri(root))
    [anomalies] = store.get_artifacts([clean.outputs("Validate", "anomalies")[0].id])
    props = anomalies.custom_properties
    # Below every threshold, and still recorded.
    assert props["passed"] == 1 and props["anomaly_count"] == 0
    assert set(props["drift"]) == {"island", "body_mass_g", "sex"}
    assert 0 < props["drift"]["body_mass_g"]["jensen_shannon"] < 0.3
    doc = json.loads((Path(anomalies.uri) / "validation.json").read_text())
    assert doc["spans"] == {"current": 2, "previous": 1}
    assert {(m["feature"], m["measure"]) for m in doc["measurements"] if m["split"] == "train"} == {
        ("island", "linf"), ("body_mass_g", "jensen_shannon"), ("sex", "linf")}
    assert (Path(anomalies.uri) / "Split-train" / "SchemaDiff.pb").is_file()
    # `headwater lineage --explain` shows the validation of the pushed model's data, values included.
    capsys.readouterr()
    [pushed] = clean.outputs("push", "pushed")
    assert cli(["lineage", str(pushed.id), "--explain", "--metadata", store_uri(root)]) == 0
    text = capsys.readouterr().out
    assert f"validated: passed (0 blocking, 0 warnings) — ExampleAnomalies #{anomalies.id}" in text
    drift = props["drift"]["body_mass_g"]["jensen_shannon"]
    assert f"drift body_mass_g: jensen_shannon {drift}" in text
    assert cli(["lineage", str(pushed.id), "--explain", "-f", "json", "--metadata", store_uri(root)]) == 0
    [source] = json.loads(capsys.readouterr().out)["data"]
    assert source["validation"][0]["drift"]["island"] == props["drift"]["island"]

    penguins_csv(root / "data" / "penguins-3.csv", years=[2009])
    corrupt(root / "data" / "penguins-3.csv", kilograms=True)
    blocked = LocalRunner(max_workers=1).run(gated(root, schema))
    out = capsys.readouterr().err  # the console status and the summary
    assert not blocked.ok
    assert blocked.nodes["Validate"].state == "done"
    assert blocked.nodes["train"].state == "blocked" and blocked.nodes["push"].state == "blocked"
    reason = blocked.nodes["train"].error or ""
    assert reason.startswith("data validation 'Validate' blocked the data: feature 'body_mass_g' (train): drift")
    assert "Jensen-Shannon divergence" in reason and "against span 2 is above the threshold 0.3" in reason
    assert blocked.nodes["push"].error == "upstream node 'train' was blocked"
    assert "did not complete" in out and "feature 'body_mass_g' (train): drift" in out
    [anomalies] = store.get_artifacts([blocked.outputs("Validate", "anomalies")[0].id])
    assert anomalies.custom_properties["passed"] == 0
    assert anomalies.custom_properties["drift"]["body_mass_g"]["jensen_shannon"] > 0.3
    page = render_html(anomalies.uri)
    assert "BLOCKED" in page and "body_mass_g" in page
    _dashboard_shows_the_verdict(store_uri(root), anomalies.id)

    # A clean span after it: drift is measured against span 2 (the last one that passed), not span 3.
    penguins_csv(root / "data" / "penguins-4.csv", years=[2009])
    again = LocalRunner(max_workers=1, quiet=True).run(gated(root, schema))
    assert again.ok, {n: r.error for n, r in again.nodes.items() if r.error}
    [previous] = again.outputs("PreviousStatistics", "statistics")
    assert previous.properties["span"] == 2


def _dashboard_shows_the_verdict(uri: str, anomalies_id: int) -> None:
    """``headwater ui``'s ExampleAnomalies viewer: the verdict, every drift value, the sandboxed report."""
    from headwater.ui.app import create_app
    from headwater.ui.security import FILE_CSP
    from starlette.testclient import TestClient

    client = TestClient(create_app(connect(uri, readonly=True)), base_url="http://127.0.0.1")
    page = client.get(f"/artifacts/{anomalies_id}")
    assert page.status_code == 200, page.text
    assert 'id="validation-verdict" class="no">BLOCKED' in page.text
    assert 'id="validation-measurements"' in page.text and "body_mass_g" in page.text
    report = client.get(f"/artifacts/{anomalies_id}/raw", params={"path": "report.html"})
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"] == FILE_CSP and "sandbox" in FILE_CSP


def test_warn_severity_reports_without_blocking(project: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path
    penguins_csv(root / "data" / "penguins-1.csv", years=[2007])
    corrupt(root / "data" / "penguins-1.csv", island="Atlantis")
    rules = [SchemaCheck("island", severity="warn")]
    result = LocalRunner(max_workers=1, quiet=True).run(gated(root, project["schema"], rules))
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    [anomalies] = result.outputs("Validate", "anomalies")
    doc = json.loads((Path(anomalies.uri) / "validation.json").read_text())
    [finding] = [f for f in doc["findings"] if f["split"] == "train"]
    assert finding["feature"] == "island" and finding["severity"] == "warn" and "Atlantis" in finding["text"]
    # Without the warn rule the same data is blocked.
    blocked = LocalRunner(max_workers=1, quiet=True).run(gated(root, project["schema"], []))
    assert blocked.nodes["train"].state == "blocked"
    assert "feature 'island' (train): schema" in (blocked.nodes["train"].error or "")


def test_schema_diff_reads_like_a_review(project: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    from headwater.components.validation import read_statistics

    stats = read_statistics(project["stats"].uri, "train")
    assert stats.datasets[0].num_examples > 0
    curated = project["schema"].read_text()
    edited = tmp_path / "schema.pbtxt"
    edited.write_text(curated.replace('name: "year"', 'name: "year_of_study"'))
    capsys.readouterr()
    assert cli(["schema", "diff", str(edited), project["stats"].uri, "--exit-code"]) == 1
    out = capsys.readouterr().out
    assert "+ feature 'year' (INT): in the data, not in the schema" in out
    assert "- feature 'year_of_study' (INT): in the schema, not in the data" in out
    assert "headwater: 2 difference(s)" in out
    assert cli(["schema", "diff", str(project["schema"]), project["stats"].uri]) == 0
    assert "no difference" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- bad input
def test_a_schema_file_that_does_not_parse_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "schema.pbtxt"
    bad.write_text('feature {\n  name: "a"\n  typo: INT\n}\n')
    with pytest.raises(ParameterError, match=r"schema file .*schema\.pbtxt:3:3: .*has no field named \"typo\".* "
                       r"fix that line, or recreate the file with `headwater schema infer`"):
        ImportSchema(schema_file=str(bad))
    with pytest.raises(ParameterError, match=r"schema file .*missing\.pbtxt does not exist"):
        ImportSchema(schema_file=str(tmp_path / "missing.pbtxt"))


def test_a_rule_on_a_feature_the_schema_lacks_fails_before_anything_runs(project: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    pipeline = gated(tmp_path, project["schema"], [Drift("body_mass_kg", jensen_shannon=0.2)])
    with pytest.raises(PipelineDefinitionError, match=r"node 'Validate': Drift\('body_mass_kg'\) names a feature "
                       r"that the schema file .*schema\.pbtxt does not have; its features are bill_depth_mm, "):
        LocalRunner(quiet=True).run(pipeline)
    assert not (tmp_path / "runs").exists()


def test_rules_are_checked_when_declared() -> None:
    with pytest.raises(ParameterError, match=r"Drift\('island'\): linf=1.5 must be a number between 0 and 1"):
        Drift("island", linf=1.5)
    with pytest.raises(ParameterError, match=r"Drift\('island'\): give a threshold"):
        Drift("island")
    with pytest.raises(ParameterError, match=r"Bounds\('x'\): min=3 is above max=1"):
        Bounds("x", min=3, max=1)
    with pytest.raises(ParameterError, match=r"SchemaCheck\('x'\): severity 'fatal' is not 'block' or 'warn'"):
        SchemaCheck("x", severity="fatal")  # type: ignore[arg-type]


def test_statistics_from_a_different_schema_are_refused(project: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.pbtxt"
    other.write_text('feature {\n  name: "pixels"\n  type: FLOAT\n}\nfeature {\n  name: "label"\n  type: INT\n}\n')
    root = tmp_path / "p"
    penguins_csv(root / "data" / "penguins-1.csv", years=[2007])
    result = LocalRunner(max_workers=1, quiet=True).run(gated(root, other, []))
    assert result.nodes["Validate"].state == "failed"
    assert "share no feature with the schema" in (result.nodes["Validate"].error or "")
    assert result.nodes["train"].state == "blocked"


def test_skew_between_training_and_serving_data_is_measured_and_blocks(project: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    penguins_csv(tmp_path / "data" / "penguins-1.csv", years=[2007])
    penguins_csv(tmp_path / "serving" / "penguins.csv", years=[2007])
    corrupt(tmp_path / "serving" / "penguins.csv", island="Dream")  # serving sees no Biscoe penguin
    ingest = Ingest(input_base=str(tmp_path / "data"), pattern="penguins-{SPAN}.csv", label="species")
    serving = Ingest(input_base=str(tmp_path / "serving"), label="species").with_id("IngestServing")
    stats = Statistics(examples=ingest.outputs.examples)
    serving_stats = Statistics(examples=serving.outputs.examples).with_id("ServingStatistics")
    schema = ImportSchema(schema_file=str(project["schema"]))
    validate = Validate(statistics=stats.outputs.statistics, schema=schema.outputs.schema,
                        serving_statistics=serving_stats.outputs.statistics,
                        rules=[Skew("island", linf=0.2), Skew("sex", linf=0.2)])
    train = c.list_splits(examples=ingest.outputs.examples).with_id("train")
    pipeline = Pipeline(name="skew", root=str(tmp_path / "runs"), metadata=store_uri(tmp_path),
                        nodes=[ingest, serving, stats, serving_stats, schema, validate, train])
    result = LocalRunner(max_workers=1, quiet=True).run(pipeline)
    assert result.nodes["train"].state == "blocked"
    assert "feature 'island' (train): skew — L-infinity distance" in (result.nodes["train"].error or "")
    assert "against the serving data is above the threshold 0.2" in (result.nodes["train"].error or "")
    [anomalies] = connect(store_uri(tmp_path)).get_artifacts([result.outputs("Validate", "anomalies")[0].id])
    skew = anomalies.custom_properties["skew"]
    assert skew["island"]["linf"] > 0.2 and skew["sex"]["linf"] < 0.2  # both recorded


def test_schema_infer_keeps_a_curated_file_and_names_bad_sources(project: dict[str, Any], tmp_path: Path,
                                                                 capsys: Any) -> None:
    curated = tmp_path / "schema.pbtxt"
    curated.write_text("# reviewed by hand\n")
    assert cli(["schema", "infer", project["stats"].uri, "-o", str(curated)]) == 2
    assert "exists; it is the curated schema — pass --force to replace it" in capsys.readouterr().err
    assert curated.read_text() == "# reviewed by hand\n"
    assert cli(["schema", "infer", str(tmp_path), "-o", str(tmp_path / "new.pbtxt")]) == 2
    assert "holds no Split-<name>/FeatureStats.pb; give the folder of an ExampleStatistics artifact" in \
        capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="is neither an ExampleStatistics folder"):
        render_html(tmp_path)


def test_local_statistics_stream_in_batches_and_match_the_whole_split_at_once(project: dict[str, Any],
                                                                             tmp_path: Path) -> None:
    """The local engine adds batch after batch to TFDV's accumulators (memory bounded by a batch): the
    figures are those of the whole split computed at once."""
    from headwater.components._data import read_examples
    from headwater.components.validation._stats import compute_statistics_local, read_statistics
    from tensorflow_data_validation.statistics import stats_impl

    examples = project["examples"].uri  # span 1's; later tests ingest more spans into the same root
    (tmp_path / "Split-train").mkdir()
    compute_statistics_local(str(examples), ["train"], str(tmp_path), batch_size=7)  # many small batches
    streamed = read_statistics(str(tmp_path), "train").datasets[0]
    table = read_examples(str(examples), "train")
    whole = stats_impl.generate_statistics_in_memory(table.combine_chunks().to_batches()[0]).datasets[0]
    assert streamed.num_examples == whole.num_examples == table.num_rows > 7 * 5
    by_name = {f.path.step[0]: f for f in whole.features}
    assert {f.path.step[0] for f in streamed.features} == set(by_name)
    for feature in streamed.features:
        other = by_name[feature.path.step[0]]
        if feature.HasField("num_stats"):
            a, b = feature.num_stats, other.num_stats
            assert (a.common_stats.num_non_missing, a.common_stats.num_missing, a.min, a.max, a.num_zeros) == \
                (b.common_stats.num_non_missing, b.common_stats.num_missing, b.min, b.max, b.num_zeros)
            assert a.mean == pytest.approx(b.mean) and a.std_dev == pytest.approx(b.std_dev)
        else:
            a, b = feature.string_stats, other.string_stats
            assert (a.common_stats.num_non_missing, a.unique) == (b.common_stats.num_non_missing, b.unique)
            assert [(v.value, v.frequency) for v in a.top_values] == [(v.value, v.frequency) for v in b.top_values]
