"""GET /metrics: request figures by route, and the webhook backlog, in Prometheus's format."""

import os
import subprocess
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from support.events import drain
from support.purchases import one_time
from support.receiver import Receiver

from subledger.app import create_app
from subledger.config import Settings
from subledger.core import protocol
from subledger.core.runtime import Runtime

PROFILE = "/api/v2/server-side-api/profile/"


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample: (name, its labels sorted) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests(figures, method: str, route: str, status: str) -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return figures.get(("subledger_http_requests_total", labels), 0.0)


def test_requests_are_counted_and_timed_by_route_and_status(api, client):
    before = scrape(client)
    api.create("u")
    for _ in range(3):
        assert api.get("u").status_code == 200
    assert api.get("nobody").status_code == 404
    assert client.get(PROFILE, headers={"Authorization": "Api-Key wrong"}).status_code == 401
    assert client.request("BREW", PROFILE, headers=api.headers("u")).status_code == 405
    after = scrape(client)

    def delta(method, route, status):
        return requests(after, method, route, status) - requests(before, method, route, status)

    assert delta("GET", PROFILE, "200") == 3 and delta("GET", PROFILE, "404") == 1
    assert delta("POST", PROFILE, "200") == 1
    assert delta("GET", "(none)", "401") == 1  # refused before any route
    assert delta("other", PROFILE, "405") == 1  # methods a client makes up share one series
    timed = ("subledger_http_request_duration_seconds_count", (("method", "GET"), ("route", PROFILE)))
    assert after[timed] - before.get(timed, 0) == 4


def test_the_webhook_backlog_is_read_at_each_scrape(api, client, clock):
    api.product("lifetime", "premium", "lifetime")
    assert scrape(client)[("subledger_webhook_deliveries_pending", ())] == 0
    with Receiver() as receiver:
        response = api.admin("POST", "/webhooks/", {"url": receiver.url})
        assert response.status_code == 201, response.text
    api.create("u")
    assert api.set_transaction("u", **one_time()).status_code == 200  # no worker runs here
    clock.advance(minutes=5)
    figures = scrape(client)
    assert figures[("subledger_webhook_deliveries_pending", ())] == 2
    assert figures[("subledger_webhook_deliveries_dead", ())] == 0
    assert figures[("subledger_webhook_deliveries_overdue_seconds", ())] == 300


def test_webhook_attempts_are_counted_by_how_they_ended(api, client, clock, runtime):
    def attempts(figures, outcome: str) -> float:
        return figures.get(("subledger_webhook_attempts_total", (("outcome", outcome),)), 0.0)

    with Receiver(script=["ok", "fail"]) as receiver:
        response = api.admin("POST", "/webhooks/", {"url": receiver.url, "event_types": ["profile_created"]})
        assert response.status_code == 201, response.text
        before = scrape(client)
        api.create("u")
        drain(runtime, clock)  # a 500, then the retry's 200
    after = scrape(client)
    assert attempts(after, "error_status") - attempts(before, "error_status") == 1
    assert attempts(after, "delivered") - attempts(before, "delivered") == 1
    assert attempts(after, "timeout") == attempts(before, "timeout")


def test_without_the_database_the_request_figures_are_still_served(tmp_path, caplog):
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:9/none", data_dir=tmp_path, serve_worker="off")
    with TestClient(create_app(Runtime.from_settings(settings))) as client:
        assert client.get("/health").status_code == 503
        response = client.get("/metrics")
    assert response.status_code == 200
    assert 'subledger_http_requests_total{method="GET",route="/health",status="503"}' in response.text
    assert "subledger_webhook_deliveries_pending" not in response.text
    assert "metrics: the database does not answer" in caplog.text


def test_a_server_removes_the_figures_of_servers_killed_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed, running = tmp_path / "subledger-metrics-killed", tmp_path / "subledger-metrics-running"
    foreign = tmp_path / "subledger-metrics-x"  # no owner: not one of ours
    for directory, owner in ((killed, dead.pid), (running, os.getpid())):
        directory.mkdir()
        (directory / "owner").write_text(str(owner))
    foreign.mkdir()
    made = Path(protocol.figures_directory())
    assert not killed.exists() and running.exists() and foreign.exists()
    assert (made / "owner").read_text() == str(os.getpid()) and made.parent == tmp_path
