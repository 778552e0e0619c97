"""InfraValidate: real SavedModels loaded and queried in a sandboxed process with time and memory limits;
verdicts in words; "not blessed" kept apart from "the validator failed"; Push gated on it twice."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from headwater.components.infra_validate import (
    INFRA_BLESSED_FILE,
    INFRA_NOT_BLESSED_FILE,
    InfraValidate,
    validate_model,
)
from headwater.components.push import Push, infra_blessing_verdict, push_model
from headwater.metadata import types
from headwater.metadata.errors import ExecutionError, PushRefusedError

pytestmark = pytest.mark.ml


def run(root: Path, nodes, name: str = "infra"):
    from headwater.pipelines import LocalRunner, Pipeline

    pipeline = Pipeline(name=name, root=str(root), nodes=list(nodes))
    return LocalRunner(quiet=True).run(pipeline)


def only(result, node: str, key: str):
    (artifact,) = result.nodes[node].outputs[key]
    return artifact


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """One pipeline run: five models through InfraValidate (sandboxed), plus Push gated on two of them."""
    import hw_gate_components as gate
    import hw_serving_components as s

    root = tmp_path_factory.mktemp("infra-root")
    serving = root / "serving"
    examples = s.examples_x().with_id("examples")
    nodes = [examples]
    for kind in ("regressor", "multi", "nosig", "corrupt", "hog"):
        model = s.saved_model(kind=kind).with_id(f"model_{kind}")
        infra = InfraValidate(model=model.outputs.model, examples=examples.outputs.examples,
                              timeout_seconds=240, memory_limit_mb=1200).with_id(f"infra_{kind}")
        nodes += [model, infra]
        if kind in ("regressor", "nosig"):
            blessed = gate.bless(model=model.outputs.model, score=1.0).with_id(f"bless_{kind}")
            push = Push(model=model.outputs.model, blessing=blessed.outputs.blessing,
                        infra_blessing=infra.outputs.blessing, destination=str(serving)).with_id(f"push_{kind}")
            nodes += [blessed, push]
    only_load = s.saved_model(kind="regressor").with_id("model_load_only")
    nodes += [only_load, InfraValidate(model=only_load.outputs.model).with_id("infra_load_only")]
    result = run(root, nodes)
    return result, serving


def verdict(result, kind: str):
    blessing = only(result, f"infra_{kind}", "blessing")
    folder = Path(blessing.uri)
    report = json.loads((folder / "infra_validation.json").read_text())
    return blessing, folder, report


def test_a_servable_model_is_blessed_after_real_queries(verdicts):
    result, _ = verdicts
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    for kind, inputs in (("regressor", "x"), ("multi", "tag, x")):
        blessing, folder, report = verdict(result, kind)
        assert isinstance(blessing, types.InfraBlessing)
        assert blessing.custom_properties["blessed"] == 1
        assert (folder / INFRA_BLESSED_FILE).exists() and not (folder / INFRA_NOT_BLESSED_FILE).exists()
        assert blessing.custom_properties["infra_validation_mode"] == "LOAD_AND_QUERY"
        assert re.match(r"BLESSED \(LOAD_AND_QUERY\): the model loaded and answered :predict on 4 examples for "
                        r"signature\(s\) serving_default \(limits: 240 s \(timeout_seconds\), 1200 MB",
                        blessing.custom_properties["blessing_message"]), blessing.custom_properties
        assert report["queries"][0]["examples"] == 4, inputs
    load_only = only(result, "infra_load_only", "blessing")
    assert load_only.custom_properties["blessed"] == 1
    assert load_only.custom_properties["infra_validation_mode"] == "LOAD_ONLY"
    assert json.loads((Path(load_only.uri) / "infra_validation.json").read_text())["queries"] == []


@pytest.mark.parametrize(("kind", "stage", "message"), [
    ("nosig", "load", r"NOT BLESSED \(LOAD_AND_QUERY\): the SavedModel at .* has no serving signature"),
    ("corrupt", "load", r"NOT BLESSED \(LOAD_AND_QUERY\): cannot read .*saved_model\.pb"),
    ("hog", "query", r"NOT BLESSED \(LOAD_AND_QUERY\): a :predict request of 4 examples to signature "
                     r"'serving_default' failed \(HTTP 503\): OOM when allocating tensor.*; it ran out of memory "
                     r"under memory_limit_mb=1200"),
])
def test_a_model_that_cannot_be_served_is_not_blessed_and_says_why(verdicts, kind, stage, message):
    result, _ = verdicts
    assert result.nodes[f"infra_{kind}"].state == "done"  # a verdict, not a failed validator
    blessing, folder, report = verdict(result, kind)
    assert blessing.custom_properties["blessed"] == 0
    assert (folder / INFRA_NOT_BLESSED_FILE).exists() and not (folder / INFRA_BLESSED_FILE).exists()
    assert report["stage"] == stage
    assert re.match(message, blessing.custom_properties["blessing_message"]), blessing.custom_properties
    assert (folder / "infra_validation.log").exists()


def test_push_is_skipped_by_the_runner_when_the_infra_blessing_is_not_blessed(verdicts):
    result, serving = verdicts
    assert result.nodes["push_nosig"].state == "skipped"
    pushed = only(result, "push_nosig", "pushed_model")
    assert pushed.custom_properties["pushed"] == 0
    assert pushed.custom_properties["push_skipped"].startswith("model not infra-blessed (blessed=0): NOT BLESSED")
    # The servable model went through both gates: exactly one version, and it is that model.
    assert result.nodes["push_regressor"].state == "done"
    assert sorted(p.name for p in serving.iterdir() if not p.name.startswith(".")) == ["1"]


def test_push_executor_refuses_a_not_blessed_or_foreign_infra_blessing(verdicts, tmp_path):
    result, _ = verdicts
    model = only(result, "model_nosig", "model")
    blessing = only(result, "bless_nosig", "blessing")
    infra = only(result, "infra_nosig", "blessing")
    with pytest.raises(PushRefusedError, match=r"refusing to push model .*: the infra blessing at .* holds "
                       r"INFRA_NOT_BLESSED: NOT BLESSED \(LOAD_AND_QUERY\): the SavedModel .* has no serving "
                       r"signature.*only a model that InfraValidate blessed is pushed"):
        push_model(model, blessing, str(tmp_path / "dest"), infra_blessing=infra)
    # A blessed InfraBlessing of another model does not let this one through either.
    good_infra = only(result, "infra_regressor", "blessing")
    ok, why = infra_blessing_verdict(good_infra, model)
    assert not ok and re.search(r"is for model id \d+, not \d+", why)
    with pytest.raises(PushRefusedError, match="connect Push's infra_blessing to the InfraValidate node"):
        push_model(model, blessing, str(tmp_path / "dest"), infra_blessing=good_infra)
    # A marker file removed behind MLMD's back: the executor's own re-reading catches it.
    copy = tmp_path / "infra-copy"
    shutil.copytree(good_infra.uri, copy)
    (copy / INFRA_BLESSED_FILE).unlink()
    tampered = types.InfraBlessing(str(copy), custom_properties=dict(good_infra.custom_properties))
    regressor = only(result, "model_regressor", "model")
    with pytest.raises(PushRefusedError, match="holds no INFRA_BLESSED file"):
        push_model(regressor, only(result, "bless_regressor", "blessing"), str(tmp_path / "dest"),
                   infra_blessing=tampered)
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def test_a_missing_signature_is_not_blessed(tmp_path):
    import savedmodels

    model_dir = savedmodels.multi_input(tmp_path / "m")
    out = validate_model(str(model_dir), mode="LOAD_ONLY", records=[], signature_names=["predict_raw"],
                         timeout_seconds=240, memory_limit_mb=1200, work_dir=tmp_path)
    assert out["blessed"] is False and out["stage"] == "signature"
    assert out["message"] == ("NOT BLESSED (LOAD_ONLY): the model has no signature 'predict_raw' "
                              "(its signatures: serving_default)")


def test_the_time_limit_kills_the_sandbox_and_says_which_limit(tmp_path):
    import savedmodels

    model_dir = savedmodels.multi_input(tmp_path / "m")
    work = tmp_path / "work"
    work.mkdir()
    # Two seconds do not even import TensorFlow: the validator could not do its job (no verdict).
    with pytest.raises(ExecutionError, match=r"InfraValidate itself failed \(no verdict on the model\): the sandbox "
                       r"was still (starting|importing TensorFlow) after timeout_seconds=2; raise timeout_seconds"):
        validate_model(str(model_dir), mode="LOAD_ONLY", records=[], signature_names=[],
                       timeout_seconds=2, memory_limit_mb=1200, work_dir=work)
    # The whole process group was killed: nothing runs with our spec file any more.
    spec = str(work / "probe_spec.json").encode()
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and spec in _cmdline(p)]
    assert alive == []


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_the_validator_failing_is_not_a_verdict(tmp_path):
    import savedmodels

    model_dir = savedmodels.multi_input(tmp_path / "m")
    # 100 MB cannot hold TensorFlow: the import dies (or, on some machines, stalls until the time limit).
    with pytest.raises(ExecutionError, match=r"InfraValidate itself failed \(no verdict on the model\): the "
                       r"sandbox (process (exited with code|was killed by signal) -?\d+ while importing TensorFlow: "
                       r".*memory_limit_mb=100 .*raise memory_limit_mb|was still importing TensorFlow after "
                       r"timeout_seconds=90; raise timeout_seconds)"):
        validate_model(str(model_dir), mode="LOAD_ONLY", records=[], signature_names=[],
                       timeout_seconds=90, memory_limit_mb=100, work_dir=tmp_path)


def test_bad_parameters_and_missing_examples_fail_the_node_with_the_fix(tmp_path):
    import hw_serving_components as s

    model = s.saved_model(kind="multi").with_id("model")
    no_examples = InfraValidate(model=model.outputs.model, mode="LOAD_AND_QUERY").with_id("no_examples")
    bad_mode = InfraValidate(model=model.outputs.model, mode="QUERY").with_id("bad_mode")
    result = run(tmp_path, [model, no_examples, bad_mode], name="infra_bad")
    assert result.nodes["no_examples"].state == "failed"
    assert "mode='LOAD_AND_QUERY' needs examples=; wire an Examples channel" in result.nodes["no_examples"].error
    assert "mode='QUERY' is not one of LOAD_ONLY, LOAD_AND_QUERY" in result.nodes["bad_mode"].error
    assert not result.nodes["bad_mode"].outputs.get("blessing")
