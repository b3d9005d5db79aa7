"""PostgreSQL reads awaited on the event loop.

A read handed to a thread paid for the hand-off both ways and for the threads taking
turns on the process's GIL, more than the query cost the server: under load GET profile
took about 900 µs of server CPU on PostgreSQL against 440 on SQLite, whose reads run on
the event loop. psycopg's asynchronous connections send the query and let the loop serve
other requests until the answer comes, with no thread involved.

Each event loop has its pool (psycopg_pool's), opened on the first read and closed by
``close`` when the server stops; connections are in autocommit mode, so each statement
reads its own committed snapshot, as ``Database.read()`` does.
"""

import asyncio
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from subledger.core.prepared import Prepared

WAIT_FOR_CONNECTION_SECONDS = 5


class LoopReads:
    def __init__(self, engine: Engine, connections: int, driver_args: dict[str, Any]):
        self._engine = engine
        self.connections = connections
        # The driver's arguments as the engine connects with them: its adapters (JSON
        # through orjson among them) come along, and ``driver_args`` as the engine's connect_args.
        _args, connect_kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect_kwargs = {**connect_kwargs, **driver_args}
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = {}

    async def first(self, statement: Prepared, params: dict[str, Any]) -> dict[str, Any] | None:
        rows = await self.rows(statement, params)
        return rows[0] if rows else None

    async def rows(self, statement: Prepared, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The statement's rows. A read that meets a lost connection (the database restarted,
        or ended the session) is tried again once the pool has checked its idle connections
        and replaced the broken ones."""
        pool = await self._pool()
        try:
            return await self._rows(pool, statement, params)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        await pool.check()
        return await self._rows(pool, statement, params)

    async def _rows(
        self, pool: AsyncConnectionPool, statement: Prepared, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        # getconn and putconn rather than ``pool.connection()``, whose ``async with conn``
        # commits on the way out: in autocommit mode there is nothing to commit, and a
        # connection left in any other state is one putconn discards.
        conn = await pool.getconn()
        try:
            return await statement.rows_on_loop(conn, self._engine, params)
        finally:
            await pool.putconn(conn)

    async def _pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        opening = self._pools.get(loop)
        if opening is None:  # a task, so that reads arriving while the pool opens wait for it
            opening = self._pools[loop] = loop.create_task(self._open())
        return await opening

    async def _open(self) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(
            connection_class=AsyncConnection,
            kwargs={**self._connect_kwargs, "autocommit": True},
            min_size=self.connections,
            max_size=self.connections,
            # How long a read waits for a connection: under load a few milliseconds; when
            # the database is down, the request fails after this instead of psycopg_pool's 30 s.
            timeout=WAIT_FOR_CONNECTION_SECONDS,
            open=False,
        )
        await pool.open()
        return pool

    async def close(self) -> None:
        """Close the running loop's pool, if it has one."""
        opening = self._pools.pop(asyncio.get_running_loop(), None)
        if opening is not None:
            await (await opening).close()
