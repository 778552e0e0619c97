"""Every Python package folder is declared in pyproject.toml, so an installed wheel has it too."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"components": "headwater.components", "pipelines": "headwater.pipelines",
           "metadata": "headwater.metadata", "templates": "headwater.templates", "ui": "headwater.ui"}


def test_all_packages_declared():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if folder == "templates" and rel.parts:
                continue  # template projects are package data, not packages
            name = ".".join([package, *rel.parts])
            assert name in declared, f"{name} ({init.parent}) is missing from [tool.setuptools] packages"
            assert config["package-dir"].get(name, "").rstrip("/") in ("", str(Path(folder, *rel.parts))), name
