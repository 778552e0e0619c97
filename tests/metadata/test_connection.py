import pytest
from headwater.metadata import parse_connection, redact
from headwater.metadata.errors import MetadataError


def test_sqlite_relative_and_absolute():
    assert parse_connection("sqlite:///runs/m.sqlite").path == "runs/m.sqlite"
    assert parse_connection("sqlite:////tmp/m.sqlite").path == "/tmp/m.sqlite"
    assert parse_connection("sqlite://").path == ""


def test_server_urls_and_defaults():
    spec = parse_connection("mysql://root:s3cret@db.example:3307/mlmd")
    got = (spec.scheme, spec.host, spec.port, spec.database, spec.user)
    assert got == ("mysql", "db.example", 3307, "mlmd", "root")
    pg = parse_connection("postgresql://u@h/mlmd")
    assert pg.port == 5432
    assert pg.to_mlmd_config().postgresql.port == "5432"
    assert parse_connection("grpc://mlmd:8080").port == 8080


def test_password_never_shown():
    uri = "postgresql://alice:hunter2@db:5432/mlmd"
    spec = parse_connection(uri)
    assert "hunter2" not in repr(spec)
    assert "hunter2" not in spec.display
    assert redact(uri) == "postgresql://alice:***@db:5432/mlmd"


def test_env_var_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HEADWATER_METADATA", "sqlite:////x/y.sqlite")
    assert parse_connection(None).path == "/x/y.sqlite"
    monkeypatch.delenv("HEADWATER_METADATA")
    assert parse_connection(None, default_sqlite=tmp_path / "m.sqlite").path == str(tmp_path / "m.sqlite")
    with pytest.raises(MetadataError, match="no metadata store given"):
        parse_connection(None)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("oracle://h/db", "unknown scheme 'oracle'"),
        ("mysql://root:pw@h:3306", "names no database"),
        ("sqlite:relative", "not a valid SQLite URL"),
    ],
)
def test_bad_connection_strings(uri, message):
    with pytest.raises(MetadataError, match=message) as info:
        parse_connection(uri)
    assert "pw" not in str(info.value)


def test_unreachable_server_error_hides_password():
    from headwater.metadata import connect

    with pytest.raises(MetadataError, match="cannot open metadata store") as info:
        connect("mysql://root:topsecret@127.0.0.1:1/nodb")
    assert "topsecret" not in str(info.value)


def test_redact_hides_a_password_holding_at_signs_and_colons_whole():
    from headwater.metadata.connection import redact

    secret = "p@ss:w@rd"
    text = f"cannot open postgresql://mlmd:{secret}@db.example:5432/mlmd: refused; and mysql://u:{secret}@h/db"
    shown = redact(text)
    assert "p@ss" not in shown and "w@rd" not in shown and "ss:w" not in shown
    assert shown == "cannot open postgresql://mlmd:***@db.example:5432/mlmd: refused; and mysql://u:***@h/db"
    assert redact("sqlite:///x.sqlite and mysql://root@h:3306/db") == "sqlite:///x.sqlite and mysql://root@h:3306/db"
