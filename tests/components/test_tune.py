"""Tune: a real KerasTuner search over real examples (Ingest), its outputs, and Train using the winner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from headwater.components.api import ExecutionContext
from headwater.metadata import types
from headwater.metadata.errors import InputDataError, ParameterError, UserCodeError

pytestmark = pytest.mark.ml

MODULE = str(Path(__file__).resolve().parent / "testdata" / "tune_module.py")


def _ctx(root: Path, node: str) -> ExecutionContext:
    tmp = root / "tmp" / node
    tmp.mkdir(parents=True, exist_ok=True)
    return ExecutionContext("tunetest", str(root), "run-1", node, 1, str(tmp))


def _artifact(cls: type, root: Path, name: str) -> types.Artifact:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return cls(str(path))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, types.Examples, types.Schema]:
    """300 rows of y = 3*x1 - 2*x2 + noise, through the real Ingest component."""
    import numpy as np
    from headwater.components.ingest import Ingest

    root = tmp_path_factory.mktemp("tune")
    data = root / "data"
    data.mkdir()
    rng = np.random.RandomState(0)
    x = rng.rand(300, 2)
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.1 * rng.randn(300)
    lines = ["x1,x2,y", *(f"{a:.5f},{b:.5f},{c:.5f}" for (a, b), c in zip(x, y, strict=True))]
    (data / "points.csv").write_text("\n".join(lines) + "\n")
    examples = _artifact(types.Examples, root, "examples")
    schema = _artifact(types.Schema, root, "schema")
    Ingest.fn(examples=examples, schema=schema, input_base=str(data), label="y", ctx=_ctx(root, "ingest"))
    return root, examples, schema


def _tune(root: Path, examples: types.Examples, schema: types.Schema, name: str, **params: object):
    from headwater.components.tune import Tune

    out = root / name
    best = _artifact(types.HyperParameters, out, "best_hyperparameters")
    results = _artifact(types.TunerResults, out, "tuner_results")
    Tune.fn(examples=[examples], schema=schema, best_hyperparameters=best, tuner_results=results,
            module_file=MODULE, **{"train_steps": 30, "eval_steps": 3, "seed": 1, **params},
            ctx=_ctx(out, "tune"))
    return best, results


def test_grid_search_records_every_trial_and_train_uses_the_best(ingested):
    import keras_tuner
    from headwater.components.train import Train

    root, examples, schema = ingested
    best, results = _tune(root, examples, schema, "grid", custom_config={"algorithm": "grid", "max_trials": 10})

    summary = json.loads((Path(results.uri) / "tuner_results.json").read_text())
    trials = summary["trials"]
    # A grid over 2 x 2 choices: every combination exactly once, each trained and scored.
    assert sorted((t["hyperparameters"]["hidden_units"], t["hyperparameters"]["learning_rate"]) for t in trials) == [
        (4, 0.001), (4, 0.03), (16, 0.001), (16, 0.03)]
    assert all(t["status"] == "COMPLETED" and t["score"] == t["metrics"]["val_loss"] for t in trials)
    assert all(t["seconds"] > 0 for t in trials)
    winner = min(trials, key=lambda t: t["score"])
    assert summary["objective"] == {"name": "val_loss", "direction": "min"}
    assert summary["best_trial_id"] == winner["trial_id"]
    # The trials differ for real: a slow learning rate for 30 steps loses to a fast one.
    assert winner["hyperparameters"]["learning_rate"] == 0.03
    assert max(t["score"] for t in trials) > 2 * winner["score"]

    # best_hyperparameters.txt is HyperParameters.get_config() JSON, as TFX's Tuner writes it.
    config = json.loads((Path(best.uri) / "best_hyperparameters.txt").read_text())
    assert keras_tuner.HyperParameters.from_config(config).values == winner["hyperparameters"]
    assert best.custom_properties["best_score"] == pytest.approx(winner["score"])
    assert best.custom_properties["values"] == winner["hyperparameters"]
    assert results.custom_properties["trials"] == 4 and results.custom_properties["completed_trials"] == 4
    assert results.custom_properties["objective"] == "val_loss"

    model = _artifact(types.Model, root / "train", "model")
    model_run = _artifact(types.ModelRun, root / "train", "model_run")
    Train.fn(examples=[examples], schema=schema, hyperparameters=best, model=model, model_run=model_run,
             module_file=MODULE, train_steps=20, eval_steps=2, seed=1, ctx=_ctx(root / "train", "train"))
    seen = json.loads((Path(model_run.uri) / "hyperparameters_seen.json").read_text())
    assert seen == winner["hyperparameters"]


def test_tfx_style_tuner_fn_with_a_keras3_model_building_tuner(ingested):
    root, examples, schema = ingested
    best, results = _tune(root, examples, schema, "keras3", tuner_fn="tuner_fn_keras3")
    summary = json.loads((Path(results.uri) / "tuner_results.json").read_text())
    assert summary["tuner"] == "RandomSearch" and len(summary["trials"]) == 2
    assert {t["status"] for t in summary["trials"]} == {"COMPLETED"}
    best_values = json.loads((Path(best.uri) / "best_hyperparameters.txt").read_text())["values"]
    assert best_values == min(summary["trials"], key=lambda t: t["score"])["hyperparameters"]


def test_seeded_search_is_reproducible(ingested):
    root, examples, schema = ingested
    first = _tune(root, examples, schema, "seed-a", custom_config={"algorithm": "random", "max_trials": 2})[1]
    second = _tune(root, examples, schema, "seed-b", custom_config={"algorithm": "random", "max_trials": 2})[1]

    def picks(results: types.TunerResults) -> list[dict[str, object]]:
        summary = json.loads((Path(results.uri) / "tuner_results.json").read_text())
        return [t["hyperparameters"] for t in summary["trials"]]

    assert picks(first) == picks(second)


def _failure(exc: BaseException) -> BaseException:
    """The user's exception behind the error boundary (``user_code`` wraps it), or ``exc`` itself."""
    return getattr(exc, "original", exc)


