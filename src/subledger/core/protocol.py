"""How subledger serves HTTP: uvicorn, with a deadline for reading each request and a bound on its head."""

import gc
import os
import shutil
import tempfile
from asyncio import TimerHandle, Transport
from functools import cache
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from subledger.config import Settings

_FIGURES = "PROMETHEUS_MULTIPROC_DIR"
_FIGURES_PREFIX = "subledger-metrics-"
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@cache
def _settings() -> Settings:
    return Settings()


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, where a request must arrive in full (headers and body)
    within ``SUBLEDGER_REQUEST_READ_TIMEOUT_SECONDS`` of the connection opening, or of the
    request's first byte on a connection kept alive, else the connection gets 408 and is
    closed; and where its head (request line and headers) may take ``SUBLEDGER_MAX_HEADER_BYTES``
    at most, counted as it arrives, else 431 and the connection is closed.

    uvicorn itself waits for ever for a request that never ends: clients that open
    connections and send nothing, or a request a byte at a time (slowloris), each hold
    a connection, and enough of them take every file descriptor the process may open. And
    it takes a head of any size: the parser keeps a header until it ends, and tens of
    megabytes of one hold the event loop for seconds.
    """

    _deadline: TimerHandle | None = None
    _in_head = True  # reading a request's head (or waiting for the next request's first byte)
    _head_bytes = 0

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Hand the parser what arrived; while a head is being read, a slice at a time, so
        that it never holds more than the bound of one."""
        limit = _settings().max_header_bytes
        while data and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            piece, data = data[: limit + 1 - self._head_bytes], data[limit + 1 - self._head_bytes :]
            super().data_received(piece)
            if self._in_head:  # the head goes on past this piece
                self._head_bytes += len(piece)
                if self._head_bytes > limit:
                    self._refuse(_HEAD_TOO_LARGE)
                    return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:  # a connection's first request runs from the opening
            self._deadline = self.loop.call_later(_settings().request_read_timeout_seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        self._refuse(_TIMED_OUT)

    def _refuse(self, answer: bytes) -> None:
        """Answer (unless an answer has begun) and close the connection."""
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(answer)
        self.transport.close()


def figures_directory() -> str:
    """A fresh directory for this server's request figures. Those of servers that died
    without removing theirs (``kill -9``) go now: each names its owner's process."""
    for stale in Path(tempfile.gettempdir()).glob(f"{_FIGURES_PREFIX}*"):
        try:
            owner = int((stale / "owner").read_text())
        except (OSError, ValueError):
            continue  # not one of ours, or still being made
        if not _alive(owner):
            shutil.rmtree(stale, ignore_errors=True)
    path = tempfile.mkdtemp(prefix=_FIGURES_PREFIX)
    (Path(path) / "owner").write_text(str(os.getpid()))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


@cache  # once a process
def settle_collector() -> None:
    """Put everything a server process has loaded at start (modules, schemas, tens of
    megabytes of objects) out of reach of Python's cyclic garbage collector, for good.

    A collection stops every thread of the process, and the oldest generation's went through
    all of that now and then, often while a thread held SQLite's write lock for the whole
    process: p99 at full load was 100-180 ms for writes on SQLite. What requests allocate is
    collected as before. (bench/run.py, SQLite: p99 at full load 28 ms for PATCH profile
    against 104-129, and 10-40% more requests a second for most scenarios; raising the
    collection thresholds as well gave nothing more.)

    The oldest generation is then collected after a thousand collections of the middle one
    rather than ten. Python collects it once the objects promoted since its last collection
    are a quarter of those it kept, and what is frozen no longer counts: an export, whose page
    of users and sales lives through the young collections, had 13-14 full collections over
    that page (20,000 profiles, a year by day), 15% of its CPU.
    """
    gc.freeze()
    young, middle, _oldest = gc.get_threshold()
    gc.set_threshold(young, middle, 1000)


def serve(factory: str, host: str, port: int, workers: int, log_level: str, access_log: bool = True) -> None:
    """Serve the application that ``factory`` (``module:function``) builds, in ``workers`` processes.

    Each process counts its requests in files of ``PROMETHEUS_MULTIPROC_DIR``, which
    ``/metrics`` adds up: a fresh directory for this run unless one is set.
    """
    own = None if os.environ.get(_FIGURES) else figures_directory()
    if own:
        os.environ[_FIGURES] = own  # read by prometheus_client when each process imports it
    try:
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            server_header=False,
            http=BoundedProtocol,
        )
    finally:
        if own:
            del os.environ[_FIGURES]
            shutil.rmtree(own, ignore_errors=True)
