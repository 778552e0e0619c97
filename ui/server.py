"""Run the dashboard with uvicorn: address checks, the access token, and the URL to open."""

from __future__ import annotations

import secrets
import sys
from typing import Any

from headwater.metadata.errors import HeadwaterError
from headwater.ui.security import is_loopback

__all__ = ["UIConfigError", "check_access", "serve"]


class UIConfigError(HeadwaterError):
    """A dashboard option that would expose it unsafely."""


def check_access(host: str, token: str | None) -> str | None:
    """The token to require: none on loopback unless given; on any other address the given or a new one."""
    if token is not None and len(token) < 16:
        raise UIConfigError("--token must be at least 16 characters; or omit it to have one generated")
    if is_loopback(host):
        return token
    return token or secrets.token_urlsafe(24)


def serve(store: Any, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          allow_runs: bool = False, open_browser: bool = False, runs_form: Any = None) -> None:
    import uvicorn
    from headwater.ui.app import create_app

    token = check_access(host, token)
    hosts: tuple[str, ...] = ()
    if is_loopback(host):  # refuse other Host names: a web page elsewhere cannot reach this one by DNS tricks
        hosts = ("127.0.0.1", "localhost", "[::1]", host)
    app = create_app(store, token=token, allow_runs=allow_runs, hosts=hosts, runs_form=runs_form)
    shown = "localhost" if host in ("127.0.0.1", "localhost") else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"headwater ui: serving {store.display} at {url}" + ("" if allow_runs else " (read-only)"), flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    print("headwater ui: stopped", file=sys.stderr, flush=True)
