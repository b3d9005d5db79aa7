"""Where a request's time goes: each scenario of bench/run.py driven in-process through
the ASGI application (no sockets, no wrk), timed, its SQL statements counted, and
one scenario profiled with pyinstrument.

    python bench/hotpaths.py --engine sqlite --profile set_transaction

Prints, per scenario, wall-clock and CPU microseconds per request and SQL statements
per request, then pyinstrument's call tree of the scenario named by --profile. Reads and
writes run on the event loop here rather than in the thread pool, so that the profiler sees
them; the figures leave out the hop to a thread, sockets and HTTP parsing.
"""

import argparse
import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson
from pyinstrument import Profiler
from scratch import scratch_database, settle_statistics
from sqlalchemy import event

from subledger.app import create_app
from subledger.apps import service as apps_service
from subledger.catalog.schemas import ProductIn
from subledger.config import Settings
from subledger.core.runtime import Runtime
from subledger.purchases import service as purchases_service

BASE = "/api/v2/server-side-api"


class Driver:
    """Sends requests straight to the ASGI application, as uvicorn would."""

    def __init__(self, app, key: str):
        self.app = app
        self.key = key

    async def call(self, method: str, path: str, user: str, body: dict | None = None) -> int:
        payload = orjson.dumps(body) if body is not None else b""
        headers = [
            (b"authorization", f"Api-Key {self.key}".encode()),
            (b"adapty-customer-user-id", user.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


def transaction(name: str, original: str | None = None, month: int = 0) -> dict:
    """A monthly subscription's transaction: the ``month``-th of the chain ``original`` (a new chain by default)."""
    start = f"{2025 + month // 12}-{month % 12 + 1:02d}-01T00:00:00Z"
    end = f"{2025 + (month + 1) // 12}-{(month + 1) % 12 + 1:02d}-01T00:00:00Z"
    return {
        "purchase_type": "subscription",
        "store": "app_store",
        "store_product_id": "monthly",
        "store_transaction_id": name,
        "store_original_transaction_id": original or name,
        "price": {"country": "US", "currency": "USD", "value": 9.99},
        "purchased_at": start,
        "originally_purchased_at": "2025-01-01T00:00:00Z",
        "expires_at": end,
        "renew_status": True,
    }


def scenarios(seeded: int):
    """Each scenario: a function of a running number giving (method, path, user, body)."""
    names = itertools.count()
    user = lambda n: f"seed-{n % seeded}"  # noqa: E731
    return {
        "get_profile": lambda n: ("GET", f"{BASE}/profile/", user(n), None),
        "create_profile": lambda n: (
            "POST",
            f"{BASE}/profile/",
            f"new-{next(names)}",
            {"ip_country": "FR", "store": "app_store", "custom_attributes": [{"key": "level", "value": 3}]},
        ),
        "patch_profile": lambda n: (
            "PATCH",
            f"{BASE}/profile/",
            user(n),
            {"custom_attributes": [{"key": "level", "value": n % 100}]},
        ),
        "set_transaction": lambda n: (
            "POST",
            f"{BASE}/purchase/set/transaction/",
            user(n),
            transaction(f"tx-{next(names)}"),
        ),
        "grant": lambda n: (
            "POST",
            f"{BASE}/purchase/profile/grant/access-level/",
            user(n),
            {"access_level_id": "premium", "expires_at": "2030-01-01T00:00:00Z"},
        ),
    }


class InlineRuntime(Runtime):
    """Runs reads and writes on the event loop instead of the thread pool, where the profiler can see them."""

    async def read(self, function, *args):
        return function(*args)

    async def write(self, function, *args):
        return function(*args)


def prepare(url: str, data_dir: Path) -> tuple[Runtime, str]:
    settings = Settings(database_url=url, data_dir=data_dir, serve_worker="off")
    rt = InlineRuntime.from_settings(settings)
    rt.db.migrate()
    now = datetime.now(UTC)
    app = apps_service.create_app(rt.db, "Profile", now)
    app_id = uuid.UUID(app["app_id"])
    purchases_service.add_product(
        rt,
        app_id,
        ProductIn(store="app_store", store_product_id="monthly", access_level_id="premium", period="P1M"),
    )
    return rt, app["secret_api_key"]


async def measure(
    driver: Driver, make, requests: int, statements: list[int], profiler: Profiler | None
) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process) of ``requests`` requests."""
    for n in range(20):  # warm-up
        assert await driver.call(*make(n)) == 200
    statements[0] = 0
    if profiler:
        profiler.start()
    start, cpu = time.perf_counter(), time.process_time()
    for n in range(requests):
        status = await driver.call(*make(n))
        assert status == 200, status
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profiler:
        profiler.stop()
    return elapsed, cpu


async def main_async(options, rt: Runtime, key: str) -> None:
    driver = Driver(create_app(rt), key)
    statements = [0]
    event.listen(rt.db.engine, "before_cursor_execute", lambda *args: statements.__setitem__(0, statements[0] + 1))
    all_scenarios = scenarios(options.seeded)
    for n in range(options.seeded):
        assert await driver.call("POST", f"{BASE}/profile/", f"seed-{n}", {}) == 200
        for month in range(options.history):
            body = transaction(f"s{n}-{month}", f"s{n}-0", month)
            assert await driver.call("POST", f"{BASE}/purchase/set/transaction/", f"seed-{n}", body) == 200
    settle_statistics(rt.db)
    profiler = None
    print(f"| scenario ({options.engine}) | µs per request | CPU µs per request | statements per request |")
    print("|---|---|---|---|")
    for name, make in all_scenarios.items():
        if options.only and name != options.only:
            continue
        this = Profiler(interval=0.0002, async_mode="disabled") if name == options.profile else None
        profiler = this or profiler
        elapsed, cpu = await measure(driver, make, options.requests, statements, this)
        per = 1e6 / options.requests
        print(f"| {name} | {elapsed * per:.0f} | {cpu * per:.0f} | {statements[0] / options.requests:.1f} |")
    if profiler:
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    if rt.db.loop_reads is not None:  # what the app's lifespan does when a server stops
        await rt.db.loop_reads.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per scenario")
    parser.add_argument("--seeded", type=int, default=200, help="profiles (each with a subscription) made first")
    parser.add_argument(
        "--history", type=int, default=1, help="monthly transactions of each seeded profile's subscription"
    )
    parser.add_argument("--profile", help="the scenario to profile with pyinstrument")
    parser.add_argument("--only", help="run just this scenario")
    options = parser.parse_args()
    with TemporaryDirectory() as tmp, scratch_database(options.engine, options.postgres_url) as url:
        rt, key = prepare(url or f"sqlite:///{tmp}/profile.db", Path(tmp))
        asyncio.run(main_async(options, rt, key))
        rt.db.dispose()


if __name__ == "__main__":
    main()
