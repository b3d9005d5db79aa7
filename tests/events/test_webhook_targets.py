"""Webhooks go to public addresses only: refused at registration and again at every delivery,
against the address actually connected to, unless the operator allows private networks.

Nothing here connects anywhere but loopback: a refused URL is refused before any connection,
which the loopback receiver (that every refused URL points at) confirms by receiving nothing.
"""

import asyncio
import ipaddress
import socket
import threading

import pytest
from support.api import Api, new_app
from support.clock import wait_until
from support.database import db_snapshot
from support.receiver import Receiver

from subledger.core.runtime import Runtime
from subledger.events import targets
from subledger.worker import DeliveryWorker

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "169.254.169.254",  # link-local: the clouds' metadata service
    "0.0.0.0",
    "224.0.0.1",
    "239.1.2.3",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",  # global-scope multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_addresses_that_are_not_public(address):
    assert not targets.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address):
    assert targets.is_public(ipaddress.ip_address(address))


@pytest.fixture
def guarded(runtime) -> Runtime:
    """The suite's runtime as production runs it: private networks not allowed."""
    runtime.settings.webhook_allow_private_networks = False
    return runtime


@pytest.fixture
def app(client, guarded) -> Api:
    return new_app(guarded, client)


def _spellings(port: int) -> list[str]:
    """Loopback, the metadata service and private networks as a URL can spell them."""
    return [
        f"http://127.0.0.1:{port}/hooks",
        f"http://localhost:{port}/hooks",
        f"http://2130706433:{port}/hooks",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/hooks",
        f"http://0177.0.0.1:{port}/hooks",  # octal
        f"http://127.1:{port}/hooks",
        f"http://[::1]:{port}/hooks",
        f"http://[::ffff:127.0.0.1]:{port}/hooks",
        f"http://[::ffff:7f00:1]:{port}/hooks",
        f"http://0.0.0.0:{port}/hooks",
        f"http://[::]:{port}/hooks",
        f"https://127.0.0.1:{port}/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.0.1:8080/",
    ]


def test_registration_refuses_every_spelling_of_a_private_address_without_connecting(app, guarded):
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        for url in _spellings(port):
            before = db_snapshot(guarded)
            response = app.admin("POST", "/webhooks/", {"url": url})
            assert response.status_code == 400, (url, response.text)
            error = response.json()["errors"][0]
            assert error["source"] == "url", url
            assert db_snapshot(guarded) == before
        assert receiver.received == []
    assert app.admin("GET", "/webhooks/").json()["data"] == []


def test_the_refusal_says_nothing_of_what_the_name_resolves_to(app):
    response = app.admin("POST", "/webhooks/", {"url": "http://localhost:9/hooks"})
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "source": "url",
        "errors": ["localhost is not a public address; the server's operator may allow private networks."],
    }
    assert "127.0.0.1" not in response.text and "::1" not in response.text


def test_credentials_in_a_url_are_refused_even_where_private_networks_are_allowed(client, runtime):
    assert runtime.settings.webhook_allow_private_networks
    api = new_app(runtime, client)
    with Receiver() as receiver:
        url = receiver.url.replace("http://", "http://user:password@")
        response = api.admin("POST", "/webhooks/", {"url": url})
        assert response.status_code == 400 and "authorization value" in response.text
        assert receiver.received == []


def test_a_delivery_is_checked_again_against_the_address_it_connects_to(client, runtime, clock):
    """Registered while private networks were allowed; once they are not, nothing is sent,
    and the attempt says why."""
    api = new_app(runtime, client)
    with Receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        assert api.admin("POST", "/webhooks/", {"url": url, "event_types": ["profile_created"]}).status_code == 201
        runtime.settings.webhook_allow_private_networks = False
        api.create("u")
        worker = DeliveryWorker(runtime, in_flight=2)
        try:
            wait_until(lambda: worker.run_once() == 0, 10)
        finally:
            worker.close()
        assert len(receiver.received) == 1  # the verification request alone
    [delivery] = api.admin("GET", "/deliveries/").json()["data"]
    assert delivery["status"] == "pending"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None and attempt["error"].startswith("Refused: localhost is not a public")


def test_a_delivery_goes_to_the_address_that_was_checked_with_the_urls_host(client, runtime, clock):
    api = new_app(runtime, client)
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        url = f"http://localhost:{port}/hooks?source=subledger"
        assert api.admin("POST", "/webhooks/", {"url": url, "event_types": ["profile_created"]}).status_code == 201
        api.create("u")
        worker = DeliveryWorker(runtime, in_flight=2)
        try:
            wait_until(lambda: worker.run_once() >= 0 and len(receiver.accepted) == 2, 10)
        finally:
            worker.close()
    for request in receiver.received:
        assert request["headers"]["Host"] == f"localhost:{port}"
        assert request["path"] == "/hooks?source=subledger"


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_connect_time(monkeypatch):
    """DNS rebinding: the name resolves to a public address when registered and to loopback
    when a delivery is sent. The request goes to the address checked each time: the first
    time a public one (no connection is made here), the second time none."""
    answers = iter(["93.184.216.34", "127.0.0.1"])

    async def rebinding(host, port, *, type=0, **_):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    async def pins():
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
        first = await targets.pin("https://hooks.example.com/in", allow_private=False)
        assert str(first.url) == "https://93.184.216.34/in"
        assert first.headers == {"Host": "hooks.example.com"}
        assert first.extensions == {"sni_hostname": "hooks.example.com"}
        with pytest.raises(targets.RefusedTarget):
            await targets.pin("https://hooks.example.com/in", allow_private=False)

    asyncio.run(pins())


def test_registrations_waiting_on_slow_endpoints_hold_no_thread(app, runtime):
    """More registrations than there are threads for slow work wait on endpoints that do not
    answer; store notifications, which run in those threads, are not held up."""
    runtime.settings.webhook_allow_private_networks = True
    runtime.settings.webhook_timeout_seconds = 60
    with Receiver(script=["hold"] * 12) as slow:
        registering = [
            threading.Thread(target=app.admin, args=("POST", "/webhooks/", {"url": slow.url})) for _ in range(12)
        ]
        for thread in registering:
            thread.start()
        try:
            wait_until(lambda: len(slow.received) == 12, 20)
            done = asyncio.run(asyncio.wait_for(runtime.remote_write(lambda: "store notification"), 5))
            assert done == "store notification"
        finally:
            slow.released.set()
            for thread in registering:
                thread.join()
    assert len(app.admin("GET", "/webhooks/").json()["data"]) == 12
