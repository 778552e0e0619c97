"""Where a user's warm pool lives, what it is keyed by, and the private socket that reaches it.

One pool per user and per Python environment: the key hashes the uid, ``sys.prefix``, the Python
executable, headwater's version and a stamp of its own source files (an edited or upgraded headwater
never runs in an old pool), and the environment variables that only take effect when a process starts
(``TF_*``, ``CUDA_*``, ``OMP_*`` ...). Pools live in a folder only the user can open (0700, owned by
them) under ``$HEADWATER_WORKERS_DIR``, ``$XDG_RUNTIME_DIR/headwater-workers`` or
``~/.cache/headwater/workers``; the socket is 0600 and both ends check the other's uid (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import struct
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from headwater.components.errors import RunnerError

DIR_ENV = "HEADWATER_WORKERS_DIR"
#: Variables read when a process (or TensorFlow, BLAS, CUDA) starts: a pool serves only clients that agree.
STARTUP_PREFIXES = ("TF_", "TFX_", "CUDA", "XLA_", "KERAS", "OMP_", "MKL_", "OPENBLAS_", "PYTHON", "LD_")
SOCKET = "sock"
PID_FILE = "pid"
INFO_FILE = "info.json"
LOG_FILE = "daemon.log"
LOCK_FILE = "lock"
_UNIX_PATH_MAX = 107
#: A worker is retired after this many executions, or when it holds more memory than this after one.
DEFAULT_MAX_EXECUTIONS = 50
DEFAULT_MAX_RSS_MB = 3072


class WarmPoolError(RunnerError):
    """The warm worker pool cannot be used (unsafe folder, socket, daemon that does not answer)."""


def base_dir() -> Path:
    given = os.environ.get(DIR_ENV)
    if given:
        return Path(given)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "headwater-workers"
    return Path.home() / ".cache" / "headwater" / "workers"


def private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or check that it is a real folder of this user that nobody else can open."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise WarmPoolError(
            f"warm workers: {path} is not a folder owned by uid {os.getuid()}; remove it or point "
            f"${DIR_ENV} at a private folder (or run with --no-keep-warm)"
        )
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def _source_stamp() -> str:
    """Names, sizes and modification times of headwater's own modules (cheap: no file is read)."""
    import headwater.components
    import headwater.metadata
    import headwater.pipelines

    digest = hashlib.sha256()
    for package in (headwater.components, headwater.metadata, headwater.pipelines):
        for folder in package.__path__:
            for path in sorted(Path(folder).rglob("*.py")):
                st = path.stat()
                digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("headwater")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0+unknown"


def key_parts(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    return {
        "uid": os.getuid(),
        "prefix": sys.prefix,
        "executable": sys.executable,
        "headwater": _version(),
        "source": _source_stamp(),
        "startup_env": {k: v for k, v in sorted(env.items()) if k.startswith(STARTUP_PREFIXES)},
    }


def pool_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def pool_dir(key: str, base: Path | None = None) -> Path:
    folder = (base or base_dir()) / key[:16]
    if len(str(folder / SOCKET)) > _UNIX_PATH_MAX:
        raise WarmPoolError(
            f"warm workers: the socket path under {folder} is longer than a Unix socket allows "
            f"({_UNIX_PATH_MAX} bytes); set ${DIR_ENV} to a shorter private folder"
        )
    return folder


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def listen(path: Path) -> socket.socket:
    """A listening socket at ``path`` that only this user can open (0600 from birth, via the umask)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    server.listen(64)
    return server


def connect(path: Path, timeout: float = 5.0) -> Connection:
    """A connection to the daemon at ``path``; refused unless the daemon runs as this user."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
        if peer_uid(sock) != os.getuid():
            raise WarmPoolError(f"warm workers: the process behind {path} is not run by uid {os.getuid()}")
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return Connection(sock.detach())


def send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message).encode())


def recv(conn: Connection) -> dict[str, Any]:
    data = json.loads(conn.recv_bytes())
    if not isinstance(data, dict):
        raise WarmPoolError("warm workers: malformed message")
    return data


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def pool_dirs(base: Path | None = None) -> Iterator[Path]:
    folder = base or base_dir()
    if folder.is_dir():
        yield from sorted(p for p in folder.iterdir() if p.is_dir() and (p / INFO_FILE).is_file())
