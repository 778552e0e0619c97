"""Code fingerprints cover what a module runs: its file and the local modules it imports (resolved with
ast, transitively), or its whole folder where imports cannot be known statically — said in the execution."""

from __future__ import annotations

import shutil
from pathlib import Path

import hw_code_components as cc
from headwater.components._fingerprint import code_fingerprint, fingerprint_code_ref
from headwater.metadata import connect
from headwater.pipelines import LocalRunner, Pipeline

TEMPLATE_MODELS = Path(__file__).resolve().parents[2] / "templates" / "penguin" / "models"


def test_penguin_template_modules_cover_their_own_imports_only(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(TEMPLATE_MODELS, models)
    (models / "unrelated.py").write_text("X = 1\n")
    model, prep = models / "model.py", models / "preprocessing.py"
    assert code_fingerprint(model).files == ("features.py", "model.py")
    assert code_fingerprint(prep).files == ("features.py", "preprocessing.py")
    before = {p: fingerprint_code_ref(str(p)) for p in (model, prep)}
    with model.open("a") as f:
        f.write("\n# tuned\n")
    assert fingerprint_code_ref(str(model)) != before[model] and fingerprint_code_ref(str(prep)) == before[prep]
    (models / "unrelated.py").write_text("X = 2\n")  # imported by neither
    middle = {p: fingerprint_code_ref(str(p)) for p in (model, prep)}
    with (models / "features.py").open("a") as f:
        f.write("\nEXTRA = 1\n")
    after = {p: fingerprint_code_ref(str(p)) for p in (model, prep)}
    assert middle[prep] == before[prep]  # the unrelated edit changed nothing
    assert after[model] != middle[model] and after[prep] != middle[prep]


def test_packages_relative_and_constant_dynamic_imports_are_followed(tmp_path):
    pkg = tmp_path / "proj" / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import deep\n")
    (pkg / "sub" / "deep.py").write_text("D = 1\n")
    (pkg / "helpers.py").write_text("import importlib\nimportlib.import_module('pkg.consts')\n")
    (pkg / "consts.py").write_text("C = 1\n")
    (pkg / "other.py").write_text("O = 1\n")
    (pkg / "mod.py").write_text("import os\nimport numpy\nfrom . import helpers\nfrom pkg.sub import deep\n")
    found = code_fingerprint(pkg / "mod.py")
    assert found.fallback == ""
    assert set(found.files) == {"mod.py", "helpers.py", "consts.py", "__init__.py", "sub/__init__.py",
                                "sub/deep.py"}
    assert "other.py" not in found.files


def test_computed_imports_fall_back_to_the_whole_folder_and_say_why(tmp_path):
    (tmp_path / "dyn.py").write_text("import importlib\nNAME = 'x'\nmod = importlib.import_module(NAME + 'y')\n")
    (tmp_path / "other.py").write_text("O = 1\n")
    found = code_fingerprint(tmp_path / "dyn.py")
    assert found.fallback == "dyn.py:3 calls import_module with a computed module name"
    assert found.files == ("dyn.py", "other.py")
    (tmp_path / "ex.py").write_text("exec(open('x').read())\n__import__(name)\n")
    assert code_fingerprint(tmp_path / "ex.py").fallback == (
        "ex.py:1 calls exec, which runs code the imports do not show; "
        "ex.py:2 calls __import__ with a computed module name")
    (tmp_path / "keras.py").write_text("def f(model):\n    model.compile(optimizer='adam')\n")
    assert code_fingerprint(tmp_path / "keras.py").fallback == ""  # a method named compile is not the built-in


def _project(root: Path) -> Path:
    models = root / "models"
    models.mkdir(parents=True)
    (models / "features.py").write_text("KEYS = ['a']\n")
    (models / "preprocessing.py").write_text("import features\n\ndef value():\n    return 'prep-' + features.KEYS[0]\n")
    (models / "model.py").write_text("import features\n\ndef value():\n    return 'model-' + features.KEYS[0]\n")
    return models


def _pipeline(root: Path, models: Path) -> Pipeline:
    transform = cc.use_module(module_file=str(models / "preprocessing.py")).with_id("transform")
    train = cc.use_module(module_file=str(models / "model.py"), after=transform.outputs.out).with_id("train")
    push = cc.use_module(module_file=str(models / "push.py"), after=train.outputs.out).with_id("push")
    return Pipeline(name="edits", root=str(root / "root"), nodes=[transform, train, push])


def _states(result) -> dict[str, str]:
    return {n: r.state for n, r in result.nodes.items()}


def test_edit_loop_reruns_only_what_uses_the_edited_module(tmp_path):
    models = _project(tmp_path)
    (models / "push.py").write_text("def value():\n    return 'push'\n")

    def run():
        return LocalRunner(quiet=True, keep_warm=False).run(_pipeline(tmp_path, models))

    assert _states(run()) == {"transform": "done", "train": "done", "push": "done"}
    with (models / "model.py").open("a") as f:
        f.write("# a change to the model only\n")
    # Train and what follows it re-run (push: its input changed); Transform is reused.
    assert _states(run()) == {"transform": "cached", "train": "done", "push": "done"}
    (models / "features.py").write_text("KEYS = ['b']\n")  # both import it
    edited = run()
    assert _states(edited) == {"transform": "done", "train": "done", "push": "done"}
    [value] = edited.outputs("train", "out")
    assert Path(value.uri, "value.txt").read_text() == "model-b"
    assert _states(run()) == {"transform": "cached", "train": "cached", "push": "cached"}


def test_fallback_reason_is_recorded_on_the_execution(tmp_path):
    models = _project(tmp_path)
    (models / "push.py").write_text("import importlib\n\ndef value():\n"
                                    "    return importlib.import_module('feat' + 'ures').KEYS[0]\n")
    result = LocalRunner(quiet=True, keep_warm=False).run(_pipeline(tmp_path, models))
    assert result.ok, result
    store = connect(f"sqlite:///{tmp_path / 'root' / 'metadata.sqlite'}")
    props = {n: store.get_execution(result.nodes[n].execution_id).properties for n in ("train", "push")}
    assert "__code_fingerprint_fallback__" not in props["train"]
    assert props["push"]["__code_fingerprint_fallback__"] == (
        "module_file: whole folder, as push.py:4 calls import_module with a computed module name")
    # The fallback covers the folder: editing a module nobody imports statically is a miss for push only.
    (models / "unused.py").write_text("U = 1\n")
    again = LocalRunner(quiet=True, keep_warm=False).run(_pipeline(tmp_path, models))
    assert _states(again) == {"transform": "cached", "train": "cached", "push": "done"}
