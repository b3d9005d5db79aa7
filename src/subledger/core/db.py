"""The database: engine set-up for SQLite and PostgreSQL, transactions, migrations."""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, create_engine, event, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


# JSON columns (a profile's derived state, event payloads) are read and written on
# every write; orjson does it several times faster than the standard library.
_JSON_CODEC = {"json_serializer": lambda value: orjson.dumps(value).decode(), "json_deserializer": orjson.loads}


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


class _WriterQueue:
    """Where the writers of every process wait for SQLite's one write lock: a thread lock
    within the process, then an OS lock on a file beside the database across processes.

    Both wake the next writer the moment the lock is free. Left to itself, SQLite makes
    a writer that finds the database locked sleep and retry (for up to 100 ms at a
    time), which with two or more server processes put whole seconds into p99.
    """

    def __init__(self, database: str | None):
        self._thread_lock = threading.Lock()
        self._path = None if not database or database == ":memory:" else f"{database}-writer.lock"
        self._file: tuple[int, int] | None = None  # (pid, fd): a forked child must open its own

    def _fd(self) -> int:
        if self._file is None or self._file[0] != os.getpid():
            self._file = (os.getpid(), os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        return self._file[1]

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._thread_lock:
            if self._path is None:
                yield
                return
            fd = self._fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


class Database:
    """One engine per process. ``write()`` and ``read()`` hand out one transaction each.

    Writes on SQLite wait their turn (``_WriterQueue``) and start with ``BEGIN
    IMMEDIATE``; on PostgreSQL writers serialise per profile with ``SELECT ... FOR UPDATE``.
    """

    def __init__(self, url: str, sqlite_synchronous: str = "FULL"):
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._writer = _WriterQueue(parsed.database).turn if self.is_sqlite else nullcontext
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, pool_size=20, max_overflow=20, connect_args={"timeout": 30}, **_JSON_CODEC)
            _configure_sqlite(self.engine, sqlite_synchronous)
        else:
            # No pre-ping: it costs a round trip per request; a dropped connection
            # invalidates the pool on first use instead.
            # A fixed pool: overflow connections are opened and closed per burst,
            # and that churn put PostgreSQL's connection start-up into p99.
            self.engine = create_engine(url, pool_size=20, max_overflow=0, **_JSON_CODEC)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One read-write transaction: commits on success, rolls back on any exception.

        SQLite has one writer at a time: writers queue for it (``_WriterQueue``)
        rather than in SQLite's busy handler.
        """
        with self._writer(), self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading, in autocommit mode: each statement reads its own
        committed snapshot. A BEGIN and a COMMIT would cost more than most reads (on
        PostgreSQL, two more round trips)."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin=None)
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                yield conn

    # Migrations -------------------------------------------------------------

    def alembic_config(self, conn: Connection) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        return config

    def migrate(self, revision: str = "head") -> None:
        with self.engine.begin() as conn:
            command.upgrade(self.alembic_config(conn), revision)

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's revision, the code's head revision)."""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(self.alembic_config(conn)).get_current_head()
        return current, head

    def require_migrated(self) -> None:
        current, head = self.schema_revision()
        if current != head:
            raise NotMigrated(
                f"The database is at revision {current or 'none (empty)'} but this subledger needs {head}. "
                "Run `subledger migrate` first."
            )

    def dispose(self) -> None:
        self.engine.dispose()


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
        if statement:
            conn.exec_driver_sql(statement)


@lru_cache(maxsize=64)
def _upsert_statement(
    dialect_name: str,
    table: Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    adding: bool,
    unless_same: tuple[str, ...] = (),
):
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys],
        set_={column: table.c[column] + new[column] if adding else new[column] for column in update},
        where=or_(*(table.c[column] != new[column] for column in unless_same)) if unless_same else None,
    )


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
    conn.execute(statement, rows)


def add_up(conn: Connection, table: Table, rows: list[dict], keys: list[str], update: list[str]) -> None:
    """Like ``upsert``, but a row already there gets the new values added to its own."""
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update), True), rows)
