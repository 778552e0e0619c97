"""Which files Ingest reads: the pattern's files, their span and version, and their fingerprint."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from headwater.components import _data
from headwater.components.errors import InputDataError

__all__ = ["EXTENSIONS", "ResolvedInput", "fingerprint_resolved", "ingest_input_fingerprint", "resolve_input"]

#: The data files Ingest reads.
EXTENSIONS = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet")
_TOKEN_RE = re.compile(r"\{(SPAN|VERSION|YYYY|MM|DD)\}")


@dataclass(frozen=True)
class ResolvedInput:
    """The files one Ingest execution reads: per split (``None`` = to be hash-split), span and version."""

    files: Mapping[str | None, tuple[str, ...]]
    span: int
    version: int | None
    patterns: Mapping[str | None, str]

    def all_files(self) -> list[str]:
        return [f for fs in self.files.values() for f in fs]


def _normalize(path: str) -> str:
    if _data.is_url(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{re.sub('/+', '/', rest).rstrip('/')}"
    return os.path.normpath(path) if path else path


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Regex for a glob pattern with span tokens: ``*`` stays inside one path segment."""
    out = []
    i = 0
    while i < len(pattern):
        m = _TOKEN_RE.match(pattern, i)
        ch = pattern[i]
        if m:
            token = m.group(1)
            width = {"YYYY": 4, "MM": 2, "DD": 2}.get(token)
            out.append(f"(?P<{token}>\\d{{{width}}})" if width else f"(?P<{token}>\\d+)")
            i = m.end()
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def _check_tokens(pattern: str) -> None:
    tokens = _TOKEN_RE.findall(pattern)
    for token in set(tokens):
        if tokens.count(token) > 1:
            raise InputDataError(f"input pattern {pattern!r} holds {{{token}}} more than once; use it once")
    has_date = any(t in tokens for t in ("YYYY", "MM", "DD"))
    if has_date and not all(t in tokens for t in ("YYYY", "MM", "DD")):
        raise InputDataError(f"input pattern {pattern!r}: a date needs all of {{YYYY}}, {{MM}} and {{DD}}")
    if has_date and "SPAN" in tokens:
        raise InputDataError(
            f"input pattern {pattern!r} holds both {{SPAN}} and a date; the date is the span — use one"
        )
    if "VERSION" in tokens and not (has_date or "SPAN" in tokens):
        raise InputDataError(
            f"input pattern {pattern!r} holds {{VERSION}} without {{SPAN}} or a date; versions number the "
            "files of one span — add {SPAN} (or {YYYY}{MM}{DD}) to the pattern"
        )


def _match_files(full_pattern: str) -> list[tuple[str, int | None, int | None]]:
    """(path, span, version) of every data file matching ``full_pattern``."""
    _check_tokens(full_pattern)
    glob = _TOKEN_RE.sub("*", full_pattern)
    regex = _pattern_regex(full_pattern)
    found = []
    for path in _data.glob_files(glob):
        m = regex.match(path)
        if not m:
            continue
        groups = m.groupdict()
        span: int | None = None
        if groups.get("SPAN") is not None:
            span = int(groups["SPAN"])
        elif groups.get("YYYY") is not None:
            try:
                day = date(int(groups["YYYY"]), int(groups["MM"]), int(groups["DD"]))
            except ValueError:
                raise InputDataError(
                    f"file {path} matches input pattern {full_pattern!r} but its date "
                    f"{groups['YYYY']}-{groups['MM']}-{groups['DD']} is not a calendar date; rename it"
                ) from None
            span = (day - date(1970, 1, 1)).days
        version = int(groups["VERSION"]) if groups.get("VERSION") is not None else None
        found.append((path, span, version))
    return found


def _is_file(path: str) -> bool:
    if _data.is_url(path):
        return _data.glob_files(path) == [path]
    return os.path.isfile(path)


def _is_data_file(path: str) -> bool:
    return path.lower().endswith(EXTENSIONS)


