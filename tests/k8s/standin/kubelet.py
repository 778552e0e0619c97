"""The stand-in's kubelet: runs a bound pod's container as a local subprocess.

See ``cluster.py``'s docstring for what it does and what a subprocess cannot do.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .faults import PodFault
from .objects import Image, Node, Obj, _condition, _set_condition, _ts_nano
from .probes import Prober
from .store import now_rfc3339
from .tfserving import free_port, translate

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["_PodRunner"]


class _PodRunner:
    """The kubelet's work for one pod: pull, configure, run, report, clean up."""

    def __init__(self, cluster: Cluster, pod: Obj, node: Node) -> None:
        self.cluster = cluster
        self.ns = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.node = node
        self.dir = cluster.workdir / "pods" / f"{self.ns}_{self.name}_{self.uid}"
        self.container = pod["spec"]["containers"][0]
        self.log_path = self.dir / f"{self.container['name']}.log"
        self.started = threading.Event()
        self.log_done = threading.Event()
        self.deleting = threading.Event()
        self.grace = 0.0
        self.ports: dict[int, int] = {}  # container port -> port of this machine
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"kubelet-{self.name}", daemon=True)

    # -- control -------------------------------------------------------------------------------------
    def has_process(self) -> bool:
        with self._proc_lock:
            return self._proc is not None and self._proc.poll() is None

    def request_delete(self, grace: float) -> None:
        self.grace = grace
        self.deleting.set()

    def kill(self) -> None:
        self.deleting.set()
        with self._proc_lock:
            if self._proc is not None and self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)

    def _status(self, mutate: Callable[[Obj], None]) -> Obj | None:
        def apply(p: Obj) -> None:
            mutate(p.setdefault("status", {}))

        return self.cluster.store.modify("pods", self.ns, self.name, apply)

    def _container_status(self, state: Obj, *, ready: bool = False, started: bool = False) -> Obj:
        return {
            "name": self.container["name"],
            "image": self.container["image"],
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": started,
            "state": state,
            "lastState": {},
        }

    def _waiting(self, reason: str, message: str | None = None) -> None:
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message

        def mutate(s: Obj) -> None:
            s["containerStatuses"] = [self._container_status({"waiting": waiting})]

        self._status(mutate)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the pod is deleted meanwhile; False when deleted."""
        return not self.deleting.wait(seconds)

    # -- run -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._lifecycle()
        except Exception as exc:
            print(f"stand-in kubelet error for pod {self.name}: {exc!r}")
        finally:
            self.log_done.set()
            self._finish_deletion()
            shutil.rmtree(self.dir / "volumes", ignore_errors=True)

    def _finish_deletion(self) -> None:
        pod = self.cluster.store.get("pods", self.ns, self.name)
        if pod is not None and (self.deleting.is_set() or pod["metadata"].get("deletionTimestamp")):
            self.cluster.store.remove("pods", self.ns, self.name)

    def _lifecycle(self) -> None:
        pod = self.cluster.store.get("pods", self.ns, self.name)
        if pod is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        faults = self.cluster.take_faults(pod)
        kinds = {f.kind: f for f in faults}
        octets = abs(hash(self.uid)) % 250 + 2

        def init(s: Obj) -> None:
            s["hostIP"] = f"10.0.0.{self.cluster.nodes.index(self.node) + 2}"
            s["startTime"] = now_rfc3339()
            unready = f"containers with unready status: [{self.container['name']}]"
            for cond in (
                _condition("PodReadyToStartContainers", "False"),
                _condition("Initialized", "True"),
                _condition("Ready", "False", "ContainersNotReady", unready),
                _condition("ContainersReady", "False", "ContainersNotReady", unready),
            ):
                _set_condition(s, cond)
            s["containerStatuses"] = [self._container_status({"waiting": {"reason": "ContainerCreating"}})]

        self._status(init)
        if "slow_start" in kinds and not self._sleep(kinds["slow_start"].after):
            return
        image_name = self.container["image"]
        image = (self.cluster.images or {}).get(image_name, Image()) if self.cluster.images is not None else Image()
        if "image_pull" in kinds or (self.cluster.images is not None and image_name not in self.cluster.images):
            ref = image_name if "/" in image_name else f"docker.io/library/{image_name}"
            if ":" not in ref.rsplit("/", 1)[-1]:
                ref += ":latest"
            pull_error = (
                f'Failed to pull image "{image_name}": rpc error: code = NotFound desc = failed to pull and unpack '
                f'image "{ref}": failed to resolve reference "{ref}": {ref}: not found'
            )
            while True:
                self._waiting("ErrImagePull", pull_error)
                if not self._sleep(0.1):
                    return
                self._waiting("ImagePullBackOff", f'Back-off pulling image "{image_name}"')
                if not self._sleep(0.3):
                    return

        def ready_to_start(s: Obj) -> None:
            s["podIP"] = f"10.244.{self.cluster.nodes.index(self.node)}.{octets}"
            s["podIPs"] = [{"ip": s["podIP"]}]
            _set_condition(s, _condition("PodReadyToStartContainers", "True"))

        self._status(ready_to_start)
        # Volumes and environment: retried until the referenced objects exist, like the kubelet does.
        while True:
            seen = self.cluster.store.resource_version
            pod = self.cluster.store.get("pods", self.ns, self.name)
            if pod is None:
                return
            try:
                mounts = self._mount_volumes(pod)
                env = self._environment(pod, image)
                break
            except _WaitingError as exc:
                self._waiting(exc.reason, exc.message)
                # Like the kubelet's watch-based ConfigMap/Secret manager: try again when objects change.
                self.cluster.store.wait(seen, 0.2)
                if self.deleting.is_set():
                    return
        argv = list(self.container.get("command") or image.entrypoint) + list(self.container.get("args") or [])
        if not self.container.get("command") and not self.container.get("args"):
            argv = list(image.entrypoint)
        rewrite = _rewriter(mounts)
        argv = [rewrite(a) for a in _expand_all(argv, env)]
        # The image's own variables (PATH, PYTHONPATH) describe the image's file system, which is this
        # machine's: only what the pod spec adds may name mounted paths that need mapping to host folders.
        env = {**{k: v if image.env.get(k) == v else rewrite(v) for k, v in env.items()},
               **self._credentials(pod)}
        workdir = rewrite(self.container.get("workingDir") or image.workdir or "") or str(self.dir / "cwd")
        Path(workdir).mkdir(parents=True, exist_ok=True)
        if "exit" in kinds:
            argv = ["/bin/sh", "-c", f"echo 'stand-in fault: container exits with {kinds['exit'].exit_code}'; "
                    f"exit {kinds['exit'].exit_code}"]
        if not argv:
            self._terminate(128, "StartError", "no command specified", started_at=None)
            return
        if image.tf_serving and "exit" not in kinds:
            argv, self.ports = translate(argv, env, self.dir)
        else:  # pods share this machine's network: each declared port gets a free one, named in the environment
            self.ports = {p["containerPort"]: free_port() for p in self.container.get("ports") or []}
            env.update({f"STANDIN_HOST_PORT_{c}": str(h) for c, h in self.ports.items()})
        restarts = 0
        while True:
            code, kill_reason, started_at = self._run_process(argv, env, workdir, faults)
            if code is None:
                return
            always = pod["spec"].get("restartPolicy") == "Always"
            if not always or self.deleting.is_set() or kill_reason in ("evict", "deleted"):
                break
            # restartPolicy Always: the kubelet restarts the container after a growing back-off.
            restarts += 1
            terminated = {"exitCode": code, "reason": "OOMKilled" if kill_reason == "oom" else (
                "Completed" if code == 0 else "Error"), "startedAt": started_at, "finishedAt": now_rfc3339(),
                "containerID": f"containerd://{self.uid.replace('-', '')}"}
            delay = min(self.cluster.backoff_base * 4 * 2 ** (restarts - 1), 2.0)

            def crash_loop(s: Obj, terminated: Obj = terminated, restarts: int = restarts,
                           delay: float = delay) -> None:
                unready = f"containers with unready status: [{self.container['name']}]"
                _set_condition(s, _condition("Ready", "False", "ContainersNotReady", unready))
                _set_condition(s, _condition("ContainersReady", "False", "ContainersNotReady", unready))
                status = self._container_status({"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:.1f}s restarting failed container={self.container['name']} "
                               f"pod={self.name}_{self.ns}({self.uid})"}})
                status["restartCount"] = restarts
                status["lastState"] = {"terminated": terminated}
                s["containerStatuses"] = [status]

            self._status(crash_loop)
            self.restarts = restarts
            if not self._sleep(delay):
                return
        self.log_done.set()
        if kill_reason == "oom":
            self._terminate(137, "OOMKilled", None, started_at=started_at)
        elif kill_reason == "evict":
            self._terminate(137, "Error", None, started_at=started_at, evicted=True)
        else:
            self._terminate(code, "Completed" if code == 0 else "Error", None, started_at=started_at)

    def _run_process(self, argv: list[str], env: dict[str, str], workdir: str,
                     faults: list[PodFault]) -> tuple[int | None, str | None, str]:
        """Run the container's process once: (exit code or None if it never started, kill reason, start)."""
        started_at = now_rfc3339()
        try:
            with self._proc_lock:
                if self.deleting.is_set():
                    return None, None, started_at
                self._proc = subprocess.Popen(
                    argv, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )
        except OSError as exc:
            detail = exc.strerror or str(exc)
            if isinstance(exc, FileNotFoundError):
                detail = f'exec: "{argv[0]}": executable file not found in $PATH'
            self._terminate(128, "StartError", f"failed to create containerd task: {detail}", started_at=None)
            return None, None, started_at
        proc = self._proc
        readers = [
            threading.Thread(target=self._pump, args=(proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, "stderr"), daemon=True),
        ]
        for r in readers:
            r.start()
        self.started.set()
        probe = Prober(self, self.container.get("readinessProbe"))

        def running(s: Obj) -> None:
            s["phase"] = "Running"
            ready = probe.spec is None
            if ready:
                _set_condition(s, _condition("Ready", "True"))
                _set_condition(s, _condition("ContainersReady", "True"))
            status = self._container_status({"running": {"startedAt": started_at}}, ready=ready, started=True)
            status["restartCount"] = self.restarts
            for previous in s.get("containerStatuses") or []:
                if previous.get("lastState"):
                    status["lastState"] = previous["lastState"]
            s["containerStatuses"] = [status]

        self._status(running)
        t0 = time.monotonic()
        kill_reason: str | None = None
        deadline_fault = next((f for f in faults if f.kind in ("oom", "evict")), None)
        while proc.poll() is None:
            if self.deleting.is_set():
                kill_reason = "deleted"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(self.grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                break
            if deadline_fault is not None and time.monotonic() - t0 >= deadline_fault.after:
                kill_reason = deadline_fault.kind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                break
            probe.tick(t0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.02)
        code = proc.wait()
        with contextlib.suppress(ProcessLookupError):  # the container's other processes go with it
            os.killpg(proc.pid, signal.SIGKILL)
        for r in readers:
            r.join(5)
        if code < 0:
            code = 128 - code
        return code, kill_reason, started_at
    def _terminate(self, code: int, reason: str, message: str | None, *, started_at: str | None,
                   evicted: bool = False) -> None:
        if message is None and code != 0 and self.container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = b"".join(self.read_log(follow=False, tail=80, timestamps=False, since=None)).decode(errors="replace")
            message = tail[-2048:] or None
        terminated: Obj = {"exitCode": code, "reason": reason, "finishedAt": now_rfc3339(),
                           "containerID": f"containerd://{self.uid.replace('-', '')}"}
        terminated["startedAt"] = started_at or terminated["finishedAt"]
        if message:
            terminated["message"] = message

        def mutate(s: Obj) -> None:
            s["phase"] = "Succeeded" if code == 0 and not evicted else "Failed"
            reason_ready = "PodCompleted"
            _set_condition(s, _condition("Ready", "False", reason_ready))
            _set_condition(s, _condition("ContainersReady", "False", reason_ready))
            _set_condition(s, _condition("PodReadyToStartContainers", "False"))
            s["containerStatuses"] = [self._container_status({"terminated": terminated})]
            if evicted:
                s["reason"] = "Evicted"
                s["message"] = (
                    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
                    f"Container {self.container['name']} was using 3Gi, request is 0, has larger consumption of "
                    "memory. "
                )
                _set_condition(s, _condition("DisruptionTarget", "True", "TerminationByKubelet",
                                             "The node was low on resource: memory. "))

        self._status(mutate)

    # -- environment and volumes ---------------------------------------------------------------------
    def _lookup(self, kind: str, name: str) -> dict[str, str] | None:
        obj = self.cluster.store.get(kind, self.ns, name)
        if obj is None:
            return None
        if kind == "secrets":
            return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})

    def _environment(self, pod: Obj, image: Image) -> dict[str, str]:
        env = dict(image.env)
        c = self.container
        for source in c.get("envFrom") or []:
            ref_kind, ref = ("configmaps", source["configMapRef"]) if "configMapRef" in source else (
                "secrets", source["secretRef"])
            data = self._lookup(ref_kind, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise _WaitingError("CreateContainerConfigError", f'{ref_kind[:-1]} "{ref["name"]}" not found')
            env.update({source.get("prefix", "") + k: v for k, v in data.items()})
        for item in c.get("env") or []:
            if "valueFrom" not in item:
                env[item["name"]] = _expand(item.get("value", ""), env)
                continue
            src = item["valueFrom"]
            if "secretKeyRef" in src or "configMapKeyRef" in src:
                kind, ref = ("secrets", src["secretKeyRef"]) if "secretKeyRef" in src else (
                    "configmaps", src["configMapKeyRef"])
                data = self._lookup(kind, ref["name"])
                label = "Secret" if kind == "secrets" else "ConfigMap"
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    if data is None:
                        raise _WaitingError("CreateContainerConfigError", f'{kind[:-1]} "{ref["name"]}" not found')
                    raise _WaitingError("CreateContainerConfigError",
                                        f"couldn't find key {ref['key']} in {label} {self.ns}/{ref['name']}")
                env[item["name"]] = data[ref["key"]]
            elif "fieldRef" in src:
                env[item["name"]] = _field(pod, src["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in src:
                resource = src["resourceFieldRef"]["resource"]
                section, _, key = resource.partition(".")
                value = ((c.get("resources") or {}).get(section) or {}).get(key, "0")
                env[item["name"]] = str(value)
        env.setdefault("HOSTNAME", self.name)
        return env

    def _credentials(self, pod: Obj) -> dict[str, str]:
        """The service account token mount, stand-in style: a kubeconfig for the pod's service account."""
        if pod["spec"].get("automountServiceAccountToken", True) and self.cluster.kubeconfig_for is not None:
            kubeconfig = self.cluster.kubeconfig_for(self.ns, pod["spec"].get("serviceAccountName", "default"))
            if kubeconfig:
                return {"KUBECONFIG": kubeconfig}
        return {}

    def _mount_volumes(self, pod: Obj) -> list[tuple[str, str]]:
        vols = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        base = self.dir / "volumes"
        mounts: list[tuple[str, str]] = []
        for m in self.container.get("volumeMounts") or []:
            vol = vols[m["name"]]
            sub = m.get("subPath", "")
            if "persistentVolumeClaim" in vol or "hostPath" in vol:
                host = (self.cluster.claims[vol["persistentVolumeClaim"]["claimName"]]
                        if "persistentVolumeClaim" in vol else vol["hostPath"]["path"])
                host = os.path.join(host, sub) if sub else host
                if os.path.normpath(m["mountPath"]) != os.path.normpath(host):
                    raise _WaitingError(
                        "CreateContainerError",
                        f"stand-in: volume {m['name']!r} is {host} on this machine but mounted at "
                        f"{m['mountPath']}; mount shared storage at its own path",
                    )
                Path(host).mkdir(parents=True, exist_ok=True)
                mounts.append((m["mountPath"], host))
                continue
            target = base / m["name"]
            if "configMap" in vol or "secret" in vol:
                kind, ref = ("configmaps", vol["configMap"]["name"]) if "configMap" in vol else (
                    "secrets", vol["secret"]["secretName"])
                data = self._lookup(kind, ref)
                if data is None:
                    raise _WaitingError("ContainerCreating", None)
                target.mkdir(parents=True, exist_ok=True)
                items = (vol.get("configMap") or vol.get("secret") or {}).get("items")
                files = {i["path"]: data[i["key"]] for i in items if i["key"] in data} if items else data
                for rel, content in files.items():
                    path = target / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(content)
            elif "emptyDir" in vol:
                target.mkdir(parents=True, exist_ok=True)
            else:
                kinds = sorted(k for k in vol if k != "name")
                raise _WaitingError("CreateContainerError", f"stand-in: unsupported volume type {kinds}")
            host = str(target / sub) if sub else str(target)
            mounts.append((m["mountPath"], host))
        return mounts

    # -- logs ----------------------------------------------------------------------------------------
    def _pump(self, pipe: Any, stream: str) -> None:
        with open(self.log_path, "ab") as out:
            for raw in iter(pipe.readline, b""):
                tag = b"F" if raw.endswith(b"\n") else b"P"
                line = raw.rstrip(b"\n")
                with self._log_lock:
                    out.write(_ts_nano().encode() + b" " + stream.encode() + b" " + tag + b" " + line + b"\n")
                    out.flush()
        pipe.close()

    def read_log(
        self, *, follow: bool, tail: int | None, timestamps: bool, since: int | None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[bytes]:
        def render(record: bytes) -> bytes | None:
            ts, _stream, tag, content = [*record.split(b" ", 3), b"", b"", b""][:4]
            if since is not None:
                moment = dt.datetime.strptime(ts[:19].decode(), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
                if moment.timestamp() < time.time() - since:
                    return None
            text = content + (b"\n" if tag == b"F" else b"")
            return ts + b" " + text if timestamps else text

        with open(self.log_path, "rb") as f:
            if tail is not None:
                records = f.read().splitlines()
                for r in records[-tail:] if tail > 0 else []:
                    out = render(r)
                    if out is not None:
                        yield out
                if not follow:
                    return
            buffer = b""
            final_pass = False
            while True:
                chunk = f.read(65536)
                if chunk:
                    buffer += chunk
                    *records, buffer = buffer.split(b"\n")
                    for r in records:
                        out = render(r)
                        if out is not None:
                            yield out
                    continue
                if not follow or final_pass:
                    break
                if self.log_done.is_set():
                    final_pass = True  # read once more: lines written just before the end
                    continue
                if should_stop is not None and should_stop():
                    return
                self.log_done.wait(0.02)
            if buffer:
                out = render(buffer)
                if out is not None:
                    yield out


class _WaitingError(Exception):
    def __init__(self, reason: str, message: str | None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message


_VAR = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are substituted, ``$$`` escapes."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(sub, value)


def _expand_all(values: list[str], env: dict[str, str]) -> list[str]:
    return [_expand(v, env) for v in values]


def _field(pod: Obj, path: str) -> str:
    meta = pod["metadata"]
    if path == "metadata.name":
        return str(meta["name"])
    if path == "metadata.namespace":
        return str(meta["namespace"])
    if path == "metadata.uid":
        return str(meta["uid"])
    if m := re.match(r"metadata\.(labels|annotations)\['(.+)'\]", path):
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path == "spec.nodeName":
        return str(pod["spec"].get("nodeName", ""))
    if path == "spec.serviceAccountName":
        return str(pod["spec"].get("serviceAccountName", "default"))
    if path in ("status.podIP", "status.hostIP"):
        return str((pod.get("status") or {}).get(path.split(".")[1], ""))
    return ""


#: A URL (``s3://bucket/key``, ``http://host:port/path``): what follows the scheme is no container path.
_URL = re.compile(r"(?<![\w+.-])([a-zA-Z][a-zA-Z0-9+.-]*)://[^\s,;]*")


def _rewriter(mounts: list[tuple[str, str]]) -> Callable[[str], str]:
    """Rewrite container paths of per-pod volumes to their host directories. The longest mount path wins,
    and shared volumes mounted at their own path (kept in ``mounts`` as identities) shadow shorter ones.
    URLs pass through untouched (an object-store pipeline root, an endpoint), except the path of a
    ``file://`` URL, which is a container path like any other."""
    table = {os.path.normpath(m): os.path.normpath(h) for m, h in mounts}
    if all(m == h for m, h in table.items()):
        return lambda s: s
    ordered = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(m) for m in ordered) + r")(?=/|$|[\s:,;=])")

    def paths(s: str) -> str:
        return pattern.sub(lambda m: table[m.group(1)], s)

    def rewrite(s: str) -> str:
        # The "image" is this machine's own files (the checkout, the Python environment): a path into them is
        # never a mounted volume, even when the checkout happens to sit under a mount path such as /tmp.
        if any(root in s for root in _IMAGE_ROOTS):
            return s
        out, end = [], 0
        for url in _URL.finditer(s):
            out.append(paths(s[end:url.start()]))
            text = url.group(0)
            if url.group(1).lower() == "file":
                text = "file://" + paths(text[len("file://"):])
            out.append(text)
            end = url.end()
        out.append(paths(s[end:]))
        return "".join(out)

    return rewrite


#: Host folders that play the part of the runtime image's file system.
_IMAGE_ROOTS = tuple(sorted({str(Path(__file__).resolve().parents[3]), sys.prefix, sys.base_prefix}, key=len,
                            reverse=True))
