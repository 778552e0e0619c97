"""The dashboard's server without a browser: real MLMD stores written by real runs, Starlette's TestClient."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from headwater.metadata.conventions import CONTEXT_EXPERIMENT, RUN_GRAPH
from headwater.metadata.errors import HeadwaterError
from headwater.metadata.store import connect
from headwater.pipelines import LocalRunner, Pipeline
from headwater.ui.app import create_app
from headwater.ui.data import Dashboard, RunsQuery
from headwater.ui.security import COOKIE, CSP
from headwater.ui.server import UIConfigError, check_access
from hw_test_components import consume, fail, produce
from starlette.testclient import TestClient

MARKUP = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Five real runs: pipeline 'alpha' x3 (one in experiment 'exp1', one failing), 'beta' x2."""
    root = tmp_path_factory.mktemp("ui-server")
    uri = f"sqlite:///{root / 'metadata.sqlite'}"
    a = produce(value=MARKUP).with_id("a")
    alpha = Pipeline(name="alpha", root=str(root / "alpha"), nodes=[a, consume(examples=a.outputs.data)],
                     metadata=uri)
    b = produce(value="b").with_id("b")
    beta = Pipeline(name="beta", root=str(root / "beta"), nodes=[b, fail(examples=b.outputs.data)], metadata=uri)
    runner = LocalRunner(1, quiet=True)
    assert runner.run(alpha).ok
    assert runner.run(alpha, experiment="exp1", cache=False).ok
    assert not runner.run(beta).ok
    assert not runner.run(beta, cache=False).ok
    assert runner.run(alpha, cache=False).ok
    return uri


@pytest.fixture(scope="module")
def client(store_uri: str) -> TestClient:
    return TestClient(create_app(connect(store_uri, readonly=True)), base_url="http://127.0.0.1")


