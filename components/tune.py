"""Tune: a small hyperparameter search with KerasTuner, run from a user ``tuner_fn(fn_args)`` (TFX's contract).

::

    tune = Tune(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        module_file="models/model.py",       # defines tuner_fn(fn_args) -> TunerFnResult
        train_steps=200,                     # per trial: short
        seed=7,
    )
    train = Train(..., hyperparameters=tune.outputs.best_hyperparameters, train_steps=2000)

``tuner_fn(fn_args)`` receives the same ``fn_args`` as ``run_fn`` (train/eval files, transform output,
schema, ``train_steps``/``eval_steps`` for each trial, ``custom_config``, ``seed``, and ``working_dir``
for the tuner's own files) and returns ``TunerFnResult(tuner, fit_kwargs)``: any KerasTuner tuner, whose
``search(**fit_kwargs)`` Tune runs. Two ways to write it:

* a TFX module's ``tuner_fn`` unchanged: ``keras_tuner.RandomSearch(build_model, objective=...)`` with a
  model-building function. KerasTuner 1.4 builds and fits **Keras 3** models (``import keras``) only;
* :func:`trial_tuner`: a search over a ``keras_tuner.HyperParameters`` space where each trial calls your
  function ``trial(hp) -> {"val_loss": ...}`` — the natural fit when ``run_fn`` builds a tf.keras (Keras 2)
  model, as Train's examples do: the trial trains that same model for a few steps and reports a metric.

Outputs, as TFX's Tuner writes them: ``best_hyperparameters`` holds ``best_hyperparameters.txt``, the
JSON of ``keras_tuner.HyperParameters.get_config()`` — what ``Train(hyperparameters=...)`` hands to
``run_fn`` as ``fn_args.hyperparameters`` (``fn_args.hyperparameters["values"]`` are the chosen values).
``tuner_results`` holds ``tuner_results.json``: the objective, and every trial with its status,
hyperparameter values, score, best step, metrics and error message. Custom properties record the best
score, the objective and trial counts, so ``headwater lineage`` shows them without opening files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from headwater.components import _keras, _runtime
from headwater.components._boundary import user_code
from headwater.components._data import examples_file_pattern, load_user_function, schema_path
from headwater.components._fn_args import FnArgs, make_data_accessor
from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.components.errors import InputDataError, ParameterError, UserCodeError
from headwater.metadata import types

__all__ = [
    "BEST_HYPERPARAMETERS_FILE",
    "TUNER_RESULTS_FILE",
    "Tune",
    "TunerFnResult",
    "trial_tuner",
]

#: TFX's file name for the best hyperparameters (JSON of ``HyperParameters.get_config()``).
BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"
#: Every trial of the search (JSON).
TUNER_RESULTS_FILE = "tuner_results.json"

_ALGORITHMS = ("random", "grid", "bayesian")


class TunerFnResult(NamedTuple):
    """What ``tuner_fn`` returns (TFX's ``TunerFnResult``): a KerasTuner tuner and ``search()``'s arguments."""

    tuner: Any
    fit_kwargs: dict[str, Any]


def trial_tuner(
    trial: Callable[[Any], float | Mapping[str, float]],
    *,
    hyperparameters: Any,
    objective: str | tuple[str, str] = ("val_loss", "min"),
    max_trials: int = 4,
    algorithm: str = "random",
    directory: str | os.PathLike[str],
    project_name: str = "tune",
    seed: int | None = None,
) -> Any:
    """A KerasTuner tuner whose trials call ``trial(hp)`` and score what it returns.

    ``hyperparameters`` is the search space (a ``keras_tuner.HyperParameters`` with ``hp.Int``,
    ``hp.Float``, ``hp.Choice`` … declared); ``trial(hp)`` trains with ``hp.values`` and returns the
    objective's value, or a dict of metrics that includes it. ``objective`` is a metric name (minimised
    when it ends in ``loss``/``error``, otherwise maximised, as KerasTuner infers) or ``(name, "min"|"max")``.
    ``algorithm`` is ``"random"`` (``max_trials`` random points), ``"grid"`` (every combination, up to
    ``max_trials``) or ``"bayesian"`` (Gaussian-process guided). ``seed`` makes the choice of points
    reproducible. Files go under ``directory`` (use ``fn_args.working_dir``).
    """
    import keras_tuner

    if algorithm not in _ALGORITHMS:
        raise ParameterError(f"trial_tuner: algorithm {algorithm!r} is not one of {list(_ALGORITHMS)}")
    if not isinstance(max_trials, int) or max_trials < 1:
        raise ParameterError(f"trial_tuner: max_trials is {max_trials!r}; give a positive integer")
    if not isinstance(hyperparameters, keras_tuner.HyperParameters) or not hyperparameters.space:
        raise ParameterError(
            "trial_tuner: hyperparameters must be a keras_tuner.HyperParameters with at least one "
            "hyperparameter declared (hp.Int / hp.Float / hp.Choice / hp.Boolean)"
        )
    goal = keras_tuner.Objective(*objective) if isinstance(objective, tuple) else objective
    oracle_cls = {
        "random": keras_tuner.oracles.RandomSearchOracle,
        "grid": keras_tuner.oracles.GridSearchOracle,
        "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
    }[algorithm]
    oracle = oracle_cls(objective=goal, max_trials=max_trials, hyperparameters=hyperparameters,
                        tune_new_entries=False, seed=seed)

    class _TrialTuner(keras_tuner.Tuner):
        def run_trial(self, trial_: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.time()
            result = trial(trial_.hyperparameters)
            self.trial_seconds[trial_.trial_id] = round(time.time() - started, 3)
            return dict(result) if isinstance(result, Mapping) else result

    tuner = _TrialTuner(oracle=oracle, directory=os.fspath(directory), project_name=project_name, overwrite=True)
    tuner.trial_seconds = {}
    return tuner


# ----------------------------------------------------------------------------------------- executor
def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _plain(value: Any) -> Any:
    """JSON-able hyperparameter values (numpy scalars become Python numbers)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def _trial_record(trial: Any, seconds: Mapping[str, float]) -> dict[str, Any]:
    metrics: dict[str, float | None] = {}
    for name in sorted(getattr(trial.metrics, "metrics", {}) or {}):
        metrics[name] = _number(trial.metrics.get_best_value(name))
    record = {
        "trial_id": str(trial.trial_id),
        "status": str(getattr(trial.status, "value", trial.status)),
        "hyperparameters": {k: _plain(v) for k, v in trial.hyperparameters.values.items()},
        "score": _number(trial.score),
        "best_step": int(trial.best_step or 0),
        "metrics": metrics,
    }
    if trial.trial_id in seconds:
        record["seconds"] = seconds[trial.trial_id]
    if trial.message:
        record["message"] = str(trial.message)[-2000:]
    return record


