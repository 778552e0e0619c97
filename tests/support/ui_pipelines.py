"""Small pipelines for the dashboard's tests: an artifact property holding markup, and a slow run."""

from __future__ import annotations

import os

from headwater.pipelines import Param, Pipeline
from hw_test_components import consume, produce

ROOT = os.environ.get("HW_UI_ROOT", "runs")
MARKUP = "<script>window.__hw_xss = 1</script><b>bold?</b>"

a = produce(value=MARKUP).with_id("markup")
slow_a = produce(seconds=Param("delay", default=3.0), value="slow").with_id("first")
slow_b = consume(examples=slow_a.outputs.data, note=Param("note", default="n")).with_id("second")

markup = Pipeline(name="markup", root=os.path.join(ROOT, "markup"), nodes=[a])
pipeline = Pipeline(name="slow", root=os.path.join(ROOT, "slow"), nodes=[slow_a, slow_b],
                    params=[Param("delay", default=3.0), Param("note", default="n")])
