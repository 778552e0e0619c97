"""Train with a seed in a warm worker: two executions in one worker give the very model a fresh process gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ml_helpers import raw_eval_examples, serve

pytestmark = pytest.mark.ml


def _weights(model_uri: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(Path(model_uri, "Format-Serving", "variables", "variables")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "optimizer" not in name.lower() and not name.startswith("_CHECKPOINTABLE")}


def test_seeded_train_twice_in_one_warm_worker_matches_a_fresh_process(penguins, trained, warm):
    from headwater.pipelines import LocalRunner, Pipeline
    from headwater.pipelines.warm import pool_dirs, query

    ingest, transform, train = penguins.upstream(seed=1)
    nodes = [ingest, transform, train.with_id("TrainWarm1").with_caching(False),
             train.with_id("TrainWarm2").with_caching(False)]
    # The session pipeline's name: its Ingest and Transform are cached, the two Trains run in one worker.
    pipeline = Pipeline(name="penguin_base", root=str(penguins.root), nodes=nodes, metadata=penguins.metadata)
    result = LocalRunner(quiet=True, max_workers=1, keep_warm=120).run(pipeline)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    [folder] = list(pool_dirs(warm))
    status = query(folder)
    assert status is not None
    assert [w["executions"] for w in status["workers"]] == [2]  # one warm worker ran both
    cold = trained.outputs("Train", "model")[0].uri  # the session's model, trained in a fresh worker process
    warm_models = [result.outputs(n, "model")[0].uri for n in ("TrainWarm1", "TrainWarm2")]
    reference = _weights(cold)
    assert reference
    for uri in warm_models:
        weights = _weights(uri)
        assert weights.keys() == reference.keys()
        assert all(np.array_equal(weights[k], reference[k]) for k in reference), uri
    [examples] = trained.outputs("Ingest", "examples")
    records, _ = raw_eval_examples(examples.uri)
    predictions = [serve(str(Path(uri, "Format-Serving")), records) for uri in (cold, *warm_models)]
    assert all((p == predictions[0]).all() for p in predictions[1:])
