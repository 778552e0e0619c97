"""``headwater serve`` as a real process (uvicorn on a free port of 127.0.0.1), stopped by its pid; the CLI's
errors; and that ``headwater --help`` imports neither TensorFlow nor Starlette."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

WEB = Path(__file__).resolve().parents[2] / "templates" / "penguin" / "web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None) -> tuple[int, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if r.headers["content-type"] == "application/json" else text
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.ml
def test_a_real_server_process_serves_picks_up_versions_and_stops_by_pid(models, tmp_path):
    base = tmp_path / "serving"
    shutil.copytree(models["regressor"], base / "1")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "serve", str(base),
                                 "--model-name", "reg", "--port", str(port), "--web", str(WEB),
                                 "--poll-seconds", "0.3"], stdout=out, stderr=subprocess.STDOUT)
    try:
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if call(f"{root}/v1/models/reg")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()
            time.sleep(0.3)
        status, body = call(f"{root}/v1/models/reg:predict", {"instances": [[1.0, 2.0]]})
        assert status == 200 and len(body["predictions"]) == 1, body
        status, page = call(f"{root}/")
        assert status == 200 and "Which penguin is it?" in page
        status, body = call(f"{root}/v1/models/nope:predict", {"instances": [[1.0, 2.0]]})
        assert status == 404 and body["error"].startswith("Servable not found for request: Latest(nope)")
        # A version written while serving is picked up.
        shutil.copytree(models["regressor_b"], base / ".push-tmp-x")
        (base / ".push-tmp-x").rename(base / "2")
        while time.monotonic() < deadline:
            states = {e["version"]: e["state"] for e in call(f"{root}/v1/models/reg")[1]["model_version_status"]}
            if states.get("2") == "AVAILABLE":
                break
            time.sleep(0.3)
        assert states == {"2": "AVAILABLE", "1": "END"}
        assert call(f"{root}/v1/models/reg/versions/2:predict", {"instances": [[1.0, 2.0]]})[0] == 200
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert f"headwater serve: model 'reg' from {base} (versions [1], serving the newest) at " \
           f"http://127.0.0.1:{port}/v1/models/reg" in text
    assert "headwater serve: stopped" in text and proc.returncode == 0


def test_serve_errors_name_the_folder(tmp_path, capsys):
    from headwater.pipelines.cli import main

    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert f"headwater: error: serve: {tmp_path / 'nowhere'} is not a directory; give the folder Push writes " \
           "to" in err
    (tmp_path / "serving").mkdir()
    assert main(["serve", str(tmp_path / "serving"), "--web", str(tmp_path)]) == 2
    assert f"--web {tmp_path} holds no index.html" in capsys.readouterr().err


def test_help_imports_neither_tensorflow_nor_the_server_stack():
    code = ("import sys\nfrom headwater.pipelines.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "import headwater.serving\n"
            "print([m for m in ('tensorflow', 'starlette', 'uvicorn') if m in sys.modules], file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "serve" in out.stdout and out.stderr.strip().endswith("[]"), out.stderr
