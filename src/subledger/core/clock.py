"""Time is injected: code that asks "is this active now?" takes ``now`` as an argument."""

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class ResponseTimestamps:
    """Issues the profile ``timestamp`` field: milliseconds, strictly increasing.

    Within one process every value is larger than the previous one; across
    processes a profile's responses stay ordered because every write stores the
    value it issued and later responses start above it (``floor``).
    """

    def __init__(self, clock: Clock):
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def issue(self, floor: int = 0) -> int:
        now = to_millis(self._clock.now())
        with self._lock:
            self._last = max(now, floor, self._last + 1)
            return self._last
