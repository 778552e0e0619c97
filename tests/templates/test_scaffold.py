"""``headwater template list|copy``: what is listed, what is written, and every refusal (pinned messages)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from headwater.metadata.errors import HeadwaterError, PipelineDefinitionError
from headwater.pipelines import Pipeline
from headwater.pipelines.cli import main
from headwater.templates import PIPELINE_NAME_RE, TemplateError, copy_template, list_templates, scaffold

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_list_names_and_one_line_descriptions():
    found = {t.name: t for t in list_templates()}
    assert sorted(found) == ["babyweight", "hello", "penguin"]
    assert found["penguin"].description.startswith("multi-class classification of the real Palmer penguins data")
    assert found["babyweight"].description.startswith("birth-weight regression")
    assert found["hello"].description == "the smallest headwater pipeline: two producers in parallel and a join"
    for t in found.values():
        assert "\n" not in t.description and t.pipeline_name == t.name


def test_cli_list(capsys):
    assert main(["template", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["babyweight", "hello", "penguin"]
    assert "Palmer penguins" in lines[2]
    assert main(["template", "list", "--format", "json"]) == 0
    assert '"name": "penguin"' in capsys.readouterr().out


@pytest.mark.parametrize("name", ["penguin", "babyweight"])
def test_copy_writes_a_ready_project(tmp_path, name):
    dest = tmp_path / "proj"
    result = copy_template(name, dest)
    assert result.dest == dest.resolve() and result.pipeline_name == name and not result.overwritten
    files = set(result.files)
    for required in ("pipeline.py", "README.md", "pyproject.toml", ".gitignore", ".dockerignore", "Dockerfile",
                     "models/features.py", "models/preprocessing.py", "models/model.py", "configs/training.yaml",
                     "configs/evaluation.yaml", "tests/conftest.py"):
        assert required in files, required
    assert any(f.startswith("data/") and f.endswith(".csv") for f in files)
    assert any(f.startswith("tests/test_") for f in files)
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert on_disk == files
    assert not any(part in ("runs", "serving", "__pycache__") for f in files for part in f.split("/"))
    assert (dest / "pipeline.py").read_bytes() == (TEMPLATES / name / "pipeline.py").read_bytes()
    readme = (dest / "README.md").read_text()
    for command in ("headwater run pipeline.py", "--runner kubernetes", "--namespace", "--image",
                    "headwater compile pipeline.py --target kfp -o pipeline.yaml", "python -m pytest"):
        assert command in readme, command


def test_penguin_ships_the_real_data_unchanged(tmp_path):
    palmerpenguins = pytest.importorskip("palmerpenguins")
    copy_template("penguin", tmp_path / "p")
    original = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
    assert (tmp_path / "p" / "data" / "penguins.csv").read_bytes() == original.read_bytes()
    assert "CC0" in (tmp_path / "p" / "README.md").read_text()
    assert "CC0" in (tmp_path / "p" / "data" / "README.md").read_text()


def test_babyweight_says_its_data_is_synthetic(tmp_path):
    copy_template("babyweight", tmp_path / "b")
    readme = (tmp_path / "b" / "README.md").read_text()
    assert "The data is synthetic" in readme and "data/generate.py" in readme
    assert "THE DATA IS SYNTHETIC" in (tmp_path / "b" / "data" / "generate.py").read_text()


def test_pipeline_name_is_substituted_and_the_pipeline_loads_with_it(tmp_path):
    from headwater.pipelines.loader import load_pipeline

    result = copy_template("hello", tmp_path / "h", pipeline_name="my-hello_2")
    assert result.pipeline_name == "my-hello_2"
    assert 'PIPELINE_NAME = "my-hello_2"' in (tmp_path / "h" / "pipeline.py").read_text()
    pipeline = load_pipeline(tmp_path / "h" / "pipeline.py")
    assert pipeline.name == "my-hello_2"
    assert Path(pipeline.root) == (tmp_path / "h" / "runs").resolve()


def test_every_template_declares_its_name_where_copy_sets_it():
    for t in list_templates():
        text = (TEMPLATES / t.name / "pipeline.py").read_text()
        assert scaffold._NAME_LINE_RE.search(text), t.name
        assert "name=PIPELINE_NAME" in text, t.name


def test_refuses_to_overwrite_and_lists_every_conflict(tmp_path):
    dest = tmp_path / "p"
    copy_template("penguin", dest)
    (dest / "models" / "model.py").write_text("# my changes\n")
    with pytest.raises(TemplateError, match=r"^\d+ file\(s\) of template 'penguin' already exist in .*/p: "
                                             r"\.dockerignore, \.gitignore, Dockerfile, .* and \d+ more; nothing was "
                                             r"written\. Copy into a new folder, or pass --force \(force=True\) to "
                                             r"overwrite them$"):
        copy_template("penguin", dest)
    assert (dest / "models" / "model.py").read_text() == "# my changes\n"

    result = copy_template("penguin", dest, force=True)
    assert "models/model.py" in result.overwritten
    assert (dest / "models" / "model.py").read_bytes() == (TEMPLATES / "penguin" / "models" / "model.py").read_bytes()


def test_one_existing_file_is_enough_to_refuse_and_nothing_is_written(tmp_path):
    dest = tmp_path / "p"
    (dest / "data").mkdir(parents=True)
    (dest / "data" / "penguins.csv").write_text("mine\n")
    with pytest.raises(TemplateError, match=r"^1 file\(s\) of template 'penguin' already exist in .*: "
                                             r"data/penguins\.csv; nothing was written"):
        copy_template("penguin", dest)
    assert sorted(p.name for p in dest.rglob("*")) == ["data", "penguins.csv"]


@pytest.mark.parametrize("bad", ["", "1penguins", "-x", "_x", "my penguins", "a/b", "../x", "..", "/etc",
                                 "x" * 64, "name.py", "näme"])
def test_invalid_pipeline_names_are_refused(tmp_path, bad):
    with pytest.raises(TemplateError, match=r"^pipeline name .* is invalid: use 1-63 letters, digits, '_' or '-', "
                                             r"starting with a letter \(e\.g\. --pipeline-name my_penguins\)$"):
        copy_template("hello", tmp_path / "h", pipeline_name=bad)
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize("name", ["ok", "A", "a-b_c", "x" * 63, "Penguin2"])
def test_pipeline_name_rule_is_the_pipelines_rule(name):
    assert PIPELINE_NAME_RE.match(name)
    Pipeline(name=name, root="r", nodes=[])


@pytest.mark.parametrize("name", ["1x", "x" * 64, "a/b", "a.b", ""])
def test_names_the_rule_rejects_pipelines_reject_too(name):
    assert not PIPELINE_NAME_RE.match(name)
    with pytest.raises(PipelineDefinitionError, match="is invalid"):
        Pipeline(name=name, root="r", nodes=[])


@pytest.mark.parametrize("bad", ["nope", "../templates", "..", "/etc", "penguin/../hello", "penguin/", "PENGUIN",
                                 "hello/pipeline.py", "__pycache__", "scaffold.py", ""])
def test_unknown_or_tricky_template_names_are_refused(tmp_path, bad):
    with pytest.raises(TemplateError, match=r"^no template named .*; choose one of: babyweight, hello, penguin "
                                             r"\(see 'headwater template list'\)$"):
        copy_template(bad, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_destination_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(TemplateError, match=r"destination .*/file exists and is not a folder"):
        copy_template("hello", target)


def test_a_link_inside_dest_leading_outside_is_not_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "models").symlink_to(outside, target_is_directory=True)
    with pytest.raises(TemplateError, match=r"p/models is a symbolic link to .*/outside, outside .*/p; copying would "
                                             r"write there\. Remove the link or choose another destination"):
        copy_template("penguin", dest, force=True)
    assert list(outside.iterdir()) == []
    assert not (dest / "pipeline.py").exists()  # checked before anything was written


def test_a_file_link_leading_outside_is_refused_even_with_force(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("keep me\n")
    dest = tmp_path / "h"
    dest.mkdir()
    (dest / "pipeline.py").symlink_to(secret)
    with pytest.raises(TemplateError, match=r"h/pipeline\.py is a symbolic link to .*secret\.txt, outside"):
        copy_template("hello", dest, force=True)
    assert secret.read_text() == "keep me\n"


def test_links_that_stay_inside_dest_are_fine_and_force_replaces_the_link_not_its_target(tmp_path):
    dest = tmp_path / "h"
    (dest / "real").mkdir(parents=True)
    (dest / "real" / "kept.py").write_text("mine\n")
    (dest / "pipeline.py").symlink_to(dest / "real" / "kept.py")
    copy_template("hello", dest, force=True)
    assert not (dest / "pipeline.py").is_symlink()
    assert (dest / "real" / "kept.py").read_text() == "mine\n"
    assert "PIPELINE_NAME" in (dest / "pipeline.py").read_text()


def test_dest_given_through_a_link_is_used_as_its_target(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    result = copy_template("hello", tmp_path / "alias")
    assert result.dest == real and (real / "pipeline.py").is_file()


def test_a_file_where_the_template_needs_a_folder_is_refused(tmp_path):
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "models").write_text("not a folder")
    with pytest.raises(TemplateError, match=r"p/models is a file, but the template needs a folder there"):
        copy_template("penguin", dest)


def _fake_template(root: Path) -> Path:
    """A template folder with what runs, editors and tests leave behind, and a link to a secret."""
    t = root / "demo"
    (t / "models").mkdir(parents=True)
    (t / "pipeline.py").write_text('"""demo — a fake template for tests."""\nPIPELINE_NAME = "demo"\n')
    (t / "models" / "m.py").write_text("x = 1\n")
    (t / "gitignore").write_text("runs/\n")
    for junk in ("runs/metadata.sqlite", "serving/1/saved_model.pb", "models/__pycache__/m.cpython-311.pyc",
                 ".headwater/metadata", ".pytest_cache/v", "stray.pyc"):
        (t / junk).parent.mkdir(parents=True, exist_ok=True)
        (t / junk).write_text("junk")
    (root / "secret.txt").write_text("secret")
    (t / "models" / "link.txt").symlink_to(root / "secret.txt")
    return t


def test_run_outputs_caches_and_links_in_the_source_are_not_copied(tmp_path, monkeypatch):
    source = tmp_path / "source"
    _fake_template(source)
    monkeypatch.setattr(scaffold, "_root", lambda: source)
    assert [t.name for t in list_templates()] == ["demo"]
    result = copy_template("demo", tmp_path / "out", pipeline_name="renamed")
    assert result.files == (".gitignore", "models/m.py", "pipeline.py")
    assert 'PIPELINE_NAME = "renamed"' in (tmp_path / "out" / "pipeline.py").read_text()


def test_cli_copy_success_refusal_and_force(tmp_path, capsys):
    dest = tmp_path / "proj"
    assert main(["template", "copy", "hello", str(dest), "--pipeline-name", "greetings"]) == 0
    out = capsys.readouterr().out
    assert "wrote 1 files of template 'hello' (pipeline 'greetings')" in out and "headwater run pipeline.py" in out
    assert main(["template", "copy", "hello", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("headwater: error: 1 file(s) of template 'hello' already exist in ")
    assert "pass --force" in err
    assert main(["template", "copy", "hello", str(dest), "--force"]) == 0
    assert "(1 overwritten)" in capsys.readouterr().out
    assert 'PIPELINE_NAME = "hello"' in (dest / "pipeline.py").read_text()
    assert main(["template", "copy", "hello", str(tmp_path / "x"), "--pipeline-name", "9lives"]) == 2
    assert "pipeline name '9lives' is invalid" in capsys.readouterr().err
    assert main(["template", "copy", "../x", str(tmp_path / "y")]) == 2
    assert "no template named '../x'" in capsys.readouterr().err


def test_template_error_is_a_headwater_error():
    assert issubclass(TemplateError, HeadwaterError) and issubclass(TemplateError, ValueError)


def test_copy_never_leaves_files_outside_dest(tmp_path):
    before = set(os.listdir(tmp_path))
    copy_template("babyweight", tmp_path / "deep" / "er" / "proj", pipeline_name="bw")
    assert set(os.listdir(tmp_path)) == before | {"deep"}


def test_copy_into_a_full_folder_is_a_clear_error_and_leaves_nothing(tmp_path, tmpfs, capsys):
    disk = tmpfs(64)  # far smaller than the penguin template
    with pytest.raises(TemplateError, match=r"cannot write the template into .*proj: No space left on device.*"
                                            r"nothing was written"):
        copy_template("penguin", disk / "proj")
    assert list(disk.iterdir()) == []
    (disk / "existing").mkdir()
    (disk / "existing" / "mine.txt").write_text("keep")
    assert main(["template", "copy", "penguin", str(disk / "existing")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in (disk / "existing").iterdir()) == ["mine.txt"]


def test_copy_into_a_read_only_folder_is_a_clear_error(tmp_path, tmpfs, capsys):
    disk = tmpfs(1024, ro=True)
    assert main(["template", "copy", "hello", str(disk / "proj")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the template into" in err and "Read-only file system" in err and "Traceback" not in err
    assert list(disk.iterdir()) == []
