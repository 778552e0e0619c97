"""Offline HTML reports of statistics and validation results (one self-contained file: no scripts, no
network; histograms are inline SVG).

:func:`render_html` is the entry point a viewer calls with an artifact folder: an ``ExampleStatistics``
folder gives feature tables and histograms per split, an ``ExampleAnomalies`` folder the findings and
every drift/skew value (and the data's tables when the report written next to it is there). Statistics and
Validate write ``report.html`` into their artifacts with the same functions.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["REPORT_FILE", "render_html", "render_statistics", "render_validation"]

REPORT_FILE = "report.html"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;font-size:.9em;
vertical-align:top}th{background:#f3f3f3;text-align:left}.num{text-align:right}.block{color:#b00020;font-weight:bold}
.warn{color:#a86500}.ok{color:#1b5e20}.exceeded{background:#fde7e9}svg{display:block}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>\n{body}\n</body></html>\n")


def _bars(heights: list[float], labels: list[str], width: int = 220, height: int = 60) -> str:
    if not heights:
        return ""
    top = max(heights) or 1.0
    step = width / len(heights)
    rects = []
    for i, (h, label) in enumerate(zip(heights, labels, strict=True)):
        bar = max(1.0, h / top * (height - 2)) if h else 0.0
        rects.append(f"<rect x='{i * step:.1f}' y='{height - bar:.1f}' width='{max(step - 1, 1):.1f}' "
                     f"height='{bar:.1f}' fill='#3b6ea5'><title>{_e(label)}: {h:g}</title></rect>")
    return f"<svg width='{width}' height='{height}' role='img'>{''.join(rects)}</svg>"


def _feature_name(feat: Any) -> str:
    return ".".join(feat.path.step) if feat.HasField("path") else feat.name


def _histogram(feat: Any) -> str:
    if feat.HasField("num_stats"):
        for hist in feat.num_stats.histograms:
            if hist.type == hist.STANDARD:
                return _bars([b.sample_count for b in hist.buckets],
                             [f"{b.low_value:g}..{b.high_value:g}" for b in hist.buckets])
    if feat.HasField("string_stats"):
        buckets = list(feat.string_stats.rank_histogram.buckets)[:20]
        return _bars([b.sample_count for b in buckets], [b.label for b in buckets])
    return ""


def _common(feat: Any) -> Any:
    for name in ("num_stats", "string_stats", "bytes_stats", "struct_stats"):
        if feat.HasField(name):
            return getattr(feat, name).common_stats
    return None


def render_statistics(stats_by_split: Mapping[str, Any]) -> str:
    """Feature tables and histograms of ``{split: DatasetFeatureStatisticsList}`` (an HTML fragment)."""
    parts = []
    for split, stats in stats_by_split.items():
        for dataset in stats.datasets:
            rows = []
            for feat in sorted(dataset.features, key=_feature_name):
                common = _common(feat)
                present = (common.num_non_missing if common else 0)
                missing = (common.num_missing if common else 0)
                total = present + missing
                if feat.HasField("num_stats"):
                    n = feat.num_stats
                    summary = (f"mean {n.mean:.4g} · std {n.std_dev:.4g} · min {n.min:.4g} · median {n.median:.4g} "
                               f"· max {n.max:.4g} · zeros {n.num_zeros}")
                elif feat.HasField("string_stats"):
                    s = feat.string_stats
                    top = ", ".join(f"{v.value} ({v.frequency:g})" for v in s.top_values[:5])
                    summary = f"{s.unique} unique · top: {top}"
                else:
                    summary = ""
                rows.append(
                    f"<tr><td>{_e(_feature_name(feat))}</td><td>{_e(type(feat).Type.Name(feat.type))}</td>"
                    f"<td class='num'>{present}</td><td class='num'>{(missing / total if total else 0):.1%}</td>"
                    f"<td>{_e(summary)}</td><td>{_histogram(feat)}</td></tr>"
                )
            parts.append(
                f"<h2>Split {_e(split)} — {dataset.num_examples} examples</h2><table><tr><th>feature</th>"
                "<th>type</th><th>present</th><th>missing</th><th>summary</th><th>distribution</th></tr>"
                + "".join(rows) + "</table>"
            )
    return "\n".join(parts)


def render_validation(doc: Mapping[str, Any], stats_by_split: Mapping[str, Any] | None = None) -> str:
    """A whole page: the verdict, the findings, every drift/skew value, then the data's tables."""
    passed = bool(doc.get("passed"))
    spans = doc.get("spans") or {}
    verdict = ("<p class='ok'>PASSED: no blocking anomaly.</p>" if passed else
               "<p class='block'>BLOCKED: the nodes that consume this data do not run.</p><pre>"
               + _e(doc.get("blocked_reason", "")) + "</pre>")
    span_text = f"<p>span {_e(spans.get('current'))}; previous span {_e(spans.get('previous'))}</p>"
    findings = doc.get("findings") or []
    rows = "".join(
        f"<tr><td>{_e(f['split'])}</td><td>{_e(f['feature'])}</td><td>{_e(f['rule'])}</td>"
        f"<td class='{_e(f['severity'])}'>{_e(f['severity'])}</td><td>{_e(f['kind'])}</td><td>{_e(f['text'])}</td></tr>"
        for f in findings
    )
    table = ("<table><tr><th>split</th><th>feature</th><th>rule</th><th>severity</th><th>anomaly</th>"
             f"<th>what was seen</th></tr>{rows}</table>") if findings else "<p>No anomalies.</p>"
    measures = doc.get("measurements") or []
    mrows = "".join(
        f"<tr class='{'exceeded' if m['exceeded'] else ''}'><td>{_e(m['split'])}</td><td>{_e(m['feature'])}</td>"
        f"<td>{_e(m['rule'])}</td><td>{_e(m['measure'])}</td><td class='num'>{m['value']:.4g}</td>"
        f"<td class='num'>{m['threshold']:g}</td><td>{'above' if m['exceeded'] else 'below'}</td>"
        f"<td>{_e(m['severity'])}</td></tr>"
        for m in measures
    )
    mtable = ("<table><tr><th>split</th><th>feature</th><th>rule</th><th>measure</th><th>value</th>"
              f"<th>threshold</th><th></th><th>severity</th></tr>{mrows}</table>") if measures else (
        "<p>No drift or skew measured (no previous span, no serving data, or no Drift/Skew rules).</p>")
    body = (verdict + span_text + "<h2>Anomalies</h2>" + table + "<h2>Drift and skew (every value)</h2>" + mtable
            + (render_statistics(stats_by_split) if stats_by_split else ""))
    return _page("Data validation", body)


def render_html(artifact_dir: str | Path) -> str:
    """The report of an ExampleStatistics or ExampleAnomalies artifact folder, as one HTML page."""
    from headwater.components.validation._stats import STATS_FILE, read_statistics
    from headwater.components.validation._validate import VALIDATION_FILE

    folder = Path(artifact_dir)
    if (folder / VALIDATION_FILE).is_file():
        written = folder / REPORT_FILE
        if written.is_file():
            return written.read_text(encoding="utf-8")
        return render_validation(json.loads((folder / VALIDATION_FILE).read_text()))
    splits = sorted(p.name[len("Split-"):] for p in folder.glob("Split-*") if (p / STATS_FILE).is_file())
    if not splits:
        raise FileNotFoundError(
            f"{folder} is neither an ExampleStatistics folder (Split-<name>/{STATS_FILE}) nor an ExampleAnomalies "
            f"folder ({VALIDATION_FILE})"
        )
    stats = {s: read_statistics(str(folder), s) for s in splits}
    return _page(f"Statistics — {folder}", render_statistics(stats))
