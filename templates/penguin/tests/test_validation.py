"""A corrupted copy of the data (body mass exported in kilograms) is blocked before Transform: the
pipeline's own validation nodes find it, and nothing after them runs."""

import csv
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def _corrupted_copy(folder: Path) -> Path:
    rows = list(csv.DictReader((PROJECT / "data" / "penguins.csv").open(newline="")))
    for row in rows:
        if row["body_mass_g"] not in ("", "NA"):
            row["body_mass_g"] = str(round(int(row["body_mass_g"]) / 1000))  # kilograms, not grams
    folder.mkdir()
    with (folder / "penguins.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_corrupted_data_is_blocked_before_transform(tmp_path):
    import pipeline as project
    from headwater.components import Transform
    from headwater.pipelines import LocalRunner, Pipeline

    ingest, validation = project.validated_ingest(_corrupted_copy(tmp_path / "data"))
    transform = Transform(examples=ingest.outputs.examples, schema=ingest.outputs.schema,
                          module_file=str(PROJECT / "models" / "preprocessing.py"))
    pipeline = Pipeline(name="corrupted", root=str(tmp_path / "runs"), nodes=[ingest, *validation, transform])
    result = LocalRunner(max_workers=1, quiet=True).run(pipeline)
    assert not result.ok
    assert result.nodes["Validate"].state == "done"
    assert result.nodes["Transform"].state == "blocked"
    reason = result.nodes["Transform"].error
    assert "feature 'body_mass_g' (train): bounds" in reason, reason
    assert not (tmp_path / "runs" / "Transform").exists()
