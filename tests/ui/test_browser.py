"""The dashboard in a real browser (Debian's headless Chromium through Selenium) over real runs.

One walk over two real penguin runs (the template through the CLI's LocalRunner), a run in progress that
updates without a reload, an artifact property holding markup, and the store TFX 1.16 wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from ui_servers import SUPPORT, env

pytestmark = pytest.mark.ml


def wait(driver: Any, condition: Any, timeout: float = 60, what: str = "") -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition, message=what)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def csss(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def csp_violations(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
            or "Refused to" in e["message"]]


@pytest.fixture(scope="module")
def penguin_ui(penguin_store: str, server_factory: Any) -> Any:
    return server_factory(penguin_store)


@pytest.mark.slow  # two real penguin runs first: 1-5 min on the 2-core machine
def test_runs_list_run_dag_and_evaluation(browser: Any, penguin_ui: Any) -> None:
    browser.get(penguin_ui.url + "/")
    rows = csss(browser, "tr.run-row")
    assert len(rows) == 2
    assert "tuning" in rows[0].text and "succeeded" in rows[0].text  # newest first: the second run
    assert "train_steps=60" in rows[0].text
    assert "blessed" in rows[1].text and "pushed" in rows[1].text
    rows[1].find_element("css selector", "a").click()
    # Ingest, Statistics, ImportSchema, PreviousStatistics, Validate, Transform, Train, baseline, Evaluate,
    # InfraValidate, Push, IngestHoldout, BatchPredict
    wait(browser, lambda d: d.execute_script("return window.hwRun && window.hwRun.cy.nodes().length") == 13,
         what="the run's DAG has its 13 nodes")
    states = browser.execute_script("return window.hwRun.cy.nodes().map(n => n.data('state'))")
    assert set(states) == {"complete"}, states
    assert browser.execute_script("return window.hwRun.cy.edges().length") >= 6
    labels = browser.execute_script("return window.hwRun.cy.edges().map(e => e.data('label'))")
    assert "model" in labels and "blessing" in labels
    # the Evaluate node's panel, then its evaluation artifact
    browser.execute_script("window.hwRun.cy.getElementById('n:Evaluate').emit('tap')")
    wait(browser, lambda d: css(d, "#node-panel h2").text == "Evaluate")
    assert css(browser, "#node-state").text == "complete"
    wait(browser, lambda d: css(d, "#node-log").text.strip(), what="the log tail")
    link = next(a for a in csss(browser, "#node-panel a") if a.text.startswith("ModelEvaluation"))
    link.click()
    wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-plots") == "ready", 120,
         what="the evaluation's plots")
    cells = [c.text for c in csss(browser, "#confusion-matrix td")]
    assert len(cells) == 9 and sum(float(c) for c in cells) > 100, cells
    assert "sparse_categorical_accuracy" in css(browser, "#metrics-by-slice").text
    assert "island=Biscoe" in css(browser, "#metrics-by-slice").text
    assert "passed" in css(browser, "#thresholds").text
    assert csss(browser, "#roc .uplot") and csss(browser, "#pr .uplot")
    assert css(browser, "#verdict").text.startswith("BLESSED")
    assert not csp_violations(browser)


@pytest.mark.slow  # two real penguin runs first: 1-5 min on the 2-core machine
def test_compare_two_runs(browser: Any, penguin_ui: Any) -> None:
    browser.get(penguin_ui.url + "/")
    for box in csss(browser, "input[name=runs]"):
        box.click()
    css(browser, "#compare").click()
    wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-curves") not in (None, "0"), 120,
         what="overlaid curves")
    params = css(browser, "#compare-params").text
    assert "train_steps" in params and "60" in params
    assert csss(browser, "#compare-params tr.differs")
    metrics = css(browser, "#compare-metrics").text
    assert "sparse_categorical_accuracy" in metrics and "auc [class 0]" in metrics
    assert len(csss(browser, "#compare-roc .uplot-legend tr, #compare-roc .u-legend tr")) >= 4
    assert not csp_violations(browser)


@pytest.mark.slow  # two real penguin runs first: 1-5 min on the 2-core machine
def test_models_lineage_down_to_examples_and_explain(browser: Any, penguin_ui: Any) -> None:
    browser.get(penguin_ui.url + "/models")
    assert "serving now" in css(browser, "table.models").text
    lineage = next(a for a in csss(browser, "table.models a") if a.text == "lineage")
    lineage.click()
    wait(browser, lambda d: d.execute_script("return window.hwLineage && window.hwLineage.cy.nodes().length") > 0)
    labels = browser.execute_script("return window.hwLineage.cy.nodes().map(n => n.data('label'))")
    assert any(label.startswith("PushedModel") for label in labels)
    assert any(label.startswith("Examples") for label in labels), labels
    before = len(labels)
    model = browser.execute_script(
        "return window.hwLineage.cy.nodes().filter(n => n.data('label').startsWith('Model #'))[0].id()")
    browser.execute_script(f"window.hwLineage.cy.getElementById('{model}').emit('tap')")
    css(browser, "#expand").click()
    wait(browser, lambda d: int(d.find_element("tag name", "body").get_attribute("data-expanded") or 0) > before,
         what="expanding the model adds its consumers")
    css(browser, "#explain-link").click()
    assert "Why is this model serving?" in css(browser, "h1").text
    assert "sparse_categorical_accuracy" in css(browser, "#explanation").text.lower() or \
        "SparseCategoricalAccuracy" in css(browser, "#explanation").text
    assert not csp_violations(browser)


def test_markup_in_mlmd_shows_as_text(browser: Any, markup_store: str, server_factory: Any) -> None:
    server = server_factory(markup_store)
    with urllib.request.urlopen(server.url + "/api/runs") as r:
        run_id = json.load(r)["runs"][0]["run_id"]
    with urllib.request.urlopen(f"{server.url}/api/runs/{run_id}") as r:
        artifact = json.load(r)["nodes"][0]["outputs"][0]["id"]
    browser.get(f"{server.url}/artifacts/{artifact}")
    props = css(browser, "#properties").text
    assert "<script>window.__hw_xss = 1</script><b>bold?</b>" in props
    assert browser.execute_script("return window.__hw_xss === undefined")
    assert not csss(browser, "#properties b")


def test_run_in_progress_updates_without_reload(browser: Any, server_factory: Any, tmp_path: Path) -> None:
    root = tmp_path / "live"
    run = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "run", str(SUPPORT / "ui_pipelines.py"),
                            "-q", "--param", "delay=6", "--workers", "1"], cwd=tmp_path,
                           env={**env(), "HW_UI_ROOT": str(root)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        store = root / "slow" / "metadata.sqlite"
        deadline = time.time() + 60
        while not store.exists() and time.time() < deadline:
            time.sleep(0.2)
        server = server_factory(f"sqlite:///{store}")
        run_id = None
        while run_id is None and time.time() < deadline:
            with urllib.request.urlopen(server.url + "/api/runs") as r:
                runs = json.load(r)["runs"]
            run_id = runs[0]["run_id"] if runs else None
            time.sleep(0.2)
        assert run_id, "the run never appeared"
        browser.get(f"{server.url}/runs/{run_id}")
        browser.execute_script("window.__same_page = 'yes'")
        assert css(browser, "#run-status").text == "running"
        first = browser.execute_script("return window.hwRun.cy.nodes().map(n => n.data('state'))")
        assert "pending" in first or "running" in first, first
        wait(browser, lambda d: css(d, "#run-status").text == "succeeded", 90, what="the run finishing live")
        states = browser.execute_script("return window.hwRun.cy.nodes().map(n => n.data('state'))")
        assert states == ["complete", "complete"], states
        assert browser.execute_script("return window.__same_page") == "yes"  # no reload happened
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_tfx_store_renders(browser: Any, tfx_store_path: Path, server_factory: Any) -> None:
    server = server_factory(f"sqlite:///{tfx_store_path}")
    browser.get(server.url + "/")
    rows = csss(browser, "tr.run-row")
    assert len(rows) == 2 and all("penguin_tfx" in r.text for r in rows)
    rows[1].find_element("css selector", "a").click()
    wait(browser, lambda d: d.execute_script("return window.hwRun && window.hwRun.cy.nodes().length") >= 8)
    browser.get(server.url + "/models")
    assert "serving now" in css(browser, "table.models").text
    browser.get(server.url + "/artifacts/16")
    assert "1795443829" in css(browser, "#pushed").text
    assert not csp_violations(browser)
