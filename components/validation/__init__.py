"""Data validation that gates training: Statistics, a curated schema, Validate (anomalies, drift, skew).

::

    from headwater.components.validation import (Drift, ImportSchema, PreviousStatistics, Statistics,
                                                 Validate)

    stats = Statistics(examples=ingest.outputs.examples)                    # TFDV on Beam, per split
    schema = ImportSchema(schema_file="schema/schema.pbtxt")                # curated, kept in the project
    previous = PreviousStatistics(statistics=stats.outputs.statistics)      # the previous span's
    validate = Validate(statistics=stats.outputs.statistics, schema=schema.outputs.schema,
                        previous_statistics=previous.outputs.statistics,
                        rules=[Drift("island", linf=0.25), Drift("body_mass_g", jensen_shannon=0.2)])

Artifacts follow TFX: ``ExampleStatistics`` (``Split-<name>/FeatureStats.pb``), ``Schema``
(``schema.pbtxt``), ``ExampleAnomalies`` (``Split-<name>/SchemaDiff.pb``), plus ``validation.json`` and a
self-contained ``report.html`` (:func:`render_html`). ``Validate`` is a data gate: a blocking finding stops
every node that consumes the validated Examples (state ``blocked``), on every backend. Importing this
package imports neither TensorFlow nor TFDV.
"""

from headwater.components.validation._schema import ImportSchema, diff_schema, infer_schema, parse_schema_file
from headwater.components.validation._stats import (
    STATS_FILE,
    PreviousStatistics,
    Statistics,
    read_statistics,
    statistics_path,
)
from headwater.components.validation._validate import (
    ANOMALIES_FILE,
    VALIDATION_FILE,
    Finding,
    Measurement,
    Validate,
    validation_gate,
)
from headwater.components.validation.report import REPORT_FILE, render_html
from headwater.components.validation.rules import Bounds, Drift, Rule, SchemaCheck, Severity, Skew

__all__ = [
    "ANOMALIES_FILE",
    "REPORT_FILE",
    "STATS_FILE",
    "VALIDATION_FILE",
    "Bounds",
    "Drift",
    "Finding",
    "ImportSchema",
    "Measurement",
    "PreviousStatistics",
    "Rule",
    "SchemaCheck",
    "Severity",
    "Skew",
    "Statistics",
    "Validate",
    "diff_schema",
    "infer_schema",
    "parse_schema_file",
    "read_statistics",
    "render_html",
    "statistics_path",
    "validation_gate",
]
