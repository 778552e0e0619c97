"""A push destination as TF Serving sees it: integer version folders, the newest loadable one served.

:class:`ModelRepository` polls ``<base>/<N>/`` (``saved_model.pb`` present; hidden and non-numeric folders
such as Push's ``.push-tmp-*`` are ignored), loads a new version in the background while the current one
keeps answering, then makes it current and unloads the older one — TF Serving's default "latest" version
policy. A version that fails to load keeps state ``END`` with its error; the previous version stays served.
States and status follow TF Serving's GetModelStatusResponse (``START``, ``LOADING``, ``AVAILABLE``,
``END``; ``error_code``/``error_message``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.serving._json import RequestError

__all__ = ["ModelRepository", "version_dirs"]

_log = logging.getLogger("headwater.serving")


def version_dirs(base: Path) -> dict[int, Path]:
    """``{N: base/N}`` for every integer-named folder holding ``saved_model.pb``."""
    try:
        children = list(base.iterdir())
    except OSError:
        return {}
    return {int(p.name): p for p in children
            if p.name.isascii() and p.name.isdigit() and (p / "saved_model.pb").is_file()}


@dataclass
class _Version:
    state: str
    error_code: str = "OK"
    error_message: str = ""
    signature: tuple[int, int] = (0, 0)  # (mtime_ns, size) of saved_model.pb when last tried

    def to_json(self, version: int) -> dict[str, Any]:
        return {"version": str(version), "state": self.state,
                "status": {"error_code": self.error_code, "error_message": self.error_message}}


class ModelRepository:
    """The versions of one model under ``base``; :meth:`servable` gives the model a request should use."""

    def __init__(self, base: str | Path, name: str, *, poll_seconds: float = 1.0,
                 loader: Callable[[Path, int], Any] | None = None) -> None:
        self.base = Path(base).absolute()
        self.name = name
        self.poll_seconds = poll_seconds
        self._loader = loader
        self._lock = threading.Lock()
        self._versions: dict[int, _Version] = {}
        self._current: Any = None  # the LoadedModel being served
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ loading
    def _load(self, path: Path, version: int) -> Any:
        if self._loader is not None:
            return self._loader(path, version)
        from headwater.serving._model import LoadedModel

        return LoadedModel(path, version)

    def poll(self) -> None:
        """One scan: load the newest loadable version if it is not the current one."""
        from headwater.serving._model import ModelLoadError

        found = version_dirs(self.base)
        with self._lock:
            for version, entry in self._versions.items():
                if version not in found and entry.state != "END":
                    entry.state = "END"
            if self._current is not None and self._current.version not in found:
                _log.warning("model %s: version %s was removed from %s", self.name, self._current.version, self.base)
                self._current = None
        for version in sorted(found, reverse=True):
            stat = (found[version] / "saved_model.pb").stat()
            key = (stat.st_mtime_ns, stat.st_size)
            with self._lock:
                known = self._versions.get(version)
                if self._current is not None and self._current.version == version:
                    return
                if known is not None and known.error_code != "OK" and known.signature == key:
                    continue  # failed before and unchanged: try the next older version
                if self._current is not None and self._current.version > version:
                    return
                self._versions[version] = _Version("LOADING", signature=key)
            try:
                model = self._load(found[version], version)
            except ModelLoadError as exc:
                message = str(exc)
            except Exception as exc:  # anything TensorFlow raises while loading means "not loadable"
                message = f"{type(exc).__name__}: {exc}"
            else:
                with self._lock:
                    previous = self._current
                    self._current = model
                    self._versions[version] = _Version("AVAILABLE", signature=key)
                    if previous is not None:
                        self._versions[previous.version].state = "END"
                _log.info("model %s: serving version %s from %s", self.name, version, found[version])
                return
            with self._lock:
                self._versions[version] = _Version("END", "UNKNOWN", message, key)
            _log.error("model %s: version %s cannot be served: %s", self.name, version, message)

    def start(self) -> None:
        """Scan once now, then every ``poll_seconds`` in a background thread until :meth:`stop`."""
        self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"headwater-serve-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # never let a scan error end the polling
                _log.exception("model %s: scanning %s failed", self.name, self.base)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # ------------------------------------------------------------------------------------ queries
    def _not_found(self, name: str, version: int | None) -> RequestError:
        what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        return RequestError(f"Servable not found for request: {what}: {self._why(name, version)}", status=404)

    def _why(self, name: str, version: int | None) -> str:
        if name != self.name:
            why = f"this server serves model '{self.name}' only"
        elif not version_dirs(self.base) and not self._versions:
            why = (f"{self.base} holds no version yet (Push writes {self.base}/<N>/ with a SavedModel); "
                   "the server picks one up as soon as it appears")
        elif version is not None and version in self._versions:
            entry = self._versions[version]
            why = f"version {version} is {entry.state}" + (f": {entry.error_message}" if entry.error_message else
                                                            " (only the latest version is served)")
        elif version is not None:
            why = f"{self.base} has no version {version}"
        else:
            failed = [f"version {v}: {e.error_message}" for v, e in sorted(self._versions.items()) if e.error_message]
            why = "no version could be loaded" + (f" ({'; '.join(failed)})" if failed else "")
        return why

    def servable(self, name: str, version: int | None = None) -> Any:
        with self._lock:
            current = self._current
        if name == self.name and current is not None and version in (None, current.version):
            return current
        raise self._not_found(name, version)

    def status(self, name: str, version: int | None = None) -> dict[str, Any]:
        """TF Serving's GetModelStatusResponse as JSON."""
        with self._lock:
            entries = dict(self._versions)
        if name != self.name:
            raise self._not_found(name, version)
        if not entries:
            raise RequestError(f"Could not find any versions of model {name}: {self._why(name, None)}", 404)
        if version is not None:
            if version not in entries:
                raise self._not_found(name, version)
            entries = {version: entries[version]}
        return {"model_version_status": [e.to_json(v) for v, e in sorted(entries.items(), reverse=True)]}
