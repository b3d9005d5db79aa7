"""PostgreSQL restarted, stopped, and read from a streaming replica, with servers and a worker
running on it: clean 503s while it is away, recovery without help, no acknowledged write lost. Each test has a
cluster of its own (tests/clusters.py), so the shared test server stays up."""

import subprocess
import threading
import time
from collections import Counter
from typing import IO

import httpx
import pytest
from sqlalchemy import select
from support import clusters
from support.clock import wait_until
from support.receiver import Receiver
from support.serving import SUBLEDGER, operator_env, run, serving, shop

from subledger.config import Settings
from subledger.core.db import Database
from subledger.core.tables import profiles

pytestmark = [
    pytest.mark.slow,  # a system test: it starts PostgreSQL clusters and server processes
    pytest.mark.skipif(not clusters.available(), reason="PostgreSQL's server programs are not installed"),
]


def _customer_ids(url: str) -> set[str]:
    db = Database(Settings(database_url=url).sqlalchemy_url)
    try:
        with db.read() as conn:
            return set(conn.execute(select(profiles.c.customer_user_id)).scalars())
    finally:
        db.dispose()


def _hook_profiles_created(env: dict, app: dict, receiver: Receiver) -> None:
    """The app sends its profile_created events to ``receiver``."""
    run(env, "webhooks", "create", "--app", app["app_id"], "--url", receiver.url, "--event-type", "profile_created")


def _delivered(receiver: Receiver) -> set[str]:
    """The customer_user_ids of the profile_created events the receiver got."""
    return {r["json"]["customer_user_id"] for r in list(receiver.received) if r["json"]}


def _worker(env: dict, log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*SUBLEDGER, "worker"], env=env, stderr=log)


def test_writes_through_a_restart_and_an_outage_get_503_and_none_acknowledged_is_lost(tmp_path):
    with clusters.primary() as database:
        env = {
            **operator_env(tmp_path / "data", database.url),
            "SUBLEDGER_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
            # A delivery whose outcome the outage kept from being recorded is sent again once its
            # claim runs out: soon, here.
            "SUBLEDGER_WEBHOOK_TIMEOUT_SECONDS": "2",
            "SUBLEDGER_WEBHOOK_LEASE_SECONDS": "5",
        }
        run(env, "migrate")
        app = shop(env)
        answers: dict[str, httpx.Response] = {}
        took: list[float] = []
        failures: list[Exception] = []  # requests that got no answer at all
        stop = threading.Event()
        with (
            Receiver() as receiver,
            serving(env, workers=2) as base,
            httpx.Client(base_url=base + "/api/v2/server-side-api", timeout=30) as http,
        ):
            _hook_profiles_created(env, app, receiver)
            worker_log = (tmp_path / "worker.log").open("w")
            delivering = _worker(env, worker_log)

            def write_on() -> None:
                n = 0
                while not stop.is_set():
                    user = f"writer-{n}"
                    headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": user}
                    started = time.monotonic()
                    try:
                        answers[user] = http.post("/profile/", headers=headers, json={"email": f"{n}@example.com"})
                    except httpx.HTTPError as error:
                        failures.append(error)
                    took.append(time.monotonic() - started)
                    n += 1

            writers = [threading.Thread(target=write_on) for _ in range(2)]
            for writer in writers:
                writer.start()
            time.sleep(1.5)
            database.restart()  # connections of both server processes are cut
            time.sleep(1.5)
            database.stop()  # an outage: nothing answers on the port
            time.sleep(2)
            database.start()
            time.sleep(3)  # the servers find the database again by themselves
            stop.set()
            for writer in writers:
                writer.join()
            headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "after"}
            assert http.post("/profile/", headers=headers).status_code == 200
            assert http.get("/profile/", headers=headers).status_code == 200
            acknowledged = {user for user, answer in answers.items() if answer.status_code == 200} | {"after"}

            try:  # the worker, still running, delivers every acknowledged profile's event
                wait_until(lambda: acknowledged <= _delivered(receiver), timeout=120)
            except AssertionError:
                missing = sorted(acknowledged - _delivered(receiver))
                log = (tmp_path / "worker.log").read_text()
                log = log if len(log) < 6000 else log[:3000] + "\n...\n" + log[-3000:]
                raise AssertionError(
                    f"{len(missing)} never delivered, {missing[:5]}...; the worker's log:\n{log}"
                ) from None
            finally:
                delivering.terminate()
                stopped = delivering.wait(timeout=30)
                worker_log.close()
            assert stopped == 0, (tmp_path / "worker.log").read_text()

        assert failures == []
        statuses = Counter(answer.status_code for answer in answers.values())
        assert set(statuses) <= {200, 503}, {a.text for a in answers.values() if a.status_code not in (200, 503)}
        assert statuses[503] > 0 and statuses[200] > 0
        for answer in answers.values():
            if answer.status_code == 503:
                assert answer.json()["error_code"] == "database_unavailable"
                assert answer.headers["Retry-After"] == "1"
        assert max(took) < 10  # none hung: a connection attempt gives up after 2 s
        assert acknowledged <= _customer_ids(database.url)
        assert "0 profile(s) differ" in run(env, "verify").stderr


