"""The delivery worker: claims due deliveries from the outbox and POSTs them
(and does the other chores that wait on time: expiry and "still active" events, pending store
notifications).

Run as ``subledger worker`` (any number of them, on any machines sharing one
PostgreSQL), and inside ``subledger serve`` on the embedded database. A claim
is a lease: a worker that dies mid-delivery loses its claim when the lease
runs out and another worker sends the event again (at least once).
"""

import asyncio
import collections
import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
from prometheus_client import Counter, Histogram
from sqlalchemy import Connection

from subledger.core import idempotency
from subledger.core.runtime import DELIVERIES_IN_FLIGHT, Runtime
from subledger.events import repository, rules, service, targets
from subledger.purchases import service as purchases_service
from subledger.stores import service as stores_service

log = logging.getLogger("subledger.worker")

# In `serve`'s /metrics, and on `subledger worker --metrics-port`.
ATTEMPTS = Counter(
    "subledger_webhook_attempts",
    "Webhook delivery attempts by how they ended: delivered (2xx), refused (3xx, 400-404: not retried), "
    "error_status, timeout, unreachable, refused_target (an address that may not be sent to)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "subledger_webhook_attempt_duration_seconds",
    "Time from an attempt's start to the answer's status line, or to its failure",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


class DeliveryWorker:
    """Keeps up to ``in_flight`` deliveries on their way at once, and fills the slots of the
    ones that end while others are still on their way. An endpoint whose last attempt failed
    gets one slot until an attempt succeeds: one that stops answering holds up the others for
    one timeout, not for as long as it has deliveries."""

    # Once a delivery of a round ends, how long the others have to end and be recorded with
    # it: one round, and one transaction, for most deliveries to a receiver that answers fast.
    GATHER_SECONDS = 0.02

    # How often store notifications kept for unknown users are matched against new profiles.
    PENDING_EVERY = 5.0
    PRUNE_KEYS_EVERY = 600.0  # idempotency keys past their day go this often

    def __init__(self, rt: Runtime, in_flight: int = DELIVERIES_IN_FLIGHT, idle_sleep: float = 0.5):
        self.rt = rt
        self._pending_due = 0.0
        self._prune_keys_due = 0.0
        self.in_flight = in_flight
        self.timeout = rt.settings.webhook_timeout_seconds
        # A claim outlives the slowest delivery (each ends within the timeout of its claim
        # and is recorded soon after), so no other worker sends it meanwhile.
        self.lease = timedelta(seconds=max(rt.settings.webhook_lease_seconds, self.timeout * 2))
        self.idle_sleep = idle_sleep
        self._random = random.Random()
        # The POSTs run on an event loop in a thread of their own, while this one works in the
        # database: a delivery's deadline is kept by cancelling it (``service.deliver``), which a
        # thread blocked in a read cannot be, and one in flight holds no thread or connection.
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="subledger-webhooks", daemon=True)
        self._loop_thread.start()
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=in_flight))
        self._sending: dict[Future[Any], tuple[dict[str, Any], datetime]] = {}  # each with its claim's time
        self._failing: set[UUID] = set()  # endpoints whose last attempt from this worker failed

    def run_once(self) -> int:
        """Fire due expiries and "still active" checks, apply store notifications whose user
        appeared (every few seconds), delete idempotency keys past their day (every ten minutes),
        send as many due deliveries as there is room for, and record the ones that have ended
        (waiting for the first when every slot is taken, else at most ``idle_sleep``).

        Returns the deliveries started, ended or still on their way: 0 when there is nothing to do."""
        purchases_service.fire_due_expiries(self.rt)
        purchases_service.fire_due_checks(self.rt)
        if time.monotonic() >= self._pending_due:
            stores_service.apply_pending(self.rt)
            self._pending_due = time.monotonic() + self.PENDING_EVERY
        if time.monotonic() >= self._prune_keys_due:
            idempotency.prune(self.rt.db, self.rt.clock.now())
            self._prune_keys_due = time.monotonic() + self.PRUNE_KEYS_EVERY
        started = self._send_due()
        if not self._sending:
            return started
        full = len(self._sending) == self.in_flight
        ended, _ = wait(self._sending, timeout=None if full else self.idle_sleep, return_when=FIRST_COMPLETED)
        if ended:
            ended |= wait(self._sending.keys() - ended, timeout=self.GATHER_SECONDS).done
        self._record(ended)
        return started + len(ended) + len(self._sending)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.run_once() == 0:
                    stop.wait(self.idle_sleep)
            except Exception:  # the loop must survive a database restart or a bad row
                log.exception("delivery loop failed; retrying")
                stop.wait(5)

    def close(self) -> None:
        """Let the deliveries on their way end and record them, then stop sending."""
        try:
            self._record(wait(self._sending).done)
        except Exception:  # their claims run out, and they are sent again
            log.exception("could not record the last deliveries")
        asyncio.run_coroutine_threadsafe(self._http.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join()
        self._loop.close()

    def _send_due(self) -> int:
        room = self.in_flight - len(self._sending)
        if room == 0:
            return 0
        on_their_way = collections.Counter(item.get("endpoint_id") for item, _ in self._sending.values())
        failing_room = {endpoint: 1 - on_their_way[endpoint] for endpoint in self._failing}
        now = self.rt.clock.now()
        with self.rt.db.read() as conn:  # most of the time none is: no write (on SQLite, the write lock) for nothing
            deliveries_due, forwards_due = repository.any_due(conn, now), repository.any_forward_due(conn, now)
        if not (deliveries_due or forwards_due):
            return 0
        with self.rt.db.write() as conn:
            claimed = repository.claim_due(conn, now, now + self.lease, room, failing_room) if deliveries_due else []
            if forwards_due and len(claimed) < room:
                forwards = repository.claim_due_forwards(conn, now, now + self.lease, room - len(claimed))
                claimed += [{**forward, "forward": True} for forward in forwards]
        for item in claimed:
            self._sending[asyncio.run_coroutine_threadsafe(self._post(item), self._loop)] = (item, now)
        return len(claimed)

    def _record(self, ended: set[Future[Any]]) -> None:
        """Record the attempts of the deliveries (and forwards) that ended, in one transaction. One
        whose attempt could not be made or recorded is sent again when its claim runs out."""
        attempts = []
        for future in ended:
            item, claimed_at = self._sending.pop(future)
            if future.exception() is None:
                status_code, error, duration_ms = future.result()
                if "endpoint_id" not in item:
                    pass  # a forward: its URL gets no share of its own
                elif status_code is not None and status_code < 405:  # it answered, and the answer is final
                    self._failing.discard(item["endpoint_id"])
                else:
                    self._failing.add(item["endpoint_id"])
                attempts.append((item, claimed_at, status_code, error, duration_ms))
            else:
                log.error("delivery %s failed", item["id"], exc_info=future.exception())
        if attempts:
            with self.rt.db.write() as conn:
                for attempt in attempts:
                    self._record_attempt(conn, *attempt)

    async def _post(self, item: dict[str, Any]) -> tuple[int | None, str | None, int]:
        """One attempt: its status code, its error and the milliseconds it took."""
        started = time.monotonic()
        status_code, error, outcome = None, None, "delivered"
        if item.get("forward"):
            url, authorization = rules.forward_target(item["settings"], item["secrets"])
            body, signing_secret = item["body"], None
        else:
            url, authorization = rules.target_of(item, item["target"])
            body = orjson.dumps(rules.delivered_body(item["payload"], item))
            signing_secret = self.rt.sealer.open(item["signing_secret"])
        try:
            if url is None:
                raise targets.RefusedTarget("the app no longer forwards this store's notifications")
            status_code = await service.deliver(
                self._http,
                url,
                bytes(body),
                str(item.get("event_id") or item["id"]),
                signing_secret,
                self.rt.sealer.open(authorization) if authorization else None,
                self.rt.clock.now(),
                self.timeout,
                self.rt.settings.webhook_allow_private_networks,
            )
            if rules.is_refusal(status_code):
                error, outcome = f"HTTP {status_code}", "refused"
            elif not httpx.codes.is_success(status_code):
                error, outcome = f"HTTP {status_code}", "error_status"
        except TimeoutError:
            error, outcome = f"TimeoutError: no answer within {self.timeout:g} seconds", "timeout"
        except targets.RefusedTarget as exc:
            error, outcome = f"Refused: {exc}"[:1024], "refused_target"
        except (httpx.HTTPError, ValueError) as exc:
            error, outcome = f"{type(exc).__name__}: {exc}"[:1024], "unreachable"
        seconds = time.monotonic() - started
        ATTEMPTS.labels(outcome).inc()
        ATTEMPT_SECONDS.observe(seconds)
        return status_code, error, int(seconds * 1000)

    def _record_attempt(
        self,
        conn: Connection,
        item: dict[str, Any],
        claimed_at: datetime,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        first_attempt_at = item["first_attempt_at"] or claimed_at
        now = self.rt.clock.now()
        attempts = item["attempts"] + 1
        if error is None:
            outcome = {"status": "delivered", "delivered_at": now}
        elif status_code is not None and rules.is_refusal(status_code):
            outcome = {"status": "refused"}
        else:
            retry_at = rules.next_attempt(attempts, first_attempt_at, now, self._random)
            outcome = {"status": "dead"} if retry_at is None else {"next_attempt_at": retry_at}
        values = {
            "attempts": attempts,
            "first_attempt_at": first_attempt_at,
            "last_status_code": status_code,
            "last_error": error,
            **outcome,
        }
        if item.get("forward"):
            repository.finish_forward(conn, item["id"], values)
            return
        repository.record_attempt(
            conn,
            {
                "id": uuid4(),
                "delivery_id": item["id"],
                "attempted_at": now,
                "status_code": status_code,
                "error": error,
                "duration_ms": duration_ms,
            },
        )
        repository.finish_delivery(conn, item["id"], values)


def start_in_background(rt: Runtime) -> tuple[threading.Thread, threading.Event]:
    """A worker thread for ``serve`` on the embedded database."""
    stop = threading.Event()
    worker = DeliveryWorker(rt)

    def loop() -> None:
        try:
            worker.run(stop)
        finally:
            worker.close()

    thread = threading.Thread(target=loop, name="subledger-delivery", daemon=True)
    thread.start()
    return thread, stop
