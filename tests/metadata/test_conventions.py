"""The MLMD names headwater writes and reads live in one module, and the states are enums."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from headwater.metadata import conventions
from headwater.metadata.conventions import EXECUTION_PROPERTIES, ExecutionState, NodeState, RunStatus

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("components", "pipelines", "metadata", "templates")
DUNDER = re.compile(r"^__[a-z][a-z0-9_]*[a-z0-9]__$")
# Names Python itself gives meaning to (module, class and function attributes, the cache folder): never MLMD.
PYTHON_DUNDERS = {
    *dir(object), *dir(type), *dir(lambda: None), *dir(ast), "__main__", "__pycache__", "__slots__",
    "__all__", "__path__", "__file__", "__version__", "__wrapped__",
}


def _package_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO)
            # template data and the template projects' own code are data copied to users, not package code
            if rel.parts[0] == "templates" and len(rel.parts) > 2:
                continue
            files.append(path)
    return files


def _property_literals(path: Path, root: Path = REPO) -> list[str]:
    """``file:line "literal"`` for every string literal shaped like an MLMD property name ``__…__``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if value in EXECUTION_PROPERTIES or (DUNDER.match(value) and value not in PYTHON_DUNDERS):
                found.append(f"{path.relative_to(root)}:{node.lineno} {value!r}")
    return found


def test_property_names_are_spelled_only_in_conventions():
    files = _package_files()
    assert REPO / "pipelines" / "launcher.py" in files and REPO / "templates" / "scaffold.py" in files
    offending = [hit for f in files if f.name != "conventions.py" or f.parent.name != "metadata"
                 for hit in _property_literals(f)]
    assert offending == [], (
        "MLMD property names must come from headwater.metadata.conventions (import the P_* constant):\n"
        + "\n".join(offending)
    )


def test_the_scan_catches_a_literal_property_name(tmp_path):
    # The rule has teeth: a file that spells a property name is reported; dunder methods are not.
    sample = tmp_path / "sample.py"
    sample.write_text('class A:\n    def __init__(self):\n        self.__dict__["x"] = 1\n\n'
                      'def f(p):\n    return p.get("__node_id__"), p["__some_new_prop__"], A.__name__, "__init__"\n')
    hits = _property_literals(sample, tmp_path)
    assert hits == ["sample.py:6 '__node_id__'", "sample.py:6 '__some_new_prop__'"]


def test_every_property_constant_is_listed_and_dunder_shaped():
    constants = {v for k, v in vars(conventions).items() if k.startswith("P_") and DUNDER.match(v)}
    assert constants == EXECUTION_PROPERTIES
    assert all(name in conventions.__all__ for name in vars(conventions) if name.startswith("P_"))


def test_states_are_enums_that_print_and_serialise_as_before():
    assert ExecutionState.FAILED == 4 and ExecutionState(5) is ExecutionState.CACHED
    assert ExecutionState.NAMES[ExecutionState.CANCELED] == "CANCELED"
    assert ExecutionState.COMPLETE in ExecutionState.SUCCESS and ExecutionState.FAILED not in ExecutionState.SUCCESS
    assert [s.name for s in ExecutionState] == list(ExecutionState.NAMES)
    # str-valued: text and JSON output stay what they were when these were plain strings
    assert f"{NodeState.DONE:<6}|" == "done  |" and str(RunStatus.SUCCEEDED) == "succeeded"
    assert json.dumps({"state": NodeState.BLOCKED, "status": RunStatus.CANCELED}) == (
        '{"state": "blocked", "status": "canceled"}'
    )
    assert NodeState.NOT_RUN == "not_run"


def test_old_import_paths_still_work():
    from headwater.metadata import ExecutionState as from_package
    from headwater.metadata.store import CONTEXT_CACHE, CONTEXT_RUN, OUTPUT_EVENTS
    from headwater.metadata.store import ExecutionState as from_store
    from headwater.pipelines.launcher import P_ERROR, P_NODE

    assert from_package is from_store is ExecutionState
    assert (CONTEXT_CACHE, CONTEXT_RUN, OUTPUT_EVENTS) == (
        conventions.CONTEXT_CACHE, conventions.CONTEXT_RUN, conventions.OUTPUT_EVENTS)
    assert (P_ERROR, P_NODE) == ("__error__", "__node_id__")
