"""Label and field selectors, parsed and matched the way the API server does.

Label selector grammar (``k8s.io/apimachinery/pkg/labels``): a comma-separated list of requirements, each
one of ``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``. Field selectors support ``metadata.name``, ``metadata.namespace`` and
``status.phase`` (pods) with ``=``, ``==`` and ``!=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SelectorError", "parse_field_selector", "parse_label_selector"]

_KEY = r"(?:[A-Za-z0-9.\-]+/)?[A-Za-z0-9](?:[A-Za-z0-9_.\-]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([A-Za-z0-9_.\-]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """A selector that does not parse; the API server answers 400 BadRequest."""


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects without the key, as Kubernetes does.
        return not present or value not in self.values


def _split_top_level(selector: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(selector: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over an object's labels; an empty selector matches everything."""
    requirements: list[_Requirement] = []
    for part in _split_top_level(selector or ""):
        if m := _SET_RE.match(part):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            requirements.append(_Requirement(m.group(1), m.group(2), values))
        elif m := _CMP_RE.match(part):
            op = "=" if m.group(2) in ("=", "==") else "!="
            requirements.append(_Requirement(m.group(1), op, (m.group(3),)))
        elif m := _EXISTS_RE.match(part):
            requirements.append(_Requirement(m.group(2), "!" if m.group(1) else "exists", ()))
        else:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")

    def predicate(labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in requirements)

    return predicate


_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
}


def parse_field_selector(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over a whole object for the supported field selectors."""
    checks: list[tuple[Callable[[dict[str, Any]], str], bool, str]] = []
    for part in _split_top_level(selector or ""):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid selector: {part.strip()!r}; can't understand it")
        field, op, value = m.groups()
        if field not in _FIELDS:
            raise SelectorError(f'field label not supported: "{field}"')
        checks.append((_FIELDS[field], op != "!=", value))

    def predicate(obj: dict[str, Any]) -> bool:
        return all((get(obj) == value) == equal for get, equal, value in checks)

    return predicate
