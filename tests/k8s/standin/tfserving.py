"""The stand-in's one substitution: the ``tensorflow/serving`` container runs ``headwater serve``.

TensorFlow Serving's model server cannot run here, so the kubelet runs ``headwater serve`` (the same REST API:
``GET /v1/models/NAME[/versions/N][/metadata]``, ``POST ...:predict``) in its place, translating the
container's command line the way ``tensorflow_model_server`` reads it:

- the image's entrypoint ``/usr/bin/tf_serving_entrypoint.sh`` adds ``--port=8500 --rest_api_port=8501
  --model_name=$MODEL_NAME --model_base_path=$MODEL_BASE_PATH/$MODEL_NAME`` (defaults ``model`` and
  ``/models``) before the container's args, as the real script does; ``tensorflow_model_server`` as the
  command is taken as it is;
- ``--model_name``, ``--model_base_path``, ``--rest_api_port`` and ``--model_config_file`` (a
  ``model_config_list`` with one ``config``: ``name``, ``base_path`` and a ``model_version_policy`` of
  ``latest`` or ``specific { versions: N }``) are honoured; the last occurrence of a flag wins; the gRPC
  ``--port`` is not served;
- a ``specific`` policy serves exactly those versions: the kubelet gives ``headwater serve`` a folder of the
  pod's own holding only them (links to ``base_path/N``), so a pinned version that is missing or does not load
  leaves the model unavailable, as in TF Serving;
- the REST port is given a free port of this machine (pods share its network); the kubelet maps the
  container port to it for probes and the API server's proxy;
- a ``base_path`` in a bucket (``gs://``, ``s3://``) is not read here: the container exits with a message
  saying so (TF Serving reads buckets natively; ``headwater serve`` reads folders).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import sys
from pathlib import Path

__all__ = ["ENTRYPOINT", "free_port", "translate"]

ENTRYPOINT = "/usr/bin/tf_serving_entrypoint.sh"
_FLAG = re.compile(r"^--?([a-z_]+)(?:=(.*))?$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flags(argv: list[str]) -> dict[str, str]:
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        m = _FLAG.match(argv[i])
        if m:
            value = m.group(2)
            if value is None and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                i += 1
                value = argv[i]
            flags[m.group(1)] = value if value is not None else "true"
        i += 1
    return flags


def _model_config(path: str) -> tuple[str, str, list[int] | None]:
    """(name, base_path, specific versions or None for latest) from a one-model ``model_config_list``."""
    text = Path(path).read_text()
    configs = re.findall(r"\bconfig\s*\{", text)
    if len(configs) != 1:
        raise ValueError(f"{path}: the stand-in serves one model per server; the file has {len(configs)} configs")
    name = re.search(r'\bname\s*:\s*"([^"]*)"', text)
    base = re.search(r'\bbase_path\s*:\s*"([^"]*)"', text)
    if name is None or base is None:
        raise ValueError(f"{path}: a config needs name and base_path")
    specific = re.search(r"\bspecific\s*\{([^}]*)\}", text)
    versions = [int(v) for v in re.findall(r"\bversions\s*:\s*(\d+)", specific.group(1))] if specific else None
    return name.group(1), base.group(1), versions


def _fail(message: str) -> list[str]:
    return ["/bin/sh", "-c", f"echo {shlex.quote(message)} >&2; exit 1"]


def translate(argv: list[str], env: dict[str, str], pod_dir: Path) -> tuple[list[str], dict[int, int]]:
    """The ``headwater serve`` command line standing in for ``argv``, and {container port: host port}."""
    if argv and argv[0] == ENTRYPOINT:
        name, base = env.get("MODEL_NAME", "model"), env.get("MODEL_BASE_PATH", "/models")
        argv = ["tensorflow_model_server", "--port=8500", "--rest_api_port=8501", f"--model_name={name}",
                f"--model_base_path={base}/{name}", *argv[1:]]
    if not argv or os.path.basename(argv[0]) != "tensorflow_model_server":
        return _fail(f"stand-in: tensorflow/serving runs tensorflow_model_server, not {argv[:1]}"), {}
    flags = _flags(argv[1:])
    rest_port = int(flags.get("rest_api_port", "0") or 0)
    if not rest_port:
        return _fail("stand-in: --rest_api_port is 0: TF Serving would serve no REST API"), {}
    versions: list[int] | None = None
    try:
        if "model_config_file" in flags:
            name, base, versions = _model_config(flags["model_config_file"])
        else:
            name, base = flags.get("model_name", "default"), flags.get("model_base_path", "")
    except (OSError, ValueError) as exc:
        return _fail(f"stand-in: cannot read the model config: {exc}"), {}
    if "://" in base:
        return _fail(f"stand-in: base_path {base} is in a bucket; TF Serving reads it natively, the stand-in's "
                     "headwater serve reads folders only"), {}
    served = base
    if versions is not None:
        served = str(pod_dir / "tfserving" / name)
        Path(served).mkdir(parents=True, exist_ok=True)
        for version in versions:
            link = Path(served, str(version))
            if not link.is_symlink():
                link.symlink_to(os.path.join(base, str(version)))
    host_port = free_port()
    return [sys.executable, "-m", "headwater.pipelines.cli", "serve", served, "--model-name", name,
            "--host", "127.0.0.1", "--port", str(host_port), "--poll-seconds", "0.5"], {rest_port: host_port}
