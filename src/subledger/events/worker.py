"""The delivery worker: claims due deliveries from the outbox and POSTs them
(and does the other chores that wait on time: expiry events, pending store notifications).

Run as ``subledger worker`` (any number of them, on any machines sharing one
PostgreSQL), and inside ``subledger serve`` on the embedded database. A claim
is a lease: a worker that dies mid-delivery loses its claim when the lease
runs out and another worker sends the event again (at least once).
"""

import asyncio
import logging
import random
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import orjson
from sqlalchemy import Connection

from subledger.core.runtime import DELIVERIES_IN_FLIGHT, Runtime
from subledger.events import repository, rules, service
from subledger.purchases import service as purchases_service
from subledger.stores import service as stores_service

log = logging.getLogger("subledger.worker")


class DeliveryWorker:
    # How often store notifications kept for unknown users are matched against new profiles.
    PENDING_EVERY = 5.0

    def __init__(self, rt: Runtime, in_flight: int = DELIVERIES_IN_FLIGHT, idle_sleep: float = 0.5):
        self.rt = rt
        self._pending_due = 0.0
        self.in_flight = in_flight
        self.timeout = rt.settings.webhook_timeout_seconds
        # A claim outlives the slowest delivery (each ends within the timeout, and a batch's
        # are all in flight at once), so no other worker sends it meanwhile.
        self.lease = timedelta(seconds=max(rt.settings.webhook_lease_seconds, self.timeout * 2))
        self.idle_sleep = idle_sleep
        self._random = random.Random()
        # The POSTs are awaited on a loop of the worker's own: a delivery's deadline is then
        # kept by cancelling it (``service.deliver``), which a thread blocked in a read cannot be.
        self._loop = asyncio.new_event_loop()
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=in_flight))

    def run_once(self) -> int:
        """Fire due expiries, apply store notifications whose user appeared (every few
        seconds), then deliver one batch; returns the deliveries attempted."""
        purchases_service.fire_due_expiries(self.rt)
        if time.monotonic() >= self._pending_due:
            stores_service.apply_pending(self.rt)
            self._pending_due = time.monotonic() + self.PENDING_EVERY
        now = self.rt.clock.now()
        with self.rt.db.write() as conn:
            claimed = repository.claim_due(conn, now, now + self.lease, self.in_flight)
        if claimed:
            attempts = self._loop.run_until_complete(self._post_all(claimed))
            with self.rt.db.write() as conn:
                for delivery, attempt in zip(claimed, attempts, strict=True):
                    self._record(conn, delivery, now, *attempt)
        return len(claimed)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.run_once() == 0:
                    stop.wait(self.idle_sleep)
            except Exception:  # the loop must survive a database restart or a bad row
                log.exception("delivery loop failed; retrying")
                stop.wait(5)

    def close(self) -> None:
        self._loop.run_until_complete(self._http.aclose())
        self._loop.close()

    async def _post_all(self, claimed: list[dict[str, Any]]) -> list[tuple[int | None, str | None, int]]:
        return await asyncio.gather(*map(self._post, claimed))

    async def _post(self, delivery: dict[str, Any]) -> tuple[int | None, str | None, int]:
        """One attempt: its status code, its error and the milliseconds it took."""
        started = time.monotonic()
        status_code, error = None, None
        try:
            status_code = await service.deliver(
                self._http,
                delivery["url"],
                orjson.dumps(delivery["payload"]),
                str(delivery["event_id"]),
                self.rt.sealer.open(delivery["signing_secret"]),
                self.rt.sealer.open(delivery["authorization_header"]) if delivery["authorization_header"] else None,
                self.rt.clock.now(),
                self.timeout,
            )
            if not httpx.codes.is_success(status_code):
                error = f"HTTP {status_code}"
        except TimeoutError:
            error = f"TimeoutError: no answer within {self.timeout:g} seconds"
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1024]
        return status_code, error, int((time.monotonic() - started) * 1000)

    def _record(
        self,
        conn: Connection,
        delivery: dict[str, Any],
        claimed_at: datetime,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        first_attempt_at = delivery["first_attempt_at"] or claimed_at
        now = self.rt.clock.now()
        attempts = delivery["attempts"] + 1
        if error is None:
            outcome = {"status": "delivered", "delivered_at": now}
        else:
            retry_at = rules.next_attempt(attempts, first_attempt_at, now, self._random)
            outcome = {"status": "dead"} if retry_at is None else {"next_attempt_at": retry_at}
        repository.record_attempt(
            conn,
            {
                "id": uuid4(),
                "delivery_id": delivery["id"],
                "attempted_at": now,
                "status_code": status_code,
                "error": error,
                "duration_ms": duration_ms,
            },
        )
        repository.finish_delivery(
            conn,
            delivery["id"],
            {
                "attempts": attempts,
                "first_attempt_at": first_attempt_at,
                "last_status_code": status_code,
                "last_error": error,
                **outcome,
            },
        )


def start_in_background(rt: Runtime) -> tuple[threading.Thread, threading.Event]:
    """A worker thread for ``serve`` on the embedded database."""
    stop = threading.Event()
    worker = DeliveryWorker(rt)

    def loop():
        try:
            worker.run(stop)
        finally:
            worker.close()

    thread = threading.Thread(target=loop, name="subledger-delivery", daemon=True)
    thread.start()
    return thread, stop
