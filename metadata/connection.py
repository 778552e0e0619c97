"""Metadata connection strings: parse, validate, redact.

``sqlite:///relative/path.sqlite`` and ``sqlite:////absolute/path.sqlite`` (SQLAlchemy style),
``sqlite://`` (in-memory, for tests), ``mysql://user:pass@host:3306/db``,
``postgresql://user:pass@host:5432/db``, ``grpc://host:8080``. ``HEADWATER_METADATA`` supplies the
default. Passwords are kept out of every ``repr``, log line and error message: use :func:`redact`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from headwater.metadata.errors import MetadataError

__all__ = ["ENV_VAR", "ConnectionSpec", "parse_connection", "redact"]

ENV_VAR = "HEADWATER_METADATA"
_DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432, "grpc": 8080}
_SCHEMES = ("sqlite", "mysql", "postgresql", "grpc")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``.

    Each URL is parsed (the password is everything between the user's ``:`` and the *last* ``@`` before
    the host), so a password holding ``@``, ``:`` or ``/`` is hidden whole.
    """
    return _URL.sub(_redact_url, text)


#: A URL with credentials: scheme://user:password@host… (up to whitespace or a quote).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*@[^\s'\"]*")


def _redact_url(match: re.Match[str]) -> str:
    url = match.group(0)
    parts = urlsplit(url)
    try:
        password = parts.password
    except ValueError:
        password = None
    if password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class ConnectionSpec:
    """A parsed connection string. ``password`` is excluded from ``repr``."""

    scheme: str
    path: str | None = None  # sqlite file ("" = in memory)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The connection string without secrets, for messages and logs."""
        if self.scheme == "sqlite":
            return f"sqlite:///{self.path}" if self.path else "sqlite:// (in memory)"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user else "")
        db = f"/{self.database}" if self.database else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}{db}"

    def to_mlmd_config(self):  # -> metadata_store_pb2.ConnectionConfig | MetadataStoreClientConfig
        from ml_metadata.proto import metadata_store_pb2 as pb

        if self.scheme == "grpc":
            return pb.MetadataStoreClientConfig(host=self.host, port=self.port)
        cfg = pb.ConnectionConfig()
        if self.scheme == "sqlite":
            if self.path:
                cfg.sqlite.filename_uri = self.path
                cfg.sqlite.connection_mode = (
                    pb.SqliteMetadataSourceConfig.READONLY
                    if self.options.get("mode") == "ro"
                    else pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
                )
            else:
                cfg.fake_database.SetInParent()
        elif self.scheme == "mysql":
            cfg.mysql.host = self.host or "127.0.0.1"
            cfg.mysql.port = self.port or 3306
            cfg.mysql.database = self.database or ""
            cfg.mysql.user = self.user or ""
            if self.password:
                cfg.mysql.password = self.password
            cfg.mysql.skip_db_creation = self.options.get("skip_db_creation", "false") == "true"
        else:
            cfg.postgresql.host = self.host or "127.0.0.1"
            cfg.postgresql.port = str(self.port or 5432)
            cfg.postgresql.dbname = self.database or ""
            cfg.postgresql.user = self.user or ""
            if self.password:
                cfg.postgresql.password = self.password
            # Pre-created databases are the norm (MLMD would otherwise need CREATEDB).
            cfg.postgresql.skip_db_creation = self.options.get("skip_db_creation", "true") == "true"
        return cfg


def parse_connection(uri: str | None, *, default_sqlite: str | Path | None = None) -> ConnectionSpec:
    """Parse ``uri`` (or ``$HEADWATER_METADATA``, or the default SQLite file) into a spec."""
    if not uri:
        uri = os.environ.get(ENV_VAR) or None
    if not uri:
        if default_sqlite is None:
            raise MetadataError(
                f"no metadata store given: pass a connection string (e.g. 'sqlite:///metadata.sqlite') or "
                f"set {ENV_VAR}"
            )
        return ConnectionSpec("sqlite", path=str(Path(default_sqlite)))
    parts = urlsplit(uri)
    scheme = parts.scheme.lower().replace("postgres", "postgresql").replace("postgresqlql", "postgresql")
    scheme = {"mariadb": "mysql", "mysql+mysqldb": "mysql"}.get(scheme, scheme)
    if scheme not in _SCHEMES:
        raise MetadataError(
            f"metadata connection {redact(uri)!r} has unknown scheme {parts.scheme!r}; use one of "
            "sqlite:///path, mysql://user:pass@host:port/db, postgresql://user:pass@host:port/db, "
            "grpc://host:port"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme == "sqlite":
        rest = uri.split(":", 1)[1].split("?", 1)[0]
        rest = rest[2:] if rest.startswith("//") else "\0" + rest
        if rest in ("", "/", "/:memory:", ":memory:"):
            return ConnectionSpec("sqlite", path="", options=options)
        if not rest.startswith("/") or rest.startswith("\0"):
            raise MetadataError(
                f"metadata connection {uri!r} is not a valid SQLite URL; write sqlite:///relative.sqlite "
                "or sqlite:////absolute/path.sqlite"
            )
        return ConnectionSpec("sqlite", path=rest[1:], options=options)
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise MetadataError(f"metadata connection {redact(uri)!r} has an invalid port") from exc
    if not parts.hostname:
        raise MetadataError(f"metadata connection {redact(uri)!r} names no host; write {scheme}://host:port/...")
    database = parts.path.lstrip("/") or None
    if scheme in ("mysql", "postgresql") and not database:
        raise MetadataError(
            f"metadata connection {redact(uri)!r} names no database; append '/<database>' (e.g. /mlmd)"
        )
    return ConnectionSpec(
        scheme,
        host=parts.hostname,
        port=port,
        database=database,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        options=options,
    )
