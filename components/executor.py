"""The executor contract: an execution spec (JSON) in, an executor result (JSON) out.

This is the one contract between the orchestrator (the only MLMD writer) and executors, whether they run
in a local worker process or a Kubernetes pod. Both documents carry ``apiVersion`` so that orchestrator
and executor can refuse a version they do not understand.

Run one execution from the command line (what a Kubernetes pod does)::

    python -m headwater.components.executor --spec spec.json --result result.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from headwater.components import storage
from headwater.components._boundary import _UserCodeFailure, user_code
from headwater.components._contract import headwater_version, import_problem, missing_modules, spec_problem, this_image
from headwater.components.api import ExecutionContext, load_component
from headwater.metadata.artifact import Artifact
from headwater.metadata.errors import HeadwaterError

__all__ = [
    "API_VERSION",
    "ExecutionSpec",
    "ExecutorResult",
    "main",
    "run_execution",
    "user_code",
]

API_VERSION = "headwater.dev/v1"


@dataclass(frozen=True)
class ExecutionSpec:
    """Everything an executor needs; nothing that would let it write MLMD."""

    pipeline_name: str
    pipeline_root: str
    run_id: str
    node_id: str
    execution_id: int
    component_module: str
    component_function: str
    component_file: str | None
    inputs: Mapping[str, list[dict[str, Any]]]
    outputs: Mapping[str, list[dict[str, Any]]]
    parameters: Mapping[str, Any]
    tmp_dir: str
    log_path: str | None = None
    beam_args: tuple[str, ...] = ()
    attempt: int = 1
    api_version: str = API_VERSION
    #: The headwater version of the orchestrator that made the spec (``None`` in specs of headwater < 0.2);
    #: the executor entrypoint in a pod refuses a spec from another release (see ``_contract``).
    headwater_version: str | None = field(default_factory=headwater_version)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = "ExecutionSpec"
        data["beam_args"] = list(self.beam_args)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExecutionSpec:
        _check_version(data, "ExecutionSpec")
        fields = {k: v for k, v in data.items() if k != "kind"}
        fields["beam_args"] = tuple(fields.get("beam_args") or ())
        fields.setdefault("headwater_version", None)  # a spec written before the field existed
        return cls(**fields)


@dataclass(frozen=True)
class ExecutorResult:
    """What came of an execution: output artifacts (with their new properties) or an error."""

    execution_id: int
    succeeded: bool
    outputs: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    user_error: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    #: Peak resident memory of the execution in bytes: the worker's own, and the processes it started
    #: (see ``components/_memory.py``); None where it cannot be measured.
    peak_rss_bytes: int | None = None
    peak_rss_children_bytes: int | None = None
    api_version: str = API_VERSION

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = "ExecutorResult"
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExecutorResult:
        _check_version(data, "ExecutorResult")
        return cls(**{k: v for k, v in data.items() if k != "kind"})

    @classmethod
    def failure(cls, execution_id: int, error_type: str, message: str, tb: str = "", *, user: bool = False,
                started_at: float = 0.0) -> ExecutorResult:
        return cls(execution_id, False, {}, error_type, message, tb, user, started_at or time.time(), time.time())


def _check_version(data: Mapping[str, Any], kind: str) -> None:
    from headwater.components.errors import ExecutorContractError

    version = data.get("api_version")
    if version != API_VERSION or data.get("kind", kind) != kind:
        raise ExecutorContractError(
            f"{kind} has apiVersion {version!r}; this headwater understands {API_VERSION!r}. Use the same "
            "headwater version for the orchestrator and the executor image"
        )


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside headwater's own machinery."""
    tb = exc.__traceback__
    here = str(Path(__file__).resolve().parent.parent)
    while tb is not None and tb.tb_next is not None:
        if not str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(here):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class _NodeLog(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` while executors run in this process: writes go to the current node's log,
    or between executions to the process's own stream. It is never closed, so a logging handler that bound
    itself to ``sys.stderr`` during an execution (TensorFlow's and absl's do, on first use) keeps working in
    later executions and at exit instead of failing with "I/O operation on closed file"."""

    def __init__(self, fallback: TextIO) -> None:
        super().__init__()
        self.fallback = fallback
        self.target: TextIO | None = None

    def _out(self) -> TextIO:
        return self.target if self.target is not None else self.fallback

    def write(self, text: str) -> int:
        return self._out().write(text)

    def flush(self) -> None:
        self._out().flush()

    def fileno(self) -> int:
        return self._out().fileno()

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self) -> Any:  # code writing bytes to sys.stdout.buffer
        return self._out().buffer

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def close(self) -> None:  # shared by handlers that outlive an execution: never closed
        self.flush()


_NODE_LOG: _NodeLog | None = None


@contextlib.contextmanager
def _capture_output(log_path: str | None) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors, so C extensions too) to ``log_path``."""
    global _NODE_LOG
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    # Python-level streams too: sys.stdout may not be file descriptor 1 (notebooks, test runners).
    stream = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    if _NODE_LOG is None:
        _NODE_LOG = _NodeLog(sys.stderr)
    node_log = _NODE_LOG
    node_log.target = stream
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = node_log
        yield
    finally:
        stream.flush()
        node_log.target = None
        sys.stdout, sys.stderr = saved_streams
        stream.close()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


#: Set to 1 (``headwater run --verbose`` does) to keep the ML libraries' INFO logging in node logs.
VERBOSE_ENV = "HEADWATER_VERBOSE"
_NOISY_LOGGERS = ("tensorflow", "apache_beam", "tensorflow_transform", "tensorflow_model_analysis",
                  "tfx_bsl", "h5py", "matplotlib")


def quiet_libraries() -> None:
    """Keep TensorFlow, absl, Beam, TFMA and tf.Transform logging at WARNING unless ``$HEADWATER_VERBOSE``
    is set: node logs then hold what the component did, not the libraries' progress chatter."""
    if os.environ.get(VERBOSE_ENV, "") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ INFO off; warnings and errors stay
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def prepare_process() -> None:
    """Process-wide settings every executor process gets before it imports the ML stack.

    tf.Transform 1.16 and TFMA 0.47 need Keras 2 (``tf-keras``): with TensorFlow 2.16, ``tf.keras`` is
    Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is first imported. Set it explicitly
    to ``0`` to opt out.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    quiet_libraries()


def _local_tmp(spec: ExecutionSpec) -> str:
    if not storage.is_url(spec.tmp_dir):
        return storage.local_path(spec.tmp_dir)
    return os.path.join(tempfile.gettempdir(), "headwater", spec.run_id, str(spec.execution_id))


def _stage(spec: ExecutionSpec, inputs: Mapping[str, Any], outputs: Mapping[str, list[Artifact]]) -> str | None:
    """Give every artifact a local ``path``: object-store inputs are downloaded into a staging folder under
    the execution's scratch space and object-store outputs get an empty one there. Returns that folder, or
    ``None`` when every artifact is local (nothing staged)."""
    given = {k: v if isinstance(v, list) else [v] for k, v in inputs.items() if v is not None}
    remote = [a for arts in (*given.values(), *outputs.values()) for a in arts if storage.is_url(a.uri)]
    stage = os.path.join(_local_tmp(spec), "staged") if remote else None
    started, size, count = time.time(), 0, 0
    for key, arts in given.items():
        for i, art in enumerate(arts):
            if stage and storage.is_url(art.uri):
                art.path = os.path.join(stage, "inputs", key, str(i))
                size += storage.download(art.uri, art.path)
                count += 1
    for key, out_arts in outputs.items():
        for i, art in enumerate(out_arts):
            if stage and storage.is_url(art.uri):
                art.path = os.path.join(stage, "outputs", key, str(i))
                shutil.rmtree(art.path, ignore_errors=True)  # never upload what an earlier attempt left
            Path(art.path).mkdir(parents=True, exist_ok=True)
    if count:
        print(f"headwater: downloaded {count} input artifact(s), {size / 1e6:.1f} MB, in "
              f"{time.time() - started:.2f}s", flush=True)
    return stage


def _upload_outputs(outputs: Mapping[str, list[Artifact]]) -> None:
    """Upload staged outputs to their object-store URIs; on failure, delete what was partly uploaded."""
    started, size = time.time(), 0
    remote = [a for arts in outputs.values() for a in arts if storage.is_url(a.uri)]
    try:
        for art in remote:
            size += storage.upload(art.path, art.uri)
    except Exception:
        for art in remote:
            with contextlib.suppress(Exception):
                storage.remove(art.uri)
        raise
    print(f"headwater: uploaded {len(remote)} output artifact(s), {size / 1e6:.1f} MB, in "
          f"{time.time() - started:.2f}s", flush=True)


def run_execution(spec: ExecutionSpec) -> ExecutorResult:
    """Run one execution inside the error boundary and return its result (never raises), with the peak
    resident memory it took (this process's, reset for the execution, and its child processes')."""
    from headwater.components._memory import measure_peak

    try:
        with measure_peak() as memory:
            result = _run_execution(spec)
    finally:  # staged copies of object-store artifacts, whatever happened
        shutil.rmtree(os.path.join(_local_tmp(spec), "staged"), ignore_errors=True)
    peak = memory.result
    if peak is None:
        return result
    return replace(result, peak_rss_bytes=peak.total, peak_rss_children_bytes=peak.children)


def _run_execution(spec: ExecutionSpec) -> ExecutorResult:
    started = time.time()
    with _capture_output(spec.log_path):
        try:
            try:
                comp = load_component(spec.component_module, spec.component_function, spec.component_file)
            except ImportError as exc:  # the module, or something it imports, is not in this image
                from headwater.components.errors import ExecutorContractError

                raise ExecutorContractError(import_problem(exc, spec.component_function, spec.component_module),
                                            node_id=spec.node_id) from exc
            cspec = comp.spec
            absent = missing_modules(cspec.warm_imports)
            if absent:
                from headwater.components.errors import ExecutorContractError

                raise ExecutorContractError(
                    f"component {cspec.name!r} needs {', '.join(map(repr, absent))}, which {this_image()} does "
                    "not have: build the image with the extras the component needs (headwater k8s dockerfile "
                    "--extra ml writes one) or give the node an image that has them (node.with_image(...))",
                    node_id=spec.node_id)
            kwargs: dict[str, Any] = dict(spec.parameters)
            for key, arts in spec.inputs.items():
                artifacts = [Artifact.from_json(a) for a in arts]
                if cspec.inputs[key].is_list:
                    kwargs[key] = artifacts
                else:
                    kwargs[key] = artifacts[0] if artifacts else None
            for key, ispec in cspec.inputs.items():
                kwargs.setdefault(key, [] if ispec.is_list else None)
            outputs = {key: [Artifact.from_json(a) for a in arts] for key, arts in spec.outputs.items()}
            staged = _stage(spec, {k: v for k, v in kwargs.items() if k in cspec.inputs}, outputs)
            for key, out_arts in outputs.items():
                kwargs[key] = out_arts[0]
            tmp_dir = _local_tmp(spec)
            Path(tmp_dir).mkdir(parents=True, exist_ok=True)
            if cspec.context_arg:
                kwargs[cspec.context_arg] = ExecutionContext(
                    spec.pipeline_name, spec.pipeline_root, spec.run_id, spec.node_id, spec.execution_id,
                    tmp_dir, tuple(spec.beam_args), spec.log_path,
                )
        except HeadwaterError as exc:
            print(f"headwater: node {spec.node_id!r} could not start: {exc}", file=sys.stderr)
            return ExecutorResult.failure(
                spec.execution_id, type(exc).__name__, str(exc), traceback.format_exc(), started_at=started
            )
        print(f"headwater: node {spec.node_id!r} execution {spec.execution_id} started", flush=True)
        try:
            comp.fn(**kwargs)
        except _UserCodeFailure as failure:
            original = failure.original
            tb = _user_traceback(original)
            sys.stderr.write(tb)
            message = f"{failure.where} raised {type(original).__name__}: {original}"
            return ExecutorResult.failure(spec.execution_id, type(original).__name__, message, tb, user=True,
                                          started_at=started)
        except HeadwaterError as exc:
            # A built-in component's deliberate, explained error (bad input data, refused push, ...).
            tb = _user_traceback(exc)
            sys.stderr.write(tb)
            from headwater.components.errors import UserCodeError

            user = isinstance(exc, UserCodeError) or cspec.module.split(".")[0] != "headwater"
            return ExecutorResult.failure(spec.execution_id, type(exc).__name__, str(exc), tb,
                                          user=user, started_at=started)
        except BaseException as exc:  # the error boundary: user code failed
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = _user_traceback(exc)
            sys.stderr.write(tb)
            where = f"component {cspec.name!r} ({cspec.module}.{cspec.function})"
            return ExecutorResult.failure(
                spec.execution_id, type(exc).__name__, f"{where} raised {type(exc).__name__}: {exc}", tb,
                user=True, started_at=started,
            )
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        if staged:
            try:
                _upload_outputs(outputs)
            except HeadwaterError as exc:
                print(f"headwater: node {spec.node_id!r}: {exc}", file=sys.stderr)
                return ExecutorResult.failure(spec.execution_id, type(exc).__name__, str(exc),
                                              traceback.format_exc(), started_at=started)
        result_outputs = {key: [a.to_json() for a in arts] for key, arts in outputs.items()}
        print(f"headwater: node {spec.node_id!r} execution {spec.execution_id} succeeded "
              f"in {time.time() - started:.2f}s", flush=True)
        return ExecutorResult(spec.execution_id, True, result_outputs, started_at=started, finished_at=time.time())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m headwater.components.executor",
        description="Run one headwater execution from an execution spec and write the executor result.",
    )
    parser.add_argument("--spec", required=True, help="execution spec JSON file ('-' for stdin)")
    parser.add_argument("--result", required=True, help="where to write the executor result JSON ('-' for stdout)")
    args = parser.parse_args(argv)
    prepare_process()
    raw = sys.stdin.read() if args.spec == "-" else storage.read_bytes(args.spec).decode()
    data = json.loads(raw)
    problem = spec_problem(data, API_VERSION) if isinstance(data, dict) else "the execution spec is not a JSON object"
    if problem:  # the orchestrator and this image disagree: say so instead of failing somewhere later
        node = data.get("node_id", "?") if isinstance(data, dict) else "?"
        message = f"node {node!r} cannot run here: {problem}"
        print(f"headwater: {message}", file=sys.stderr, flush=True)
        execution_id = data.get("execution_id", 0) if isinstance(data, dict) else 0
        result = ExecutorResult.failure(int(execution_id or 0), "ExecutorContractError", message)
    else:
        result = run_execution(ExecutionSpec.from_json(data))
    text = json.dumps(result.to_json())
    if args.result == "-":
        print(text)
    else:
        storage.write_bytes(args.result, text.encode())
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    raise SystemExit(main())
