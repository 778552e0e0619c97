"""Transform with real tf.Transform and Beam on the real Palmer penguins data."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from headwater.components import _data
from headwater.components.ingest import Ingest, run_ingest
from headwater.components.transform import Transform, run_transform
from headwater.metadata import types
from headwater.metadata.errors import InputDataError, UserCodeError

pytestmark = pytest.mark.ml

tf = pytest.importorskip("tensorflow")
tft = pytest.importorskip("tensorflow_transform")
np = pytest.importorskip("numpy")

DATA = Path(__file__).resolve().parent.parent / "data"
PENGUIN_MODULE = str(DATA / "penguin_preprocessing.py")
TFX_MODULE = str(DATA / "tfx_penguin_preprocessing.py")
BAD_MODULE = str(DATA / "bad_preprocessing.py")


def ingest(root: Path, **params) -> tuple[types.Examples, types.Schema]:
    examples = types.Examples(str(root / "examples"))
    schema = types.Schema(str(root / "schema"))
    run_ingest(examples, schema, **params)
    return examples, schema


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    root = tmp_path_factory.mktemp("penguins")
    _data.penguins_csv(root / "data" / "penguins.csv")
    return ingest(root / "ingest", input_base=str(root / "data"), label="species")


def tfx_layout_csv(path: Path) -> Path:
    """TFX's cleaned penguin layout from the real data: complete rows, culmen_* names, integer label in 0..2,
    measurements scaled to [0, 1]."""
    raw = list(csv.DictReader(_data.penguins_csv(path.parent.parent / "raw.csv").read_text().splitlines()))
    keys = {"culmen_length_mm": "bill_length_mm", "culmen_depth_mm": "bill_depth_mm",
            "flipper_length_mm": "flipper_length_mm", "body_mass_g": "body_mass_g"}
    complete = [r for r in raw if all(r[v] for v in keys.values())]
    span = {k: (min(float(r[v]) for r in complete), max(float(r[v]) for r in complete)) for k, v in keys.items()}
    species = {"Adelie": 0, "Chinstrap": 1, "Gentoo": 2}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", *keys])
        for r in complete:
            w.writerow([species[r["species"]],
                        *(f"{(float(r[v]) - span[k][0]) / (span[k][1] - span[k][0]):.6f}" for k, v in keys.items())])
    return path


def transform(examples, schema, root: Path, **params):
    graph = types.TransformGraph(str(root / "transform_graph"))
    out = types.Examples(str(root / "transformed_examples"))
    run_transform(examples, schema, graph, out, tmp_dir=str(root / "tmp"), **params)
    return graph, out


def parsed(graph: types.TransformGraph, out: types.Examples, split: str) -> dict[str, Any]:
    """The transformed examples of one split, parsed with the transformed feature spec."""
    output = tft.TFTransformOutput(graph.uri)
    files = _data.examples_files(out, split)
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    features = tf.io.parse_example(records, output.transformed_feature_spec())
    return {k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
            for k, v in features.items()}


def test_real_penguins_with_missing_values_and_categories(penguins, tmp_path):
    examples, schema = penguins
    graph, out = transform(examples, schema, tmp_path, module_file=PENGUIN_MODULE)

    assert sorted(p.name for p in Path(graph.uri).iterdir()) == ["metadata", "transform_fn", "transformed_metadata"]
    assert (Path(graph.uri) / "transform_fn" / "saved_model.pb").is_file()
    assert (Path(graph.uri) / "transformed_metadata" / "schema.pbtxt").is_file()
    output = tft.TFTransformOutput(graph.uri)
    assert set(output.raw_feature_spec()) == {f.name for f in _data.read_schema(schema).feature}
    assert sorted(output.vocabulary_by_name("island")) == [b"Biscoe", b"Dream", b"Torgersen"]
    assert sorted(output.vocabulary_by_name("sex")) == [b"female", b"male", b"missing"]
    assert output.vocabulary_size_by_name("species") == 3

    assert json.loads(out.properties["split_names"]) == ["train", "eval"]
    assert out.properties["span"] == examples.properties["span"]
    assert out.custom_properties["num_examples"] == examples.custom_properties["num_examples"]
    for split in ("train", "eval"):
        assert [Path(f).name for f in _data.examples_files(out, split)] == ["data_tfrecord-00000-of-00001.gz"]

    train = parsed(graph, out, "train")
    evals = parsed(graph, out, "eval")
    assert set(train) == {"bill_length_mm_xf", "bill_depth_mm_xf", "flipper_length_mm_xf", "body_mass_g_xf",
                          "island_xf", "sex_xf", "species_xf"}
    n_train = examples.custom_properties["num_examples"]["train"]
    assert train["body_mass_g_xf"].shape == (n_train, 1)
    # Analysed on train only: train z-scores have mean 0 (missing values filled with that mean) and std ~1.
    raw_train = _data.read_examples(examples, "train").to_pylist()
    present = np.array([r["body_mass_g"] is not None for r in raw_train])
    mass = train["body_mass_g_xf"][:, 0]
    assert abs(mass[present].mean()) < 1e-4 and abs(mass[present].std() - 1) < 1e-3
    assert (mass[~present] == 0.0).all() and (~present).sum() >= 1
    assert abs(evals["body_mass_g_xf"].mean()) > 1e-4  # eval used the train statistics
    assert set(np.unique(train["species_xf"])) == {0, 1, 2}
    missing_sex = np.array([r["sex"] is None for r in raw_train])
    sex_vocab = output.vocabulary_by_name("sex")
    assert set(train["sex_xf"][missing_sex, 0]) == {sex_vocab.index(b"missing")}


def test_tfx_penguin_preprocessing_fn_runs_unchanged(tmp_path):
    tfx_layout_csv(tmp_path / "data" / "penguins_processed.csv")
    examples, schema = ingest(tmp_path / "ingest", input_base=str(tmp_path / "data"))
    graph, out = transform(examples, schema, tmp_path / "t", module_file=TFX_MODULE)
    train = parsed(graph, out, "train")
    assert sorted(train) == ["body_mass_g_xf", "culmen_depth_mm_xf", "culmen_length_mm_xf",
                             "flipper_length_mm_xf", "species_xf"]
    assert abs(train["culmen_length_mm_xf"].mean()) < 1e-4
    assert set(np.unique(train["species_xf"])) == {0, 1, 2}
    assert train["species_xf"].dtype == np.int64


def test_dotted_names(penguins, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(DATA))
    examples, schema = penguins
    by_function, out1 = transform(examples, schema, tmp_path / "a",
                                  preprocessing_fn="penguin_preprocessing.preprocessing_fn")
    by_module, out2 = transform(examples, schema, tmp_path / "b", module_file="penguin_preprocessing")
    a, b = parsed(by_function, out1, "eval"), parsed(by_module, out2, "eval")
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k], b[k], atol=1e-5), (k, a[k][:5], b[k][:5])
    sys.modules.pop("penguin_preprocessing", None)


def test_local_and_beam_engines_agree(penguins, tmp_path):
    examples, schema = penguins
    g1, local = transform(examples, schema, tmp_path / "l", module_file=PENGUIN_MODULE, engine="local")
    g2, beam = transform(examples, schema, tmp_path / "b", module_file=PENGUIN_MODULE, engine="beam")
    assert local.custom_properties["engine"] == "local" and beam.custom_properties["engine"] == "beam"
    assert beam.custom_properties["num_examples"] == local.custom_properties["num_examples"]
    assert local.custom_properties["num_examples"] == examples.custom_properties["num_examples"]
    for split in ("train", "eval"):
        a, b = parsed(g1, local, split), parsed(g2, beam, split)
        order_a = np.lexsort([a[k][:, 0] for k in sorted(a)])
        order_b = np.lexsort([b[k][:, 0] for k in sorted(b)])
        assert a.keys() == b.keys()
        for k in a:
            assert np.allclose(a[k][order_a], b[k][order_b], atol=1e-5), k


def test_unknown_feature_names_the_feature_the_module_and_the_fix(penguins, tmp_path):
    examples, schema = penguins
    with pytest.raises(UserCodeError, match=r"preprocessing_fn in .*bad_preprocessing\.py reads feature "
                                            r"'culmen_length_mm', which is not in the schema .*schema\.pbtxt "
                                            r"\(features: species, island, bill_length_mm, .*\)\. Fix the feature "
                                            r"name in preprocessing_fn, or ingest data that has this column"):
        transform(examples, schema, tmp_path, module_file=BAD_MODULE)


def test_user_exception_is_the_users(penguins, tmp_path):
    from headwater.components.executor import _UserCodeFailure

    examples, schema = penguins
    with pytest.raises(_UserCodeFailure, match=r"preprocessing_fn in .*bad_preprocessing\.py") as info:
        transform(examples, schema, tmp_path, module_file=BAD_MODULE, preprocessing_fn="raises")
    assert isinstance(info.value.original, ValueError)
    assert str(info.value.original) == "the scaling table is not ready"


def test_bad_references(penguins, tmp_path):
    examples, schema = penguins
    with pytest.raises(UserCodeError, match=r"module file '.*nowhere\.py' does not exist .*; pass an existing "
                                            r"\.py path"):
        transform(examples, schema, tmp_path / "a", module_file=str(tmp_path / "nowhere.py"))
    with pytest.raises(UserCodeError, match=r"defines no function 'preprocess'; define it there or name the "
                                            r"right one \(functions defined in it: preprocessing_fn, raises\)"):
        transform(examples, schema, tmp_path / "b", module_file=BAD_MODULE, preprocessing_fn="preprocess")
    with pytest.raises(UserCodeError, match=r"cannot import module 'no_such_pkg\.features'"):
        transform(examples, schema, tmp_path / "c", preprocessing_fn="no_such_pkg.features.preprocessing_fn")
    with pytest.raises(InputDataError, match=r"Transform: Examples artifact .* has no split 'test' \(it has "
                                             r"\['eval', 'train'\]\); set Transform's analyze_splits"):
        transform(examples, schema, tmp_path / "d", module_file=PENGUIN_MODULE, analyze_splits=["test"])


def test_ingest_and_transform_in_a_pipeline(tmp_path):
    from headwater.metadata import connect
    from headwater.pipelines import LocalRunner, Pipeline

    _data.penguins_csv(tmp_path / "data" / "penguins.csv")
    ingest_node = Ingest(input_base=str(tmp_path / "data"), label="species")
    good = Transform(examples=ingest_node.outputs.examples, schema=ingest_node.outputs.schema,
                     module_file=PENGUIN_MODULE)
    bad = Transform(examples=ingest_node.outputs.examples, schema=ingest_node.outputs.schema,
                    module_file=BAD_MODULE, preprocessing_fn="raises").with_id("BadTransform")
    pipeline = Pipeline(name="penguin-data", root=str(tmp_path / "root"), nodes=[ingest_node, good, bad])
    result = LocalRunner(quiet=True).run(pipeline)
    assert result.nodes["Transform"].state == "done", result.nodes["Transform"].error
    failed = result.nodes["BadTransform"]
    assert failed.state == "failed"
    assert "preprocessing_fn in" in failed.error and "the scaling table is not ready" in failed.error
    [graph] = result.outputs("Transform", "transform_graph")
    [out] = result.outputs("Transform", "transformed_examples")
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    [stored] = store.get_artifacts([out.id])
    assert stored.properties["split_names"] == '["train", "eval"]'
    assert tft.TFTransformOutput(graph.uri).vocabulary_size_by_name("species") == 3
    again = LocalRunner(quiet=True).run(Pipeline(name="penguin-data", root=str(tmp_path / "root"),
                                                 nodes=[ingest_node, good]))
    assert {n.state for n in again.nodes.values()} == {"cached"}


# ------------------------------------------------------------------------------------- span windows
MEASUREMENTS = ["bill_depth_mm", "bill_length_mm", "body_mass_g", "flipper_length_mm"]


@pytest.fixture(scope="module")
def yearly(tmp_path_factory):
    """The real data one year per span (2007 → span 1, 2008 → span 2), each span ingested on its own."""
    root = tmp_path_factory.mktemp("yearly")
    spans = []
    for span, year in ((1, 2007), (2, 2008)):
        _data.penguins_csv(root / "data" / f"penguins-{span}.csv", years=[year])
        spans.append(ingest(root / f"ingest-{span}", input_base=str(root / "data"), pattern="penguins-{SPAN}.csv",
                            span=span, label="species"))
    return spans


@pytest.fixture(scope="module")
def window(yearly, tmp_path_factory):
    """Transform over the window [span 1, span 2] with span 2's schema (local engine)."""
    (first, _), (second, schema) = yearly
    return transform([first, second], schema, tmp_path_factory.mktemp("window"), module_file=PENGUIN_MODULE)


