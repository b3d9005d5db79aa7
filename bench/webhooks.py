"""Webhook delivery: how many deliveries one worker sends per second to a receiver on
loopback, and how many it still sends to that receiver while another endpoint holds every
answer until the timeout.

    python bench/webhooks.py --engine sqlite --deliveries 5000

Each delivery is a ``profile_created`` event of a profile made through the service. The
receivers run in a process of their own (asyncio, kept-alive connections): ``quick``
answers 200 at once; ``stuck`` answers the verification request and then none. Prints,
per run, deliveries per second and the worker process's CPU per delivery.
"""

import argparse
import asyncio
import multiprocessing
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from scratch import scratch_database
from sqlalchemy import func, select

from subledger.apps import service as apps_service
from subledger.config import Settings
from subledger.core.addressing import ProfileRef
from subledger.core.runtime import Runtime
from subledger.core.tables import deliveries
from subledger.events import service as events_service
from subledger.events.schemas import EndpointIn
from subledger.profiles import service as profiles_service
from subledger.profiles.schemas import ProfileFields
from subledger.worker import DeliveryWorker

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def _receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers_all: bool) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if not answers_all and body != b"{}":
                await asyncio.Event().wait()  # held until the sender gives up
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def _receivers(quick: socket.socket, stuck: socket.socket) -> None:
    async def serve() -> None:
        await asyncio.start_server(lambda r, w: _receive(r, w, True), sock=quick)
        await asyncio.start_server(lambda r, w: _receive(r, w, False), sock=stuck)
        await asyncio.Event().wait()

    asyncio.run(serve())


def _listening() -> tuple[socket.socket, str]:
    sock = socket.create_server(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"


def _pending(rt: Runtime, endpoint_id: uuid.UUID) -> int:
    with rt.db.read() as conn:
        return conn.execute(
            select(func.count()).where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
        ).scalar_one()


def _make_profiles(rt: Runtime, app_id: uuid.UUID, count: int) -> None:
    for _ in range(count):
        profiles_service.create_profile(
            rt, app_id, ProfileRef(customer_user_id=uuid.uuid4().hex), ProfileFields(), None
        )


def _deliver(rt: Runtime, endpoint_id: uuid.UUID, count: int) -> None:
    """Runs a worker until the endpoint has nothing pending; prints the rate and CPU."""
    worker = DeliveryWorker(rt)
    start, cpu = time.perf_counter(), time.process_time()
    checked = start
    while True:
        worker.run_once()
        if time.perf_counter() - checked > 0.1:  # a count of the ledger of deliveries is not free
            checked = time.perf_counter()
            if not _pending(rt, endpoint_id):
                break
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"  {count} deliveries in {wall:.2f} s: {count / wall:,.0f}/s, {cpu / count * 1e6:,.0f} µs of CPU each")
    worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--deliveries", type=int, default=5000, help="deliveries to the quick receiver per run")
    options = parser.parse_args()
    (quick_socket, quick_url), (stuck_socket, stuck_url) = _listening(), _listening()
    receivers = multiprocessing.Process(target=_receivers, args=(quick_socket, stuck_socket), daemon=True)
    receivers.start()
    with TemporaryDirectory() as tmp, scratch_database(options.engine, options.postgres_url) as url:
        settings = Settings(
            database_url=url or f"sqlite:///{tmp}/webhooks.db",
            data_dir=Path(tmp),
            serve_worker="off",
            webhook_allow_private_networks=True,  # the receiver is on loopback
        )
        rt = Runtime.from_settings(settings)
        rt.db.migrate()
        app_id = uuid.UUID(apps_service.create_app(rt.db, "Webhooks", datetime.now(UTC))["app_id"])
        quick = asyncio.run(
            events_service.register_endpoint(rt, app_id, EndpointIn(url=quick_url, event_types=["profile_created"]))
        )
        quick_id = uuid.UUID(quick["endpoint_id"])

        print(f"{options.engine}: one endpoint")
        _make_profiles(rt, app_id, options.deliveries)
        _deliver(rt, quick_id, options.deliveries)

        print(f"{options.engine}: the same endpoint, beside one that holds every answer for the timeout")
        asyncio.run(
            events_service.register_endpoint(rt, app_id, EndpointIn(url=stuck_url, event_types=["profile_created"]))
        )
        _make_profiles(rt, app_id, options.deliveries)
        _deliver(rt, quick_id, options.deliveries)
        rt.db.dispose()
    receivers.terminate()


if __name__ == "__main__":
    main()
