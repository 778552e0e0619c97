"""``headwater ui``: a read-only web dashboard over ML Metadata (runs, live DAGs, artifacts, lineage, models).

Importing this package imports no web framework; :func:`create_app` and :func:`serve` import Starlette and
uvicorn (the ``ui`` extra) when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def create_app(store: Any, **kwargs: Any) -> Any:
    """The dashboard's ASGI application over ``store`` (see :func:`headwater.ui.app.create_app`)."""
    from headwater.ui.app import create_app as make

    return make(store, **kwargs)


def serve(store: Any, **kwargs: Any) -> None:
    """Serve the dashboard until interrupted (see :func:`headwater.ui.server.serve`)."""
    from headwater.ui.server import serve as run

    run(store, **kwargs)