def test_a_span_window_is_analysed_together_and_written_as_one_artifact(yearly, window):
    (first, _), (second, _) = yearly
    graph, out = window
    assert out.properties["span"] == 2 and out.properties["version"] == second.properties["version"]
    assert out.custom_properties["spans"] == [1, 2]
    assert json.loads(out.properties["split_names"]) == ["train", "eval"]
    counts = {s: first.custom_properties["num_examples"][s] + second.custom_properties["num_examples"][s]
              for s in ("train", "eval")}
    assert out.custom_properties["num_examples"] == counts
    for split in ("train", "eval"):
        assert [Path(f).name for f in _data.examples_files(out, split)] == ["data_tfrecord-00000-of-00001.gz"]

    # Analysed over the train splits of both spans: the z-scores use the mean and deviation of both, and
    # every split of every span (in window order) is transformed with them.
    def raw(split: str, key: str) -> Any:
        rows = [*_data.read_examples(first, split).to_pylist(), *_data.read_examples(second, split).to_pylist()]
        return np.array([np.nan if r[key] is None else r[key][0] for r in rows], dtype=np.float64)

    train_mass = raw("train", "body_mass_g")
    mean, std = np.nanmean(train_mass), np.nanstd(train_mass)
    for split in ("train", "eval"):
        mass = raw(split, "body_mass_g")
        got = parsed(graph, out, split)["body_mass_g_xf"][:, 0]
        assert got.shape == (counts[split],)
        expected = np.where(np.isnan(mass), 0.0, (mass - mean) / std)
        assert np.allclose(got, expected, atol=1e-4), split
    newest_only = train_mass[first.custom_properties["num_examples"]["train"]:]
    assert abs(np.nanmean(newest_only) - mean) > 1  # not the statistics of the newest span alone

    output = tft.TFTransformOutput(graph.uri)
    assert sorted(output.vocabulary_by_name("island")) == [b"Biscoe", b"Dream", b"Torgersen"]
    assert sorted(output.vocabulary_by_name("sex")) == [b"female", b"male", b"missing"]


