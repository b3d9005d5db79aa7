"""The database: engine set-up for SQLite and PostgreSQL, transactions, migrations."""

import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from subledger.core.group_commit import GroupCommit, WriteFailed, sqlite_connection

if TYPE_CHECKING:
    from alembic.config import Config

    from subledger.core.loop_reads import LoopReads

log = logging.getLogger("subledger")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration's revision: every command checks the database against it, and
# Alembic (with every migration file) took a third of a second to load for that.
# tests/core/test_migrations.py checks it against the migrations.
HEAD_REVISION = "0036"


# JSON columns (event payloads, a profile's attributes) are read and written on
# every write; orjson does it several times faster than the standard library.
_JSON_CODEC = {"json_serializer": lambda value: orjson.dumps(value).decode(), "json_deserializer": orjson.loads}


# What each write transaction doing a request's work runs before it ends, in it: set for the
# request's duration (core.idempotency marks the request's Idempotency-Key applied with it).
in_every_write: ContextVar[Callable[[Connection], None] | None] = ContextVar("in_every_write", default=None)


class NotMigrated(RuntimeError):
    """The database schema is behind the code."""


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


class Database:
    """One engine per process. ``write()`` and ``read()`` hand out one transaction each.

    Writes on SQLite take turns and share commits (``GroupCommit``) in transactions
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
        sqlite_group_commit_seconds: float = GroupCommit.WINDOW,
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
            self._writers = GroupCommit(self.engine, parsed.database, sqlite_group_commit_seconds)
        else:
            # No pre-ping: it costs a round trip per request; a dropped connection
            # invalidates the pool on first use instead.
            # A fixed pool: overflow connections are opened and closed per burst,
            # and that churn put PostgreSQL's connection start-up into p99.
            # A server that does not answer fails the request after ``connect_timeout`` seconds
            # (a clean 503, see ``unavailable``) instead of holding it until the client gives up.
            driver_args: dict[str, Any] = {"connect_timeout": connect_timeout}
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
        commits (``GroupCommit``): the work of one is its savepoint in a transaction
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

    def alembic_config(self, conn: Connection) -> "Config":
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
                sqlite_connection(conn).execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    yield conn
                    if self.is_sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise RuntimeError(f"the migration left rows that refer to nothing: {broken[:5]}")
            finally:
                if self.is_sqlite:
                    sqlite_connection(conn).execute("PRAGMA foreign_keys=ON")

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
                driver = source.driver_connection
                assert isinstance(driver, sqlite3.Connection)
                driver.backup(copy)  # every page in one step: one read snapshot
                (check,) = copy.execute("PRAGMA integrity_check").fetchone()
            finally:
                copy.close()
        finally:
            source.close()
        if check != "ok":
            partial.unlink()
            raise RuntimeError(f"the copy failed SQLite's integrity check: {check}")
        partial.replace(target)

    def compact(self) -> tuple[int, int]:
        """Rewrite the SQLite database into as few pages as its rows need, of ``PAGE_SIZE`` bytes,
        giving the file system back what deleted rows and rebuilt tables left free. It takes the
        database for itself: while another connection has it open, SQLite refuses at once
        (``sqlite3.OperationalError``). Returns the file's size (before, after)."""
        path = Path(self.location)
        before = path.stat().st_size
        with self.engine.connect() as conn:
            driver = sqlite_connection(conn)
            driver.execute("PRAGMA journal_mode=DELETE")  # a WAL database keeps its page size
            try:
                driver.execute(f"PRAGMA page_size={PAGE_SIZE}")
                driver.execute("VACUUM")
            finally:
                driver.execute("PRAGMA journal_mode=WAL")
        return before, path.stat().st_size

    def dispose(self) -> None:
        if self.is_sqlite:
            self._writers.close()
        self.engine.dispose()
        if self._replica is not None:
            self._replica.dispose()


PAGE_SIZE = 8192


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    # pysqlite's own transaction handling is switched off so that SQLAlchemy's
    # BEGIN is the real one (the recipe from SQLAlchemy's SQLite dialect docs).
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A new database's pages: a profile's row with its derived state (about 1.5 KB) fits
        # twice in 4 KiB, SQLite's default, leaving a quarter of the page empty; five fit in
        # 8 KiB. (Too late for a database already made: only a VACUUM outside WAL changes it.)
        cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        statement = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        if statement:  # straight to the driver: through SQLAlchemy it cost more than most writes' statements
            sqlite_connection(conn).execute(statement)
