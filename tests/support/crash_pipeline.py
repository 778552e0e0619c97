"""A pipeline for crash, interrupt and concurrency tests, configured through the environment.

Sleep durations are read from files at run time (HW_<NODE>_SECONDS_FILE) so a test can make a re-run
fast without changing the pipeline's parameters (and so its cache keys).
"""

import os

import hw_test_components as c
from headwater.pipelines import Pipeline

ROOT = os.environ["HW_TEST_ROOT"]


def _sleeper(node_id: str):
    key = node_id.upper()
    return c.sleeper(
        seconds=0.2,
        marker=os.environ.get(f"HW_{key}_MARKER", ""),
        seconds_file=os.environ.get(f"HW_{key}_SECONDS_FILE", ""),
    ).with_id(node_id)


first = _sleeper("first")
second = _sleeper("second")
source = c.produce(value="v").with_id("source")
after = c.consume(examples=source.outputs.data).with_id("after")

pipeline = Pipeline(name="crashy", root=ROOT, nodes=[first, second, source, after])
