"""Parameter types: which Python types a component parameter may have, their names in messages, and the
coercion of runtime parameter values (``--param k=v`` strings included).

Used by the authoring API (``components.api``) and by pipeline validation (``pipelines.pipeline``) and
plans (``pipelines.plan``), so both sides check and name types the same way.
"""

from __future__ import annotations

import types as pytypes
from typing import Any, Union, get_args, get_origin

from headwater.components.errors import ParameterError

__all__ = [
    "PARAM_SCALARS",
    "TYPE_NAMES",
    "coerce_value",
    "matches",
    "param_type_ok",
    "simple_type_name",
    "strip_optional",
    "type_name",
]

#: Scalar types a parameter may have (besides lists and dicts of them).
PARAM_SCALARS = (int, float, str, bool)
#: The simple names of the parameter kinds a plan or a KFP spec records.
TYPE_NAMES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def coerce_value(value: Any, kind: Any, *, what: str, parameter: str | None = None) -> Any:
    """Coerce ``value`` to ``kind`` (int/float/str/bool/list/dict); strings are parsed (``--param k=v``)."""
    if kind is None or value is None:
        return value
    origin = get_origin(kind) or kind
    if isinstance(value, str) and origin is not str:
        import json

        text = value.strip()
        try:
            if origin is bool:
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                return lowered in ("true", "1", "yes")
            if origin is int:
                return int(text)
            if origin is float:
                return float(text)
            if origin in (list, dict):
                value = json.loads(text)
        except ValueError:
            raise ParameterError(
                f"{what} expects {type_name(kind)}, got {value!r}; pass e.g. "
                f"{_example_of(kind)}", parameter=parameter,
            ) from None
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not matches(value, kind):
        raise ParameterError(
            f"{what} expects {type_name(kind)}, got {type(value).__name__} {value!r}", parameter=parameter,
        )
    return value


def _example_of(kind: Any) -> str:
    origin = get_origin(kind) or kind
    return {int: "42", float: "0.5", bool: "true", list: "'[1, 2]'", dict: "'{\"k\": 1}'"}.get(origin, "text")


def type_name(kind: Any) -> str:
    if get_origin(kind) in (Union, pytypes.UnionType):
        return " | ".join(type_name(a) for a in get_args(kind))
    if get_origin(kind) is not None:
        return repr(kind).replace("typing.", "")
    return getattr(kind, "__name__", repr(kind))


def matches(value: Any, kind: Any) -> bool:
    origin = get_origin(kind)
    if origin in (Union, pytypes.UnionType):
        return any(matches(value, a) for a in get_args(kind))
    if kind is type(None):
        return value is None
    if kind is Any:
        return True
    if origin is list:
        (inner,) = get_args(kind) or (Any,)
        return isinstance(value, list) and all(matches(v, inner) for v in value)
    if origin is dict:
        k, v = get_args(kind) or (str, Any)
        return isinstance(value, dict) and all(matches(a, k) and matches(b, v) for a, b in value.items())
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (list, dict):
        return isinstance(value, kind)
    return isinstance(value, kind)


def param_type_ok(kind: Any) -> bool:
    origin = get_origin(kind)
    if kind in PARAM_SCALARS or kind in (list, dict) or kind is Any:
        return True
    if origin in (Union, pytypes.UnionType):
        return all(a is type(None) or param_type_ok(a) for a in get_args(kind))
    if origin is list:
        return all(param_type_ok(a) for a in get_args(kind))
    if origin is dict:
        args = get_args(kind)
        return not args or (args[0] is str and param_type_ok(args[1]))
    return False


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, pytypes.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def simple_type_name(kind: Any) -> str | None:
    """``int``/``float``/``str``/``bool``/``list``/``dict`` for a parameter type, ``None`` if it is none of them."""
    origin = get_origin(kind) or kind
    for name, cls in TYPE_NAMES.items():
        if origin is cls:
            return name
    return None
