"""SQLite's writers: one process's take turns on one write transaction and share its commit; the
processes take turns on a file lock."""

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


class WriteFailed(RuntimeError):
    """A write's own work went through, but the commit it shared with others failed."""


class _FileLock:
    """An OS lock on a file beside the database: the writers of every process take turns on it.

    It wakes the next writer the moment it is free. Left to itself, SQLite makes a
    writer that finds the database locked sleep and retry (for up to 100 ms at a
    time), which with two or more server processes put whole seconds into p99.
    """

    def __init__(self, database: str | None):
        self._path = None if not database or database == ":memory:" else f"{database}-writer.lock"
        self._file: tuple[int, int] | None = None  # (pid, fd): a forked child must open its own

    def _fd(self, path: str) -> int:
        if self._file is None or self._file[0] != os.getpid():
            self._file = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        return self._file[1]

    def acquire(self) -> None:
        if self._path is not None:
            fcntl.flock(self._fd(self._path), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._path is not None:
            fcntl.flock(self._fd(self._path), fcntl.LOCK_UN)


def sqlite_connection(conn: Connection) -> sqlite3.Connection:
    """The SQLite connection under SQLAlchemy's."""
    driver = conn.connection.dbapi_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


@contextmanager
def _savepoint(conn: Connection) -> Iterator[None]:
    """A savepoint around one writer's work, straight on the driver: SQLAlchemy's
    ``begin_nested()`` cost more than a small write's own statements."""
    driver = sqlite_connection(conn)
    driver.execute("SAVEPOINT writer")
    try:
        yield
    except BaseException:
        driver.execute("ROLLBACK TO writer")
        driver.execute("RELEASE writer")
        raise
    driver.execute("RELEASE writer")


class _Group:
    """Writers sharing one SQLite transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.opened = time.monotonic()
        self.writers = 0
        self.error: BaseException | None = None
        self.done = threading.Event()


class GroupCommit:
    """The SQLite writers of one process: they take turns on one write transaction and share its commit.

    SQLite has one writer at a time, and with ``synchronous=FULL`` each commit waits for
    the disk. A writer that finds others waiting behind it leaves the transaction open
    for them: each after the first runs in a savepoint of its own, so a failure undoes
    only its own work, and the last one commits for all. Every writer returns only once that commit
    is done, so nothing is acknowledged before it is durable; if the commit fails,
    every writer of the group fails (``WriteFailed``). A group takes at most
    ``MAX_WRITERS`` writers, and more only while it has been open less than ``window`` seconds:
    each writer waits for the whole group before its commit, so a longer window shares more
    commits at full load (fewer fsyncs holding the lock) and a shorter one keeps the writers'
    latency down when the load is lighter.
    """

    MAX_WRITERS = 16
    WINDOW = 0.01

    def __init__(self, engine: Engine, database: str | None, window: float = WINDOW):
        self._engine = engine
        self.window = window
        self._processes = _FileLock(database)
        self._turn = threading.Lock()  # who runs on the group's connection
        self._state = threading.Lock()
        self._waiting = 0
        self._group: _Group | None = None
        # The process's writer connection, kept between groups: taking one from the pool
        # and handing it back cost as much as a small write. (pid, connection): a forked
        # child opens its own.
        self._conn: tuple[int, Connection] | None = None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._state:
            self._waiting += 1
        self._turn.acquire()
        with self._state:
            self._waiting -= 1
        try:
            group = self._group or self._open()
        except BaseException:
            self._turn.release()
            raise
        group.writers += 1
        first = group.writers == 1  # nobody else's work is in the transaction yet
        failed = None
        try:
            if first:  # a failure can undo the whole transaction: no savepoint needed
                yield group.conn
            else:
                with _savepoint(group.conn):
                    yield group.conn
        except BaseException as exc:
            failed = exc
        finally:
            self._leave(group, undo=first and failed is not None)
        if failed is not None:
            raise failed
        group.done.wait()
        if group.error is not None:
            raise WriteFailed("the commit this write shared with others failed") from group.error

    def _connection(self) -> Connection:
        if self._conn is None or self._conn[0] != os.getpid() or self._conn[1].invalidated:
            conn = self._engine.connect()
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            self._conn = (os.getpid(), conn)
        return self._conn[1]

    def _open(self) -> _Group:
        self._processes.acquire()
        try:
            conn = self._connection()
            conn.begin()
        except BaseException:
            self._processes.release()
            self._discard()
            raise
        self._group = _Group(conn)
        return self._group

    def _discard(self) -> None:
        """Close the writer connection (after a failure: the next group opens a fresh one)."""
        conn, self._conn = self._conn, None
        if conn is None or conn[0] != os.getpid():
            return
        try:
            connection = sqlite_connection(conn[1])
            # SQLAlchemy counts a failed COMMIT as the end of the transaction, and the
            # pool then skips its rollback: SQLite's transaction would still be open.
            if connection.in_transaction:
                connection.rollback()
        finally:
            conn[1].close()

    def close(self) -> None:
        with self._turn:
            self._discard()

    def _leave(self, group: _Group, undo: bool) -> None:
        """After a writer's turn: end the group's transaction (rolled back with ``undo``)
        unless more writers are waiting to join it."""
        try:
            if not undo:
                try:
                    intact = sqlite_connection(group.conn).in_transaction
                except Exception as exc:  # noqa: BLE001 - whatever broke the connection fails the group
                    intact, group.error = False, exc
                if not intact:
                    # SQLite ended the transaction itself (it does on a full disk or an I/O error).
                    group.error = group.error or RuntimeError("SQLite rolled back the shared transaction")
                elif (
                    self._waiting and group.writers < self.MAX_WRITERS and time.monotonic() - group.opened < self.window
                ):
                    return
            self._group = None
            self._close(group, commit=not undo and group.error is None)
        finally:
            self._turn.release()

    def _close(self, group: _Group, commit: bool) -> None:
        try:
            if commit:
                group.conn.commit()
        except BaseException as exc:
            group.error = exc
        finally:
            try:
                if group.error is not None:
                    self._discard()
                elif not commit:
                    try:
                        group.conn.rollback()
                    except Exception:  # noqa: BLE001 - the writer's own error is the one to report
                        self._discard()
            finally:
                self._processes.release()
                group.done.set()
