"""Small components used by the tests (module level, so worker processes can import them)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from headwater.components import ExecutionContext, Input, Output, ResolverContext, component, resolver
from headwater.metadata import types


@component
def produce(data: Output[types.Examples], seconds: float = 0.0, value: str = "x") -> None:
    """Write one file after sleeping ``seconds``."""
    if seconds:
        time.sleep(seconds)
    (Path(data.path) / "data.txt").write_text(value)
    data.properties["span"] = 1
    data.custom_properties["value"] = value


@component
def rendezvous(out: Output[types.Examples], here: str, other: str, timeout: float = 120.0) -> None:
    """Announce ``here`` and wait for ``other``: succeeds only when both run at the same time."""
    Path(here).write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not Path(other).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{other} never appeared: the two nodes did not run at the same time")
        time.sleep(0.02)


@component
def noop(out: Output[types.Examples]) -> None:
    """Does nothing at all (framework overhead benchmarks)."""


@component
def join(a: Input[types.Examples], b: Input[types.Examples], out: Output[types.Model]) -> None:
    text = Path(a.path, "data.txt").read_text() + Path(b.path, "data.txt").read_text()
    (Path(out.path) / "model.txt").write_text(text)
    out.custom_properties["joined"] = text


@component
def consume(examples: Input[types.Examples], model: Output[types.Model], note: str = "") -> None:
    (Path(model.path) / "model.txt").write_text(Path(examples.path, "data.txt").read_text() + note)


@component
def maybe(examples: Input[types.Examples], model: Output[types.Model],
          schema: Input[types.Schema] | None = None) -> None:
    model.custom_properties["had_schema"] = schema is not None


@component
def fail(examples: Input[types.Examples], model: Output[types.Model], message: str = "boom") -> None:
    print("about to fail")
    raise ValueError(message)


@component
def fail_if_file(examples: Input[types.Examples], model: Output[types.Model], flag: str = "") -> None:
    """Fails while ``flag`` exists (resume tests remove it between runs)."""
    if flag and os.path.exists(flag):
        raise RuntimeError(f"flag {flag} is present")
    (Path(model.path) / "model.txt").write_text("ok")


@component
def flaky(out: Output[types.Examples], counter: str = "", failures: int = 1) -> None:
    """Fails ``failures`` times (counted in the ``counter`` file), then succeeds."""
    n = int(Path(counter).read_text()) if os.path.exists(counter) else 0
    Path(counter).write_text(str(n + 1))
    if n < failures:
        raise RuntimeError(f"attempt {n + 1} fails")


@component
def sleeper(out: Output[types.Examples], seconds: float = 1.0, marker: str = "", seconds_file: str = "") -> None:
    """Sleep; ``seconds_file`` (read at run time, so not part of the cache key) overrides ``seconds``."""
    if marker:
        Path(marker).write_text(str(os.getpid()))
    if seconds_file and os.path.exists(seconds_file):
        seconds = float(Path(seconds_file).read_text())
    (Path(out.path) / "partial.txt").write_text("partial")
    time.sleep(seconds)


@component
def describe(out: Output[types.Examples], ctx: ExecutionContext, values: list[int] | None = None,
             options: dict[str, float] | None = None, flag: bool = False) -> None:
    (Path(out.path) / "ctx.json").write_text(json.dumps(
        {"node": ctx.node_id, "run": ctx.run_id, "execution": ctx.execution_id, "values": values,
         "options": options, "flag": flag}))


@component
def no_output_dir(out: Output[types.Examples]) -> None:
    import shutil

    shutil.rmtree(out.path)


@component
def die(out: Output[types.Examples]) -> None:
    os._exit(3)


@component
def use_model(model: Input[types.Model], out: Output[types.Examples]) -> None:
    (Path(out.path) / "data.txt").write_text("from model")


@resolver(outputs={"examples": types.Examples})
def all_produced(ctx: ResolverContext, node: str = "a") -> dict:
    """Every LIVE Examples artifact the node ``node`` ever produced in this pipeline."""
    execs = ctx.store.executions_in_context("node", f"{ctx.pipeline_name}.{node}")
    events = ctx.store.events_by_execution([e.id for e in execs])
    ids = sorted({aid for evs in events.values() for kind, _, _, aid in evs if kind == "OUTPUT"})
    return {"examples": ctx.store.get_artifacts(ids)}


@component
def count_examples(examples: Input[list[types.Examples]], out: Output[types.Model]) -> None:
    out.custom_properties["count"] = len(examples)


@component
def examples_of_span(examples: Output[types.Examples], span: int = 1) -> None:
    """One span of examples (an ingest stand-in for retraining-per-span pipelines)."""
    (Path(examples.path) / "data.txt").write_text(f"span {span}")
    examples.properties["span"] = span
    examples.properties["split_names"] = '["train", "eval"]'


@component
def train_on(examples: Input[types.Examples], model: Output[types.Model]) -> None:
    """A "model" in the serving layout Push copies (Format-Serving/saved_model.pb)."""
    serving = Path(model.path, "Format-Serving")
    serving.mkdir()
    (serving / "saved_model.pb").write_text(Path(examples.path, "data.txt").read_text())


@component
def evaluate_against(examples: Input[types.Examples], model: Input[types.Model],
                     blessing: Output[types.ModelBlessing], baseline_model: Input[types.Model] | None = None,
                     blessed: int = 1) -> None:
    """Bless (or not) ``model``, recording the baseline it was compared with, as Evaluate does."""
    Path(blessing.path, "BLESSED" if blessed else "NOT_BLESSED").write_text("")
    blessing.custom_properties.update({"blessed": blessed, "current_model_id": model.id or 0,
                                       "current_model": model.uri})
    if baseline_model is not None:
        blessing.custom_properties.update({"baseline_model_id": baseline_model.id or 0,
                                           "baseline_model": baseline_model.uri})


@component
def logs_via_handler(out: Output[types.Examples], message: str = "hello") -> None:
    """Logs through a handler bound to ``sys.stderr`` on first use, as TensorFlow's and absl's loggers do."""
    import logging
    import sys

    logger = logging.getLogger("hw_bound_handler")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logger.info("bound handler says %s", message)


@component
def list_splits(examples: Input[types.Examples], model: Output[types.Model]) -> None:
    """Stands in for training on split Examples: records which splits it was given."""
    splits = sorted(p.name for p in Path(examples.path).iterdir() if p.name.startswith("Split-"))
    (Path(model.path) / "splits.txt").write_text("\n".join(splits))


@component
def publish(model: Input[types.Model], pushed: Output[types.PushedModel]) -> None:
    """Stands in for Push: records a push of the model."""
    pushed.custom_properties["pushed"] = 1


@component
def pushed_record(pushed_model: Output[types.PushedModel], destination: str, version: int = 1, pushed: int = 1,
                  reason: str = "") -> None:
    """The PushedModel record Push writes (``destination/version`` already holds the model): what a step after
    Push reads, without training a model first."""
    from headwater.metadata.conventions import A_PUSH_SKIPPED, A_PUSHED, A_PUSHED_DESTINATION, A_PUSHED_VERSION

    pushed_model.custom_properties[A_PUSHED] = pushed
    if pushed:
        pushed_model.custom_properties[A_PUSHED_DESTINATION] = f"{destination}/{version}"
        pushed_model.custom_properties[A_PUSHED_VERSION] = str(version)
    else:
        pushed_model.custom_properties[A_PUSH_SKIPPED] = reason
