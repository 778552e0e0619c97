"""TF Serving's JSON mapping: request values to numpy arrays, tensors back to JSON, and tf.Example building.

The rules are TF Serving's REST API ones: ``DT_STRING`` takes a JSON string or ``{"b64": "..."}``;
integer types take whole JSON numbers; ``DT_FLOAT``/``DT_DOUBLE`` take numbers (``NaN``, ``Infinity``
too); ``DT_BOOL`` takes ``true``/``false``. Output tensors whose name ends in ``_bytes`` are written as
``{"b64": ...}``. Every refusal is a :class:`RequestError` carrying the HTTP status (400 or 404) and a
message that names the input and the value.

Nothing here imports TensorFlow: tensors are numpy arrays, dtypes TensorFlow's ``DT_*`` names.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RequestError", "TensorSpec", "example_from_json", "from_json", "to_json", "value_kind"]

_INTS = {"DT_INT8": np.int8, "DT_UINT8": np.uint8, "DT_INT16": np.int16, "DT_UINT16": np.uint16,
         "DT_INT32": np.int32, "DT_UINT32": np.uint32, "DT_INT64": np.int64, "DT_UINT64": np.uint64}
_FLOATS = {"DT_HALF": np.float16, "DT_FLOAT": np.float32, "DT_DOUBLE": np.float64}


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status, ``str(exc)`` the ``{"error": ...}`` text."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output of a signature: its alias, ``DT_*`` dtype and shape (-1: any; None: any rank)."""

    alias: str
    dtype: str
    shape: tuple[int, ...] | None

    def shape_text(self) -> str:
        return "unknown rank" if self.shape is None else "[" + ",".join(str(d) for d in self.shape) + "]"


def value_kind(value: Any) -> str:
    """The JSON type name TF Serving's messages use for a value."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if value is None:
        return "Null"
    return "Object"


def _short(value: Any) -> str:
    import json

    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _leaf(value: Any, spec: TensorSpec) -> Any:
    expected = spec.dtype
    if expected == "DT_STRING":
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise RequestError(f"input '{spec.alias}': {{\"b64\": ...}} holds invalid base64 "
                                   f"({_short(value['b64'])}); encode the bytes with standard base64") from None
    elif expected in _INTS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected in _FLOATS:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif expected == "DT_BOOL":
        if isinstance(value, bool):
            return value
    else:
        raise RequestError(f"input '{spec.alias}' has dtype {expected}, which the JSON API does not support")
    wanted = {"DT_STRING": "string (or {\"b64\": ...})", "DT_BOOL": "bool"}.get(
        expected, expected.removeprefix("DT_").lower())
    raise RequestError(f"JSON Value: {_short(value)} Type: {value_kind(value)} is not of expected type: {wanted} "
                       f"(input '{spec.alias}', dtype {expected})")


def _walk(value: Any, spec: TensorSpec, flat: list[Any]) -> tuple[int, ...]:
    """Append the leaves of a nested list to ``flat``; return its shape (refusing ragged lists)."""
    if not isinstance(value, list):
        flat.append(_leaf(value, spec))
        return ()
    if not value:
        return (0,)
    shapes = {_walk(item, spec, flat) for item in value}
    if len(shapes) > 1:
        raise RequestError(f"input '{spec.alias}': the nested lists have different lengths "
                           f"({sorted(shapes)}); a tensor must be rectangular")
    return (len(value), *shapes.pop())


def from_json(value: Any, spec: TensorSpec) -> np.ndarray:
    """A numpy array for a JSON value, checked against the signature's dtype and shape."""
    flat: list[Any] = []
    shape = _walk(value, spec, flat)
    if spec.dtype == "DT_STRING":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        array = array.reshape(shape)
    else:
        np_type = _INTS.get(spec.dtype) or _FLOATS.get(spec.dtype) or np.bool_
        try:
            array = np.array(flat, dtype=np_type).reshape(shape)
        except OverflowError:
            raise RequestError(f"input '{spec.alias}': a value is out of range for {spec.dtype}") from None
    if spec.shape is not None and (
        len(shape) != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, shape, strict=True))
    ):
        got = "[" + ",".join(str(d) for d in shape) + "]"
        raise RequestError(f"input '{spec.alias}' has shape {got}, but the signature expects "
                           f"{spec.shape_text()} (-1: any size)")
    return array


def _out(value: Any, as_b64: bool) -> Any:
    if isinstance(value, list):
        return [_out(v, as_b64) for v in value]
    if isinstance(value, bytes):
        if not as_b64:
            try:
                return value.decode()
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode()}
    return value


def to_json(alias: str, array: Any) -> Any:
    """A tensor as JSON: nested lists, strings decoded (``*_bytes`` outputs and non-UTF-8 as ``{"b64"}``)."""
    return _out(np.asarray(array).tolist(), alias.endswith("_bytes"))


def example_from_json(features: Mapping[str, Any], where: str) -> bytes:
    """A serialized ``tf.train.Example`` from ``{"feature": value | [values]}`` (TF Serving's classify input)."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for name, raw in features.items():
        values: Sequence[Any] = raw if isinstance(raw, list) else [raw]
        feature = example.features.feature[name]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            feature.int64_list.value.extend(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        elif all(isinstance(v, str) or (isinstance(v, dict) and "b64" in v) for v in values):
            spec = TensorSpec(name, "DT_STRING", None)
            feature.bytes_list.value.extend(_leaf(v, spec) for v in values)
        else:
            kinds = sorted({value_kind(v) for v in values})
            raise RequestError(f"{where}: feature '{name}' holds {', '.join(kinds)} values; a feature's values "
                               "are all numbers or all strings ({\"b64\": ...} for bytes)")
    return example.SerializeToString()
