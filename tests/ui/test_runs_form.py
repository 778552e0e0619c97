"""Starting a run from the browser's form (--allow-runs): CSRF, --param validation, a real local run."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from headwater.metadata.store import connect
from headwater.ui.app import create_app
from headwater.ui.runs import CSRF_COOKIE, RunStarter, routes
from starlette.testclient import TestClient
from ui_servers import SUPPORT, env


@pytest.fixture
def form_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("HW_UI_ROOT", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    uri = f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    connect(uri)  # the store exists before the first run, as a dashboard opened on an empty store sees it
    starter = RunStarter([str(SUPPORT / "ui_pipelines.py")], uri)
    app = create_app(connect(uri, readonly=True), allow_runs=True, runs_form=routes(starter))
    yield TestClient(app, base_url="http://127.0.0.1")
    starter.close()


def _csrf(client: TestClient) -> str:
    page = client.get("/runs/new").text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_form_prefilled_and_validated_like_param(form_client: TestClient) -> None:
    page = form_client.get("/runs/new").text
    assert 'name="delay" value="3.0"' in page and 'name="note" value="n"' in page
    token = _csrf(form_client)
    refused = form_client.post("/runs/new", data={"pipeline": "slow", "csrf": "forged", "delay": "1"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    other_origin = form_client.post("/runs/new", data={"pipeline": "slow", "csrf": token, "delay": "1"},
                                    headers={"origin": "http://evil.example"})
    assert other_origin.status_code == 403
    bad = form_client.post("/runs/new", data={"pipeline": "slow", "csrf": token, "delay": "soon"})
    assert bad.status_code == 400
    assert "delay" in bad.text and "float" in bad.text


def test_form_starts_a_real_local_run(form_client: TestClient) -> None:
    token = _csrf(form_client)
    assert form_client.cookies.get(CSRF_COOKIE) == token
    started = form_client.post("/runs/new", data={"pipeline": "slow", "csrf": token, "delay": "0.2",
                                                  "experiment": "from-browser"}, follow_redirects=False)
    assert started.status_code == 303
    run_id = started.headers["location"].rsplit("/", 1)[1]
    deadline = time.time() + 120
    status = None
    while time.time() < deadline:
        r = form_client.get(f"/api/runs/{run_id}")
        if r.status_code == 200:
            status = r.json()["run"]["status"]
            if status != "running":
                break
        time.sleep(0.5)
    assert status == "succeeded"
    run = form_client.get(f"/api/runs/{run_id}").json()["run"]
    assert run["params"] == {"delay": 0.2, "note": "n"} and run["experiment"] == "from-browser"


def test_read_only_without_allow_runs_and_cli_needs_pipeline(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    connect(uri)
    client = TestClient(create_app(connect(uri, readonly=True)), base_url="http://127.0.0.1")
    assert client.post("/runs/new", data={}).status_code == 405
    assert client.get("/runs/new").status_code == 404
    out = subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", "ui", "--metadata", uri, "--allow-runs"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--pipeline" in out.stderr
