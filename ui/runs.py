"""Starting a run from the browser (``headwater ui --allow-runs --pipeline FILE``): local runner only.

The form lists the pipeline's runtime parameters with their defaults and descriptions; a submitted form is
checked like ``--param`` (``Pipeline.resolve_params``), then the run starts in its own process, which is
the only writer of MLMD for it (the dashboard itself stays read-only). A POST must carry the CSRF token of
the form (double-submit cookie) and, when the browser sends one, an Origin of this server.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from headwater.metadata.errors import HeadwaterError

__all__ = ["RunStarter", "main"]

CSRF_COOKIE = "headwater_ui_csrf"


class RunStarter:
    """The pipelines that may be started, and the processes started for them."""

    def __init__(self, pipeline_files: Sequence[str], metadata: str | None) -> None:
        from headwater.pipelines.loader import load_pipeline

        self.pipelines = {}
        for f in pipeline_files:
            p = load_pipeline(f)
            self.pipelines[p.name] = (str(Path(f).resolve()), p)
        self.metadata = metadata
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, values: dict[str, str], experiment: str | None) -> str:
        from headwater.pipelines.runner import new_run_id

        file, pipeline = self.pipelines[name]
        pipeline.resolve_params(values)  # the --param rules: unknown names and wrong types are refused here
        run_id = new_run_id()
        cmd = [sys.executable, "-m", "headwater.ui.runs", file, run_id, "--metadata", self.metadata or "",
               "--experiment", experiment or ""]
        for k, v in values.items():
            cmd += ["--param", f"{k}={v}"]
        self.processes = [p for p in self.processes if p.poll() is None]
        self.processes.append(subprocess.Popen(cmd, cwd=str(Path(file).parent), stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True))
        return run_id


    def close(self, timeout: float = 60) -> None:
        """Wait for the runs started here (then stop any still going, by pid)."""
        for p in self.processes:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.terminate()
                p.wait(10)
        self.processes = []


def routes(starter: RunStarter) -> Callable[..., list[Any]]:
    """Starlette routes of the form (given to ``create_app(runs_form=...)``)."""
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    def make(page: Callable[..., Response], dash: Any) -> list[Any]:
        def form(request: Request, name: str, *, errors: str = "", values: dict[str, str] | None = None,
                 status: int = 200) -> Response:
            token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
            _, pipeline = starter.pipelines[name]
            params = [{"name": p.name, "default": "" if p.default is None else str(p.default),
                       "value": (values or {}).get(p.name, "" if p.default is None else str(p.default)),
                       "type": p.type.__name__ if p.type else "str", "description": p.description}
                      for p in pipeline.runtime_parameters.values()]
            response = page(request, "new_run.html", status_code=status, title=f"New run of {name}",
                            pipeline=name, pipelines=sorted(starter.pipelines), params=params, csrf=token,
                            errors=errors)
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
            return response

        async def new_run(request: Request) -> Response:
            if request.method == "GET":
                name = request.query_params.get("pipeline") or sorted(starter.pipelines)[0]
                if name not in starter.pipelines:
                    return page(request, "error.html", status_code=404, title="not found",
                                message=f"pipeline {name!r} cannot be started here; these can: "
                                        f"{', '.join(sorted(starter.pipelines))}")
                return form(request, name)
            data = await request.form()
            name = str(data.get("pipeline", ""))
            cookie = request.cookies.get(CSRF_COOKIE, "")
            sent = str(data.get("csrf", ""))
            origin = request.headers.get("origin")
            if not cookie or not secrets.compare_digest(cookie, sent) or (
                    origin is not None and origin.split("://", 1)[-1] != request.headers.get("host", "")):
                return page(request, "error.html", status_code=403, title="refused",
                            message="the form's CSRF check failed: open the form again and submit it from there")
            if name not in starter.pipelines:
                return page(request, "error.html", status_code=404, title="not found",
                            message=f"pipeline {name!r} cannot be started here")
            _, pipeline = starter.pipelines[name]
            values = {k: str(data[k]) for k in pipeline.runtime_parameters if str(data.get(k, "")) != ""}
            try:
                run_id = starter.start(name, values, str(data.get("experiment") or "") or None)
            except HeadwaterError as exc:
                return form(request, name, errors=str(exc), values=values, status=400)
            return RedirectResponse(f"/runs/{run_id}", status_code=303)

        return [Route("/runs/new", new_run, methods=["GET", "POST"])]

    return make


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m headwater.ui.runs FILE RUN_ID [--metadata URI] [--experiment NAME] [--param K=V]...``."""
    import argparse

    from headwater.pipelines.cli._args import key_values
    from headwater.pipelines.loader import load_pipeline
    from headwater.pipelines.runner import LocalRunner

    parser = argparse.ArgumentParser(prog="python -m headwater.ui.runs")
    parser.add_argument("pipeline_file")
    parser.add_argument("run_id")
    parser.add_argument("--metadata", default="")
    parser.add_argument("--experiment", default="")
    parser.add_argument("--param", action="append", default=[])
    args = parser.parse_args(argv)
    pipeline = load_pipeline(args.pipeline_file)
    result = LocalRunner(metadata=args.metadata or None, quiet=True).run(
        pipeline, key_values(args.param, "--param"), run_id=args.run_id, experiment=args.experiment or None)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