def test_a_window_reads_features_that_an_older_span_misses_as_optional(yearly, window):
    """2008 has no missing measurement, so span 2's schema makes them dense; 2007 misses one of each."""
    _, (second, schema) = yearly
    graph, out = window
    strict = {f.name for f in _data.read_schema(schema).feature if f.HasField("shape")}
    assert set(MEASUREMENTS) <= strict
    assert out.custom_properties["optional_in_window"] == MEASUREMENTS
    spec = tft.TFTransformOutput(graph.uri).raw_feature_spec()  # what serving signatures parse with
    for name in MEASUREMENTS:
        assert isinstance(spec[name], tf.io.VarLenFeature), name
    assert isinstance(spec["island"], tf.io.FixedLenFeature)  # present in every example of both spans
    # One span alone keeps its schema as it is.
    single, alone = transform(second, schema, Path(out.uri).parent / "alone", module_file=PENGUIN_MODULE)
    assert "optional_in_window" not in alone.custom_properties and alone.custom_properties["spans"] == [2]
    assert isinstance(tft.TFTransformOutput(single.uri).raw_feature_spec()["body_mass_g"], tf.io.FixedLenFeature)


def test_window_local_and_beam_engines_agree(yearly, window, tmp_path):
    (first, _), (second, schema) = yearly
    g1, local = window
    g2, beam = transform([first, second], schema, tmp_path, module_file=PENGUIN_MODULE, engine="beam")
    assert beam.custom_properties["num_examples"] == local.custom_properties["num_examples"]
    assert beam.custom_properties["spans"] == [1, 2] and beam.properties["span"] == 2
    for split in ("train", "eval"):
        a, b = parsed(g1, local, split), parsed(g2, beam, split)
        order_a = np.lexsort([a[k][:, 0] for k in sorted(a)])
        order_b = np.lexsort([b[k][:, 0] for k in sorted(b)])
        for k in a:
            assert np.allclose(a[k][order_a], b[k][order_b], atol=1e-5), k


