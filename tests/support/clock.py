"""Time in tests: a clock moved by hand, and waiting for something to happen."""

import time
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime = datetime(2025, 1, 9, 12, 0, tzinfo=UTC)):
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
