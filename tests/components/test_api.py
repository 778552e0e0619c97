"""Declaration errors are raised at definition time and name the function and argument."""

import sys

import hw_test_components as c
import pytest
from headwater.components import Input, Output, Param, component
from headwater.metadata import types
from headwater.metadata.errors import ComponentDefinitionError


def test_signature_is_read_from_annotations():
    @component
    def train(examples: Input[types.Examples], model: Output[types.Model], steps: int = 10,
              schema: Input[types.Schema] | None = None, tags: list[str] | None = None) -> None: ...

    spec = train.spec
    assert set(spec.inputs) == {"examples", "schema"}
    assert spec.inputs["schema"].optional and not spec.inputs["examples"].optional
    assert spec.outputs["model"].type is types.Model
    assert spec.parameters["steps"].default == 10
    node = train(examples=None, steps=Param("steps", default=5))
    assert node.id == "train" and node.outputs.model.type is types.Model


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x, out: Output[types.Model]) -> None: ...",
         r"component 'f' \(.*\): argument 'x' has no type annotation"),
        ("def f(x: set, out: Output[types.Model]) -> None: ...",
         r"parameter 'x' has unsupported type set"),
        ("def f(x: types.Examples, out: Output[types.Model]) -> None: ...",
         r"argument 'x' is annotated with the artifact type Examples directly; write Input\[Examples\]"),
        ("def f(x: Input[int], out: Output[types.Model]) -> None: ...",
         r"argument 'x': Input\[...\] takes an artifact type"),
        ("def f(x: Input[types.Examples]) -> None: ...", r"declares no Output"),
        ("def f(out: Output[types.Model]) -> int: ...", r"returns int; components return None"),
        ("def f(out: Output[types.Model], n: int = 'a') -> None: ...",
         r"parameter 'n' defaults to 'a', which is not int"),
        ("def f(out: Output[types.Model] | None = None) -> None: ...", r"output 'out' cannot be optional"),
        ("def f(out: Output[types.Model], *rest: int) -> None: ...", r"\*args/\*\*kwargs are not allowed"),
    ],
)
def test_bad_declarations(source, message):
    namespace = {"Input": Input, "Output": Output, "types": types}
    exec(source, namespace)
    with pytest.raises(ComponentDefinitionError, match=message):
        component(namespace["f"])


def test_calling_with_unknown_argument_or_an_output():
    @component
    def f(examples: Input[types.Examples], model: Output[types.Model]) -> None: ...

    with pytest.raises(ComponentDefinitionError,
                       match=r"f\(\) got unknown argument\(s\) 'model'.*'model' is an output"):
        f(model=None)
    node = f()
    with pytest.raises(AttributeError, match=r"has no output 'nope'; its outputs are \['model'\]"):
        _ = node.outputs.nope


def test_node_options_are_copies():
    @component
    def f(model: Output[types.Model]) -> None: ...

    node = f()
    other = node.with_id("x").with_caching(False).with_retries(2).with_resources(cpu=2, memory="1Gi", gpu=1)
    assert node.id == "f" and node.caching and node.retries == 0
    assert other.id == "x" and not other.caching and other.retries == 2
    assert other.resources.cpu == "2" and other.resources.memory == "1Gi" and other.resources.gpu == 1


def test_a_script_component_has_the_same_identity_as_a_file_loaded_one() -> None:
    """``python pipeline.py`` defines components in ``__main__``; ``headwater run`` loads the same file as
    ``headwater_pipeline_<stem>_<hash>``: both record the component under its name alone."""
    from headwater.components._loader import is_script_module, module_name_for

    def join(a: Input[types.Examples], out: Output[types.Model]) -> None: ...

    names = {}
    for module in ("__main__", module_name_for(__file__), "mypkg.components"):
        join.__module__ = module
        names[module] = component(join).spec.qualified_name
    assert names == {"__main__": "join", module_name_for(__file__): "join", "mypkg.components": "mypkg.components.join"}
    assert is_script_module("__main__") and not is_script_module("mypkg.components")


def test_unknown_argument_names_the_call_site_and_suggests_the_close_name():
    with pytest.raises(ComponentDefinitionError,
                       match=r"test_api\.py:\d+: consume\(\) got unknown argument\(s\) 'nots'; it takes inputs "
                             r"\['examples'\] and parameters \['note'\]; did you mean 'note'\?"):
        c.consume(nots="x")


def test_unknown_runtime_parameter_suggests_the_close_name(tmp_path):
    from headwater.components.errors import ParameterError
    from headwater.pipelines import Param, Pipeline

    greeting = Param("greeting", default="x")
    line = sys._getframe().f_lineno - 1
    assert greeting == Param("greeting", default="x")  # where it is declared is not part of its identity
    p = Pipeline(name="p", root=str(tmp_path), nodes=[c.produce(value=greeting).with_id("a")])
    with pytest.raises(ParameterError, match=r"unknown runtime parameter\(s\) greting for pipeline 'p'; it "
                                             r"declares: greeting; did you mean 'greeting' \(declared at "
                                             rf".*test_api\.py:{line}\)\?"):
        p.resolve_params({"greting": "y"})
