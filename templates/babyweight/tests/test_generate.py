"""The data generator: deterministic per year, plausible values, and the shipped file is its output."""

import csv
import importlib.util
import statistics
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
spec = importlib.util.spec_from_file_location("generate", DATA / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def test_same_year_same_records_other_year_other_records():
    assert generate.records(2005, 50) == generate.records(2005, 50)
    assert generate.records(2005, 50) != generate.records(2006, 50)


def test_shipped_data_is_exactly_what_the_generator_writes(tmp_path):
    shipped = sorted(DATA.glob("natality-*.csv"))
    assert shipped, "no natality-<year>.csv in data/"
    for path in shipped:
        year = int(path.stem.split("-")[1])
        rows = sum(1 for _ in path.open()) - 1
        regenerated = generate.write_year(year, rows, tmp_path)
        assert regenerated.read_bytes() == path.read_bytes(), f"{path.name} differs from the generator's output"


def test_values_are_plausible():
    rows = generate.records(2005, 3000)
    weights = [float(r["weight_pounds"]) for r in rows]
    assert 6.8 < statistics.mean(weights) < 7.6 and 1.0 < statistics.pstdev(weights) < 1.5
    assert all(0.5 <= w <= 13.0 for w in weights)
    assert {r["is_male"] for r in rows} == {"true", "false"}
    assert {r["plurality"] for r in rows} == {"1", "2", "3"}
    assert all(14 <= int(r["mother_age"]) <= 50 for r in rows)
    weeks = [r["gestation_weeks"] for r in rows]
    assert all(22 <= int(w) <= 44 for w in weeks if w)
    assert 0.005 < weeks.count("") / len(weeks) < 0.03  # about 1.5% missing


def test_weight_follows_gestation_and_plurality():
    rows = [r for r in generate.records(2005, 4000) if r["gestation_weeks"]]

    def mean_weight(keep):
        return statistics.mean(float(r["weight_pounds"]) for r in rows if keep(r))

    term, preterm = mean_weight(lambda r: int(r["gestation_weeks"]) >= 39), mean_weight(
        lambda r: int(r["gestation_weeks"]) <= 34)
    assert term > preterm + 2
    assert mean_weight(lambda r: r["plurality"] == "1") > mean_weight(lambda r: r["plurality"] == "2") + 1
    assert generate.expected_weight(40, 1, True, 30) == pytest.approx(7.8)


def test_header(tmp_path):
    with generate.write_year(2010, 3, tmp_path).open() as f:
        assert next(csv.reader(f)) == generate.COLUMNS
