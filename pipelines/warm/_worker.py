"""A warm worker: one process that runs many executions, each as if it ran in a fresh process.

Before every execution the worker forgets the user's modules (pipeline files, module files and
everything they imported from outside the Python installation and headwater itself), so the files run
as they are now; it takes on the client's environment variables, working directory and ``sys.path``;
Python's and NumPy's global generators are reseeded from the OS and TensorFlow's global seed is unset.
After it, Keras' and TensorFlow's global state (sessions, graphs, layer names, registered custom
objects), the logging and warnings set-up and the process's own environment are put back.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import signal
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_KEEP_NAMES = ("__main__", "__mp_main__")
_REGISTRIES = ("tf_keras.src.saving.object_registration", "keras.src.saving.object_registration")


def _install_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(sorted(str(Path(r).resolve()) + os.sep for r in roots))


#: Modules found to belong to Python's installation or headwater, by name and id: not looked at again.
_KEPT: dict[str, int] = {}


def _is_user_module(name: str, module: Any, roots: tuple[str, ...]) -> bool:
    if name in _KEEP_NAMES or name == "headwater" or name.startswith("headwater."):
        return False
    if _KEPT.get(name) == id(module):
        return False
    found = [getattr(module, "__file__", None)]
    if found[0] is None:
        found = list(getattr(module, "__path__", None) or [])  # namespace packages
    files: list[str] = [f for f in found if isinstance(f, str) and f]
    user = any(not f.startswith(roots) and not os.path.realpath(f).startswith(roots) for f in files)
    if not user:
        _KEPT[name] = id(module)
    return user


def purge_user_modules(roots: tuple[str, ...] | None = None) -> list[str]:
    """Drop from ``sys.modules`` every module loaded from outside Python's installation and headwater."""
    roots = roots or _install_roots()
    gone = [name for name, module in list(sys.modules.items())
            if module is not None and _is_user_module(name, module, roots)]
    for name in gone:
        sys.modules.pop(name, None)
    import importlib

    importlib.invalidate_caches()
    return gone


def _registries() -> dict[str, dict[str, dict[Any, Any]]]:
    saved: dict[str, dict[str, dict[Any, Any]]] = {}
    for name in _REGISTRIES:
        module = sys.modules.get(name)
        if module is not None:
            saved[name] = {attr: dict(value) for attr, value in vars(module).items()
                           if "CUSTOM" in attr and isinstance(value, dict)}
    return saved


def _restore_registries(saved: dict[str, dict[str, dict[Any, Any]]]) -> None:
    for name in _REGISTRIES:
        module = sys.modules.get(name)
        if module is None:
            continue
        for attr, value in vars(module).items():
            if "CUSTOM" in attr and isinstance(value, dict):
                value.clear()
                value.update(saved.get(name, {}).get(attr, {}))


def reset_ml_state() -> None:
    """What a fresh process would not have: Keras sessions and names, TF graphs and the global seed."""
    tf = sys.modules.get("tensorflow")
    for name in ("tf_keras", "keras"):
        module = sys.modules.get(name)
        if module is not None:
            with contextlib.suppress(Exception):
                module.backend.clear_session()
    if tf is not None:
        with contextlib.suppress(Exception):
            tf.keras.backend.clear_session()
        with contextlib.suppress(Exception):
            tf.compat.v1.reset_default_graph()
        with contextlib.suppress(Exception):
            tf.random.set_seed(None)


def _reseed() -> None:
    random.seed()  # from the OS, as at start-up
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed()


@contextlib.contextmanager
def isolated(env: dict[str, str], cwd: str, path: list[str]) -> Iterator[None]:
    """Run one execution with the client's environment, folder and path; leave nothing behind."""
    from headwater.components.executor import prepare_process

    roots = _install_roots()
    purge_user_modules(roots)
    saved_env, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    saved_logging = logging.root.level, list(logging.root.handlers)
    saved_registries = _registries()
    with warnings.catch_warnings():
        os.environ.clear()
        os.environ.update(env)
        prepare_process()
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        sys.path[:] = path
        _reseed()
        try:
            yield
        finally:
            reset_ml_state()
            _restore_registries(saved_registries)
            logging.root.setLevel(saved_logging[0])
            logging.root.handlers[:] = saved_logging[1]
            os.environ.clear()
            os.environ.update(saved_env)
            with contextlib.suppress(OSError):
                os.chdir(saved_cwd)
            sys.path[:] = saved_path
            purge_user_modules(roots)
            gc.collect()


def warm_worker_main(conn: Connection, warm_imports: tuple[str, ...] = ()) -> None:
    """The loop of a pooled worker: ``{"op": "warm"}`` imports modules, ``{"op": "run"}`` runs a spec."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from headwater.components.executor import ExecutionSpec, prepare_process, run_execution
    from headwater.pipelines._process import die_with_parent, messages, warm_up

    die_with_parent()
    prepare_process()
    warm_up(conn, warm_imports)
    for message in messages(conn):
        if message.get("op") == "warm":
            warm_up(conn, tuple(message.get("modules") or ()))
            continue
        sent = True
        with isolated(message["env"], message["cwd"], list(message["path"])):
            result = run_execution(ExecutionSpec.from_json(message["spec"]))
            try:  # before the clean-up, which the client need not wait for (the next message waits for it)
                conn.send(result.to_json())
            except (BrokenPipeError, OSError):
                sent = False
        if not sent:
            return
        try:
            conn.send({"op": "ready"})  # cleaned up: the next execution starts at once
        except (BrokenPipeError, OSError):
            return
