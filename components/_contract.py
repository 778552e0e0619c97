"""The contract between an orchestrator and the image an executor runs in, checked rather than assumed.

An orchestrator (the Kubernetes runner, or the KFP compiler) writes its headwater version into what it
sends (``ExecutionSpec.headwater_version``, the KFP plan's ``headwater_version``) and names the image in
the pod's ``HEADWATER_IMAGE`` variable. The entrypoint in the pod compares: a different major.minor
version, or an execution-spec ``api_version`` it does not know, fails the node with a message saying which
image has which version, instead of whatever stack trace the difference would cause later. A component
whose code (or a module it needs) cannot be imported in the image is reported by module and image.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

IMAGE_ENV = "HEADWATER_IMAGE"
_RELEASE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?")


@functools.cache
def headwater_version() -> str:
    """The installed headwater's version (``0+unknown`` for a source tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("headwater")
    except PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
        return "0+unknown"


def this_image() -> str:
    """How messages name the environment this process runs in: the image the orchestrator asked for."""
    image = os.environ.get(IMAGE_ENV)
    return f"image {image}" if image else "this environment"


def _release(version: str) -> tuple[int, int] | None:
    match = _RELEASE.match(version or "")
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def version_problem(sent: str | None, what: str = "the pipeline was compiled with") -> str | None:
    """Why an executor with this headwater cannot serve an orchestrator of version ``sent`` (None: it can).

    Versions agree when their major.minor releases are equal (patch releases keep the executor contract);
    an unknown version on either side is not refused.
    """
    mine = headwater_version()
    if not sent or sent == mine:
        return None
    theirs, ours = _release(sent), _release(mine)
    if theirs is None or ours is None or theirs == ours:
        return None
    return (f"{this_image()} has headwater {mine}, {what} headwater {sent}: the image and the orchestrator "
            f"must run the same headwater release ({theirs[0]}.{theirs[1]}.x). Rebuild the image with "
            f"headwater=={sent} (headwater k8s dockerfile writes one), or run the orchestrator with "
            f"headwater {mine}")


def spec_problem(data: Mapping[str, Any], api_version: str) -> str | None:
    """Why the execution spec ``data`` cannot be run here: another headwater release, another api_version."""
    problem = version_problem(data.get("headwater_version"), "the orchestrator that sent this node runs")
    if problem:
        return problem
    sent_api = data.get("api_version")
    if sent_api != api_version:
        sender = data.get("headwater_version")
        who = f"headwater {sender}" if sender else "the orchestrator"
        return (f"{this_image()} (headwater {headwater_version()}) understands execution specs "
                f"{api_version!r}, but {who} sent {sent_api!r}: use the same headwater release in the image "
                "and in the orchestrator")
    return None


def missing_modules(modules: Iterable[str]) -> list[str]:
    """Those of ``modules`` (top-level names first) that cannot be found in this environment."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            missing.append(name)
    return missing


def import_problem(exc: ImportError, component: str, module: str) -> str:
    """The message of a component whose code cannot be imported: which module is missing, in which image."""
    missing = getattr(exc, "name", None)
    if missing and missing != module:
        what = (f"its module {module!r} imports {missing!r}, which {this_image()} does not have: install it "
                "in the image (headwater k8s dockerfile --extra ... writes a Dockerfile with the extras "
                "components need)")
    else:
        what = (f"its module {module!r} is not importable in {this_image()}: put the pipeline's code into "
                f"the image (on PYTHONPATH), or give the node an image that has it ({exc})")
    return f"component {component!r} cannot be loaded: {what}"
