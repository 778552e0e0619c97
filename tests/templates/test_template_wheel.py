"""The templates ship in a built (non-editable) wheel as package data, without run outputs or caches."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_holds_every_template_file_and_no_run_leftovers(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    from headwater.pipelines.kubernetes.dockerfile import package_folders

    for folder in package_folders(REPO):  # every package folder pyproject maps
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # What running a template in the source tree leaves behind:
    for junk in ("templates/hello/runs/metadata.sqlite", "templates/penguin/serving/1/saved_model.pb",
                 "templates/penguin/models/__pycache__/model.cpython-311.pyc", "templates/babyweight/.headwater/x"):
        (src / junk).parent.mkdir(parents=True, exist_ok=True)
        (src / junk).write_text("junk")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                          str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    [wheel] = (tmp_path / "dist").glob("headwater-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        f"headwater/templates/{p.relative_to(REPO / 'templates').as_posix()}"
        for p in (REPO / "templates").rglob("*")
        if p.is_file() and not {"runs", "serving", ".headwater", "__pycache__", ".pytest_cache"} & set(
            p.relative_to(REPO / "templates").parts) and p.suffix != ".pyc"
    }
    assert expected <= names, sorted(expected - names)
    for needed in ("penguin/data/penguins.csv", "penguin/models/model.py", "babyweight/data/generate.py",
                   "babyweight/data/natality-2005.csv", "babyweight/tests/test_model.py", "hello/pipeline.py",
                   "penguin/gitignore", "py.typed"):
        assert f"headwater/templates/{needed}" in names, needed
    leftovers = [n for n in names if n.startswith("headwater/templates/") and (
        "/runs/" in n or "/serving/" in n or "/.headwater/" in n)] + [n for n in names if "__pycache__" in n]
    assert leftovers == []
