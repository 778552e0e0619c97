"""The dashboard's guard: access token, read-only methods, allowed Host names, and security headers.

One ASGI middleware in front of every route: a request without the token (when one is set) gets 401;
anything but GET/HEAD gets 405 unless ``--allow-runs`` opened the run form; every response carries a
Content-Security-Policy that allows scripts from the dashboard's own static files only.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["COOKIE", "CSP", "Guard", "is_loopback"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
#: Raw artifact files (an SVG may hold scripts): nothing runs, nothing loads.
FILE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
COOKIE = "headwater_ui_token"
WRITE_PATHS = ("/runs/new",)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]") or host.startswith("127.")


class Guard:
    """ASGI middleware: token, methods, Host names, headers."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, token: str | None,
                 allow_runs: bool = False, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.allow_runs = allow_runs
        self.hosts = {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "").rsplit(":", 1)[0].lower() if "]" not in headers.get("host", "") else (
            headers.get("host", "").split("]")[0] + "]").lower()
        if self.hosts and host not in self.hosts:
            await _plain(send, 403, f"host {host!r} is not served here; open the address the dashboard printed")
            return
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and secrets.compare_digest(given.encode(), self.token.encode()):
                rest = urlencode([(k, v) for k, v in parse_qsl(scope["query_string"].decode("latin-1"))
                                  if k != "token"])
                location = scope["path"] + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                await _plain(send, 303, "token accepted", [("location", location), ("set-cookie", cookie)])
                return
            if not self._authorized(headers):
                await _plain(send, 401, "this dashboard needs its access token: open the URL it printed "
                                        "(…/?token=…) or send 'Authorization: Bearer TOKEN'")
                return
        method = scope["method"]
        if method not in ("GET", "HEAD") and not (self.allow_runs and method == "POST"
                                                  and scope["path"] in WRITE_PATHS):
            await _plain(send, 405, f"{method} is refused: the dashboard is read-only"
                                    + ("" if self.allow_runs else " (start it with --allow-runs to start runs)"))
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                names = {k.lower() for k, _ in raw}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", CSP.encode()))
                message["headers"] = raw + [(k, v) for k, v in extra if k not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _authorized(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and secrets.compare_digest(auth[7:].strip().encode(),
                                                                        self.token.encode()):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and secrets.compare_digest(morsel.value.encode(), self.token.encode())


async def _plain(send: Send, status: int, text: str, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
    body = (text + "\n").encode()
    raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
           (b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff")]
    raw += [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
