"""kill -9 the server in the middle of a stream of writes: nothing acknowledged is lost."""

import signal
import subprocess
import threading
import time

import httpx
import pytest
from sqlalchemy import select
from support.serving import SUBLEDGER, free_port, operator_env, run, run_json

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.tables import events, transactions

pytestmark = pytest.mark.slow  # a system test: it starts processes (CI runs it with -m slow)


def start(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        SUBLEDGER + ["serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def stream(base: str, key: str, prefix: str, acknowledged: list[str], stop: threading.Event) -> None:
    """Set transactions one after another until stopped; remember each that got a 200."""
    headers = {"Authorization": f"Api-Key {key}", "adapty-customer-user-id": "buyer"}
    n = 0
    with httpx.Client(base_url=base, timeout=5) as http:
        while not stop.is_set():
            n += 1
            tx_id = f"{prefix}-{n}"
            body = {
                "purchase_type": "one_time_purchase",
                "store": "app_store",
                "store_product_id": "coins",
                "store_transaction_id": tx_id,
                "store_original_transaction_id": tx_id,
                "price": {"country": "US", "currency": "USD", "value": 0.99},
                "purchased_at": "2025-01-01T00:00:00Z",
            }
            try:
                if (
                    http.post(
                        "/api/v2/server-side-api/purchase/set/transaction/", headers=headers, json=body
                    ).status_code
                    == 200
                ):
                    acknowledged.append(tx_id)
            except httpx.TransportError:
                time.sleep(0.05)  # the server is down; keep trying


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_every_acknowledged_write_survives_kill_9(request, tmp_path, engine):
    url = request.getfixturevalue(f"{engine}_url")
    env = {**operator_env(tmp_path / "data", url), "SUBLEDGER_SERVE_WORKER": "off"}
    run(env, "migrate")
    app = run_json(env, "apps", "create", "--name", "Crash")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(env, port)
    headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "buyer"}
    assert httpx.post(base + "/api/v2/server-side-api/profile/", headers=headers).status_code == 200

    acknowledged: list[str] = []
    stop = threading.Event()
    writers = [
        threading.Thread(target=stream, args=(base, app["secret_api_key"], f"w{i}", acknowledged, stop))
        for i in range(4)
    ]
    for writer in writers:
        writer.start()
    for _ in range(2):  # kill the whole server twice mid-stream, restart it each time
        time.sleep(1.5)
        subprocess.run(["pkill", "-9", "-P", str(server.pid)])
        server.send_signal(signal.SIGKILL)
        server.wait()
        server = start(env, port)
    time.sleep(1)
    stop.set()
    for writer in writers:
        writer.join()
    server.terminate()
    server.wait(timeout=30)

    db = Database(Settings(database_url=url).sqlalchemy_url)
    with db.read() as conn:
        stored = [row.store_transaction_id for row in conn.execute(select(transactions.c.store_transaction_id))]
        purchase_events = [
            row.payload["event_properties"]["transaction_id"]
            for row in conn.execute(select(events.c.payload).where(events.c.event_type == "non_subscription_purchase"))
        ]
    db.dispose()
    assert len(acknowledged) > 20
    assert len(stored) == len(set(stored))  # each once
    assert set(acknowledged) <= set(stored)  # nothing acknowledged is lost
    assert sorted(purchase_events) == sorted(stored)  # and no event is lost or doubled
    verified = run(env, "verify")
    assert verified.returncode == 0, verified.stderr
