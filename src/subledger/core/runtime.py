"""What a running subledger holds once per process, handed to every service call."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from subledger.config import Settings
from subledger.core.clock import Clock, ResponseTimestamps, SystemClock
from subledger.core.db import Database
from subledger.core.secrets import Sealer

T = TypeVar("T")

# The threads that run database work for the event loop, one pool per process. A
# plain executor: handing work to it costs a third of what anyio's threads cost.
_threads = ThreadPoolExecutor(max_workers=40, thread_name_prefix="subledger")


async def _in_thread(function: Callable[..., T], *args) -> T:
    return await asyncio.get_running_loop().run_in_executor(_threads, function, *args)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    timestamps: ResponseTimestamps = None  # type: ignore[assignment]
    sealer: Sealer = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.timestamps is None:
            self.timestamps = ResponseTimestamps(self.clock)
        if self.sealer is None:
            self.sealer = Sealer.from_settings(self.settings.secret_key, self.settings.data_dir)

    async def read(self, function: Callable[..., T], *args) -> T:
        """Run a read-only use case for an endpoint.

        SQLite reads (WAL mode) never wait for a lock and take tens of
        microseconds, less than handing them to a thread costs, so they run on
        the event loop; everything else runs in the thread pool.
        """
        if self.db.is_sqlite:
            return function(*args)
        return await _in_thread(function, *args)

    async def long_read(self, function: Callable[..., T], *args) -> T:
        """Run a read that may take seconds (analytics) in the thread pool, off the event loop."""
        return await _in_thread(function, *args)

    async def write(self, function: Callable[..., T], *args) -> T:
        """Run a use case that writes: always in the thread pool (it may wait for a lock)."""
        return await _in_thread(function, *args)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> "Runtime":
        db = Database(settings.sqlalchemy_url, sqlite_synchronous=settings.sqlite_synchronous)
        return cls(settings=settings, db=db, clock=clock or SystemClock())
