"""Hot statements run straight on the database driver.

``Connection.execute`` costs tens of microseconds a statement before and after the
database does anything (an execution context, a result object, its metadata): GET
profile's query took 55 µs through it on SQLite against 7 on the driver, and 250 against
150 on PostgreSQL. A ``Prepared`` statement is still built with SQLAlchemy Core and
compiled by it, once per dialect and set of parameter names; its values go in and come
out through the same type processing as through ``Connection.execute`` (UUIDs, UTC
datetimes, money, JSON), and errors come out as the same SQLAlchemy exceptions.

It runs one statement, with one set of parameters or (for statements that return
nothing) several, in the connection's transaction.
"""

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

if TYPE_CHECKING:
    from psycopg import AsyncConnection


class _Plan:
    """A statement compiled for one dialect and one set of parameter names."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, names: tuple[str, ...]):
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        assert isinstance(compiled, SQLCompiler)  # a statement's, not DDL's
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("parameters rendered at execution (IN lists, literal LIMITs) need Connection.execute")
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side column defaults are filled in by SQLAlchemy's execution context.
            missing = [column.name for column in [*compiled.insert_prefetch, *compiled.update_prefetch]]
            raise ValueError(f"pass every column that has a default: {missing}")
        self.sql = compiled.string
        self.positional = compiled.positional
        # Each parameter the driver takes: (the caller's key, or None for a value the
        # statement holds itself such as a LIMIT; the bind processor; that value).
        slots = {}
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            key = bind.key if bind.key in names else name if name in names else None
            if key is None and (bind.required or bind.callable):
                raise ValueError(f"no value for the parameter {bind.key!r}")
            constant = None if key is not None else processor(bind.value) if processor else bind.value
            slots[name] = (key, processor, constant)
        order = (compiled.positiontup or []) if self.positional else list(slots)
        self.slots = [slots[name] for name in order]
        self.names = [compiled.escaped_bind_names.get(name, name) for name in order]
        columns = list(getattr(statement, "exported_columns", ()))
        self.keys = [column.key for column in columns]
        if len(set(self.keys)) < len(self.keys):
            raise ValueError(f"columns of the same name would overwrite each other: {self.keys}")
        self.types = [column.type for column in columns]
        self.dialect = dialect
        # Set from the first cursor's description: reading it again on every run cost about
        # a tenth of a GET profile on PostgreSQL, where psycopg builds its columns each time.
        self.gives_rows = False
        self.results: list[tuple[int, Callable[[Any], Any]]] | None = None

    def parameters(self, params: dict[str, Any]) -> dict[str, Any] | list[Any]:
        values = [
            constant if key is None else processor(params[key]) if processor else params[key]
            for key, processor, constant in self.slots
        ]
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def returns_rows(self, cursor: Any) -> bool:
        """Whether the statement gives rows; the first cursor run with it sets up the result processors."""
        if self.results is None:
            description = cursor.description
            self.gives_rows = description is not None  # before ``results``, which other threads check first
            self.results = self._result_processors(description) if description else []
        return self.gives_rows

    def processed(self, fetched: list[Any]) -> list[dict[str, Any]]:
        """The driver's rows as dicts of the statement's column keys, through the columns'
        result processors."""
        rows = []
        for row in fetched:
            row = list(row)
            for index, processor in self.results or ():
                row[index] = processor(row[index])
            rows.append(dict(zip(self.keys, row, strict=True)))
        return rows

    def _result_processors(self, description: Sequence[Any]) -> list[tuple[int, Callable[[Any], Any]]]:
        processors = [
            (index, type_.dialect_impl(self.dialect).result_processor(self.dialect, column[1]))
            for index, (type_, column) in enumerate(zip(self.types, description, strict=True))
        ]
        return [(index, processor) for index, processor in processors if processor is not None]


def _announce(conn: Connection, sql: str, values: Any, many: bool) -> Any:
    """The connection's driver, once listeners (statement counters, tracing) have seen the statement."""
    if conn.dispatch.before_cursor_execute:
        conn.dispatch.before_cursor_execute(conn, None, sql, values, None, many)
    return conn.connection.driver_connection


def _failed(conn: Connection, driver: Any, sql: str, values: Any, exc: Any) -> StatementError:
    """The driver's error as SQLAlchemy's; a lost connection is invalidated, as SQLAlchemy does."""
    invalidated = conn.dialect.is_disconnect(exc, driver, None)
    if invalidated:
        conn.invalidate(exc)
    return _as_sqlalchemys(conn.dialect, sql, values, exc, invalidated)


def _as_sqlalchemys(dialect: Dialect, sql: str, values: Any, exc: Exception, invalidated: bool) -> StatementError:
    return DBAPIError.instance(
        sql, values, exc, dialect.loaded_dbapi.Error, connection_invalidated=invalidated, dialect=dialect
    )


class Prepared:
    """A statement run on the connection's driver, rows back as dicts keyed like
    ``Connection.execute``'s mappings."""

    # Plans kept per statement: an UPDATE has one per set of columns a caller passes.
    MAX_PLANS = 256

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._plans: dict[tuple[Dialect, tuple[str, ...]], _Plan] = {}
        self._planning = threading.Lock()

    def _plan(self, dialect: Dialect, names: tuple[str, ...]) -> _Plan:
        plan = self._plans.get((dialect, names))
        if plan is None:
            with self._planning:
                if len(self._plans) >= self.MAX_PLANS:
                    del self._plans[next(iter(self._plans))]  # the oldest
                plan = self._plans[dialect, names] = _Plan(self.statement, dialect, names)
        return plan

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        plan = self._plan(conn.dialect, tuple(params))
        values = plan.parameters(params)
        driver = _announce(conn, plan.sql, values, many=False)
        try:
            cursor = driver.execute(plan.sql, values)
            fetched = cursor.fetchall() if plan.returns_rows(cursor) else []
            cursor.close()
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _failed(conn, driver, plan.sql, values, exc) from exc
        return plan.processed(fetched)

    async def rows_on_loop(
        self, conn: "AsyncConnection", engine: Engine, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """``rows`` on an asynchronous psycopg connection of the engine's database, outside
        any SQLAlchemy connection: listeners see the statement without one (``conn`` None),
        and a driver error comes out as SQLAlchemy's, ``connection_invalidated`` when the
        connection is lost."""
        plan = self._plan(engine.dialect, tuple(params))
        values = plan.parameters(params)
        if engine.dispatch.before_cursor_execute:
            engine.dispatch.before_cursor_execute(None, None, plan.sql, values, None, False)
        try:
            cursor = await conn.execute(plan.sql, values)
            fetched = await cursor.fetchall() if plan.returns_rows(cursor) else []
            await cursor.close()
        except engine.dialect.loaded_dbapi.Error as exc:
            raise _as_sqlalchemys(engine.dialect, plan.sql, values, exc, conn.broken) from exc
        return plan.processed(fetched)

    def execute_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Run the statement (one that returns nothing) once per row; every row has the same keys."""
        if not rows:
            return
        plan = self._plan(conn.dialect, tuple(rows[0]))
        values = [plan.parameters(row) for row in rows]
        driver = _announce(conn, plan.sql, values, many=True)
        try:
            cursor = driver.cursor()
            cursor.executemany(plan.sql, values)
            cursor.close()
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _failed(conn, driver, plan.sql, values, exc) from exc

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The first column of the one row the statement returns."""
        (row,) = self.rows(conn, params)
        return next(iter(row.values()))
