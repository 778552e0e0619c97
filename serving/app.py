"""``headwater serve``: TF Serving's REST API for a push destination, on Starlette and uvicorn.

::

    GET  /v1/models/NAME[/versions/N]              status of every (or one) version
    GET  /v1/models/NAME[/versions/N]/metadata     the SignatureDefs
    POST /v1/models/NAME[/versions/N]:predict      {"instances": [...]} or {"inputs": ...}
    POST /v1/models/NAME[/versions/N]:classify     {"examples": [...], "context": {...}}
    POST /v1/models/NAME[/versions/N]:regress      (classify/regress: signatures with that method only)

Responses and errors (``{"error": "..."}``, 400 for a bad request, 404 for an unknown model or version)
have TF Serving's JSON shapes, so one client works against both. With ``web_dir`` the files of that folder
are served at ``/`` (``index.html`` first) under a Content-Security-Policy that allows only this origin's
own files: no inline script, no third-party content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from headwater.serving._json import RequestError
from headwater.serving._repository import ModelRepository

__all__ = ["create_app", "run"]

_GET = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<metadata>/metadata)?$")
_POST = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?:(?P<verb>[A-Za-z]+)$")
_HEADERS = [(b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def _json_response(content: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    # TF Serving writes NaN and Infinity as bare tokens (see its "JSON conformance" notes): so do we.
    return Response(json.dumps(content, allow_nan=True), status_code=status, media_type="application/json")


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit():
        raise RequestError(f"version '{text}' is not a number; versions are the integer folder names", 400)
    return int(text)


def _secure(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Callable[[], Awaitable[Message]],
                      send: Callable[[Message], Awaitable[None]]) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        await app(scope, receive, send_with_headers if scope["type"] == "http" else send)

    return wrapped


def create_app(repository: ModelRepository, *, web_dir: str | Path | None = None, start: bool = True) -> Any:
    """The ASGI application. ``start``: poll the destination while the app runs (lifespan)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.routing import Mount, Route

    async def models_get(request: Request) -> Any:
        rest = request.path_params["rest"]
        match = _GET.match(rest)
        try:
            if match is None:
                raise RequestError(f"Malformed request: GET /v1/models/{rest}", 404)
            name, version = match["name"], _version(match["version"])
            if match["metadata"]:
                model = repository.servable(name, version)
                return _json_response(model.metadata(name))
            return _json_response(repository.status(name, version))
        except RequestError as exc:
            return _json_response({"error": str(exc)}, exc.status)

    async def models_post(request: Request) -> Any:
        rest = request.path_params["rest"]
        match = _POST.match(rest)
        try:
            if match is None or match["verb"] not in ("predict", "classify", "regress"):
                raise RequestError(f"Malformed request: POST /v1/models/{rest} (the verbs are :predict, :classify "
                                   "and :regress)", 404)
            model = repository.servable(match["name"], _version(match["version"]))
            raw = await request.body()
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise RequestError(f"JSON Parse error: {exc}") from None
            if not isinstance(body, dict):
                raise RequestError("JSON Parse error: the request body must be a JSON object")
            result = await run_in_threadpool(getattr(model, match["verb"]), body)
            return _json_response(result)
        except RequestError as exc:
            return _json_response({"error": str(exc)}, exc.status)

    routes: list[Any] = [
        Route("/v1/models/{rest:path}", models_get, methods=["GET"]),
        Route("/v1/models/{rest:path}", models_post, methods=["POST"]),
    ]
    if web_dir is not None:
        from starlette.staticfiles import StaticFiles

        routes.append(Mount("/", app=StaticFiles(directory=str(web_dir), html=True), name="web"))

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        if start:
            await run_in_threadpool(repository.start)
        try:
            yield
        finally:
            if start:
                repository.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    return _secure(app)


def run(directory: str | Path, *, model_name: str, host: str = "127.0.0.1", port: int = 8501,
        web_dir: str | Path | None = None, poll_seconds: float = 1.0, log_level: str = "info") -> None:
    """Serve ``directory`` until interrupted (uvicorn, one process)."""
    import uvicorn

    repository = ModelRepository(directory, model_name, poll_seconds=poll_seconds)
    app = create_app(repository, web_dir=web_dir)
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="on")
