"""What a running subledger holds once per process, handed to every service call."""

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, partial
from typing import ParamSpec, TypeVar

from subledger.config import Settings
from subledger.core.clock import Clock, ResponseTimestamps, SystemClock
from subledger.core.db import Database
from subledger.core.secrets import Sealer

T = TypeVar("T")
P = ParamSpec("P")

# Threads for the work that may take seconds (analytics, a store's API), apart from
# the requests' own so that it cannot hold them up.
SLOW_THREADS = 8
# Webhook deliveries in flight at once in `serve` and, by default, in `subledger worker`.
DELIVERIES_IN_FLIGHT = 32


@cache
def _pool(purpose: str, threads: int) -> ThreadPoolExecutor:
    """The process's threads for one purpose. A plain executor: handing work to it costs
    a third of what anyio's threads cost."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"subledger-{purpose}")


def _slow_work() -> ThreadPoolExecutor:
    return _pool("slow", SLOW_THREADS)


async def _in_thread(pool: ThreadPoolExecutor, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` in one of ``pool``'s threads, in the caller's context (its
    context variables: what a request's writes must do, see ``core.db.in_every_write``)."""
    call = partial(contextvars.copy_context().run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    timestamps: ResponseTimestamps = None  # type: ignore[assignment]
    sealer: Sealer = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.timestamps is None:
            self.timestamps = ResponseTimestamps(self.clock)
        if self.sealer is None:
            self.sealer = Sealer.from_settings(self.settings.secret_key, self.settings.data_dir)

    async def read(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a read-only use case for an endpoint.

        SQLite reads (WAL mode) never wait for a lock and take tens of
        microseconds, less than handing them to a thread costs, so they run on
        the event loop; PostgreSQL reads run in a thread for requests.
        """
        if self.db.is_sqlite:
            return function(*args, **kwargs)
        return await _in_thread(self._requests(), function, *args, **kwargs)

    async def long_read(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a read that may take seconds (analytics) in a thread for slow work."""
        return await _in_thread(_slow_work(), function, *args, **kwargs)

    async def write(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a use case that writes: always in a thread (it may wait for a lock)."""
        return await _in_thread(self._requests(), function, *args, **kwargs)

    async def remote_write(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a use case that asks another server (a store's API, a webhook endpoint being
        verified) and then writes, in a thread for slow work: a slow answer holds up no other request."""
        return await _in_thread(_slow_work(), function, *args, **kwargs)

    async def isolated(
        self, purpose: str, threads: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run CPU-heavy work (checking a password) in ``threads`` threads kept for ``purpose``,
        so that however much of it there is, it takes none of the threads requests need."""
        return await _in_thread(_pool(purpose, threads), function, *args, **kwargs)

    def _requests(self) -> ThreadPoolExecutor:
        """The threads for requests' database work, as many as the settings ask for."""
        return _pool("requests", self.settings.request_threads)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> "Runtime":
        db = Database(
            settings.sqlalchemy_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            sqlite_group_commit_seconds=settings.sqlite_group_commit_ms / 1000,
            # A connection for each thread that works in the database, and the delivery worker's.
            connections=settings.request_threads + SLOW_THREADS + 1,
            loop_connections=settings.request_threads,
            prepared_statements=not settings.database_transaction_pooling,
            connect_timeout=settings.database_connect_timeout_seconds,
            read_url=settings.sqlalchemy_read_url,
        )
        return cls(settings=settings, db=db, clock=clock or SystemClock())
