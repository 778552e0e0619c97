"""The dashboard's web application (Starlette): pages rendered with Jinja2, JSON for the live parts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.metadata.errors import HeadwaterError
from headwater.ui import objects
from headwater.ui.data import STATES, Dashboard, RunsQuery
from headwater.ui.files import IMAGES, FileRefused, list_files, preview, safe_path
from headwater.ui.security import FILE_CSP, Guard
from headwater.ui.viewers import ViewContext, view_for
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

__all__ = ["create_app"]

HERE = Path(__file__).resolve().parent
LOG_CHUNK = 64 * 1024


def _templates() -> Jinja2Templates:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True)
    env.filters["show"] = _show
    env.filters["num"] = _num
    return Jinja2Templates(env=env)


def _show(value: Any) -> str:
    """A property value as text (structures as compact JSON); the template escapes it."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else str(value)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return _show(value)


def _day_ms(text: str | None, *, end: bool = False) -> int | None:
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise HeadwaterError(f"date {text!r} is not YYYY-MM-DD") from None
    return int(day.timestamp() * 1000) + (86_400_000 - 1 if end else 0)


def _int(text: str | None, name: str) -> int | None:
    if text in (None, ""):
        return None
    try:
        return int(str(text))
    except ValueError:
        raise HeadwaterError(f"{name} must be a number, got {text!r}") from None


