"""Real `subledger worker` processes: killed mid-delivery, and several at once."""

import asyncio
import signal
import subprocess
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from support.clock import wait_until
from support.receiver import Receiver
from support.serving import SUBLEDGER, free_port, operator_env

from subledger.apps import service as apps_service
from subledger.catalog.schemas import ProductIn
from subledger.config import Settings
from subledger.core.addressing import ProfileRef
from subledger.core.runtime import Runtime
from subledger.core.tables import deliveries, events
from subledger.events import service as events_service
from subledger.events.schemas import EndpointIn
from subledger.profiles import service as profiles_service
from subledger.profiles.schemas import ProfileFields
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import TransactionIn

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)


def make_events(rt: Runtime, app_id, profiles: int, renewals: int) -> None:
    purchases_service.add_product(
        rt, app_id, ProductIn(store="app_store", store_product_id="m", access_level_id="premium", period="P1M")
    )
    start = rt.clock.now()
    for p in range(profiles):
        profiles_service.create_profile(rt, app_id, ProfileRef(customer_user_id=f"user-{p}"), ProfileFields(), None)
        for r in range(renewals):
            purchased = start + timedelta(days=30 * r)
            tx = TransactionIn.model_validate(
                {
                    "purchase_type": "subscription",
                    "store": "app_store",
                    "store_product_id": "m",
                    "store_transaction_id": f"{p}-{r}",
                    "store_original_transaction_id": f"{p}-chain",
                    "price": {"country": "US", "currency": "USD", "value": 4.99},
                    "purchased_at": purchased.isoformat(),
                    "originally_purchased_at": start.isoformat(),
                    "expires_at": (purchased + timedelta(days=30)).isoformat(),
                    "renew_status": True,
                }
            )
            purchases_service.set_transaction(rt, app_id, ProfileRef(customer_user_id=f"user-{p}"), tx)


def worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        SUBLEDGER + ["worker", "--concurrency", "4"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_killed_worker_loses_nothing_and_several_workers_never_overlap(request, tmp_path, engine):
    url = request.getfixturevalue(f"{engine}_url")
    env = {
        **operator_env(tmp_path / "data", url),
        "SUBLEDGER_WEBHOOK_TIMEOUT_SECONDS": "3",
        "SUBLEDGER_WEBHOOK_LEASE_SECONDS": "1",
    }
    rt = Runtime.from_settings(Settings(database_url=url, data_dir=tmp_path / "data", serve_worker="off"))
    app = apps_service.create_app(rt.db, "Shop", rt.clock.now())
    app_id = uuid.UUID(app["app_id"])

    with Receiver(script=["ok", "slow"], slow_seconds=2.5) as receiver:
        asyncio.run(events_service.register_endpoint(rt, app_id, EndpointIn(url=receiver.url)))
        make_events(rt, app_id, profiles=3, renewals=4)
        with rt.db.read() as conn:
            expected = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
        assert expected == 3 * 4 * 2  # a purchase event and an access_level_updated each

        first = worker(env)
        wait_until(lambda: len(receiver.received) >= 2)  # the slow delivery is in flight
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()

        others = [worker(env), worker(env)]
        try:

            def all_delivered():
                with rt.db.read() as conn:
                    return (
                        conn.execute(
                            select(func.count()).select_from(deliveries).where(deliveries.c.status == "delivered")
                        ).scalar_one()
                        == expected
                    )

            wait_until(all_delivered)
        finally:
            for process in others:
                process.terminate()
                assert process.wait(timeout=30) == 0, process.stderr.read()

    with rt.db.read() as conn:
        order = [
            str(row.id)
            for row in conn.execute(
                select(events.c.id, events.c.profile_id)
                .where(events.c.event_type != "profile_created")
                .order_by(events.c.sequence)
            )
        ]
        profile_of = {str(row.id): row.profile_id for row in conn.execute(select(events.c.id, events.c.profile_id))}
    rt.db.dispose()

    # Leaves out verification requests ({}) and a request the killed worker had begun
    # but not finished: its headers came, its body did not (None).
    deliveries_seen = [r for r in receiver.received if r["json"]]
    first_seen = []
    for r in deliveries_seen:
        event_id = r["json"]["event_properties"]["profile_event_id"]
        if event_id not in first_seen:
            first_seen.append(event_id)
    assert sorted(first_seen) == sorted(order)  # nothing lost
    for profile in set(profile_of[e] for e in order):  # in order per profile
        assert [e for e in first_seen if profile_of[e] == profile] == [e for e in order if profile_of[e] == profile]

    after_kill = [r for r in deliveries_seen if r["started"] > killed_at]
    for a in after_kill:  # never the same event twice at the same time
        for b in after_kill:
            same = a is not b and a["headers"]["Subledger-Event-Id"] == b["headers"]["Subledger-Event-Id"]
            assert not (
                same and a["started"] < (b["ended"] or float("inf")) and b["started"] < (a["ended"] or float("inf"))
            )


def test_a_worker_serves_its_figures_for_prometheus(sqlite_url, tmp_path):
    port = free_port()
    env = {**operator_env(tmp_path / "data", sqlite_url), "SUBLEDGER_WEBHOOK_TIMEOUT_SECONDS": "1"}
    rt = Runtime.from_settings(Settings(database_url=sqlite_url, data_dir=tmp_path / "data", serve_worker="off"))
    app_id = uuid.UUID(apps_service.create_app(rt.db, "Shop", rt.clock.now())["app_id"])
    with Receiver(script=["ok", "fail", "slow", "ok"], slow_seconds=3) as receiver:
        asyncio.run(
            events_service.register_endpoint(rt, app_id, EndpointIn(url=receiver.url, event_types=["profile_created"]))
        )
        for user in ("a", "b", "c"):
            profiles_service.create_profile(rt, app_id, ProfileRef(customer_user_id=user), ProfileFields(), None)
        process = subprocess.Popen(
            SUBLEDGER + ["worker", "--metrics-port", str(port)], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            attempts = {}

            def figures() -> bool:
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
                except httpx.TransportError:
                    return False  # not listening yet
                attempts.update(
                    (sample.labels["outcome"], sample.value)
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == "subledger_webhook_attempts_total"
                )
                return sum(attempts.values()) >= 3

            wait_until(figures, 30)
        finally:
            process.terminate()
            assert process.wait(timeout=30) == 0, process.stderr.read()
    rt.db.dispose()
    assert attempts == {"delivered": 1.0, "error_status": 1.0, "timeout": 1.0}
