"""BatchPredict throughput on 1M babyweight rows, beside a bare Beam pipeline calling RunInference.

    python benchmarks/batch_predict_bench.py                    # 1,000,000 rows, 3 runs each
    python benchmarks/batch_predict_bench.py --rows 100000 --runs 1

The rows come from the babyweight template's seeded generator (``templates/babyweight/data/generate.py``,
year 2005), ingested once into one split. The model is a small Keras regression network (two hidden
layers) trained here on 20,000 of the rows, saved with a ``serving_default`` signature that parses
serialized ``tf.Example``\\ s — the shape of the template's model, without tf.Transform, so the figure is
about the batch machinery rather than the model.

Timed, each on the same gzip TFRecords and the in-memory DirectRunner (one worker):

* ``bare``: ``ReadFromTFRecord`` → ``RunInference`` → ``WriteToTFRecord`` of the PredictionLogs, the
  floor;
* ``BatchPredict``: the component through a pipeline run (``require_blessing=False``), which also writes
  the Parquet table; with ``label_key`` it also measures the predictions against ``weight_pounds`` with
  TFMA (regression metrics).

Printed: the median wall time and examples/s of ``--runs`` runs of each, and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "support"))

import bench_components as bc  # noqa: E402


def make_data(folder: Path, rows: int) -> Path:
    sys.path.insert(0, str(ROOT / "templates" / "babyweight" / "data"))
    import generate

    path = folder / f"natality-2005-{rows}.csv"
    if not path.exists():
        tmp = generate.write_year(2005, rows, folder)
        tmp.rename(path)
    return path


def make_model(csv_path: Path, out: Path) -> Path:
    """A small Keras regression model over the four features, serving serialized tf.Examples."""
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    if (out / "Format-Serving" / "saved_model.pb").exists():
        return out
    frame = pd.read_csv(csv_path, nrows=20_000)
    x = np.stack([frame["is_male"].astype(str).eq("True").astype("float32") + frame["is_male"].astype(str).eq(
        "true").astype("float32"), frame["mother_age"].astype("float32") / 50.0,
        frame["plurality"].astype("float32") / 3.0, frame["gestation_weeks"].fillna(39).astype("float32") / 44.0],
        axis=1)
    y = frame["weight_pounds"].to_numpy("float32")
    inputs = tf.keras.Input(shape=(4,))
    hidden = tf.keras.layers.Dense(32, activation="relu")(inputs)
    hidden = tf.keras.layers.Dense(16, activation="relu")(hidden)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(hidden))
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=3, batch_size=256, verbose=0)
    spec = {"is_male": tf.io.FixedLenFeature([1], tf.int64, default_value=0),  # Ingest reads true/false as 1/0
            "mother_age": tf.io.FixedLenFeature([1], tf.int64, default_value=30),
            "plurality": tf.io.FixedLenFeature([1], tf.int64, default_value=1),
            "gestation_weeks": tf.io.FixedLenFeature([1], tf.int64, default_value=39)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        f = tf.io.parse_example(serialized, spec)
        x = tf.concat([tf.cast(f["is_male"], tf.float32),
                       tf.cast(f["mother_age"], tf.float32) / 50.0, tf.cast(f["plurality"], tf.float32) / 3.0,
                       tf.cast(f["gestation_weeks"], tf.float32) / 44.0], axis=1)
        return {"weight_pounds": model(x)}

    holder = tf.Module()
    holder.model, holder.serve = model, serve  # tracked, so the variables are saved with the signature
    tf.saved_model.save(holder, str(out / "Format-Serving"), signatures={"serving_default": serve})
    return out


def bare(pattern: str, model_dir: str, out: str) -> float:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_serving.apis import prediction_log_pb2
    from tfx_bsl.public.beam import run_inference
    from tfx_bsl.public.proto import model_spec_pb2

    spec = model_spec_pb2.InferenceSpecType(saved_model_spec=model_spec_pb2.SavedModelSpec(
        model_path=model_dir, signature_name=["serving_default"], tag=["serve"]))
    started = time.perf_counter()
    options = PipelineOptions(["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    with beam.Pipeline(options=options) as p:
        _ = (p | beam.io.ReadFromTFRecord(pattern, coder=beam.coders.BytesCoder())
             | run_inference.RunInference(spec)
             | beam.io.WriteToTFRecord(os.path.join(out, "prediction_logs"), file_name_suffix=".gz",
                                       coder=beam.coders.ProtoCoder(prediction_log_pb2.PredictionLog)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "headwater-batch-predict-bench")
    parser.add_argument("--no-label", action="store_true", help="time BatchPredict without label_key only")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 2 (tf_keras), as the templates' models use

    from headwater.components import BatchPredict, Ingest
    from headwater.pipelines import LocalRunner, Pipeline

    data = args.work / "data"
    data.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    csv_path = make_data(data, args.rows)
    print(f"data: {args.rows} rows in {csv_path} ({time.perf_counter() - t0:.1f} s)", flush=True)
    model_src = make_model(csv_path, args.work / "model")

    root = args.work / f"root-{args.rows}"
    ingest = Ingest(input_base=str(data), splits={"all": csv_path.name},
                    label="weight_pounds")
    imported = bc.import_model(path=str(model_src)).with_id("ImportModel")
    with_label = BatchPredict(examples=ingest.outputs.examples, model=imported.outputs.model, require_blessing=False,
                              label_key=None if args.no_label else "weight_pounds")
    pipeline = Pipeline(name="batch_predict_bench", root=str(root), nodes=[ingest, imported, with_label],
                        metadata=f"sqlite:///{root / 'metadata.sqlite'}")
    runner = LocalRunner(quiet=True)
    t0 = time.perf_counter()
    first, second = runner.run(pipeline, to_node="Ingest"), runner.run(pipeline, to_node="ImportModel")
    assert first.ok and second.ok, {n: r.error for n, r in {**first.nodes, **second.nodes}.items() if r.error}
    [examples] = first.outputs("Ingest", "examples")
    [model] = second.outputs("ImportModel", "model")
    print(f"ingested and imported the model in {time.perf_counter() - t0:.1f} s", flush=True)
    pattern = os.path.join(examples.uri, "Split-all", "*.gz")
    model_dir = os.path.join(model.uri, "Format-Serving")

    bare_times, component_times = [], []
    for i in range(args.runs):
        out = tempfile.mkdtemp(dir=args.work)
        bare_times.append(bare(pattern, model_dir, out))
        print(f"bare RunInference run {i + 1}: {bare_times[-1]:.1f} s", flush=True)
        started = time.perf_counter()
        result = runner.run(pipeline, from_node="BatchPredict", cache=False)
        component_times.append(time.perf_counter() - started)
        assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
        [inference] = result.outputs("BatchPredict", "inference_result")
        assert inference.custom_properties["predicted"] == args.rows, inference.custom_properties
        seconds = inference.custom_properties['seconds']
        print(f"BatchPredict run {i + 1}: {component_times[-1]:.1f} s (node: {seconds} s)"
              f" {inference.custom_properties.get('metrics', {})}", flush=True)
    load = os.getloadavg()
    for name, times in (("bare RunInference", bare_times), ("BatchPredict" + ("" if args.no_label else
                                                                              " (+Parquet, +TFMA metrics)"),
                                                              component_times)):
        median = statistics.median(times)
        print(f"{name:42s} median {median:7.1f} s  {args.rows / median:9.0f} examples/s  (runs: "
              f"{', '.join(f'{t:.1f}' for t in times)})")
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