def _objective(tuner: Any) -> dict[str, Any]:
    objective = tuner.oracle.objective
    parts = getattr(objective, "objectives", None)
    if parts:  # MultiObjective: the score is a sum of the parts, signed so that lower is better
        return {"name": objective.name, "direction": "min",
                "parts": [{"name": o.name, "direction": o.direction} for o in parts]}
    return {"name": objective.name, "direction": objective.direction}


@component(code_params=("module_file",), version="1")
def Tune(
    *,
    examples: Input[list[types.Examples]],
    transform_graph: Input[types.TransformGraph] | None = None,
    schema: Input[types.Schema] | None = None,
    best_hyperparameters: Output[types.HyperParameters],
    tuner_results: Output[types.TunerResults],
    module_file: str,
    tuner_fn: str = "tuner_fn",
    train_steps: int | None = None,
    eval_steps: int | None = None,
    custom_config: dict[str, Any] | None = None,
    seed: int | None = None,
    train_splits: list[str] | None = None,
    eval_splits: list[str] | None = None,
    ctx: ExecutionContext,
) -> None:
    """Search hyperparameters with the KerasTuner tuner that ``tuner_fn(fn_args)`` in ``module_file`` builds.

    ``train_steps``/``eval_steps`` are per trial (keep them small: Train trains the winner for longer);
    ``seed`` seeds Python, NumPy and TensorFlow and is given to ``tuner_fn`` as ``fn_args.seed``.
    """
    started = time.time()
    node = f"node {ctx.node_id!r}"
    train_splits = list(train_splits or ["train"])
    eval_splits = list(eval_splits or ["eval"])
    if not examples:
        raise InputDataError(f"{node}: input 'examples' holds no Examples artifact; connect one")
    _runtime.check_splits(examples, train_splits, node=node, setting="Tune's train_splits")
    _runtime.check_splits(examples, eval_splits, node=node, setting="Tune's eval_splits")
    for name, steps in (("train_steps", train_steps), ("eval_steps", eval_steps)):
        if steps is not None and steps <= 0:
            raise InputDataError(f"{node}: {name} is {steps}; give a positive number of steps per trial (or None)")
    schema_file = schema_path(schema) if schema is not None else None
    if schema_file is not None and not os.path.isfile(schema_file):
        raise InputDataError(f"{node}: Schema artifact at {schema.uri if schema else ''} holds no "
                             f"{os.path.basename(schema_file)}; re-run the node that produced it")

    _keras.prefer_tf_keras()  # the same Keras as Train, so a trial trains the model run_fn trains
    fn = load_user_function(module_file, tuner_fn, what=f"{node} (Tune)", default_name="tuner_fn")
    _keras.skip_autograph_for_tf_keras()
    working_dir = os.path.join(ctx.tmp_dir, "tuner")
    os.makedirs(working_dir, exist_ok=True)
    fn_args = FnArgs(
        working_dir=working_dir,
        train_files=[examples_file_pattern(a.path, s) for a in examples for s in train_splits],
        eval_files=[examples_file_pattern(a.path, s) for a in examples for s in eval_splits],
        train_steps=train_steps,
        eval_steps=eval_steps,
        schema_path=schema_file,
        schema_file=schema_file,
        transform_graph_path=transform_graph.path if transform_graph is not None else None,
        transform_output=transform_graph.path if transform_graph is not None else None,
        data_accessor=make_data_accessor(),
        custom_config=dict(custom_config) if custom_config is not None else None,
        seed=seed,
    )
    if seed is not None:
        _runtime.set_seeds(seed)

    where = f"{node}: {tuner_fn} in {module_file}"
    with user_code(where):
        result = fn(fn_args)
    tuner = getattr(result, "tuner", None)
    fit_kwargs = getattr(result, "fit_kwargs", None)
    import keras_tuner

    if not isinstance(tuner, keras_tuner.engine.base_tuner.BaseTuner) or not isinstance(fit_kwargs, dict):
        raise UserCodeError(
            f"{where} returned {type(result).__name__}, not TunerFnResult(tuner=<a keras_tuner tuner>, "
            "fit_kwargs={...}); return headwater.components.tune.TunerFnResult(tuner, fit_kwargs), with a tuner "
            "such as keras_tuner.RandomSearch(...) or headwater.components.tune.trial_tuner(...)",
            node_id=ctx.node_id,
        )
    with user_code(f"{where}: tuner.search()"):
        tuner.search(**fit_kwargs)

    trials = [tuner.oracle.trials[k] for k in sorted(tuner.oracle.trials, key=lambda t: (len(str(t)), str(t)))]
    seconds = getattr(tuner, "trial_seconds", {}) or {}
    records = [_trial_record(t, seconds) for t in trials]
    completed = [r for r in records if r["status"] == "COMPLETED" and r["score"] is not None]
    if not completed:
        detail = next((r.get("message") for r in records if r.get("message")), "")
        raise UserCodeError(
            f"{where}: none of {len(records)} trial(s) completed with a score"
            + (f"; the first error was:\n{detail}" if detail else "; the search ran no trial (check max_trials)"),
            node_id=ctx.node_id,
        )
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = best_trial.hyperparameters
    objective = _objective(tuner)
    config = best.get_config()
    Path(best_hyperparameters.path, BEST_HYPERPARAMETERS_FILE).write_text(json.dumps(config))
    summary = {
        "objective": objective,
        "best_trial_id": str(best_trial.trial_id),
        "best_score": _number(best_trial.score),
        "best_hyperparameters": {k: _plain(v) for k, v in best.values.items()},
        "trials": records,
        "module_file": module_file,
        "tuner_fn": tuner_fn,
        "tuner": type(tuner).__name__,
        "train_steps_per_trial": train_steps,
        "eval_steps_per_trial": eval_steps,
        "seed": seed,
        "seconds": round(time.time() - started, 3),
    }
    Path(tuner_results.path, TUNER_RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    best_score = _number(best_trial.score)
    for art in (best_hyperparameters, tuner_results):
        art.custom_properties["objective"] = objective["name"]
        art.custom_properties["direction"] = objective["direction"]
        if best_score is not None:
            art.custom_properties["best_score"] = best_score
        art.custom_properties["trials"] = len(records)
        art.custom_properties["completed_trials"] = len(completed)
    best_hyperparameters.custom_properties["best_trial_id"] = str(best_trial.trial_id)
    best_hyperparameters.custom_properties["values"] = summary["best_hyperparameters"]
    print(f"{node}: best of {len(records)} trials: {objective['name']} = {best_score} with "
          f"{summary['best_hyperparameters']}")
