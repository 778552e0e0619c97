"""The dashboard over PostgreSQL with a SELECT-only user, as docs/ui.md tells to create it for a cluster."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from headwater.metadata.store import connect
from headwater.ui.app import create_app
from starlette.testclient import TestClient

pytestmark = pytest.mark.db


def _admin(sql: str, db: str) -> None:
    import psycopg2

    con = psycopg2.connect(dbname=db, host="127.0.0.1", port=5432, user="postgres")
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


@pytest.fixture
def readonly_uri(postgres_uri: str) -> Iterator[str]:
    database = postgres_uri.rsplit("/", 1)[1]
    store = connect(postgres_uri)
    store.context("pipeline_run", "20260101T000000-aaaaaa", {"status": "succeeded", "pipeline_name": "p"})
    del store
    role = f"hw_ro_{secrets.token_hex(3)}"
    _admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'", "test")
    for sql in (f"GRANT CONNECT ON DATABASE {database} TO {role}", f"GRANT USAGE ON SCHEMA public TO {role}",
                f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"):
        _admin(sql, database)
    yield f"postgresql://{role}:pw@127.0.0.1:5432/{database}"
    _admin(f"DROP OWNED BY {role}", database)
    _admin(f"DROP ROLE {role}", "test")


def test_select_only_user_reads_and_cannot_write(readonly_uri: str) -> None:
    store = connect(readonly_uri, readonly=True)
    client = TestClient(create_app(store), base_url="http://127.0.0.1")
    runs = client.get("/api/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == ["20260101T000000-aaaaaa"]
    assert client.get("/").status_code == 200
    with pytest.raises(Exception, match="permission denied"):
        store.context("pipeline_run", "another")
