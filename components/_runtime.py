"""Helpers shared by the built-in components: declaration as a package, seeds, engine choice, split checks,
tf.Example encoding.

One home for each, so components import this module instead of each other. Nothing heavy at import time:
TensorFlow, pyarrow and tfx_bsl are imported inside the functions that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from headwater.components import _layout, storage
from headwater.components._fingerprint import fingerprint_package
from headwater.components.api import Component, build_spec
from headwater.components.errors import InputDataError
from headwater.metadata.artifact import Artifact

__all__ = [
    "ENCODE_BATCH_ROWS",
    "ENGINES",
    "PackageComponent",
    "beam_runner",
    "check_splits",
    "choose_engine",
    "encode_examples",
    "list_array",
    "package_component",
    "set_seeds",
    "splits_with_data",
]

# ----------------------------------------------------------------------------------- component identity
class PackageComponent(Component):
    """A built-in component whose code is a package (``headwater.components.ingest``).

    Its code fingerprint covers every module of the package, as the single module it was split from did,
    so a change anywhere in its code is a cache miss (a plain component fingerprints its defining file).
    """

    def code_fingerprint(self) -> str:
        return fingerprint_package(self.spec.module)


def package_component(
    package: str,
    *,
    cls: type[PackageComponent] = PackageComponent,
    version: str = "1",
    warm_imports: tuple[str, ...] = (),
    input_fingerprint: Callable[[dict[str, Any]], str] | None = None,
    skip_if: Callable[[dict[str, list[Artifact]], dict[str, Any]], str | None] | None = None,
    on_skip: Callable[[dict[str, Artifact], str], None] | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """Declare a built-in component defined in a private module of ``package`` (like ``@component``).

    A component's module and name are its identity: the MLMD execution type, compiled plans and the
    executor's import use them. The component keeps the package's public path
    (``headwater.components.ingest.Ingest``), so moving code between the package's modules changes none
    of them.
    """

    def wrap(fn: Callable[..., Any]) -> PackageComponent:
        fn.__module__ = package
        spec = build_spec(fn, version=version, warm_imports=warm_imports)
        return cls(fn, spec, input_fingerprint=input_fingerprint, skip_if=skip_if, on_skip=on_skip)

    return wrap


# ------------------------------------------------------------------------------------------------ seeds
def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (and Keras 3's own generator when a module imported it)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow's global seed
    if "keras" in sys.modules:  # a module that trains with Keras 3 (or KerasTuner) seeds Keras 3 too
        import keras

        keras.utils.set_random_seed(seed)


# ---------------------------------------------------------------------------------------- engine choice
ENGINES = ("auto", "local", "beam")
_LOCAL_RUNNERS = ("", "direct", "directrunner", "prism", "prismrunner")


def beam_runner(beam_args: Sequence[str]) -> str:
    """The runner ``beam_args`` name (``--runner=X`` or ``--runner X``; the last one wins), ``""`` if none."""
    runner = ""
    args = list(beam_args)
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and i + 1 < len(args):
            runner = args[i + 1]
    return runner.strip()


def choose_engine(engine: str, beam_args: Sequence[str], *, component: str) -> str:
    """``local`` or ``beam``: ``auto`` is Beam only when ``beam_args`` name a non-direct runner."""
    if engine not in ENGINES:
        raise InputDataError(f"{component} engine={engine!r} is unknown; use 'auto', 'local' or 'beam'")
    if engine != "auto":
        return engine
    return "local" if beam_runner(beam_args).lower() in _LOCAL_RUNNERS else "beam"


# ----------------------------------------------------------------------------------------- split checks
def splits_with_data(examples_uri: str) -> list[str]:
    """The splits of an Examples artifact that hold data files (``Split-<name>/*.gz``), sorted."""
    pattern = storage.join(examples_uri, _layout.SPLIT_PREFIX + "*", "*" + _layout.EXAMPLES_FILE_SUFFIX)
    folders = {path.replace("\\", "/").rstrip("/").split("/")[-2] for path in storage.glob(pattern)}
    return sorted(f[len(_layout.SPLIT_PREFIX):] for f in folders if f.startswith(_layout.SPLIT_PREFIX))


def check_splits(examples: Sequence[Artifact], splits: Sequence[str], *, node: str, setting: str) -> None:
    """Every artifact holds data for every split in ``splits``, or an error naming the node, the artifact
    (and its span, in a window of several), the split, the splits it has and the ``setting`` to change."""
    for art in examples:
        have = splits_with_data(art.path)
        missing = [s for s in splits if s not in have]
        if missing:
            span = art.properties["span"]
            which = f" (span {span})" if span is not None and len(examples) > 1 else ""
            raise InputDataError(
                f"{node}: Examples artifact {art.uri}{which} has no split {missing[0]!r} (it has "
                f"{have or 'none'}); set {setting} to split names it has", artifact_uri=art.uri,
            )


# ------------------------------------------------------------------------------------ tf.Example encoding
#: Rows per record batch handed to the encoder.
ENCODE_BATCH_ROWS = 65_536


def list_array(arr: Any) -> Any:
    """A flat Arrow column as a list column (one value per row; null rows are null lists = missing features)."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return arr
    n = len(arr)
    if arr.null_count == 0:
        return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), arr)
    valid = np.asarray(arr.is_valid())
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), arr.drop_null(), mask=pa.array(~valid))


def encode_examples(table: Any, encoder: Any = None) -> list[bytes]:
    """Serialized tf.train.Example of every row of an Arrow table (tfx_bsl's C++ encoder)."""
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    enc = encoder or example_coder.RecordBatchToExamplesEncoder()
    out: list[bytes] = []
    for batch in table.to_batches(max_chunksize=ENCODE_BATCH_ROWS):
        lists = [list_array(batch.column(i)) for i in range(batch.num_columns)]
        out.extend(enc.encode(pa.RecordBatch.from_arrays(lists, names=batch.schema.names)))
    return out