def test_lagging_reads_go_to_the_replica_and_to_the_primary_while_it_is_away(tmp_path):
    with clusters.primary() as primary, clusters.replica(primary) as replica:
        env = {
            **operator_env(tmp_path / "data", primary.url),
            "SUBLEDGER_DATABASE_READ_URL": replica.url,
            "SUBLEDGER_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
            # Keys are checked on the primary: trusted for a minute once checked, they outlast its outage.
            "SUBLEDGER_API_KEY_CACHE_SECONDS": "60",
        }
        run(env, "migrate")
        app = shop(env)
        secret = {"Authorization": f"Api-Key {app['secret_api_key']}"}
        with serving(env) as base, httpx.Client(base_url=base, timeout=30) as http:
            buyer = {**secret, "adapty-customer-user-id": "buyer"}
            assert http.post("/api/v2/server-side-api/profile/", headers=buyer).status_code == 200
            deadline = time.monotonic() + 30
            while "buyer" not in _customer_ids(replica.url):  # the replica follows the primary
                assert time.monotonic() < deadline
                time.sleep(0.1)

            assert http.get("/api/admin/v1/events/", headers=secret).status_code == 200  # the key is checked now

            primary.stop()  # reads that may lag still answer, from the replica; the rest are 503
            events = http.get("/api/admin/v1/events/", headers=secret)
            assert events.status_code == 200, events.text
            metrics = http.get("/api/admin/v1/metrics/", headers=secret, params={"period": "day"})
            assert metrics.status_code == 200, metrics.text
            unavailable = http.get("/api/v2/server-side-api/profile/", headers=buyer)
            assert unavailable.status_code == 503

            primary.start()
            replica.stop()  # and with the replica away, they go to the primary, once the connections
            # each had before its restart are found broken (the read that finds them gets a 503)
            statuses = [http.get("/api/admin/v1/events/", headers=secret).status_code for _ in range(4)]
            assert set(statuses) <= {200, 503} and statuses[-2:] == [200, 200], statuses
            assert http.get("/api/v2/server-side-api/profile/", headers=buyer).status_code == 200


def test_a_worker_started_while_the_database_is_down_waits_for_it(tmp_path):
    """A worker (re)started by its supervisor during an outage delivers once the database is back."""
    with clusters.primary() as database:
        env = {**operator_env(tmp_path / "data", database.url), "SUBLEDGER_DATABASE_CONNECT_TIMEOUT_SECONDS": "2"}
        run(env, "migrate")
        app = shop(env)
        with Receiver() as receiver:
            _hook_profiles_created(env, app, receiver)
            database.stop()
            log = (tmp_path / "worker.log").open("w")
            delivering = _worker(env, log)
            try:
                time.sleep(4)
                assert delivering.poll() is None, (tmp_path / "worker.log").read_text()  # still waiting
                database.start()
                with serving(env, workers=1) as base:
                    headers = {"Authorization": f"Api-Key {app['secret_api_key']}", "adapty-customer-user-id": "late"}
                    assert httpx.post(base + "/api/v2/server-side-api/profile/", headers=headers).status_code == 200
                    wait_until(lambda: "late" in _delivered(receiver), timeout=60)
            finally:
                delivering.terminate()
                delivering.wait(timeout=30)
                log.close()
        assert "does not answer" in (tmp_path / "worker.log").read_text()
