"""GET /health: a probe's view of the server, without an API key."""

from alembic import command
from fastapi.testclient import TestClient

from subledger import __version__
from subledger.app import create_app
from subledger.config import Settings
from subledger.core.db import HEAD_REVISION
from subledger.core.runtime import Runtime


def test_a_migrated_database_is_healthy_with_or_without_the_slash(client, runtime):
    for path in ("/health", "/health/"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ok",
            "version": __version__,
            "database": runtime.db.engine.dialect.name,
            "schema_revision": HEAD_REVISION,
        }


def test_a_database_behind_this_version_is_unavailable(client, runtime):
    with runtime.db.migrating() as conn:
        command.downgrade(runtime.db.alembic_config(conn), "0011")
    response = client.get("/health")
    runtime.db.migrate()  # the PostgreSQL database is the whole test session's
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "revision 0011" in response.json()["reason"] and "subledger migrate" in response.json()["reason"]
    assert client.get("/health").status_code == 200


def test_a_database_that_does_not_answer_is_unavailable_and_its_address_stays_private(tmp_path, caplog):
    garbled = tmp_path / "garbled.db"
    garbled.write_bytes(b"not a database " * 100)
    for url in ("postgresql://nobody:hunter2@127.0.0.1:9/none", f"sqlite:///{garbled}"):
        settings = Settings(database_url=url, data_dir=tmp_path, serve_worker="off")
        with TestClient(create_app(Runtime.from_settings(settings))) as client:
            response = client.get("/health")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "version": __version__,
            "reason": "the database does not answer",
        }
        assert "hunter2" not in response.text and "garbled" not in response.text
    assert "health check: the database does not answer" in caplog.text
