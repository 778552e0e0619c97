"""Conform a table to the plan, and assign rows to splits by a deterministic hash of their values.

The same data always splits the same way, on every engine. Encoding to tf.train.Example is
:func:`headwater.components._runtime.encode_examples` (shared with Transform).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from headwater.components.ingest._plan import Plan
from headwater.components.ingest._read import plain

__all__ = ["assign_splits", "conform"]

_BUCKETS = 1_000_000
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
def conform(table: Any, plan: Plan) -> Any:
    """The table with the plan's columns, in order, cast to their final types (int64/float32/binary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target = {"int": pa.int64(), "float": pa.float32(), "bytes": pa.binary()}
    arrays = []
    for name in plan.columns:
        kind = plan.kinds[name]
        base = kind.removesuffix("_list")
        if name not in table.column_names:
            typ = pa.list_(target[base]) if kind.endswith("_list") else target[base]
            arrays.append(pa.nulls(table.num_rows, typ))
            continue
        arr = plain(table.column(name))
        if kind.endswith("_list"):
            arrays.append(arr.cast(pa.list_(target[base])))
            continue
        if pa.types.is_null(arr.type):
            arr = pa.nulls(len(arr), target[base])
        elif base == "bytes" and not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)
                                      or pa.types.is_large_string(arr.type)
                                      or pa.types.is_large_binary(arr.type)):
            arr = arr.cast(pa.string())
        elif base == "int" and pa.types.is_floating(arr.type):
            arr = pc.cast(arr, pa.int64(), safe=True)
        elif base == "float" and pa.types.is_decimal(arr.type):
            arr = arr.cast(pa.float64())
        arrays.append(arr.cast(target[base]))
    return pa.table(arrays, names=list(plan.columns))


_M1 = 0xBF58476D1CE4E5B9


_GOLDEN = 0x9E3779B97F4A7C15
_NULL_HASH = 0x6A09E667F3BCC908


def _mix(x: Any) -> Any:
    import numpy as np

    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(_M1)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def _hash_bytes(value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "little")


def _column_hash(arr: Any, name: str) -> Any:
    """uint64 hash of each value of one conformed column (nulls hash to a constant)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(arr)
    salt = np.uint64(_hash_bytes(name.encode()))
    if pa.types.is_int64(arr.type):
        values = np.asarray(arr.fill_null(0)).view(np.uint64)
    elif pa.types.is_float32(arr.type):
        values = np.asarray(arr.fill_null(0)).view(np.uint32).astype(np.uint64)
    elif pa.types.is_binary(arr.type):
        encoded = pc.dictionary_encode(arr)
        hashes = [_hash_bytes(v) for v in encoded.dictionary.to_pylist()] or [0]
        dictionary = np.array(hashes, dtype=np.uint64)
        values = dictionary[np.asarray(encoded.indices.fill_null(0))]
    else:  # lists: rare (Parquet); hash each row's JSON form
        values = np.array([_hash_bytes(json.dumps(v, default=repr).encode()) for v in arr.to_pylist()],
                          dtype=np.uint64)
    hashed = _mix(values ^ salt)
    if arr.null_count:
        hashed = np.where(np.asarray(arr.is_valid()), hashed, np.uint64(_NULL_HASH) ^ salt)
    return hashed if len(hashed) == n else np.zeros(n, dtype=np.uint64)


def assign_splits(table: Any, plan: Plan) -> Any:
    """Split index (into ``plan.split_names``) of every row: a deterministic hash of its values."""
    import numpy as np

    with np.errstate(over="ignore"):
        names = [plan.partition_feature] if plan.partition_feature else sorted(plan.columns)
        h = np.full(table.num_rows, np.uint64(_GOLDEN), dtype=np.uint64)
        for name in names:
            h = _mix(h * np.uint64(31) + _column_hash(plain(table.column(name)), name))
    total = float(sum(plan.ratios))
    bounds = np.array([round(_BUCKETS * sum(plan.ratios[: i + 1]) / total) for i in range(len(plan.ratios))],
                      dtype=np.uint64)
    bucket = h % np.uint64(_BUCKETS)
    return np.searchsorted(bounds, bucket, side="right").astype(np.int64)

