"""Shared fixtures: pipeline roots, and metadata stores on SQLite, MariaDB and PostgreSQL (for real)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Test components live in importable modules so spawned worker processes can load them.
sys.path.insert(0, str(TESTS / "support"))

SHARED = TESTS.parent.parent / "shared"
TFX_FIXTURE = SHARED / "fixtures" / "tfx-1.16-penguin" / "metadata.sqlite"

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _mysql_admin(sql: str) -> None:
    import pymysql

    con = pymysql.connect(**MYSQL)  # type: ignore[arg-type]
    try:
        with con.cursor() as cur:
            cur.execute(sql)
        con.commit()
    finally:
        con.close()


def _postgres_admin(sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(dbname="test", **POSTGRES)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


@pytest.fixture
def mysql_uri() -> Iterator[str]:
    name = f"hw_{secrets.token_hex(4)}"
    try:
        _mysql_admin(f"CREATE DATABASE {name}")
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"MariaDB on 127.0.0.1:3306 is not reachable: {exc}")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    _mysql_admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    name = f"hw_{secrets.token_hex(4)}"
    try:
        _postgres_admin(f"CREATE DATABASE {name}")
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    _postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty metadata store on each of the three backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    return str(request.getfixturevalue({"mysql": "mysql_uri", "postgresql": "postgres_uri"}[request.param]))


@pytest.fixture
def tfx_store_path(tmp_path: Path) -> Path:
    """A copy of the MLMD store written by TFX 1.16 itself (skips when ../shared is absent)."""
    if not TFX_FIXTURE.exists():
        pytest.skip(f"TFX fixture store not found at {TFX_FIXTURE} (../shared is absent in this checkout)")
    import shutil

    dest = tmp_path / "tfx.sqlite"
    shutil.copy(TFX_FIXTURE, dest)
    return dest


# ------------------------------------------------------------------------------------ object stores
# Real protocol servers on loopback (tests/support/object_stores.py): moto's S3 server and a GCS emulator.
@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server for the whole session."""
    from object_stores import start_s3_server

    endpoint, stop = start_s3_server()
    yield endpoint
    stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """The endpoint URL of an in-memory GCS emulator for the whole session."""
    from object_stores import start_gcs_server

    endpoint, stop = start_gcs_server()
    yield endpoint
    stop()


def _bucket_root(kind: str, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from object_stores import make_bucket, object_store_env

    bucket = make_bucket(kind, endpoint)
    for key, value in object_store_env(kind, endpoint).items():
        monkeypatch.setenv(key, value)
    return f"{kind}://{bucket}/root"


@pytest.fixture(params=["s3", "gs"])
def object_root(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 server and on the GCS emulator (one test each): ``s3://<bucket>/root``,
    with this process's environment pointing at the server."""
    kind = request.param
    return _bucket_root(kind, request.getfixturevalue("s3_server" if kind == "s3" else "gcs_server"), monkeypatch)


@pytest.fixture
def s3_root(monkeypatch: pytest.MonkeyPatch, s3_server: str) -> str:
    """``s3://<fresh bucket>/root`` on the S3 server, this process's environment pointing at it."""
    return _bucket_root("s3", s3_server, monkeypatch)


@pytest.fixture
def gs_root(monkeypatch: pytest.MonkeyPatch, gcs_server: str) -> str:
    """``gs://<fresh bucket>/root`` on the GCS emulator, this process's environment pointing at it."""
    return _bucket_root("gs", gcs_server, monkeypatch)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount small real tmpfs file systems (to fill them, or mount them read-only): ``tmpfs(size_kb, ro=False)``.

    Needs root; skips with the reason otherwise. Every mount is unmounted at the end."""
    import subprocess

    mounted: list[Path] = []

    def mount(size_kb: int, *, ro: bool = False, name: str = "") -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (the disk-full and read-only tests use a real one)")
        point = tmp_path / (name or f"tmpfs{len(mounted)}")
        point.mkdir()
        options = f"size={size_kb}k" + (",ro" if ro else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)

