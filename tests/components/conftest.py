"""Fixtures for the ML components: the real Palmer penguins data through Ingest → Transform → Train.

The session trains one model (real TensorFlow, tf.Transform, Beam) in one pipeline root and metadata
store; tests that need more nodes run a pipeline with the same upstream nodes under their own pipeline
name, which reuses those executions through the cache (the cache is keyed by content, not by pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TESTDATA = Path(__file__).resolve().parent / "testdata"
PENGUIN_MODULE = TESTDATA / "penguin_module.py"


@dataclass
class PenguinSetup:
    """A pipeline root with penguin data, and a way to run Ingest → Transform → Train (+ more nodes)."""

    root: Path
    data: Path
    metadata: str

    def upstream(self, *, module_file: str | Path = PENGUIN_MODULE, train_steps: int = 100, seed: int | None = 1,
                 **train_kwargs: Any) -> tuple[Any, Any, Any]:
        from headwater.components.ingest import Ingest
        from headwater.components.train import Train
        from headwater.components.transform import Transform

        ingest = Ingest(input_base=str(self.data), label="species")
        transform = Transform(examples=ingest.outputs.examples, schema=ingest.outputs.schema,
                              module_file=str(PENGUIN_MODULE))
        train = Train(examples=transform.outputs.transformed_examples,
                      transform_graph=transform.outputs.transform_graph, schema=ingest.outputs.schema,
                      module_file=str(module_file), train_steps=train_steps, eval_steps=5, seed=seed,
                      **train_kwargs)
        return ingest, transform, train

    def run(self, name: str, nodes: Sequence[Any], **kwargs: Any) -> Any:
        from headwater.pipelines import LocalRunner, Pipeline

        pipeline = Pipeline(name=name, root=str(self.root), nodes=list(nodes), metadata=self.metadata)
        return LocalRunner(quiet=True).run(pipeline, **kwargs)

    def store(self) -> Any:
        from headwater.metadata import connect

        return connect(self.metadata)


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> PenguinSetup:
    from headwater.components._data import penguins_csv

    root = tmp_path_factory.mktemp("penguin-root")
    data = tmp_path_factory.mktemp("penguin-data")
    penguins_csv(data / "penguins.csv")
    return PenguinSetup(root, data, f"sqlite:///{root / 'metadata.sqlite'}")


@pytest.fixture(scope="session")
def trained(penguins: PenguinSetup) -> Any:
    """One successful Ingest → Transform → Train run (100 steps, seed 1) of the penguin module."""
    result = penguins.run("penguin_base", penguins.upstream())
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result
