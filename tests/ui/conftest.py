"""Fixtures for the dashboard: a real penguin store (two runs), servers started by the CLI, headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ui_servers import CHROMEDRIVER, CHROMIUM, Server, env, start_server


@pytest.fixture(scope="session")
def penguin_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The penguin template run twice through the CLI (LocalRunner): the second run in experiment 'tuning'."""
    pytest.importorskip("tensorflow_model_analysis")
    project = tmp_path_factory.mktemp("ui") / "penguin"
    cli = [sys.executable, "-m", "headwater.pipelines.cli"]
    subprocess.run([*cli, "template", "copy", "penguin", str(project)], check=True, capture_output=True)
    for extra in ([], ["--param", "train_steps=60", "--experiment", "tuning"]):
        done = subprocess.run([*cli, "run", "pipeline.py", "-q", *extra], cwd=project, env=env(),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    return project


@pytest.fixture(scope="session")
def penguin_store(penguin_project: Path) -> str:
    return f"sqlite:///{penguin_project / 'runs' / 'metadata.sqlite'}"


@pytest.fixture(scope="session")
def markup_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One run whose artifact holds markup in a custom property."""
    root = tmp_path_factory.mktemp("markup")
    code = ("import ui_pipelines as u; from headwater.pipelines import LocalRunner; "
            "assert LocalRunner(1, quiet=True).run(u.markup).ok")
    subprocess.run([sys.executable, "-c", code], cwd=root, env={**env(), "HW_UI_ROOT": str(root)}, check=True,
                   timeout=300)
    return f"sqlite:///{root / 'markup' / 'metadata.sqlite'}"


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(metadata: str, *extra: str) -> Server:
        server = start_server(metadata, tmp_path_factory.mktemp("server") / "server.log", *extra)
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Debian's headless Chromium driven by Selenium through Debian's chromedriver."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            raise RuntimeError("chromium and chromium-driver must be installed (.ci/run installs them)")
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chrome: object, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """The shared browser; a failing test leaves a screenshot and the page source in its tmp dir."""
    yield chrome
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        chrome.save_screenshot(str(tmp_path / "failure.png"))  # type: ignore[attr-defined]
        (tmp_path / "failure.html").write_text(chrome.page_source)  # type: ignore[attr-defined]
        print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
