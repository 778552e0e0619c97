"""Pipeline validation reports every problem at once, each naming node, input or parameter and the fix."""

import hw_test_components as c
import pytest
from headwater.components import Param
from headwater.metadata.errors import ParameterError, PipelineDefinitionError
from headwater.pipelines import Pipeline


def problems_of(**kwargs):
    with pytest.raises(PipelineDefinitionError) as info:
        Pipeline(**kwargs)
    return info.value.problems


def test_valid_pipeline_and_order(tmp_path):
    a = c.produce().with_id("a")
    b = c.consume(examples=a.outputs.data).with_id("b")
    p = Pipeline(name="ok", root=str(tmp_path), nodes=[b, a])
    assert p.topological_order() == ["a", "b"]
    assert p.select(from_node="b") == ["b"] and p.select(to_node="a") == ["a"]


def test_every_problem_reported_at_once(tmp_path):
    a = c.produce().with_id("a")
    dup = c.produce().with_id("a")
    bad_id = c.produce().with_id("9bad")
    missing = c.consume().with_id("missing_input")
    wrong_type = c.join(a=a.outputs.data, b=c.consume(examples=a.outputs.data).with_id("m").outputs.model).with_id("wt")
    ghost = c.consume(examples=c.produce().with_id("ghost").outputs.data).with_id("needs_ghost")
    ill = c.produce(seconds="slow").with_id("ill")
    problems = problems_of(name="p", root=str(tmp_path), nodes=[a, dup, bad_id, missing, wrong_type, ghost, ill])
    text = "\n".join(problems)
    assert "duplicate node id 'a'" in text and "with .with_id('...')" in text
    assert "node id '9bad' is invalid" in text
    assert "node 'missing_input': required input 'examples' (Examples) is not connected" in text
    assert "node 'wt': input 'b' comes from node 'm', which is not in the pipeline" in text
    assert "node 'needs_ghost': input 'examples' comes from node 'ghost'" in text
    assert "node 'ill': parameter 'seconds' expects float, got str 'slow'" in text
    assert len(problems) == 6


def test_type_mismatch(tmp_path):
    a = c.produce().with_id("a")
    m = c.consume(examples=a.outputs.data).with_id("m")
    j = c.join(a=a.outputs.data, b=m.outputs.model).with_id("j")
    [problem] = problems_of(name="p", root=str(tmp_path), nodes=[a, m, j])
    assert problem == (
        "node 'j': input 'b' expects Examples but m.outputs.model is Model; connect an output of type Examples"
    )


def test_cycle(tmp_path):
    x = c.consume(examples=c.produce().with_id("y").outputs.data).with_id("x")
    y = c.consume(examples=x.outputs.model).with_id("y")
    problems = problems_of(name="p", root=str(tmp_path), nodes=[x, y])
    assert any("cycle between nodes: " in p for p in problems)


def test_name_and_runtime_parameters(tmp_path):
    a = c.produce(seconds=Param("delay", default=0.5)).with_id("a")
    b = c.produce(seconds=Param("delay", default=1.0)).with_id("b")
    d = c.produce(value=Param("v", default=3)).with_id("d")
    problems = problems_of(name="bad name", root=str(tmp_path), nodes=[a, b, d])
    text = "\n".join(problems)
    assert "pipeline name 'bad name' is invalid" in text
    assert "runtime parameter 'delay' is declared twice" in text
    assert "node 'd': parameter 'value' expects str but runtime parameter 'v' defaults to 3" in text


def test_locally_defined_component_rejected(tmp_path):
    from headwater.components import Output, component
    from headwater.metadata import types

    @component
    def local(out: Output[types.Examples]) -> None: ...

    [problem] = problems_of(name="p", root=str(tmp_path), nodes=[local()])
    assert "is defined inside a function; define components at module level" in problem


def test_param_overrides_checked(tmp_path):
    p = Pipeline(name="p", root=str(tmp_path), nodes=[c.produce(seconds=Param("delay", default=0.5))])
    assert p.resolve_params({"delay": "0.25"}) == {"delay": 0.25}
    with pytest.raises(ParameterError,
                       match="unknown runtime parameter\\(s\\) dealy for pipeline 'p'; it declares: delay"):
        p.resolve_params({"dealy": 1})
    with pytest.raises(ParameterError, match="runtime parameter 'delay' expects float, got 'fast'; pass e.g. 0.5"):
        p.resolve_params({"delay": "fast"})


def test_slice_errors(tmp_path):
    a = c.produce().with_id("a")
    b = c.produce().with_id("b")
    p = Pipeline(name="p", root=str(tmp_path), nodes=[a, b])
    with pytest.raises(PipelineDefinitionError, match="no node 'zz'; nodes are a, b"):
        p.select(from_node="zz")
    with pytest.raises(PipelineDefinitionError, match="select no node"):
        p.select(from_node="a", to_node="b")
