"""The sandboxed half of InfraValidate: ``python -m headwater.serving.probe SPEC.json PROGRESS.jsonl``.

Run by :mod:`headwater.components.infra_validate` in a child process of its own session. It caps its own
memory first (``RLIMIT_DATA``: heap and anonymous mappings, where TensorFlow keeps tensors; no core
files), then loads the SavedModel with :class:`~headwater.serving._model.LoadedModel` — the class
``headwater serve`` answers requests with — and, in ``LOAD_AND_QUERY`` mode, sends TF Serving ``:predict``
requests built from real examples through it and checks the responses against the signature. Each step
appends one JSON line to PROGRESS (``{"phase": ...}``), the last one ``{"verdict": ...}``, so the parent
knows how far a child got even when it is killed or dies.
"""

from __future__ import annotations

import base64
import json
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from headwater.serving._json import TensorSpec

__all__ = ["build_request", "check_response", "main"]


def _feature_values(example: Any, name: str) -> list[Any] | None:
    if name not in example.features.feature:
        return None
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def _json_value(values: list[Any], spec: TensorSpec) -> Any:
    if spec.dtype == "DT_STRING":
        converted: list[Any] = []
        for v in values:
            try:
                converted.append(v.decode() if isinstance(v, bytes) else str(v))
            except UnicodeDecodeError:
                converted.append({"b64": base64.b64encode(v).decode()})
    elif spec.dtype.startswith(("DT_INT", "DT_UINT")):
        converted = [int(v) for v in values]
    elif spec.dtype == "DT_BOOL":
        converted = [bool(v) for v in values]
    else:
        converted = [float(v) for v in values]
    if spec.shape is not None and len(spec.shape) == 1:
        return converted[0] if converted else None
    return converted


def build_request(signature: Any, records: Sequence[bytes]) -> dict[str, Any]:
    """A row-format ``:predict`` request for ``signature`` from serialized ``tf.Example`` records.

    A signature with one string input gets the serialized examples (``{"b64": ...}``), as TF Serving's
    clients and TFX's InfraValidator send them; any other gets one object per example whose inputs are the
    example's features of the same names. Raises ``ValueError`` naming what the examples lack.
    """
    from tensorflow.core.example import example_pb2

    inputs: Mapping[str, TensorSpec] = signature.inputs
    if len(inputs) == 1 and next(iter(inputs.values())).dtype == "DT_STRING":
        return {"signature_name": signature.name,
                "instances": [{"b64": base64.b64encode(r).decode()} for r in records]}
    instances = []
    for index, record in enumerate(records):
        example = example_pb2.Example.FromString(record)
        row = {}
        for alias, spec in inputs.items():
            values = _feature_values(example, alias)
            if not values:
                present = ", ".join(sorted(example.features.feature)) or "none"
                raise ValueError(f"example {index} has no value for input '{alias}' of signature "
                                 f"'{signature.name}' (the examples' features: {present})")
            row[alias] = _json_value(values, spec)
        instances.append(row)
    return {"signature_name": signature.name, "instances": instances}


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str) or (isinstance(v, dict) and set(v) == {"b64"}),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def _kind(dtype: str) -> str:
    if dtype == "DT_STRING":
        return "string"
    if dtype == "DT_BOOL":
        return "bool"
    return "int" if dtype.startswith(("DT_INT", "DT_UINT")) else "float"


def _check_value(value: Any, spec: TensorSpec, row: int) -> str | None:
    want = None if spec.shape is None else spec.shape[1:]
    leaves: list[Any] = []

    def shape_of(v: Any) -> tuple[int, ...]:
        if isinstance(v, list):
            inner = {shape_of(x) for x in v}
            return (len(v), *(inner.pop() if len(inner) == 1 else (-2,)))
        leaves.append(v)
        return ()

    shape = shape_of(value)
    if want is not None and (len(shape) != len(want) or any(w not in (-1, g) for w, g in zip(want, shape,
                                                                                              strict=True))):
        return (f"output '{spec.alias}' of example {row} has shape {list(shape)}, the signature declares "
                f"{list(want)} per example")
    kind = _kind(spec.dtype)
    bad = next((v for v in leaves if not _CHECKS[kind](v)), None)
    if bad is not None:
        return (f"output '{spec.alias}' of example {row} holds {json.dumps(bad)}, not a {kind} as its dtype "
                f"{spec.dtype} says")
    return None


