"""Charts for model results, drawn with matplotlib (Agg, no display): a confusion matrix and ROC curves.

A reusable API: each function takes plain data (a confusion matrix as rows of counts, curve points, class
names) and one or more output paths; the format follows each path's suffix (``.png``, ``.svg``, ``.pdf``).
Evaluate uses it for ``confusion_matrix.png|svg`` and ``roc.png|svg``, BatchPredict for those and
``pr.png|svg`` (both through ``_report.draw_charts``). matplotlib is imported inside the functions.

PNG files have a fixed size in pixels (see :func:`confusion_matrix_size` and :data:`ROC_SIZE`); SVG files
keep their text as text (class names can be searched and read by screen readers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DPI",
    "ROC_SIZE",
    "confusion_matrix_chart",
    "confusion_matrix_size",
    "pr_chart",
    "roc_chart",
]

#: Pixels per inch of PNG output.
DPI = 100
#: ROC chart size in inches (width, height); a PNG is ``ROC_SIZE * DPI`` pixels.
ROC_SIZE = (7.5, 5.5)
# Curves that lie on top of each other (a perfect classifier puts every class on the left and top edges)
# stay distinguishable by colour, line style, marker and width, and the legend says which is which.
_LINE_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

PathLike = str | os.PathLike[str]


def confusion_matrix_size(classes: int) -> tuple[float, float]:
    """The confusion matrix chart's size in inches for ``classes`` classes (it grows with the classes)."""
    side = max(4.0, 0.6 * classes + 1.6)
    return (round(side + 1.8, 2), round(side + 1.2, 2))


def _paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _new_figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)  # the Agg canvas: no display, no pyplot state shared between threads
    return figure


def _save(figure: Any, paths: PathLike | Sequence[PathLike]) -> list[str]:
    import matplotlib

    written = []
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "headwater"}):
        for path in _paths(paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            suffix = path.suffix.lower()
            # No creation dates: the same data gives the same file.
            metadata = {"Date": None} if suffix in (".svg", ".pdf") else {}
            figure.savefig(path, dpi=DPI, metadata=metadata)
            written.append(str(path))
    return written


def _count_text(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e12 else f"{value:.4g}"


def confusion_matrix_chart(
    matrix: Sequence[Sequence[float]],
    class_names: Sequence[str],
    paths: PathLike | Sequence[PathLike],
    *,
    title: str = "Confusion matrix",
) -> list[str]:
    """Draw ``matrix`` (rows: actual class, columns: predicted class; counts or weights) to ``paths``.

    Cells are shaded by their value and labelled with it; ``class_names`` label the rows and columns
    (missing names are the class ids). Returns the written paths.
    """
    n = len(matrix)
    if any(len(row) != n for row in matrix):
        raise ValueError(f"a confusion matrix is square; got {n} rows of lengths {[len(r) for r in matrix]}")
    names = [str(class_names[i]) if i < len(class_names) else str(i) for i in range(n)]
    figure = _new_figure(confusion_matrix_size(n))
    ax = figure.add_subplot()
    values = [[float(v) for v in row] for row in matrix]
    peak = max((v for row in values for v in row), default=0.0) or 1.0
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=peak)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="examples")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            ax.text(j, i, _count_text(value), ha="center", va="center",
                    color="white" if value / peak > 0.6 else "black")
    ax.set_xticks(range(n), labels=names, rotation=30 if max((len(s) for s in names), default=0) > 6 else 0,
                  ha="right" if max((len(s) for s in names), default=0) > 6 else "center")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("Actual class")
    ax.set_title(title)
    figure.tight_layout()
    return _save(figure, paths)


def roc_chart(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    paths: PathLike | Sequence[PathLike],
    *,
    title: str = "ROC curve",
) -> list[str]:
    """Draw ROC curves to ``paths``: ``curves`` maps a legend label (a class name, with its AUC if known)
    to ``(false positive rate, true positive rate)`` points. Returns the written paths."""
    return _curve_chart(curves, paths, title=title, axes=("False positive rate", "True positive rate"),
                        diagonal=True)


def pr_chart(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    paths: PathLike | Sequence[PathLike],
    *,
    title: str = "Precision-recall curve",
) -> list[str]:
    """Draw precision-recall curves to ``paths``: ``curves`` maps a legend label to ``(recall, precision)``
    points. Returns the written paths."""
    return _curve_chart(curves, paths, title=title, axes=("Recall", "Precision"), diagonal=False)


def _curve_chart(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    paths: PathLike | Sequence[PathLike],
    *,
    title: str,
    axes: tuple[str, str],
    diagonal: bool,
) -> list[str]:
    figure = _new_figure(ROC_SIZE)
    ax = figure.add_subplot()
    if diagonal:
        ax.plot([0, 1], [0, 1], color="#999999", linestyle=(0, (4, 4)), linewidth=1, label="chance")
    colors = [f"C{i}" for i in range(10)]
    count = len(curves)
    for n, (label, points) in enumerate(curves.items()):
        ordered = sorted((float(f), float(t)) for f, t in points)
        xs, ys = [p[0] for p in ordered], [p[1] for p in ordered]
        ax.plot(
            xs, ys,
            color=colors[n % len(colors)],
            linestyle=_LINE_STYLES[n % len(_LINE_STYLES)],
            marker=_MARKERS[n % len(_MARKERS)],
            markevery=max(1, len(xs) // 12),
            markersize=6,
            # Earlier curves are wider, so a later one drawn on top leaves them visible at its sides.
            linewidth=1.5 + 1.5 * (count - 1 - n) / max(1, count - 1),
            alpha=0.9,
            label=label,
            zorder=3 + n,
        )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_aspect("equal")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    figure.tight_layout()
    return _save(figure, paths)
