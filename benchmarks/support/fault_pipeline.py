"""The pipeline the fault campaign kills: make a model (a SavedModel layout of a few MB), bless it, and
push it with the real Push. ``HW_FAULT_ROOT`` is the pipeline root; the destination is ``<root>/../serving``.

The model's content is fixed by the ``seed`` parameter, so a rerun pushes the same content (and Push's
content idempotence keeps the served version)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from headwater.components import Input, Output, Param, component
from headwater.components.push import Push
from headwater.metadata import types
from headwater.pipelines import Pipeline

ROOT = os.environ["HW_FAULT_ROOT"]
SERVING = str(Path(ROOT).parent / "serving")


@component
def make_model(model: Output[types.Model], seed: int = 1, size_mb: int = 8, seconds: float = 0.5) -> None:
    serving = Path(model.path) / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    rng = random.Random(seed)
    with open(serving / "variables" / "variables.data-00000-of-00001", "wb") as f:
        for _ in range(size_mb):
            f.write(rng.randbytes(1 << 20))
            time.sleep(seconds / max(size_mb, 1))
    (serving / "variables" / "variables.index").write_bytes(rng.randbytes(64))
    (serving / "saved_model.pb").write_bytes(b"model-" + str(seed).encode())


@component
def bless(model: Input[types.Model], blessing: Output[types.ModelBlessing], seconds: float = 0.3) -> None:
    from headwater.components.evaluate import BLESSED_FILE

    time.sleep(seconds)
    (Path(blessing.path) / BLESSED_FILE).write_bytes(b"")
    blessing.custom_properties.update({"blessed": 1, "current_model_id": model.id, "current_model": model.uri})


trainer = make_model(seed=Param("seed", default=1)).with_id("Train")
evaluator = bless(model=trainer.outputs.model).with_id("Evaluate")
pusher = Push(model=trainer.outputs.model, blessing=evaluator.outputs.blessing, destination=SERVING)

pipeline = Pipeline(name="faults", root=ROOT, nodes=[trainer, evaluator, pusher])
