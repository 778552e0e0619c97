"""An artifact's files: listing and size-capped previews, confined to the URI recorded in MLMD.

A path is served only when it resolves (symlinks followed) inside the artifact's folder: ``..`` parts and
symlinks leading out are refused with :class:`FileRefused`. Object-store URIs are not listed.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from headwater.metadata.errors import HeadwaterError

__all__ = ["MAX_LIST", "MAX_PREVIEW", "FileRefused", "list_files", "overall_metrics", "preview", "safe_path"]

MAX_PREVIEW = 64 * 1024
MAX_LIST = 300
TEXT = {".txt", ".log", ".pbtxt", ".yaml", ".yml", ".py", ".cfg", ".ini", ".sql", ".svg"}
IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
          ".svg": "image/svg+xml", ".webp": "image/webp"}


class FileRefused(HeadwaterError):
    """A path outside the artifact's recorded URI, or one that does not exist."""


def _local_root(uri: str) -> Path | None:
    if "://" in uri:
        return None
    return Path(uri)


def safe_path(uri: str, rel: str) -> Path:
    """``rel`` inside the artifact at ``uri``, or :class:`FileRefused` when it would leave it."""
    root = _local_root(uri)
    if root is None:
        raise FileRefused(f"artifact files at {uri} are in an object store; the dashboard previews local files only")
    parts = Path(rel).parts
    if rel.startswith("/") or ".." in parts or "\\" in rel or "\0" in rel:
        raise FileRefused(f"path {rel!r} is refused: give a path inside the artifact folder {uri}, without '..'")
    base = root.resolve()
    target = (root / rel).resolve()
    if target != base and not target.is_relative_to(base):
        raise FileRefused(f"path {rel!r} leads outside the artifact folder {uri} (a symlink?); refused")
    if not target.exists():
        raise FileRefused(f"no file {rel!r} in artifact folder {uri}")
    return target


def list_files(uri: str) -> dict[str, Any]:
    """``{"files": [{path, size, kind}], "total": bytes, "truncated": bool, "note": str}``."""
    root = _local_root(uri)
    if root is None:
        return {"files": [], "total": 0, "truncated": False, "note": f"{uri} is in an object store: not listed"}
    if not root.exists():
        return {"files": [], "total": 0, "truncated": False, "note": f"{uri} does not exist on this machine"}
    if root.is_file():
        return {"files": [{"path": "", "size": root.stat().st_size, "kind": kind(root.name)}],
                "total": root.stat().st_size, "truncated": False, "note": ""}
    base = root.resolve()
    files: list[dict[str, Any]] = []
    total = 0
    truncated = False
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath, name)
            rel = str(full.relative_to(root))
            resolved = full.resolve()
            outside = not resolved.is_relative_to(base)
            size = 0 if outside or not resolved.exists() else resolved.stat().st_size
            total += size
            if len(files) >= MAX_LIST:
                truncated = True
                continue
            files.append({"path": rel, "size": size, "kind": "refused" if outside else kind(name)})
    return {"files": files, "total": total, "truncated": truncated, "note": ""}


def kind(name: str) -> str:
    ext = Path(name).suffix.lower()
    if ext in IMAGES:
        return "image"
    if ext == ".csv":
        return "csv"
    if ext == ".json":
        return "json"
    if ext == ".md":
        return "markdown"
    if ext in TEXT or not ext:
        return "text"
    return "binary"


def preview(uri: str, rel: str) -> dict[str, Any]:
    """A preview of one file: ``{"kind", "text"|"rows"|"html"|"image", "truncated", "size"}``."""
    path = safe_path(uri, rel)
    if path.is_dir():
        raise FileRefused(f"{rel!r} is a folder of artifact {uri}; pick a file")
    size = path.stat().st_size
    k = kind(path.name)
    out: dict[str, Any] = {"kind": k, "path": rel, "size": size, "truncated": size > MAX_PREVIEW}
    if k in ("image", "binary"):
        return out
    with path.open("rb") as fh:
        data = fh.read(MAX_PREVIEW)
    text = data.decode("utf-8", errors="replace")
    if k == "csv":
        out["rows"] = list(csv.reader(io.StringIO(text)))[:100]
    elif k == "json":
        try:
            out["text"] = json.dumps(json.loads(text), indent=2) if not out["truncated"] else text
        except ValueError:
            out["text"] = text
    elif k == "markdown":
        from markdown_it import MarkdownIt

        # raw HTML in the file is shown as text, and unsafe link schemes are dropped by markdown-it itself
        out["html"] = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    else:
        out["text"] = text
    return out


def read_json(uri: str, rel: str) -> Any:
    try:
        path = safe_path(uri, rel)
        return json.loads(path.read_text())
    except (FileRefused, OSError, ValueError):
        return None


def overall_metrics(uri: str) -> dict[str, Any]:
    """Every candidate metric of the Overall slice of a headwater evaluation (``metrics.json``)."""
    data = read_json(uri, "metrics.json")
    if not isinstance(data, dict):
        return {}
    overall = (data.get("slices") or {}).get("Overall") or {}
    return {k: v.get("candidate") for k, v in overall.items() if isinstance(v, dict) and v.get("candidate") is not None}
