"""Small components that produce Models, blessings and spans of Examples, for the resolver tests."""

from __future__ import annotations

import json
from pathlib import Path

from headwater.components import Input, Output, component
from headwater.metadata import types


@component
def make_model(model: Output[types.Model], tag: str = "") -> None:
    serving = Path(model.uri, "Format-Serving")
    serving.mkdir()
    (serving / "saved_model.pb").write_text(f"model {tag}")
    model.custom_properties["tag"] = tag


@component
def bless(model: Input[types.Model], blessing: Output[types.ModelBlessing], blessed: int = 1) -> None:
    Path(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED").write_bytes(b"")
    blessing.custom_properties.update(
        {"blessed": blessed, "current_model": model.uri, "current_model_id": model.id or -1}
    )


@component
def make_examples(examples: Output[types.Examples], span: int = 0, version: int = 0) -> None:
    Path(examples.uri, "Split-train").mkdir()
    Path(examples.uri, "Split-train", "span.txt").write_text(f"{span}.{version}")
    examples.properties.update({"span": span, "version": version, "split_names": '["train"]'})


@component
def read_window(examples: Input[list[types.Examples]], model: Output[types.Model]) -> None:
    seen = [[e.properties["span"], e.properties["version"], e.id] for e in examples]
    Path(model.uri, "window.json").write_text(json.dumps(seen))
    model.custom_properties["window"] = seen
