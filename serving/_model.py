"""One version of a served model: its SignatureDefs, and predict / classify / regress on JSON requests.

:class:`LoadedModel` is what ``headwater serve`` answers requests with and what InfraValidate's sandboxed
process loads and queries, so "it passed infra validation" means "``headwater serve`` loads it and answers
these requests". TensorFlow is imported when a model is loaded, never before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.serving._json import RequestError, TensorSpec, example_from_json, from_json, to_json

__all__ = ["CLASSIFY", "PREDICT", "REGRESS", "LoadedModel", "ModelLoadError", "Signature", "read_signatures"]

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
_INIT_OP = "__saved_model_init_op"


class ModelLoadError(Exception):
    """A version cannot be served: no SavedModel, unreadable, no serving signature, or TensorFlow refused it."""


@dataclass(frozen=True)
class Signature:
    """A SignatureDef: method, named inputs and outputs (aliases as clients use them)."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    proto_json: Mapping[str, Any]


def _spec(alias: str, info: Any) -> TensorSpec:
    from tensorflow.core.framework import types_pb2

    shape = None if info.tensor_shape.unknown_rank else tuple(int(d.size) for d in info.tensor_shape.dim)
    return TensorSpec(alias, types_pb2.DataType.Name(info.dtype), shape)


def read_signatures(version_dir: str | Path) -> dict[str, Signature]:
    """The serving SignatureDefs of the SavedModel in ``version_dir`` (its ``serve`` meta graph)."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(version_dir) / "saved_model.pb"
    try:
        saved = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    except FileNotFoundError:
        raise ModelLoadError(f"{version_dir} holds no saved_model.pb: it is not a SavedModel") from None
    except (OSError, DecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
    graphs = [g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags]
    if not graphs:
        tags = [list(g.meta_info_def.tags) for g in saved.meta_graphs]
        raise ModelLoadError(f"the SavedModel at {version_dir} has no meta graph tagged 'serve' (tags: {tags}); "
                             "export it with tf.saved_model.save or model.save, which tag it 'serve'")
    signatures = {}
    for name, sig in graphs[0].signature_def.items():
        if name == _INIT_OP:
            continue
        signatures[name] = Signature(
            name, sig.method_name or PREDICT,
            {a: _spec(a, i) for a, i in sorted(sig.inputs.items())},
            {a: _spec(a, i) for a, i in sorted(sig.outputs.items())},
            json_format.MessageToDict(sig, preserving_proto_field_name=True),
        )
    return signatures


def _is_named(value: Any) -> bool:
    return isinstance(value, dict) and set(value) != {"b64"}


class LoadedModel:
    """A SavedModel version loaded with TensorFlow, answering TF Serving's JSON requests."""

    def __init__(self, version_dir: str | Path, version: int) -> None:
        self.path = Path(version_dir)
        self.version = version
        started = time.perf_counter()
        self.signatures = read_signatures(self.path)
        if not self.signatures:
            raise ModelLoadError(
                f"the SavedModel at {self.path} has no serving signature, so no request can reach it; export it "
                "with one, e.g. model.save(path, signatures={'serving_default': a_tf_function})")
        import tensorflow as tf

        try:
            self._loaded = tf.saved_model.load(str(self.path), tags=["serve"])
        except Exception as exc:  # TensorFlow raises many kinds; each means "cannot be served"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"TensorFlow cannot load the SavedModel at {self.path}: "
                                 f"{type(exc).__name__}: {first}") from exc
        self._functions = dict(self._loaded.signatures)
        self.load_seconds = time.perf_counter() - started

    # ------------------------------------------------------------------------------------ helpers
    def signature(self, name: str | None) -> Signature:
        name = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(name)
        if sig is None or name not in self._functions:
            known = ", ".join(sorted(self.signatures)) or "none"
            raise RequestError(f'Serving signature name: "{name}" not found in signature def '
                               f"(this model's signatures: {known})")
        return sig

    def _call(self, sig: Signature, arrays: Mapping[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        missing = sorted(set(sig.inputs) - set(arrays))
        unknown = sorted(set(arrays) - set(sig.inputs))
        if missing or unknown:
            parts = ([f"missing input(s) {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"unknown input(s) {', '.join(map(repr, unknown))}"] if unknown else [])
            raise RequestError(f"signature '{sig.name}' takes inputs {sorted(sig.inputs)}: " + "; ".join(parts))
        from tensorflow.core.framework import types_pb2

        tensors = {a: tf.constant(v, dtype=tf.dtypes.as_dtype(types_pb2.DataType.Value(sig.inputs[a].dtype)))
                   for a, v in arrays.items()}
        try:
            outputs = self._functions[sig.name](**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise RequestError(_first_line(exc)) from None
        except tf.errors.ResourceExhaustedError as exc:
            raise RequestError(_first_line(exc), status=503) from None
        except tf.errors.OpError as exc:
            raise RequestError(_first_line(exc), status=500) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def metadata(self, model_name: str) -> dict[str, Any]:
        """TF Serving's GetModelMetadataResponse as JSON."""
        return {
            "model_spec": {"name": model_name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": {n: dict(s.proto_json)
                                                             for n, s in sorted(self.signatures.items())}}},
        }

    # ------------------------------------------------------------------------------------ verbs
    def predict(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"instances": ...}`` (row format) or ``{"inputs": ...}`` (columnar) in; TF Serving's response out."""
        sig = self.signature(_signature_name(body))
        if ("instances" in body) == ("inputs" in body):
            raise RequestError("Missing 'inputs' or 'instances' key" if "instances" not in body else
                               "Not formatted correctly expecting only one of 'inputs' or 'instances' keys exists")
        aliases = list(sig.inputs)
        if "instances" in body:
            instances = body["instances"]
            if not isinstance(instances, list) or not instances:
                raise RequestError("'instances' must be a non-empty JSON list, one item per example")
            columns: dict[str, list[Any]] = {}
            for i, item in enumerate(instances):
                if _is_named(item):
                    for alias, value in item.items():
                        columns.setdefault(alias, []).append(value)
                    if set(item) != set(columns):
                        raise RequestError(f"instance {i} names inputs {sorted(item)}, instance 0 names "
                                           f"{sorted(columns)}; every instance names the same inputs")
                elif len(aliases) == 1:
                    columns.setdefault(aliases[0], []).append(item)
                else:
                    raise RequestError(f"instance {i} is a {_kind(item)}, but signature '{sig.name}' has "
                                       f"{len(aliases)} inputs {aliases}: each instance must be a JSON object "
                                       "naming them")
            arrays = {a: from_json(v, sig.inputs[a]) if a in sig.inputs else v for a, v in columns.items()}
            outputs = self._call(sig, arrays)
            return {"predictions": _rows(outputs, len(instances))}
        inputs = body["inputs"]
        if _is_named(inputs):
            arrays = {a: from_json(v, sig.inputs[a]) if a in sig.inputs else v for a, v in inputs.items()}
        elif len(aliases) == 1:
            arrays = {aliases[0]: from_json(inputs, sig.inputs[aliases[0]])}
        else:
            raise RequestError(f"'inputs' is a {_kind(inputs)}, but signature '{sig.name}' has {len(aliases)} "
                               f"inputs {aliases}: give a JSON object naming them")
        outputs = self._call(sig, arrays)
        if len(outputs) == 1:
            (alias, value), = outputs.items()
            return {"outputs": to_json(alias, value)}
        return {"outputs": {a: to_json(a, v) for a, v in sorted(outputs.items())}}

    def _examples_call(self, body: Mapping[str, Any], method: str, verb: str) -> tuple[Signature, dict[str, Any]]:
        sig = self.signature(_signature_name(body))
        if sig.method_name != method:
            raise RequestError(f"Expected {verb} signature method_name to be {method}. Was: {sig.method_name} "
                               f"(signature '{sig.name}'); use :predict for it")
        examples = body.get("examples")
        if not isinstance(examples, list) or not examples or not all(isinstance(e, dict) for e in examples):
            raise RequestError(f"{verb} takes 'examples': a non-empty JSON list of objects (feature: value)")
        context = body.get("context") or {}
        if not isinstance(context, dict):
            raise RequestError("'context' must be a JSON object (feature: value)")
        records = []
        for i, example in enumerate(examples):
            clash = sorted(set(example) & set(context))
            if clash:
                raise RequestError(f"example {i}: feature(s) {clash} also appear in 'context'; a feature is "
                                   "given in one place only")
            records.append(example_from_json({**context, **example}, f"example {i}"))
        if len(sig.inputs) != 1:
            raise RequestError(f"signature '{sig.name}' has inputs {sorted(sig.inputs)}; a {verb} signature takes "
                               "one input of serialized tf.Examples")
        (alias,) = sig.inputs
        return sig, self._call(sig, {alias: from_json([{"b64": _b64(r)} for r in records], sig.inputs[alias])})

    def classify(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"examples": [...], "context": {...}}`` in; ``{"result": [[[label, score], ...], ...]}`` out."""
        _, outputs = self._examples_call(body, CLASSIFY, "classification")
        classes, scores = outputs.get("classes"), outputs.get("scores")
        if classes is None and scores is None:
            raise RequestError("the classification signature has neither a 'classes' nor a 'scores' output", 500)
        rows = []
        count = len(classes if classes is not None else scores)  # type: ignore[arg-type]
        for i in range(count):
            labels = [to_json("classes", c) for c in classes[i]] if classes is not None else None
            values = [float(s) for s in scores[i]] if scores is not None else None
            width = len(labels if labels is not None else values)  # type: ignore[arg-type]
            rows.append([[labels[k] if labels else "", values[k] if values else 0.0] for k in range(width)])
        return {"result": rows}

    def regress(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"examples": [...], "context": {...}}`` in; ``{"result": [value, ...]}`` out."""
        _, outputs = self._examples_call(body, REGRESS, "regression")
        values = outputs.get("outputs")
        if values is None:
            raise RequestError("the regression signature has no 'outputs' output", 500)
        return {"result": [float(v) for v in values.reshape(len(values), -1)[:, 0]]}


def _b64(record: bytes) -> str:
    import base64

    return base64.b64encode(record).decode()


def _kind(value: Any) -> str:
    from headwater.serving._json import value_kind

    return f"JSON {value_kind(value)}"


def _signature_name(body: Mapping[str, Any]) -> str | None:
    name = body.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise RequestError(f"'signature_name' must be a string, got {json.dumps(name)}")
    return name


def _first_line(exc: BaseException) -> str:
    """TensorFlow's own reason, without its "Graph execution error", call-site and node-name lines."""
    text = str(getattr(exc, "message", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    noise = ("Graph execution error", "Detected at node", "File ", "[[{{node", "<stack traces unavailable>", "Hint:")
    useful = [line for line in lines if not line.startswith(noise) and not line.startswith("in ")]
    reason = useful[0] if useful else (lines[0] if lines else type(exc).__name__)
    return reason.split(" [Op:")[0].replace("Name: <unknown>, ", "")


def _rows(outputs: Mapping[str, Any], batch: int) -> list[Any]:
    """Row-format predictions: one value per example (one output) or one object per example (several)."""
    for alias, value in outputs.items():
        if getattr(value, "ndim", 0) == 0 or len(value) != batch:
            raise RequestError(f"output '{alias}' does not have the batch size {batch} as its first dimension "
                               f"(shape {list(getattr(value, 'shape', ()))}); use the columnar 'inputs' format", 400)
    if len(outputs) == 1:
        (alias, value), = outputs.items()
        return list(to_json(alias, value))
    columns = {a: to_json(a, v) for a, v in sorted(outputs.items())}
    return [{a: columns[a][i] for a in columns} for i in range(batch)]
