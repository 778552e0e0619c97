"""One exception tree: each class in its layer, the whole tree from headwater.pipelines.errors, structured
fields next to the message, old import paths still working, and failed nodes' error details kept."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import headwater.components.errors
import headwater.metadata.errors
import headwater.pipelines.errors
import headwater.templates.errors
import hw_test_components as c
import pytest
from headwater.components import component
from headwater.components.api import Output
from headwater.metadata import types
from headwater.pipelines import LocalRunner, Param, Pipeline
from headwater.pipelines.errors import (
    ComponentDefinitionError,
    HeadwaterError,
    ParameterError,
    PipelineLoadError,
)

LAYERS = {
    headwater.metadata.errors: {"HeadwaterError", "MetadataError", "MetadataWriteError", "ArtifactNotFoundError",
                                "ArtifactPropertyError", "StorageError"},
    headwater.components.errors: {"ComponentDefinitionError", "ParameterError", "ExecutionError", "UserCodeError",
                                  "ExecutorContractError", "InputDataError", "PushRefusedError", "RunnerError"},
    headwater.pipelines.errors: {"PipelineDefinitionError", "PipelineLoadError"},
    headwater.templates.errors: {"TemplateError"},
}


def test_each_error_lives_in_its_layer_and_the_whole_tree_is_in_one_place():
    everything = set()
    for module, names in LAYERS.items():
        defined = {n for n, v in vars(module).items()
                   if inspect.isclass(v) and issubclass(v, Exception) and v.__module__ == module.__name__}
        assert defined == names, module.__name__
        everything |= names
    assert set(headwater.pipelines.errors.__all__) == everything
    for name in everything:
        cls = getattr(headwater.pipelines.errors, name)
        assert issubclass(cls, HeadwaterError)
        # every class is drawn in the tree of the root module's docstring
        assert f" {name} " in headwater.metadata.errors.__doc__


def test_old_import_paths_keep_working():
    from headwater.metadata.errors import ParameterError as old_param
    from headwater.metadata.errors import PipelineDefinitionError as old_pipeline
    from headwater.metadata.errors import TemplateError as old_template
    from headwater.templates import TemplateError

    assert old_param is ParameterError and old_template is TemplateError
    assert old_pipeline is headwater.pipelines.errors.PipelineDefinitionError
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchError'"):
        _ = headwater.metadata.errors.NoSuchError


def test_structured_fields_next_to_an_unchanged_message(tmp_path):
    with pytest.raises(ComponentDefinitionError, match=r"argument 'x' has no type annotation") as info:
        @component
        def bad(out: Output[types.Examples], x) -> None: ...
    assert info.value.file == __file__ and info.value.line == bad_line(info.value)
    assert info.value.fields() == {"file": __file__, "line": info.value.line}

    p = Pipeline(name="fields", root=str(tmp_path), nodes=[c.produce(seconds=Param("delay", default=0.0))])
    with pytest.raises(ParameterError, match=r"runtime parameter 'delay' expects float, got 'soon'") as info:
        p.resolve_params({"delay": "soon"})
    assert info.value.parameter == "delay"
    with pytest.raises(ParameterError, match="unknown runtime parameter") as info:
        p.resolve_params({"nope": 1})
    assert info.value.parameter == "nope"

    from headwater.pipelines.loader import load_pipeline

    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\ndef (:\n")
    with pytest.raises(PipelineLoadError, match="syntax error in pipeline file") as info:
        load_pipeline(broken)
    assert info.value.file == str(broken) and info.value.line == 2


def bad_line(exc: HeadwaterError) -> int:
    """The line of the ``def bad`` above (the decorated function's first line, its decorator)."""
    source = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(source, 1) if "@component" in text and "def bad" in source[i])


def test_run_result_and_runs_show_keep_the_failed_nodes_error_details(tmp_path, capsys):
    a = c.produce().with_id("a")
    bad = c.fail(examples=a.outputs.data, message="bad data").with_id("bad")
    result = LocalRunner(quiet=True).run(Pipeline(name="errs", root=str(tmp_path), nodes=[a, bad]))
    node = result.nodes["bad"]
    assert node.state == "failed" and node.error_type == "ValueError" and node.user_error is True
    assert node.traceback and "raise ValueError(message)" in node.traceback
    assert result.nodes["a"].error_type is None and result.nodes["a"].user_error is False

    from headwater.pipelines.cli import main

    assert main(["runs", "show", result.run_id, "--root", str(tmp_path), "--format", "json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    by_id = {n["node_id"]: n for n in shown["nodes"]}
    assert by_id["bad"]["error_type"] == "ValueError" and by_id["bad"]["user_error"] is True
    assert "raise ValueError(message)" in by_id["bad"]["traceback"]
    assert by_id["a"]["state"] == "complete" and by_id["a"]["error_type"] is None