def test_window_mistakes_name_the_span_and_the_fix(yearly, tmp_path):
    (first, _), (_, schema) = yearly
    with pytest.raises(InputDataError, match=r"Transform: input 'examples' holds no Examples artifact; connect "
                                             r"Ingest's examples or a SpanRange window"):
        transform([], schema, tmp_path / "a", module_file=PENGUIN_MODULE)
    _data.penguins_csv(tmp_path / "data" / "penguins-3.csv", years=[2009])
    third, _ = ingest(tmp_path / "ingest-3", input_base=str(tmp_path / "data"), pattern="penguins-{SPAN}.csv",
                      label="species", split_ratios={"train": 2, "eval": 1, "test": 1})
    with pytest.raises(InputDataError, match=r"Transform: Examples artifact .*ingest-1.* \(span 1\) has no "
                                             r"split 'test' \(it has \['eval', 'train'\]\); set Transform's "
                                             r"transform_splits"):
        transform([third, first], schema, tmp_path / "b", module_file=PENGUIN_MODULE)


def test_beam_dofn_spec_cache_is_exact_and_restored():
    beam: Any = pytest.importorskip("apache_beam")
    from apache_beam.coders import VarIntCoder
    from apache_beam.testing.util import assert_that, equal_to
    from apache_beam.transforms import userstate

    class Count(beam.DoFn):
        SEEN = userstate.ReadModifyWriteStateSpec("seen", VarIntCoder())

        def process(self, element, seen=beam.DoFn.StateParam(SEEN)):
            total = (seen.read() or 0) + 1
            seen.write(total)
            yield element[0], total

    class Plain(beam.DoFn):
        def process(self, element):
            yield element

    original = userstate.get_dofn_specs
    with _data.beam_dofn_spec_cache():
        assert userstate.get_dofn_specs is not original
        for _ in range(2):  # the second answer comes from the cache
            assert userstate.is_stateful_dofn(Count()) and not userstate.is_stateful_dofn(Plain())
        assert userstate.get_dofn_specs(Count()) == original(Count())
        with _data.beam_dofn_spec_cache():  # nested: no second layer
            assert userstate.get_dofn_specs is not original
        with beam.Pipeline() as p:
            out = p | beam.Create([("a", 1), ("a", 2), ("b", 3)]) | beam.ParDo(Count())
            assert_that(out, equal_to([("a", 1), ("a", 2), ("b", 1)]))
    assert userstate.get_dofn_specs is original