def check_response(signature: Any, response: Mapping[str, Any], count: int) -> str | None:
    """What is wrong with a ``:predict`` response for ``count`` examples, or None."""
    predictions = response.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != count:
        got = len(predictions) if isinstance(predictions, list) else type(predictions).__name__
        return f"the response holds {got} predictions for {count} examples"
    outputs: Mapping[str, TensorSpec] = signature.outputs
    for row, prediction in enumerate(predictions):
        if len(outputs) == 1:
            values = {next(iter(outputs)): prediction}
        elif not isinstance(prediction, dict) or set(prediction) != set(outputs):
            return f"prediction {row} is {json.dumps(prediction)[:200]}, not an object with outputs {sorted(outputs)}"
        else:
            values = prediction
        for alias, value in values.items():
            problem = _check_value(value, outputs[alias], row)
            if problem:
                return problem
    return None


def _memory_words(text: str) -> bool:
    return any(w in text for w in ("MemoryError", "OOM when allocating", "ResourceExhausted", "bad_alloc",
                                   "Cannot allocate memory", "out of memory"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    spec = json.loads(Path(args[0]).read_text())
    progress = open(args[1], "a")  # noqa: SIM115 - kept open for the life of the process

    def note(**fields: Any) -> None:
        progress.write(json.dumps(fields) + "\n")
        progress.flush()

    limit = int(spec["memory_limit_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    note(phase="import")
    import tensorflow  # noqa: F401 - imported here so its cost and memory are the sandbox's
    from headwater.serving._json import RequestError
    from headwater.serving._model import LoadedModel, ModelLoadError

    note(phase="load")
    started = time.perf_counter()
    try:
        model = LoadedModel(spec["model_dir"], 0)
    except ModelLoadError as exc:
        note(verdict="not_blessed", stage="load", message=str(exc), memory=_memory_words(str(exc)))
        return 0
    except MemoryError:
        note(verdict="not_blessed", stage="load", message="MemoryError while loading the model", memory=True)
        return 0
    load_seconds = time.perf_counter() - started
    names = spec["signature_names"] or ["serving_default"]
    missing = [n for n in names if n not in model.signatures]
    if missing:
        known = ", ".join(sorted(model.signatures)) or "none"
        note(verdict="not_blessed", stage="signature",
             message=f"the model has no signature {', '.join(map(repr, missing))} (its signatures: {known})")
        return 0
    note(phase="query", load_seconds=load_seconds)
    records = [base64.b64decode(r) for r in spec["records"]]
    queries = []
    if spec["mode"] == "LOAD_AND_QUERY":
        for name in names:
            signature = model.signatures[name]
            try:
                request = build_request(signature, records)
            except ValueError as exc:
                note(verdict="not_blessed", stage="request", message=f"cannot build a request: {exc}")
                return 0
            began = time.perf_counter()
            try:
                response = model.predict(request)
            except RequestError as exc:
                note(verdict="not_blessed", stage="query", signature=name, memory=exc.status == 503,
                     message=f"a :predict request of {len(records)} examples to signature '{name}' failed "
                     f"(HTTP {exc.status}): {exc}")
                return 0
            except MemoryError:
                note(verdict="not_blessed", stage="query", signature=name, memory=True,
                     message=f"MemoryError while answering a :predict request to signature '{name}'")
                return 0
            problem = check_response(signature, response, len(records))
            if problem:
                note(verdict="not_blessed", stage="response", signature=name,
                     message=f"signature '{name}' answered, but {problem}")
                return 0
            queries.append({"signature": name, "examples": len(records),
                            "seconds": round(time.perf_counter() - began, 4)})
    note(verdict="blessed", load_seconds=round(load_seconds, 4), queries=queries,
         signatures=sorted(model.signatures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
