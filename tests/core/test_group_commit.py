"""SQLite writers of a process share a commit with the writers queued behind them:
each still succeeds or fails alone, and none returns before its work is durable."""

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import event, select

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.group_commit import WriteFailed
from subledger.core.runtime import Runtime
from subledger.core.tables import api_keys, apps

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def db(sqlite_url):
    # A group stays open while the test queues its writers.
    database = Database(sqlite_url, sqlite_group_commit_seconds=10)
    yield database
    database.dispose()


def _app(conn, name: str) -> None:
    conn.execute(apps.insert().values(id=uuid.uuid4(), name=name, created_at=NOW))


def _names(db) -> set[str]:
    with db.read() as conn:
        return set(conn.scalars(select(apps.c.name)))


def _queued_behind(db, first, writers: dict) -> dict:
    """Run ``first`` (a body taking a connection) as the first writer of a group, and
    ``writers`` ({name: body}) queued behind it while it runs; returns each one's outcome
    (None, or what it raised), ``first``'s under the name "first"."""
    inside = threading.Event()
    outcomes = {}

    def run(name, body):
        try:
            with db.write() as conn:
                body(conn)
            outcomes[name] = None
        except BaseException as exc:  # noqa: BLE001 - the outcome under test
            outcomes[name] = exc

    def slow_first(conn):
        inside.set()
        time.sleep(0.3)  # the others queue meanwhile
        first(conn)

    threads = [threading.Thread(target=run, args=("first", slow_first))]
    threads[0].start()
    inside.wait()
    for name, body in writers.items():
        threads.append(threading.Thread(target=run, args=(name, body)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def _failing(conn):
    _app(conn, "failing")
    raise ValueError("refused")


def test_queued_writers_share_one_commit_and_a_failing_one_undoes_only_its_own_work(db):
    commits = []
    event.listen(db.engine, "commit", lambda conn: commits.append(conn))
    writers = {f"w{n}": (lambda conn, n=n: _app(conn, f"w{n}")) for n in range(5)}
    outcomes = _queued_behind(db, lambda conn: _app(conn, "first"), {**writers, "failing": _failing})

    assert len(commits) == 1  # all seven in one transaction
    assert isinstance(outcomes.pop("failing"), ValueError)
    assert outcomes == dict.fromkeys(outcomes)  # every other writer succeeded
    assert _names(db) == {"first", "w0", "w1", "w2", "w3", "w4"}


def test_past_the_window_queued_writers_commit_in_groups_of_their_own(sqlite_url):
    database = Database(sqlite_url, sqlite_group_commit_seconds=0)
    try:
        commits = []
        event.listen(database.engine, "commit", lambda conn: commits.append(conn))
        writers = {f"w{n}": (lambda conn, n=n: _app(conn, f"w{n}")) for n in range(3)}
        outcomes = _queued_behind(database, lambda conn: _app(conn, "first"), writers)

        assert outcomes == dict.fromkeys(["first", "w0", "w1", "w2"])
        assert len(commits) == 4  # each closed its group as it left: nobody joined
        assert _names(database) == {"first", "w0", "w1", "w2"}
    finally:
        database.dispose()


def test_the_window_is_the_operators_setting(sqlite_url, tmp_path):
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path, sqlite_group_commit_ms=2.5)
    runtime = Runtime.from_settings(settings)
    try:
        assert runtime.db._writers.window == 0.0025
    finally:
        runtime.db.dispose()
    assert Settings(database_url=sqlite_url, data_dir=tmp_path).sqlite_group_commit_ms == 10
    with pytest.raises(ValidationError):
        Settings(database_url=sqlite_url, data_dir=tmp_path, sqlite_group_commit_ms=-1)


def test_a_failing_first_writer_undoes_its_work_and_the_others_go_on(db):
    writers = {f"w{n}": (lambda conn, n=n: _app(conn, f"w{n}")) for n in range(3)}
    outcomes = _queued_behind(db, _failing, writers)

    assert isinstance(outcomes.pop("first"), ValueError)
    assert outcomes == dict.fromkeys(outcomes)
    assert _names(db) == {"w0", "w1", "w2"}


def test_when_the_shared_commit_fails_every_writer_of_the_group_fails_and_nothing_lands(db):
    def breaks_the_commit(conn):
        # A foreign key checked at commit instead of at the insert: the commit fails.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        values = dict(id=uuid.uuid4(), app_id=uuid.uuid4(), key_hash="h", key_prefix="p", created_at=NOW)
        conn.execute(api_keys.insert().values(values))

    writers = {"breaks": breaks_the_commit, "after": lambda conn: _app(conn, "after")}
    outcomes = _queued_behind(db, lambda conn: _app(conn, "first"), writers)

    assert all(isinstance(outcome, WriteFailed) for outcome in outcomes.values()), outcomes
    assert _names(db) == set()
    with db.write() as conn:  # the next writer starts afresh
        _app(conn, "next")
    assert _names(db) == {"next"}
