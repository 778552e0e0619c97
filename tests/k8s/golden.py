"""Golden Kubernetes manifests: capture what the runner sent, normalise machine-specific bits, compare.

Regenerate with ``HEADWATER_UPDATE_GOLDEN=1 pytest tests/k8s -k golden``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "k8s"
KUBERNETES_VERSION = "1.31.0"  # the oldest Kubernetes the manifests are validated against
ROOT_PLACEHOLDER = "/mnt/headwater/root"
REPO_PLACEHOLDER = "/app"


def validate(manifest: dict[str, Any]) -> None:
    """Validate against the Kubernetes OpenAPI schema (kubernetes-validate, strict: no unknown fields)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        name = manifest.get("metadata", {}).get("name")
        raise AssertionError(f"{manifest.get('kind')} {name}: {where}: {exc.message}") from None


def normalise(obj: Any, replacements: dict[str, str]) -> Any:
    """Machine paths and server-assigned uids replaced. ConfigMap data holding execution specs is shown
    parsed (readable diffs), with the ids of input artifacts replaced: parallel nodes publish in either
    order, so those ids are not stable."""
    if obj.get("kind") == "ConfigMap":
        obj = {**obj, "data": {key: _spec_view(value) for key, value in (obj.get("data") or {}).items()}}
    text = json.dumps(obj, sort_keys=True)
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    text = re.sub(r'"uid": "[0-9a-f-]{36}"', '"uid": "<uid of the Job>"', text)
    return json.loads(text)


def _spec_view(value: str) -> Any:
    try:
        spec = json.loads(value)
    except ValueError:
        return value
    if spec.get("headwater_version"):
        spec["headwater_version"] = "<headwater version>"
    for artifacts in (spec.get("inputs") or {}).values():
        for artifact in artifacts:
            artifact["id"] = "<artifact id>"
    return spec


def as_manifest(golden: dict[str, Any]) -> dict[str, Any]:
    """A golden file back as a manifest (spec views serialised to strings again), e.g. to validate it."""
    if golden.get("kind") == "ConfigMap":
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (golden.get("data") or {}).items()}
        return {**golden, "data": data}
    return golden


def compare(name: str, objects: dict[str, dict[str, Any]]) -> None:
    """``objects``: file stem -> manifest. Writes them when HEADWATER_UPDATE_GOLDEN is set."""
    folder = GOLDEN / name
    if os.environ.get("HEADWATER_UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.yaml"):
            old.unlink()
        for stem, manifest in objects.items():
            (folder / f"{stem}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, width=100))
    expected = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))}
    assert sorted(expected) == sorted(objects), "set HEADWATER_UPDATE_GOLDEN=1 to regenerate"
    for stem, manifest in objects.items():
        assert manifest == expected[stem], f"{folder / stem}.yaml differs; set HEADWATER_UPDATE_GOLDEN=1 to regenerate"