def _runs(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/runs", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["runs"])


def test_runs_newest_first_with_counts_and_filters(client: TestClient) -> None:
    runs = _runs(client)
    assert [r["pipeline"] for r in runs] == ["alpha", "beta", "beta", "alpha", "alpha"]
    assert [r["status"] for r in runs] == ["succeeded", "failed", "failed", "succeeded", "succeeded"]
    assert runs[1]["counts"] == {"complete": 1, "failed": 1}
    assert runs[0]["counts"] == {"complete": 2}
    assert [r["experiment"] for r in runs] == ["alpha", "beta", "beta", "exp1", "alpha"]
    assert {r["pipeline"] for r in _runs(client, pipeline="beta")} == {"beta"}
    assert len(_runs(client, pipeline="beta")) == 2
    assert [r["run_id"] for r in _runs(client, experiment="exp1")] == [runs[3]["run_id"]]
    assert len(_runs(client, status="failed")) == 2
    assert _runs(client, since="2999-01-01") == []
    assert len(_runs(client, until="2999-01-01")) == 5
    bad = client.get("/api/runs", params={"since": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]


def test_runs_pagination(client: TestClient) -> None:
    all_ids = [r["run_id"] for r in _runs(client)]
    page1 = client.get("/api/runs", params={"limit": 2}).json()
    assert [r["run_id"] for r in page1["runs"]] == all_ids[:2] and page1["more"]
    page2 = _runs(client, limit=2, before=page1["runs"][-1]["id"])
    assert [r["run_id"] for r in page2] == all_ids[2:4]
    back = _runs(client, limit=2, after=page2[0]["id"])
    assert [r["run_id"] for r in back] == all_ids[:2]
    html = client.get("/", params={"limit": 2}).text
    assert 'id="older"' in html


def test_queries_per_page_do_not_grow_with_rows(store_uri: str) -> None:
    dash = Dashboard(connect(store_uri, readonly=True))
    costs = []
    for limit in (1, 2, 5):
        before = dash.raw.calls
        rows, _ = dash.runs(RunsQuery(limit=limit))
        assert len(rows) == limit
        costs.append(dash.raw.calls - before)
    assert costs[0] == costs[1] == costs[2], costs


def test_run_context_records_graph_and_experiment(store_uri: str, client: TestClient) -> None:
    store = connect(store_uri, readonly=True)
    run = _runs(client, experiment="exp1")[0]
    ctx = store.mlmd.get_context_by_type_and_name("pipeline_run", run["run_id"])
    assert RUN_GRAPH in ctx.custom_properties
    parents = {(p.type, p.name) for p in store.mlmd.get_parent_contexts_by_context(ctx.id)}
    assert (CONTEXT_EXPERIMENT, "exp1") in parents and ("pipeline", "alpha") in parents
    data = client.get(f"/api/runs/{run['run_id']}").json()
    assert [n["id"] for n in data["nodes"]] == ["a", "consume"]
    assert data["edges"] == [{"source": "a", "target": "consume", "label": "data"}]
    failed = _runs(client, status="failed")[0]
    nodes = {n["id"]: n for n in client.get(f"/api/runs/{failed['run_id']}").json()["nodes"]}
    assert nodes["fail"]["state"] == "failed" and "boom" in nodes["fail"]["error"]
    log = client.get(f"/api/runs/{failed['run_id']}/log/fail").json()
    assert "boom" in log["text"] and log["offset"] == log["size"]
    assert client.get(f"/api/runs/{failed['run_id']}/log/fail", params={"offset": log["offset"]}).json()["text"] == ""


def test_pages_render_and_link(client: TestClient) -> None:
    run = _runs(client)[0]
    detail = client.get(f"/api/runs/{run['run_id']}").json()
    art = detail["nodes"][0]["outputs"][0]["id"]
    exe = detail["nodes"][1]["execution_id"]
    for url in ("/", f"/runs/{run['run_id']}", f"/artifacts/{art}", f"/executions/{exe}",
                f"/lineage?start=artifact:{art}", f"/lineage?start=execution:{exe}", "/models",
                f"/compare?runs={run['run_id']}&runs={_runs(client)[1]['run_id']}"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
    page = client.get(f"/artifacts/{art}").text
    assert f'href="/executions/{detail["nodes"][0]["execution_id"]}"' in page
    assert f'href="/runs/{run["run_id"]}"' in page
    lineage = client.get("/api/lineage", params={"start": f"artifact:{art}"}).json()
    ids = {e["data"]["id"] for e in lineage["elements"]}
    assert {f"artifact:{art}", f"execution:{exe}"} <= ids
    # Each executed node's peak memory, as the worker measured it, in the API and the run page's table.
    peak = detail["nodes"][1]["peak_rss_mib"]
    assert isinstance(peak, float) and peak > 10
    page = client.get(f"/runs/{run['run_id']}").text
    row = page.split(f'data-node="{detail["nodes"][1]["id"]}"')[1].split("</tr>")[0]
    assert "Peak RSS (MiB)" in page and f"<td>{peak:.4g}</td>" in row
    assert client.get("/runs/nope").status_code == 404
    bad_id = client.get("/artifacts/abc")
    assert bad_id.status_code == 400 and "artifact id must be a number" in bad_id.text
    assert client.get("/artifacts/999999").status_code == 404
    assert client.get("/compare", params={"runs": run["run_id"]}).status_code == 400


def test_markup_from_mlmd_is_escaped(client: TestClient) -> None:
    run = _runs(client, pipeline="alpha")[0]
    art = client.get(f"/api/runs/{run['run_id']}").json()["nodes"][0]["outputs"][0]["id"]
    page = client.get(f"/artifacts/{art}").text
    assert MARKUP not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_security_headers_and_read_only(client: TestClient) -> None:
    r = client.get("/")
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP.split("style-src")[0]
    assert r.headers["x-content-type-options"] == "nosniff"
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/").status_code == 405
    assert "<script>" not in r.text.replace('<script src="', "").replace('<script type="application/json"', "")
    assert client.get("/", headers={"host": "evil.example"}).status_code == 200  # no host list in this app


def test_host_names_and_token(store_uri: str) -> None:
    store = connect(store_uri, readonly=True)
    app = create_app(store, hosts=("127.0.0.1", "localhost"))
    plain = TestClient(app, base_url="http://127.0.0.1")
    assert plain.get("/").status_code == 200
    assert plain.get("/", headers={"host": "attacker.example"}).status_code == 403
    token = "t" * 24
    guarded = TestClient(create_app(store, token=token), base_url="http://127.0.0.1")
    assert guarded.get("/").status_code == 401
    assert guarded.get("/api/runs").status_code == 401
    assert guarded.get("/static/js/common.js").status_code == 401
    assert guarded.get("/", headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert guarded.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    first = guarded.get("/", params={"token": token, "status": "failed"}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/?status=failed"
    assert f"{COOKIE}={token}" in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
    assert guarded.get("/").status_code == 200  # the cookie now


def test_check_access_requires_token_off_loopback() -> None:
    assert check_access("127.0.0.1", None) is None
    generated = check_access("0.0.0.0", None)
    assert generated and len(generated) >= 24
    assert check_access("10.1.2.3", "x" * 20) == "x" * 20
    with pytest.raises(UIConfigError, match="at least 16 characters"):
        check_access("0.0.0.0", "short")
    assert issubclass(UIConfigError, HeadwaterError)


def test_file_previews_stay_inside_the_artifact(client: TestClient, store_uri: str, tmp_path: Path) -> None:
    run = _runs(client, pipeline="alpha")[0]
    out = client.get(f"/api/runs/{run['run_id']}").json()["nodes"][0]["outputs"][0]
    folder = Path(out["uri"])
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = folder / "escape.txt"
    if not link.exists():
        os.symlink(secret, link)
    (folder / "notes.md").write_text("# Title\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))\n")
    base = f"/artifacts/{out['id']}"
    ok = client.get(f"{base}/file", params={"path": "data.txt"})
    assert ok.status_code == 200 and "<script>" not in ok.text.split("<main>")[1].split("</main>")[0]
    for bad in ("../../../etc/passwd", "/etc/passwd", "escape.txt", "sub/../../x"):
        r = client.get(f"{base}/file", params={"path": bad})
        assert r.status_code == 403, bad
        assert "top secret" not in r.text
        assert client.get(f"{base}/raw", params={"path": bad}).status_code == 403
    listing = client.get(base).text
    assert "escape.txt</a>" not in listing and "leads outside the artifact" in listing
    md = client.get(f"{base}/file", params={"path": "notes.md"}).text
    assert "<h1>Title</h1>" in md and "<img src=x" not in md and 'href="javascript:' not in md
    raw = client.get(f"{base}/raw", params={"path": "data.txt"})
    assert raw.status_code == 200 and "sandbox" in raw.headers["content-security-policy"]


def test_tfx_store_pages(tfx_store_path: Path) -> None:
    client = TestClient(create_app(connect(f"sqlite:///{tfx_store_path}", readonly=True)),
                        base_url="http://127.0.0.1")
    runs = _runs(client)
    assert [r["pipeline"] for r in runs] == ["penguin_tfx", "penguin_tfx"]
    assert runs[1]["blessed"] is True and runs[1]["pushed"] is True
    detail = client.get(f"/api/runs/{runs[1]['run_id']}").json()
    assert {"CsvExampleGen", "Trainer", "Evaluator", "Pusher"} <= {n["id"] for n in detail["nodes"]}
    assert any(e["source"] == "Trainer" and e["target"] == "Evaluator" for e in detail["edges"])
    for url in ("/", f"/runs/{runs[0]['run_id']}", "/artifacts/14", "/artifacts/15", "/artifacts/16",
                "/lineage?start=artifact:16&direction=upstream", "/explain/16", "/models"):
        assert client.get(url).status_code == 200, url
    assert "1795443847" in client.get("/models").text


def test_cli_stays_light_and_ui_help() -> None:
    code = ("import sys; from headwater.pipelines.cli import build_parser; build_parser(); import headwater.ui; "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'jinja2', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", "ui", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--allow-runs" in help_text and "--token" in help_text


def test_ui_command_is_unavailable_without_the_web_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    monkeypatch.delitem(sys.modules, "headwater.pipelines.cli.ui", raising=False)
    with pytest.raises(ImportError, match="web stack is not installed") as caught:
        importlib.import_module("headwater.pipelines.cli.ui")
    assert caught.value.name == "uvicorn"  # the command table then says: pip install 'headwater[ui]'
