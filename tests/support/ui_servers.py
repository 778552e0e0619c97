"""Starting ``headwater ui`` for tests: a free loopback port, the CLI as a user runs it, stopped by its pid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORT = Path(__file__).resolve().parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), e.get("PYTHONPATH", "")])
    e.pop("HEADWATER_METADATA", None)
    return e


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    out: Any = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.out is not None:
            self.out.close()


def start_server(metadata: str, log: Path, *extra: str) -> Server:
    """``headwater ui`` as a user starts it, on a free port; waits until it answers."""
    port = free_port()
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "ui", "--metadata", metadata,
                             "--port", str(port), *extra], stdout=out, stderr=subprocess.STDOUT, env=env())
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            out.close()
            raise RuntimeError(f"headwater ui exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return Server(url, proc, log, out)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait(5)
    out.close()
    raise RuntimeError(f"headwater ui did not answer within 60 s: {log.read_text()}")