def resolve_input(
    input_base: str,
    pattern: str | None = None,
    splits: Mapping[str, str] | None = None,
    span: int | None = None,
    version: int | None = None,
) -> ResolvedInput:
    """Choose the files to ingest: the given (or latest) span, and within it the given (or latest) version."""
    if not input_base:
        raise InputDataError("Ingest needs input_base: a folder, file or URL holding the data")
    base = _normalize(input_base)
    patterns: dict[str | None, str] = {}
    if splits:
        if pattern:
            raise InputDataError(
                "Ingest got both pattern= and splits=; splits maps each split name to its own pattern — "
                "put the pattern there"
            )
        for name, split_pattern in splits.items():
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                raise InputDataError(f"split name {name!r} is invalid: use letters, digits, '_' and '-'")
            patterns[name] = _data.join(base, split_pattern)
    elif pattern:
        patterns[None] = _data.join(base, pattern)
    elif _TOKEN_RE.search(base) or any(c in base for c in "*?[") or _is_file(base):
        patterns[None] = base
    else:
        patterns[None] = _data.join(base, "*")

    matched: dict[str | None, list[tuple[str, int | None, int | None]]] = {}
    for key, full in patterns.items():
        found = [f for f in _match_files(full) if _is_data_file(f[0]) or f[0] == full]
        if not found:
            where = f" for split {key!r}" if key else ""
            raise InputDataError(
                f"no input files match {full!r}{where}; Ingest reads {', '.join(EXTENSIONS)} files — check "
                "input_base and pattern (tokens: {SPAN}, {VERSION}, {YYYY}{MM}{DD})"
            )
        matched[key] = found

    spans_by_split = {k: {s for _, s, _ in v} for k, v in matched.items()}
    common = set.intersection(*spans_by_split.values())
    if span is None:
        if not common:
            per_split = {k: sorted(s, key=lambda x: -1 if x is None else x) for k, s in spans_by_split.items()}
            raise InputDataError(
                f"the splits have no span in common (spans per split: {per_split}); every split needs "
                "files for the span being ingested"
            )
        chosen_span = max(common, key=lambda x: -1 if x is None else x)
    else:
        if None in common:
            raise InputDataError(
                f"Ingest got span={span} but the input pattern has no {{SPAN}} or date token "
                f"({', '.join(p for p in patterns.values())}); add {{SPAN}} to the pattern or drop span="
            )
        if span not in common:
            available = sorted(x for x in common if x is not None)
            raise InputDataError(
                f"span {span} not found under {input_base!r} (available spans: {available or 'none'}); "
                "ingest one of those, or omit span= for the latest"
            )
        chosen_span = span

    files: dict[str | None, tuple[str, ...]] = {}
    versions = {v for fs in matched.values() for _, s, v in fs if s == chosen_span}
    chosen_version: int | None
    if version is not None:
        if version not in versions:
            raise InputDataError(
                f"version {version} of span {chosen_span} not found (available: "
                f"{sorted(v for v in versions if v is not None) or 'none'}); omit version= for the latest"
            )
        chosen_version = version
    else:
        chosen_version = None if versions == {None} else max(v for v in versions if v is not None)
    for key, fs in matched.items():
        chosen = tuple(sorted(p for p, s, v in fs if s == chosen_span and v == chosen_version))
        if not chosen:
            raise InputDataError(
                f"split {key!r} has no files for span {chosen_span} version {chosen_version}; "
                "every split needs files for the same span and version"
            )
        files[key] = chosen
    return ResolvedInput(files, int(chosen_span or 0), chosen_version, patterns)


def _param(parameters: Mapping[str, Any], key: str) -> Any:
    return parameters.get(key)


def ingest_input_fingerprint(parameters: dict[str, Any]) -> str:
    """Fingerprint of the files Ingest would read now: names, sizes, modification times / checksums.

    Runs in the orchestrator before the cache lookup, so new or changed files are a cache miss.
    """
    try:
        resolved = resolve_input(
            _param(parameters, "input_base") or "",
            _param(parameters, "pattern"),
            _param(parameters, "splits"),
            _param(parameters, "span"),
            _param(parameters, "version"),
        )
    except InputDataError as exc:
        # The executor reports the problem properly; never match a cached result meanwhile.
        return "unresolved:" + hashlib.sha256(f"{exc}{os.urandom(8).hex()}".encode()).hexdigest()
    return fingerprint_resolved(resolved)


def fingerprint_resolved(resolved: ResolvedInput) -> str:
    digest = hashlib.sha256()
    digest.update(f"span={resolved.span};version={resolved.version}\n".encode())
    for split, files in sorted(resolved.files.items(), key=lambda kv: kv[0] or ""):
        for path in files:
            digest.update(f"{split}\t{_data.file_info(path).fingerprint_line()}\n".encode())
    return digest.hexdigest()

