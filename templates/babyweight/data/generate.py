"""Generate natality-style records: one CSV per birth year, ``natality-<year>.csv``.

THE DATA IS SYNTHETIC. The babyweight walk-through this template follows reads the US natality data
set (BigQuery ``publicdata.samples.natality``), which is not reachable from here. This script draws
records that look like it, from a model of it written down below, with a fixed seed per year: the same
year always gives the same file, byte for byte.

Columns (one row per birth):

* ``weight_pounds`` — the label: birth weight in pounds;
* ``is_male`` — ``true``/``false``;
* ``mother_age`` — whole years, 14 to 50;
* ``plurality`` — 1 (single), 2 (twins), 3 (triplets);
* ``gestation_weeks`` — whole weeks, 22 to 44; about 1.5% are missing (an empty field), as in the real data.

How the weight is drawn (pounds): a growth curve in gestation weeks, ``7.5 * exp(-0.0045 d^2 - 0.03 d)``
with ``d = 40 - weeks`` (7.5 lb at 40 weeks, about 4.4 at 32, 2.7 at 28); minus 0.8 for twins and 1.3 for
triplets (beyond their shorter gestation); plus 0.3 for boys; minus ``0.0015 (age - 30)^2`` for young and
old mothers; plus Gaussian noise with a standard deviation of 0.9; clipped to 0.5 .. 13. Gestation is
shorter for multiple births, and about 10% of single births are preterm. Each year drifts a little:
mothers are 0.15 years older on average per year after 2000.

Usage::

    python data/generate.py 2006              # writes data/natality-2006.csv (a new span)
    python data/generate.py 2006 --rows 5000  # more rows
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ["weight_pounds", "is_male", "mother_age", "plurality", "gestation_weeks"]
BASE_SEED = 20_240_601
MISSING_GESTATION = 0.015


def _weeks(rng: random.Random, plurality: int) -> int:
    if plurality == 1:
        mean, sd = (34.5, 3.0) if rng.random() < 0.10 else (39.2, 1.3)
    else:
        mean, sd = (35.5, 2.5) if plurality == 2 else (32.0, 2.5)
    return min(44, max(22, round(rng.gauss(mean, sd))))


def expected_weight(weeks: float, plurality: int, is_male: bool, mother_age: float) -> float:
    """The mean birth weight (pounds) the generator draws around; noise is added on top."""
    d = 40.0 - weeks
    weight = 7.5 * math.exp(-0.0045 * d * d - 0.03 * d)
    weight -= {1: 0.0, 2: 0.8, 3: 1.3}[plurality]
    weight += 0.3 if is_male else 0.0
    weight -= 0.0015 * (mother_age - 30.0) ** 2
    return weight


def records(year: int, rows: int) -> list[dict[str, str]]:
    """``rows`` records for ``year``; deterministic (the seed is derived from the year)."""
    return list(iter_records(year, rows))


def iter_records(year: int, rows: int) -> Iterator[dict[str, str]]:
    """The records of :func:`records` one by one (a file of millions of rows is written in constant memory)."""
    rng = random.Random(BASE_SEED + year)
    for _ in range(rows):
        is_male = rng.random() < 0.512
        age = min(50, max(14, round(rng.gauss(27.5 + 0.15 * (year - 2000), 6.0))))
        u = rng.random()
        plurality = 1 if u < 0.966 else 2 if u < 0.998 else 3
        weeks = _weeks(rng, plurality)
        weight = expected_weight(weeks, plurality, is_male, age) + rng.gauss(0.0, 0.9)
        weight = min(13.0, max(0.5, weight))
        missing = rng.random() < MISSING_GESTATION
        yield {
            "weight_pounds": f"{weight:.3f}",
            "is_male": "true" if is_male else "false",
            "mother_age": str(age),
            "plurality": str(plurality),
            "gestation_weeks": "" if missing else str(weeks),
        }


def write_year(year: int, rows: int = 2000, folder: Path = HERE) -> Path:
    """Write ``natality-<year>.csv`` into ``folder`` and return its path."""
    path = Path(folder) / f"natality-{year}.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(iter_records(year, rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Write synthetic natality-style records for one birth year.")
    parser.add_argument("year", type=int, help="birth year, e.g. 2006; the file is natality-<year>.csv")
    parser.add_argument("--rows", type=int, default=2000, help="number of records (default 2000)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write to (default: this one)")
    args = parser.parse_args()
    if not 1900 <= args.year <= 2100:
        parser.error(f"year {args.year} is not a plausible birth year (1900-2100)")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    print(write_year(args.year, args.rows, args.out))


if __name__ == "__main__":
    main()
