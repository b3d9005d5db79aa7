"""The database: engine set-up for SQLite and PostgreSQL, transactions, migrations."""

import fcntl
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import Connection, Table, create_engine, event, inspect, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from subledger.core.prepared import Prepared

if TYPE_CHECKING:
    from subledger.core.loop_reads import LoopReads

log = logging.getLogger("subledger")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration's revision: every command checks the database against it, and
# Alembic (with every migration file) took a third of a second to load for that.
# tests/test_migrations.py checks it against the migrations.
HEAD_REVISION = "0031"


# JSON columns (a profile's derived state, event payloads) are read and written on
# every write; orjson does it several times faster than the standard library.
_JSON_CODEC = {"json_serializer": lambda value: orjson.dumps(value).decode(), "json_deserializer": orjson.loads}


# What each write transaction doing a request's work runs before it ends, in it: set for the
# request's duration (core.idempotency marks the request's Idempotency-Key applied with it).
in_every_write: ContextVar[Callable[[Connection], None] | None] = ContextVar("in_every_write", default=None)


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


class WriteFailed(RuntimeError):
    """A write's own work went through, but the commit it shared with others failed."""


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot do the work now and may in a moment: it could
    not be reached, restarted or was failed over, ran out of connections, or broke a deadlock.
    The request was not carried out (a transaction that failed did not commit), so the client
    may send it again."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout | WriteFailed):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    psycopg = sys.modules.get("psycopg")  # imported only on PostgreSQL
    return psycopg is not None and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


