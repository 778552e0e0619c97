"""BatchPredict: predict with a (blessed) model on every example, on Beam with tfx-bsl's RunInference.

::

    batch = BatchPredict(examples=holdout.outputs.examples, model=train.outputs.model,
                         model_blessing=evaluate.outputs.blessing, label_key="species")

TFX's BulkInferrer, with a table people can open. The output is TFX's ``InferenceResult``:

* ``prediction_logs-*.gz``: gzip TFRecord files of tensorflow-serving ``PredictionLog`` protos, one per
  example, as BulkInferrer writes them (TFX tools and ``tf.data.TFRecordDataset(..., "GZIP")`` read them);
* ``predictions/part-*.parquet``: one row per example: its features (single values as scalars, text as
  text), ``split``, and the prediction — ``scores`` (the class probabilities), ``predicted_class`` and
  ``predicted_score`` for a classifier (``score`` and ``predicted_class`` 0/1 for a single-probability
  binary one), ``prediction`` for a regression;
* with ``label_key`` (the label among the examples' features): ``evaluation/`` — TFMA's metrics and
  plots of the predictions against the labels, computed by TFMA without re-running the model, and
  ``metrics.json``, ``metrics.md``, ``confusion_matrix.png|svg``, ``roc.png|svg``, ``pr.png|svg``,
  written by the same code as Evaluate's (:mod:`headwater.components.evaluate`);
* ``batch_predict.json``: what ran (rows, splits, signature, task, metrics, files).

The model runs in-process on Beam through ``tfx_bsl.public.beam.run_inference.RunInference`` with a
SavedModel spec for ``signature_name``; tfx-bsl picks classify, regress or predict from the signature's
method, as BulkInferrer does. Beam runs with the node's ``beam_args`` (by default the in-memory
DirectRunner), so a non-direct runner spreads the work like Transform's and Statistics'.

Before the pipeline starts, BatchPredict runs the model on a sample of the examples in the driver: a
missing signature, a feature the model needs that the examples lack, a label that is not a feature, or a
text label that names no class of the model fail there, naming what is wrong and the fix. The task
(``multiclass``, ``binary``, ``regression``) is read from the answers unless ``task=`` says it; class
names come from ``class_names=``, the answers (a ``classes`` output) or the label's tf.Transform
vocabulary saved with the model (as Evaluate finds them).

The gate: with ``require_blessing=True`` (the default) a ``model_blessing`` must be wired (checked when
the node is declared) and must bless this model — the runner skips the node with the reason, and the
executor itself refuses (:class:`BatchPredictRefusedError`) — set ``require_blessing=False`` to predict
with an unblessed model.
"""

from headwater.components.batch_predict._component import (
    PREDICTION_LOGS_PREFIX,
    PREDICTIONS_DIR,
    BatchPredict,
    BatchPredictRefusedError,
)
from headwater.components.batch_predict._convert import TASKS

__all__ = ["PREDICTIONS_DIR", "PREDICTION_LOGS_PREFIX", "TASKS", "BatchPredict", "BatchPredictRefusedError"]
