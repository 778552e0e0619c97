"""Charts (matplotlib): a confusion matrix and ROC curves as PNG and SVG, from plain data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("matplotlib")

from headwater.components.evaluate import _charts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.format, image.size


def _svg_texts(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return " ".join("".join(e.itertext()) for e in root.iter() if e.tag.endswith("text"))


def test_confusion_matrix_png_and_svg(tmp_path):
    names = ["Adelie", "Chinstrap", "Gentoo"]
    written = _charts.confusion_matrix_chart(
        [[30, 1, 0], [2, 12, 0], [0, 0, 25]], names, [tmp_path / "cm.svg", tmp_path / "cm.png"]
    )
    assert written == [str(tmp_path / "cm.svg"), str(tmp_path / "cm.png")]
    assert (tmp_path / "cm.png").read_bytes().startswith(PNG_SIGNATURE)
    width, height = _charts.confusion_matrix_size(3)
    assert _png_size(tmp_path / "cm.png") == ("PNG", (round(width * _charts.DPI), round(height * _charts.DPI)))
    texts = _svg_texts(tmp_path / "cm.svg")
    for expected in (*names, "Predicted class", "Actual class", "30", "12", "25"):
        assert expected in texts


def test_confusion_matrix_grows_with_the_classes_and_names_missing_classes_by_id(tmp_path):
    matrix = [[float(i == j) * 10 for j in range(12)] for i in range(12)]
    [path] = _charts.confusion_matrix_chart(matrix, ["a", "b"], tmp_path / "big.png")
    width, height = _charts.confusion_matrix_size(12)
    assert _charts.confusion_matrix_size(12)[0] > _charts.confusion_matrix_size(3)[0]
    assert _png_size(path)[1] == (round(width * _charts.DPI), round(height * _charts.DPI))
    _charts.confusion_matrix_chart(matrix, ["a", "b"], tmp_path / "big.svg")
    assert "11" in _svg_texts(tmp_path / "big.svg")  # class 11 has no name: its id labels it
    with pytest.raises(ValueError, match="a confusion matrix is square"):
        _charts.confusion_matrix_chart([[1, 2], [3]], [], tmp_path / "bad.png")


def test_roc_curves_label_both_axes_and_keep_overlapping_classes_apart(tmp_path):
    perfect = [(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]  # every class the same curve
    curves = {"Adelie (AUC 1.000)": perfect, "Chinstrap (AUC 1.000)": perfect, "Gentoo (AUC 1.000)": perfect}
    _charts.roc_chart(curves, [tmp_path / "roc.svg", tmp_path / "roc.png"])
    assert _png_size(tmp_path / "roc.png") == (
        "PNG", (round(_charts.ROC_SIZE[0] * _charts.DPI), round(_charts.ROC_SIZE[1] * _charts.DPI))
    )
    texts = _svg_texts(tmp_path / "roc.svg")
    assert "False positive rate" in texts and "True positive rate" in texts  # issue 13: the y-axis had no label
    for label in curves:
        assert label in texts  # the legend names every class
    # Issue 13: identical curves hid each other. Each is drawn with its own colour and line style.
    svg = (tmp_path / "roc.svg").read_text()
    root = ET.fromstring(svg)
    styles = set()
    for group in root.iter():
        if group.tag.endswith("g") and group.get("id", "").startswith("line2d"):
            for path in group:
                style = path.get("style") or ""
                if "stroke:" in style:
                    styles.add(style)
    stroke_colours = {s.split("stroke:")[1].split(";")[0] for s in styles}
    dash_styles = {("dasharray" in s, s.split("stroke-dasharray:")[1].split(";")[0] if "dasharray" in s else "")
                   for s in styles}
    assert len(stroke_colours) >= 4  # three classes and the chance line
    assert len(dash_styles) >= 3


def test_same_data_same_svg(tmp_path):
    curves = {"model (AUC 0.812)": [(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)]}
    _charts.roc_chart(curves, tmp_path / "a.svg")
    _charts.roc_chart(curves, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