def create_app(store: Any, *, token: str | None = None, allow_runs: bool = False,
               hosts: tuple[str, ...] = (), runs_form: Callable[..., Any] | None = None) -> Any:
    """The dashboard over ``store`` (headwater's MetadataStore or a raw ml_metadata store), guarded."""
    dash = Dashboard(store)
    templates = _templates()

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("title", "")
        return templates.TemplateResponse(request, name, {"store": dash.display, "allow_runs": allow_runs,
                                                          **context}, status_code=status_code)

    async def locked(fn: Callable[[], Any]) -> Any:
        def call() -> Any:
            with dash.lock:
                return fn()
        return await run_in_threadpool(call)

    def error(request: Request, exc: Exception, status: int = 404) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=status)
        return page(request, "error.html", title="not found", message=str(exc), status_code=status)

    def query_of(request: Request) -> RunsQuery:
        q = request.query_params
        return RunsQuery(pipeline=q.get("pipeline") or None, experiment=q.get("experiment") or None,
                         status=q.get("status") or None, since_ms=_day_ms(q.get("since")),
                         until_ms=_day_ms(q.get("until"), end=True), before=_int(q.get("before"), "before"),
                         after=_int(q.get("after"), "after"), limit=_int(q.get("limit"), "limit") or 50)

    async def runs_page(request: Request) -> Response:
        try:
            query = query_of(request)
            rows, more, pipelines, experiments = await locked(lambda: (
                *dash.runs(query), dash.contexts_named("pipeline"), dash.contexts_named("experiment")))
        except HeadwaterError as exc:
            return error(request, exc, 400)
        q = request.query_params
        keep = {k: v for k, v in q.items() if k in ("pipeline", "experiment", "status", "since", "until", "limit")
                and v}
        if request.url.path.startswith("/api/"):
            return JSONResponse({"runs": [r.to_dict() for r in rows], "more": more})
        return page(request, "runs.html", title="Runs", rows=rows, more=more, filters=keep,
                    pipelines=pipelines, experiments=experiments,
                    statuses=("running", "succeeded", "failed", "canceled"),
                    older=rows[-1].id if rows and more else None,
                    newer=rows[0].id if rows and (query.before or query.after) else None)

    async def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            data = await locked(lambda: dash.run(run_id))
        except HeadwaterError as exc:
            return error(request, exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        return page(request, "run.html", title=f"Run {run_id}", data=data, run=data["run"], nodes=data["nodes"],
                    states=STATES)

    async def run_log(request: Request) -> Response:
        run_id, node = request.path_params["run_id"], request.path_params["node"]
        try:
            offset = _int(request.query_params.get("offset"), "offset")
            path = await locked(lambda: dash.log_path(run_id, node))
        except HeadwaterError as exc:
            return error(request, exc)
        if not path:
            return JSONResponse({"text": "", "offset": 0, "size": 0, "note": "this node has no log"})
        from headwater.components import storage

        try:
            data = storage.read_bytes(path)
        except (OSError, HeadwaterError) as exc:
            return JSONResponse({"text": "", "offset": 0, "size": 0, "note": f"cannot read the log {path}: {exc}"})
        start = max(0, len(data) - LOG_CHUNK) if offset is None else min(offset, len(data))
        chunk = data[start:start + LOG_CHUNK]
        return JSONResponse({"text": chunk.decode("utf-8", "replace"), "offset": start + len(chunk),
                             "size": len(data), "skipped": start, "note": ""})

    async def artifact_page(request: Request) -> Response:
        aid = _int(request.path_params["artifact_id"], "artifact id") or 0

        def load() -> dict[str, Any]:
            detail = objects.artifact_detail(dash, aid)
            params: dict[str, Any] = {}
            if detail["producer"]:
                params = objects.execution_detail(dash, detail["producer"]["execution_id"])["parameters"]
            detail["view"] = view_for(ViewContext(detail["artifact"], params, dash))
            detail["files"] = list_files(detail["artifact"].uri)
            return detail

        try:
            detail = await locked(load)
        except HeadwaterError as exc:
            return error(request, exc)
        return page(request, "artifact.html", title=detail["artifact"].label, **detail)

    async def artifact_file(request: Request) -> Response:
        aid = _int(request.path_params["artifact_id"], "artifact id") or 0
        rel = request.query_params.get("path", "")
        raw = request.url.path.endswith("/raw")
        try:
            art = (await locked(lambda: objects.artifact_detail(dash, aid)))["artifact"]
            if raw:
                path = safe_path(art.uri, rel)
                if path.is_dir():
                    raise FileRefused(f"{rel!r} is a folder")
                # Reports (data validation's report.html) render, sandboxed by FILE_CSP: no script, nothing fetched.
                media = IMAGES.get(path.suffix.lower()) or (
                    "text/html; charset=utf-8" if path.suffix.lower() == ".html" else "text/plain; charset=utf-8")
                return FileResponse(path, media_type=media, headers={"content-security-policy": FILE_CSP})
            shown = preview(art.uri, rel)
        except FileRefused as exc:
            return error(request, exc, 403)
        except HeadwaterError as exc:
            return error(request, exc)
        return page(request, "file.html", title=f"{art.label}: {rel}", artifact=art, file=shown)

    async def artifact_plots(request: Request) -> Response:
        from headwater.ui.ml import evaluation_plots

        aid = _int(request.path_params["artifact_id"], "artifact id") or 0
        try:
            art = (await locked(lambda: objects.artifact_detail(dash, aid)))["artifact"]
        except HeadwaterError as exc:
            return error(request, exc)
        return JSONResponse(await run_in_threadpool(evaluation_plots, art.uri))

    async def artifact_rows(request: Request) -> Response:
        from headwater.ui.ml import example_rows

        aid = _int(request.path_params["artifact_id"], "artifact id") or 0
        try:
            art = (await locked(lambda: objects.artifact_detail(dash, aid)))["artifact"]
        except HeadwaterError as exc:
            return error(request, exc)
        return JSONResponse(await run_in_threadpool(example_rows, art.uri, request.query_params.get("split", "train")))

    async def execution_page(request: Request) -> Response:
        eid = _int(request.path_params["execution_id"], "execution id") or 0
        try:
            detail = await locked(lambda: objects.execution_detail(dash, eid))
        except HeadwaterError as exc:
            return error(request, exc)
        return page(request, "execution.html", title=f"Execution {eid}", **detail)

    async def lineage_page(request: Request) -> Response:
        q = request.query_params
        start = q.get("start", "")
        direction = q.get("direction", "both")
        try:
            depth = _int(q.get("depth"), "depth")
            data = await locked(lambda: objects.lineage(dash, start, direction=direction,
                                                        depth=2 if depth is None else depth or None))
        except HeadwaterError as exc:
            return error(request, exc, 400)
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        return page(request, "lineage.html", title=f"Lineage of {start}", data=data, start=start,
                    direction=direction, pushed=start.startswith("artifact:") and any(
                        e["data"]["id"] == start and e["data"]["label"].startswith("PushedModel")
                        for e in data["elements"]))

    async def explain_page(request: Request) -> Response:
        from headwater.metadata.lineage import explain_push

        aid = request.path_params["artifact_id"]
        try:
            exp = await locked(lambda: explain_push(dash.raw, aid))
        except HeadwaterError as exc:
            return error(request, exc)
        return page(request, "explain.html", title=f"Why is {aid} serving?", exp=exp, text=exp.to_text(),
                    artifact_id=aid)

    async def compare_page(request: Request) -> Response:
        ids = request.query_params.getlist("runs")
        try:
            data = await locked(lambda: objects.compare_runs(dash, ids))
        except HeadwaterError as exc:
            return error(request, exc, 400)
        return page(request, "compare.html", title="Compare runs", data=data)

    async def models_page(request: Request) -> Response:
        groups = await locked(lambda: objects.models(dash))
        return page(request, "models.html", title="Models", groups=groups)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "store": dash.display, "time": time.time()})

    routes = [
        Route("/", runs_page), Route("/api/runs", runs_page),
        Route("/runs/{run_id}", run_page), Route("/api/runs/{run_id}", run_page),
        Route("/api/runs/{run_id}/log/{node}", run_log),
        Route("/artifacts/{artifact_id}", artifact_page),
        Route("/artifacts/{artifact_id}/file", artifact_file), Route("/artifacts/{artifact_id}/raw", artifact_file),
        Route("/api/artifacts/{artifact_id}/plots", artifact_plots),
        Route("/api/artifacts/{artifact_id}/rows", artifact_rows),
        Route("/executions/{execution_id}", execution_page),
        Route("/lineage", lineage_page), Route("/api/lineage", lineage_page),
        Route("/explain/{artifact_id}", explain_page),
        Route("/compare", compare_page), Route("/models", models_page), Route("/healthz", health),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    if runs_form is not None:  # before /runs/{run_id}, which would take /runs/new
        routes = runs_form(page, dash) + routes
    async def refused(request: Request, exc: Exception) -> Response:
        return error(request, exc, 403 if isinstance(exc, FileRefused) else 400)

    app = Starlette(routes=routes, exception_handlers={HeadwaterError: refused})
    app.state.dashboard = dash
    return Guard(app, token=token, allow_runs=allow_runs, hosts=hosts)
