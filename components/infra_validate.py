"""InfraValidate: load the candidate model the way ``headwater serve`` will, in a sandbox, and query it.

::

    infra = InfraValidate(model=train.outputs.model, examples=ingest.outputs.examples)
    push = Push(model=..., blessing=evaluate.outputs.blessing, infra_blessing=infra.outputs.blessing, ...)

The model is loaded in a child process of its own session, with a wall-clock limit (``timeout_seconds``,
then the whole process group is killed) and a memory limit (``memory_limit_mb``, ``RLIMIT_DATA`` set in
the child before TensorFlow is imported). The child loads the SavedModel with the class ``headwater serve``
answers requests with, checks that every signature in ``signature_names`` exists and, in
``LOAD_AND_QUERY`` mode, sends ``:predict`` requests built from ``num_examples`` records of the
``split`` split of ``examples`` (serialized ``tf.Example``\\ s for a signature taking one string input,
otherwise the features named like the inputs) and checks that every response has one prediction per
example with the output shapes and types the signature declares. ``LOAD_ONLY`` (the default without
``examples``) stops after loading.

The output is TFX's ``InfraBlessing``: an empty ``INFRA_BLESSED`` or ``INFRA_NOT_BLESSED`` file, the custom
property ``blessed`` (1/0), ``blessing_message`` saying in words what failed (a load error, a missing
signature, a request that failed and why, a limit hit), and ``infra_validation.json`` / ``.log`` with the
details. Two outcomes are kept apart (TFX mixed them, tensorflow/tfx#3257): a model that fails is a
published blessing with ``blessed=0``; InfraValidate failing itself (unreadable examples, a sandbox that
cannot start or cannot import TensorFlow under the limit) fails the node, and no blessing is published.
Push, given ``infra_blessing=``, pushes only a model whose InfraBlessing says blessed (gated twice).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from headwater.components._layout import INFRA_BLESSED_FILE, INFRA_NOT_BLESSED_FILE, serving_model_path
from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.components.errors import ExecutionError, InputDataError, ParameterError
from headwater.metadata import types
from headwater.metadata.artifact import Artifact
from headwater.metadata.conventions import A_BLESSED, A_BLESSING_MESSAGE, A_CURRENT_MODEL, A_CURRENT_MODEL_ID

__all__ = ["INFRA_BLESSED_FILE", "INFRA_NOT_BLESSED_FILE", "MODES", "InfraValidate", "validate_model"]

MODES = ("LOAD_ONLY", "LOAD_AND_QUERY")
_LOG_TAIL = 12


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    keep = [line for line in lines if line.strip() and " I " not in line[:40]][-_LOG_TAIL:]
    return "\n".join(keep)


def _progress(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def validate_model(model_dir: str, *, mode: str, records: list[bytes], signature_names: list[str],
                   timeout_seconds: float, memory_limit_mb: int, work_dir: Path) -> dict[str, Any]:
    """Run the sandboxed probe; return ``{"blessed": bool, "message": str, ...}``.

    Raises :class:`ExecutionError` when the validator itself fails (not a verdict on the model).
    """
    spec_path, progress_path, log_path = work_dir / "probe_spec.json", work_dir / "progress.jsonl", \
        work_dir / "infra_validation.log"
    spec_path.write_text(json.dumps({
        "model_dir": model_dir, "mode": mode, "signature_names": signature_names,
        "memory_limit_mb": memory_limit_mb, "records": [base64.b64encode(r).decode() for r in records]}))
    progress_path.write_text("")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1"))
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "headwater.serving.probe", str(spec_path), str(progress_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as exc:
            raise ExecutionError(f"InfraValidate itself failed (no verdict on the model): cannot start the "
                                 f"sandbox process {sys.executable}: {exc}") from None
        timed_out = False
        try:
            code = child.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(child.pid, signal.SIGKILL)
            code = child.wait()
    seconds = round(time.perf_counter() - started, 3)
    notes = _progress(progress_path)
    phase = next((n["phase"] for n in reversed(notes) if "phase" in n), "start")
    final = next((n for n in reversed(notes) if "verdict" in n), None)
    limits = f"limits: {timeout_seconds:g} s (timeout_seconds), {memory_limit_mb} MB of memory (memory_limit_mb)"
    base = {"mode": mode, "seconds": seconds, "phase": phase, "exit_code": code, "log": str(log_path)}
    if final is not None:
        if final["verdict"] == "blessed":
            what = "loaded" + (f" and answered :predict on {len(records)} examples for signature(s) "
                               f"{', '.join(q['signature'] for q in final['queries'])}" if final["queries"] else "")
            return {**base, **final, "blessed": True,
                    "message": f"BLESSED ({mode}): the model {what} ({limits})"}
        hint = (f"; it ran out of memory under memory_limit_mb={memory_limit_mb}: give the sandbox more memory "
                "if the serving machines have it, or make the model smaller") if final.get("memory") else ""
        return {**base, **final, "blessed": False, "message": f"NOT BLESSED ({mode}): {final['message']}{hint}"}
    tail = _tail(log_path)
    memory = any(w in tail for w in ("MemoryError", "bad_alloc", "OOM", "Cannot allocate memory", "ResourceExhausted"))
    if timed_out:
        doing = {"import": "importing TensorFlow", "load": "loading the model",
                 "query": "answering requests"}.get(phase, "starting")
        if phase in ("start", "import"):
            raise ExecutionError(f"InfraValidate itself failed (no verdict on the model): the sandbox was still "
                                 f"{doing} after timeout_seconds={timeout_seconds:g}; raise timeout_seconds")
        return {**base, "blessed": False, "stage": phase,
                "message": f"NOT BLESSED ({mode}): the model server did not finish {doing} within "
                f"timeout_seconds={timeout_seconds:g} and was killed ({limits})"}
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    if phase in ("start", "import"):
        why = (f"it ran out of memory under memory_limit_mb={memory_limit_mb} before the model was even "
               "loaded: raise memory_limit_mb") if memory else (
            f"unless its log shows another cause, memory_limit_mb={memory_limit_mb} is too low for TensorFlow "
            "itself (it needs about 300 MB): raise memory_limit_mb; see its log")
        raise ExecutionError(f"InfraValidate itself failed (no verdict on the model): the sandbox process {how} "
                             f"while {'importing TensorFlow' if phase == 'import' else 'starting'}: {why} "
                             f"({log_path}):\n{tail}")
    doing = "loading the model" if phase == "load" else "answering requests"
    why = (f": it ran out of memory under memory_limit_mb={memory_limit_mb}" if memory else "") + (
        f"; last lines of its log ({log_path}):\n{tail}" if tail else "")
    return {**base, "blessed": False, "stage": phase, "memory": memory,
            "message": f"NOT BLESSED ({mode}): the model server process {how} while {doing}{why}"}


def _records(examples: Artifact, split: str, count: int) -> list[bytes]:
    from headwater.components._data import examples_files, read_tfrecords, split_names

    names = split_names(examples)
    if split not in names:
        raise InputDataError(f"InfraValidate: the examples at {examples.uri} have no split {split!r} (splits: "
                             f"{', '.join(names) or 'none'}); set split= to one of them")
    records: list[bytes] = []
    for path in examples_files(examples, split):
        for record in read_tfrecords(path):
            records.append(record)
            if len(records) == count:
                return records
    if not records:
        raise InputDataError(f"InfraValidate: split {split!r} of the examples at {examples.uri} holds no records")
    return records


@component(version="1")
def InfraValidate(
    *,
    model: Input[types.Model],
    examples: Input[types.Examples] | None = None,
    blessing: Output[types.InfraBlessing],
    mode: str = "",
    signature_names: list[str] | None = None,
    split: str = "eval",
    num_examples: int = 4,
    timeout_seconds: float = 300.0,
    memory_limit_mb: int = 2048,
    ctx: ExecutionContext,
) -> None:
    """Load ``model`` in a sandboxed server process and query it with ``examples`` (see the module docs)."""
    node = f"node {ctx.node_id!r}"
    chosen = mode or ("LOAD_AND_QUERY" if examples is not None else "LOAD_ONLY")
    if chosen not in MODES:
        raise ParameterError(f"{node}: InfraValidate mode={mode!r} is not one of {', '.join(MODES)} (or '' for "
                             "LOAD_AND_QUERY with examples, LOAD_ONLY without)")
    if chosen == "LOAD_AND_QUERY" and examples is None:
        raise ParameterError(f"{node}: InfraValidate mode='LOAD_AND_QUERY' needs examples=; wire an Examples "
                             "channel (e.g. ingest.outputs.examples) or use mode='LOAD_ONLY'")
    for name, value, low in (("num_examples", num_examples, 1), ("timeout_seconds", timeout_seconds, 1),
                             ("memory_limit_mb", memory_limit_mb, 64)):
        if value < low:
            raise ParameterError(f"{node}: InfraValidate {name}={value!r} must be at least {low}")
    model_dir = serving_model_path(model.path)
    records = _records(examples, split, num_examples) if chosen == "LOAD_AND_QUERY" and examples else []
    folder = Path(blessing.path)
    with tempfile.TemporaryDirectory(prefix="infra-validate-") as scratch:
        result = validate_model(model_dir, mode=chosen, records=records,
                                signature_names=list(signature_names or ["serving_default"]),
                                timeout_seconds=timeout_seconds, memory_limit_mb=memory_limit_mb,
                                work_dir=Path(scratch))
        log = Path(scratch, "infra_validation.log")
        if log.exists():
            (folder / "infra_validation.log").write_bytes(log.read_bytes())
    result["log"] = str(folder / "infra_validation.log")
    blessed = bool(result["blessed"])
    (folder / (INFRA_BLESSED_FILE if blessed else INFRA_NOT_BLESSED_FILE)).write_bytes(b"")
    (folder / "infra_validation.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    blessing.custom_properties.update({
        A_BLESSED: 1 if blessed else 0, A_BLESSING_MESSAGE: result["message"], "infra_validation_mode": chosen,
        A_CURRENT_MODEL: model.uri, **({A_CURRENT_MODEL_ID: model.id} if model.id is not None else {}),
    })
    print(f"InfraValidate: {result['message']}", flush=True)


# ------------------------------------------------------------------------------- the push gate
