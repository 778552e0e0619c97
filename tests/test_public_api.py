"""The public API is exactly ``__all__``; importing headwater never imports the heavy ML stack."""

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINNED = Path(__file__).with_name("public_api.txt")
PACKAGES = ("components", "pipelines", "metadata", "templates")


def public_modules() -> list[str]:
    """Every module of the installed packages whose dotted name has no part starting with ``_``."""
    names = []
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder)
            if folder == "templates" and len(rel.parts) > 1:
                continue  # template projects are package data
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if not any(p.startswith("_") for p in parts):
                names.append(".".join(["headwater", folder, *parts]))
    return names


def pinned() -> dict[str, set[str]]:
    lines = [ln for ln in PINNED.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return {module: set(names.split()) for module, names in (ln.split(":", 1) for ln in lines)}


def current() -> dict[str, set[str]]:
    return {name: set(importlib.import_module(name).__all__) for name in public_modules()}


def test_every_public_module_exports_exactly_its_pinned_names():
    expected, actual = pinned(), current()
    assert sorted(actual) == sorted(expected), (
        f"public modules differ from {PINNED.name}: new {sorted(set(actual) - set(expected))}, "
        f"gone {sorted(set(expected) - set(actual))}"
    )
    for module, names in actual.items():
        extra, missing = sorted(names - expected[module]), sorted(expected[module] - names)
        assert not extra and not missing, f"{module}.__all__: added {extra}, removed {missing} ({PINNED.name})"


def test_every_exported_name_exists_and_all_has_no_duplicates():
    for name in public_modules():
        module = importlib.import_module(name)
        assert len(module.__all__) == len(set(module.__all__)), name
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.{attr} in __all__ but missing"


def test_one_node_name_per_meaning():
    import headwater.components
    import headwater.metadata.lineage as lineage

    assert "Node" in headwater.components.__all__ and "Node" not in lineage.__all__
    assert "LineageNode" in lineage.__all__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from headwater.metadata.lineage import Node
        from headwater.metadata.lineage.graph import Node as graph_node
    assert Node is graph_node is lineage.LineageNode
    assert caught and all(w.category is DeprecationWarning for w in caught)
    assert "use LineageNode" in str(caught[0].message)


def test_import_is_light():
    code = (
        "import sys, headwater.components, headwater.pipelines, headwater.metadata, headwater.templates\n"
        "print([m for m in ('tensorflow', 'apache_beam', 'tensorflow_model_analysis', 'tensorflow_transform',"
        " 'keras', 'pyarrow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_component_names_and_ports_keep_tfx_names():
    from headwater import components as c

    ports = {
        c.Ingest: ({"examples", "schema"}, set()),
        c.Transform: ({"transform_graph", "transformed_examples"}, {"examples", "schema"}),
        c.Train: ({"model", "model_run"}, {"examples", "transform_graph", "schema"}),
        c.Evaluate: ({"evaluation", "blessing"}, {"examples", "model", "baseline_model"}),
        c.Push: ({"pushed_model"}, {"model", "blessing"}),
        c.LatestBlessedModel: ({"model"}, set()),
    }
    for comp, (outputs, inputs) in ports.items():
        assert outputs <= set(comp.spec.outputs), comp
        assert inputs <= set(comp.spec.inputs), comp
    assert {"module_file", "train_steps", "eval_steps"} <= set(c.Train.spec.parameters)
    assert {"module_file"} <= set(c.Transform.spec.parameters)
    assert {"eval_config"} <= set(c.Evaluate.spec.parameters)
    assert {"destination"} <= set(c.Push.spec.parameters)


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    header = [ln for ln in PINNED.read_text().splitlines() if ln.startswith("#")]
    body = [f"{m}: {' '.join(sorted(names))}" for m, names in current().items()]
    PINNED.write_text("\n".join(header + body) + "\n")
    print(f"wrote {PINNED} ({len(body)} modules)")
