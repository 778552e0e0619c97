"""Watching a run's Jobs and Pods, and following pod logs, each in a background thread.

A watch lists first, then watches from the list's resourceVersion; a dropped watch resumes from the last
resourceVersion seen (bookmarks keep it fresh) and ``410 Gone`` relists. A log follower streams the
executor container's log into the node's log file, resuming a cut stream where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from headwater.pipelines.kubernetes._api import KubeApi

__all__ = ["Watches", "follow_log"]

Obj = dict[str, Any]
KINDS = ("jobs", "pods")


class Watches:
    """One watch per kind (``jobs``, ``pods``) of the objects matching a label selector.

    ``on_list(kind, items)`` receives each full list, ``on_event(kind, type, obj)`` each change;
    ``note`` is told when watching keeps failing. Threads end when ``stop`` is set and :meth:`close` runs.
    """

    def __init__(self, api: KubeApi, stop: threading.Event, *, on_list: Callable[[str, list[Obj]], None],
                 on_event: Callable[[str, str, Obj], None], note: Callable[[str], None]) -> None:
        self._api = api
        self._stop = stop
        self._on_list = on_list
        self._on_event = on_event
        self._note = note
        self._threads: list[threading.Thread] = []
        self._responses: dict[str, Any] = {}

    def start(self, selector: str) -> None:
        for kind in KINDS:
            thread = threading.Thread(target=self._loop, args=(kind, selector), daemon=True,
                                      name=f"headwater-watch-{kind}")
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        """Cut the open streams and wait for the threads (``stop`` must be set first)."""
        for resp in list(self._responses.values()):
            with contextlib.suppress(Exception):
                resp.shutdown()
        for thread in self._threads:
            thread.join(5)

    def _loop(self, kind: str, selector: str) -> None:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        rv: str | None = None
        failures = 0
        while not self._stop.is_set():
            resp = None
            try:
                if rv is None:
                    listed = self._api.list(kind, selector)
                    self._on_list(kind, listed.get("items", []))
                    rv = str(listed["metadata"]["resourceVersion"])
                resp = self._api.watch(kind, selector, rv)
                self._responses[kind] = resp
                if self._stop.is_set():  # close() ran while this request was being made
                    break
                for line in iter_resp_lines(resp):
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:  # our resourceVersion was compacted away: relist
                            rv = None
                            break
                        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                    rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                    if event.get("type") != "BOOKMARK":
                        self._on_event(kind, str(event.get("type")), obj)
                    if self._stop.is_set():
                        break
                failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                failures += 1
                self._trouble(kind, f"{exc.status} {exc.reason}", failures)
            except Exception as exc:  # dropped stream, connection refused, cut chunk: resume from rv
                if self._stop.is_set():
                    break
                failures += 1
                self._trouble(kind, type(exc).__name__, failures)
            finally:
                if resp is not None:
                    with contextlib.suppress(Exception):
                        resp.release_conn()

    def _trouble(self, kind: str, why: str, failures: int) -> None:
        if failures >= 3:
            self._note(f"headwater: watching {kind} failed {failures} times in a row ({why}); retrying")
        self._stop.wait(min(0.1 * 2 ** min(failures, 8), 10.0))


def follow_log(api: KubeApi, pod: str, log_path: str, *, attempt: int, stop: threading.Event,
               echo: Callable[[str], None] | None, gone: Callable[[], bool]) -> None:
    """Stream ``pod``'s log into ``log_path`` (and each line to ``echo``) until the container ends.

    Attempts after the first get a separator line. ``gone()`` says the pod was deleted (stop trying)."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.watch.watch import iter_resp_lines

    written = 0
    tries = 0
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        if attempt > 1:
            log.write(f"--- attempt {attempt}: pod {pod} ---\n")
        while not stop.is_set() and tries < 20:
            tries += 1
            resp = None
            try:
                resp = api.follow_log(pod)
                index = 0
                for line in iter_resp_lines(resp):
                    index += 1
                    if index <= written:  # a resumed stream starts from the beginning again
                        continue
                    written = index
                    log.write(line + "\n")
                    log.flush()
                    if echo is not None:
                        echo(line)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status == 400:  # not started yet / waiting: try again shortly
                    stop.wait(0.2)
                    continue
                stop.wait(0.2 * tries)
            except Exception:
                if gone():
                    return
                stop.wait(0.2 * tries)
            finally:
                if resp is not None:
                    with contextlib.suppress(Exception):
                        resp.release_conn()
