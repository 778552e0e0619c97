"""Every template, script, stylesheet and vendored library of the dashboard ships in the wheel."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_package_data_covers_templates_and_static_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["headwater.ui"]
    files = [p.relative_to(ROOT / "ui").as_posix() for sub in ("templates", "static")
             for p in (ROOT / "ui" / sub).rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, pat) and f.count("/") == pat.count("/")
                                           for pat in patterns)]
    assert not missing, f"add these to [tool.setuptools.package-data] headwater.ui: {missing}"
    vendored = {p.parent.name for p in (ROOT / "ui" / "static" / "vendor").glob("*/LICENSE")}
    assert vendored == {"cytoscape", "cytoscape-dagre", "uplot"}
    readme = (ROOT / "ui" / "static" / "vendor" / "README.md").read_text()
    assert all(name in readme for name in vendored)