class _FileLock:
    """An OS lock on a file beside the database: the writers of every process take turns on it.

    It wakes the next writer the moment it is free. Left to itself, SQLite makes a
    writer that finds the database locked sleep and retry (for up to 100 ms at a
    time), which with two or more server processes put whole seconds into p99.
    """

    def __init__(self, database: str | None):
        self._path = None if not database or database == ":memory:" else f"{database}-writer.lock"
        self._file: tuple[int, int] | None = None  # (pid, fd): a forked child must open its own

    def _fd(self) -> int:
        if self._file is None or self._file[0] != os.getpid():
            self._file = (os.getpid(), os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        return self._file[1]

    def acquire(self) -> None:
        if self._path is not None:
            fcntl.flock(self._fd(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._path is not None:
            fcntl.flock(self._fd(), fcntl.LOCK_UN)


@contextmanager
def _savepoint(conn: Connection) -> Iterator[None]:
    """A savepoint around one writer's work, straight on the driver: SQLAlchemy's
    ``begin_nested()`` cost more than a small write's own statements."""
    driver = conn.connection.driver_connection
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


class _GroupCommit:
    """The SQLite writers of one process: they take turns on one write transaction and share its commit.

    SQLite has one writer at a time, and with ``synchronous=FULL`` each commit waits for
    the disk. A writer that finds others waiting behind it leaves the transaction open
    for them: each after the first runs in a savepoint of its own, so a failure undoes
    only its own work, and the last one commits for all. Every writer returns only once that commit
    is done, so nothing is acknowledged before it is durable; if the commit fails,
    every writer of the group fails (``WriteFailed``). A group takes at most
    ``MAX_WRITERS`` writers or ``MAX_SECONDS``, so the first one does not wait long.
    """

    MAX_WRITERS = 16
    MAX_SECONDS = 0.01

    def __init__(self, engine, database: str | None):
        self._engine = engine
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
            connection = conn[1].connection.dbapi_connection
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
                    intact = group.conn.connection.dbapi_connection.in_transaction
                except Exception as exc:  # noqa: BLE001 - whatever broke the connection fails the group
                    intact, group.error = False, exc
                if not intact:
                    # SQLite ended the transaction itself (it does on a full disk or an I/O error).
                    group.error = group.error or RuntimeError("SQLite rolled back the shared transaction")
                elif (
                    self._waiting
                    and group.writers < self.MAX_WRITERS
                    and time.monotonic() - group.opened < self.MAX_SECONDS
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


class Database:
    """One engine per process. ``write()`` and ``read()`` hand out one transaction each.

    Writes on SQLite take turns and share commits (``_GroupCommit``) in transactions
    that start with ``BEGIN IMMEDIATE``; on PostgreSQL writers serialise per profile
    with ``SELECT ... FOR UPDATE``. ``connections`` is the size of PostgreSQL's pool:
    at least the process's threads that use it, or threads wait in turn for a
    connection, which under load cost a fifth to a quarter of the throughput.
    On PostgreSQL, ``loop_reads`` has ``loop_connections`` more per event loop, for
    the hottest reads awaited there (None on SQLite, whose reads run on the loop), and
    ``read_url`` names a streaming replica for the reads that may lag (``lagging_read``).
    Without ``prepared_statements`` psycopg prepares no statement on the server (it
    prepares those it has run five times on a connection), for a pooler in transaction
    mode that may run the next transaction on another server connection.
    """

    def __init__(
        self,
        url: str,
        sqlite_synchronous: str = "FULL",
        connections: int = 20,
        loop_connections: int = 4,
        prepared_statements: bool = True,
        connect_timeout: int = 5,
        read_url: str | None = None,
    ):
        self.url = url
        self._replica = None  # the replica's engine (``lagging_read``), PostgreSQL only
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.loop_reads: LoopReads | None = None
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, pool_size=20, max_overflow=20, connect_args={"timeout": 30}, **_JSON_CODEC)
            _configure_sqlite(self.engine, sqlite_synchronous)
            self._writers = _GroupCommit(self.engine, parsed.database)
        else:
            # No pre-ping: it costs a round trip per request; a dropped connection
            # invalidates the pool on first use instead.
            # A fixed pool: overflow connections are opened and closed per burst,
            # and that churn put PostgreSQL's connection start-up into p99.
            # A server that does not answer fails the request after ``connect_timeout`` seconds
            # (a clean 503, see ``unavailable``) instead of holding it until the client gives up.
            driver_args: dict = {"connect_timeout": connect_timeout}
            if not prepared_statements:
                driver_args["prepare_threshold"] = None
            self.engine = create_engine(
                url, pool_size=connections, max_overflow=0, connect_args=driver_args, **_JSON_CODEC
            )
            if read_url:
                self._replica = create_engine(
                    read_url, pool_size=connections, max_overflow=0, connect_args=driver_args, **_JSON_CODEC
                )
            from subledger.core import loop_reads  # psycopg_pool, imported for PostgreSQL only

            self.loop_reads = loop_reads.LoopReads(self.engine, loop_connections, driver_args)

    @contextmanager
    def write(self, request_work: bool = True) -> Iterator[Connection]:
        """One read-write transaction: commits on success, rolls back on any exception.

        On SQLite, which has one writer at a time, writers take turns and share
        commits (``_GroupCommit``): the work of one is its savepoint in a transaction
        that it may share with the writers queued behind it. Unless it is bookkeeping
        (``request_work=False``: a rate limit's bucket), the transaction ends with what
        ``in_every_write`` holds.
        """
        also = in_every_write.get() if request_work else None
        if self.is_sqlite:
            with self._writers.write() as conn:
                yield conn
                if also is not None:
                    also(conn)
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn
            if also is not None:
                also(conn)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading, in autocommit mode: each statement reads its own
        committed snapshot. A BEGIN and a COMMIT would cost more than most reads (on
        PostgreSQL, two more round trips)."""
        with self.engine.connect() as conn:
            with self._reading(conn):
                yield conn

    @contextmanager
    def lagging_read(self) -> Iterator[Connection]:
        """A connection for reads that may see the database as it was a moment ago (analytics,
        exports, feeds, lists): on the replica when there is one, else as ``read()``. While
        the replica cannot be reached, they go to the primary."""
        if self._replica is None:
            with self.read() as conn:
                yield conn
            return
        try:
            conn = self._replica.connect()
        except OperationalError as error:
            log.warning("the replica is unavailable, reading from the primary: %s", error)
            with self.read() as conn:
                yield conn
            return
        with conn, self._reading(conn):
            yield conn

    @contextmanager
    def _reading(self, conn: Connection) -> Iterator[None]:
        if self.is_sqlite:
            conn.execution_options(sqlite_begin=None)
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT")
        with conn.begin():
            yield

    # Migrations -------------------------------------------------------------

    def alembic_config(self, conn: Connection):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        return config

    @contextmanager
    def migrating(self) -> Iterator[Connection]:
        """A transaction to change the schema in. On SQLite foreign keys are not enforced
        during it and are checked at its end: a migration rebuilds a table as SQLite must
        (copy, drop, rename), and with them enforced, dropping the old table would first
        delete, by cascade, every row that refers to it."""
        with self.engine.connect() as conn:
            if self.is_sqlite:  # before BEGIN: inside a transaction the pragma does nothing
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    yield conn
                    if self.is_sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise RuntimeError(f"the migration left rows that refer to nothing: {broken[:5]}")
            finally:
                if self.is_sqlite:
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")

    def migrate(self, revision: str = "head") -> None:
        from alembic import command

        with self.migrating() as conn:
            command.upgrade(self.alembic_config(conn), revision)

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's revision, the code's head revision)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None, HEAD_REVISION
            return conn.scalar(text("SELECT version_num FROM alembic_version")), HEAD_REVISION

    def require_migrated(self) -> None:
        current, head = self.schema_revision()
        if current != head:
            raise NotMigrated(
                f"The database {self.location} is at revision {current or 'none (empty)'} but this subledger "
                f"needs {head}. Run `subledger migrate` first (with the same SUBLEDGER_DATA_DIR or "
                "SUBLEDGER_DATABASE_URL)."
            )

    @property
    def location(self) -> str:
        """Where the database is, for a person: the SQLite file's absolute path, or the URL
        without its password."""
        url = self.engine.url
        if self.is_sqlite:
            return str(Path(url.database or "").resolve())
        return url.render_as_string(hide_password=True)

    def backup(self, target: Path) -> None:
        """Copy the SQLite database to ``target`` as it stood at one moment, while writers go on
        (in WAL mode a reader holds up no writer). The copy is checked before it takes the name."""
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        source = self.engine.raw_connection()
        try:
            copy = sqlite3.connect(partial)
            try:
                source.driver_connection.backup(copy)  # every page in one step: one read snapshot
                (check,) = copy.execute("PRAGMA integrity_check").fetchone()
            finally:
                copy.close()
        finally:
            source.close()
        if check != "ok":
            partial.unlink()
            raise RuntimeError(f"the copy failed SQLite's integrity check: {check}")
        partial.replace(target)

    def dispose(self) -> None:
        if self.is_sqlite:
            self._writers.close()
        self.engine.dispose()
        if self._replica is not None:
            self._replica.dispose()


def _configure_sqlite(engine, synchronous: str) -> None:
    # pysqlite's own transaction handling is switched off so that SQLAlchemy's
    # BEGIN is the real one (the recipe from SQLAlchemy's SQLite dialect docs).
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        statement = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        if statement:  # straight to the driver: through SQLAlchemy it cost more than most writes' statements
            conn.connection.driver_connection.execute(statement)


def _insert(dialect_name: str, table: Table):
    """INSERT in the dialect at hand, for its ON CONFLICT clauses."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


@lru_cache(maxsize=64)
def _upsert_statement(
    dialect_name: str,
    table: Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    adding: bool,
    unless_same: tuple[str, ...] = (),
):
    statement = _insert(dialect_name, table)
    new = statement.excluded
    return Prepared(
        statement.on_conflict_do_update(
            index_elements=[table.c[key] for key in keys],
            set_={column: table.c[column] + new[column] if adding else new[column] for column in update},
            where=or_(*(table.c[column] != new[column] for column in unless_same)) if unless_same else None,
        )
    )


@lru_cache(maxsize=16)
def _insert_new_statement(dialect_name: str, table: Table, keys: tuple[str, ...]):
    statement = _insert(dialect_name, table).on_conflict_do_nothing(index_elements=[table.c[key] for key in keys])
    return Prepared(statement.returning(*table.c))


def insert_new(conn: Connection, table: Table, row: dict, keys: list[str]) -> dict | None:
    """INSERT the row unless one with the same ``keys`` is there already: the row as
    stored (read back in the same statement), or None when it was not inserted."""
    return _insert_new_statement(conn.dialect.name, table, tuple(keys)).first(conn, row)


def locked_bucket(conn: Connection, table: Table, key: dict) -> float:
    """The ``full_at`` of a token bucket (``core.buckets``) kept in ``table`` under ``key``, its
    row locked until the transaction ends. The row is made first when missing (full since the
    epoch), so that two processes cannot both find none and each start from a full bucket."""
    insert_new(conn, table, {**key, "full_at": 0.0}, list(key))
    return conn.scalar(select(table.c.full_at).where(*_matching(table, key)).with_for_update())


def save_bucket(conn: Connection, table: Table, key: dict, full_at: float) -> None:
    conn.execute(update(table).where(*_matching(table, key)).values(full_at=full_at))


def _matching(table: Table, key: dict) -> list:
    return [table.c[name] == value for name, value in key.items()]


def upsert(
    conn: Connection,
    table: Table,
    rows: dict | list[dict],
    keys: list[str],
    update: list[str],
    unless_same: tuple[str, ...] = (),
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET the ``update`` columns to the new row's values,
    in the dialect at hand (the statement is built once per shape). With ``unless_same``, a row
    already there is left alone when it holds the new values in those (non-null) columns."""
    statement = _upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update), False, unless_same)
    if isinstance(rows, dict):
        statement.rows(conn, rows)
    else:
        statement.execute_many(conn, rows)


def add_up(conn: Connection, table: Table, rows: list[dict], keys: list[str], update: list[str]) -> None:
    """Like ``upsert``, but a row already there gets the new values added to its own."""
    _upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update), True).execute_many(conn, rows)