def test_tuner_fn_must_return_a_tuner_fn_result(ingested):
    root, examples, schema = ingested
    with pytest.raises(UserCodeError, match=r"broken_returns_tuner in .*tune_module.py returned _TrialTuner, not "
                                            r"TunerFnResult\(tuner=<a keras_tuner tuner>, fit_kwargs=\{...\}\)"):
        _tune(root, examples, schema, "wrong-type", tuner_fn="broken_returns_tuner")


def test_a_search_where_every_trial_fails_names_the_first_error(ingested):
    root, examples, schema = ingested
    with pytest.raises(UserCodeError, match=r"none of 2 trial\(s\) completed with a score; the first error "
                                            r"was:\n(.|\n)*ValueError: no good: 4"):
        _tune(root, examples, schema, "all-fail", tuner_fn="broken_trial")


def test_missing_split_and_bad_steps_are_refused_before_user_code(ingested):
    root, examples, schema = ingested
    with pytest.raises(InputDataError, match=r"node 'tune': Examples artifact .* has no split 'validation' \(it "
                                             r"has \['eval', 'train'\]\); set Tune's eval_splits"):
        _tune(root, examples, schema, "no-split", eval_splits=["validation"])
    with pytest.raises(InputDataError, match=r"train_steps is 0; give a positive number of steps per trial"):
        _tune(root, examples, schema, "zero-steps", train_steps=0)


def test_missing_tuner_fn_names_the_module_and_its_functions(ingested):
    root, examples, schema = ingested
    with pytest.raises(Exception) as info:
        _tune(root, examples, schema, "no-fn", tuner_fn="tuner_fn_typo")
    assert isinstance(_failure(info.value), UserCodeError)
    assert "defines no function 'tuner_fn_typo'" in str(info.value)
    assert "tuner_fn_keras3" in str(info.value)


def test_trial_tuner_checks_its_arguments(tmp_path):
    import keras_tuner
    from headwater.components.tune import trial_tuner

    space = keras_tuner.HyperParameters()
    space.Int("units", 1, 4)
    with pytest.raises(ParameterError, match=r"algorithm 'hyperband' is not one of \['random', 'grid', 'bayesian'\]"):
        trial_tuner(lambda hp: 0.0, hyperparameters=space, algorithm="hyperband", directory=tmp_path)
    with pytest.raises(ParameterError, match=r"max_trials is 0; give a positive integer"):
        trial_tuner(lambda hp: 0.0, hyperparameters=space, max_trials=0, directory=tmp_path)
    with pytest.raises(ParameterError, match=r"at least one hyperparameter declared"):
        trial_tuner(lambda hp: 0.0, hyperparameters=keras_tuner.HyperParameters(), directory=tmp_path)


def test_tune_in_a_pipeline_publishes_trials_to_metadata(ingested, tmp_path):
    """Ingest -> Tune -> Train through the local runner: outputs LIVE in MLMD with the search's properties."""
    from headwater.components.ingest import Ingest
    from headwater.components.train import Train
    from headwater.components.tune import Tune
    from headwater.metadata import connect
    from headwater.pipelines import LocalRunner, Pipeline

    data = ingested[0] / "data"
    ingest = Ingest(input_base=str(data), label="y")
    tune = Tune(examples=ingest.outputs.examples, schema=ingest.outputs.schema, module_file=MODULE,
                train_steps=20, eval_steps=2, seed=3, custom_config={"algorithm": "random", "max_trials": 2})
    train = Train(examples=ingest.outputs.examples, schema=ingest.outputs.schema, module_file=MODULE,
                  hyperparameters=tune.outputs.best_hyperparameters, train_steps=10, eval_steps=1)
    pipeline = Pipeline(name="tunepipe", root=str(tmp_path / "root"), nodes=[ingest, tune, train])
    result = LocalRunner(1, quiet=True).run(pipeline)
    assert result.ok, {k: (v.state, getattr(v, "error", None)) for k, v in result.nodes.items()}
    [best] = result.nodes["Tune"].outputs["best_hyperparameters"]
    [trials] = result.nodes["Tune"].outputs["tuner_results"]
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}", readonly=True)
    [stored] = store.mlmd.get_artifacts_by_id([best.id])
    assert store.mlmd.get_artifact_types_by_id([stored.type_id])[0].name == "HyperParameters"
    assert stored.custom_properties["trials"].int_value == 2
    assert stored.custom_properties["objective"].string_value == "val_loss"
    # MLMD 1.17 on SQLite keeps 6 significant digits of a double; tuner_results.json has them all.
    assert stored.custom_properties["best_score"].double_value == pytest.approx(
        best.custom_properties["best_score"], rel=1e-5)
    assert json.loads((Path(trials.uri) / "tuner_results.json").read_text())["best_trial_id"] == \
        best.custom_properties["best_trial_id"]
    [model_run] = result.nodes["Train"].outputs["model_run"]
    seen = json.loads((Path(model_run.uri) / "hyperparameters_seen.json").read_text())
    assert seen == best.custom_properties["values"]
    assert os.path.isdir(Path(best.uri))
