"""SQLite writers of a process share a commit with the writers queued behind them:
each still succeeds or fails alone, and none returns before its work is durable."""

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from subledger.core.db import Database, WriteFailed
from subledger.core.tables import api_keys, apps

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def db(sqlite_url):
    database = Database(sqlite_url)
    yield database
    database.dispose()


def _app(conn, name: str) -> None:
    conn.execute(apps.insert().values(id=uuid.uuid4(), name=name, created_at=NOW))


def _names(db) -> set[str]:
    with db.read() as conn:
        return set(conn.scalars(select(apps.c.name)))


def _queued_behind_a_slow_writer(db, writers: dict) -> dict:
    """Run ``writers`` ({name: body(conn)}) while a first writer holds the turn, so that
    they queue and form one group; returns each one's outcome (None, or what it raised)."""
    inside = threading.Event()
    outcomes = {}

    def first():
        with db.write() as conn:
            _app(conn, "first")
            inside.set()
            time.sleep(0.3)  # longer than a group may stay open: it commits alone

    def run(name, body):
        try:
            with db.write() as conn:
                body(conn)
            outcomes[name] = None
        except BaseException as exc:  # noqa: BLE001 - the outcome under test
            outcomes[name] = exc

    threads = [threading.Thread(target=first)]
    threads[0].start()
    inside.wait()
    for name, body in writers.items():
        threads.append(threading.Thread(target=run, args=(name, body)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_queued_writers_share_one_commit_and_a_failing_one_undoes_only_its_own_work(db):
    commits = []
    event.listen(db.engine, "commit", lambda conn: commits.append(conn))

    def failing(conn):
        _app(conn, "failing")
        raise ValueError("refused")

    writers = {f"w{n}": (lambda conn, n=n: _app(conn, f"w{n}")) for n in range(5)}
    writers["failing"] = failing
    outcomes = _queued_behind_a_slow_writer(db, writers)

    assert len(commits) == 2  # the first alone, then the six queued behind it together
    assert isinstance(outcomes.pop("failing"), ValueError)
    assert outcomes == dict.fromkeys(outcomes)  # every other writer succeeded
    assert _names(db) == {"first", "w0", "w1", "w2", "w3", "w4"}


def test_when_the_shared_commit_fails_every_writer_of_the_group_fails_and_nothing_lands(db):
    def breaks_the_commit(conn):
        # A foreign key checked at commit instead of at the insert: the commit fails.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        values = dict(id=uuid.uuid4(), app_id=uuid.uuid4(), key_hash="h", key_prefix="p", created_at=NOW)
        conn.execute(api_keys.insert().values(values))

    writers = {"before": lambda conn: _app(conn, "before"), "breaks": breaks_the_commit}
    writers["after"] = lambda conn: _app(conn, "after")
    outcomes = _queued_behind_a_slow_writer(db, writers)

    assert all(isinstance(outcome, WriteFailed) for outcome in outcomes.values()), outcomes
    assert _names(db) == {"first"}
    with db.write() as conn:  # the next writer starts afresh
        _app(conn, "next")
    assert _names(db) == {"first", "next"}
