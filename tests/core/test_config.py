"""Settings from the environment, and what a process sizes from them."""

import pytest
from pydantic import ValidationError

from subledger.config import Settings
from subledger.core.runtime import SLOW_THREADS, Runtime


def test_an_empty_variable_means_the_default(monkeypatch):
    monkeypatch.setenv("SUBLEDGER_DATABASE_THREADS", "")
    monkeypatch.setenv("SUBLEDGER_LOG_LEVEL", "")
    settings = Settings(database_url="")
    assert settings.database_threads is None
    assert settings.request_threads == 40  # the embedded database's default
    assert settings.log_level == "info"


def test_database_threads_are_read_and_checked(monkeypatch):
    monkeypatch.setenv("SUBLEDGER_DATABASE_THREADS", "8")
    assert Settings(database_url="postgresql://db/x").request_threads == 8
    monkeypatch.setenv("SUBLEDGER_DATABASE_THREADS", "0")
    with pytest.raises(ValidationError, match="database_threads"):
        Settings()


def test_a_postgresql_process_has_a_connection_for_each_of_its_threads():
    settings = Settings(database_url="postgresql://db.invalid/x", database_threads=6)
    # and one for the delivery worker, whose deliveries in flight wait on no connection
    assert Runtime.from_settings(settings).db.engine.pool.size() == 6 + SLOW_THREADS + 1
