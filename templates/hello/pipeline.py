"""hello — the smallest headwater pipeline: two producers in parallel and a join.

Run it with ``headwater run pipeline.py``; run it again and every node is served from the cache.
Change ``--param greeting=...`` and only what depends on it runs again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from headwater.components import Input, Output, component
from headwater.metadata import types
from headwater.pipelines import Param, Pipeline

HERE = Path(__file__).resolve().parent
PIPELINE_NAME = "hello"


@component
def make_words(words: Output[types.Examples], text: str = "hello", pause: float = 0.0) -> None:
    """Split ``text`` into words and write them as JSON lines."""
    time.sleep(pause)
    with open(Path(words.path) / "words.jsonl", "w") as f:
        for w in text.split():
            f.write(json.dumps({"word": w}) + "\n")
    words.custom_properties["count"] = len(text.split())


@component
def count(left: Input[types.Examples], right: Input[types.Examples], summary: Output[types.Model]) -> None:
    """Count the words of both inputs."""
    total = 0
    for part in (left, right):
        with open(Path(part.path) / "words.jsonl") as f:
            total += sum(1 for _ in f)
    (Path(summary.path) / "summary.json").write_text(json.dumps({"words": total}))
    summary.custom_properties["words"] = total
    print(f"counted {total} words")


left = make_words(text=Param("greeting", default="hello headwater"), pause=0.5).with_id("left")
right = make_words(text="lineage you can question", pause=0.5).with_id("right")
summary = count(left=left.outputs.words, right=right.outputs.words).with_id("count")

pipeline = Pipeline(name=PIPELINE_NAME, root=str(HERE / "runs"), nodes=[left, right, summary])
