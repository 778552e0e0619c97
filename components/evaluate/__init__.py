"""Evaluate: TFMA over the eval split, against the latest blessed model, and ALWAYS a blessing.

::

    config = EvalConfig(
        label_key="species_xf",
        preprocessing_signatures=("transform_features",),
        metrics=(
            Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9),
                   change=ChangeThreshold(absolute=-1e-10)),
            Metric("ExampleCount"),
        ),
        slices=(Slice(), Slice(features=("island",))),
    )
    evaluate = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                        baseline_model=latest.outputs.model, eval_config=config)

``eval_config`` is an :class:`EvalConfig`, the same as a dict or YAML text (``EvalConfig.from_dict`` /
``from_yaml``), or a ``tfma.EvalConfig`` taken as is.

A threshold gates the whole eval set only, unless its ``slices=`` says ``"all"`` (every evaluated slice)
or lists slices (each among ``EvalConfig.slices``); other slices are reported, not gated.

Blessing policy (recorded on the blessing as ``blessing_message``, TFX's property name, which gives each
failed threshold's slice, value, bound and comparison, and for change thresholds the baseline and change):

* thresholds configured: BLESSED iff every threshold passes on the slices it applies to. Without a baseline
  model (the first run) change thresholds are skipped — TFX's "rubber stamp" — and value thresholds still
  apply. A metric undefined on a slice (a per-class AUC where the class does not occur) is not checked there;
* no thresholds configured: ``no_thresholds="not_blessed"`` (the default, as TFX does: a model nobody set a
  bar for is not pushed) or ``"blessed"`` (bless whatever trained, e.g. for a demo pipeline).

Outputs: ``evaluation`` holds TFMA's results (``metrics-*``, ``plots-*``, ``validations-*``,
``eval_config.json``) plus ``metrics.json`` and ``metrics.md`` (every metric per slice, candidate,
baseline and difference; ``null`` / ``n/a`` with the reason where undefined) and, for classifiers,
``confusion_matrix.png|svg`` and ``roc.png|svg`` (drawn with matplotlib, see
:mod:`headwater.components.evaluate._charts`);
``blessing`` holds an empty ``BLESSED`` or ``NOT_BLESSED`` file and TFX's custom properties ``blessed``,
``current_model``, ``current_model_id``, ``baseline_model``, ``baseline_model_id``.

Modules: :mod:`.config` (the typed configuration, public), ``_tfma`` (TFMA planning and checks),
``_report`` (result tables, blessing messages, chart data), ``_charts`` (matplotlib charts, reusable),
``_component`` (the component).
"""

from headwater.components._layout import BLESSED_FILE, NOT_BLESSED_FILE
from headwater.components.evaluate._component import Evaluate
from headwater.components.evaluate.config import (
    ChangeThreshold,
    Direction,
    EvalConfig,
    Metric,
    Slice,
    ValueThreshold,
    normalize_eval_config,
)

__all__ = [
    "BLESSED_FILE",
    "NOT_BLESSED_FILE",
    "ChangeThreshold",
    "Direction",
    "EvalConfig",
    "Evaluate",
    "Metric",
    "Slice",
    "ValueThreshold",
    "normalize_eval_config",
]
